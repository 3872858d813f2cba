"""Fit a served model's batch service time (base_ms + per_item_ms * size) from Triton's stats.

Triton's statistics extension (`GET v2/models/<m>/stats`) keeps, for every batch size it has
executed, the executions and the nanoseconds spent in compute_input, compute_infer and
compute_output: the time the model instance was busy with such a batch, free of the client,
HTTP and queueing. Closed-loop load at a few concurrency levels makes the dynamic batcher form
batches of many sizes out of single-item requests (the very batches a live load makes, with
the backend's per-request work in them); a least-squares line over those executions is the
simulator's ServiceModel. What a request spends outside the batcher (client, gRPC,
Triton's request handling) is measured once, on isolated requests, as a per-request constant.

How often the instance takes its next batch at once rather than when the running one ends
(ServiceModel.early_close_share) shows in how long requests queue under an open-loop load:
`measure_open_loop` sends one Poisson load and keeps the send times and Triton's mean queue
time, and sloscale.sim.fidelity fits the share by replaying those send times through the
simulator (this package does not import the simulator).
The same probe is traced (sloscale_runtime.batch_trace): its batches one by one give how much a
batch's time spreads around its size's mean (ServiceModel.batch_time_cv, `batch_time_cv`) and
how long a slow spell lasts (ServiceModel.batch_time_tau_ms, `batch_time_tau_ms`).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sloscale_runtime import loadgen
from sloscale_runtime.batch_trace import TracedBatch, traced
from sloscale_runtime.errors import TritonError

COMPUTE_PHASES = ("compute_input", "compute_infer", "compute_output")
PROBE_LEVELS = (1, 2, 4, 8, 16)
OPEN_LOOP_FRACTION = 0.4  # of the probe fit's max throughput: between light and busy
OPEN_LOOP_S = 16.0  # about 1,100 requests: the fitted fraction varies by +-0.15 on 500
MIN_BATCHES_PER_SIZE = 10  # fewer, and a size's own mean is too loose to measure spread by
MIN_TRACED_BATCHES = 50  # fewer in all, and no spread is claimed (the line exactly)
MAX_SPELL_LAG = 10  # batches: Triton's slowness decorrelates within about ten (a few hundred ms)


@dataclass(frozen=True)
class BatchTiming:
    size: int
    executions: int
    mean_ms: float  # busy time of one execution of this size


@dataclass(frozen=True)
class ServiceFit:
    """The simulator's ServiceModel parameters, plus what the model leaves out."""

    base_ms: float
    per_item_ms: float
    max_batch: int
    max_queue_delay_ms: float
    overhead_ms: float  # per request, outside the batcher: added to simulated latency
    rms_residual_ms: float  # of the line over the fitted sizes
    timings: tuple[BatchTiming, ...]
    close_at_fraction: float = 1.0  # 1.0: the ideal batcher
    early_close_share: float = 0.0  # fitted from an OpenLoopProbe; 0.0: none closes early
    batch_time_cv: float = 0.0  # from the OpenLoopProbe's traced batches; 0.0: the line exactly
    batch_time_tau_ms: float = 0.0  # likewise; 0.0: each batch's multiplier drawn independently

    @property
    def max_rps(self) -> float:
        """One replica running full batches back to back."""
        return 1000.0 * self.max_batch / (self.base_ms + self.per_item_ms * self.max_batch)


@dataclass(frozen=True)
class OpenLoopProbe:
    """One open-loop Poisson load sent while profiling, and how long Triton queued it."""

    rate_rps: float
    sent_s: np.ndarray  # when each request was sent, seconds from the first
    mean_queue_ms: float  # Triton's queue time per request (queue start to compute start)
    timings: tuple[BatchTiming, ...]  # the batches Triton ran meanwhile
    batches: tuple[TracedBatch, ...] = ()  # the same, one by one, from Triton's traces


def model_stats(stats: dict[str, Any], model: str) -> dict[str, Any]:
    """This model's entry of a stats response (all its versions are served as one)."""
    entries = [e for e in stats.get("model_stats", []) if e.get("name") == model]
    if len(entries) != 1:
        raise TritonError(f"statistics: expected one entry for {model!r}, got {len(entries)}")
    return dict(entries[0])


def batch_timings(before: dict[str, Any], after: dict[str, Any]) -> list[BatchTiming]:
    """Executions and mean busy time per batch size between two snapshots of model_stats."""

    def totals(entry: dict[str, Any]) -> dict[int, tuple[int, int]]:
        result = {}
        for batch in entry.get("batch_stats", []):
            count = int(batch["compute_infer"]["count"])
            ns = sum(int(batch[phase]["ns"]) for phase in COMPUTE_PHASES)
            result[int(batch["batch_size"])] = (count, ns)
        return result

    start, end = totals(before), totals(after)
    timings = []
    for size in sorted(end):
        count = end[size][0] - start.get(size, (0, 0))[0]
        ns = end[size][1] - start.get(size, (0, 0))[1]
        if count > 0:
            timings.append(BatchTiming(size, count, ns / count / 1e6))
    return timings


