"""Property: hostile strings in any user field never change the rendered structure."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sloscale.render.contract import render_sample, shape
from sloscale.render.quoting import tojson
from sloscale.render.templates import compile_templates, package_sources
from tests.spec_strategies import HOSTILE

TEMPLATES = compile_templates(package_sources(), "package")
PLAIN_SHAPE = [shape(m) for m in render_sample(TEMPLATES, "plain")]

def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


@settings(max_examples=150, deadline=None)
@given(HOSTILE, HOSTILE)
def test_hostile_text_keeps_structure_and_survives_intact(text: str, name: str) -> None:
    rendered = render_sample(TEMPLATES, text, name)
    assert [shape(m) for m in rendered] == PLAIN_SHAPE
    leaves = [s for m in rendered for s in strings(m)]
    # empty text is "unset" and may drop a field, hence .filter(bool) above
    # image, two args, env value, node selector, toleration, affinity, priority class, secret,
    # pod label, pod annotation
    assert leaves.count(text) >= 11
    assert name in leaves


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | HOSTILE,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(HOSTILE, inner, max_size=4), max_leaves=12))
def test_tojson_round_trips_through_yaml(value: Any) -> None:
    assert yaml.safe_load(f"key: {tojson(value)}\nafter: 1\n") == {"key": value, "after": 1}
