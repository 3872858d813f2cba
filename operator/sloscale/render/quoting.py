"""The `tojson` filter: a value as JSON-shaped flow YAML that PyYAML reads back exactly.

Every user value enters a template through this filter, so no string can add keys, lines or
documents. Strings are double-quoted; anything outside printable ASCII is written as a
\\UXXXXXXXX escape, which YAML (unlike JSON's \\u pairs) maps to one code point.
"""

from __future__ import annotations

from typing import Any

import jinja2

from sloscale.flowyaml import flow_yaml


def _strict(value: Any) -> None:
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable


def tojson(value: Any) -> str:
    """Flow YAML for JSON-safe data: dict, list, str, int, float, bool, None."""
    return flow_yaml(value, _strict)
