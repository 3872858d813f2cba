"""The `slo` policy: hold the latency objective at the lowest replica count.

Provision for the demand at a learned per-replica capacity, ahead by the cold start when the
demand is clearly rising; treat a breach as an emergency; release capacity once the demand
level of a whole scale-down window fits in fewer pods; keep capacity between bursts when
releasing it was regretted; never ask for pods the cluster cannot schedule. Parameters and
their reasons are in SloParams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sloscale.autoscale.policies.base import (
    AutoscalingSpec,
    Decision,
    ReplicaState,
    Snapshot,
    ceil_div,
    hold,
    objective_value,
)

Samples = list[tuple[float, float]]


@dataclass(frozen=True)
class SloParams:
    # Provision for demand at this share of the capacity at target: rates are averages over a
    # window, and neither the bursts inside it nor a rise before new pods are Ready may push
    # latency over the objective (the share the baselines are given too).
    target_utilization: float = 0.7
    # Trend fit over this window; demand is extrapolated by coldStart + interval, because a pod
    # asked for now only serves after that.
    trend_window_s: float = 300.0
    # Only a slope the noise cannot explain is a trend: the fit's slope less this many
    # standard errors (a noisy stationary load then adds nothing).
    trend_confidence_z: float = 1.0
    # The look-ahead adds at most this share of demand: a trend is not a step.
    max_forecast_rise: float = 0.2
    # Decisions read the demand level, the mean of the samples over this window, so that one
    # noisy window neither adds nor releases pods; a breach reads the latest window instead.
    level_window_s: float = 90.0
    # Queued requests should drain within this, so a backlog adds pending/drain_s to demand.
    backlog_drain_s: float = 30.0
    # More queued requests than this per ready replica is a backlog, not a slow replica.
    backlog_per_replica: float = 4.0
    # Without a capacity model, a breach multiplies the ready count by (latency/target)^exponent,
    # clamped to these factors: latency grows faster than linearly near saturation.
    breach_exponent: float = 2.0
    breach_min_factor: float = 1.2
    breach_max_factor: float = 3.0
    # Fewer requests than this in the window cannot make a breach (p95 of 3 requests is noise).
    min_breach_requests: float = 20.0
    # Scale down by at most this share of the replicas per decision (when scaleDown.maxStep = 0).
    down_step_fraction: float = 0.05
    # Latency under this share of the target counts as evidence the replicas are not saturated.
    healthy_latency_fraction: float = 0.8
    # Latency above this multiple of the target is queueing, not a replica's speed at this load.
    queueing_latency_factor: float = 2.0
    # One breach lowers the learned capacity by at most this factor.
    max_capacity_cut: float = 0.8
    # A breach soon after a scale-down doubles the scale-down window (up to the max): bursty
    # services keep capacity between bursts; the window halves back after a calm spell.
    regret_s: float = 600.0
    max_down_window_s: float = 900.0
    # Learn only once the ready count has been steady this long: the latency window must
    # describe the replicas we have, not the fewer we had before.
    settle_s: float = 30.0
    # While healthy, a capacity cut below the profile recovers by this factor per decision.
    recovery_rate: float = 1.02
    # After pods were seen Pending, do not ask above the schedulable count for this long.
    unschedulable_backoff_s: float = 300.0


@dataclass
class SloState:
    capacity_rps: float | None = None  # learned per-replica rps at the objective
    started: float | None = None  # first decision: no scale-down before a full window of data
    ready: int = -1
    ready_since: float = 0.0
    demand: Samples = field(default_factory=list)  # (time, demand rps)
    levels: Samples = field(default_factory=list)  # (time, demand level rps)
    slope_rps_per_s: float = 0.0  # significant upward trend of demand
    last_breach: float | None = None
    last_scale_down: float | None = None
    down_window_s: float | None = None  # adaptive, starts at the spec's
    window_changed: float = 0.0
    schedulable_ceiling: int | None = None
    ceiling_since: float = 0.0


def trend_rps_per_s(samples: Samples, confidence_z: float = 0.0) -> float:
    """Least-squares slope of demand over time, shrunk toward 0 by `confidence_z` standard
    errors, so that a slope the noise could explain counts as none (0 below 3 samples)."""
    n = len(samples)
    if n < 3:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in samples)
    if var_t <= 0:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in samples) / var_t
    if confidence_z <= 0 or n < 4:
        return slope
    residual = sum((v - mean_v - slope * (t - mean_t)) ** 2 for t, v in samples) / (n - 2)
    error = math.sqrt(residual / var_t)
    return math.copysign(max(0.0, abs(slope) - confidence_z * error), slope)


def level_at(samples: Samples, time: float, level_window_s: float, slope: float = 0.0) -> float:
    """The demand level at `time`: the mean of the samples in the level window ending there,
    moved along `slope` from the window's mean time (a mean lags a ramp)."""
    window = [(t, v) for t, v in samples if time - level_window_s < t <= time]
    if not window:
        return 0.0
    mean_t = sum(t for t, _ in window) / len(window)
    return sum(v for _, v in window) / len(window) + slope * (time - mean_t)


