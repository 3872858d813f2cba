"""`make bench-autoscale`: every shared trace, all policies against the oracle, and the speed run.

A benchmark, not a test: it prints figures and the goal's verdicts, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sloscale.autoscale.policies import (
    POLICY_NAMES,
    TUNED,
    TUNED_NAMES,
    AutoscalingSpec,
    Objective,
)
from sloscale.sim.cluster import ColdStart
from sloscale.sim.compare import Comparison, compare
from sloscale.sim.engine import SimConfig
from sloscale.sim.plot import write_pareto, write_plot
from sloscale.sim.profile import profiled_spec
from sloscale.sim.report import format_table, pareto_dominates, windows_by_day
from sloscale.sim.service import ServiceModel
from sloscale.sim.traces import Trace, load_trace, stretch
from sloscale.sim.tune import tune

# The slo policy's goals (issue 16), judged on windows meeting the objective.
GOAL_WINDOWS = 0.99
GOAL_COST_RATIO = 1.3


def rate_scale_for(trace: Trace, capacity_rps: float, peak_replicas: int) -> float:
    """The rate scale at which the trace's busiest minute needs `peak_replicas` replicas."""
    peak_rps = np.bincount((trace.arrivals_s // 60).astype(np.int64)).max() / 60.0
    return round(peak_replicas * capacity_rps / peak_rps, 1)


def verdicts(document: dict) -> list[str]:
    slo = document["policies"]["slo"]
    windows = slo["windows_meeting_objective"]
    lines = [
        f"goal: slo windows meeting the objective {windows:.4f} (>= {GOAL_WINDOWS}): "
        f"{'met' if windows >= GOAL_WINDOWS else 'MISSED'}",
        f"goal: slo replica-hours {slo['replica_hours_vs_oracle']:.3f}x oracle "
        f"(<= {GOAL_COST_RATIO}): "
        f"{'met' if slo['replica_hours_vs_oracle'] <= GOAL_COST_RATIO else 'MISSED'}",
    ]
    rivals = {**document["policies"], "static fleet": document["static_fleet"]}
    for name, row in rivals.items():
        if name != "slo" and not name.startswith("slo"):
            state = "dominates" if pareto_dominates(slo, row) else "does NOT dominate"
            lines.append(f"goal: slo {state} {name}")
    return lines


def _setup(args: argparse.Namespace) -> tuple[ServiceModel, AutoscalingSpec, SimConfig]:
    """The benchmark's service model, spec (with its profiled capacity) and config."""
    service = ServiceModel()
    spec = AutoscalingSpec(
        maxReplicas=200, objective=Objective("p95", args.slo_ms), coldStartSeconds=args.cold_start_s
    )
    config = SimConfig(ColdStart(args.cold_start_s), seed=args.seed, balancer=args.balancer)
    return (
        service,
        profiled_spec(service, spec, config),
        config,
    )


def _poisson_trace(name: str, rate_rps: np.ndarray, rng: np.random.Generator) -> Trace:
    """Poisson arrivals at a per-second rate."""
    counts = rng.poisson(np.maximum(rate_rps, 0.0))
    arrivals = np.repeat(np.arange(len(rate_rps)), counts) + rng.random(int(counts.sum()))
    return Trace(name, "synthetic", np.sort(arrivals))


def _minute_noise(n_seconds: int, memory: float, sigma: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Per second, a minute-scale AR(1) noise: each minute `memory` x the last plus a normal
    step of `sigma`, starting at 0."""
    noise = np.empty(n_seconds // 60 + 1)
    noise[0] = 0.0
    for k in range(1, len(noise)):
        noise[k] = memory * noise[k - 1] + rng.normal(0.0, sigma)
    return noise[np.arange(n_seconds) // 60]


def diurnal_with_steps(seed: int, hours: float = 2.0) -> Trace:
    """A held-out trace no parameter was chosen on: a Poisson load on a 1 h sine period
    (100 to 600 rps) with six 2-minute steps to double the rate at random times."""
    rng = np.random.default_rng(seed)
    seconds = np.arange(int(hours * 3600))
    rate = 350.0 + 250.0 * np.sin(2 * np.pi * seconds / 3600.0)
    for start in rng.choice(len(seconds) - 200, 6, replace=False):
        rate[start : start + 120] *= 2.0
    return _poisson_trace("heldout_diurnal_steps", rate, rng)


def bursty_on_off(seed: int, hours: float = 2.0) -> Trace:
    """A second held-out trace, added after the first tuning round and never tuned on: a
    30 rps floor; bursts of 150 to 700 rps switch on after random gaps (exponential, mean
    4 min), ramp up within 5 to 20 s and last 30 s to 6 min."""
    rng = np.random.default_rng(seed + 1)
    n_seconds = int(hours * 3600)
    rate = np.full(n_seconds, 30.0)
    start = float(rng.exponential(240.0))
    while start < n_seconds:
        length, ramp = rng.uniform(30.0, 360.0), rng.uniform(5.0, 20.0)
        seconds = np.arange(int(start), min(n_seconds, int(start + length)))
        rate[seconds] += rng.uniform(150.0, 700.0) * np.minimum(1.0, (seconds - start) / ramp)
        start += length + rng.exponential(240.0)
    return _poisson_trace("heldout_bursty_on_off", rate, rng)


def noisy_ramp(seed: int, hours: float = 2.0) -> Trace:
    """A third held-out trace, never tuned on: a slow ramp from 40 to 600 rps over three
    quarters of the run and back down in the last quarter, times minute-scale noise (an
    AR(1) factor, about +-20%)."""
    rng = np.random.default_rng(seed + 2)
    n_seconds = int(hours * 3600)
    seconds = np.arange(n_seconds)
    peak_s = 0.75 * n_seconds
    falling = (n_seconds - seconds) / (n_seconds - peak_s)
    shape = np.where(seconds < peak_s, seconds / peak_s, falling)
    rate = (40.0 + 560.0 * shape) * np.exp(_minute_noise(n_seconds, 0.7, 0.14, rng))
    return _poisson_trace("heldout_noisy_ramp", rate, rng)


def flash_crowds(seed: int, hours: float = 2.0) -> Trace:
    """A fourth held-out trace, added after every slo parameter was fixed and never tuned on:
    a 40-minute wave (200 rps +- 40 %) and flash crowds (exponential gaps, mean 15 min) that
    ramp to 2-3x over 60-120 s, hold 3-8 minutes and fade over a minute."""
    rng = np.random.default_rng(seed + 3)
    n_seconds = int(hours * 3600)
    seconds = np.arange(n_seconds)
    rate = 200.0 * (1.0 + 0.4 * np.sin(2 * np.pi * seconds / 2400.0))
    start = float(rng.exponential(900.0))
    while start < n_seconds:
        ramp, hold, factor = rng.uniform(60.0, 120.0), rng.uniform(180.0, 480.0), rng.uniform(2, 3)
        since = seconds - start
        shape = np.clip(np.minimum(since / ramp, (ramp + hold + 60.0 - since) / 60.0), 0.0, 1.0)
        rate *= 1.0 + (factor - 1.0) * shape
        start += ramp + hold + 60.0 + rng.exponential(900.0)
    return _poisson_trace("heldout_flash_crowds", rate, rng)


HELDOUT = (diurnal_with_steps, bursty_on_off, noisy_ramp, flash_crowds)

# The recurring steps of `daily_steps`: (hour of the day, minutes held).
DAILY_STEPS = ((9.0, 10.0), (14.5, 6.0))


def daily_steps(seed: int, days: float = 3.0) -> Trace:
    """Days, for the season: a day-long sine (20 to 100 rps, low at 03:00) with minute-scale
    noise (about +-10 %), the rate doubled at 09:00 for 10 minutes and at 14:30 for 6 every
    day (each +-30 s), and one 5-minute doubling a day at a random time. The first day is what
    any policy sees; on the next ones the hour of the steps is known from the day before."""
    rng = np.random.default_rng(seed + 4)
    n_seconds = int(days * 86400)
    seconds = np.arange(n_seconds)
    rate = 60.0 - 40.0 * np.cos(2 * np.pi * (seconds / 86400.0 - 3.0 / 24.0))
    rate *= np.exp(_minute_noise(n_seconds, 0.8, 0.06, rng))
    for day in range(int(np.ceil(days))):
        starts = [(day * 24 + hour) * 3600 + rng.uniform(-30, 30) for hour, _ in DAILY_STEPS]
        lengths = [minutes * 60 for _, minutes in DAILY_STEPS]
        starts.append(day * 86400 + rng.uniform(0, 86400 - 300))
        lengths.append(300.0)
        for start, length in zip(starts, lengths, strict=True):
            rate[int(start):int(start + length)] *= 2.0
    return _poisson_trace("heldout_daily_steps", rate, rng)


def _scaled(base: Trace, args: argparse.Namespace
            ) -> tuple[Trace, float, ServiceModel, AutoscalingSpec, SimConfig]:
    """The trace at the rate where its busiest minute needs --peak-replicas pods, and the
    service, spec and config it runs with."""
    service, spec, config = _setup(args)
    scale = rate_scale_for(base, spec.capacityRpsPerReplica or 1.0, args.peak_replicas)
    return stretch(base, 1.0, scale, np.random.default_rng(args.seed)), scale, service, spec, config


def bench_tuning(shared: list[Trace], args: argparse.Namespace) -> dict[str, float]:
    """Grid every baseline's knob on the shared traces; the chosen values fill TUNED."""
    def run_traces(names: list[str]) -> list[Comparison]:
        results = []
        for base in shared:
            trace, _, service, spec, config = _scaled(base, args)
            results.append(compare(trace, spec, service, config, names))
        return results

    chosen, table = tune(run_traces)
    print(f"\n## tuning: each baseline's knob on {', '.join(t.name for t in shared)}")
    print(table)
    stale = {base: value for base, value in chosen.items() if TUNED.get(base) != value}
    if stale:
        print(f"registry TUNED differs from this grid: set TUNED = {chosen} in "
              "operator/sloscale/autoscale/policies/registry.py")
    TUNED.update(chosen)
    return chosen


def bench_trace(base: Trace, args: argparse.Namespace, out: Path) -> dict:
    trace, scale, service, spec, config = _scaled(base, args)
    result = compare(trace, spec, service, config, [*POLICY_NAMES, *TUNED_NAMES])
    doc = result.document
    doc["trace"]["rate_scale"] = scale
    write_plot(
        out / f"{trace.name}.png",
        result.runs[:len(POLICY_NAMES) + 1],  # the oracle and the policies as documented
        result.oracle,
        args.slo_ms,
        95.0,
        f"{trace.name} x{scale:g}: SLO p95 {args.slo_ms:g} ms, cold start {args.cold_start_s:g} s",
    )
    write_pareto(out / f"{trace.name}-pareto.png", doc,
                 f"{trace.name} x{scale:g}: p95 <= {args.slo_ms:g} ms per "
                 f"{spec.objective.window:g} s window, cold start {args.cold_start_s:g} s")
    print(
        f"\n## {trace.name} (rate x{scale:g}: {doc['trace']['requests']} requests, busiest "
        f"minute {doc['trace']['peak_rps_1min']:.0f} rps = {args.peak_replicas} replicas at "
        f"{spec.capacityRpsPerReplica:.1f} rps/replica; oracle peak "
        f"{doc['oracle']['peak_replicas']}; {doc['elapsed_s']:.1f} s)"
    )
    print(format_table(doc))
    model = doc["policies"]["slo"].get("latency_model")
    if model:
        print(f"slo latency model: p95 reported / modelled at the pods' peak rate, over "
              f"{model['decisions']} decisions: p10 {model['ratio_p10']:.2f}, median "
              f"{model['ratio_median']:.2f}, p90 {model['ratio_p90']:.2f}; within 0.8-1.25: "
              f"{model['within_25pct']:.0%}")
    print("\n".join(verdicts(doc)))
    return doc


ABLATIONS = ("slo", "slo[use_forecast=0]", "slo[use_burstiness=0]")
SEASON_ABLATIONS = ("slo", "slo[use_season=0]")
COLD_START_ABLATIONS = ("slo", "slo[measure_cold_start=0]")


def _cells(label: str, document: dict) -> list[str]:
    return [f"{label}{name} {row['windows_meeting_objective']:.3f}/{row['replica_hours']:.1f}/"
            f"{row['replica_hours_vs_oracle']:.2f}x" for name, row in document["policies"].items()]


def bench_ablations(bases: list[Trace], args: argparse.Namespace) -> dict:
    """The slo policy without each of its parts, on every trace. The cold start ones run where
    the pods take 1.5x +- 0.5x --cold-start-s while the spec says --cold-start-s, then a
    quarter of it: measured against assumed."""
    results: dict[str, Any] = {}
    print("\n## ablations of the slo policy (windows meeting the objective / replica-hours / "
          "x oracle)")
    for base in bases:
        trace, _, service, spec, config = _scaled(base, args)
        rows = compare(trace, spec, service, config, list(ABLATIONS)).document
        slow = replace(config, cold_start=ColdStart(args.cold_start_s * 1.5,
                                                    args.cold_start_s * 0.5))
        cold = compare(trace, spec, service, slow, list(COLD_START_ABLATIONS)).document
        wrong = replace(spec, coldStartSeconds=args.cold_start_s / 4)
        way_off = compare(trace, wrong, service, slow, list(COLD_START_ABLATIONS)).document
        results[trace.name] = {"policies": rows["policies"], "cold_start_90s": cold["policies"],
                               "cold_start_90s_spec_quarter": way_off["policies"]}
        print(f"{trace.name}:\n  " + "\n  ".join(
            _cells("", rows) + _cells(f"pods 90+-30 s, spec {spec.coldStartSeconds:g} s: ", cold)
            + _cells(f"pods 90+-30 s, spec {wrong.coldStartSeconds:g} s: ", way_off)))
    return results


# Each SloParams parameter on both sides of its default: its measured effect (docs/benchmarks.md).
SLO_SWEEP = (
    "slo", "slo[demand_quantile=0.8]", "slo[demand_quantile=0.95]", "slo[demand_quantile=0.99]",
    "slo[error_memory_s=1800]", "slo[error_memory_s=7200]",
    "slo[neighbours=10]", "slo[neighbours=40]", "slo[neighbourhood_factor=1.2]",
    "slo[neighbourhood_factor=2]", "slo[healthy_latency_fraction=0.6]",
    "slo[healthy_latency_fraction=0.9]", "slo[max_capacity_cut=0.5]", "slo[max_capacity_cut=0.9]",
    "slo[recovery_rate=1.005]", "slo[recovery_rate=1.1]",
    "slo[scale_down_tolerance=0]", "slo[scale_down_tolerance=0.2]",
)


def bench_slo_sweep(bases: list[Trace], args: argparse.Namespace) -> dict:
    """Every slo parameter moved one way and the other, on every trace."""
    rows: dict[str, dict[str, Any]] = {}
    for base in bases:
        trace, _, service, spec, config = _scaled(base, args)
        document = compare(trace, spec, service, config, list(SLO_SWEEP)).document
        for name, row in document["policies"].items():
            rows.setdefault(name, {})[trace.name] = row
    names = [base.name[:14] for base in bases]
    print("\n## the slo policy's parameters (windows meeting the objective / x oracle)")
    print(f"{'setting':<36}" + "".join(f"{n:>16}" for n in names))
    for name, per_trace in rows.items():
        print(f"{name:<36}" + "".join(
            f"{row['windows_meeting_objective']:>9.3f}/{row['replica_hours_vs_oracle']:<5.2f}x"
            for row in per_trace.values()))
    return rows


def bench_season(args: argparse.Namespace, days: float = 3.0, peak_replicas: int = 8) -> dict:
    """The slo policy with and without the season on `daily_steps` (days long, so sized to a
    busiest minute of `peak_replicas` pods to keep it quick), whole run and per day: the first
    day is the same for both, the season engages once a day is covered."""
    base = daily_steps(args.seed, days)
    sized = argparse.Namespace(**{**vars(args), "peak_replicas": peak_replicas})
    trace, _, service, spec, config = _scaled(base, sized)
    result = compare(trace, spec, service, config, list(SEASON_ABLATIONS))
    print(f"\n## the season: {trace.name}, {days:g} days, {len(trace.arrivals_s)} requests, "
          f"busiest minute {peak_replicas} replicas ({result.document['elapsed_s']:.1f} s)")
    print(format_table(result.document))
    by_day = {run.name: windows_by_day(run, spec)[:int(days)] for run in result.runs}
    for name, met in by_day.items():
        print(f"{name:<22} windows met by day: " + "  ".join(
            f"day {day} {share:.3f}" for day, share in enumerate(met, start=1)))
    return {"policies": result.document["policies"], "windows_by_day": by_day}


def bench_speed(path: Path, args: argparse.Namespace) -> dict:
    """24 h and about 5 M requests from an hour-long trace: all policies plus the oracle."""
    service, spec, config = _setup(args)
    base = load_trace(path)
    time_scale = 86400.0 / base.duration_s
    rate_scale = round(5_000_000 / len(base.arrivals_s), 1)
    started = time.monotonic()
    trace = stretch(base, time_scale, rate_scale, np.random.default_rng(args.seed))
    loaded_s = time.monotonic() - started
    policies = [*POLICY_NAMES, *TUNED_NAMES]
    result = compare(trace, spec, service, config, policies)
    total_s = time.monotonic() - started
    print(
        f"\n## speed: {path.name} --time-scale {time_scale:.2f} --rate-scale {rate_scale:g}: "
        f"{len(trace.arrivals_s)} requests over {trace.duration_s / 3600:.1f} h"
    )
    simulated_s = result.document["elapsed_s"]
    print(
        f"trace synthesis {loaded_s:.1f} s, {len(policies)} policies + oracle + bound "
        f"{simulated_s:.1f} s, "
        f"total {total_s:.1f} s (goal: < 120 s)"
    )
    print(format_table(result.document))
    return {
        "requests": len(trace.arrivals_s),
        "seconds": total_s,
        "policies_and_oracle_s": result.document["elapsed_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--traces", type=Path, required=True, help="folder of trace files")
    parser.add_argument("--out", type=Path, default=Path(".sloscale/bench"))
    parser.add_argument("--slo-ms", type=float, default=150.0)
    parser.add_argument("--cold-start-s", type=float, default=60.0)
    parser.add_argument("--peak-replicas", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--balancer", default="random", choices=("random", "least-requests"))
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--ablations", action="store_true",
                        help="also run the slo policy without each of its parts")
    parser.add_argument("--season", action="store_true",
                        help="also run the slo policy with and without its season on three days")
    parser.add_argument("--slo-sweep", action="store_true",
                        help="also move each slo parameter around its default")
    parser.add_argument("--fidelity", type=Path, default=None,
                        help="fidelity.json of `make bench-fidelity`: print its table too")
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.traces.iterdir() if p.suffix in (".csv", ".jsonl"))
    if not paths:
        print(f"no .csv or .jsonl traces in {args.traces}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"# bench-autoscale: SLO p95 {args.slo_ms:g} ms, cold start {args.cold_start_s:g} s, "
        f"service model {ServiceModel()}"
    )
    shared = [load_trace(p) for p in paths]
    results: dict[str, Any] = {"tuned": bench_tuning(shared, args)}
    results.update({trace.name: bench_trace(trace, args, args.out) for trace in shared})
    heldout = [make_trace(args.seed) for make_trace in HELDOUT]
    for trace in heldout:
        results[trace.name] = bench_trace(trace, args, args.out)
    if args.ablations:
        results["ablations"] = bench_ablations([*shared, *heldout], args)
    if args.slo_sweep:
        results["slo_sweep"] = bench_slo_sweep([*shared, *heldout], args)
    if args.season:
        results["season"] = bench_season(args)
    if not args.skip_speed:
        results["speed"] = bench_speed(paths[0], args)
    (args.out / "bench-autoscale.json").write_text(json.dumps(results, indent=2, default=float))
    if args.fidelity is not None:
        print_fidelity(args.fidelity)
    print(f"\nplots and JSON in {args.out}/")
    return 0


def print_fidelity(path: Path) -> None:
    """The simulator against a real Triton, as `make bench-fidelity` last measured it: the
    tables above are only as true as this one (it needs a Triton, so it is not rerun here)."""
    from sloscale.sim.fidelity import HEADER, format_row, levels_from_json

    print("\n## the simulator against a real Triton (one replica; `make bench-fidelity`)")
    if not path.is_file():
        print(f"not measured here yet: `make bench-fidelity` writes {path}")
        return
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
    print(f"measured {measured} ({path})")
    print(HEADER)
    for level in levels_from_json(path.read_text()):
        print(format_row(level))


if __name__ == "__main__":
    sys.exit(main())
