"""`python -m hack.localcluster build|up|down|status`: the Makefile's entry point."""

from __future__ import annotations

import argparse
import sys

from . import build
from .errors import StepFailed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.localcluster")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or reuse) the pinned binaries and print their folder")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(build.ensure_binaries())
    except StepFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
