"""The `tojson` filter: a value as JSON-shaped flow YAML that PyYAML reads back exactly.

Every user value enters a template through this filter, so no string can add keys, lines or
documents. Strings are double-quoted; anything outside printable ASCII is written as a
\\UXXXXXXXX escape, which YAML (unlike JSON's \\u pairs) maps to one code point.
"""

from __future__ import annotations

import math
from typing import Any

import jinja2


def quote_string(text: str) -> str:
    parts = ['"']
    for char in text:
        if char in '"\\':
            parts.append("\\" + char)
        elif " " <= char <= "~":
            parts.append(char)
        else:
            parts.append(f"\\U{ord(char):08x}")
    parts.append('"')
    return "".join(parts)


def tojson(value: Any) -> str:
    """Flow YAML for JSON-safe data: dict, list, str, int, float, bool, None."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot render the non-finite number {value}")
        return repr(value)
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, dict):
        items = (f"{quote_string(str(key))}: {tojson(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(tojson(item) for item in value) + "]"
    raise TypeError(f"cannot render a value of type {type(value).__name__}")
