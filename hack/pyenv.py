"""Create (once) the Python environment for sloscale's dependencies and print its path.

The environment lives outside the clone, keyed by a hash of the dependency lists in
pyproject.toml, so that CI's fresh clones and later sessions reuse a multi-GiB install
(torch) instead of repeating it. Only the dependencies are installed there: the Makefile
puts the clone's own source first on PYTHONPATH, so every clone runs its own code.

Usage: python3 hack/pyenv.py path | ensure
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("dev", "runtime")


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    reqs = list(project["dependencies"])
    for extra in EXTRAS:
        reqs += optional.get(extra, [])
    return reqs


def venv_path() -> Path:
    cache = Path(os.environ.get("SLOSCALE_CACHE", Path.home() / ".cache" / "sloscale"))
    key = json.dumps([sys.version_info[:2], sorted(requirements())]).encode()
    digest = hashlib.sha256(key).hexdigest()[:12]
    return cache / f"venv-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"


def ensure() -> Path:
    path = venv_path()
    marker = path / ".complete"
    if marker.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # worktrees and CI may race to build the same one
        if marker.exists():
            return path
        print(
            f"[venv] installing dependencies into {path} (torch is large: minutes)",
            file=sys.stderr,
            flush=True,
        )
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        pip = [str(path / "bin" / "python"), "-m", "pip"]
        # stdout of `ensure` is the venv's path; pip's progress goes to the terminal.
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True, stdout=sys.stderr)
        subprocess.run(
            [*pip, "install", "--progress-bar", "on", *requirements()],
            check=True,
            stdout=sys.stderr,
        )
        marker.write_text("\n".join(requirements()))
    return path


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "path"
    if command not in ("path", "ensure"):
        sys.exit("usage: python3 hack/pyenv.py path|ensure")
    print(ensure() if command == "ensure" else venv_path())
