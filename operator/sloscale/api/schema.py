"""The InferenceService schema: the one source of truth for the CRD, defaults and validation."""

from __future__ import annotations

import re
from typing import Any

from sloscale.api.openapi import (
    Rule,
    Schema,
    array,
    boolean,
    free_object,
    integer,
    number,
    obj,
    quantity,
    string,
    string_map,
)

DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"
MODEL_FORMATS = ("pytorch", "onnx", "python", "tensorrt")
LATENCY_STATS = ("p95", "p99", "mean")
POLICIES = ("slo", "hpa", "keda", "kpa")
MODES = ("active", "recommend")

# One regular expression serves CEL (RE2) and Python (re): keep it in the common subset.
STORAGE_URI_RE = r"^((s3|gs)://[a-z0-9][a-z0-9.\-_]{1,254}(/.*)?|https://[^/\s]+(/\S*)?|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/\S*)?)$"
DURATION_RE = r"^[0-9]+(ms|s|m|h)$"
MODEL_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


def _has(node: dict[str, Any], key: str) -> bool:
    return node.get(key) is not None


def _min_le_max(node: dict[str, Any]) -> bool:
    low, high = node.get("minReplicas"), node.get("maxReplicas")
    return low is None or high is None or low <= high


def _one_capacity_source(node: dict[str, Any]) -> bool:
    return _has(node, "maxRpsPerReplica") != _has(node, "configMapRef")


def _matches(pattern: str, field: str) -> Rule:
    return Rule(
        cel=f"!has(self.{field}) || self.{field}.matches(r'{pattern}')",
        message=f"{field} has the wrong form",
        check=lambda node: field not in node or re.match(pattern, node[field]) is not None,
        field_path=f".{field}",
    )


STORAGE_URI_RULE = Rule(
    cel=f"self.storageUri.matches(r'{STORAGE_URI_RE}')",
    message="storageUri must start with s3://, gs://, https:// or pvc://<claim> "
    "and name a location",
    check=lambda node: re.match(STORAGE_URI_RE, node.get("storageUri", "")) is not None,
    field_path=".storageUri",
)


# The name becomes the Service's, which must be a DNS-1035 label.
SERVICE_NAME_RE = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
NAME_RULE = Rule(
    cel=f"self.metadata.name.matches(r'{SERVICE_NAME_RE}')",
    message="metadata.name must be a DNS-1035 label (a-z, 0-9, '-', at most 63 characters, "
    "starting with a letter): it names the Service",
    check=lambda node: re.match(SERVICE_NAME_RE, node.get("metadata", {}).get("name", ""))
    is not None,
)


def model_schema() -> Schema:
    return obj(
        "The model Triton serves and where its model repository is fetched from.",
        {
            "name": string(
                "Model name as Triton knows it (the directory in the model repository).",
                pattern=MODEL_NAME_RE,
            ),
            "storageUri": string(
                "Where the Triton model repository lives: s3://bucket/path, gs://bucket/path, "
                "https://host/archive or pvc://claim/path. Fetched by an init container "
                "(pvc:// is mounted read-only instead)."
            ),
            "format": string(
                "Model format, for humans and tooling; Triton reads the backend from "
                "config.pbtxt.",
                enum=list(MODEL_FORMATS),
            ),
            "version": string("Model version to serve; empty serves the versions the "
                              "repository's config.pbtxt selects.", maxLength=64),
            "credentialsSecretName": string(
                "Secret in the same namespace whose keys become environment variables of "
                "the fetching init container (for example AWS_ACCESS_KEY_ID).",
                maxLength=253,
            ),
        },
        required=("name", "storageUri"),
        rules=(STORAGE_URI_RULE,),
    )


