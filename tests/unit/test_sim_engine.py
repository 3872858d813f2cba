"""Simulator: Triton's batcher by hand, per-pod queues, routing to Ready pods, invariants."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sloscale.autoscale.policies import AutoscalingSpec, Decision, Objective, make_policy
from sloscale.sim.cluster import ColdStart, Pods
from sloscale.sim.engine import Fleet, RunResult, SimConfig, simulate
from sloscale.sim.metrics import Scraper
from sloscale.sim.profile import FixedReplicas
from sloscale.sim.service import ServiceModel

SERVICE = ServiceModel()  # 40 ms + 20 ms per item, batches of up to 8, 5 ms batching delay
SPEC = AutoscalingSpec(minReplicas=1, maxReplicas=50, objective=Objective("p95", 150.0),
                       capacityRpsPerReplica=11.0)


def poisson(rate_rps: float, seconds: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0 / rate_rps, int(rate_rps * seconds)))


def bursty(seed: int = 2) -> np.ndarray:
    """Ten minutes alternating between 15 and 200 rps every two minutes."""
    parts = [poisson(200.0 if k % 2 else 15.0, 120.0, seed + k) + 120.0 * k for k in range(5)]
    return np.sort(np.concatenate(parts))


def one_pod(arrivals: list[float], service: ServiceModel = SERVICE) -> np.ndarray:
    spec = replace(SPEC, maxReplicas=1)
    run = simulate(np.array(arrivals), FixedReplicas(1), spec, service, SimConfig(drain_s=5.0))
    return run.latency_ms


@pytest.mark.parametrize(
    ("arrivals", "latency_ms"),
    [
        # alone: waits the whole 5 ms batching delay, then a batch of one (40 + 20)
        ([0.0], [65.0]),
        # a second request inside the delay joins the batch: both leave at 5 + 80 ms
        ([0.0, 0.002], [85.0, 83.0]),
        # eight at once fill a batch: no delay, 40 + 8 * 20
        ([0.0] * 8, [200.0] * 8),
        # the ninth waits for the full batch (200 ms), then its delay has long passed: it goes
        # at once as a batch of one: 200 + 60
        ([0.0] * 9, [200.0] * 8 + [260.0]),
        # arriving while a batch runs: queued, dispatched when the instance is free (65 ms),
        # together with whatever came, here alone: 65 + 60 - 10
        ([0.0, 0.010], [65.0, 115.0]),
    ],
)
def test_dynamic_batcher_by_hand(arrivals: list[float], latency_ms: list[float]) -> None:
    np.testing.assert_allclose(one_pod(arrivals), latency_ms, atol=1e-6)


@pytest.mark.parametrize(
    ("close_at_fraction", "latency_ms"),
    [
        # the ideal batcher: the second batch closes when the first ends (65 ms) and takes
        # both waiting requests: 65 + 40 + 2 x 20
        (1.0, [65.0, 135.0, 105.0]),
        # closing half-way (5 + 30 = 35 ms) takes only the request at 10 ms; it waits for the
        # first batch (65 + 60); the one at 40 ms is taken half-way through that (95 ms) and
        # runs after it (125 + 60)
        (0.5, [65.0, 115.0, 145.0]),
    ],
)
def test_the_next_batch_closes_at_the_close_fraction(close_at_fraction: float,
                                                     latency_ms: list[float]) -> None:
    service = replace(SERVICE, close_at_fraction=close_at_fraction)
    np.testing.assert_allclose(one_pod([0.0, 0.010, 0.040], service), latency_ms, atol=1e-6)


def test_an_early_close_takes_only_what_was_queued_when_the_running_batch_started() -> None:
    # Every batch closing at once is the fraction 0: the request at 10 ms goes alone once its
    # delay is up (15 ms) and runs after the first batch (65 + 60); the one at 20 ms is taken
    # as that batch starts (65 ms) and runs after it (125 + 60). Closing half-way would have
    # taken both at 35 ms as one batch (65 + 80).
    arrivals = [0.0, 0.010, 0.020]
    every = replace(SERVICE, close_at_fraction=0.5, early_close_share=1.0)
    np.testing.assert_allclose(one_pod(arrivals, every), [65.0, 115.0, 165.0], atol=1e-6)
    np.testing.assert_allclose(one_pod(arrivals, replace(SERVICE, close_at_fraction=0.5)),
                               [65.0, 135.0, 125.0], atol=1e-6)


def test_early_closes_are_drawn_per_batch_from_the_seed() -> None:
    service = replace(SERVICE, close_at_fraction=0.8, early_close_share=0.3)
    fractions = service.close_fractions(10_000, seed=4)
    assert set(np.unique(fractions)) == {0.0, 0.8}
    assert np.mean(fractions == 0.0) == pytest.approx(0.3, abs=0.02)
    np.testing.assert_array_equal(service.close_fractions(10_000, seed=4), fractions)
    assert SERVICE.close_fractions(10_000, seed=4).tolist() == [1.0]  # none early: one value
    with pytest.raises(ValueError, match="--early-close-share"):
        replace(SERVICE, early_close_share=1.5)


def test_zero_load_latency_is_one_batch_plus_the_delay() -> None:
    latency = one_pod([float(t) for t in range(10)])
    np.testing.assert_allclose(latency, SERVICE.zero_load_ms)
    assert SERVICE.zero_load_ms == 65.0


@pytest.mark.parametrize("policy", ["slo", "hpa", "keda", "kpa"])
def test_requests_are_conserved(policy: str) -> None:
    arrivals = bursty()
    small_queue = replace(SERVICE, max_queue_size=8)  # force rejections on the bursts
    run = simulate(arrivals, make_policy(policy, SPEC), SPEC, small_queue, SimConfig())
    assert len(run.rejected_s) > 0
    assert len(run.latency_ms) + len(run.rejected_s) == len(arrivals)
    assert np.all(np.isfinite(run.latency_ms)) and np.all(run.latency_ms >= SERVICE.batch_ms(1))
    assert np.all(run.queue_ms >= 0) and np.all(run.queue_ms <= run.latency_ms)


def test_unbounded_queue_rejects_nothing_under_overload() -> None:
    arrivals = poisson(200.0, 60.0)  # five times what one pod can serve
    run = simulate(arrivals, FixedReplicas(1), replace(SPEC, maxReplicas=1), SERVICE,
                   SimConfig(drain_s=10.0))
    assert len(run.rejected_s) == 0
    assert run.latency_ms.max() > 10_000  # the queue grew instead


def _fleet(arrivals: np.ndarray, pods: Pods, balancer: str = "random") -> Fleet:
    return Fleet(arrivals, SERVICE, SimConfig(balancer=balancer), pods)  # type: ignore[arg-type]


def test_traffic_goes_only_to_ready_pods() -> None:
    pods = Pods.warm(1, ColdStart(10.0), np.random.default_rng(0))
    pods.scale_to(4, now=0.0)
    arrivals = np.sort(np.random.default_rng(1).uniform(0.0, 20.0, 2000))
    fleet = _fleet(arrivals, pods)
    fleet.serve(0, len(arrivals), 20.0)
    early = fleet.queues.pod_of[arrivals < 10.0]
    late = fleet.queues.pod_of[arrivals >= 10.0]
    assert set(early.tolist()) == {0}
    assert set(late.tolist()) == {0, 1, 2, 3}


def test_no_ready_pod_rejects() -> None:
    pods = Pods(ColdStart(10.0), np.random.default_rng(0))
    pods.scale_to(1, now=0.0)
    fleet = _fleet(np.array([1.0, 11.0]), pods)
    fleet.serve(0, 2, 20.0)
    assert fleet.rejected.tolist() == [True, False]


def test_random_balancer_spreads_evenly() -> None:
    pods = Pods.warm(8, ColdStart(10.0), np.random.default_rng(0))
    arrivals = np.sort(np.random.default_rng(2).uniform(0.0, 100.0, 16_000))
    fleet = _fleet(arrivals, pods)
    fleet.serve(0, len(arrivals), 100.0)
    counts = np.bincount(fleet.queues.pod_of, minlength=8)
    assert counts.min() > 1800 and counts.max() < 2200  # 2000 each, about 45 sd


def test_least_requests_beats_random_at_the_same_load() -> None:
    arrivals = poisson(4 * 15.0, 600.0, seed=4)  # 15 rps per pod: queues form
    spec = replace(SPEC, minReplicas=4, maxReplicas=4)
    p95 = {}
    for balancer in ("random", "least-requests"):
        config = SimConfig(balancer=balancer, drain_s=10.0)  # type: ignore[arg-type]
        run = simulate(arrivals, FixedReplicas(4), spec, SERVICE, config)
        p95[balancer] = float(np.percentile(run.latency_ms, 95))
    assert p95["least-requests"] < 0.9 * p95["random"]


def test_each_pod_sees_its_own_queue() -> None:
    """Random routing: the same per-pod load gives the same latency at 1 or 16 pods (a shared
    queue would make 16 pods far faster)."""
    p95 = []
    for pods in (1, 16):
        arrivals = poisson(pods * 12.0, 400.0, seed=5)
        spec = replace(SPEC, minReplicas=pods, maxReplicas=pods)
        run = simulate(arrivals, FixedReplicas(pods), spec, SERVICE, SimConfig(drain_s=10.0))
        p95.append(float(np.percentile(run.latency_ms, 95)))
    assert abs(p95[0] - p95[1]) < 0.15 * p95[1]


def test_littles_law_on_a_stationary_poisson_run() -> None:
    rate = 4 * 14.0
    arrivals = poisson(rate, 600.0, seed=3)
    samples: list[float] = []

    class Recording(Scraper):
        def record(self, now: float, completed: int, rejected: int, queued: float) -> None:
            if 10.0 <= now <= arrivals[-1]:
                samples.append(queued)
            super().record(now, completed, rejected, queued)

    import sloscale.sim.engine as engine

    spec = replace(SPEC, minReplicas=4, maxReplicas=4)
    original, engine.Scraper = engine.Scraper, Recording  # type: ignore[misc]
    try:
        run = simulate(arrivals, FixedReplicas(4), spec, SERVICE,
                       SimConfig(scrape_interval_s=0.05, drain_s=10.0))
    finally:
        engine.Scraper = original  # type: ignore[misc]
    in_system = float(np.mean(samples))
    little = rate * float(np.mean(run.latency_ms)) / 1000.0
    assert in_system > 4.0  # requests wait: the test is about queues that exist
    assert abs(in_system - little) <= 0.05 * little


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


def test_pods_report_their_measured_cold_start() -> None:
    pods = Pods.warm(2, ColdStart(60.0, 20.0), np.random.default_rng(0))
    assert pods.state(0.0).cold_start_s is None  # warm pods have none to tell
    pods.scale_to(6, now=0.0)
    draws = sorted(pods.cold_start_s.values())
    assert len(draws) == 4 and all(40.0 <= d <= 80.0 for d in draws)
    assert pods.state(100.0).cold_start_s == pytest.approx(np.percentile(draws, 90))


def test_scraper_reports_the_peak_rate_between_two_scrapes() -> None:
    scraper = Scraper(np.zeros(100), np.zeros(100))
    for now, completed in [(0.0, 0), (5.0, 10), (10.0, 60), (15.0, 70)]:
        scraper.record(now, completed, 0, 0.0)
    snapshot = scraper.snapshot(15.0, 15.0, 95.0)
    assert snapshot.rps == pytest.approx(70 / 15)
    assert snapshot.rps_peak == pytest.approx(50 / 5)


def test_gpu_budget_keeps_extra_pods_pending_and_free() -> None:
    pods = Pods.warm(2, ColdStart(30.0), np.random.default_rng(0), gpu_budget=3)
    pods.scale_to(6, now=0.0)
    state = pods.state(100.0)
    assert (state.current, state.ready, state.pending) == (6, 3, 3)
    assert pods.scale_to(2, now=100.0) == [2]  # pending go first, then the newest
    assert pods.state(100.0).pending == 0 and pods.scheduled == 2


def test_budget_caps_cost() -> None:
    arrivals = bursty()
    config = SimConfig(gpu_budget=5)
    run = simulate(arrivals, make_policy("keda", SPEC), SPEC, SERVICE, config)
    assert run.replica_seconds <= 5 * (arrivals[-1] + config.drain_s) + 60.0  # + draining
    assert run.replicas.max() > 5  # it asked for more than the budget


class _Steps:
    """Two pods for 30 s, then one: the deleted pod must still serve its backlog."""

    name, metrics_window_s, interval_s = "steps", None, 5.0

    def decide(self, snapshot: object, replicas: object, spec: object, now: float) -> Decision:
        return Decision(2 if now < 30.0 else 1, "by hand")


def test_a_deleted_pod_drains_its_queue_and_is_paid_until_then() -> None:
    arrivals = poisson(150.0, 30.0, seed=6)  # about twice what two pods serve: backlogs
    spec = replace(SPEC, minReplicas=1, maxReplicas=2)
    run = simulate(arrivals, _Steps(), spec, SERVICE, SimConfig(initial_replicas=2,
                                                                drain_s=10.0))
    assert len(run.latency_ms) == len(arrivals) and np.all(np.isfinite(run.latency_ms))
    end_s = arrivals[-1] + 10.0
    paid_without_drain = 2 * 30.0 + 1 * (end_s - 30.0)
    assert run.replica_seconds > paid_without_drain + 5.0


class Seen:
    """A fixed policy that remembers the snapshots it was given."""

    name, metrics_window_s, interval_s = "seen", None, None

    def __init__(self, replicas: int) -> None:
        self.replicas, self.snapshots = replicas, []

    def decide(self, snapshot, replicas, spec, now):  # noqa: ANN001, ANN201 - Driver protocol
        self.snapshots.append((now, snapshot))
        return Decision(self.replicas, "fixed")


def test_the_loop_view_reads_older_scrapes_and_the_slowest_pods_summary() -> None:
    """The operator's view (opt-in): metrics a lag late, and p95 as max over pods' summaries."""
    arrivals = poisson(60.0, 120.0)
    spec = replace(SPEC, minReplicas=6, interval=5.0)
    ideal, loop = Seen(6), Seen(6)
    config = SimConfig(scrape_interval_s=1.0, initial_replicas=6, drain_s=5.0)
    simulate(arrivals, ideal, spec, SERVICE, config)
    simulate(arrivals, loop, spec, SERVICE, replace(
        config, metrics_lag_s=3.0, metrics_window_s=10.0, pod_summary_window_s=10.0))
    for (now, seen), (_, plain) in zip(loop.snapshots[4:], ideal.snapshots[4:], strict=True):
        assert seen.time == pytest.approx(now - 3.0)  # the newest scrape a lag ago
        assert seen.latency_ms >= 0.8 * plain.latency_ms  # max over 6 pods: no lower than most
    tails = [(s.latency_ms, p.latency_ms) for (_, s), (_, p) in zip(loop.snapshots[4:],
                                                                      ideal.snapshots[4:],
                                                                      strict=True)]
    assert np.mean([s for s, _ in tails]) > np.mean([p for _, p in tails])


def test_the_loop_view_is_off_by_default() -> None:
    config = SimConfig()
    assert (config.metrics_lag_s, config.metrics_window_s, config.pod_summary_window_s) == (
        0.0, None, None)


def test_no_batch_time_spread_is_the_line_exactly() -> None:
    # One 1.0 for every batch, and the generator untouched (x * 1.0 is x in floating point, so
    # every figure computed before the spread existed stays the same to the bit).
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(SERVICE.batch_scales(1000, rng), [1.0])
    assert rng.random() == np.random.default_rng(0).random()
    arrivals = poisson(15.0, 120.0)
    np.testing.assert_array_equal(one_pod(list(arrivals)),
                                  one_pod(list(arrivals), replace(SERVICE, batch_time_cv=0.0)))


def test_batch_scales_have_mean_one_and_the_cv_asked() -> None:
    scales = replace(SERVICE, batch_time_cv=0.25).batch_scales(200_000,
                                                                np.random.default_rng(1))
    assert np.mean(scales) == pytest.approx(1.0, abs=0.005)
    assert np.std(scales) == pytest.approx(0.25, abs=0.005)
    assert np.all(scales > 0)


def test_each_batch_takes_the_line_times_its_oldest_requests_multiplier() -> None:
    # Lone requests 10 s apart: each is a batch of one opened by itself, so its latency is
    # the 5 ms delay + 60 ms x its own multiplier (ServiceModel.batcher_args draws them from
    # the seed: SimConfig's 0 here).
    spread = replace(SERVICE, batch_time_cv=0.2)
    arrivals = [10.0 * k for k in range(400)]
    scales = spread.batcher_args(np.array(arrivals), 0)[-1]
    np.testing.assert_allclose(one_pod(arrivals, spread), 5.0 + 60.0 * scales, rtol=1e-9)


def test_a_spread_raises_p95_and_keeps_the_mean_batch_time() -> None:
    # By hand, at zero load (requests alone, as above): latency = 5 + 60 m with m lognormal of
    # mean 1 and cv 0.2, so sigma = sqrt(ln 1.04) = 0.198 and the mean stays 65 ms while
    # p95 = 5 + 60 exp(-sigma^2 / 2 + 1.645 sigma) = 5 + 60 x 1.358 = 86.5 ms (65 on the line).
    arrivals = [10.0 * k for k in range(4000)]
    line = one_pod(arrivals)
    spread = one_pod(arrivals, replace(SERVICE, batch_time_cv=0.2))
    assert np.percentile(line, 95) == pytest.approx(65.0)
    assert np.mean(spread) == pytest.approx(65.0, rel=0.01)
    assert np.percentile(spread, 95) == pytest.approx(86.5, rel=0.02)


def batches_against_the_line(run: RunResult, service: ServiceModel) -> np.ndarray:
    """Each batch's time over the line for its size (a batch: the requests starting together)."""
    start_ms = np.round(run.admitted_s * 1000.0 + run.queue_ms, 6)
    _, first, sizes = np.unique(start_ms, return_index=True, return_counts=True)
    busy_ms = run.latency_ms[first] - run.queue_ms[first]
    return busy_ms / (service.base_ms + service.per_item_ms * sizes)


