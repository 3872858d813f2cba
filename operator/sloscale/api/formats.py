"""Kubernetes' own string formats and sloscale's bounds, as schema pieces with paired rules.

A value these accept must also be accepted by the API server when it reaches a child object
(a label value on the pods, a Secret's name): otherwise the user learns of the mistake only
from a failed apply, long after admission said yes. Each pattern is written once and serves
both CEL (RE2) and Python (re.fullmatch), so it keeps to their common subset: ASCII classes
only, no \\s or \\S (their meaning differs between the two engines).
"""

from __future__ import annotations

import re
from typing import Any

from sloscale.api.openapi import RULES_KEY, Rule, Schema

# Limits a real deployment never reaches and an absurd value always does: a billion replicas
# or a million GPUs is a typo, not a plan. Kept in the docs by the reference generator.
MAX_REPLICAS = 1000
MAX_GPUS = 16
MAX_STEP_SECONDS = 3600  # HPA's own ceiling for stabilization windows
MAX_STARTUP_SECONDS = 6 * 3600  # a TensorRT engine build on first load can take hours
MAX_TARGET_MS = 600_000  # ten minutes: beyond that it is a batch job, not a latency objective
MAX_RPS_PER_REPLICA = 1_000_000
MAX_INTERVAL = "1h"
MAX_WINDOW = "24h"

# DNS-1123 subdomain: names of Secrets, ConfigMaps, PriorityClasses.
DNS_SUBDOMAIN_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE_RE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# A qualified name (label and annotation keys): optional DNS prefix, then a 63-char name.
QUALIFIED_NAME_RE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
# The portable (pre-1.34) environment variable name; newer API servers accept more.
ENV_NAME_RE = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
CONFIG_MAP_KEY_RE = r"^[-._a-zA-Z0-9]+$"
# Printable ASCII without spaces: image references, URI paths.
NO_SPACE_ASCII_RE = r"^[!-~]+$"
# Text handed to a process (arguments, environment): anything but NUL, which execve cannot pass.
NO_NUL_RE = r"^[^\x00]*$"
# Six digits at most, so that CEL's duration() cannot overflow.
DURATION_RE = r"^[0-9]{1,6}(ms|s|m|h)$"
GPU_COUNT_RE = r"^([0-9]|1[0-6])$"
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def matches(pattern: str, value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None


def duration_s(text: str) -> float:
    """Seconds in a DURATION_RE string (callers check the form first)."""
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h)", text).groups()  # type: ignore[union-attr]
    return int(number) * _UNIT_S[unit]


def duration_rule(field: str, low: str, high: str) -> Rule:
    """The duration in `field` lies within [low, high] (both DURATION_RE strings)."""

    def check(node: dict[str, Any]) -> bool:
        value = node.get(field)
        if not matches(DURATION_RE, value):
            return field not in node
        return duration_s(low) <= duration_s(value) <= duration_s(high)

    in_range = (f"duration(self.{field}) >= duration('{low}') && "
                f"duration(self.{field}) <= duration('{high}')")
    return Rule(
        cel=f"!has(self.{field}) || (self.{field}.matches(r'{DURATION_RE}') && {in_range})",
        message=f"{field} must be a duration such as 30s, 1m or 1h, from {low} to {high}",
        check=check,
        field_path=f".{field}",
    )


def _label_map_check(node: Any, value_re: str) -> bool:
    return all(matches(QUALIFIED_NAME_RE, key) and len(key) <= 316
               and (value_re == "" or matches(value_re, item)) for key, item in node.items())


def label_map(description: str, values: str = "label") -> Schema:
    """Labels (values: label) or annotations (values: any): keys are qualified names.

    Annotations allow 256 KiB in all on the pods: 32 values of 4 KiB stay well inside.
    """
    value_schema: Schema = {"type": "string", "maxLength": 4096}
    value_re = ""
    if values == "label":
        value_schema = {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE_RE}
        value_re = LABEL_VALUE_RE
    what = "a label" if values == "label" else "an annotation"
    key_rule = Rule(
        cel=f"self.all(k, size(k) <= 316 && k.matches(r'{QUALIFIED_NAME_RE}'))",
        message=f"every key must be {what} key: [prefix/]name, the name at most 63 of "
        "a-z, A-Z, 0-9, '-', '_', '.', the optional prefix a DNS subdomain",
        check=lambda node: _label_map_check(node, value_re),
    )
    return {
        "type": "object",
        "description": description,
        "additionalProperties": value_schema,
        "maxProperties": 32,
        RULES_KEY: [key_rule],
    }


def gpu_rule(kind: str) -> Rule:
    """A GPU count in requests or limits is a whole number of devices, 0 to MAX_GPUS."""
    gpu = "'nvidia.com/gpu'"
    return Rule(
        cel=f"!has(self.{kind}) || !({gpu} in self.{kind}) || "
        f"string(self.{kind}[{gpu}]).matches(r'{GPU_COUNT_RE}')",
        message=f"{kind}['nvidia.com/gpu'] must be a whole number of GPUs from 0 to {MAX_GPUS}",
        check=lambda node: "nvidia.com/gpu" not in node.get(kind, {})
        or matches(GPU_COUNT_RE, str(node[kind]["nvidia.com/gpu"])),
        field_path=f".{kind}",
    )
