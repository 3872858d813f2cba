"""The `slo` policy: the fewest Ready pods that keep the objective until new pods could help.

Each decision answers one question: what is the fewest pods whose predicted percentile stays
under the target, at the demand the service reaches with the required confidence before a pod
asked for now could be Ready? The parts:

- the horizon H = cold start (measured from the service's own pods, else coldStartSeconds)
  + the decision interval + the metrics' lag (half the rate window);
- the demand over H as a distribution (policies/demand.py): the q-quantile of the peak
  short-window rate, from the service's own forecast errors; q = 2p - 1 for a p-th
  percentile objective unless SloParams sets it; once the history covers a day, raised to
  what followed the same minute a day (and a week) before when that is higher;
- the latency model of one Triton replica (policies/latency.py): its percentile rises with the
  per-pod arrival rate (Poisson per pod behind a Service), as the capacity profile measured
  it, and reaches the target at capacity c, which the policy corrects online from what the
  pods report. For any such monotone model the fewest pods whose predicted percentile at
  demand Q stays under the target is ceil(Q / c); the decision reports the percentile the
  model predicts for the pods it picks, and for the ready pods at the peak rate seen now;
- a breach raises the count at once from the demand now; capacity is released, stepwise, only
  when the demand quantile of a whole horizon fits in fewer pods with a tolerance to spare.

Every time constant follows from the spec (interval, objective, cold start) or is measured;
the parameters left are SloParams', each with its measured effect in docs/benchmarks.md.
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
from sloscale.autoscale.policies.demand import DemandHistory, Forecast, forecast_rps
from sloscale.autoscale.policies.latency import predicted_ms


@dataclass(frozen=True)
class SloParams:
    # Quantile of the demand over the horizon the pods are sized for; None: from the
    # objective's percentile p as 2p - 1 (p95 -> 0.90; see SloPolicy.quantile).
    demand_quantile: float | None = None
    # Forecast errors older than this are forgotten: long enough to have seen the service's
    # bursts many times, short enough to follow a change of regime.
    error_memory_s: float = 3600.0
    # The forecast error at a level is read from this many past decisions at the nearest levels
    # ...
    neighbours: int = 20
    # ... within this factor of the level (a ratio learned at a tenth of the level, a quiet
    # service waking up, says nothing about a busy one).
    neighbourhood_factor: float = 1.5
    # Capacity learning. A percentile under this share of the target at load x says one pod
    # carries at least x (capacity rises); a breach says it carries less (it falls), unless a
    # backlog explains it (a queue built while pods were missing, not one pod's speed).
    healthy_latency_fraction: float = 0.8
    # One breach lowers the learned capacity by at most this factor, and while latency is
    # healthy a cut capacity recovers toward the profile by `recovery_rate` per decision.
    max_capacity_cut: float = 0.8
    recovery_rate: float = 1.02
    # A pod is released only when the window's demand quantile raised by this share still fits
    # in fewer pods: without a dead band, a quantile hovering on a pod boundary releases a pod
    # and asks for it again one decision later. A dead band like the HPA's 10 % tolerance
    # (--horizontal-pod-autoscaler-tolerance, kubernetes.io/docs/tasks/run-application/
    # horizontal-pod-autoscale/#algorithm-details), but on the need, not on the ratio to the
    # current pods, and on the way down only: N + 1 pods stay while the quantile is within
    # 10 % under N pods' capacity, and an ask for more is never delayed.
    scale_down_tolerance: float = 0.1
    # Switches for the ablations (docs/benchmarks.md), not knobs: the forecast errors, the
    # peak short-window rate, the cold start measured from the pods, the daily and weekly
    # season (what followed this minute a day and a week before).
    use_forecast: bool = True
    use_season: bool = True
    use_burstiness: bool = True
    measure_cold_start: bool = True


@dataclass
class SloState:
    capacity_rps: float | None = None  # learned per-replica rps at the objective
    ready: int = -1
    ready_since: float = 0.0
    demand: DemandHistory = field(default_factory=DemandHistory)
    needs: list[tuple[float, int]] = field(default_factory=list)  # (time, pods the forecast needs)
    schedulable_ceiling: int | None = None
    ceiling_since: float = 0.0


def learn_capacity(
    capacity: float | None,
    load_per_replica: float,
    latency_ms: float,
    target_ms: float,
    backlog: bool,
    params: SloParams,
) -> float | None:
    """Update rps/replica at target: a breach at load x bounds it below x, a healthy x above.

    A breach with a backlog says nothing about capacity: a queue (perhaps already drained,
    the window is older than now) made it slow, not this load.
    """
    if load_per_replica <= 0:
        return capacity
    if latency_ms > target_ms:
        if backlog:
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


def min_breach_requests(spec: AutoscalingSpec) -> float:
    """Requests a window needs before its percentile names a slow one (p95: 20, p99: 100)."""
    percentile = spec.objective.percentile
    return 1.0 if percentile is None else 1.0 / (1.0 - percentile / 100.0)


@dataclass
class SloPolicy:
    params: SloParams = field(default_factory=SloParams)
    state: SloState = field(default_factory=SloState)
    name: str = "slo"
    metrics_window_s: float | None = 30.0  # the peak short-window rate is taken within it
    interval_s: float | None = None

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        state = self.state
        if state.capacity_rps is None and spec.capacityRpsPerReplica:
            state.capacity_rps = spec.capacityRpsPerReplica
        latency_ms = objective_value(snapshot, spec)
        if latency_ms is None and snapshot.rps == 0 and not snapshot.pending:
            latency_ms = 0.0  # no traffic at all: nothing is slow
        if snapshot.rps is None or latency_ms is None:
            return hold(replicas, spec, "no metrics: holding")
        pending = snapshot.pending or 0.0
        self._learn(snapshot.rps, pending, latency_ms, replicas, spec, now)
        horizon_s = self.horizon_s(replicas, spec)
        # The history holds arrivals only: a backlog is this moment's debt, not a demand level
        # to learn from (one overload would teach ratios of hundreds).
        rate = snapshot.rps
        peak = max(rate, (snapshot.rps_peak or 0.0) if self.params.use_burstiness else 0.0)
        state.demand.settle_s = self._window_s(spec)
        level = state.demand.record(now, rate, peak, horizon_s, self.params.error_memory_s)
        quantile = self.quantile(spec)
        forecast = (forecast_rps(state.demand, level, peak, quantile, self.params.neighbours,
                                 self.params.neighbourhood_factor,
                                 now if self.params.use_season else None)
                    if self.params.use_forecast else Forecast(peak, "peak now"))
        arrivals = forecast.rps
        # Pods asked for now serve after the horizon: they must drain the backlog within one.
        demand = arrivals + pending / horizon_s
        breach = (latency_ms > spec.objective.targetMs
                  and snapshot.rps * self._window_s(spec) >= min_breach_requests(spec))
        desired, reason, bound_by = self._target(demand, peak, breach, replicas, spec, now,
                                                 horizon_s)
        desired = spec.clamp(self._respect_schedulable(desired, replicas, now))
        predicted = self._predicted_ms(spec, demand, desired)
        if predicted is not None:
            reason = f"{reason}; {spec.objective.latency} {predicted:.0f} ms predicted at {desired}"
        details = {
            "demand_rps": rate,
            "backlog": pending,
            "demand_level_rps": level,
            "demand_quantile_rps": demand,
            "forecast_by": forecast.bound_by,
            "burstiness": peak / rate if rate > 0 else None,
            "quantile": quantile,
            "horizon_s": horizon_s,
            "capacity_rps": state.capacity_rps,
            "latency_ms": latency_ms,
            # The model read at the peak rate the ready pods serve now, beside what they report.
            "modelled_latency_ms": self._predicted_ms(spec, peak, replicas.ready),
            "predicted_latency_ms": predicted,
            "predicted_load_per_pod": demand / desired if desired else None,
            "bound_by": bound_by,
        }
        return Decision(desired, reason, details)

    def _predicted_ms(self, spec: AutoscalingSpec, demand_rps: float, pods: int) -> float | None:
        return predicted_ms(spec.latencyCurve, spec.capacityRpsPerReplica,
                            self.state.capacity_rps, spec.objective.targetMs, demand_rps, pods)

    def quantile(self, spec: AutoscalingSpec) -> float:
        """q = 2p - 1 (p95 -> 0.90, p99 -> 0.98; a mean objective: 0.5): the objective lets
        1 - p of a window's requests be slow, and a short forecast overloads the pods for
        about half a horizon, so twice that share of decisions may fall short. q = p met the
        same windows at 1-24 % more replica-hours on both shared traces (and on every
        held-out one); docs/benchmarks.md."""
        if self.params.demand_quantile is not None:
            return self.params.demand_quantile
        percentile = spec.objective.percentile
        return 0.5 if percentile is None else max(0.5, 2.0 * percentile / 100.0 - 1.0)

    def horizon_s(self, replicas: ReplicaState, spec: AutoscalingSpec) -> float:
        """How far ahead a pod asked for now can help: its cold start (measured when the pods
        tell it), the wait for the next decision, and the lag of the rates the policy reads."""
        cold_start = replicas.cold_start_s if self.params.measure_cold_start else None
        if cold_start is None:
            cold_start = spec.coldStartSeconds
        return cold_start + spec.interval + self._window_s(spec) / 2

    def _window_s(self, spec: AutoscalingSpec) -> float:
        return min(self.metrics_window_s or spec.objective.window, spec.objective.window)

    def _learn(
        self,
        rps: float,
        pending: float,
        latency_ms: float,
        replicas: ReplicaState,
        spec: AutoscalingSpec,
        now: float,
    ) -> None:
        """Update the capacity estimate from a window that describes the current replicas:
        the pods must have been the same for a whole rate window."""
        state, params, target_ms = self.state, self.params, spec.objective.targetMs
        if replicas.ready != state.ready:  # the first count seen has no known change
            state.ready_since = now if state.ready >= 0 else -math.inf
            state.ready = replicas.ready
        if replicas.ready <= 0 or now - state.ready_since < self._window_s(spec):
            return
        # A backlog: more queued than the pods hold in flight at capacity (Little's law).
        in_flight = (state.capacity_rps or 0.0) * target_ms / 1000.0
        backlog = pending > replicas.ready * max(1.0, in_flight)
        learned = learn_capacity(
            state.capacity_rps, rps / replicas.ready, latency_ms, target_ms, backlog, params
        )
        state.capacity_rps = recover(
            learned, spec.capacityRpsPerReplica, latency_ms, target_ms, params
        )

    def _target(
        self,
        demand: float,
        peak: float,
        breach: bool,
        replicas: ReplicaState,
        spec: AutoscalingSpec,
        now: float,
        horizon_s: float,
    ) -> tuple[int, str, str]:
        capacity = self.state.capacity_rps
        if capacity is None:  # nothing learned yet: only the latency can drive it
            if breach:
                return (max(replicas.current, replicas.ready + 1),
                        "breach, no capacity model yet", "breach")
            return replicas.current, "learning capacity", "no capacity model"
        needed = ceil_div(demand, capacity)
        bound_by = "demand quantile"
        if breach and needed <= replicas.ready:
            # The forecast says the pods suffice, the pods say otherwise: trust the pods.
            needed, bound_by = replicas.ready + 1, "breach"
        keep = max(needed, ceil_div(demand * (1.0 + self.params.scale_down_tolerance), capacity))
        self._remember_need(keep, now, self._down_window_s(spec, horizon_s))
        if needed > replicas.current:
            step = spec.scaleUp.maxStep or needed
            return (min(needed, replicas.current + step),
                    f"{bound_by}: {demand:.1f} rps over {horizon_s:.0f} s needs {needed}",
                    bound_by)
        return self._scale_down(replicas, spec, now, horizon_s, needed, bound_by)

    def _remember_need(self, needed: int, now: float, window_s: float) -> None:
        needs = self.state.needs
        needs.append((now, needed))
        while needs and needs[0][0] <= now - window_s:
            needs.pop(0)

    def _down_window_s(self, spec: AutoscalingSpec, horizon_s: float) -> float:
        # A pod released and needed again within a horizon costs more than keeping it.
        return max(spec.scaleDown.stabilizationSeconds, horizon_s)

    def _scale_down(
        self,
        replicas: ReplicaState,
        spec: AutoscalingSpec,
        now: float,
        horizon_s: float,
        needed: int,
        bound_by: str,
    ) -> tuple[int, str, str]:
        """Release what the demand quantile of a whole window does not need, stepwise."""
        state = self.state
        window_s = self._down_window_s(spec, horizon_s)
        if state.demand.realised < self.params.neighbours:
            return replicas.current, "holding: too few forecast errors known yet", "start"
        floor = max(n for _, n in state.needs)
        if floor >= replicas.current:
            return (replicas.current,
                    f"holding: the last {window_s:.0f} s kept {floor}", bound_by)
        # Stepwise: at most what releases every pod over one horizon of decisions.
        step = spec.scaleDown.maxStep or max(
            1, math.ceil(replicas.current * spec.interval / horizon_s))
        return (max(floor, replicas.current - step),
                f"scale down: the last {window_s:.0f} s kept {floor}", "scale-down window")

    def _respect_schedulable(self, desired: int, replicas: ReplicaState, now: float) -> int:
        """After pods were seen Pending, ask no more than fit for a scale-down window."""
        state = self.state
        if replicas.pending > 0:
            state.schedulable_ceiling = replicas.current - replicas.pending
            state.ceiling_since = now
        elif (
            state.schedulable_ceiling is not None
            and now - state.ceiling_since > UNSCHEDULABLE_BACKOFF_S
        ):
            state.schedulable_ceiling = None
        if state.schedulable_ceiling is None:
            return desired
        return min(desired, max(state.schedulable_ceiling, replicas.current - replicas.pending))


# After pods were seen Pending, the policy asks no more than fit for this long (the loop's
# memory of unschedulable pods is the same): the cluster's answer does not change faster
# than a node pool scales.
UNSCHEDULABLE_BACKOFF_S = 300.0
