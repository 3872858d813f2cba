"""The InferenceService schema: the one source of truth for the CRD, defaults and validation."""

from __future__ import annotations

from typing import Any

from sloscale.api.formats import (
    CONFIG_MAP_KEY_RE,
    DNS_SUBDOMAIN_RE,
    ENV_NAME_RE,
    LABEL_VALUE_RE,
    MAX_INTERVAL,
    MAX_REPLICAS,
    MAX_RPS_PER_REPLICA,
    MAX_STARTUP_SECONDS,
    MAX_STEP_SECONDS,
    MAX_TARGET_MS,
    MAX_WINDOW,
    NO_NUL_RE,
    NO_SPACE_ASCII_RE,
    QUALIFIED_NAME_RE,
    duration_rule,
    gpu_rule,
    label_map,
    matches,
)
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
)

DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"
MODEL_FORMATS = ("pytorch", "onnx", "python", "tensorrt")
LATENCY_STATS = ("p95", "p99", "mean")
POLICIES = ("slo", "hpa", "keda", "kpa")
MODES = ("active", "recommend")

# One regular expression serves CEL (RE2) and Python (re): keep it in the common subset.
# Paths are printable ASCII without spaces ([!-~]): a URI percent-encodes the rest.
STORAGE_URI_RE = (r"^((s3|gs)://[a-z0-9][a-z0-9.\-_]{1,254}(/[!-~]*)?|https://[!-.0-~]+(/[!-~]*)?"
                  r"|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[!-~]*)?)$")
MODEL_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


def _has(node: dict[str, Any], key: str) -> bool:
    return node.get(key) is not None


def _min_le_max(node: dict[str, Any]) -> bool:
    low, high = node.get("minReplicas"), node.get("maxReplicas")
    return low is None or high is None or low <= high


def _one_capacity_source(node: dict[str, Any]) -> bool:
    return _has(node, "maxRpsPerReplica") != _has(node, "configMapRef")


STORAGE_URI_RULE = Rule(
    cel=f"self.storageUri.matches(r'{STORAGE_URI_RE}')",
    message="storageUri must start with s3://, gs://, https:// or pvc://<claim> "
    "and name a location",
    check=lambda node: matches(STORAGE_URI_RE, node.get("storageUri", "")),
    field_path=".storageUri",
)


# The name becomes the Service's, which must be a DNS-1035 label.
SERVICE_NAME_RE = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
NAME_RULE = Rule(
    cel=f"self.metadata.name.matches(r'{SERVICE_NAME_RE}')",
    message="metadata.name must be a DNS-1035 label (a-z, 0-9, '-', at most 63 characters, "
    "starting with a letter): it names the Service",
    check=lambda node: matches(SERVICE_NAME_RE, node.get("metadata", {}).get("name", "")),
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
                maxLength=253, pattern=DNS_SUBDOMAIN_RE,
            ),
        },
        required=("name", "storageUri"),
        rules=(STORAGE_URI_RULE,),
    )


# What the API server checks of a pod's tolerations, caught here at admission instead.
TOLERATION_RULES = (
    Rule(
        cel="!has(self.operator) || self.operator != 'Exists' || !has(self.value) "
        "|| self.value == ''",
        message="value must be empty when operator is Exists",
        check=lambda node: node.get("operator") != "Exists" or not node.get("value"),
        field_path=".value",
    ),
    Rule(
        cel="(has(self.key) && self.key != '') || (has(self.operator) && "
        "self.operator == 'Exists')",
        message="operator must be Exists when key is empty",
        check=lambda node: bool(node.get("key")) or node.get("operator") == "Exists",
        field_path=".operator",
    ),
    Rule(
        cel="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        message="effect must be NoExecute when tolerationSeconds is set",
        check=lambda node: "tolerationSeconds" not in node or node.get("effect") == "NoExecute",
        field_path=".effect",
    ),
)


