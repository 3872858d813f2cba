"""Create (once) the Python environment for sloscale's dependencies and print its path.

The environment lives outside the clone, keyed by a hash of the dependency lists in
pyproject.toml, so that CI's fresh clones and later sessions reuse a multi-GiB install
(torch) instead of repeating it. Only the dependencies are installed there: the Makefile
puts the clone's own source first on PYTHONPATH, so every clone runs its own code.

Heavy command-line tools that pin their own libraries (checkov) get a venv of their own,
keyed by the tool's pinned version, so they never touch the project's dependencies.

Usage: python3 hack/pyenv.py path | ensure | tool NAME
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
EXTRAS = ("dev", "runtime", "sim")
# Tools kept out of the project's venv: name -> the pinned requirement.
TOOLS = {"checkov": "checkov==3.3.30"}


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    reqs = list(project["dependencies"])
    for extra in EXTRAS:
        reqs += optional.get(extra, [])
    return reqs


def cache_dir() -> Path:
    return Path(os.environ.get("SLOSCALE_CACHE", Path.home() / ".cache" / "sloscale"))


def venv_path() -> Path:
    key = json.dumps([sys.version_info[:2], sorted(requirements())]).encode()
    digest = hashlib.sha256(key).hexdigest()[:12]
    return cache_dir() / f"venv-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"


def tool_path(name: str) -> Path:
    version = TOOLS[name].split("==", 1)[1]
    return cache_dir() / f"tool-{name}-{version}-py{sys.version_info[0]}{sys.version_info[1]}"


def _create(path: Path, reqs: list[str], what: str) -> Path:
    """A venv at `path` with `reqs` installed, once: a marker file says it is complete."""
    marker = path / ".complete"
    if marker.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # worktrees and CI may race to build the same one
        if marker.exists():
            return path
        print(f"[venv] installing {what} into {path}", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        pip = [str(path / "bin" / "python"), "-m", "pip"]
        # stdout of `ensure` is the venv's path; pip's progress goes to the terminal.
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True, stdout=sys.stderr)
        subprocess.run(
            [*pip, "install", "--progress-bar", "on", *reqs], check=True, stdout=sys.stderr
        )
        marker.write_text("\n".join(reqs))
    return path


def ensure() -> Path:
    return _create(venv_path(), requirements(), "dependencies (torch is large: minutes)")


def ensure_tool(name: str) -> Path:
    return _create(tool_path(name), [TOOLS[name]], TOOLS[name])


if __name__ == "__main__":
    command = sys.argv[1:] or ["path"]
    if command[0] == "tool" and len(command) == 2 and command[1] in TOOLS:
        print(ensure_tool(command[1]))
    elif command in (["path"], ["ensure"]):
        print(ensure() if command == ["ensure"] else venv_path())
    else:
        sys.exit(f"usage: python3 hack/pyenv.py path|ensure|tool {{{','.join(TOOLS)}}}")
