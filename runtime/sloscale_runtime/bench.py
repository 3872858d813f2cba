"""Benchmark (not a test): an example model's capacity with and without dynamic batching.

`make bench-runtime` runs it for each example model: it builds both variants, serves them on
one local Triton, profiles each, prints a table and writes two capacity profiles and a PNG.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

from sloscale_runtime import capacity, profiler, scrape
from sloscale_runtime.builder import BuildOptions, build
from sloscale_runtime.cli import int_list, write_atomically
from sloscale_runtime.loader import parse_shape
from sloscale_runtime.plot import plot_profiles
from sloscale_runtime.triton import TritonServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/runtime-bench"))
    parser.add_argument("--model", default=f"{EXAMPLES / 'small_cnn.py'}:make_model",
                        help="FILE.py:FACTORY")
    parser.add_argument("--input-shape", default="1,3,32,32")
    parser.add_argument("--slo-ms", type=float, default=10.0)
    parser.add_argument("--percentile", type=int, default=95)
    parser.add_argument("--levels", default="1,2,4,8,16,32")
    parser.add_argument("--step-s", type=float, default=4.0)
    parser.add_argument("--protocol", default="http", choices=["http", "grpc"])
    args = parser.parse_args(argv)
    stem = Path(args.model.rpartition(":")[0]).stem
    variants = {f"{stem}_batched": True, f"{stem}_unbatched": False}
    profiles = []
    compute_us: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sloscale-bench-") as workdir:
        repository = Path(workdir) / "models"
        for name, dynamic in variants.items():
            build(BuildOptions(args.model, parse_shape(args.input_shape), name, repository,
                               dynamic_batching=dynamic))
        with TritonServer(repository, Path(workdir)) as server:
            for name in variants:
                url = server.ports.http_url if args.protocol == "http" else server.ports.grpc_url
                config, points = profiler.sweep(
                    args.protocol, url, name, args.percentile, args.slo_ms,
                    levels=int_list(args.levels, "--levels"), step_s=args.step_s)
                profile = profiler.make_profile(
                    config, points, args.protocol, args.percentile, args.slo_ms, args.step_s,
                    profiler.hardware_description(), dt.datetime.now(dt.UTC))
                write_atomically(args.out / f"{name}.json", capacity.to_json(profile))
                compute_us[name] = server_compute_us(server.ports.metrics_url, name)
                profiles.append(profile)
    plot = plot_profiles(profiles, args.out / f"{stem}_batching.png")
    print_table(profiles, args.percentile, args.slo_ms)
    print("  server compute per request (whole sweep, from Triton's counters): "
          + ", ".join(f"{name} {us:.0f} us" for name, us in compute_us.items()))
    print(f"wrote {args.out}/*.json and {plot}")
    return 0


def server_compute_us(metrics_url: str, model: str) -> float:
    """Model execution time per request: what batching saves, free of client overhead."""
    names = {scrape.COMPUTE_INFER_US, scrape.REQUEST_SUCCESS, scrape.EXEC_COUNT}
    counters = scrape.model_counters(metrics_url, model, names)
    return compute_us_per_request(counters[scrape.COMPUTE_INFER_US],
                                  counters[scrape.REQUEST_SUCCESS], counters[scrape.EXEC_COUNT])


def compute_us_per_request(compute_us: float, requests: float, executions: float) -> float:
    """Triton charges every request of a batch the whole batch's compute time, so the
    machine time per request is the per-request charge divided by the mean batch size."""
    if requests <= 0 or executions <= 0:
        return float("nan")
    mean_batch = requests / executions
    return compute_us / requests / mean_batch


def print_table(profiles: list[capacity.CapacityProfile], percentile: int, slo_ms: float) -> None:
    print(f"\nmax rate with p{percentile} <= {slo_ms:g} ms on {profiles[0].hardware['description']}"
          f" ({profiles[0].hardware['cpu_count']} CPUs, client on the same machine)")
    for profile in profiles:
        curve = ", ".join(
            f"c{p.concurrency}:{p.throughput_rps:.0f}rps/{p.latency_ms(percentile):.1f}ms"
            for p in profile.points
        )
        best = profile.max_rps_at_target or 0.0
        print(f"  {profile.model['name']:<22} {best:8.0f} rps   [{curve}]")
    rates = [p.max_rps_at_target for p in profiles]
    if all(rates):
        print(f"  dynamic batching gain: {rates[0] / rates[1]:.2f}x")  # type: ignore[operator]


if __name__ == "__main__":
    sys.exit(main())
