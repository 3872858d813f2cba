"""`make fidelity`: the closed loop and the simulator on the same trace segments, side by side.

Each segment is replayed in real time through the closed loop (local cluster, kwok pods with a
GPU pod's cold start, real Prometheus, the operator, the Triton-metrics emulator) and through
the simulator with the same spec, arrivals and the loop's lags; both are scored alike and the
differences printed. Goal: within 5 points of windows meeting the objective and 10 % of
replica-minutes, on a bursty segment and a smooth one. About 17 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hack.closedloop import (
    ROOT,
    ClosedLoop,
    comparison_table,
    manifest,
    predict,
    predict_drawn,
    scores,
    within_goal,
)
from hack.emulator.load import poisson_arrivals
from sloscale.autoscale.config import parse_autoscaling
from sloscale.autoscale.policies.base import AutoscalingSpec, Objective
from sloscale.sim.engine import SimConfig
from sloscale.sim.profile import profile_capacity
from sloscale.sim.service import ServiceModel
from sloscale.sim.traces import load_trace, stretch

TRACES = ROOT / "examples/traces"
SLO_MS = 250.0
COLD_START_S, COLD_START_JITTER_S = 45.0, 15.0  # a GPU pod: image, weights, warm-up
TAIL_S = 60.0  # the loop keeps deciding after the last arrival: scale-down is part of the run


@dataclass(frozen=True)
class Segment:
    """Minutes [start, end) of a trace, replayed in real time with the rate multiplied."""

    name: str
    trace: str
    start_min: float
    end_min: float
    rate_scale: float

    def arrivals(self, seed: int = 0) -> np.ndarray:
        trace = load_trace(TRACES / self.trace)
        # Copies of a request spread over a second: k times the users, not k-request bursts.
        scaled = stretch(trace, 1.0, self.rate_scale, np.random.default_rng(seed), 1.0)
        arrivals = scaled.arrivals_s
        inside = arrivals[(arrivals >= self.start_min * 60) & (arrivals < self.end_min * 60)]
        return inside - self.start_min * 60

    def describe(self, arrivals: np.ndarray) -> str:
        per_min = np.bincount((arrivals // 60).astype(np.int64)) / 60.0
        shape = " ".join(f"{r:.0f}" for r in per_min)
        return (
            f"{self.name}: {self.trace} minutes {self.start_min:g}-{self.end_min:g} "
            f"x{self.rate_scale:g}, {len(arrivals)} requests, rps per minute: {shape}"
        )


@dataclass(frozen=True)
class Ramp:
    """Poisson arrivals whose rate steps through `rates_rps`, one per minute: smooth load.

    (The shipped traces are bursty at the second scale even where their minutes look flat:
    the Mooncake trace's per-second counts vary 1.5 times their mean, Poisson's 0.5.)
    """

    name: str
    rates_rps: tuple[float, ...]

    def arrivals(self, seed: int = 0) -> np.ndarray:
        return poisson_arrivals([(60.0, rate) for rate in self.rates_rps], seed=seed)

    def describe(self, arrivals: np.ndarray) -> str:
        shape = " ".join(f"{r:g}" for r in self.rates_rps)
        return f"{self.name}: Poisson, {len(arrivals)} requests, rps per minute: {shape}"


SEGMENTS: tuple[Segment | Ramp, ...] = (
    # The Azure code trace: near idle, then two minutes at ~45 rps, then idle again.
    Segment("bursty", "azure_llm_2023_code.csv", 6, 13, 6.0),
    Ramp("smooth", (10.0, 20.0, 30.0, 40.0, 30.0, 20.0)),
)


def autoscaling(capacity_rps: float, max_replicas: int = 12) -> dict[str, Any]:
    """spec.autoscaling for the fidelity runs and the demo: real time, a GPU pod's cold start."""
    return {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": max_replicas,
        "objective": {"latency": "p95", "targetMs": SLO_MS, "window": "10s"},
        "interval": "2s",
        "coldStartSeconds": COLD_START_S,
        "scaleUp": {"stabilizationSeconds": 0, "maxStep": 8},
        "scaleDown": {"stabilizationSeconds": 60, "maxStep": 2},
        # What `sloscale runtime profile` measures for this model at the objective.
        "capacityProfile": {"maxRpsPerReplica": round(capacity_rps, 1)},
    }


def profiled_capacity() -> float:
    spec = AutoscalingSpec(objective=Objective("p95", SLO_MS, 10.0))
    return profile_capacity(ServiceModel(), spec, SimConfig())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make fidelity", description=__doc__)
    parser.add_argument("--segments", default=",".join(s.name for s in SEGMENTS))
    parser.add_argument("--out", default=str(ROOT / ".sloscale/fidelity"))
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SEGMENTS if s.name in args.segments.split(",")]
    capacity = profiled_capacity()
    loop = ClosedLoop(out, COLD_START_S, COLD_START_JITTER_S)
    results, met = {}, True
    try:
        loop.start()
        for segment in chosen:
            arrivals = segment.arrivals()
            print(segment.describe(arrivals), flush=True)
            isvc = manifest(f"fidelity-{segment.name}", "fidelity", autoscaling(capacity))
            spec = parse_autoscaling(isvc["spec"]["autoscaling"])
            drawn = predict_drawn(isvc, arrivals, loop.cold_start, TAIL_S)
            measured_run = loop.run(isvc, arrivals, TAIL_S)
            seen: list[Any] = []
            predicted_run = predict(
                isvc, arrivals, loop.cold_start, TAIL_S, seen, measured_run.cold_starts_s
            )
            predicted = scores(predicted_run, spec)
            timelines = {
                "closed_loop": [asdict(s) for s in measured_run.samples],
                "simulator": seen,
            }
            (out / f"{segment.name}-timelines.json").write_text(json.dumps(timelines))
            measured = scores(measured_run.as_result(), spec)
            ok = within_goal(measured, predicted)
            met &= ok
            print(
                f"\n{segment.name} ({len(arrivals)} requests, unfinished at the end: "
                f"{measured_run.unfinished}); goal {'met' if ok else 'MISSED'}"
            )
            print(comparison_table(measured, predicted, drawn), flush=True)
            starts = np.asarray(measured_run.cold_starts_s)
            starts = starts[np.isfinite(starts)]
            if len(starts):
                print(
                    f"  cold starts measured (created -> Ready): {len(starts)} pods, mean "
                    f"{starts.mean():.0f} s, {starts.min():.0f}-{starts.max():.0f} s"
                )
            results[segment.name] = {
                "measured": measured,
                "predicted": predicted,
                "predicted_own_draws": drawn,
                "met": ok,
            }
            (out / "fidelity.json").write_text(json.dumps(results, indent=2, default=float))
    except KeyboardInterrupt:
        print("[fidelity] interrupted", file=sys.stderr)
        return 130
    finally:
        loop.stop()
    print(
        f"\nfidelity goal (5 pt windows, 10 % replica-minutes): {'met' if met else 'MISSED'}"
        f" on {', '.join(results)}; {out / 'fidelity.json'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
