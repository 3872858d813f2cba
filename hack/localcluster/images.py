"""Images for the real node: built here with podman, imported into the node's containerd.

No registry is reachable, so the sandbox ("pause") image and every pod image come from the
Debian base that `make image` builds (hack/image.py), saved as OCI archives and imported with
`ctr images import`. Archives are cached under ~/.cache/sloscale, keyed by what they hold.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hack import image
from sloscale.render.values import TRITON_UID

from .errors import StepFailed

if TYPE_CHECKING:
    from .cluster import LocalCluster

# The sandbox holds the pod's namespaces: a process that sleeps and exits on SIGTERM (bash
# as PID 1 ignores signals it does not trap).
PAUSE_COMMAND = ["/bin/bash", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]


@dataclass(frozen=True)
class LocalImage:
    ref: str  # the name pods (and containerd's sandbox_image) use
    archive: Path  # `podman save --format oci-archive` of it


def _log(message: str) -> None:
    print(f"[image] {message}", flush=True, file=sys.stderr)


def containerfile(base: str, command: list[str] | None, lines: tuple[str, ...] = ()) -> str:
    text = f"FROM {base}\n" + "".join(f"{line}\n" for line in lines)
    if command is not None:
        text += f"CMD {json.dumps(command)}\n"
    return text


def ensure_image(name: str, command: list[str] | None, lines: tuple[str, ...] = (),
                 packages: tuple[str, ...] = (),
                 context: Callable[[Path], None] | None = None,
                 inputs: str = "") -> LocalImage:
    """An image of the Debian base (with `packages`) with `lines` and `command`, saved as a
    cached OCI archive. `context` fills the build's context folder (what COPY reads), and
    `inputs` names what it copies (versions), since the folder itself is not hashed.

    The tag carries the key of the whole recipe (base included), so a changed recipe is a
    new name and containerd never runs a stale image under an old one."""
    image.ensure_tools()
    base = image.ensure_base(packages)
    recipe = containerfile(base, command, lines)
    key = hashlib.sha256((recipe + inputs).encode()).hexdigest()[:12]
    ref = f"localhost/sloscale-{name}:{key}"
    archive = image.cache_dir() / f"node-image-{name}-{key}.oci.tar"
    if archive.exists():
        return LocalImage(ref, archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive.parent / f".node-image-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # worktrees share the cache and podman's storage
        if not archive.exists():
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f"sloscale-image-{name}-") as folder:
                if context is not None:
                    context(Path(folder))
                _build(ref, recipe, Path(folder))
            partial = archive.with_name(archive.name + ".partial")
            partial.unlink(missing_ok=True)
            image.podman("save", "--quiet", "--format", "oci-archive", "--output", str(partial),
                         ref)  # fmt: skip
            os.replace(partial, archive)
            _log(f"{ref} built and saved in {time.monotonic() - started:.1f}s: {archive}")
    return LocalImage(ref, archive)


def _build(ref: str, recipe: str, folder: Path) -> None:
    result = subprocess.run(
        ["podman", "build", *image.RUNTIME, *image.ULIMITS, "--network", "none", "--tag", ref,
         "--file", "-", str(folder)],
        input=recipe, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise StepFailed(f"build image {ref}", result.stderr[-2000:], "read podman's error above")


def ensure_pause() -> LocalImage:
    return ensure_image("pause", PAUSE_COMMAND)


def import_archive(local: LocalCluster, archive: Path) -> None:
    """Import an OCI archive into the node's containerd, unpacked for the CRI, under the name
    podman saved it with (pods then run it with imagePullPolicy: Never)."""
    from .realnode import ctr

    started = time.monotonic()
    result = ctr(local, "images", "import", "--all-platforms", str(archive), timeout=600)
    if result.returncode != 0:
        raise StepFailed(
            f"import {archive.name} into containerd", result.stderr.strip(), "read the error"
        )
    _log(f"imported {archive.name} into the real node in {time.monotonic() - started:.1f}s")


# Beside the base's python3: the python backend's stub embeds libpython, bookworm's numpy is
# numpy 1 (what the stub's bindings were built for), tritonserver links the C++ runtime and
# zlib, the stub expat. Found with ldd on the wheel's binaries.
TRITON_PACKAGES = ("libpython3.11", "libstdc++6", "libexpat1", "zlib1g", "python3-numpy")
TRITON_HOME = "/opt/pytriton/pytriton/tritonserver"


def triton_lines() -> tuple[str, ...]:
    """`tritonserver` on PATH runs the wheel's binary with the wheel's backends, the python
    stub for bookworm's Python copied beside them: real files, not links, because the wheel's
    libraries find their vendored dependencies relative to where they lie ($ORIGIN)."""
    # printf makes the newlines; the single quotes shlex adds keep "$@" for the wrapper.
    wrapper = (f"#!/bin/sh\\nexec {TRITON_HOME}/bin/tritonserver "
               f'--backend-directory={TRITON_HOME}/backends "$@"\\n')
    return (
        "COPY pytriton /opt/pytriton",
        "COPY wheels /tmp/wheels",
        # A wheel is a zip: unpacked into dist-packages, onnxruntime is installed (no pip).
        "RUN python3 -m zipfile -e /tmp/wheels/*.whl /usr/local/lib/python3.11/dist-packages/"
        " && rm -rf /tmp/wheels"
        f" && cp {TRITON_HOME}/python_backend_stubs/3.11/triton_python_backend_stub"
        f" {TRITON_HOME}/backends/python/"
        f" && printf {shlex.quote(wrapper)} > /usr/local/bin/tritonserver"
        " && chmod 755 /usr/local/bin/tritonserver",
        f"USER {TRITON_UID}:{TRITON_UID}",  # as the rendered pods run
    )


def ensure_triton() -> LocalImage:
    """Triton from the nvidia-pytriton wheel with its python backend, numpy and onnxruntime:
    it serves `sloscale runtime build --format python-onnx` repositories (torch, with its CUDA
    libraries over 4 GB, is not in it). The rendered Deployment runs `tritonserver`."""
    from importlib.metadata import version

    from sloscale_runtime.triton import PYTRITON_VERSION, find_triton_home

    home = find_triton_home()  # <target>/pytriton/tritonserver
    onnxruntime = f"onnxruntime=={version('onnxruntime')}"

    def fill(folder: Path) -> None:
        _copy_tree(home.parent.parent, folder / "pytriton")
        # For the image's Python (bookworm's 3.11), whatever runs this.
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--python-version", "3.11", "--implementation",
                        "cp", "--abi", "cp311", "--platform", "manylinux_2_28_x86_64",
                        "--dest", str(folder / "wheels"), onnxruntime],
                       check=True, stdout=sys.stderr)  # fmt: skip

    return ensure_image("triton", None, triton_lines(), packages=TRITON_PACKAGES,
                        context=fill,
                        inputs=f"pytriton {PYTRITON_VERSION} from {home}, {onnxruntime}")


def _copy_tree(source: Path, destination: Path) -> None:
    """Hard links where the filesystem allows (the wheel is 145 MB), copies elsewhere."""
    import shutil

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link, symlinks=True)