def toleration_schema() -> Schema:
    return obj(
        "A Kubernetes toleration.",
        {
            "key": string("Taint key the toleration matches; empty matches every key "
                          "(with operator Exists).", maxLength=316,
                          pattern=f"^$|{QUALIFIED_NAME_RE}"),
            "operator": string("Exists or Equal.", enum=["Exists", "Equal"]),
            "value": string("Taint value the toleration matches (a label value).",
                            maxLength=63, pattern=LABEL_VALUE_RE),
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
        rules=TOLERATION_RULES,
    )


def env_schema() -> Schema:
    return obj(
        "An environment variable of the Triton container.",
        {
            "name": string("Variable name.", maxLength=256, pattern=ENV_NAME_RE),
            "value": string("Literal value.", pattern=NO_NUL_RE),
            "valueFrom": free_object("Source for the value (a Kubernetes EnvVarSource)."),
        },
        required=("name",),
        rules=(Rule(
            cel="!has(self.valueFrom) || !has(self.value) || self.value == ''",
            message="value and valueFrom exclude each other",
            check=lambda node: "valueFrom" not in node or not node.get("value"),
            field_path=".valueFrom",
        ),),
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
        rules=(gpu_rule("requests"), gpu_rule("limits")),
    )


def runtime_schema() -> Schema:
    return obj(
        "How the Triton server pods run.",
        {
            "image": string("Triton server image.", default=DEFAULT_IMAGE, maxLength=512,
                            pattern=NO_SPACE_ASCII_RE),
            "args": array(
                "Extra tritonserver arguments, appended after the ones sloscale sets.",
                string("One argument.", pattern=NO_NUL_RE),
            ),
            "resources": resources_schema(),
            "env": array("Environment variables of the Triton container.", env_schema()),
            "nodeSelector": label_map("Node labels the pods must be scheduled on."),
            "tolerations": array(
                "Tolerations added to the pods (the nvidia.com/gpu taint is tolerated "
                "automatically when GPUs are requested).",
                toleration_schema(),
            ),
            "affinity": free_object("Pod affinity rules (a Kubernetes Affinity)."),
            "priorityClassName": string("PriorityClass of the pods.", maxLength=253,
                                        pattern=DNS_SUBDOMAIN_RE),
            "podLabels": label_map("Extra labels of the pods (sloscale's own labels win)."),
            "podAnnotations": label_map(
                "Extra annotations of the pods, e.g. for a service mesh or a simulated cold "
                "start (sloscale's own annotations win).",
                values="any",
            ),
            "shmSize": quantity("Size of /dev/shm (a memory-backed emptyDir).", default="1Gi"),
            "startupSeconds": integer(
                "How long Triton may take to load its models before it is restarted.",
                minimum=10,
                maximum=MAX_STARTUP_SECONDS,
                default=600,
            ),
        },
    )


def step_schema(what: str) -> Schema:
    # No defaults: unset means the policy's own rules, the ones the simulator measured (slo:
    # no limit up; down stepwise over a horizon once a whole max(stabilization, horizon)
    # needed fewer pods, the horizon being cold start + interval + metric lag; hpa/keda:
    # the HPA behavior defaults; kpa: Knative's). A default here would override them all.
    return obj(
        f"Limits on how fast the autoscaler scales {what}; unset fields keep the policy's own.",
        {
            "stabilizationSeconds": integer(
                f"Seconds a lower/higher recommendation must hold before scaling {what}.",
                minimum=0,
                maximum=MAX_STEP_SECONDS,
            ),
            "maxStep": integer(
                f"Most replicas added or removed in one step when scaling {what}.",
                minimum=1,
                maximum=MAX_REPLICAS,
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
                maximum=MAX_RPS_PER_REPLICA,
            ),
            "configMapRef": obj(
                "ConfigMap key holding the capacity profile JSON.",
                {
                    "name": string("ConfigMap name, in the InferenceService's namespace.",
                                   maxLength=253, pattern=DNS_SUBDOMAIN_RE),
                    "key": string("Key within the ConfigMap.", maxLength=253,
                                  pattern=CONFIG_MAP_KEY_RE),
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
                "Target latency in milliseconds.", exclusiveMinimum=True, minimum=0,
                maximum=MAX_TARGET_MS,
            ),
            "window": string(
                "Window the statistic is computed over, e.g. 1m.", default="1m", maxLength=16
            ),
        },
        required=("targetMs",),
        rules=(duration_rule("window", "1s", MAX_WINDOW),),
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
            "minReplicas": integer("Fewest replicas.", minimum=0, maximum=MAX_REPLICAS,
                                   default=1),
            "maxReplicas": integer("Most replicas.", minimum=1, maximum=MAX_REPLICAS,
                                   default=8),
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
                maximum=MAX_STARTUP_SECONDS,
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
            duration_rule("interval", "1s", MAX_INTERVAL),
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
                "Replicas when autoscaling is off (kubectl scale sets it).", minimum=0,
                maximum=MAX_REPLICAS, default=1
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
                    "applied": boolean("Whether the replicas were written (false in "
                                       "recommend mode or while another autoscaler acts)."),
                    "details": free_object("The policy's numbers behind the decision (slo: "
                                           "demand quantile, horizon, capacity, predicted "
                                           "latency, what bound it)."),
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
