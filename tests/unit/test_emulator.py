"""Emulated Triton pods: batching, queueing and the metrics page they serve."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hack.emulator.exposition import render
from hack.emulator.replica import EmulatedReplica
from hack.emulator.service import EmulatedService
from sloscale.sim.service import ServiceModel

MODEL = ServiceModel(base_ms=40.0, per_item_ms=20.0, max_batch=8, max_queue_delay_ms=5.0)


def _run(service: EmulatedService, rate_rps: float, seconds: float, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_rps, size=int(rate_rps * seconds * 1.2)))
    arrivals = arrivals[arrivals < seconds]
    step = 0.1
    for index in range(int(seconds / step) + 50):  # then drain
        lo, hi = index * step, (index + 1) * step
        service.step(arrivals[(arrivals >= lo) & (arrivals < hi)], hi)


def test_lone_request_waits_the_queue_delay_then_one_batch() -> None:
    replica = EmulatedReplica(MODEL)
    replica.offer(1.0)
    assert replica.advance(1.001) == []  # still waiting for a batch to fill
    done = replica.advance(2.0)
    assert done == [(1.0, pytest.approx(1.0 + 0.065))]  # 5 ms delay + 40 + 20 x 1
    assert (replica.counters.success, replica.counters.executions) == (1, 1)


def test_a_full_batch_goes_at_once() -> None:
    replica = EmulatedReplica(MODEL)
    for i in range(8):
        replica.offer(1.0 + i * 0.0001)
    done = replica.advance(2.0)
    assert len(done) == 8 and replica.counters.executions == 1
    latency_ms = max((finish - arrival) * 1000.0 for arrival, finish in done)
    assert latency_ms == pytest.approx(0.7 + 40 + 160, abs=0.01)


def test_closing_early_follows_the_simulators_rules() -> None:
    # tests/unit/test_sim_engine.py's case: half-way closing leaves the 40 ms request behind
    replica = EmulatedReplica(replace(MODEL, close_at_fraction=0.5))
    for arrival in (0.0, 0.010, 0.040):
        replica.offer(arrival)
    done = []
    for step in range(1, 400):  # 1 ms steps, arrivals offered before they are due
        done += replica.advance(step / 1000.0)
    assert [(finish - arrival) * 1000.0 for arrival, finish in done] == pytest.approx(
        [65.0, 115.0, 145.0])


def test_early_closes_follow_the_simulators_rules() -> None:
    # tests/unit/test_sim_engine.py's case: every batch closing at once
    replica = EmulatedReplica(replace(MODEL, close_at_fraction=0.5, early_close_share=1.0))
    for arrival in (0.0, 0.010, 0.020):
        replica.offer(arrival)
    done = []
    for step in range(1, 400):
        done += replica.advance(step / 1000.0)
    assert [(finish - arrival) * 1000.0 for arrival, finish in done] == pytest.approx(
        [65.0, 115.0, 165.0])


def test_requests_are_conserved_and_batching_kicks_in_under_load() -> None:
    service = EmulatedService(MODEL, seed=3)
    service.set_ready_pods(["a", "b"])
    _run(service, rate_rps=50, seconds=20)  # 25 rps per pod; one pod serves up to 40
    ledger = service.ledger
    assert ledger.arrived == len(ledger.latency_ms) + ledger.rejected + service.waiting
    assert ledger.rejected == 0 and service.waiting == 0
    counters = [r.counters for r in service.replicas.values()]
    assert sum(c.executions for c in counters) < sum(c.success for c in counters)


def test_overload_builds_a_queue_and_latency_grows() -> None:
    light, heavy = EmulatedService(MODEL, seed=1), EmulatedService(MODEL, seed=1)
    light.set_ready_pods(["a"])
    heavy.set_ready_pods(["a"])
    _run(light, rate_rps=10, seconds=20)
    _run(heavy, rate_rps=45, seconds=20)  # above the 40 rps one pod can do
    assert np.percentile(heavy.ledger.latency_ms, 95) > 5 * np.percentile(
        light.ledger.latency_ms, 95
    )


def test_no_ready_pod_rejects_and_removed_pods_drain_their_queue() -> None:
    service = EmulatedService(MODEL)
    service.step(np.array([0.1, 0.2]), 0.3)
    assert service.ledger.rejected == 2 and service.ledger.rejected_at_s == [0.1, 0.2]
    service.set_ready_pods(["a"])
    service.step(np.array([0.4]), 0.4)
    service.set_ready_pods([])  # deleted with one request queued: it is served, not lost
    assert service.waiting == 1
    service.step(np.array([]), 1.0)
    assert service.ledger.rejected == 2 and service.waiting == 0 and not service.draining
    assert service.ledger.arrival_s == [0.4]
    assert service.ledger.finished_at_s == [pytest.approx(0.4 + 0.065)]  # its batch, not the step


def test_metrics_page_has_tritons_names_and_labels() -> None:
    replica = EmulatedReplica(MODEL)
    for i in range(20):
        replica.offer(i * 0.01)
    replica.advance(5.0)
    page = render("resnet", replica.counters)
    assert 'nv_inference_request_success{model="resnet",version="1"} 20' in page
    assert 'nv_inference_request_summary_us{model="resnet",version="1",quantile="0.95"}' in page
    assert "# TYPE nv_inference_pending_request_count gauge" in page


def test_poisson_phases_have_the_asked_rates() -> None:
    from hack.emulator.load import poisson_arrivals

    arrivals = poisson_arrivals([(100.0, 20.0), (50.0, 200.0)], seed=4)
    first, second = arrivals[arrivals < 100], arrivals[arrivals >= 100]
    assert len(first) / 100 == pytest.approx(20, rel=0.1)
    assert len(second) / 50 == pytest.approx(200, rel=0.05)
    assert np.all(np.diff(arrivals) >= 0) and arrivals[-1] < 150


def test_a_batch_time_spread_follows_the_simulators_multipliers() -> None:
    # Lone requests 10 s apart: each waits the 5 ms delay and runs 60 ms times a multiplier
    # drawn from the replica's generator, as ServiceModel.batch_scales draws them.
    spread = replace(MODEL, batch_time_cv=0.2)
    replica = EmulatedReplica(spread, rng=np.random.default_rng(7))
    latency_ms = []
    for k in range(200):
        replica.offer(10.0 * k)
        latency_ms += [(finish - arrival) * 1000.0 for arrival, finish
                       in replica.advance(10.0 * k + 5.0)]
    draws = np.random.default_rng(7)
    expected = [5.0 + 60.0 * spread.batch_scales(1, draws)[0] for _ in range(200)]
    assert latency_ms == pytest.approx(expected)
    assert np.std(latency_ms) > 5.0  # not the line


def test_replicas_of_a_service_draw_their_own_reproducible_batch_times() -> None:
    spread = replace(MODEL, batch_time_cv=0.2)
    runs = []
    for _ in range(2):
        service = EmulatedService(spread, seed=3)
        service.set_ready_pods(["a", "b"])
        _run(service, rate_rps=20.0, seconds=20.0)
        runs.append(service.ledger.latency_ms)
    line = EmulatedService(MODEL, seed=3)
    line.set_ready_pods(["a", "b"])
    _run(line, rate_rps=20.0, seconds=20.0)
    assert len(runs[0]) > 300 and runs[0] == runs[1] != line.ledger.latency_ms


def test_a_replicas_batches_are_slow_in_spells_with_a_correlation_time() -> None:
    # Lone requests 0.2 s apart: with spells of 1 s, each batch's multiplier is the replica's
    # process a fifth of tau on, correlated exp(-0.2) = 0.82 in the log; drawn independently
    # (tau 0), about 0. Either way lognormal of the cv asked.
    def log_multipliers(model: ServiceModel) -> np.ndarray:
        replica = EmulatedReplica(model, rng=np.random.default_rng(11))
        finish_s = []
        for k in range(3000):
            replica.offer(0.2 * k)
            finish_s += [finish - arrival for arrival, finish in replica.advance(0.2 * k + 0.19)]
        return np.log((np.array(finish_s) * 1000.0 - 5.0) / 60.0)

    spread = replace(MODEL, batch_time_cv=0.2)
    for tau_ms, correlation in ((1000.0, np.exp(-0.2)), (0.0, 0.0)):
        logs = log_multipliers(replace(spread, batch_time_tau_ms=tau_ms))
        assert np.std(np.exp(logs)) == pytest.approx(0.2, rel=0.15)
        centred = logs - np.mean(logs)
        assert np.mean(centred[:-1] * centred[1:]) / np.var(centred) == pytest.approx(
            correlation, abs=0.06)
    assert np.ptp(log_multipliers(replace(MODEL, batch_time_tau_ms=1000.0))) < 1e-9
