"""Backtest output: a table and a PNG of recommended against actual replicas."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sloscale.autoscale.backtest import BacktestRow


def _fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0].rstrip("df"))
    return f"{'-':>{width}}" if value is None else format(value, spec)


def table(rows: Sequence[BacktestRow]) -> str:
    lines = [f"{'time (UTC)':<20} {'rps':>8} {'latency':>9} {'actual':>6} {'would':>6}  reason"]
    for row in rows:
        stamp = datetime.fromtimestamp(row.time, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"{stamp:<20} {_fmt(row.rps, '8.1f')} {_fmt(row.latency_ms, '7.0f')}ms "
            f"{_fmt(row.actual, '6d')} {row.recommended:6d}  {row.reason[:70]}"
        )
    changes = sum(1 for a, b in zip(rows, rows[1:], strict=False) if a.recommended != b.recommended)
    lines.append(f"{len(rows)} decisions, {changes} changes of the recommendation")
    return "\n".join(lines)


def plot(rows: Sequence[BacktestRow], target_ms: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [(row.time - rows[0].time) / 60 for row in rows] if rows else []
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.step(t, [r.actual if r.actual is not None else float("nan") for r in rows],
             where="post", label="actual (pods reporting)")  # fmt: skip
    top.step(t, [r.recommended for r in rows], where="post", label="would have asked")
    top.set_ylabel("replicas")
    top.legend(loc="upper left")
    bottom.plot(t, [r.latency_ms if r.latency_ms is not None else float("nan") for r in rows],
                label="observed latency")  # fmt: skip
    bottom.axhline(target_ms, color="tab:red", linestyle="--", label=f"target {target_ms:g} ms")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("minutes from --from")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
