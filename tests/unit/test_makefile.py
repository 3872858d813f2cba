"""`make help` lists the entry points a user and CI need, each with its one-line help."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WANTED = (
    "install",
    "test",
    "demo",
    "lint",
    "bench",
    "cluster-up",
    "cluster-down",
    "crds",
    "chart",
    "docs",
)


def test_every_entry_point_has_a_help_line() -> None:
    text = (ROOT / "Makefile").read_text()
    helped = set(re.findall(r"^([a-zA-Z0-9_-]+):.*## \S", text, re.MULTILINE))
    assert set(WANTED) - helped == set()
