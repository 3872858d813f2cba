"""`make compare`: sloscale and the real KEDA on the same trace segment, pods and Prometheus.

One local cluster runs the operator and the real KEDA (its operator, its metrics API server,
the real HPA controller reading it); the Triton-metrics emulator serves every system's pods
with the same service model, kwok gives every pod the same cold start. The systems:

- `slo`: sloscale, its own policy;
- `keda-rate`: a plain Deployment and a KEDA ScaledObject on request rate per replica at
  0.7 x the profiled capacity (where KEDA's documentation leads users);
- `keda-p95`: the same on the p95 latency query (`metricType: Value`, threshold = the SLO),
  as SLO-aware guides configure it;
- `sloscale-keda`: sloscale's own re-implementation of KEDA (policy `keda`), to show how far
  the simulator's baseline is from the real one.

They run one after another on the same segment: two cores do not carry four real-time
replays and their autoscalers at once without bending the latencies measured. Each is scored
as `make fidelity` scores (sim/report.py), beside the simulator's prediction of it (the
policy that models it, the cold starts the run drew).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hack import kedaobjects
from hack.closedloop import FIGURES, ROOT, ClosedLoop, LoopRun, manifest, predict, scores
from hack.fidelity import (
    COLD_START_JITTER_S,
    COLD_START_S,
    SEGMENTS,
    SLO_MS,
    TAIL_S,
    Ramp,
    autoscaling,
    profiled_capacity,
)
from sloscale.autoscale.config import parse_autoscaling
from sloscale.autoscale.policies.registry import TUNING
from sloscale.sim.engine import RunResult

NAMESPACE = "compare"
MAX_REPLICAS = 12
# A three-minute step, to try the whole chain quickly (`--segments step`).
QUICK = (Ramp("step", (10.0, 40.0, 10.0)),)


@dataclass(frozen=True)
class System:
    name: str
    policy: str  # the sloscale policy that runs it (sloscale) or models it (the simulator)
    keda_metric: str | None = None  # "rate" or "p95": run by the real KEDA instead


SYSTEMS = (
    System("slo", "slo"),
    System("keda-rate", "keda", "rate"),
    System("keda-p95", "keda-latency", "p95"),
    System("sloscale-keda", "keda"),
)


def spec_for(system: System, capacity_rps: float) -> dict[str, Any]:
    """spec.autoscaling for the system, or for the simulator's model of it. The baselines
    keep the HPA's own behavior (the real KEDA's HPA gets no `behavior` either). A system
    the real KEDA runs names no policy (the simulator is told which one models it)."""
    spec = autoscaling(capacity_rps, MAX_REPLICAS)
    if system.keda_metric is None:
        spec["policy"] = system.policy
    if system.policy != "slo":
        del spec["scaleUp"], spec["scaleDown"]
    return spec


def keda_objects(
    system: System, name: str, capacity_rps: float, prometheus_url: str,
    namespace: str = NAMESPACE,
) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
    """The Deployment and the ScaledObject a KEDA user applies, with the thresholds that
    sloscale's keda policies take from the same spec (TUNING's defaults)."""
    window_s = 10.0  # the objective's window, as the keda policy reads its rate
    profiled = spec_for(system, capacity_rps)["capacityProfile"]["maxRpsPerReplica"]
    if system.keda_metric == "rate":
        query = kedaobjects.rate_query(namespace, name, window_s)
        threshold, metric_type = TUNING["keda"].default * profiled, "AverageValue"
    else:
        query = kedaobjects.p95_query(namespace, name)
        threshold, metric_type = TUNING["keda-latency"].default * SLO_MS, "Value"
    scaled = kedaobjects.scaled_object(
        name, namespace, name, prometheus_url, min_replicas=1, max_replicas=MAX_REPLICAS,
        query=query, threshold=round(threshold, 2), metric_type=metric_type,
    )  # fmt: skip
    return kedaobjects.deployment(name, namespace), (scaled,)


def first_scale_up_s(
    arrivals_s: np.ndarray, t: np.ndarray, desired: np.ndarray, capacity_rps: float
) -> float | None:
    """Seconds from the burst's start (the first time the 10 s mean load exceeds what the
    minimum of one replica serves) to the first rise in desired replicas after it."""
    counts = np.bincount(arrivals_s.astype(np.int64)) if len(arrivals_s) else np.zeros(1)
    mean = np.convolve(counts, np.ones(10) / 10.0)[: len(counts)]
    over = np.flatnonzero(mean > capacity_rps)
    if not len(over):
        return None
    burst_s = float(over[0])
    rises = [t[i] for i in range(1, len(t)) if desired[i] > desired[i - 1] and t[i] >= burst_s]
    return float(rises[0] - burst_s) if rises else None


def figures(run: RunResult, spec_dict: dict[str, Any], capacity_rps: float) -> dict[str, Any]:
    spec = parse_autoscaling(spec_dict)
    result = scores(run, spec)
    result["burst_to_scale_up_s"] = first_scale_up_s(
        run.arrivals_s, np.asarray(run.timeline_s), np.asarray(run.replicas), capacity_rps
    )
    return result


ROWS = (*FIGURES, ("burst to scale-up (s)", "burst_to_scale_up_s", "{:.0f}"))


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One column per system: measured, and the simulator's prediction in brackets."""
    width = 20
    lines = [f"  {'':<22}" + "".join(f"{name:>{width}}" for name in results)]
    for label, key, fmt in ROWS:
        cells = []
        for result in results.values():
            pair = [result["measured"][key], result["predicted"][key]]
            shown = ["-" if v is None else fmt.format(v) for v in pair]
            cells.append(f"{shown[0]} ({shown[1]})")
        lines.append(f"  {label:<22}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append("  measured (simulator's prediction)")
    return "\n".join(lines)


def plot(runs: dict[str, tuple[LoopRun, RunResult]], out: Path,
         filename: str = "compare.png") -> Path:
    """A column per system: load, Ready replicas (measured, predicted), p95 against the SLO."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hack.demo_report import _p95_by_window

    fig, axes = plt.subplots(3, len(runs), figsize=(4.5 * len(runs), 8), squeeze=False,
                             sharex=True, sharey="row")  # fmt: skip
    for column, (name, (measured, predicted)) in enumerate(runs.items()):
        load, replicas, latency = axes[:, column]
        counts = np.bincount(measured.arrivals_s.astype(np.int64))
        load.plot(np.convolve(counts, np.ones(10) / 10.0, mode="same"), color="tab:gray")
        load.set_title(name)
        t = [s.t for s in measured.samples]
        replicas.step(t, [s.ready for s in measured.samples], where="post", label="Ready")
        replicas.step(predicted.timeline_s, predicted.ready, where="post", linestyle="--",
                      color="tab:purple", label="Ready, simulator")  # fmt: skip
        end_s = max(t) if t else 0.0
        edges, p95 = _p95_by_window(measured.arrival_s, measured.latency_ms, end_s)
        latency.plot(edges, p95, label="p95 (10 s windows)")
        latency.axhline(SLO_MS, color="tab:red", linestyle=":", label="SLO")
        latency.set_ylim(0, 4 * SLO_MS)
        latency.set_xlabel("seconds")
    axes[0, 0].set_ylabel("load (req/s)")
    axes[1, 0].set_ylabel("replicas")
    axes[2, 0].set_ylabel("latency (ms, clipped)")
    axes[1, 0].legend(loc="upper left", fontsize=8)
    axes[2, 0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    png = out / filename
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def run_segment(
    loop: ClosedLoop, segment: Any, systems: list[System], capacity_rps: float, out: Path
) -> dict[str, dict[str, Any]]:
    arrivals = segment.arrivals()
    print(segment.describe(arrivals), flush=True)
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, tuple[LoopRun, RunResult]] = {}
    for system in systems:
        name = f"{segment.name}-{system.name}"
        spec = spec_for(system, capacity_rps)
        isvc = manifest(name, NAMESPACE, spec)
        print(f"[compare] {system.name}: replaying in real time", flush=True)
        if system.keda_metric is None:
            measured = loop.run(isvc, arrivals, TAIL_S)
        else:
            workload, scaled = keda_objects(system, name, capacity_rps, loop.prometheus_url)
            measured = loop.run(workload, arrivals, TAIL_S, companions=scaled)
        predicted = predict(isvc, arrivals, loop.cold_start, TAIL_S, None,
                            measured.cold_starts_s, policy=system.policy)  # fmt: skip
        runs[system.name] = (measured, predicted)
        results[system.name] = {
            "measured": figures(measured.as_result(), spec, capacity_rps),
            "predicted": figures(predicted, spec, capacity_rps),
        }
        (out / f"{segment.name}.json").write_text(json.dumps(results, indent=2, default=float))
    print(f"\n{segment.name}\n{table(results)}", flush=True)
    print(f"plot: {plot(runs, out / segment.name)}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make compare", description=__doc__)
    choices = SEGMENTS + QUICK
    parser.add_argument(
        "--segments",
        default=SEGMENTS[0].name,
        help=f"comma-separated, of {', '.join(s.name for s in choices)}",
    )
    parser.add_argument("--systems", default=",".join(s.name for s in SYSTEMS))
    parser.add_argument("--out", default=str(ROOT / ".sloscale/compare"))
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    segments = [s for s in choices if s.name in args.segments.split(",")]
    systems = [s for s in SYSTEMS if s.name in args.systems.split(",")]
    capacity = profiled_capacity()
    loop = ClosedLoop(out, COLD_START_S, COLD_START_JITTER_S, keda=True)
    try:
        loop.start()
        for segment in segments:
            (out / segment.name).mkdir(parents=True, exist_ok=True)
            run_segment(loop, segment, systems, capacity, out)
    except KeyboardInterrupt:
        print("[compare] interrupted", file=sys.stderr)
        return 130
    finally:
        loop.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
