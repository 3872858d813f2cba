"""`python -m hack.localcluster build|up|down|status|clean-cache`: the Makefile's entry point."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import build, keda, realnode
from .cluster import LocalCluster
from .errors import StepFailed
from .nodes import NodePool


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hack.localcluster")
    sub = parser.add_subparsers(dest="command", required=True)
    build_cmd = sub.add_parser(
        "build", help="build (or reuse) the pinned binaries and print their folder"
    )
    build_cmd.add_argument(
        "--keda", action="store_true", help="also KEDA's (printed on a line of its own)"
    )
    build_cmd.add_argument(
        "--real-node", action="store_true", help="also the kubelet (printed on a line of its own)"
    )
    up = sub.add_parser("up", help="start the control plane; prints `export KUBECONFIG=...`")
    up.add_argument("--dir", type=Path, required=True, help="state folder (kubeconfig, logs)")
    up.add_argument("--gpu-nodes", type=int, default=NodePool.gpu_nodes)
    up.add_argument("--gpus-per-node", type=int, default=NodePool.gpus_per_node)
    up.add_argument("--cpu-nodes", type=int, default=NodePool.cpu_nodes)
    up.add_argument(
        "--startup-delay-s",
        type=float,
        default=NodePool.startup_delay_s,
        help="simulated cold start: seconds from scheduling to Ready (per pod, the annotation "
        "pod-ready.stage.kwok.x-k8s.io/delay overrides it)",
    )
    up.add_argument("--startup-jitter-s", type=float, default=NodePool.startup_jitter_s)
    up.add_argument(
        "--keda",
        action="store_true",
        help=f"also start KEDA {keda.KEDA_VERSION} (operator and external metrics API server; "
        "built on first use, about 16 minutes on 2 cores); on a running cluster, adds it",
    )
    up.add_argument(
        "--real-node",
        action="store_true",
        help=f"also start a real node, {realnode.NODE_NAME} (containerd and a kubelet, pods on a "
        f"private bridge), labelled and tainted {realnode.LABEL}=true:NoSchedule so that only "
        "pods that select and tolerate it land there; on a running cluster, adds it",
    )
    for name in ("down", "status"):
        cmd = sub.add_parser(name, help=f"{name} the control plane started in --dir")
        cmd.add_argument("--dir", type=Path, required=True)
    sub.add_parser("clean-cache", help="delete the cached binaries of the current pins")
    bench = sub.add_parser("bench", help="time cluster start-up and a pod's way to Ready")
    bench.add_argument("--runs", type=int, default=3)
    return parser


def _pool(args: argparse.Namespace) -> NodePool:
    for name in ("gpu_nodes", "gpus_per_node", "cpu_nodes"):
        if getattr(args, name) < 0:
            raise StepFailed("read options", f"--{name.replace('_', '-')} must be >= 0", "fix it")
    if args.startup_delay_s < 0 or args.startup_jitter_s < 0:
        raise StepFailed("read options", "delays must be >= 0 seconds", "fix the flag")
    return NodePool(
        gpu_nodes=args.gpu_nodes,
        gpus_per_node=args.gpus_per_node,
        cpu_nodes=args.cpu_nodes,
        startup_delay_s=args.startup_delay_s,
        startup_jitter_s=args.startup_jitter_s,
    )


def _run(args: argparse.Namespace) -> int:
    if args.command == "build":
        print(build.ensure_install() / "bin")
        if args.real_node:
            print(build.ensure_install(build.KUBELET) / "bin")
        if args.keda:
            print(build.ensure_install(keda.TOOLSET) / "bin")
    elif args.command == "up":
        cluster = LocalCluster(args.dir, _pool(args), keda=args.keda, real_node=args.real_node).up()
        print(f"# kubectl and helm are in {cluster.bin_dir}", file=sys.stderr)
        print(cluster.export_line())
    elif args.command == "down":
        LocalCluster(args.dir).down()
    elif args.command == "status":
        cluster = LocalCluster(args.dir)
        running = cluster.is_running()
        print("running" if running else "stopped")
        return 0 if running else 3
    elif args.command == "bench":
        from .bench import run_bench

        run_bench(args.runs)
    elif args.command == "clean-cache":
        for toolset in (build.K8S, build.KUBELET, keda.TOOLSET):
            shutil.rmtree(build.install_dir(toolset), ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except StepFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
