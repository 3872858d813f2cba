"""`sloscale run`: start the operator against the current KUBECONFIG."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sloscale.autoscale.promql import SCRAPE_S
from sloscale.render.values import DEFAULT_STORAGE_IMAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                        help="watch only this namespace (repeatable; glob patterns allowed); "
                             "default: all namespaces")
    parser.add_argument("--templates", type=Path, metavar="DIR",
                        help="directory of *.yaml.j2 child templates instead of the shipped ones")
    parser.add_argument("--templates-configmap", metavar="NS/NAME",
                        help="ConfigMap whose *.yaml.j2 keys are the child templates")
    parser.add_argument("--storage-initializer-image", default=DEFAULT_STORAGE_IMAGE,
                        help="image of the init container that fetches storageUri")
    parser.add_argument("--prometheus-url", metavar="URL",
                        help="Prometheus to read Triton metrics from; without it the "
                             "autoscaler does not run and spec.replicas rules")
    parser.add_argument("--metrics-address", default="", metavar="HOST:PORT",
                        help="serve the operator's own /metrics there (off by default; inside a "
                             "pod use 0.0.0.0:8080)")
    parser.add_argument("--autoscaler-tick-s", type=float, default=5.0, metavar="S",
                        help="how often the autoscaler loop wakes; each service still "
                             "decides on its own spec.autoscaling.interval")
    parser.add_argument("--scrape-interval-s", type=float, default=SCRAPE_S, metavar="S",
                        help="how often Prometheus scrapes the pods (the rendered ServiceMonitor: "
                             "15); the step of the peak rate the slo policy reads")
    parser.add_argument("--health-address", default="", metavar="HOST:PORT",
                        help="serve kopf's liveness probe at http://HOST:PORT/healthz (off by "
                             "default); it answers only while the operator's event loop runs")
    parser.add_argument("--peering", metavar="NAME",
                        help="multi-replica mode: kopf peering object NAME (ClusterKopfPeering, "
                             "or KopfPeering in each watched namespace); the live replica with "
                             "the highest priority works, the others stand by")
    parser.add_argument("--priority", type=int, metavar="N",
                        help="this replica's peering priority (default: random, so that "
                             "replicas of one Deployment never tie)")
    parser.add_argument("--shards", type=int, default=0, metavar="N",
                        help="sharded mode: N shards of the InferenceServices (a stable hash of "
                             "namespace/name), held through Leases; run several processes with "
                             "the same N and each works on its fair share (not with --peering)")
    parser.add_argument("--shard-lease-namespace", metavar="NS",
                        default=os.environ.get("POD_NAMESPACE", "default"),
                        help="where the shard Leases live (default: $POD_NAMESPACE, else "
                             "'default')")
    parser.add_argument("--shard-lease-s", type=float, default=15.0, metavar="S",
                        help="shard lease duration: a dead process's shards are taken over "
                             "within it and one renewal round (a fifth of it)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    import asyncio

    import kopf

    from sloscale.controller import autoscaling, handlers  # noqa: F401 - registers handlers
    from sloscale.controller.reconcile import Settings
    from sloscale.controller.templates import load_configured_templates
    from sloscale.kube.client import USER_AGENT, Kube
    from sloscale.render.templates import TemplateError

    if args.autoscaler_tick_s <= 0 or args.scrape_interval_s <= 0:
        print("sloscale run: --autoscaler-tick-s and --scrape-interval-s must be > 0",
              file=sys.stderr)
        return 2
    if args.shards < 0 or args.shard_lease_s < 5 or (args.shards and args.peering):
        print("sloscale run: --shards must be >= 0, --shard-lease-s >= 5, and --shards and "
              "--peering exclude each other (shards are their own multi-replica mode)",
              file=sys.stderr)
        return 2
    kube: Kube | None = None  # a broken template set is refused before any cluster is touched

    def read_configmap(namespace: str, name: str) -> dict[str, str]:
        nonlocal kube
        kube = kube or Kube()
        data = kube.config_map(namespace, name)
        if data is None:
            raise TemplateError(f"--templates-configmap: ConfigMap {namespace}/{name} not found")
        return data

    try:
        templates = load_configured_templates(args.templates, args.templates_configmap,
                                              read_configmap)
    except TemplateError as error:
        print(f"sloscale run: {error}", file=sys.stderr)
        return 2
    kube = kube or Kube()
    kopf.configure(verbose=args.verbose)
    namespaces = list(args.namespace)
    options, active = kopf_options(args, kube, namespaces)
    # Named in the API server's audit log: which process wrote what.
    kube.api_client.user_agent = f"{USER_AGENT} ({options['identity']})"
    # What every handler reads from kopf's memo: the adapter, the settings, the autoscaler's.
    memo = kopf.Memo(
        kube=kube,
        settings=Settings(templates, args.storage_initializer_image),
        autoscaler_options=autoscaling.AutoscalerOptions(
            prometheus_url=args.prometheus_url,
            metrics_address=args.metrics_address or None,
            tick_s=args.autoscaler_tick_s,
            scrape_interval_s=args.scrape_interval_s,
            namespaces=namespaces or None,
            active=active,
        ),
        shards=shard_leases(args, kube, options["identity"]),
    )
    asyncio.run(kopf.operator(clusterwide=not namespaces, namespaces=namespaces, memo=memo,
                              **options))
    return 0


def shard_leases(args: argparse.Namespace, kube: Any, identity: str) -> Any:
    if not args.shards:
        return None
    from kubernetes import client

    from sloscale.controller.shards import ShardLeases

    print(f"sloscale run: {args.shards} shards, Leases in {args.shard_lease_namespace}, as "
          f"{identity}", file=sys.stderr)
    return ShardLeases(client.CoordinationV1Api(kube.api_client), args.shard_lease_namespace,
                       identity, args.shards, args.shard_lease_s)


def kopf_options(args: argparse.Namespace, kube: Any,
                 namespaces: list[str]) -> tuple[dict[str, Any], Callable[[], bool] | None]:
    """Standalone, or peering under a priority (with the autoscaler's gate); liveness."""
    from sloscale.controller.peering import PeeringGate, own_identity, random_priority

    identity = own_identity()
    options: dict[str, Any] = {"identity": identity, "standalone": True}
    active = None
    if args.peering:
        priority = random_priority() if args.priority is None else args.priority
        options.update(standalone=False, peering_name=args.peering, priority=priority)
        gate = PeeringGate(kube.custom, args.peering, identity,
                           namespaces[0] if namespaces else None)
        active = gate.active
        print(f"sloscale run: peering {args.peering} as {identity}, priority {priority}",
              file=sys.stderr)
    if args.health_address:
        options["liveness_endpoint"] = f"http://{args.health_address}/healthz"
    return options, active
