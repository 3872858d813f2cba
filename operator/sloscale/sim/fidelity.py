"""The simulator against what a real Triton did: replay measured loads, compare p50 and p95.

Pure: it takes what was measured (each request's send time and latency, the batches Triton
ran) and simulates; sloscale.sim.fidelity_bench drives the real server. The simulator gets one
pod and a ServiceModel fitted on the batches Triton ran during the loads themselves, so that it
is judged on its queueing and batching rather than on a service time the machine no longer had
(a shared machine's speed drifts between a probe and a load); the probe's own fit is replayed
too, as the prediction a capacity profile would make. Simulated latency = the engine's latency
+ the per-request overhead measured on isolated requests (client, gRPC, Triton outside the
batcher), which the ServiceModel lacks.

How often Triton takes its next batch at once rather than when the running one ends
(ServiceModel.early_close_share) and how much its batch times spread and how long their slow
spells last (ServiceModel.batch_time_cv and batch_time_tau_ms, from the probe's traces) are
fitted on the profile's own open-loop probe (`fit_early_close`,
sloscale_runtime.fit.batch_time_cv and batch_time_tau_ms), never on the
loads compared here; the load fit keeps all three.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sloscale.autoscale.policies import AutoscalingSpec
from sloscale.sim.cluster import ColdStart
from sloscale.sim.engine import RunResult, SimConfig, simulate
from sloscale.sim.profile import FixedReplicas
from sloscale.sim.service import ServiceModel

if TYPE_CHECKING:
    from sloscale_runtime.fit import BatchTiming, OpenLoopProbe, ServiceFit
    from sloscale_runtime.loadgen import OpenLoopResult

WARMUP_S = 1.0  # requests sent before this are replayed but not counted, on both sides
SPREAD_SEEDS = 8  # draws of batch times averaged over when a fit replays a spread


@dataclass(frozen=True)
class LevelRun:
    """What the real server did under one open-loop load."""

    load_fraction: float
    offered_rps: float
    result: OpenLoopResult
    timings: list[BatchTiming]  # the batches Triton ran meanwhile
    other_cores: float  # CPU that other processes on the machine used meanwhile


@dataclass(frozen=True)
class LevelComparison:
    load_fraction: float
    offered_rps: float
    requests: int  # counted (sent after the warm-up)
    errors: int
    max_late_ms: float  # the sender's worst lag behind its schedule
    real_p50_ms: float
    real_p95_ms: float
    sim_p50_ms: float  # with the ServiceModel fitted during the loads
    sim_p95_ms: float
    probe_sim_p50_ms: float  # with the probe's ServiceModel (the capacity profile's view)
    probe_sim_p95_ms: float
    mean_batch: float  # the dynamic batcher's mean batch size
    busy_vs_fit: float  # the batches' busy time against the load fit's line for them
    other_cores: float
    # The mean size of the batch a request ran in (sum of size^2 / sum of size), Triton's and
    # the load fit's replay: at one mean batch size, how widely the sizes spread.
    request_batch: float = float("nan")
    sim_request_batch: float = float("nan")

    @property
    def p50_error(self) -> float:
        return self.sim_p50_ms / self.real_p50_ms - 1.0

    @property
    def p95_error(self) -> float:
        return self.sim_p95_ms / self.real_p95_ms - 1.0


def service_model(fit: ServiceFit) -> ServiceModel:
    return ServiceModel(fit.base_ms, fit.per_item_ms, fit.max_batch, fit.max_queue_delay_ms,
                        close_at_fraction=fit.close_at_fraction,
                        early_close_share=fit.early_close_share,
                        batch_time_cv=fit.batch_time_cv,
                        batch_time_tau_ms=fit.batch_time_tau_ms)


def one_pod(arrivals_s: np.ndarray, fit: ServiceFit, seed: int = 0) -> RunResult:
    """Sorted arrivals through one simulated pod that is Ready from the start."""
    return simulate(arrivals_s, FixedReplicas(1), AutoscalingSpec(minReplicas=1, maxReplicas=1),
                    service_model(fit), SimConfig(cold_start=ColdStart(60.0), seed=seed))


def fit_early_close(fit: ServiceFit, probe: OpenLoopProbe, steps: int = 14) -> ServiceFit:
    """The fit with the share of batches that take their successor at once (the rest at their
    end) at which the simulator queues the probe's requests as long, on average, as Triton did
    (bisection: queueing grows with the share). 0.0 (the ideal batcher) when even that queues
    them longer; 1.0 when even all early is short.

    The replay runs on the line scaled to the probe's own batches (their busy time against the
    line's): a shared machine's speed drifts between the closed-loop steps and the probe, and
    that drift must not pass for early closing. Scaled, not refitted: the probe's batches are
    mostly of one to three requests, too narrow a range for a slope. The replay keeps the fit's
    batch_time_cv and batch_time_tau_ms: a spread, and more so one in spells, lengthens queues
    too, and must not pass for early closing either."""
    arrivals = np.sort(probe.sent_s)
    _, busy_vs_line = server_batching(list(probe.timings), fit)
    scale = busy_vs_line if np.isfinite(busy_vs_line) else 1.0
    replay = replace(fit, base_ms=fit.base_ms * scale, per_item_ms=fit.per_item_ms * scale,
                     close_at_fraction=1.0)

    # With a spread, one draw of batch times makes the queue time jump about as the share
    # moves (other batches form, other multipliers apply); the mean over several draws falls
    # smoothly.
    def mean_queue_ms(share: float) -> float:
        service = replace(replay, early_close_share=share)
        return float(np.mean([np.mean(one_pod(arrivals, service, seed).queue_ms)
                              for seed in spread_seeds(fit)]))

    def fitted(share: float) -> ServiceFit:
        return replace(fit, close_at_fraction=1.0, early_close_share=share)

    if mean_queue_ms(0.0) >= probe.mean_queue_ms:
        return fitted(0.0)
    if mean_queue_ms(1.0) <= probe.mean_queue_ms:
        return fitted(1.0)
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (low, middle) if mean_queue_ms(middle) > probe.mean_queue_ms else (middle, high)
    return fitted(round((low + high) / 2, 3))


def spread_seeds(fit: ServiceFit) -> range:
    """The draws of batch times and early closes a prediction pools: one for the line with
    every batch closing alike, which draws nothing."""
    draws = fit.batch_time_cv > 0 or 0.0 < fit.early_close_share < 1.0
    return range(SPREAD_SEEDS if draws else 1)


def simulated_latency_ms(sent_s: np.ndarray, fit: ServiceFit, seed: int = 0) -> np.ndarray:
    """Per-request latency of the same arrivals through one simulated pod, in the order given;
    inf for a request the simulator rejected or never finished."""
    order = np.argsort(sent_s, kind="stable")
    arrivals = sent_s[order]
    run = one_pod(arrivals, fit, seed)
    latency = np.full(len(arrivals), np.inf)
    if len(run.admitted_s):  # the arrivals in FIFO order less any the simulator rejected
        at = np.minimum(np.searchsorted(run.admitted_s, arrivals), len(run.admitted_s) - 1)
        admitted = run.admitted_s[at] == arrivals
        latency[admitted] = run.latency_ms[at[admitted]]
    result = np.empty_like(latency)
    result[order] = latency + fit.overhead_ms
    return result


def pooled(runs: list[LevelRun]) -> list[BatchTiming]:
    """The batches of all the loads, one timing per size."""
    from sloscale_runtime.fit import BatchTiming

    by_size: dict[int, tuple[int, float]] = {}
    for run in runs:
        for timing in run.timings:
            count, total_ms = by_size.get(timing.size, (0, 0.0))
            by_size[timing.size] = (count + timing.executions,
                                    total_ms + timing.mean_ms * timing.executions)
    return [BatchTiming(size, count, total_ms / count)
            for size, (count, total_ms) in sorted(by_size.items())]


def load_fit(probe: ServiceFit, runs: list[LevelRun]) -> ServiceFit:
    """The probe's fit with its line refitted on the batches Triton ran during the loads."""
    from sloscale_runtime.fit import fit_line

    timings = pooled(runs)
    base_ms, per_item_ms, residual_ms = fit_line(timings)
    return replace(probe, base_ms=base_ms, per_item_ms=per_item_ms, rms_residual_ms=residual_ms,
                   timings=tuple(timings))


