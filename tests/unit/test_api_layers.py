"""Layering: api/ and render/ stay pure (no kopf, no Kubernetes client, no controller)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "sloscale"
FORBIDDEN = ("kopf", "kubernetes", "sloscale.controller", "aiohttp", "requests")
PURE_MODULES = sorted([*PACKAGE.glob("api/*.py"), *PACKAGE.glob("render/*.py")])


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE_MODULES, ids=[p.stem for p in PURE_MODULES])
def test_pure_layers_import_no_adapters(path: Path) -> None:
    bad = {name for name in imported(path) if name.split(".")[0] in FORBIDDEN
           or name.startswith(FORBIDDEN)}
    assert bad == set(), f"{path.name} imports {bad}"


def test_there_are_pure_modules_to_check() -> None:
    assert len(PURE_MODULES) >= 10
