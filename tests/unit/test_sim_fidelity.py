"""Replaying a measured load through the simulator: alignment, the load fit, the comparison."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from sloscale.sim import fidelity
from sloscale_runtime.fit import BatchTiming, OpenLoopProbe, ServiceFit
from sloscale_runtime.loadgen import OpenLoopResult

PROBE = ServiceFit(base_ms=20.0, per_item_ms=5.0, max_batch=16, max_queue_delay_ms=0.1,
                   overhead_ms=1.5, rms_residual_ms=0.5, timings=())


def line(size: int, executions: int, base_ms: float = 12.0, per_item_ms: float = 3.0
         ) -> BatchTiming:
    return BatchTiming(size, executions, base_ms + per_item_ms * size)


def mean_queue_ms(sent_s: np.ndarray, served: ServiceFit) -> float:
    """How long `served` queues the requests on average over the draws a fit pools."""
    return float(np.mean([np.mean(fidelity.one_pod(sent_s, served, seed).queue_ms)
                          for seed in fidelity.spread_seeds(served)]))


def test_a_prediction_pools_draws_whenever_batches_draw_anything() -> None:
    assert len(fidelity.spread_seeds(PROBE)) == 1  # the line, every batch closing alike
    for drawing in (replace(PROBE, batch_time_cv=0.1), replace(PROBE, early_close_share=0.5)):
        assert len(fidelity.spread_seeds(drawing)) == fidelity.SPREAD_SEEDS
    assert len(fidelity.spread_seeds(replace(PROBE, early_close_share=1.0))) == 1


def test_simulated_latency_keeps_the_callers_order_and_adds_the_overhead() -> None:
    sent_s = np.random.default_rng(3).uniform(0, 20, 400)  # not sorted
    without = fidelity.simulated_latency_ms(sent_s, replace(PROBE, overhead_ms=0.0))
    with_overhead = fidelity.simulated_latency_ms(sent_s, PROBE)
    assert np.all(np.isfinite(without)) and np.all(without > 0)
    np.testing.assert_allclose(with_overhead - without, 1.5)
    order = np.argsort(sent_s)
    np.testing.assert_allclose(fidelity.simulated_latency_ms(sent_s[order], PROBE),
                               with_overhead[order])


@pytest.mark.parametrize("share", [0.0, 0.3, 0.6, 0.9])
def test_the_share_of_early_closes_is_recovered_from_an_open_loop_probe(share: float) -> None:
    sent_s = np.cumsum(np.random.default_rng(5).exponential(1 / 60.0, 2000))
    probe = OpenLoopProbe(60.0, sent_s, mean_queue_ms(sent_s, replace(PROBE,
                                                                      early_close_share=share)), ())
    fitted = fidelity.fit_early_close(PROBE, probe)
    assert fitted.early_close_share == pytest.approx(share, abs=0.03)
    assert replace(fitted, early_close_share=PROBE.early_close_share) == PROBE


def test_the_early_closes_are_fitted_on_the_line_scaled_to_the_probes_batches() -> None:
    # The machine ran 20 % slower during the probe than the fit says: the replay must scale
    # the line to the probe's batches, or the slower service would pass for early closing.
    sent_s = np.cumsum(np.random.default_rng(6).exponential(1 / 60.0, 2000))
    slower = replace(PROBE, base_ms=24.0, per_item_ms=6.0, early_close_share=0.4)
    timings = (line(1, 300, 24.0, 6.0), line(2, 60, 24.0, 6.0), line(3, 20, 24.0, 6.0))
    probe = OpenLoopProbe(60.0, sent_s, mean_queue_ms(sent_s, slower), timings)
    fitted = fidelity.fit_early_close(PROBE, probe)
    assert fitted.early_close_share == pytest.approx(0.4, abs=0.03)
    unscaled = fidelity.fit_early_close(PROBE, replace(probe, timings=()))
    assert unscaled.early_close_share > 0.6  # the slower batches passed for early closing
    assert (fitted.base_ms, fitted.per_item_ms) == (PROBE.base_ms, PROBE.per_item_ms)


def level_run(fraction: float, timings: list[BatchTiming]) -> fidelity.LevelRun:
    sent_s = np.arange(0.0, 10.0, 0.05)
    latency_ms = np.where(sent_s < 5.0, 30.0, 60.0)
    result = OpenLoopResult(sent_s, latency_ms, 0, None, 2.0)
    return fidelity.LevelRun(fraction, 20.0, result, timings, 0.25)


def test_load_fit_pools_the_loads_batches() -> None:
    runs = [level_run(0.3, [line(1, 300), line(2, 40)]),
            level_run(0.85, [line(2, 10), line(8, 50), line(16, 80)])]
    assert fidelity.pooled(runs)[1] == BatchTiming(2, 50, pytest.approx(18.0))
    fit = fidelity.load_fit(PROBE, runs)
    assert (fit.base_ms, fit.per_item_ms) == (pytest.approx(12.0), pytest.approx(3.0))
    assert (fit.overhead_ms, fit.max_batch) == (PROBE.overhead_ms, PROBE.max_batch)
    assert [t.size for t in fit.timings] == [1, 2, 8, 16]


def test_server_batching_mean_size_and_busy_against_the_line() -> None:
    fit = replace(PROBE, base_ms=12.0, per_item_ms=3.0)
    slow = [BatchTiming(1, 10, 1.5 * 15.0), BatchTiming(4, 10, 1.5 * 24.0)]
    mean_batch, busy = fidelity.server_batching(slow, fit)
    assert (mean_batch, busy) == (pytest.approx(2.5), pytest.approx(1.5))
    assert all(np.isnan(fidelity.server_batching([], fit)))


def test_the_batch_a_request_ran_in_weighs_batches_by_their_requests() -> None:
    # Ten batches of 1 and ten of 4: the mean batch is 2.5, but 40 of the 50 requests ran in
    # a batch of 4.
    assert fidelity.request_batch(np.array([1, 4]), np.array([10, 10])) == pytest.approx(3.4)
    assert np.isnan(fidelity.request_batch(np.array([]), np.array([])))
    # Four requests at once, once a second, on an idle pod: every batch holds the four.
    sent_s = np.repeat(np.arange(10.0), 4)
    assert fidelity.simulated_request_batch(sent_s, PROBE) == pytest.approx(4.0)


def test_compare_counts_after_the_warm_up_and_writes_json() -> None:
    run = level_run(0.6, [line(1, 100), line(4, 30)])
    fit = replace(PROBE, base_ms=12.0, per_item_ms=3.0)
    level = fidelity.compare(run, fit, PROBE)
    assert level.requests == 180  # sent at 1.0 s or later
    assert (level.real_p50_ms, level.real_p95_ms) == (60.0, 60.0)  # 80 of 180 are at 30 ms
    assert level.p50_error == pytest.approx(level.sim_p50_ms / 60.0 - 1.0)
    assert (level.other_cores, level.max_late_ms, level.busy_vs_fit) == (0.25, 2.0, 1.0)
    assert level.request_batch == pytest.approx((100 + 16 * 30) / (100 + 4 * 30))
    assert 1.0 <= level.sim_request_batch <= PROBE.max_batch
    document = json.loads(fidelity.to_json(PROBE, fit, [replace(level, other_cores=np.nan)]))
    assert document["levels"][0]["other_cores"] is None  # JSON has no NaN
    assert document["load_fit"]["timings"] == [] and document["probe_fit"]["max_rps"] > 0
    assert fidelity.format_row(level).split()[:5] == ["60%", "20.0", "180", "60.0",
                                                      f"{level.sim_p50_ms:.1f}"]
    # bench-autoscale prints the table back from the JSON; an older one lacks the newer
    # figures, which then read unknown
    back = fidelity.levels_from_json(fidelity.to_json(PROBE, fit, [level]))
    assert back == [level]
    old = json.loads(fidelity.to_json(PROBE, fit, [level]))
    del old["levels"][0]["request_batch"]
    assert np.isnan(fidelity.levels_from_json(json.dumps(old))[0].request_batch)


def test_the_early_closes_are_fitted_with_the_batch_time_spread() -> None:
    # Triton's batches spread (cv 0.3) and 40 % close their successor at once, at 100 rps: a
    # replay on the line alone would blame the spread's longer queues on early closing.
    sent_s = np.cumsum(np.random.default_rng(8).exponential(1 / 100.0, 4000))
    spread = replace(PROBE, batch_time_cv=0.3)
    probe = OpenLoopProbe(100.0, sent_s, mean_queue_ms(sent_s, replace(
        spread, early_close_share=0.4)), ())
    assert fidelity.fit_early_close(spread, probe).early_close_share == pytest.approx(
        0.4, abs=0.05)
    assert fidelity.fit_early_close(PROBE, probe).early_close_share > 0.45
    assert fidelity.service_model(spread).batch_time_cv == 0.3


def test_with_a_spread_the_comparison_pools_draws_of_batch_times() -> None:
    run = level_run(0.6, [line(1, 100), line(4, 30)])
    fit = replace(PROBE, base_ms=12.0, per_item_ms=3.0, batch_time_cv=0.3)
    level = fidelity.compare(run, fit, PROBE)
    pooled = np.concatenate([fidelity.simulated_latency_ms(run.result.sent_s, fit, seed)[20:]
                             for seed in range(fidelity.SPREAD_SEEDS)])
    one_draw = fidelity.simulated_latency_ms(run.result.sent_s, fit, 0)[20:]
    assert level.sim_p95_ms == pytest.approx(np.percentile(pooled, 95, method="inverted_cdf"))
    assert level.sim_p95_ms != pytest.approx(np.percentile(one_draw, 95, method="inverted_cdf"))


def test_the_early_closes_are_fitted_with_the_slow_spells() -> None:
    # Triton's batches spread (cv 0.3) in spells of 200 ms and 40 % close their successor at
    # once, at 100 rps: a replay drawing the spread independently would blame the spells'
    # longer queues on early closing.
    sent_s = np.cumsum(np.random.default_rng(8).exponential(1 / 100.0, 4000))
    spells = replace(PROBE, batch_time_cv=0.3, batch_time_tau_ms=200.0)
    probe = OpenLoopProbe(100.0, sent_s, mean_queue_ms(sent_s, replace(
        spells, early_close_share=0.4)), ())
    assert fidelity.fit_early_close(spells, probe).early_close_share == pytest.approx(
        0.4, abs=0.05)
    independent = replace(spells, batch_time_tau_ms=0.0)
    assert fidelity.fit_early_close(independent, probe).early_close_share > 0.44
    assert fidelity.service_model(spells).batch_time_tau_ms == 200.0
