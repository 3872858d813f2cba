"""Properties of validation + rendering over generated specs (issue 8).

Any spec either renders or fails validation with problems that name fields, never another
exception; hostile text never changes what is rendered beyond the scalars it was put in.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloscale.api.spec import InferenceServiceSpec, SpecError, parse_spec
from sloscale.render.contract import shape
from sloscale.render.renderer import Manifest, render_children
from sloscale.render.templates import compile_templates, package_sources
from sloscale.render.values import RenderOptions
from tests.spec_strategies import HOSTILE, mutated_specs, specs

TEMPLATES = compile_templates(package_sources(), "package")
OPTIONS = RenderOptions(servicemonitor=True)
BENIGN = "benign-placeholder"
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def render(spec: InferenceServiceSpec, name: str = "svc") -> list[Manifest]:
    return render_children(name, "ns", "0000", spec, TEMPLATES, OPTIONS)


@SETTINGS
@given(st.one_of(specs(), mutated_specs()))
def test_any_spec_renders_or_fails_validation_naming_fields(raw: Any) -> None:
    try:
        spec = parse_spec(raw)
    except SpecError as error:
        assert error.problems and all(p.startswith("spec") and ": " in p
                                      for p in error.problems), error.problems
        return
    children = render(spec)
    assert {child["kind"] for child in children} >= {"Deployment", "Service"}


def leaves(value: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(value, dict):
        return {p: v for key, item in value.items() for p, v in leaves(item, (*path, key)).items()}
    if isinstance(value, list):
        return {p: v for i, item in enumerate(value) for p, v in leaves(item, (*path, i)).items()}
    return {path: value}


def placed(value: Any, text: str) -> Any:
    """`value` with every placeholder string turned into `text`."""
    if isinstance(value, dict):
        return {key: placed(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [placed(item, text) for item in value]
    return text if value == BENIGN else value


def with_text(spec: InferenceServiceSpec, text: str) -> InferenceServiceSpec:
    """`text` where the placeholder was and in labels too: past validation, as templates
    must bear it."""
    runtime = replace(
        spec.runtime, args=placed(spec.runtime.args, text), env=placed(spec.runtime.env, text),
        pod_labels={**spec.runtime.pod_labels, "hostile": text},
        pod_annotations={**placed(spec.runtime.pod_annotations, text), "hostile": text},
        node_selector={**spec.runtime.node_selector, "hostile": text})
    return replace(spec, model=replace(spec.model, version=placed(spec.model.version, text)),
                   runtime=runtime)


def assert_only_placed(benign: list[Manifest], hostile: list[Manifest], text: str) -> None:
    assert [shape(m) for m in benign] == [shape(m) for m in hostile]
    before, after = leaves(benign), leaves(hostile)
    assert before.keys() == after.keys()  # same kinds, same key paths
    for path, value in before.items():
        assert after[path] == (text if value == BENIGN else value), path


@SETTINGS
@given(specs(text=st.just(BENIGN)), HOSTILE)
def test_hostile_text_lands_only_where_it_was_put(raw: Any, text: str) -> None:
    try:
        spec = parse_spec(raw)
    except SpecError:
        return
    benign = render(with_text(spec, BENIGN), BENIGN[:3])
    assert_only_placed(benign, render(with_text(spec, text), BENIGN[:3]), text)


@SETTINGS
@given(specs(text=st.just("plain")), HOSTILE)
def test_hostile_object_name_lands_only_where_it_was_put(raw: Any, name: str) -> None:
    try:
        spec = parse_spec(raw)
    except SpecError:
        return
    assert_only_placed(render(spec, BENIGN), render(spec, name), name)