def learn_capacity(
    capacity: float | None,
    load_per_replica: float,
    latency_ms: float,
    target_ms: float,
    backlog: bool,
    params: SloParams,
) -> float | None:
    """Update rps/replica at target: a breach at load x bounds it below x, a healthy x above.

    A breach with a backlog, or far above the target, says nothing about capacity: a queue
    (perhaps already drained, the window is older than now) made it slow, not this load.
    """
    if load_per_replica <= 0:
        return capacity
    if latency_ms > target_ms:
        if backlog or latency_ms > target_ms * params.queueing_latency_factor:
            return capacity
        ceiling = load_per_replica * 0.95
        if capacity is None:
            return ceiling
        return max(capacity * params.max_capacity_cut, min(capacity, ceiling))
    if latency_ms <= target_ms * params.healthy_latency_fraction:
        return load_per_replica if capacity is None else max(capacity, load_per_replica)
    return capacity


def recover(
    capacity: float | None,
    profile: float | None,
    latency_ms: float,
    target_ms: float,
    params: SloParams,
) -> float | None:
    """Drift a cut capacity back toward the profile while latency is healthy: one bad window
    (a burst, a slow node) must not cost replicas forever."""
    if capacity is None or profile is None or capacity >= profile:
        return capacity
    if latency_ms > target_ms * params.healthy_latency_fraction:
        return capacity
    return min(profile, capacity * params.recovery_rate)