def test_under_load_a_spread_lengthens_the_tail_not_the_batches() -> None:
    # 12 rps on the default pod (about 40 % busy): the batches still take the line on average
    # (the multipliers' mean is 1), while the queue behind a slow batch grows the p95
    # (Pollaczek-Khinchine: the wait grows with the service time's second moment, 1 + cv^2).
    arrivals = poisson(12.0, 600.0, seed=4)
    spec = replace(SPEC, maxReplicas=1)
    runs = [simulate(arrivals, FixedReplicas(1), spec, replace(SERVICE, batch_time_cv=cv),
                     SimConfig(drain_s=5.0)) for cv in (0.0, 0.3)]
    line, spread = (batches_against_the_line(run, SERVICE) for run in runs)
    np.testing.assert_allclose(line, 1.0)
    assert np.mean(spread) == pytest.approx(1.0, abs=0.02)
    assert np.std(spread) == pytest.approx(0.3, abs=0.03)
    line_p95, spread_p95 = (np.percentile(run.latency_ms, 95) for run in runs)
    assert spread_p95 > 1.1 * line_p95


def test_without_spells_the_multipliers_are_the_independent_draws_of_before() -> None:
    # batch_time_tau_ms 0 (the default) draws exactly what batch_time_cv alone drew, from the
    # same generator, so every figure taken with a spread before spells existed stays the same.
    arrivals = poisson(20.0, 60.0)
    spread = replace(SERVICE, batch_time_cv=0.2)
    sigma = np.sqrt(np.log1p(0.2 ** 2))
    before = np.random.default_rng([3, 2]).lognormal(-sigma ** 2 / 2, sigma, len(arrivals))
    np.testing.assert_array_equal(spread.batcher_args(arrivals, 3)[-1], before)
    # A correlation time on no spread is still the line exactly.
    np.testing.assert_array_equal(
        replace(SERVICE, batch_time_tau_ms=80.0).batcher_args(arrivals, 3)[-1], [1.0])


