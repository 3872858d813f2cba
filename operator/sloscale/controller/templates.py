"""Picks the child template set `sloscale run` was pointed at: shipped, directory or ConfigMap."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sloscale.render.contract import (
    load_directory_templates,
    load_package_templates,
    load_templates,
)
from sloscale.render.templates import TemplateError, TemplateSet

# (namespace, name) -> the ConfigMap's data
ReadConfigMap = Callable[[str, str], dict[str, str]]


def load_configured_templates(directory: Path | None, configmap: str | None,
                              read_configmap: ReadConfigMap) -> TemplateSet:
    if directory is not None and configmap is not None:
        raise TemplateError("--templates and --templates-configmap exclude each other")
    if directory is not None:
        return load_directory_templates(directory)
    if configmap is not None:
        namespace, _, name = configmap.partition("/")
        if not namespace or not name:
            raise TemplateError(f"--templates-configmap {configmap}: expected NAMESPACE/NAME")
        return load_templates(read_configmap(namespace, name), f"configmap/{configmap}")
    return load_package_templates()
