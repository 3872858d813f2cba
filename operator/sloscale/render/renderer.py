"""Renders an InferenceService's children from a template set: pure, data in, dicts out."""

from __future__ import annotations

from typing import Any

import jinja2
import yaml

from sloscale.api import API_VERSION, KIND
from sloscale.api.spec import InferenceServiceSpec
from sloscale.render.templates import (
    DEPLOYMENT,
    PDB,
    SERVICEMONITOR,
    TemplateError,
    TemplateSet,
)
from sloscale.render.values import RenderOptions, build_values, wants_pdb

Manifest = dict[str, Any]
# libyaml's safe loader where PyYAML was built with it: the pure-Python one was most of the
# operator's CPU once every child event renders for its drift check.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def render_template(templates: TemplateSet, name: str, values: dict[str, Any]) -> Manifest:
    """One template to one manifest; TemplateError names the template on any failure."""
    where = f"{templates.origin}/{name}"
    try:
        text = templates.environment.get_template(name).render(**values)
        manifest = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except (jinja2.TemplateError, yaml.YAMLError, TypeError, ValueError) as error:
        raise TemplateError(f"{where}: {error}") from error
    if not isinstance(manifest, dict):
        raise TemplateError(f"{where}: must render one mapping, got {type(manifest).__name__}")
    for field in ("apiVersion", "kind"):
        if not isinstance(manifest.get(field), str):
            raise TemplateError(f"{where}: output lacks {field}")
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise TemplateError(f"{where}: output lacks metadata.name")
    if metadata.get("namespace") != values["namespace"]:
        raise TemplateError(f"{where}: metadata.namespace must be the InferenceService's")
    return manifest


def selected_templates(templates: TemplateSet, spec: InferenceServiceSpec,
                       options: RenderOptions) -> list[str]:
    """Which templates apply: optional ones by condition, extra user templates always."""
    skip = set()
    if not wants_pdb(spec):
        skip.add(PDB)
    if not options.servicemonitor:
        skip.add(SERVICEMONITOR)
    return [name for name in templates.names if name not in skip]


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "name": name, "uid": uid,
            "controller": True, "blockOwnerDeletion": True}


def render_children(
    name: str, namespace: str, uid: str, spec: InferenceServiceSpec,
    templates: TemplateSet, options: RenderOptions,
) -> list[Manifest]:
    """Every child manifest, each owned by the InferenceService."""
    values = build_values(name, namespace, spec, options)
    children = {}
    for template in selected_templates(templates, spec, options):
        manifest = render_template(templates, template, values)
        manifest["metadata"]["ownerReferences"] = [owner_reference(name, uid)]
        children[template] = manifest
    _check_deployment(f"{templates.origin}/{DEPLOYMENT}", children[DEPLOYMENT], values)
    return list(children.values())


def _check_deployment(where: str, deployment: Manifest, values: dict[str, Any]) -> None:
    """The contract: a Deployment whose pods carry the selector labels."""
    if deployment.get("kind") != "Deployment":
        raise TemplateError(f"{where}: must render a Deployment")
    pod_labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get(
        "labels", {})
    if not isinstance(pod_labels, dict) or any(
        pod_labels.get(key) != value for key, value in values["selector"].items()
    ):
        raise TemplateError(f"{where}: pod labels must include {values['selector']}")
