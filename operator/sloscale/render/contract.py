"""The template contract, checked when a template set is loaded (shipped, directory, ConfigMap).

Inputs: the values of `sloscale.render.values.build_values`. Outputs: one mapping per
template with apiVersion, kind, metadata.name and the InferenceService's namespace;
deployment.yaml.j2 and service.yaml.j2 are required, the Deployment's pods carry the
selector labels. Every user value must go through `tojson`: a sample spec full of hostile
strings must render to the same structure as a plain one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sloscale.api.spec import InferenceServiceSpec, parse_spec
from sloscale.render.renderer import Manifest, render_children
from sloscale.render.templates import (
    TemplateError,
    TemplateSet,
    compile_templates,
    directory_sources,
    package_sources,
)
from sloscale.render.values import RenderOptions

# YAML's structural characters, a document marker, a tag, an anchor, a line separator.
HOSTILE = 'a"\n  injected: {x: 1}\n- ]\n--- !!python/object &a *a # \u2028 \\'


def sample_spec(text: str) -> InferenceServiceSpec:
    """A spec that exercises every template branch, with `text` in every free string.

    Built past validation on purpose: templates must keep their structure even for a value
    the schema would refuse (an object that skipped admission, a schema relaxed later).
    """
    plain = parse_spec({
        "model": {"name": "sample", "storageUri": "s3://bucket/path", "format": "onnx",
                  "credentialsSecretName": "sample"},
        "runtime": {"resources": {"limits": {"nvidia.com/gpu": 1}}},
        "replicas": 3,
    })
    model = replace(plain.model, credentials_secret_name=text)
    runtime = replace(
        plain.runtime, image=text, args=[text, text], priority_class_name=text,
        env=[{"name": "SAMPLE", "value": text}], node_selector={"pool": text},
        pod_labels={"team": text}, pod_annotations={"note": text},
        tolerations=[{"key": "team", "operator": "Equal", "value": text}],
        affinity={"nodeAffinity": {"note": text}},
    )
    return replace(plain, model=model, runtime=runtime)


def shape(value: Any) -> Any:
    """The structure with every string replaced by a marker: what hostile text must not move."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return "<str>" if isinstance(value, str) else value


def render_sample(templates: TemplateSet, text: str, name: str = "sample") -> list[Manifest]:
    options = RenderOptions(servicemonitor=True)
    return render_children(name, "sample-ns", "0000", sample_spec(text), templates, options)


def check_contract(templates: TemplateSet) -> None:
    """Raise TemplateError when the set breaks the contract."""
    plain = render_sample(templates, "plain")
    try:
        hostile = render_sample(templates, HOSTILE, HOSTILE)
    except TemplateError as error:
        raise TemplateError(f"{error}; it rendered with plain values but not with a hostile "
                            "value: pass every value through `| tojson`") from error
    for before, after in zip(plain, hostile, strict=True):
        if shape(before) != shape(after):
            raise TemplateError(
                f"{templates.origin}: rendering {before['kind']} changed structure with a "
                "hostile value: pass every value through `| tojson`"
            )


def load_templates(sources: dict[str, str], origin: str) -> TemplateSet:
    templates = compile_templates(sources, origin)
    check_contract(templates)
    return templates


def load_package_templates() -> TemplateSet:
    return load_templates(package_sources(), "sloscale/render/templates")


def load_directory_templates(path: Path) -> TemplateSet:
    return load_templates(directory_sources(path), str(path))
