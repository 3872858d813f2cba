"""Knative Pod Autoscaler (KPA), reimplemented from knative/serving pkg/autoscaler/scaling.

Every 2 s tick: average concurrency over the 60 s stable window and the 6 s panic window,
`desired = ceil(observed / target)` clamped by the max scale-up rate (1000x) and the max
scale-down rate (2: at most halve per tick); panic mode starts when the panic-window count
reaches 200% of the ready pods and, while it lasts (until a whole stable window passes below
the threshold), the count never goes down. Concurrency comes from Little's law (rps x latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sloscale.autoscale.policies.base import AutoscalingSpec, Decision, ReplicaState, Snapshot, hold


@dataclass(frozen=True)
class KpaSettings:
    """config-autoscaler defaults; `target_concurrency` is per pod, before utilization."""

    target_concurrency: float = 100.0
    target_utilization: float = 0.7
    stable_window_s: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0

    @property
    def panic_window_s(self) -> float:
        return self.stable_window_s * self.panic_window_percentage / 100.0

    @property
    def target_value(self) -> float:
        return self.target_concurrency * self.target_utilization


@dataclass
class KpaState:
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time, concurrency)
    panic_time: float | None = None
    max_panic_pods: int = 0


def concurrency(snapshot: Snapshot) -> float | None:
    """Average in-flight requests (Little's law): what Knative's queue-proxy reports."""
    if snapshot.rps == 0:
        return 0.0  # no requests: nothing in flight (latency has no samples)
    if snapshot.rps is None or snapshot.latency_mean_ms is None:
        return None
    return snapshot.rps * snapshot.latency_mean_ms / 1000.0


def window_average(samples: list[tuple[float, float]], window_s: float, now: float) -> float:
    recent = [value for time, value in samples if time > now - window_s]
    return sum(recent) / len(recent) if recent else 0.0


def scale(
    state: KpaState, settings: KpaSettings, stable: float, panic: float, ready: int, now: float
) -> tuple[int, bool]:
    """autoscaler.Scale: the desired pod count and whether it is panicking."""
    ready = max(ready, 1)
    max_up = math.ceil(settings.max_scale_up_rate * ready)
    max_down = math.floor(ready / settings.max_scale_down_rate)
    stable_pods = min(max(math.ceil(stable / settings.target_value), max_down), max_up)
    panic_pods = min(max(math.ceil(panic / settings.target_value), max_down), max_up)
    over_threshold = panic / settings.target_value / ready >= (
        settings.panic_threshold_percentage / 100.0
    )
    if over_threshold:
        state.panic_time = now
    elif state.panic_time is not None and now > state.panic_time + settings.stable_window_s:
        state.panic_time, state.max_panic_pods = None, 0
    if state.panic_time is None:
        return stable_pods, False
    state.max_panic_pods = max(state.max_panic_pods, panic_pods)
    return state.max_panic_pods, True


@dataclass
class KpaPolicy:
    settings: KpaSettings = field(default_factory=KpaSettings)
    state: KpaState = field(default_factory=KpaState)
    name: str = "kpa"
    metrics_window_s: float | None = 2.0  # the queue-proxy's per-second stats, not a 1m rate
    interval_s: float | None = 2.0  # Knative's autoscaler tick

    def decide(
        self, snapshot: Snapshot, replicas: ReplicaState, spec: AutoscalingSpec, now: float
    ) -> Decision:
        value = concurrency(snapshot)
        if value is None:
            return hold(replicas, spec, "no concurrency metric: holding")
        if not self.state.samples or self.state.samples[-1][0] < snapshot.time:
            self.state.samples.append((snapshot.time, value))
        horizon = now - self.settings.stable_window_s
        self.state.samples = [s for s in self.state.samples if s[0] > horizon]
        stable = window_average(self.state.samples, self.settings.stable_window_s, now)
        panic = window_average(self.state.samples, self.settings.panic_window_s, now)
        desired, panicking = scale(self.state, self.settings, stable, panic, replicas.ready, now)
        return Decision(
            spec.clamp(desired),
            f"{'panic' if panicking else 'stable'}: concurrency {stable:.1f}/{panic:.1f}",
            {"stable": stable, "panic": panic, "panicking": panicking},
        )
