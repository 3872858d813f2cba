"""One PNG per simulation: load, replicas per policy and the oracle, latency against the SLO."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sloscale.sim.engine import RunResult
from sloscale.sim.oracle import OracleSchedule


def _per_minute_p(run: RunResult, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    minutes = (run.admitted_s // 60).astype(np.int64)
    bounds = np.searchsorted(minutes, np.arange(minutes.max(initial=0) + 2))
    values = [np.percentile(np.minimum(run.latency_ms[a:b], 1e6), percentile) if b > a
              else np.nan for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return np.arange(len(values)) / 60.0, np.array(values)


def write_plot(path: Path, runs: list[RunResult], oracle: OracleSchedule, slo_ms: float,
               percentile: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (load, replicas, latency) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    arrivals = runs[0].arrivals_s
    per_minute = np.bincount((arrivals // 60).astype(np.int64)) / 60.0
    load.plot(np.arange(len(per_minute)) / 60.0, per_minute, color="black")
    load.set_ylabel("requests/s (1 min)")
    oracle_t = np.arange(len(oracle.alive)) * oracle.bucket_s / 3600.0
    replicas.step(oracle_t, oracle.alive, where="post", label="oracle", color="black", lw=1)
    for run in runs:
        color = "black" if run.name == "oracle" else None
        if run.name != "oracle":  # the oracle's replay follows its plan, drawn above
            replicas.step(run.timeline_s / 3600.0, run.replicas, where="post", label=run.name)
        hours, p = _per_minute_p(run, percentile)
        latency.plot(hours, p, label=run.name, color=color, lw=1)
    replicas.set_ylabel("replicas")
    replicas.legend(loc="upper left", ncol=5)
    latency.axhline(slo_ms, color="red", ls="--", label="SLO")
    latency.set_yscale("log")
    latency.set_ylabel(f"p{percentile:g} latency ms (1 min)")
    latency.set_xlabel("hours")
    latency.legend(loc="upper left", ncol=6)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_pareto(path: Path, document: dict[str, Any], title: str) -> None:
    """Replica-hours against windows meeting the objective: one point per policy (tuned
    variants hollow), the oracle, the static fleet, and the lower bound as a line no schedule
    can pass."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, row in document["policies"].items():
        tuned = name.endswith("-tuned")
        color = "C3" if name == "slo" else "C0"  # ours stands out
        ax.scatter(row["replica_hours"], 100.0 * row["windows_meeting_objective"], s=60,
                   marker="o", facecolors="none" if tuned else color, edgecolors=color)
        ax.annotate(name, (row["replica_hours"], 100.0 * row["windows_meeting_objective"]),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    oracle = document["oracle"]
    ax.scatter(oracle["replica_hours"], 100.0 * oracle["windows_meeting_objective"], s=140,
               marker="*", color="black", label="oracle (certified by replay)")
    static = document.get("static_fleet")
    if static is not None:
        ax.scatter(static["replica_hours"], 100.0 * static["windows_meeting_objective"], s=80,
                   marker="s", color="grey",
                   label=f"static fleet, {static['replicas']} pods (hindsight)")
    bound = document.get("lower_bound")
    if bound is not None:
        ax.axvline(bound["replica_hours"], color="red", ls="--", label="lower bound (proven)")
    ax.set_xlabel("replica-hours (GPU cost)")
    ax.set_ylabel("windows meeting the objective (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
