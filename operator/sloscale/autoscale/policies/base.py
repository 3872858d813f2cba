"""Types every autoscaling policy shares: spec, snapshot, replica state, decision, interface."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sloscale.autoscale.policies.latency import LatencyCurve

LatencyKind = Literal["p95", "p99", "mean"]


@dataclass(frozen=True)
class Objective:
    """The latency objective: `latency` (p95|p99|mean) must stay under `targetMs` over `window`."""

    latency: LatencyKind = "p95"
    targetMs: float = 500.0  # noqa: N815 (field names mirror the CRD's spec.autoscaling)
    window: float = 60.0

    @property
    def percentile(self) -> float | None:
        """The percentile the objective names (95, 99), or None for the mean."""
        return None if self.latency == "mean" else float(self.latency[1:])


@dataclass(frozen=True)
class ScalingRules:
    """One direction's limits: wait `stabilizationSeconds`, move at most `maxStep` pods a step."""

    stabilizationSeconds: float = 0.0  # noqa: N815
    maxStep: int = 0  # noqa: N815  (0 = no limit)


@dataclass(frozen=True)
class AutoscalingSpec:
    """spec.autoscaling, typed: what the policies, the loop and the simulator read.

    The one parse of an InferenceService's spec.autoscaling is autoscale/config.py's
    `parse_autoscaling`, which fills what the user left out from the CRD schema's defaults;
    the defaults here are the same (a unit test keeps them in step) and serve the simulator
    and the tests that build a spec directly.
    """

    minReplicas: int = 1  # noqa: N815
    maxReplicas: int = 8  # noqa: N815
    objective: Objective = field(default_factory=Objective)
    policy: str = "slo"
    interval: float = 15.0
    scaleUp: ScalingRules = field(default_factory=lambda: ScalingRules(0.0, 0))  # noqa: N815
    scaleDown: ScalingRules = field(default_factory=lambda: ScalingRules(120.0, 0))  # noqa: N815
    coldStartSeconds: float = 60.0  # noqa: N815
    # From the runtime's profiler: requests/s one replica serves with latency at the target.
    capacityRpsPerReplica: float | None = None  # noqa: N815
    # The mean latency one replica shows at capacityRpsPerReplica (the profiler's load test, or
    # the simulator's service model). Only `kpa` reads it: Little's law turns the pair into the
    # requests one pod holds in flight at capacity, the target a Knative user sets. None: the
    # policy estimates it from what it observes.
    meanLatencyMsAtCapacity: float | None = None  # noqa: N815
    # The objective's latency of one replica against its per-pod rate, from the same profile
    # (policies/latency.py). Only `slo` reads it, to predict the latency of the pods it picks.
    latencyCurve: LatencyCurve | None = None  # noqa: N815
    # active scales; recommend only reports (the loop reads it, the policies never do).
    mode: Literal["active", "recommend"] = "active"
    # capacityProfile.configMapRef as (ConfigMap name, key): the loop reads it in its fetch
    # phase and fills capacityRpsPerReplica from it.
    capacityConfigMapRef: tuple[str, str] | None = None  # noqa: N815

    def __post_init__(self) -> None:
        if self.minReplicas < 0:
            raise ValueError(f"minReplicas must be >= 0, got {self.minReplicas}")
        if self.maxReplicas < max(self.minReplicas, 1):
            raise ValueError(
                f"maxReplicas ({self.maxReplicas}) must be >= minReplicas ({self.minReplicas})"
            )
        if self.objective.targetMs <= 0:
            raise ValueError(f"objective.targetMs must be > 0, got {self.objective.targetMs}")
        if self.interval <= 0:
            raise ValueError(f"interval must be > 0, got {self.interval}")
        if self.meanLatencyMsAtCapacity is not None and self.meanLatencyMsAtCapacity <= 0:
            raise ValueError(
                f"meanLatencyMsAtCapacity must be > 0, got {self.meanLatencyMsAtCapacity}"
            )

    def clamp(self, replicas: int) -> int:
        return max(self.minReplicas, min(self.maxReplicas, replicas))


@dataclass(frozen=True)
class Snapshot:
    """What the metrics source saw over its window at `time`; None = no data for that field."""

    time: float
    rps: float | None = None
    latency_mean_ms: float | None = None
    latency_ms: float | None = None  # at the objective's percentile
    queue_ms: float | None = None
    pending: float | None = None  # requests waiting in the servers' queues
    # The highest rate over one scrape interval within the window: how bursty the window was.
    rps_peak: float | None = None


@dataclass(frozen=True)
class ReplicaState:
    """Pods of the service: `current` asked for, `ready`, `starting`, `pending` (unschedulable)."""

    current: int
    ready: int
    starting: int = 0
    pending: int = 0
    # Seconds from scheduled to Ready, p90 of the pods seen (None: none has told it yet).
    cold_start_s: float | None = None


@dataclass(frozen=True)
class Decision:
    desired_replicas: int
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class Policy(Protocol):
    """A pure policy: its memory is the explicit `state` dataclass, the clock is passed in.

    Copying `state` (dataclasses.replace / deepcopy) and calling `decide` again replays a run.
    """

    name: str
    # Window the metrics source should compute rates and latencies over (None: the objective's).
    metrics_window_s: float | None
    # How often the policy's controller decides (None: spec.interval).
    interval_s: float | None
    state: Any

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision: ...


def objective_value(snapshot: Snapshot, spec: AutoscalingSpec) -> float | None:
    """The latency the objective names: the percentile, or the mean."""
    if spec.objective.latency == "mean":
        return snapshot.latency_mean_ms
    return snapshot.latency_ms


def hold(replicas: ReplicaState, spec: AutoscalingSpec, reason: str) -> Decision:
    """Keep the current count (within bounds): what every policy does without data."""
    return Decision(spec.clamp(replicas.current), reason, {})


def ceil_div(value: float, per_replica: float) -> int:
    """Replicas needed to carry `value` at `per_replica` each, robust to float noise."""
    return max(0, math.ceil(value / per_replica - 1e-9))
