"""`sloscale simulate`: replay a trace under autoscaling policies, against the oracle."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sloscale.autoscale.policies import POLICY_NAMES, TUNED_NAMES

# `all` runs POLICY_NAMES; a `<baseline>-tuned` runs with the value its grid run chose.
POLICY_CHOICES = (*POLICY_NAMES, *TUNED_NAMES, "all", "all-tuned")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--trace", required=True, help="Azure CSV, Mooncake JSONL or CSV with `timestamp` (s)")
    add("--policy", default="all", choices=POLICY_CHOICES)
    add("--slo-ms", type=float, default=150.0, help="latency objective target (ms)")
    add("--percentile", default="95", choices=("95", "99", "mean"))
    add("--cold-start-s", type=float, default=60.0, help="seconds from scheduled to Ready")
    add("--cold-start-jitter-s", type=float, default=0.0, help="uniform +- spread of the above")
    add("--rate-scale", type=float, default=1.0, help="multiply the request rate")
    add("--time-scale", type=float, default=1.0, help="stretch the trace in time")
    add("--rate-jitter-s", type=float, default=10.0,
        help="spread the copies made by --rate-scale over this many seconds")
    add("--tile", type=int, default=1, help="repeat the (scaled) trace back to back N times")
    add("--service-ms-base", type=float, default=40.0, help="batch service time: A + B*size")
    add("--service-ms-per-item", type=float, default=20.0)
    add("--max-batch", type=int, default=8)
    add("--max-queue-delay-ms", type=float, default=5.0)
    add("--max-queue-size", type=int, default=None,
        help="Triton's max_queue_size per pod; overflow is rejected (default: unbounded)")
    add("--close-at-fraction", type=float, default=1.0,
        help="how far into the running batch a pod closes the next one (1: when it ends)")
    add("--early-close-share", type=float, default=0.0,
        help="share of batches during which a pod closes the next one at once, the others "
             "at --close-at-fraction (Triton's python backend on a CPU: about 0.55, "
             "docs/sim-fidelity.md)")
    add("--batch-time-cv", type=float, default=0.0,
        help="spread of each batch's time around A + B*size (coefficient of variation of a "
             "lognormal multiplier; 0: the line exactly; Triton on a shared CPU: about 0.1, "
             "docs/sim-fidelity.md)")
    add("--batch-time-tau-ms", type=float, default=0.0,
        help="how long a slow spell of batches lasts (correlation time of the multiplier; 0: "
             "each batch drawn independently; Triton on a shared CPU: tens of ms, "
             "docs/sim-fidelity.md)")
    add("--balancer", default="random", choices=("random", "least-requests"),
        help="how the Service spreads requests over Ready pods")
    add("--min-replicas", type=int, default=1)
    add("--max-replicas", type=int, default=200)
    add("--gpu-budget", type=int, default=None, help="pods beyond this stay Pending")
    add("--interval-s", type=float, default=15.0, help="the slo policy's decision interval")
    add("--scrape-interval-s", type=float, default=5.0)
    add("--capacity-rps", type=float, default=None,
        help="capacity profile: rps per replica at the target (default: from the service model)")
    add("--no-profile", action="store_true", help="the slo policy learns capacity from scratch")
    add("--seed", type=int, default=0)
    add("--json", action="store_true", help="print the JSON document instead of the table")
    add("--plot", default=None, help="PNG path (default: <trace>-simulate.png in the cwd)")


def _summary(document: dict[str, Any], slo_ms: float) -> str:
    trace, objective = document["trace"], document["objective"]
    return (f"trace {trace['name']}: {trace['requests']} requests over "
            f"{trace['duration_s'] / 3600:.2f} h, peak {trace['peak_rps_1min']:.1f} rps (1 min); "
            f"capacity {objective['capacity_rps_per_replica']:.1f} rps/replica at {slo_ms:g} ms; "
            f"simulated in {document['elapsed_s']:.1f} s")


def _inputs(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """Trace, spec (with the capacity profile), service model and config from the flags."""
    from dataclasses import replace

    import numpy as np

    from sloscale.autoscale.policies import AutoscalingSpec, Objective
    from sloscale.sim.cluster import ColdStart
    from sloscale.sim.engine import SimConfig
    from sloscale.sim.profile import profiled_spec
    from sloscale.sim.service import ServiceModel
    from sloscale.sim.traces import load_trace, stretch, tile

    service = ServiceModel(args.service_ms_base, args.service_ms_per_item, args.max_batch,
                           args.max_queue_delay_ms, args.max_queue_size, args.close_at_fraction,
                           args.batch_time_cv, args.batch_time_tau_ms, args.early_close_share)
    latency = "mean" if args.percentile == "mean" else f"p{args.percentile}"
    spec = AutoscalingSpec(minReplicas=args.min_replicas, maxReplicas=args.max_replicas,
                           objective=Objective(latency, args.slo_ms), interval=args.interval_s,
                           coldStartSeconds=args.cold_start_s)
    trace = load_trace(args.trace)
    trace = stretch(trace, args.time_scale, args.rate_scale, np.random.default_rng(args.seed),
                    args.rate_jitter_s)
    trace = tile(trace, args.tile) if args.tile > 1 else trace
    config = SimConfig(ColdStart(args.cold_start_s, args.cold_start_jitter_s),
                       scrape_interval_s=args.scrape_interval_s, gpu_budget=args.gpu_budget,
                       seed=args.seed, balancer=args.balancer)
    try:
        spec = profiled_spec(service, replace(spec, capacityRpsPerReplica=args.capacity_rps),
                             config)
    except ValueError as error:
        raise ValueError(f"--slo-ms: {error}") from None
    return trace, spec, service, config


def run(args: argparse.Namespace) -> int:
    from sloscale.sim.compare import compare
    from sloscale.sim.plot import write_plot
    from sloscale.sim.report import format_table
    from sloscale.sim.traces import TraceError

    try:
        trace, spec, service, config = _inputs(args)
    except (TraceError, ValueError) as error:
        print(f"sloscale simulate: {error}", file=sys.stderr)
        return 2
    policies = {"all": list(POLICY_NAMES), "all-tuned": [*POLICY_NAMES, *TUNED_NAMES]}.get(
        args.policy, [args.policy])
    result = compare(trace, spec, service, config, policies, slo_profile=not args.no_profile)
    plot_path = Path(args.plot or f"{trace.name}-simulate.png")
    write_plot(plot_path, result.runs, result.oracle, args.slo_ms,
               95.0 if args.percentile == "mean" else float(args.percentile),
               f"{trace.name}: rate x{args.rate_scale:g}, time x{args.time_scale:g}, "
               f"SLO {spec.objective.latency} {args.slo_ms:g} ms, cold start "
               f"{args.cold_start_s:g} s")
    result.document["plot"] = str(plot_path)
    if args.json:
        print(json.dumps(result.document, indent=2))
    else:
        print(_summary(result.document, args.slo_ms))
        print(format_table(result.document))
        print(f"plot: {plot_path}")
    return 0
