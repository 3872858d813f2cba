"""Profile the simulated replica like the runtime's profiler does: max rps at the objective.

One replica under a stationary Poisson load, as `sloscale runtime profile` measures one Triton
server. Behind a random balancer each of N pods sees a Poisson load of its own, so one pod's
capacity holds per pod at any N.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot
from sloscale.autoscale.policies.latency import LatencyCurve
from sloscale.sim.engine import SimConfig, simulate
from sloscale.sim.objective import MISSED_MS
from sloscale.sim.objective import objective_ms as _objective_ms
from sloscale.sim.service import ServiceModel

PROFILE_REPLICAS = 1
PROFILE_SECONDS = 600.0
# The rates, as shares of the capacity, at which the latency curve is measured: the load
# steps of a profiler's sweep, denser near the target where the curve bends.
CURVE_SHARES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1)


@dataclass
class FixedReplicas:
    """A policy that never moves: the profiler's fixed deployment."""

    replicas: int
    name: str = "fixed"
    metrics_window_s: float | None = None
    interval_s: float | None = None

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        return Decision(self.replicas, "fixed")


def _latencies_ms(service: ServiceModel, rps_per_replica: float, spec: AutoscalingSpec,
                  config: SimConfig) -> np.ndarray:
    """Per-request latency on a stationary Poisson load with a fixed replica count (rejected
    requests as MISSED_MS)."""
    rng = np.random.default_rng(config.seed)
    rate = rps_per_replica * PROFILE_REPLICAS
    arrivals = np.cumsum(rng.exponential(1.0 / rate, int(rate * PROFILE_SECONDS)))
    fixed = replace(spec, minReplicas=PROFILE_REPLICAS,
                    maxReplicas=max(spec.maxReplicas, PROFILE_REPLICAS))
    run = simulate(arrivals, FixedReplicas(PROFILE_REPLICAS), fixed, service,
                   replace(config, drain_s=30.0))
    return np.concatenate((run.latency_ms, np.full(len(run.rejected_s), MISSED_MS)))


def objective_ms(service: ServiceModel, rps_per_replica: float, spec: AutoscalingSpec,
                 config: SimConfig) -> float:
    """The objective's latency on a stationary Poisson load with a fixed replica count."""
    return _objective_ms(_latencies_ms(service, rps_per_replica, spec, config), spec.objective)


def profiled_spec(service: ServiceModel, spec: AutoscalingSpec, config: SimConfig
                  ) -> AutoscalingSpec:
    """`spec` with what a load test of one replica tells: its capacity at the objective
    (unless the spec has one), the mean latency at that load (the KPA's target needs it) and
    the objective's latency at a sweep of rates around it (the slo policy's latency model)."""
    capacity = spec.capacityRpsPerReplica or profile_capacity(service, spec, config)
    mean_ms = float(_latencies_ms(service, capacity, spec, config).mean())
    measured = [(share * capacity, objective_ms(service, share * capacity, spec, config))
                for share in CURVE_SHARES]
    # A load whose objective counts rejected requests (MISSED_MS) measured no latency.
    curve = LatencyCurve.of((rate, ms) for rate, ms in measured if ms < MISSED_MS)
    return replace(spec, capacityRpsPerReplica=capacity, meanLatencyMsAtCapacity=mean_ms,
                   latencyCurve=curve)


def profile_capacity(service: ServiceModel, spec: AutoscalingSpec, config: SimConfig) -> float:
    """Largest rps per replica whose objective latency stays within the target (bisection)."""
    if service.zero_load_ms > spec.objective.targetMs:
        raise ValueError(f"the SLO {spec.objective.targetMs:g} ms is below the service time at "
                         f"zero load ({service.zero_load_ms:g} ms)")
    low, high = 0.0, service.max_rps
    for _ in range(12):
        middle = (low + high) / 2
        if objective_ms(service, middle, spec, config) <= spec.objective.targetMs:
            low = middle
        else:
            high = middle
    if low <= 0:
        raise ValueError(f"no load meets {spec.objective.latency} <= {spec.objective.targetMs} ms")
    return low
