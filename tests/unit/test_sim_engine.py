"""Simulator invariants: conservation, Little's law, zero load, determinism, cold start, budget."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Objective, make_policy
from sloscale.sim.cluster import ColdStart, Pods
from sloscale.sim.engine import SimConfig, advance, simulate
from sloscale.sim.metrics import Scraper
from sloscale.sim.profile import FixedReplicas
from sloscale.sim.service import ServiceModel

SERVICE = ServiceModel()
SPEC = AutoscalingSpec(minReplicas=1, maxReplicas=50, objective=Objective("p95", 150.0),
                       capacityRpsPerReplica=25.0)


def poisson(rate_rps: float, seconds: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0 / rate_rps, int(rate_rps * seconds)))


def bursty(seed: int = 2) -> np.ndarray:
    """Ten minutes alternating between 30 and 400 rps every two minutes."""
    parts = [poisson(400.0 if k % 2 else 30.0, 120.0, seed + k) + 120.0 * k for k in range(5)]
    return np.sort(np.concatenate(parts))


@pytest.mark.parametrize("policy", ["slo", "hpa", "keda", "kpa"])
def test_requests_are_conserved(policy: str) -> None:
    arrivals = bursty()
    small_queue = replace(SERVICE, queue_per_replica=8)  # force rejections on the bursts
    run = simulate(arrivals, make_policy(policy, SPEC), SPEC, small_queue, SimConfig())
    served = int(np.isfinite(run.latency_ms).sum())
    assert served + len(run.rejected_s) == len(arrivals)
    assert np.all(run.latency_ms >= 0)


def test_bounded_queue_rejects_overflow() -> None:
    path, rejected = advance(0.0, np.array([50.0, 50.0, 0.0]), np.array([1.0, 1.0, 1.0]),
                             replace(SERVICE, queue_per_replica=10), 0.1)
    # capacity 4 per tick: 50 - 4 = 46 > 10, so 36 rejected; then 10 + 50 - 4 = 56: 46 rejected.
    assert rejected.tolist() == [36, 46, 0]
    np.testing.assert_allclose(path, [10.0, 10.0, 6.0])


def test_littles_law_on_a_stationary_poisson_run() -> None:
    tick_s, rate = 0.05, 4 * SERVICE.max_rps * 0.95
    arrivals = poisson(rate, 600.0, seed=3)
    samples: list[float] = []

    class Recording(Scraper):
        def record(self, now: float, completed: int, rejected: int, queued: float) -> None:
            if now <= arrivals[-1]:
                samples.append(queued)
            super().record(now, completed, rejected, queued)

    import sloscale.sim.engine as engine

    spec = replace(SPEC, minReplicas=4)
    original, engine.Scraper = engine.Scraper, Recording  # type: ignore[misc]
    try:
        run = simulate(arrivals, FixedReplicas(4), spec, SERVICE,
                       SimConfig(tick_s=tick_s, scrape_interval_s=tick_s, drain_s=60.0))
    finally:
        engine.Scraper = original  # type: ignore[misc]
    in_queue = float(np.mean(samples))
    little = len(arrivals) / arrivals[-1] * float(np.mean(run.queue_ms)) / 1000.0
    assert in_queue > 1.0  # the test is about a queue that exists
    # The fluid tick adds at most half a tick of wait per request.
    assert abs(in_queue - little) <= 0.1 * little + rate * tick_s / 2


@pytest.mark.parametrize("policy", ["slo", "keda", "kpa"])
def test_zero_load_ends_at_min_replicas(policy: str) -> None:
    arrivals = np.array([0.0, 0.5, 1.0])  # then silence for half an hour
    spec = replace(SPEC, minReplicas=2)
    config = SimConfig(initial_replicas=12, drain_s=1800.0)
    run = simulate(arrivals, make_policy(policy, spec), spec, SERVICE, config)
    assert run.replicas[0] <= 12 and run.replicas[-1] == 2


def test_same_seed_same_result_and_seed_matters() -> None:
    arrivals = bursty()
    config = SimConfig(cold_start=ColdStart(60.0, jitter_s=30.0), seed=7)
    first = simulate(arrivals, make_policy("slo", SPEC), SPEC, SERVICE, config)
    again = simulate(arrivals, make_policy("slo", SPEC), SPEC, SERVICE, config)
    other = simulate(arrivals, make_policy("slo", SPEC), SPEC, SERVICE, replace(config, seed=8))
    np.testing.assert_array_equal(first.latency_ms, again.latency_ms)
    assert first.replica_seconds == again.replica_seconds
    assert not np.array_equal(first.latency_ms, other.latency_ms)


def test_pods_become_ready_after_the_cold_start() -> None:
    pods = Pods.warm(1, ColdStart(60.0), np.random.default_rng(0))
    pods.scale_to(4, now=10.0)
    assert pods.state(69.0).ready == 1 and pods.state(69.0).starting == 3
    assert pods.state(70.0).ready == 4


def test_gpu_budget_keeps_extra_pods_pending_and_free() -> None:
    pods = Pods.warm(2, ColdStart(30.0), np.random.default_rng(0), gpu_budget=3)
    pods.scale_to(6, now=0.0)
    state = pods.state(100.0)
    assert (state.current, state.ready, state.pending) == (6, 3, 3)
    pods.scale_to(2, now=100.0)  # pending go first, then the newest
    assert pods.state(100.0).pending == 0 and pods.scheduled == 2


def test_budget_caps_cost() -> None:
    arrivals = bursty()
    config = SimConfig(gpu_budget=5)
    run = simulate(arrivals, make_policy("keda", SPEC), SPEC, SERVICE, config)
    assert run.replica_seconds <= 5 * (arrivals[-1] + config.drain_s + 1.0)
    assert run.replicas.max() > 5  # it asked for more than the budget


def test_scale_up_from_overload_reaches_the_replicas_the_load_needs() -> None:
    arrivals = poisson(250.0, 600.0)
    run = simulate(arrivals, make_policy("slo", SPEC), SPEC, SERVICE, SimConfig())
    # 250 rps at 25 rps per replica at 70% utilization: about 15 replicas
    assert 11 <= run.replicas[-1] <= 16
