"""The demo's ending: a summary table from the emulator's ground truth and a PNG of the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

WINDOW_S = 10.0


def summarise(timeline: Any, ledger: Any, slo_ms: float) -> dict[str, float]:
    latencies = np.asarray(ledger.latency_ms, dtype=np.float64)
    finished = np.asarray(ledger.finished_at_s, dtype=np.float64)
    windows_met = windows = 0
    if len(finished):
        for start in np.arange(0.0, finished.max(), WINDOW_S):
            inside = latencies[(finished >= start) & (finished < start + WINDOW_S)]
            if len(inside):
                windows += 1
                windows_met += bool(np.percentile(inside, 95) <= slo_ms)
    t = np.asarray(timeline.t)
    desired = np.asarray(timeline.desired, dtype=np.float64)
    replica_s = float(np.sum(desired[:-1] * np.diff(t))) if len(t) > 1 else 0.0
    actions = int(np.count_nonzero(np.diff(desired))) if len(desired) > 1 else 0
    return {
        "requests": float(ledger.arrived),
        "served": float(len(latencies)),
        "rejected": float(ledger.rejected),
        "within_slo": float(np.mean(latencies <= slo_ms)) if len(latencies) else 0.0,
        "windows_meeting_p95": windows_met / windows if windows else 0.0,
        "p95_ms": float(np.percentile(latencies, 95)) if len(latencies) else float("nan"),
        "replica_minutes": replica_s / 60.0,
        "peak_replicas": float(desired.max()) if len(desired) else 0.0,
        "scaling_actions": float(actions),
    }


def _plot(timeline: Any, ledger: Any, slo_ms: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (load, replicas, latency) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    load.plot(timeline.t, timeline.load_rps, color="tab:gray")
    load.set_ylabel("load (req/s)")
    replicas.step(timeline.t, timeline.desired, where="post", label="desired")
    replicas.step(timeline.t, timeline.ready, where="post", label="ready")
    replicas.set_ylabel("replicas")
    replicas.legend(loc="upper left")
    finished = np.asarray(ledger.finished_at_s)
    latencies = np.asarray(ledger.latency_ms)
    edges = np.arange(0.0, (finished.max() if len(finished) else 0.0) + WINDOW_S, WINDOW_S)
    p95 = [
        np.percentile(latencies[(finished >= lo) & (finished < lo + WINDOW_S)], 95)
        if np.any((finished >= lo) & (finished < lo + WINDOW_S))
        else np.nan
        for lo in edges
    ]
    latency.plot(edges, p95, label="p95 (ground truth, 10 s windows)")
    latency.plot(timeline.t, timeline.observed_ms, label="p95 the autoscaler saw", alpha=0.7)
    latency.axhline(slo_ms, color="tab:red", linestyle="--", label=f"SLO {slo_ms:.0f} ms")
    latency.set_ylim(0, 4 * slo_ms)  # overload spikes reach seconds; the SLO band matters
    latency.set_ylabel("latency (ms, clipped at 4x SLO)")
    latency.set_xlabel("seconds into the replay")
    latency.legend(loc="upper left")
    fig.suptitle("sloscale demo: load, replicas and latency against the SLO")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(timeline: Any, ledger: Any, slo_ms: float, out: Path) -> dict[str, float]:
    summary = summarise(timeline, ledger, slo_ms)
    rows = [
        ("requests replayed", f"{summary['requests']:.0f}"),
        ("served / rejected", f"{summary['served']:.0f} / {summary['rejected']:.0f}"),
        (f"within the {slo_ms:.0f} ms SLO", f"{summary['within_slo']:.1%}"),
        ("10 s windows meeting p95", f"{summary['windows_meeting_p95']:.1%}"),
        ("p95 over the run", f"{summary['p95_ms']:.0f} ms"),
        ("replica-minutes (GPU cost)", f"{summary['replica_minutes']:.1f}"),
        ("peak replicas", f"{summary['peak_replicas']:.0f}"),
        ("scaling actions", f"{summary['scaling_actions']:.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print("\nsummary")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    png = out / "demo.png"
    _plot(timeline, ledger, slo_ms, png)
    print(f"\nplot: {png}")
    return summary
