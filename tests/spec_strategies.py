"""Hypothesis strategies for InferenceService specs: valid by construction, mutated, hostile."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Weighted towards YAML and Jinja syntax so that most examples try to break out.
YAML_BITS = st.sampled_from(['"', "'", "\n", ": ", "- ", "{", "}", "[", "]", "#", "&a", "*a",
                             "!!python/object", "---", "...", "\\", "\u2028", "\x85", "\t",
                             "%YAML", "|", ">", "\r\n", "\ufeff", "\x00", "{{ x }}", "{% if %}",
                             "$(rm -rf /)", "`id`", "\U0001F600", "\u202e"])
HOSTILE = st.lists(st.one_of(YAML_BITS, st.text(max_size=8)), max_size=12).map("".join).filter(bool)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)

LABELISH = st.text("abcXYZ019-_.", max_size=70)  # often a valid label value, sometimes not
DNS = st.from_regex(r"[a-z]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
QUANTITY = st.sampled_from(["100m", "1", "2Gi", "512Mi", "0", "1.5", "1e3", "-1", "lots", 2, 0])
DURATION = st.sampled_from(["15s", "1m", "30s", "1h", "0s", "500ms", "2h", "15 s", "25h"])


def runtime(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "args": st.lists(text, max_size=3),
        "env": st.lists(st.fixed_dictionaries({"name": st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}",
                                                                      fullmatch=True),
                                               "value": text}), max_size=2,
                        unique_by=lambda env: env["name"]),
        "podAnnotations": st.dictionaries(st.sampled_from(["note", "example.com/x"]), text,
                                          max_size=2),
        "podLabels": st.dictionaries(st.sampled_from(["team", "example.com/tier"]), LABELISH,
                                     max_size=2),
        "nodeSelector": st.dictionaries(st.just("pool"), LABELISH, max_size=1),
        "resources": st.fixed_dictionaries({"requests": st.dictionaries(
            st.sampled_from(["cpu", "memory", "nvidia.com/gpu"]), QUANTITY, max_size=3)}),
        "tolerations": st.lists(st.fixed_dictionaries(
            {"key": st.sampled_from(["", "pool", "a/b"]),
             "operator": st.sampled_from(["Exists", "Equal"])},
            optional={"value": LABELISH, "effect": st.sampled_from(["NoSchedule", "NoExecute"])}),
            max_size=1),
        "priorityClassName": DNS,
        "shmSize": QUANTITY,
        "startupSeconds": st.integers(0, 30000),
    })


def autoscaling() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"enabled": st.booleans()}, optional={
        "minReplicas": st.integers(-1, 1100), "maxReplicas": st.integers(0, 1100),
        "objective": st.fixed_dictionaries(
            {"targetMs": st.floats(-1, 700_000, allow_nan=False)},
            optional={"window": DURATION, "latency": st.sampled_from(["p95", "p99", "p50"])}),
        "interval": DURATION,
        "policy": st.sampled_from(["slo", "hpa", "keda", "kpa"]),
    })


def specs(text: st.SearchStrategy[str] = HOSTILE) -> st.SearchStrategy[dict[str, Any]]:
    """Specs close to valid: most pass validation, the rest break one of its bounds."""
    model = st.fixed_dictionaries({
        "name": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True),
        "storageUri": st.sampled_from(["s3://bucket/m", "gs://b/x/y", "pvc://claim/sub",
                                       "https://h.example/m.tgz", "pvc://claim", "file:///x"]),
    }, optional={"version": text, "format": st.sampled_from(["onnx", "python", "caffe"])})
    return st.fixed_dictionaries({"model": model}, optional={
        "runtime": runtime(text), "replicas": st.integers(-1, 1100),
        "autoscaling": autoscaling()})


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    """A generated spec with one subtree replaced by arbitrary JSON, dropped, or an extra key."""
    spec = draw(specs())
    path = draw(st.sampled_from(_paths(spec)))
    if not path:
        return draw(JSON)
    parent: Any = spec
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "drop", "extra"]))
    if action == "drop":
        parent.pop(path[-1])
    elif action == "extra" and isinstance(parent, dict):
        parent[draw(st.text(max_size=6))] = draw(JSON)
    else:
        parent[path[-1]] = draw(JSON)
    return spec