def server_batching(timings: list[BatchTiming], fit: ServiceFit) -> tuple[float, float]:
    """(mean batch size, measured busy time / the fitted line's) over the executed batches."""
    executions = sum(t.executions for t in timings)
    if executions == 0:
        return float("nan"), float("nan")
    items = sum(t.size * t.executions for t in timings)
    busy_ms = sum(t.mean_ms * t.executions for t in timings)
    fitted_ms = sum((fit.base_ms + fit.per_item_ms * t.size) * t.executions for t in timings)
    return items / executions, busy_ms / fitted_ms


def request_batch(sizes: np.ndarray, executions: np.ndarray) -> float:
    """The mean size of the batch a request ran in, over batches of `sizes` run `executions`
    times each; nan when none ran."""
    items = float(np.sum(sizes * executions))
    return float(np.sum(sizes * sizes * executions)) / items if items else float("nan")


def simulated_request_batch(sent_s: np.ndarray, fit: ServiceFit) -> float:
    """`request_batch` of the replay (the requests a batch ran share its start)."""
    run = one_pod(np.sort(sent_s), fit)
    starts_s = run.admitted_s + run.queue_ms / 1000.0
    _, sizes = np.unique(np.round(starts_s * 1e9), return_counts=True)
    return request_batch(sizes, np.ones(len(sizes)))


