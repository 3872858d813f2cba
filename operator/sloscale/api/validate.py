"""Applies the schema's defaults and checks an object against it, naming the failing field.

The API server does the same at admission; the operator repeats it so that an object that
skipped admission becomes a False condition, never a crash.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from sloscale.api.openapi import RULES_KEY, Schema

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Return a copy of value with every absent defaulted field filled, depth first."""
    value = copy.deepcopy(value)
    _fill(schema, value)
    return value


def _fill(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                _fill(prop, value[name])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _fill(schema["items"], item)


def validate(schema: Schema, value: Any, path: str = "spec") -> list[str]:
    """Every problem found, each as 'field.path: what is wrong'. Empty means valid."""
    problems = _check_type(schema, value, path)
    if problems:
        return problems
    problems += _check_scalar(schema, value, path)
    if isinstance(value, dict):
        problems += _check_object(schema, value, path)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += validate(schema["items"], item, f"{path}[{index}]")
    return problems


def _check_type(schema: Schema, value: Any, path: str) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: must be an integer or a string"]
    expected = schema.get("type")
    if expected is None:
        return []
    ok = isinstance(value, _TYPES[expected])
    if expected in ("integer", "number") and isinstance(value, bool):
        ok = False
    if isinstance(value, float) and not math.isfinite(value):
        ok = False  # JSON has no NaN or infinity: such a value never came from the API
    return [] if ok else [f"{path}: must be of type {expected}"]


def _check_scalar(schema: Schema, value: Any, path: str) -> list[str]:
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, (int, float)) and "minimum" in schema:
        low = schema["minimum"]
        if value < low or (schema.get("exclusiveMinimum") and value == low):
            relation = "greater than" if schema.get("exclusiveMinimum") else "at least"
            problems.append(f"{path}: must be {relation} {low}")
    if isinstance(value, (int, float)) and value > schema.get("maximum", value):
        problems.append(f"{path}: must be at most {schema['maximum']}")
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            problems.append(f"{path}: longer than {schema['maxLength']} characters")
        # fullmatch: `$` in re also matches before a final newline, in RE2 and Go it does not
        if "pattern" in schema and re.fullmatch(schema["pattern"], value) is None:
            problems.append(f"{path}: does not match {schema['pattern']}")
    if isinstance(value, list) and len(value) > schema.get("maxItems", len(value)):
        problems.append(f"{path}: more than {schema['maxItems']} items")
    if isinstance(value, dict) and len(value) > schema.get("maxProperties", len(value)):
        problems.append(f"{path}: more than {schema['maxProperties']} entries")
    return problems


def _check_object(schema: Schema, value: dict[str, Any], path: str) -> list[str]:
    problems = [f"{path}.{name}: required" for name in schema.get("required", ())
                if name not in value]
    extra_schema = schema.get("additionalProperties")
    for name, item in value.items():
        prop = schema.get("properties", {}).get(name, extra_schema)
        if prop is not None:
            problems += validate(prop, item, f"{path}.{name}")
    if problems:
        return problems  # rules assume well-typed fields
    for rule in schema.get(RULES_KEY, ()):
        if not rule.check(value):
            problems.append(f"{path}{rule.field_path or ''}: {rule.message}")
    return problems