def toleration_schema() -> Schema:
    return obj(
        "A Kubernetes toleration.",
        {
            "key": string("Taint key the toleration matches.", maxLength=316),
            "operator": string("Exists or Equal.", enum=["Exists", "Equal"]),
            "value": string("Taint value the toleration matches.", maxLength=253),
            "effect": string(
                "Taint effect to match; empty matches all.",
                enum=["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ),
            "tolerationSeconds": {
                "type": "integer",
                "format": "int64",
                "description": "How long a NoExecute toleration lasts.",
            },
        },
    )


def env_schema() -> Schema:
    return obj(
        "An environment variable of the Triton container.",
        {
            "name": string("Variable name.", maxLength=256),
            "value": string("Literal value."),
            "valueFrom": free_object("Source for the value (a Kubernetes EnvVarSource)."),
        },
        required=("name",),
    )


def resources_schema() -> Schema:
    quantities = {
        "type": "object",
        "additionalProperties": quantity("A resource quantity."),
        "maxProperties": 32,
    }
    return obj(
        "Compute resources of the Triton container, including nvidia.com/gpu. A GPU "
        "count in requests or limits is set in both, as Kubernetes requires for GPUs.",
        {
            "requests": {**quantities,
                         "description": "Minimum resources the pod is scheduled with."},
            "limits": {**quantities, "description": "Maximum resources the container may use."},
        },
    )


def runtime_schema() -> Schema:
    return obj(
        "How the Triton server pods run.",
        {
            "image": string("Triton server image.", default=DEFAULT_IMAGE),
            "args": array(
                "Extra tritonserver arguments, appended after the ones sloscale sets.",
                string("One argument."),
            ),
            "resources": resources_schema(),
            "env": array("Environment variables of the Triton container.", env_schema()),
            "nodeSelector": string_map("Node labels the pods must be scheduled on."),
            "tolerations": array(
                "Tolerations added to the pods (the nvidia.com/gpu taint is tolerated "
                "automatically when GPUs are requested).",
                toleration_schema(),
            ),
            "affinity": free_object("Pod affinity rules (a Kubernetes Affinity)."),
            "priorityClassName": string("PriorityClass of the pods.", maxLength=253),
            "podLabels": string_map("Extra labels of the pods (sloscale's own labels win)."),
            "podAnnotations": string_map(
                "Extra annotations of the pods, e.g. for a service mesh or a simulated cold "
                "start (sloscale's own annotations win)."
            ),
            "shmSize": quantity("Size of /dev/shm (a memory-backed emptyDir).", default="1Gi"),
            "startupSeconds": integer(
                "How long Triton may take to load its models before it is restarted.",
                minimum=10,
                default=600,
            ),
        },
    )


def step_schema(what: str) -> Schema:
    # No defaults: unset means the policy's own rules, the ones the simulator measured (slo:
    # no limit up, 5% of the replicas down after max(120 s, coldStart + interval); hpa/keda:
    # the HPA behavior defaults; kpa: Knative's). A default here would override them all.
    return obj(
        f"Limits on how fast the autoscaler scales {what}; unset fields keep the policy's own.",
        {
            "stabilizationSeconds": integer(
                f"Seconds a lower/higher recommendation must hold before scaling {what}.",
                minimum=0,
            ),
            "maxStep": integer(
                f"Most replicas added or removed in one step when scaling {what}.",
                minimum=1,
            ),
        },
    )


def capacity_profile_schema() -> Schema:
    return obj(
        "Measured capacity of one replica: inline, or a ConfigMap key holding the capacity "
        "profile JSON written by `sloscale profile`. Exactly one of the two.",
        {
            "maxRpsPerReplica": number(
                "Requests per second one replica serves within the objective.",
                exclusiveMinimum=True,
                minimum=0,
            ),
            "configMapRef": obj(
                "ConfigMap key holding the capacity profile JSON.",
                {
                    "name": string("ConfigMap name, in the InferenceService's namespace.",
                                   maxLength=253),
                    "key": string("Key within the ConfigMap.", maxLength=253),
                },
                required=("name", "key"),
            ),
        },
        rules=(
            Rule(
                cel="has(self.maxRpsPerReplica) != has(self.configMapRef)",
                message="capacityProfile needs exactly one of maxRpsPerReplica or configMapRef",
                check=_one_capacity_source,
            ),
        ),
    )


def objective_schema() -> Schema:
    return obj(
        "The latency objective the autoscaler holds.",
        {
            "latency": string(
                "Latency statistic: p95, p99 or mean.", enum=list(LATENCY_STATS), default="p95"
            ),
            "targetMs": number(
                "Target latency in milliseconds.", exclusiveMinimum=True, minimum=0
            ),
            "window": string(
                "Window the statistic is computed over, e.g. 1m.", default="1m", maxLength=16
            ),
        },
        required=("targetMs",),
        rules=(_matches(DURATION_RE, "window"),),
    )


def autoscaling_schema() -> Schema:
    return obj(
        "Latency-SLO autoscaling. While enabled, the Deployment's replicas belong to the "
        "autoscaler and spec.replicas is ignored.",
        {
            "enabled": boolean("Whether sloscale scales this service.", default=False),
            "mode": string(
                "active scales; recommend only reports what it would do.",
                enum=list(MODES),
                default="active",
            ),
            "minReplicas": integer("Fewest replicas.", minimum=0, default=1),
            "maxReplicas": integer("Most replicas.", minimum=1, default=8),
            "objective": objective_schema(),
            "policy": string(
                "Scaling policy: slo (sloscale's own) or a baseline (hpa, keda, kpa).",
                enum=list(POLICIES),
                default="slo",
            ),
            "interval": string("How often the autoscaler decides, e.g. 15s.", default="15s",
                               maxLength=16),
            "scaleUp": step_schema("up"),
            "scaleDown": step_schema("down"),
            "coldStartSeconds": number(
                "Seconds from scale-up to a new replica serving (model load included).",
                minimum=0,
            ),
            "capacityProfile": capacity_profile_schema(),
        },
        rules=(
            Rule(
                cel="!has(self.minReplicas) || !has(self.maxReplicas) || "
                "self.minReplicas <= self.maxReplicas",
                message="minReplicas must not exceed maxReplicas",
                check=_min_le_max,
                field_path=".minReplicas",
            ),
            Rule(
                cel="!has(self.enabled) || !self.enabled || has(self.objective)",
                message="objective is required when autoscaling is enabled",
                check=lambda node: not node.get("enabled") or _has(node, "objective"),
                field_path=".objective",
            ),
            _matches(DURATION_RE, "interval"),
        ),
    )


def spec_schema() -> Schema:
    return obj(
        "What to serve and how: one Triton Deployment with its Service, PodDisruptionBudget "
        "and ServiceMonitor.",
        {
            "model": model_schema(),
            "runtime": {**runtime_schema(), "default": {}},
            "replicas": integer(
                "Replicas when autoscaling is off (kubectl scale sets it).", minimum=0, default=1
            ),
            "autoscaling": {**autoscaling_schema(), "default": {}},
        },
        required=("model",),
    )


def condition_schema() -> Schema:
    return obj(
        "A condition per Kubernetes API conventions.",
        {
            "type": string("Condition type: Ready, Available, Progressing, ...", maxLength=316),
            "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": string("CamelCase reason for the last transition.", maxLength=1024),
            "message": string("Human-readable detail.", maxLength=32768),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The spec generation the condition was computed for.",
            },
            "lastTransitionTime": string(
                "When the status last changed.", format="date-time", maxLength=64
            ),
        },
        required=("type", "status"),
    )


def autoscaling_status_schema() -> Schema:
    return obj(
        "What the autoscaler sees and decided (written by the autoscaler).",
        {
            "desiredReplicas": integer("Replicas the autoscaler wants.", minimum=0),
            "observed": obj(
                "Latest observed load and latency.",
                {
                    "rps": number("Requests per second."),
                    "latencyMs": number("The objective's latency statistic, in ms."),
                    "queueMs": number("Mean time requests wait in Triton's queue, in ms."),
                    "pending": number("Requests waiting in Triton's queues."),
                },
            ),
            "lastDecision": obj(
                "The last scaling decision.",
                {
                    "time": string("When it was made.", format="date-time", maxLength=64),
                    "from": integer("Replicas before."),
                    "to": integer("Replicas after."),
                    "reason": string("Why."),
                },
            ),
        },
        **{"x-kubernetes-preserve-unknown-fields": True},
    )


def status_schema() -> Schema:
    return obj(
        "Observed state, written by the operator.",
        {
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The spec generation the status describes.",
            },
            "conditions": array(
                "Ready, Available, Progressing and more.",
                condition_schema(),
                max_items=32,
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
            ),
            "replicas": integer("Pods the Deployment runs (scale subresource).", minimum=0),
            "readyReplicas": integer("Pods ready to serve.", minimum=0),
            "desiredReplicas": integer("Replicas asked for: spec.replicas, or the "
                                       "autoscaler's when autoscaling is on.", minimum=0),
            "selector": string("Label selector of the pods (scale subresource)."),
            "url": string("In-cluster HTTP URL of the Triton endpoint."),
            "autoscaling": autoscaling_status_schema(),
        },
    )


def root_schema() -> Schema:
    return obj(
        "An InferenceService serves one Triton model repository on GPU nodes and scales it on "
        "a latency objective.",
        {
            "apiVersion": string("API version of this object.", maxLength=253),
            "kind": string("Kind of this object.", maxLength=253),
            # The API server allows nothing but the type here.
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        required=("spec",),
        rules=(NAME_RULE,),
    )
