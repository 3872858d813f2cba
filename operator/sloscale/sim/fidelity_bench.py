"""`make bench-fidelity`: the simulator held against a real Triton, one replica, open-loop loads.

Builds the fidelity model (examples/models/fixed_plus_per_image.py), serves it on a local Triton
(loopback), fits its ServiceModel from Triton's statistics (sloscale_runtime.fit; from an
open-loop probe, the batch time's spread and its spells from Triton's traces and the share of
early closes, sloscale.sim.fidelity.fit_early_close), sends Poisson loads at fractions of the
fitted max throughput, replays each load's real send times through the simulator
(sloscale.sim.fidelity) and prints real against simulated p50/p95; the JSON goes to --out. A
benchmark, not a test: tests/integration/test_sim_fidelity.py asserts on the same code.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sloscale.sim.fidelity import (
    HEADER,
    LevelComparison,
    LevelRun,
    compare,
    fit_early_close,
    format_fit,
    format_row,
    load_fit,
    to_json,
)

if TYPE_CHECKING:
    from sloscale_runtime.builder import BuildOptions
    from sloscale_runtime.fit import ServiceFit
    from sloscale_runtime.loadgen import AsyncSend

ROOT = Path(__file__).resolve().parents[3]
MODEL_REF = f"{ROOT / 'examples' / 'models' / 'fixed_plus_per_image.py'}:make_model"
MODEL_NAME = "fixed_plus_per_image"
INPUT_SHAPE = (1, 3, 32, 32)
LOAD_FRACTIONS = (0.3, 0.6, 0.85)
REQUESTS_PER_LEVEL = 1500
MAX_SECONDS_PER_LEVEL = 25.0


def build_options(out_dir: Path) -> BuildOptions:
    """The fidelity model as the builder's defaults serve it (dynamic batching, max batch 16,
    python backend, one torch thread): tens of ms per batch, so the client's cost is small."""
    from sloscale_runtime.builder import BuildOptions

    return BuildOptions(MODEL_REF, INPUT_SHAPE, MODEL_NAME, out_dir)


def run_levels(
    send: AsyncSend, read_stats: Callable[[], dict[str, Any]], max_rps: float,
    fractions: tuple[float, ...] = LOAD_FRACTIONS, requests: int = REQUESTS_PER_LEVEL,
    max_seconds: float = MAX_SECONDS_PER_LEVEL, seed: int = 0,
    progress: Callable[[str], None] = lambda _: None,
) -> list[LevelRun]:
    """One open-loop Poisson load per fraction of max_rps, each bounded by `requests` and
    `max_seconds`, with the batches Triton ran and the CPU other processes took meanwhile."""
    from sloscale_runtime import loadgen
    from sloscale_runtime.fit import batch_timings
    from sloscale_runtime.neighbours import OtherCpu

    rng = np.random.default_rng(seed)
    runs = []
    for fraction in fractions:
        rate_rps = fraction * max_rps
        arrivals = loadgen.poisson_arrivals(rate_rps, min(max_seconds, requests / rate_rps), rng)
        before, others = read_stats(), OtherCpu().start()
        result = loadgen.run_open_loop(send, arrivals)
        runs.append(LevelRun(fraction, rate_rps, result, batch_timings(before, read_stats()),
                             others.cores()))
        progress(f"load {fraction:.0%} ({rate_rps:.0f} rps): {len(arrivals)} requests, "
                 f"{result.errors} errors, sender at most {result.max_late_ms:.1f} ms late")
    return runs


def measure(
    http_url: str, grpc_url: str, model: str, fractions: tuple[float, ...] = LOAD_FRACTIONS,
    requests: int = REQUESTS_PER_LEVEL, max_seconds: float = MAX_SECONDS_PER_LEVEL,
    seed: int = 0, progress: Callable[[str], None] = lambda _: None,
) -> tuple[ServiceFit, ServiceFit, list[LevelComparison]]:
    """Against a served model: (probe fit, load fit, one comparison per load fraction)."""
    from sloscale_runtime import fit as fitting
    from sloscale_runtime import loadgen

    probe = fitting.measure_service(http_url, grpc_url, model, progress=progress)
    # How much batch times spread, in spells how long, and how often Triton closes its next
    # batch at once, from the profile's own open-loop load (another rate and other send times
    # than the loads compared below). The spread first: it (and more so in spells) lengthens
    # the replay's queues, and the share of early closes is fitted on the replay's queue time.
    open_loop = fitting.measure_open_loop(http_url, grpc_url, model,
                                          fitting.OPEN_LOOP_FRACTION * probe.max_rps)
    probe = replace(probe, batch_time_cv=fitting.batch_time_cv(open_loop.batches),
                    batch_time_tau_ms=fitting.batch_time_tau_ms(open_loop.batches))
    probe = fit_early_close(probe, open_loop)
    progress(f"open-loop probe {open_loop.rate_rps:.0f} rps: {len(open_loop.sent_s)} requests, "
             f"Triton queued them {open_loop.mean_queue_ms:.1f} ms on average; "
             f"{len(open_loop.batches)} traced batches")
    progress(format_fit("probe fit", probe))
    specs = loadgen.input_specs(loadgen.model_config("http", http_url, model))
    send, close = loadgen.async_request_factory(grpc_url, model, specs)
    try:
        runs = run_levels(send, functools.partial(fitting.read_stats, http_url, model),
                          probe.max_rps, fractions, requests, max_seconds, seed, progress)
    finally:
        close()
    fit = load_fit(probe, runs)
    return probe, fit, [compare(run, fit, probe) for run in runs]


def run(out_dir: Path, fractions: tuple[float, ...], requests: int, max_seconds: float,
        seed: int) -> list[LevelComparison]:
    """Build the model, serve it on a local Triton, measure; print the table, write the JSON."""
    from sloscale_runtime.builder import build
    from sloscale_runtime.cli import write_atomically
    from sloscale_runtime.triton import TritonServer

    with tempfile.TemporaryDirectory(prefix="sloscale-fidelity-") as workdir:
        repository = Path(workdir) / "models"
        build(build_options(repository))
        with TritonServer(repository, Path(workdir)) as server:
            probe, fit, levels = measure(
                server.ports.http_url, server.ports.grpc_url, MODEL_NAME, fractions, requests,
                max_seconds, seed, progress=lambda line: print(line, flush=True))
    print(format_fit("load fit", fit))
    print(HEADER)
    for level in levels:
        print(format_row(level))
    write_atomically(out_dir / "fidelity.json", to_json(probe, fit, levels))
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / ".sloscale" / "bench-fidelity")
    parser.add_argument("--fractions", default=",".join(str(f) for f in LOAD_FRACTIONS),
                        help="loads as fractions of the fitted max throughput")
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_LEVEL)
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS_PER_LEVEL)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    fractions = tuple(float(f) for f in args.fractions.split(","))
    run(args.out, fractions, args.requests, args.max_seconds, args.seed)
    print(f"wrote {args.out / 'fidelity.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