@dataclass
class SloPolicy:
    params: SloParams = field(default_factory=SloParams)
    state: SloState = field(default_factory=SloState)
    name: str = "slo"
    metrics_window_s: float | None = 30.0  # shorter than the objective: fresh trend
    interval_s: float | None = None

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        state = self.state
        if state.started is None:
            state.started = now
        if state.capacity_rps is None and spec.capacityRpsPerReplica:
            state.capacity_rps = spec.capacityRpsPerReplica
        latency_ms = objective_value(snapshot, spec)
        if latency_ms is None and snapshot.rps == 0 and not snapshot.pending:
            latency_ms = 0.0  # no traffic at all: nothing is slow
        if snapshot.rps is None or latency_ms is None:
            return hold(replicas, spec, "no metrics: holding")
        pending = snapshot.pending or 0.0
        self._learn(snapshot.rps, pending, latency_ms, replicas, spec, now)
        demand = self._remember(snapshot.rps, pending, now)
        breach = self._breach(snapshot.rps, latency_ms, spec, now)
        desired, reason = self._target(demand, latency_ms, breach, replicas, spec, now)
        desired = spec.clamp(self._respect_schedulable(desired, replicas, now))
        if desired < replicas.current:
            state.last_scale_down = now
        details = {
            "demand_rps": demand,
            "capacity_rps": state.capacity_rps,
            "latency_ms": latency_ms,
        }
        return Decision(desired, reason, details)

    def _remember(self, rps: float, pending: float, now: float) -> float:
        """Remember this window's demand (rate plus backlog), the trend and the level."""
        state, params = self.state, self.params
        demand = rps + pending / params.backlog_drain_s
        keep_s = max(params.trend_window_s, params.level_window_s)
        state.demand = [s for s in state.demand if s[0] > now - keep_s] + [(now, demand)]
        recent = [s for s in state.demand if s[0] > now - params.trend_window_s]
        state.slope_rps_per_s = max(0.0, trend_rps_per_s(recent, params.trend_confidence_z))
        level = level_at(state.demand, now, params.level_window_s, state.slope_rps_per_s)
        state.levels = [s for s in state.levels if s[0] > now - params.max_down_window_s]
        state.levels.append((now, level))
        return demand

    def _breach(self, rps: float, latency_ms: float, spec: AutoscalingSpec, now: float) -> bool:
        # A percentile of a handful of requests is noise, not an emergency.
        window_s = self.metrics_window_s or spec.objective.window
        breach = (
            latency_ms > spec.objective.targetMs
            and rps * window_s >= self.params.min_breach_requests
        )
        self._adapt_down_window(breach, now, spec)
        if breach:
            self.state.last_breach = now
        return breach

    def _learn(
        self,
        rps: float,
        pending: float,
        latency_ms: float,
        replicas: ReplicaState,
        spec: AutoscalingSpec,
        now: float,
    ) -> None:
        """Update the capacity estimate from a window that describes the current replicas."""
        state, params, target_ms = self.state, self.params, spec.objective.targetMs
        if replicas.ready != state.ready:  # the first count seen has no known change
            state.ready_since = now if state.ready >= 0 else -math.inf
            state.ready = replicas.ready
        if replicas.ready <= 0 or now - state.ready_since < params.settle_s:
            return
        backlog = pending > replicas.ready * params.backlog_per_replica
        learned = learn_capacity(
            state.capacity_rps, rps / replicas.ready, latency_ms, target_ms, backlog, params
        )
        state.capacity_rps = recover(
            learned, spec.capacityRpsPerReplica, latency_ms, target_ms, params
        )

    def _base_down_window_s(self, spec: AutoscalingSpec) -> float:
        # A pod released and needed again within a cold start costs more than keeping it.
        return max(spec.scaleDown.stabilizationSeconds, spec.coldStartSeconds + spec.interval)

    def _down_window_s(self, spec: AutoscalingSpec) -> float:
        return self.state.down_window_s or self._base_down_window_s(spec)

    def _adapt_down_window(self, breach: bool, now: float, spec: AutoscalingSpec) -> None:
        state, params = self.state, self.params
        base, window = self._base_down_window_s(spec), self._down_window_s(spec)
        new_breach = breach and (
            state.last_breach is None or now - state.last_breach > spec.interval * 1.5
        )
        regretted = (
            state.last_scale_down is not None and now - state.last_scale_down <= params.regret_s
        )
        if new_breach and regretted and now - state.window_changed >= window:
            state.down_window_s = min(params.max_down_window_s, 2 * window)
            state.window_changed = now
        elif not breach and window > base and now - state.window_changed >= 2 * window:
            state.down_window_s = max(base, window / 2)
            state.window_changed = now

    def _target(
        self,
        demand: float,
        latency_ms: float,
        breach: bool,
        replicas: ReplicaState,
        spec: AutoscalingSpec,
        now: float,
    ) -> tuple[int, str]:
        capacity = self.state.capacity_rps
        if capacity is None:  # nothing learned yet: only the latency can drive it
            if breach:
                urgent = math.ceil(max(replicas.ready, 1) * self._breach_factor(latency_ms, spec))
                return max(replicas.current, urgent), "breach, no capacity model yet"
            return replicas.current, "learning capacity"
        per_replica = capacity * self.params.target_utilization
        forecast = self._forecast(demand, breach, spec)
        needed = ceil_div(forecast, per_replica)
        if needed > replicas.current:
            step = spec.scaleUp.maxStep or needed
            reason = (
                f"breach: {latency_ms:.0f}ms > {spec.objective.targetMs:.0f}ms, " if breach else ""
            )
            return min(needed, replicas.current + step), f"{reason}forecast {forecast:.1f} rps"
        return self._scale_down(replicas, spec, now, per_replica, needed)

    def _forecast(self, demand: float, breach: bool, spec: AutoscalingSpec) -> float:
        """Demand a cold start ahead: the level (on a breach the latest window: it is the
        emergency) plus the significant upward trend, at most a share of the level."""
        state, params = self.state, self.params
        level = demand if breach else state.levels[-1][1]
        rise = state.slope_rps_per_s * (spec.coldStartSeconds + spec.interval)
        return level + min(rise, level * params.max_forecast_rise)

    def _breach_factor(self, latency_ms: float, spec: AutoscalingSpec) -> float:
        params = self.params
        ratio = latency_ms / spec.objective.targetMs
        return min(
            params.breach_max_factor, max(params.breach_min_factor, ratio**params.breach_exponent)
        )

    def _scale_down(
        self,
        replicas: ReplicaState,
        spec: AutoscalingSpec,
        now: float,
        per_replica: float,
        needed: int,
    ) -> tuple[int, str]:
        """Release what the demand level of a whole calm window does not need, stepwise."""
        state, params = self.state, self.params
        window_s = self._down_window_s(spec)
        calm_since = max(t for t in (state.started, state.last_breach) if t is not None)
        if now - calm_since < window_s:
            return replicas.current, "holding: a breach (or the start) within the window"
        peak = max(v for t, v in state.levels if t > now - window_s)
        floor = max(needed, ceil_div(peak, per_replica))
        if floor >= replicas.current:
            return replicas.current, f"holding: demand level {peak:.1f} rps needs {floor}"
        step = spec.scaleDown.maxStep or max(1, int(replicas.current * params.down_step_fraction))
        return max(floor, replicas.current - step), f"scale down: demand level {peak:.1f} rps"

    def _respect_schedulable(self, desired: int, replicas: ReplicaState, now: float) -> int:
        state = self.state
        if replicas.pending > 0:
            state.schedulable_ceiling = replicas.current - replicas.pending
            state.ceiling_since = now
        elif (
            state.schedulable_ceiling is not None
            and now - state.ceiling_since > self.params.unschedulable_backoff_s
        ):
            state.schedulable_ceiling = None
        if state.schedulable_ceiling is None:
            return desired
        return min(desired, max(state.schedulable_ceiling, replicas.current - replicas.pending))
