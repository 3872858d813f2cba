"""The demo's ending: a PNG of the run, measured beside the simulator's prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sloscale.sim.engine import RunResult

WINDOW_S = 10.0


def _p95_by_window(
    arrival_s: np.ndarray, latency_ms: np.ndarray, end_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """p95 of the requests arriving in each 10 s window (NaN where none did)."""
    edges = np.arange(0.0, end_s + WINDOW_S, WINDOW_S)
    p95 = [
        np.percentile(latency_ms[(arrival_s >= lo) & (arrival_s < lo + WINDOW_S)], 95)
        if np.any((arrival_s >= lo) & (arrival_s < lo + WINDOW_S))
        else np.nan
        for lo in edges
    ]
    return edges, np.asarray(p95)


def report(
    measured: Any,
    predicted: RunResult,
    observed: list[tuple[float, float]],
    slo_ms: float,
    out: Path,
) -> Path:
    """Load, replicas (measured and predicted) and latency against the SLO: demo.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrivals = measured.arrivals_s
    end_s = max(s.t for s in measured.samples) if measured.samples else float(arrivals[-1])
    fig, (load, replicas, latency) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    counts = np.bincount(arrivals.astype(np.int64)) if len(arrivals) else np.zeros(1)
    smooth = np.convolve(counts, np.ones(10) / 10.0, mode="same")
    load.plot(np.arange(len(smooth)), smooth, color="tab:gray")
    load.set_ylabel("load (req/s, 10 s mean)")
    t = [s.t for s in measured.samples]
    replicas.step(t, [s.desired for s in measured.samples], where="post", label="desired")
    replicas.step(t, [s.ready for s in measured.samples], where="post", label="ready")
    replicas.step(
        predicted.timeline_s,
        predicted.replicas,
        where="post",
        linestyle="--",
        color="tab:purple",
        label="desired, simulator's prediction",
    )
    replicas.set_ylabel("replicas")
    replicas.legend(loc="upper left")
    edges, p95 = _p95_by_window(measured.arrival_s, measured.latency_ms, end_s)
    latency.plot(edges, p95, label="p95 measured (10 s windows by arrival)")
    edges, p95 = _p95_by_window(predicted.admitted_s, predicted.latency_ms, end_s)
    latency.plot(edges, p95, linestyle="--", color="tab:purple", label="p95 predicted")
    latency.plot(
        [o[0] for o in observed],
        [o[1] for o in observed],
        alpha=0.6,
        color="tab:green",
        label="p95 the autoscaler saw",
    )
    latency.axhline(slo_ms, color="tab:red", linestyle=":", label=f"SLO {slo_ms:.0f} ms")
    latency.set_ylim(0, 4 * slo_ms)  # overload spikes reach seconds; the SLO band matters
    latency.set_ylabel("latency (ms, clipped at 4x SLO)")
    latency.set_xlabel("seconds into the replay (real time)")
    latency.legend(loc="upper left", fontsize=8)
    fig.suptitle("sloscale demo: load, replicas and latency, measured and predicted")
    fig.tight_layout()
    png = out / "demo.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    print(f"\nplot: {png}")
    return png