def server_ms_per_request(before: dict[str, Any], after: dict[str, Any],
                          phases: tuple[str, ...] = ("queue", *COMPUTE_PHASES)) -> float:
    """Mean time a request spent in `phases` (default: queued or computing) in the server
    between two snapshots."""
    stats = before["inference_stats"], after["inference_stats"]
    requests = int(stats[1]["success"]["count"]) - int(stats[0]["success"]["count"])
    if requests <= 0:
        raise TritonError("statistics: no successful request between the two snapshots")
    ns = sum(int(stats[1][p]["ns"]) - int(stats[0][p]["ns"]) for p in phases)
    return ns / requests / 1e6


def fit_line(timings: list[BatchTiming]) -> tuple[float, float, float]:
    """(base_ms, per_item_ms, rms residual per execution) by least squares over executions:
    each size's mean weighs as many executions as it has, so a size run twice on a busy
    moment moves the line less than one run a hundred times."""
    sizes = np.array([t.size for t in timings], dtype=np.float64)
    if len(set(sizes.tolist())) < 2:
        raise ValueError(f"need batches of at least two sizes, got {[t.size for t in timings]}")
    times = np.array([t.mean_ms for t in timings])
    weights = np.sqrt(np.array([t.executions for t in timings], dtype=np.float64))
    design = np.column_stack((np.ones_like(sizes), sizes))
    (base, per_item), *_ = np.linalg.lstsq(design * weights[:, None], times * weights, rcond=None)
    residual = times - (base + per_item * sizes)
    rms = np.sqrt(np.sum(weights ** 2 * residual ** 2) / np.sum(weights ** 2))
    return float(base), float(per_item), float(rms)


def batching_limits(config: dict[str, Any]) -> tuple[int, float]:
    """(max_batch, max_queue_delay_ms) from the model config as Triton reports it (JSON)."""
    max_batch = int(config.get("max_batch_size", 0))
    dynamic = config.get("dynamic_batching")
    if max_batch < 1 or dynamic is None:
        raise TritonError(f"model {config.get('name')!r} does not batch dynamically")
    return max_batch, int(dynamic.get("max_queue_delay_microseconds", 0)) / 1000.0


def read_stats(http_url: str, model: str) -> dict[str, Any]:
    """The model's statistics from Triton's HTTP endpoint (HOST:PORT)."""
    url = f"http://{http_url}/v2/models/{model}/stats"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return model_stats(json.loads(response.read()), model)
    except OSError as error:
        raise TritonError(f"{url}: {error}") from error


def measure_overhead_ms(http_url: str, grpc_url: str, model: str, requests: int = 40,
                        spacing_s: float = 0.1) -> float:
    """Client-seen latency minus the server's queue + compute time, on requests sent one at a
    time by the open-loop sender (so the same client path as the loads it is added to)."""
    specs = loadgen.input_specs(loadgen.model_config("http", http_url, model))
    send, close = loadgen.async_request_factory(grpc_url, model, specs)
    try:
        loadgen.run_open_loop(send, np.arange(5) * spacing_s)  # connection and first calls
        before = read_stats(http_url, model)
        result = loadgen.run_open_loop(send, np.arange(requests) * spacing_s)
        after = read_stats(http_url, model)
    finally:
        close()
    if result.errors:
        raise TritonError(f"overhead probe: {result.errors} errors, first: {result.first_error}")
    return float(np.mean(result.latency_ms)) - server_ms_per_request(before, after)


def measure_service(
    http_url: str, grpc_url: str, model: str, levels: tuple[int, ...] = PROBE_LEVELS,
    step_s: float = 3.0, progress: Callable[[str], None] = lambda _: None,
) -> ServiceFit:
    """Fit the served model: closed-loop steps at `levels` (capped at max_batch) for the batch
    service time, isolated requests for the per-request overhead, the config for the limits."""
    config = loadgen.model_config("http", http_url, model)
    max_batch, delay_ms = batching_limits(config)
    make_request = loadgen.request_factory("http", http_url, model, loadgen.input_specs(config))
    loadgen.run_step(make_request, 1, duration_s=0.5, warmup_s=0.0)  # warm the backend
    before = read_stats(http_url, model)
    for level in sorted({min(level, max_batch) for level in levels}):
        step = loadgen.run_step(make_request, level, duration_s=step_s, warmup_s=0.0)
        if step.errors:
            raise TritonError(f"probe at concurrency {level}: {step.first_error}")
        progress(f"probe c{level}: {len(step.latencies_ms)} requests")
    timings = batch_timings(before, read_stats(http_url, model))
    base_ms, per_item_ms, residual_ms = fit_line(timings)
    overhead_ms = measure_overhead_ms(http_url, grpc_url, model)
    return ServiceFit(base_ms, per_item_ms, max_batch, delay_ms, overhead_ms, residual_ms,
                      tuple(timings))