def test_spells_keep_mean_one_and_the_cv_and_decay_with_tau() -> None:
    # Arrivals every 10 ms for an hour: the process read at them is lognormal of mean 1 and the
    # cv asked, its log correlated exp(-dt / tau) between readings dt apart (Ornstein-Uhlenbeck).
    times_s = np.arange(360_000) * 0.010
    spells = replace(SERVICE, batch_time_cv=0.25, batch_time_tau_ms=50.0)
    scales = spells.batcher_args(times_s, 0)[-1]
    assert np.mean(scales) == pytest.approx(1.0, abs=0.01)
    assert np.std(scales) == pytest.approx(0.25, abs=0.01)
    logs = np.log(scales) - np.mean(np.log(scales))
    for lag in (1, 5, 10):
        correlation = np.mean(logs[:-lag] * logs[lag:]) / np.var(logs)
        assert correlation == pytest.approx(np.exp(-lag * 10.0 / 50.0), abs=0.02)
    # The process is of time: a reading depends on when, not on which request it is.
    sparse = spells.batcher_args(times_s * 10.0, 0)[-1]
    sparse_logs = np.log(sparse) - np.mean(np.log(sparse))
    assert np.mean(sparse_logs[:-1] * sparse_logs[1:]) / np.var(sparse_logs) == pytest.approx(
        np.exp(-100.0 / 50.0), abs=0.02)


