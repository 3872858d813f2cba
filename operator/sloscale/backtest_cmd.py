"""`sloscale backtest`: what the autoscaler would have done over a real Prometheus range."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", required=True, metavar="URL")
    parser.add_argument("--inferenceservice", required=True, metavar="NS/NAME")
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="T1",
        help="ISO time (2026-11-22T06:00:00Z) or Unix seconds",
    )
    parser.add_argument("--to", dest="end", required=True, metavar="T2")
    parser.add_argument(
        "--spec",
        type=Path,
        metavar="FILE",
        help="the InferenceService manifest (default: read it from the cluster)",
    )
    parser.add_argument("--policy", help="replay another policy than the service's (slo, hpa, ...)")
    parser.add_argument("--png", type=Path, default=Path("backtest.png"))


def parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except ValueError:
        raise SystemExit(
            f"sloscale backtest: bad time {text!r}: use ISO 8601 or Unix seconds"
        ) from None


def _manifest(args: argparse.Namespace, namespace: str, name: str) -> dict:
    import yaml

    if args.spec is not None:
        for doc in yaml.safe_load_all(args.spec.read_text()):
            if doc and doc.get("kind") == "InferenceService":
                return dict(doc)
        raise SystemExit(f"sloscale backtest: no InferenceService in {args.spec}")
    from sloscale.kube.client import Kube

    found = Kube().get_inferenceservice(namespace, name)
    if found is None:
        raise SystemExit(f"sloscale backtest: inferenceservice {namespace}/{name} not found")
    return found


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from sloscale.autoscale.backtest import ACTUAL_PODS_QUERY, replay
    from sloscale.autoscale.backtest_report import plot, table
    from sloscale.autoscale.config import parse_autoscaling, policy_rate_window_s
    from sloscale.autoscale.metrics import PrometheusSource
    from sloscale.autoscale.promql import ServiceKey

    namespace, _, name = args.inferenceservice.partition("/")
    if not namespace or not name:
        print("sloscale backtest: --inferenceservice must be NAMESPACE/NAME", file=sys.stderr)
        return 2
    start, end = parse_time(args.start), parse_time(args.end)
    if end <= start:
        print("sloscale backtest: --to must be after --from", file=sys.stderr)
        return 2
    try:
        spec = parse_autoscaling((_manifest(args, namespace, name).get("spec") or {})
                                 .get("autoscaling"))
    except ValueError as err:
        print(f"sloscale backtest: {err}", file=sys.stderr)
        return 2
    if args.policy:
        spec = dataclasses.replace(spec, policy=args.policy)
    source = PrometheusSource(args.prometheus, window_s=policy_rate_window_s(spec))
    try:
        matrices = source.fetch_range(start, end, spec.interval, {"actual_pods": ACTUAL_PODS_QUERY})
    except Exception as err:  # noqa: BLE001 - connection and query errors alike
        print(f"sloscale backtest: Prometheus at {args.prometheus}: {err}", file=sys.stderr)
        return 1
    rows = replay(matrices, ServiceKey(namespace, name), spec, 3 * spec.interval)
    if not rows:
        print(
            f"sloscale backtest: Prometheus has no samples for {namespace}/{name} in that range",
            file=sys.stderr,
        )
        return 1
    print(table(rows))
    plot(rows, spec.objective.targetMs, args.png)
    print(f"plot: {args.png}")
    return 0