def compare(run: LevelRun, fit: ServiceFit, probe: ServiceFit,
            warmup_s: float = WARMUP_S) -> LevelComparison:
    """Nearest-rank p50/p95 of the real and simulated latencies of the requests sent after
    the warm-up (a failed request counts as infinitely slow on the real side). With a batch
    time spread the simulated side pools several draws of batch times: the model's p95, not
    one draw's (which moves by +-4 % on 1,400 requests)."""
    from sloscale_runtime.capacity import percentile_ms

    sent_s = run.result.sent_s
    counted = sent_s >= warmup_s

    def p50_p95(*latencies_ms: np.ndarray) -> tuple[float, float]:
        values = np.concatenate([latency[counted] for latency in latencies_ms]).tolist()
        return percentile_ms(values, 50), percentile_ms(values, 95)

    def simulated(service: ServiceFit) -> tuple[float, float]:
        return p50_p95(*(simulated_latency_ms(sent_s, service, seed)
                         for seed in spread_seeds(service)))

    return LevelComparison(
        run.load_fraction, run.offered_rps, int(counted.sum()), run.result.errors,
        run.result.max_late_ms, *p50_p95(run.result.latency_ms),
        *simulated(fit), *simulated(probe),
        *server_batching(run.timings, fit), run.other_cores,
        request_batch(np.array([t.size for t in run.timings]),
                      np.array([t.executions for t in run.timings])),
        simulated_request_batch(sent_s, fit),
    )


HEADER = (f"{'load':>5} {'offered rps':>11} {'requests':>8}  {'real p50':>8} {'sim p50':>8} "
          f"{'err':>6}  {'real p95':>8} {'sim p95':>8} {'err':>6}  {'batch':>5} {'busy/fit':>8} "
          f"{'others':>6}  {'probe-fit err p50/p95':>21}  {'batch per request real/sim':>26}")


def format_row(level: LevelComparison) -> str:
    probe_p50 = level.probe_sim_p50_ms / level.real_p50_ms - 1.0
    probe_p95 = level.probe_sim_p95_ms / level.real_p95_ms - 1.0
    return (f"{level.load_fraction:>5.0%} {level.offered_rps:>11.1f} {level.requests:>8d}  "
            f"{level.real_p50_ms:>8.1f} {level.sim_p50_ms:>8.1f} {level.p50_error:>+6.0%}  "
            f"{level.real_p95_ms:>8.1f} {level.sim_p95_ms:>8.1f} {level.p95_error:>+6.0%}  "
            f"{level.mean_batch:>5.1f} {level.busy_vs_fit:>8.2f} {level.other_cores:>6.2f}  "
            f"{probe_p50:>+10.0%}/{probe_p95:<+10.0%}  "
            f"{level.request_batch:>15.1f} / {level.sim_request_batch:<8.1f}")


def format_fit(name: str, fit: ServiceFit) -> str:
    sizes = ", ".join(f"{t.size}:{t.mean_ms:.1f}ms(x{t.executions})" for t in fit.timings)
    return (f"{name}: batch time {fit.base_ms:.2f} + {fit.per_item_ms:.2f} x size ms "
            f"(rms residual {fit.rms_residual_ms:.2f} ms), max_batch {fit.max_batch}, "
            f"max_queue_delay {fit.max_queue_delay_ms:g} ms, next batch closed at once in "
            f"{fit.early_close_share:.0%} of batches, else at {fit.close_at_fraction:.2f} of "
            f"the running one, batch time cv "
            f"{fit.batch_time_cv:.3f} in spells of {fit.batch_time_tau_ms:.0f} ms, overhead "
            f"{fit.overhead_ms:.2f} ms per request, max {fit.max_rps:.0f} rps\n"
            f"  per batch size: {sizes}")


def to_json(probe: ServiceFit, fit: ServiceFit, levels: list[LevelComparison]) -> str:
    def finite(row: dict[str, Any]) -> dict[str, Any]:  # JSON has no NaN: unknown is null
        return {k: None if isinstance(v, float) and not np.isfinite(v) else v
                for k, v in row.items()}

    rows = [finite({**asdict(level), "p50_error": level.p50_error,
                    "p95_error": level.p95_error}) for level in levels]
    document = {
        "probe_fit": {**asdict(probe), "max_rps": probe.max_rps},
        "load_fit": {**asdict(fit), "max_rps": fit.max_rps},
        "simulated": "engine latency + overhead_ms; sim_* with load_fit, probe_sim_* with "
                     "probe_fit",
        "levels": rows,
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def levels_from_json(text: str) -> list[LevelComparison]:
    """The levels of a `to_json` document (null back to nan; figures an older document
    lacks take their defaults)."""
    names = {f.name for f in fields(LevelComparison)}
    return [LevelComparison(**{k: float("nan") if v is None else v
                               for k, v in row.items() if k in names})
            for row in json.loads(text)["levels"]]
