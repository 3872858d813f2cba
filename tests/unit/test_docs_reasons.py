"""The README's troubleshooting table names every condition and Event reason the code sets.

The reasons are read from the code itself (its syntax tree), not listed by hand: the string
constants that reach a condition's or Event's reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "sloscale"
SKIP = ("sim", "emulator", "devtools")  # simulators and test tools set no conditions
# Calls whose argument at this position (or keyword) is a reason.
REASON_ARGS = {"Problem": 0, "Condition": 2, "ServiceMetrics": 1, "post": 1, "event": 1}


def constants(node: ast.AST | None, index: int | None = None) -> Iterator[str]:
    """String constants an expression can evaluate to (through `a if c else b` and tuples)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from constants(node.body, index)
        yield from constants(node.orelse, index)
    elif isinstance(node, ast.Tuple) and index is not None and index < len(node.elts):
        yield from constants(node.elts[index])


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def reasons_in(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in REASON_ARGS:
            position = REASON_ARGS[_call_name(node)]
            if position < len(node.args):
                yield from constants(node.args[position])
            for keyword in node.keywords:
                if keyword.arg == "reason":
                    yield from constants(keyword.value)
        elif isinstance(node, ast.Tuple) and len(node.elts) == 4:
            kind, status = node.elts[0], node.elts[1]
            if isinstance(kind, ast.Constant) and not (
                isinstance(status, ast.Constant) and isinstance(status.value, str)
            ):  # (type, status, reason, message): status.py's condition tuples
                yield from constants(node.elts[2])
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                for index, name in enumerate(names):
                    if isinstance(name, ast.Name) and name.id.endswith("reason"):
                        tuple_index = index if isinstance(target, ast.Tuple) else None
                        yield from constants(node.value, tuple_index)


def code_reasons() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if set(path.relative_to(PACKAGE).parts) & set(SKIP):
            continue
        tree = ast.parse(path.read_text())
        found |= {r for r in reasons_in(tree) if r.isidentifier() and r[:1].isupper()}
    return found


def test_reasons_are_found_in_the_code() -> None:
    found = code_reasons()
    # A few the code is known to set, so that a broken reader cannot pass on an empty set.
    assert {
        "SecretNotFound",
        "PrometheusUnavailable",
        "Creating",
        "AllReplicasReady",
        "Unschedulable",
        "Scaled",
        "Created",
    } <= found, found


def test_troubleshooting_names_every_reason() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    missing = sorted(r for r in code_reasons() if f"`{r}`" not in section)
    assert missing == [], f"README Troubleshooting lacks: {missing}"
