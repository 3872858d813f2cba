"""Values as JSON-shaped flow YAML that PyYAML and the API server read back exactly.

Strings are double-quoted; anything outside printable ASCII is written as a \\UXXXXXXXX
escape, which YAML (unlike JSON's \\u pairs) maps to one code point. The renderer's filter
and the server-side apply bodies both write with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


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


def flow_yaml(value: Any, inspect: Callable[[Any], None] | None = None) -> str:
    """Flow YAML for JSON-safe data: dict, list, str, int, float, bool, None.

    `inspect` sees every value first (the renderer makes Jinja's undefined values raise).
    """
    if inspect is not None:
        inspect(value)
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
        items = (f"{quote_string(str(key))}: {flow_yaml(item, inspect)}"
                 for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow_yaml(item, inspect) for item in value) + "]"
    raise TypeError(f"cannot render a value of type {type(value).__name__}")
