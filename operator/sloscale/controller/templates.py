"""Picks the child template set `sloscale run` was pointed at: shipped, directory or ConfigMap."""

from __future__ import annotations

from pathlib import Path

from sloscale.controller.kube import Kube
from sloscale.render.contract import (
    load_directory_templates,
    load_package_templates,
    load_templates,
)
from sloscale.render.templates import TemplateError, TemplateSet


def load_configured_templates(kube: Kube, directory: Path | None,
                              configmap: str | None) -> TemplateSet:
    if directory is not None and configmap is not None:
        raise TemplateError("--templates and --templates-configmap exclude each other")
    if directory is not None:
        return load_directory_templates(directory)
    if configmap is not None:
        namespace, _, name = configmap.partition("/")
        if not name:
            raise TemplateError(f"--templates-configmap {configmap}: expected NAMESPACE/NAME")
        return load_templates(kube.config_map_data(namespace, name), f"configmap/{configmap}")
    return load_package_templates()
