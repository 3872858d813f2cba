"""The bad-input corpus: one hostile InferenceService per file, its expected outcome on top.

Each file opens with comment lines:
  # <why it is bad>
  # expect: rejected <field path the API server's message names>
  # expect: accepted <condition reason of Ready, or Ready when it must serve>
  # expect: pruned <field path>   (strict field validation names it; without it, it is dropped)
  # fill: <dotted.path> <n>       (optional: that string becomes n characters, too big to keep)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OUTCOMES = ("rejected", "accepted", "pruned")
_EXPECT = re.compile(r"^# expect: (rejected|accepted|pruned) (\S+)$", re.MULTILINE)
_FILL = re.compile(r"^# fill: (\S+) ([0-9]+)$", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    name: str
    outcome: str
    detail: str  # a field path, or the Ready condition's reason
    manifest: dict[str, Any]


def _fill(manifest: dict[str, Any], dotted: str, length: int) -> None:
    *parents, last = dotted.split(".")
    node: Any = manifest
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    node[key] = "x" * length


def load(path: Path) -> Entry:
    text = path.read_text()
    expect = _EXPECT.search(text)
    if expect is None:
        raise ValueError(f"{path.name}: no '# expect: <outcome> <detail>' line")
    manifest = yaml.safe_load(text)
    if not isinstance(manifest, dict):
        raise ValueError(f"{path.name}: not one mapping")
    for dotted, length in _FILL.findall(text):
        _fill(manifest, dotted, int(length))
    return Entry(path.stem, expect.group(1), expect.group(2), manifest)


def entries() -> list[Entry]:
    return [load(path) for path in sorted(HERE.glob("*.yaml"))]