def test_slow_spells_raise_a_busy_pods_p95_at_the_same_spread() -> None:
    # One pod at 12 rps (about 40 % busy), cv 0.3: drawn independently, a slow batch is
    # followed by an ordinary one and the queue behind it drains; in spells of 300 ms (several
    # batches) slow batches follow each other and the queue keeps growing. Same marginal:
    # the batches still take the line on average.
    arrivals = poisson(12.0, 1200.0, seed=4)
    spec = replace(SPEC, maxReplicas=1)
    spread = replace(SERVICE, batch_time_cv=0.3)
    runs = [simulate(arrivals, FixedReplicas(1), spec, replace(spread, batch_time_tau_ms=tau),
                     SimConfig(drain_s=5.0)) for tau in (0.0, 300.0)]
    independent, spells = (np.percentile(run.latency_ms, 95) for run in runs)
    assert spells > 1.08 * independent
    assert np.mean(batches_against_the_line(runs[1], SERVICE)) == pytest.approx(1.0, abs=0.03)


def test_the_profile_measures_a_latency_curve_through_the_target_at_capacity() -> None:
    from sloscale.sim.profile import CURVE_SHARES, profiled_spec

    spec = profiled_spec(SERVICE, AutoscalingSpec(objective=Objective("p95", 150.0)),
                         SimConfig(seed=2))
    capacity, curve = spec.capacityRpsPerReplica, spec.latencyCurve
    assert capacity is not None and curve is not None
    assert curve.rps == pytest.approx(tuple(share * capacity for share in CURVE_SHARES))
    assert curve.ms[0] < 150.0 < curve.ms[-1]  # light load meets it, 10 % past capacity not
    # The capacity is the bisection's: the curve crosses the target between it and 1.1 x it.
    crossing = curve.rate_at_ms(150.0)
    assert crossing is not None and capacity <= crossing <= 1.1 * capacity
