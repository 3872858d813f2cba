"""PNG plots of capacity profiles: latency percentiles against throughput, target marked."""

from __future__ import annotations

from pathlib import Path

from sloscale_runtime.capacity import CapacityProfile


def label_of(profile: CapacityProfile) -> str:
    dynamic = "dynamic batching" if profile.batching.get("dynamic") else "no batching"
    return f"{profile.model.get('name', '?')} ({dynamic})"


def plot_profiles(profiles: list[CapacityProfile], path: Path) -> Path:
    """One chart; each profile's chosen percentile (solid) and p50 (dotted) vs throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for profile in profiles:
        q = int(profile.objective["percentile"])
        rps = [p.throughput_rps for p in profile.points]
        line = axes.plot(rps, [p.latency_ms(q) for p in profile.points], marker="o",
                         label=f"{label_of(profile)} p{q}")[0]
        axes.plot(rps, [p.p50_ms for p in profile.points], linestyle=":", color=line.get_color(),
                  label=f"{label_of(profile)} p50")
        for point in profile.points:
            axes.annotate(f"c={point.concurrency}", (point.throughput_rps, point.latency_ms(q)),
                          fontsize=7, xytext=(3, 3), textcoords="offset points")
        if profile.max_rps_at_target is not None:
            axes.axvline(profile.max_rps_at_target, color=line.get_color(), linestyle="--",
                         alpha=0.6)
    slo_ms = float(profiles[0].objective["slo_ms"])
    axes.axhline(slo_ms, color="red", linestyle="--", label=f"target {slo_ms:g} ms")
    hardware = profiles[0].hardware
    axes.set_title(f"Capacity on {hardware.get('kind')}: {hardware.get('description')}", fontsize=9)
    axes.set_xlabel("throughput (requests/s)")
    axes.set_ylabel("latency (ms)")
    axes.set_ylim(bottom=0, top=max(3 * slo_ms, 1.0))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
