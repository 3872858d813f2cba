"""`make demo`: the whole loop on the local simulated GPU cluster, in real time (13 minutes).

Starts the local control plane (kwok pods that turn Ready after a GPU pod's cold start,
45 +- 15 s), a real Prometheus, the operator with its autoscaler, and the Triton-metrics
emulator; applies an InferenceService; replays ten minutes of a real request trace in real
time (no compression: every time constant of the policy is the one a user would run with);
shows what the autoscaler sees and does; ends with the measurement beside the simulator's
prediction of the same run, and a PNG.
"""

from __future__ import annotations

import argparse
import signal
import sys
import urllib.request
from pathlib import Path

from hack.closedloop import (
    ROOT,
    ClosedLoop,
    Sample,
    comparison_table,
    manifest,
    predict,
    predict_drawn,
    scores,
)
from hack.demo_report import report
from hack.emulator.runner import EmulatorRunner
from hack.fidelity import (
    COLD_START_JITTER_S,
    COLD_START_S,
    SLO_MS,
    Segment,
    autoscaling,
    profiled_capacity,
)
from hack.localcluster.errors import StepFailed
from sloscale.autoscale.config import parse_autoscaling

NAMESPACE, NAME = "default", "demo-resnet"
TAIL_S = 90.0  # after the last request: the scale-down to minReplicas is part of the show


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


class LiveView:
    """Every few seconds: load, replicas, the p95 the autoscaler saw and its last reason."""

    def __init__(self, loop: ClosedLoop, every_s: float = 5.0) -> None:
        self.loop, self.every_s, self.last_t = loop, every_s, -1e9
        self.observed: list[tuple[float, float]] = []

    def __call__(self, runner: EmulatorRunner, sample: Sample) -> None:
        observed = self._observed_ms()
        self.observed.append((sample.t, observed))
        if sample.t - self.last_t < self.every_s:
            return
        self.last_t = sample.t
        arrivals = runner.arrivals_s
        load = ((arrivals > sample.t - 10) & (arrivals <= sample.t)).sum() / 10.0
        print(
            f"  t={sample.t:5.0f}s  load {load:5.1f} rps  replicas {sample.ready:2d}/"
            f"{sample.desired:2d} ready/desired  p95 seen {observed:6.0f} ms (SLO "
            f"{SLO_MS:.0f})  {self._reason()[:70]}",
            flush=True,
        )

    def _observed_ms(self) -> float:
        try:
            with urllib.request.urlopen(self.loop.metrics_url, timeout=2) as response:
                page = response.read().decode()
        except OSError:
            return float("nan")
        for line in page.splitlines():
            if line.startswith("sloscale_observed_latency_ms{") and f'"{NAME}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return float("nan")

    def _reason(self) -> str:
        try:
            isvc = self.loop.custom.get_namespaced_custom_object(
                "serving.sloscale.io", "v1alpha1", NAMESPACE, "inferenceservices", NAME
            )
        except Exception:  # noqa: BLE001 - the view only
            return ""
        autoscaling = (isvc.get("status") or {}).get("autoscaling") or {}
        return str((autoscaling.get("lastDecision") or {}).get("reason", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--trace", default="azure_llm_2023_code.csv")
    parser.add_argument("--start-min", type=float, default=17.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate-scale", type=float, default=5.0, help="multiply the request rate")
    parser.add_argument("--out", default=str(ROOT / ".sloscale/demo"))
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    segment = Segment(
        "demo", args.trace, args.start_min, args.start_min + args.minutes, args.rate_scale
    )
    arrivals = segment.arrivals()
    isvc = manifest(NAME, NAMESPACE, autoscaling(profiled_capacity()))
    spec = parse_autoscaling(isvc["spec"]["autoscaling"])
    loop = ClosedLoop(out, COLD_START_S, COLD_START_JITTER_S)
    _say(segment.describe(arrivals))
    _say(
        f"real time: no compression; pods Ready {COLD_START_S:.0f} +- "
        f"{COLD_START_JITTER_S:.0f} s after they are scheduled; p95 <= {SLO_MS:.0f} ms"
    )
    try:
        drawn = predict_drawn(isvc, arrivals, loop.cold_start, TAIL_S)
        _say(
            f"the simulator predicts: {drawn['windows_meeting_objective']:.1%} of 10 s windows "
            f"meet the p95, {drawn['replica_minutes']:.1f} replica-minutes, peak "
            f"{drawn['peak_replicas']:.0f} replicas"
        )
        loop.start()
        _say("applying the InferenceService; the replay starts once its first pod is Ready")
        view = LiveView(loop)
        measured_run = loop.run(isvc, arrivals, TAIL_S, on_sample=view)
        predicted_run = predict(
            isvc, arrivals, loop.cold_start, TAIL_S, cold_starts_s=measured_run.cold_starts_s
        )
        measured, predicted = scores(measured_run.as_result(), spec), scores(predicted_run, spec)
        print(
            f"\nmeasured (closed loop) beside the simulator's prediction of the same run "
            f"({len(arrivals)} requests; p95 over the run {measured['p95_ms']:.0f} ms "
            f"measured, {predicted['p95_ms']:.0f} ms predicted; 'simulator' replays the cold "
            f"starts the pods drew, 'sim, own draws' is the prediction made before the run)"
        )
        print(comparison_table(measured, predicted, drawn))
        report(measured_run, predicted_run, view.observed, SLO_MS, out)
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


if __name__ == "__main__":
    sys.exit(main())
