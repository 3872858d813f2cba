"""Typed InferenceService spec: parsed from an object's raw spec after defaults and validation."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from sloscale.api.schema import NAME_RULE, spec_schema
from sloscale.api.validate import apply_defaults, validate

GPU_RESOURCE = "nvidia.com/gpu"
T = TypeVar("T")


class SpecError(ValueError):
    """The spec is invalid; `problems` name each failing field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ModelSpec:
    name: str
    storage_uri: str
    format: str | None = None
    version: str | None = None
    credentials_secret_name: str | None = None


@dataclass(frozen=True)
class RuntimeSpec:
    image: str
    shm_size: str | int
    startup_s: int
    args: list[str] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: list[dict[str, Any]] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] | None = None
    priority_class_name: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)
    pod_annotations: dict[str, str] = field(default_factory=dict)

    @property
    def gpus(self) -> str | int | None:
        """GPU count from limits, else requests (Kubernetes wants both equal)."""
        limits = self.resources.get("limits", {})
        requests = self.resources.get("requests", {})
        return limits.get(GPU_RESOURCE, requests.get(GPU_RESOURCE))


@dataclass(frozen=True)
class InferenceServiceSpec:
    model: ModelSpec
    runtime: RuntimeSpec
    replicas: int
    # spec.autoscaling as admitted (defaults filled in). The autoscaler types it once
    # (autoscale/config.py: parse_autoscaling); the renderer reads only these two fields.
    autoscaling: dict[str, Any]

    @property
    def autoscaled(self) -> bool:
        return bool(self.autoscaling["enabled"])

    @property
    def min_replicas(self) -> int:
        """The fewest replicas the service runs: the autoscaler's floor, else spec.replicas."""
        return int(self.autoscaling["minReplicas"]) if self.autoscaled else self.replicas


def parse_spec(raw: Any) -> InferenceServiceSpec:
    """Default, validate and type a raw spec; raises SpecError naming every bad field."""
    if not isinstance(raw, dict):
        raise SpecError(["spec: must be an object"])
    schema = spec_schema()
    spec = apply_defaults(schema, raw)
    problems = validate(schema, spec)
    if problems:
        raise SpecError(problems)
    return InferenceServiceSpec(
        model=_model(spec["model"]),
        runtime=_runtime(spec["runtime"]),
        replicas=spec["replicas"],
        autoscaling=spec["autoscaling"],
    )


def parse_object(body: dict[str, Any]) -> InferenceServiceSpec:
    """parse_spec, plus the object-level rules (the name becomes the Service's)."""
    if not NAME_RULE.check(body):
        raise SpecError([f"metadata.name: {NAME_RULE.message}"])
    return parse_spec(body.get("spec"))


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _typed(cls: type[T], source: dict[str, Any]) -> T:
    """Build a spec dataclass from its camelCase fields (`startup_s` reads startupSeconds)."""
    values = {}
    for item in fields(cls):  # type: ignore[arg-type]
        key = _camel(item.name.removesuffix("_s") + "_seconds") if item.name.endswith("_s") \
            else _camel(item.name)
        if key in source:
            values[item.name] = copy.copy(source[key])
    return cls(**values)


def _model(raw: dict[str, Any]) -> ModelSpec:
    return _typed(ModelSpec, raw)


def _runtime(raw: dict[str, Any]) -> RuntimeSpec:
    return _typed(RuntimeSpec, raw)
