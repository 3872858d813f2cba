"""`make demo`: sloscale and the real KEDA side by side on the local simulated GPU cluster,
in real time (about 15 minutes).

Starts the local control plane (kwok pods that turn Ready after a GPU pod's cold start,
45 +- 15 s), a real Prometheus, the operator with its autoscaler, the real KEDA (its operator
and metrics API server; the real HPA controller reads it) and the Triton-metrics emulator.
Two systems serve the same ten minutes of a real request trace, replayed to both at once in
real time (no compression: every time constant is the one a user would run with):
sloscale's InferenceService with the `slo` policy, and a plain Deployment scaled by a KEDA
ScaledObject (by default on the p95 latency query at the SLO, the SLO-aware way to run KEDA;
`--keda rate` for request rate per replica at 0.7 x capacity, where KEDA's documentation
leads). Shows both live; ends with a table of both, each beside the simulator's prediction,
and PNGs.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hack.closedloop import (
    ROOT,
    ClosedLoop,
    Contender,
    LoopRun,
    Sample,
    comparison_table,
    manifest,
    predict,
    predict_drawn,
    scores,
)
from hack.compare import SYSTEMS, System, figures, keda_objects, plot, spec_for, table
from hack.demo_report import report
from hack.emulator.runner import EmulatorRunner
from hack.fidelity import COLD_START_JITTER_S, COLD_START_S, SLO_MS, Segment, profiled_capacity
from hack.localcluster.errors import StepFailed
from sloscale.autoscale.config import parse_autoscaling
from sloscale.sim.engine import RunResult

NAMESPACE = "default"
NAME, KEDA_NAME = "demo-resnet", "demo-keda"
TAIL_S = 90.0  # after the last request: the scale-down to minReplicas is part of the show
WINDOW_S = 10.0


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def served_p95_ms(runner: EmulatorRunner, now_s: float) -> float:
    """p95 of the requests that arrived in the last 10 s and are served (the emulator's
    ground truth: what the users of that system saw)."""
    with runner.lock:
        ledger = runner.service.ledger
        arrival = np.asarray(ledger.arrival_s[-5000:])
        latency = np.asarray(ledger.latency_ms[-5000:])
    recent = latency[arrival > now_s - WINDOW_S]
    return float(np.percentile(recent, 95)) if len(recent) else float("nan")


class LiveView:
    """Every few seconds, a line: the load, then per system its Ready/desired replicas and
    the p95 its users saw over the last 10 s; and sloscale's last reason."""

    def __init__(self, loop: ClosedLoop, labels: dict[str, str], every_s: float = 5.0) -> None:
        self.loop, self.labels, self.every_s = loop, labels, every_s
        self.last_t = -1e9
        self.cells: dict[str, str] = {}
        self.observed: list[tuple[float, float]] = []  # (t, p95 sloscale's autoscaler saw)

    def __call__(self, name: str, runner: EmulatorRunner, sample: Sample) -> None:
        if name == NAME and sample.seen_ms is not None:
            self.observed.append((sample.t, sample.seen_ms))
        p95 = served_p95_ms(runner, sample.t)
        shown = "    -" if np.isnan(p95) else f"{p95:5.0f}"  # no request in the window
        self.cells[name] = (f"{self.labels[name]} {sample.ready:2d}/{sample.desired:2d} "
                            f"p95 {shown} ms")
        if name != NAME:
            return
        if sample.t - self.last_t < self.every_s:
            return
        self.last_t = sample.t
        arrivals = runner.arrivals_s
        load = ((arrivals > sample.t - WINDOW_S) & (arrivals <= sample.t)).sum() / WINDOW_S
        cells = " | ".join(self.cells[n] for n in self.labels if n in self.cells)
        print(f"  t={sample.t:5.0f}s  load {load:5.1f} rps | {cells} | {sample.reason[:48]}",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--trace", default="azure_llm_2023_code.csv")
    parser.add_argument("--start-min", type=float, default=17.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate-scale", type=float, default=5.0, help="multiply the request rate")
    parser.add_argument("--keda", choices=("p95", "rate", "none"), default="p95",
                        help="the KEDA ScaledObject beside sloscale (none: sloscale alone)")
    parser.add_argument("--out", default=str(ROOT / ".sloscale/demo"))
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    segment = Segment(
        "demo", args.trace, args.start_min, args.start_min + args.minutes, args.rate_scale
    )
    arrivals = segment.arrivals()
    capacity = profiled_capacity()
    slo, rival = SYSTEMS[0], next((s for s in SYSTEMS if s.keda_metric == args.keda), None)
    isvc = manifest(NAME, NAMESPACE, spec_for(slo, capacity))
    loop = ClosedLoop(out, COLD_START_S, COLD_START_JITTER_S, keda=rival is not None)
    _say(segment.describe(arrivals))
    _say(
        f"real time: no compression; pods Ready {COLD_START_S:.0f} +- "
        f"{COLD_START_JITTER_S:.0f} s after they are scheduled; p95 <= {SLO_MS:.0f} ms"
    )
    try:
        drawn = predict_drawn(isvc, arrivals, loop.cold_start, TAIL_S)
        _say(
            f"the simulator predicts for sloscale: {drawn['windows_meeting_objective']:.1%} "
            f"of 10 s windows meet the p95, {drawn['replica_minutes']:.1f} replica-minutes, "
            f"peak {drawn['peak_replicas']:.0f} replicas"
        )
        loop.start()
        contenders = [Contender(isvc)]
        labels = {NAME: "sloscale"}
        if rival is not None:
            workload, scaled = keda_objects(rival, KEDA_NAME, capacity, loop.prometheus_url,
                                            NAMESPACE)  # fmt: skip
            contenders.append(Contender(workload, scaled))
            labels[KEDA_NAME] = f"KEDA ({rival.keda_metric})"
        _say("applying " + " and ".join(labels.values())
             + "; the replay starts once their first pods are Ready")
        view = LiveView(loop, labels)
        runs = loop.run_together(contenders, arrivals, TAIL_S, on_sample=view)
        _finish(runs, isvc, rival, capacity, arrivals, loop, drawn, view, out)
        return 0
    except StepFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    finally:
        # A second Ctrl-C must not cut the teardown short and leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        loop.stop()


def _finish(runs: dict[str, LoopRun], isvc: dict[str, Any], rival: System | None,
            capacity: float, arrivals: np.ndarray, loop: ClosedLoop,
            drawn: dict[str, float], view: LiveView, out: Path) -> None:
    """The tables and plots: each system measured, beside the simulator's prediction."""
    spec = parse_autoscaling(isvc["spec"]["autoscaling"])
    ours = runs[NAME]
    predicted = predict(isvc, arrivals, loop.cold_start, TAIL_S,
                        cold_starts_s=ours.cold_starts_s)  # fmt: skip
    measured = scores(ours.as_result(), spec)
    print(
        f"\nsloscale, measured (closed loop) beside the simulator's prediction of the same run "
        f"({len(arrivals)} requests; p95 over the run {measured['p95_ms']:.0f} ms measured, "
        f"{scores(predicted, spec)['p95_ms']:.0f} ms predicted; 'simulator' replays the cold "
        f"starts the pods drew, 'sim, own draws' is the prediction made before the run)"
    )
    print(comparison_table(measured, scores(predicted, spec), drawn))
    report(ours, predicted, view.observed, SLO_MS, out)
    if rival is None:
        return
    keda_spec = spec_for(rival, capacity)
    keda_isvc = manifest(KEDA_NAME, NAMESPACE, keda_spec)
    theirs = runs[KEDA_NAME]
    keda_predicted: RunResult = predict(keda_isvc, arrivals, loop.cold_start, TAIL_S, None,
                                        theirs.cold_starts_s, policy=rival.policy)  # fmt: skip
    results = {
        "sloscale": {"measured": figures(ours.as_result(), isvc["spec"]["autoscaling"],
                                         capacity),
                     "predicted": figures(predicted, isvc["spec"]["autoscaling"], capacity)},
        f"KEDA ({rival.keda_metric})": {
            "measured": figures(theirs.as_result(), keda_spec, capacity),
            "predicted": figures(keda_predicted, keda_spec, capacity)},
    }  # fmt: skip
    print(f"\nside by side, same arrivals, same pods, same Prometheus\n{table(results)}")
    png = plot({"sloscale": (ours, predicted),
                f"KEDA ({rival.keda_metric})": (theirs, keda_predicted)},
               out, "side-by-side.png")  # fmt: skip
    print(f"plot: {png}")


if __name__ == "__main__":
    sys.exit(main())
