"""`make image`: build the operator image with podman and save it as an OCI archive.

No registry is reachable from the machines this project is built on, so the base image is
made from Debian packages (mmdebstrap: bookworm's python3, no apt, no perl) and imported into
podman once; its rootfs tarball is cached under ~/.cache/sloscale, keyed by the recipe below.
The Dockerfile takes it as BASE; elsewhere the default python:3.11-slim-bookworm serves.

Two quirks of these machines, found by trying: crun refuses the hybrid cgroup layout (so
runc, named on every call in case crun is installed too), and raising rlimits is refused (so
every container gets the limits below, no higher than the host's).

The image is tagged sloscale:<version> for people; the tests run the image ID recorded in
out/image-id, because worktrees share podman's storage and another clone may re-tag the name.

Usage: python -m hack.image build | tools | ref
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out"
NAME = "localhost/sloscale"
# buildah's library is inside podman; the buildah command itself is not needed.
TOOLS = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap"}
RUNTIME = ("--runtime", "runc")
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")

DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Everything that decides the base's contents; its hash names the cached base.
BASE_RECIPE = {
    "suite": "bookworm",
    # essential: dpkg, coreutils, bash and the like, without apt; the merged-usr hook sets up
    # /usr the way bookworm expects without the usrmerge package (which pulls in perl).
    "variant": "essential",
    "include": ["python3", "python3-venv"],
    "hooks": ["/usr/share/mmdebstrap/hooks/merged-usr"],
    "dpkgopt": [
        "path-exclude=/usr/share/man/*",
        "path-exclude=/usr/share/info/*",
        "path-exclude=/usr/share/locale/*",
        "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright",
    ],
    "sources": [
        f"deb {DEBIAN_MIRROR} bookworm main",
        f"deb {DEBIAN_MIRROR} bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ],
}


def _log(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("SLOSCALE_CACHE", Path.home() / ".cache" / "sloscale"))


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def image_ref() -> str:
    return f"{NAME}:{version()}"


def archive_path() -> Path:
    return OUT / f"sloscale-{version()}.oci.tar"


def built_image_id() -> str | None:
    """The ID `make image` last built from this clone, or None."""
    path = OUT / "image-id"
    return path.read_text().strip() if path.exists() else None


def podman(*args: str, capture: bool = False) -> str:
    result = subprocess.run(["podman", *args], check=True, text=True,
                            stdout=subprocess.PIPE if capture else sys.stderr)
    return result.stdout.strip() if capture else ""


def run_flags() -> tuple[str, ...]:
    """What every `podman run` of this image needs on these machines."""
    return (*RUNTIME, *ULIMITS)


def _pip_cert() -> str | None:
    """The CA bundle pip is configured with (a TLS-inspecting proxy's), if any."""
    cert = os.environ.get("PIP_CERT")
    if not cert:
        found = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.cert"],
                               capture_output=True, text=True, check=False)
        cert = found.stdout.strip() if found.returncode == 0 else None
    return cert if cert and Path(cert).is_file() else None