def measure_open_loop(http_url: str, grpc_url: str, model: str, rate_rps: float,
                      seconds: float = OPEN_LOOP_S, seed: int = 1) -> OpenLoopProbe:
    """Send a Poisson load at `rate_rps` for `seconds` through the open-loop gRPC sender; keep
    the send times and Triton's mean queue time per request meanwhile."""
    specs = loadgen.input_specs(loadgen.model_config("http", http_url, model))
    send, close = loadgen.async_request_factory(grpc_url, model, specs)
    arrivals = loadgen.poisson_arrivals(rate_rps, seconds, np.random.default_rng(seed))
    try:
        with traced(http_url, model, len(arrivals)) as batches:
            before = read_stats(http_url, model)
            result = loadgen.run_open_loop(send, arrivals)
            after = read_stats(http_url, model)
    finally:
        close()
    if result.errors:
        raise TritonError(f"open-loop probe: {result.errors} errors, first: {result.first_error}")
    return OpenLoopProbe(rate_rps, result.sent_s, server_ms_per_request(before, after, ("queue",)),
                         tuple(batch_timings(before, after)), tuple(batches))


def batch_time_cv(batches: list[TracedBatch] | tuple[TracedBatch, ...],
                  min_per_size: int = MIN_BATCHES_PER_SIZE,
                  min_batches: int = MIN_TRACED_BATCHES) -> float:
    """The coefficient of variation of a batch's time around its size's mean, pooled over the
    sizes run at least `min_per_size` times; 0.0 (the line exactly) on fewer than
    `min_batches` such batches (an untraced probe has none).

    Each batch against its own size's mean rather than the fitted line: the line misses some
    sizes' means by a millisecond or two and the machine's speed drifts between the closed-loop
    steps and the probe, and neither is spread. The plain standard deviation, not a robust
    one: the spread that moves p95 is the tail (a neighbour preempting the model stretches a
    batch two or three times), and a robust estimate would read it away (on traced probes,
    0.04 robust against 0.10 plain). Replayed through the simulator, a lognormal of this cv
    and a resample of the measured ratios gave the same p50 and p95 within 1 % at 30, 50 and
    70 % load, so the one number is kept (docs/sim-fidelity.md)."""
    _, ratios = _ratios_to_size_means(batches, min_per_size)
    if len(ratios) < min_batches:
        return 0.0
    return float(np.std(ratios))


def batch_time_tau_ms(batches: list[TracedBatch] | tuple[TracedBatch, ...],
                      min_per_size: int = MIN_BATCHES_PER_SIZE,
                      min_batches: int = MIN_TRACED_BATCHES) -> float:
    """How long a slow spell lasts: the time over which the log of a batch's ratio to its
    size's mean (as in `batch_time_cv`) loses all but 1/e of its correlation with the later
    batches'; 0.0 (independent draws) on too few batches or no correlation that stands out
    of the noise (lag-1 autocorrelation under 2 / sqrt(batches)).

    The autocorrelation is taken over consecutive batches, the lag where it crosses 1/e
    interpolated log-linearly (an exponential decay, the model's, gives the same crossing
    from any two lags) and turned into time by the mean start-to-start gap. The 1/e crossing
    rather than the lag-1 value alone: Triton's traces decay slower after the first lag
    (0.46-0.58 at lag 1, 0.25-0.47 at lag 2), the first lag's drop is partly per-batch noise,
    and what queues requests is how long the spell lasts. Capped at MAX_SPELL_LAG batches."""
    starts_ns, ratios = _ratios_to_size_means(batches, min_per_size)
    if len(ratios) < min_batches:
        return 0.0
    logs = np.log(ratios) - np.mean(np.log(ratios))
    variance = float(np.mean(logs ** 2))
    if variance == 0.0:
        return 0.0
    lags = range(1, min(MAX_SPELL_LAG, len(logs) - 1) + 1)
    correlation = [1.0, *(float(np.mean(logs[:-k] * logs[k:])) / variance for k in lags)]
    if correlation[1] < 2.0 / np.sqrt(len(logs)):
        return 0.0
    crossing = float(len(correlation) - 1)
    for k in lags:
        if correlation[k] <= 1.0 / np.e:
            before, after = np.log(correlation[k - 1]), np.log(max(correlation[k], 1e-3))
            crossing = k - 1 + (before + 1.0) / (before - after)
            break
    gap_ms = float(np.mean(np.diff(starts_ns))) / 1e6
    return float(crossing * gap_ms)


def _ratios_to_size_means(batches: list[TracedBatch] | tuple[TracedBatch, ...],
                          min_per_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Start times (ns) and time over their size's mean of the batches of sizes run at least
    `min_per_size` times, in start order."""
    by_size: dict[int, list[float]] = {}
    for batch in batches:
        by_size.setdefault(batch.size, []).append(batch.compute_ms)
    means = {size: float(np.mean(times)) for size, times in by_size.items()
             if len(times) >= min_per_size}
    kept = sorted((batch.start_ns, batch.compute_ms / means[batch.size]) for batch in batches
                  if batch.size in means)
    return (np.array([start for start, _ in kept], dtype=np.float64),
            np.array([ratio for _, ratio in kept], dtype=np.float64))
