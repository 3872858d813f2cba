"""The `kpa` baseline: Knative's Pod Autoscaler on concurrency, configured from a load test.

Scale follows knative/serving pkg/autoscaler/scaling/autoscaler.go (Scale) line by line: every
2 s tick, the average in-flight requests over the 60 s stable and the 6 s panic window give
`ceil(observed / TargetValue)` pods, kept within [floor(ready / max-scale-down-rate),
ceil(max-scale-up-rate * ready)]; panic starts when the panic count reaches 200% of the ready
pods, lasts until a whole stable window passes below that, takes the larger of the two counts
and never lowers it; then the scale-down-delay window keeps the highest count of the last
`scale-down-delay` (a max.TimeWindow). A new autoscaler over more than one ready pod starts in
panic at the current count (newAutoscaler). Without data it does nothing (ErrNoData).

Settings are config-autoscaler's (https://knative.dev/docs/serving/autoscaling/kpa-specific/,
.../autoscaling/concurrency/, .../autoscaling/scale-bounds/#scale-down-delay): target
utilization 70%, stable window 60 s, panic window 10% of it, panic threshold 200%, max scale
up 1000x, max scale down 2x. The per-pod target (`autoscaling.knative.dev/target`) is what a
user measures: the requests one pod holds in flight at its profiled capacity, by Little's law
capacity_rps x the MEAN latency at that load (not the SLO: a saturated pod cannot hold the
SLO's worth, and a target above what it holds makes the KPA limit-cycle). A user with 60 s
cold starts sets scale-down-delay to cover them (the docs' reason for the setting).

In flight is time-weighted, as the queue-proxy reports it: over the window, rps x mean latency
(Little's law); the backlog at the scrape when no request finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot, hold

TICK_S = 2.0  # Knative's autoscaler tick-interval


@dataclass(frozen=True)
class KpaSettings:
    """config-autoscaler defaults. `target_concurrency` is per pod, before utilization; None:
    the policy estimates it from `capacity_rps` and the latency it observes (see estimate)."""

    target_concurrency: float | None = 100.0  # container-concurrency-target-default
    target_utilization: float = 0.7  # container-concurrency-target-percentage: 70
    stable_window_s: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_down_delay_s: float = 0.0
    capacity_rps: float | None = None  # the profile, for the estimate

    def __post_init__(self) -> None:
        if self.target_concurrency is None and not self.capacity_rps:
            raise ValueError("kpa needs a target concurrency or a capacity to estimate it from")
        if not 0 < self.target_utilization <= 1:
            raise ValueError(f"kpa target_utilization must be in (0, 1], got "
                             f"{self.target_utilization}")

    @property
    def panic_window_s(self) -> float:
        return self.stable_window_s * self.panic_window_percentage / 100.0


@dataclass
class KpaState:
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time, in flight)
    started: bool = False
    panic_time: float | None = None
    max_panic_pods: int = 0
    recent_desired: list[tuple[float, int]] = field(default_factory=list)  # scale-down delay
    # (rps per pod, mean latency ms) at the highest per-pod load seen within capacity.
    probe: tuple[float, float] | None = None


def in_flight(snapshot: Snapshot) -> float | None:
    """Average requests in flight over the window (Little's law), what the queue-proxy reports."""
    if snapshot.rps is None:
        return None
    if snapshot.latency_mean_ms is None:
        # No request finished in the window: nothing was in flight, or all of it still is.
        return snapshot.pending if snapshot.pending is not None else (
            0.0 if snapshot.rps == 0 else None)
    return snapshot.rps * snapshot.latency_mean_ms / 1000.0


def estimate(state: KpaState, snapshot: Snapshot, replicas: ReplicaState,
             capacity_rps: float, target_ms: float) -> float | None:
    """Requests in flight per pod at capacity when no load test gave the mean latency there:
    capacity x the mean latency seen at the highest per-pod load not above capacity, with all
    pods Ready (so that the load per pod is known) and the mean within the objective's target
    (the mean at capacity is; a longer one is a backlog draining, not this load). Latency grows
    with load, so this errs low: a lower target, more pods, never the limit cycle of a target a
    pod cannot hold. Until such a load is seen, decide provisions rps / capacity."""
    mean_ms = snapshot.latency_mean_ms
    if (snapshot.rps and mean_ms is not None and mean_ms <= target_ms and replicas.ready > 0
            and replicas.starting == 0):
        per_pod = snapshot.rps / replicas.ready
        if per_pod <= capacity_rps and (state.probe is None or per_pod >= state.probe[0]):
            state.probe = (per_pod, mean_ms)
    if state.probe is None:
        return None
    return capacity_rps * state.probe[1] / 1000.0


def window_average(samples: list[tuple[float, float]], window_s: float, now: float) -> float:
    recent = [value for time, value in samples if time > now - window_s]
    return sum(recent) / len(recent) if recent else 0.0


def scale(state: KpaState, settings: KpaSettings, target_value: float, stable: float,
          panic: float, ready: int, now: float) -> tuple[int, bool]:
    """autoscaler.Scale: the desired pod count and whether it is panicking."""
    ready_count = max(ready, 1)
    max_up = math.ceil(settings.max_scale_up_rate * ready_count)
    max_down = math.floor(ready_count / settings.max_scale_down_rate)
    stable_pods = math.ceil(stable / target_value)
    panic_pods = math.ceil(panic / target_value)
    desired_stable = min(max(stable_pods, max_down), max_up)
    desired_panic = min(max(panic_pods, max_down), max_up)
    if panic_pods / ready_count >= settings.panic_threshold_percentage / 100.0:
        state.panic_time = now
    elif state.panic_time is not None and state.panic_time + settings.stable_window_s < now:
        state.panic_time, state.max_panic_pods = None, 0
    desired = desired_stable
    if state.panic_time is not None:
        state.max_panic_pods = max(state.max_panic_pods, desired_stable, desired_panic)
        desired = state.max_panic_pods
    if settings.scale_down_delay_s > 0:
        horizon = now - settings.scale_down_delay_s
        state.recent_desired = [d for d in state.recent_desired if d[0] > horizon]
        state.recent_desired.append((now, desired))
        desired = max(count for _, count in state.recent_desired)
    return desired, state.panic_time is not None


@dataclass
class KpaPolicy:
    settings: KpaSettings = field(default_factory=KpaSettings)
    state: KpaState = field(default_factory=KpaState)
    name: str = "kpa"
    metrics_window_s: float | None = TICK_S  # the queue-proxy's per-second stats, not a 1m rate
    interval_s: float | None = TICK_S

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        state, settings = self.state, self.settings
        if not state.started:  # newAutoscaler: keep the scale until data has accumulated
            state.started = True
            if replicas.ready > 1:
                state.panic_time, state.max_panic_pods = now, replicas.ready
        per_pod = settings.target_concurrency
        if per_pod is None and settings.capacity_rps:
            per_pod = estimate(state, snapshot, replicas, settings.capacity_rps,
                               spec.objective.targetMs)
        value = in_flight(snapshot)
        if value is not None and (not state.samples or state.samples[-1][0] < snapshot.time):
            state.samples.append((snapshot.time, value))
        state.samples = [s for s in state.samples if s[0] > now - settings.stable_window_s]
        if per_pod is None and settings.capacity_rps and snapshot.rps:
            # No load within capacity seen yet (e.g. overloaded from the start): provision for
            # the rate at capacity (never fewer pods than now) until one is.
            bootstrap = spec.clamp(math.ceil(snapshot.rps / settings.capacity_rps))
            return Decision(max(bootstrap, replicas.current), "estimating the target: rps / "
                            f"capacity needs {bootstrap}", {"target_per_pod": None})
        if not state.samples or per_pod is None:
            return hold(replicas, spec, "no concurrency data yet: holding")
        target_value = per_pod * settings.target_utilization
        stable = window_average(state.samples, settings.stable_window_s, now)
        panic = window_average(state.samples, settings.panic_window_s, now)
        desired, panicking = scale(state, settings, target_value, stable, panic,
                                   replicas.ready, now)
        return Decision(
            spec.clamp(desired),
            f"{'panic' if panicking else 'stable'}: in flight {stable:.1f}/{panic:.1f}, "
            f"target {target_value:.2f} per pod",
            {"stable": stable, "panic": panic, "panicking": panicking,
             "target_per_pod": target_value},
        )