def ensure_tools() -> None:
    """apt-get install podman, runc and mmdebstrap where any is missing (root or sudo)."""
    missing = [package for command, package in TOOLS.items() if shutil.which(command) is None]
    if not missing:
        return
    _log(f"installing {' '.join(missing)} (Debian packages)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, stdout=sys.stderr)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    *missing], check=True, stdout=sys.stderr,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def base_recipe(extra: tuple[str, ...] = ()) -> dict:
    """BASE_RECIPE with `extra` Debian packages included (another image's base)."""
    return {**BASE_RECIPE, "include": [*BASE_RECIPE["include"], *extra]}


def base_key(extra: tuple[str, ...] = ()) -> str:
    recipe = base_recipe(extra)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def _mmdebstrap(tarball: Path, recipe: dict) -> None:
    partial = tarball.with_name(tarball.name + ".partial")
    command = ["mmdebstrap", f"--variant={recipe['variant']}",
               f"--include={','.join(recipe['include'])}",
               *(f"--hook-dir={hook}" for hook in recipe["hooks"]),
               *(f"--dpkgopt={option}" for option in recipe["dpkgopt"]),
               "--format=tar", recipe["suite"], str(partial), *recipe["sources"]]
    # Without a terminal mmdebstrap would read apt sources from stdin: give it none.
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    os.replace(partial, tarball)


def ensure_base(extra: tuple[str, ...] = ()) -> str:
    """The base image's name, importing (and first building) it only when missing; `extra`
    Debian packages make another base beside it (the real node's Triton image)."""
    recipe, key = base_recipe(extra), base_key(extra)
    ref = f"{NAME}-base:{key}"
    if subprocess.run(["podman", "image", "exists", ref]).returncode == 0:
        return ref
    tarball = cache_dir() / f"image-base-{key}.tar"
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with open(tarball.parent / ".image-base.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # worktrees and CI may race to build the same base
        if not tarball.exists():
            _log(f"building the base from Debian packages (mmdebstrap {recipe['suite']}, "
                 f"{', '.join(recipe['include'])}; about a minute) into {tarball}")
            started = time.monotonic()
            _mmdebstrap(tarball, recipe)
            _log(f"base built in {time.monotonic() - started:.0f}s, "
                 f"{tarball.stat().st_size / 2**20:.0f} MiB")
        if subprocess.run(["podman", "image", "exists", ref]).returncode != 0:
            _log(f"importing {tarball.name} as {ref}")
            podman("import", "--quiet", str(tarball), ref, capture=True)
    return ref


def build() -> str:
    """Build (layers reused) and tag the image, record its ID, save the archive; the ID."""
    ensure_tools()
    base = ensure_base()
    started = time.monotonic()
    OUT.mkdir(exist_ok=True)
    log = OUT / "image-build.log"
    _log(f"building {image_ref()} on {base} (log: {log.relative_to(ROOT)})")
    iidfile = OUT / "image-id.partial"
    # Host network: pip reaches PyPI without a container network to set up; through the
    # same proxy as here, trusting what pip trusts here (a build secret: not in the image).
    cert = _pip_cert()
    secret = ("--secret", f"id=pip-cert,src={cert}") if cert else ()
    with log.open("w") as output:
        built = subprocess.run(
            ["podman", "build", *RUNTIME, *ULIMITS, "--network", "host", "--layers", *secret,
             "--build-arg", f"BASE={base}", "--build-arg", f"VERSION={version()}",
             "--iidfile", str(iidfile), "--tag", image_ref(), str(ROOT)],
            stdout=output, stderr=subprocess.STDOUT, check=False)
    if built.returncode != 0:
        print("\n".join(log.read_text().splitlines()[-40:]), file=sys.stderr)
        raise SystemExit(f"[image] podman build failed (exit {built.returncode}); "
                         f"the whole log: {log}")
    image_id = iidfile.read_text().strip().removeprefix("sha256:")
    _log(f"built in {time.monotonic() - started:.0f}s: {image_ref()} ({image_id[:12]})")
    if built_image_id() != image_id or not archive_path().exists():
        _save(image_id)
    os.replace(iidfile, OUT / "image-id")  # only now: the archive holds this image
    _report(image_id)
    return image_id


def _save(image_id: str) -> None:
    """The OCI archive, saved by name (so that `podman load` tags it) but checked by ID."""
    partial = archive_path().with_name(archive_path().name + ".partial")
    partial.unlink(missing_ok=True)
    podman("save", "--quiet", "--format", "oci-archive", "--output", str(partial), image_ref())
    with tarfile.open(partial) as archive:
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(archive.extractfile(  # type: ignore[arg-type]
            "blobs/sha256/" + index["manifests"][0]["digest"].removeprefix("sha256:")))
    if manifest["config"]["digest"] != f"sha256:{image_id}":
        partial.unlink()
        raise SystemExit(f"{image_ref()} was re-tagged while saving it (another clone's "
                         "`make image`?): run `make image` again")
    os.replace(partial, archive_path())


def _report(image_id: str) -> None:
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image_id, capture=True))
    layers = json.loads(podman("history", "--format", "json", image_id, capture=True))
    _log(f"{image_ref()}: {size / 2**20:.0f} MiB unpacked; its layers, newest first:")
    for layer in layers:
        if layer["size"]:
            _log(f"  {layer['size'] / 2**20:7.1f} MiB  {layer['CreatedBy'][:80]}")
    archive = archive_path()
    _log(f"saved {archive.relative_to(ROOT)} ({archive.stat().st_size / 2**20:.0f} MiB, "
         "OCI archive); push it with:")
    _log(f"  podman push --digestfile out/digest {image_ref()} REGISTRY/sloscale:{version()}")
    _log(f"  (or skopeo copy oci-archive:{archive.relative_to(ROOT)} "
         f"docker://REGISTRY/sloscale:{version()})")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "build"
    if command == "build":
        print(build())
    elif command == "tools":
        ensure_tools()
    elif command == "ref":
        print(image_ref())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
