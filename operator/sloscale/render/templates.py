"""Loads child templates (shipped, a directory or a ConfigMap's data) into a sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sloscale.render.quoting import tojson

SUFFIX = ".yaml.j2"
DEPLOYMENT = "deployment.yaml.j2"
SERVICE = "service.yaml.j2"
PDB = "poddisruptionbudget.yaml.j2"
SERVICEMONITOR = "servicemonitor.yaml.j2"
REQUIRED = (DEPLOYMENT, SERVICE)


class TemplateError(ValueError):
    """A template set breaks the contract; the message names the template and the problem."""


@dataclass(frozen=True)
class TemplateSet:
    origin: str
    environment: jinja2.Environment
    names: tuple[str, ...]


def _environment(sources: dict[str, str]) -> jinja2.Environment:
    # Sandboxed: templates from a user's ConfigMap must not reach Python internals.
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.DictLoader(sources),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = tojson
    return env


def compile_templates(sources: dict[str, str], origin: str) -> TemplateSet:
    """Parse every *.yaml.j2 source; raise TemplateError naming a missing or broken one."""
    names = tuple(sorted(name for name in sources if name.endswith(SUFFIX)))
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise TemplateError(f"{origin}: missing required template(s) {', '.join(missing)}")
    env = _environment({name: sources[name] for name in names})
    for name in names:
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(f"{origin}/{name}:{error.lineno}: {error.message}") from error
    return TemplateSet(origin=origin, environment=env, names=names)


def package_sources() -> dict[str, str]:
    folder = resources.files("sloscale.render") / "templates"
    return {item.name: item.read_text() for item in folder.iterdir() if item.name.endswith(SUFFIX)}


def directory_sources(path: Path) -> dict[str, str]:
    if not path.is_dir():
        raise TemplateError(f"{path}: template directory does not exist")
    return {item.name: item.read_text() for item in sorted(path.glob(f"*{SUFFIX}"))}
