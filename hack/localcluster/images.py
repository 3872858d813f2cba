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
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hack import image

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


def ensure_image(name: str, command: list[str] | None, lines: tuple[str, ...] = ()) -> LocalImage:
    """An image of the Debian base with `lines` and `command`, saved as a cached OCI archive.

    The tag carries the key of the whole recipe (base included), so a changed recipe is a
    new name and containerd never runs a stale image under an old one."""
    image.ensure_tools()
    base = image.ensure_base()
    recipe = containerfile(base, command, lines)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    ref = f"localhost/sloscale-{name}:{key}"
    archive = image.cache_dir() / f"node-image-{name}-{key}.oci.tar"
    if archive.exists():
        return LocalImage(ref, archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive.parent / f".node-image-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # worktrees share the cache and podman's storage
        if not archive.exists():
            started = time.monotonic()
            _build(ref, recipe)
            partial = archive.with_name(archive.name + ".partial")
            partial.unlink(missing_ok=True)
            image.podman("save", "--quiet", "--format", "oci-archive", "--output", str(partial),
                         ref)  # fmt: skip
            os.replace(partial, archive)
            _log(f"{ref} built and saved in {time.monotonic() - started:.1f}s: {archive}")
    return LocalImage(ref, archive)


def _build(ref: str, recipe: str) -> None:
    result = subprocess.run(
        ["podman", "build", *image.RUNTIME, *image.ULIMITS, "--network", "none", "--tag", ref,
         "--file", "-", str(image.ROOT / "hack" / "localcluster")],
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
