"""`sloscale runtime build|serve|profile`: argument parsing and wiring, heavy imports inside."""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sloscale_runtime.errors import BuildError, RuntimeInputError, TritonError

if TYPE_CHECKING:
    from sloscale_runtime.triton import Ports


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="runtime_command", required=True)
    _add_build(sub.add_parser("build", help="torch model -> Triton model repository"))
    _add_serve(sub.add_parser("serve", help="run a local Triton on a model repository"))
    _add_profile(sub.add_parser("profile", help="measure capacity within a latency target"))


def _add_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="FILE.py:FACTORY; FACTORY() returns nn.Module")
    p.add_argument("--input-shape", required=True, help="example input shape, e.g. 1,3,32,32")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--format", default="python",
                   choices=["python", "python-onnx", "torchscript", "onnx"],
                   help="python: TorchScript run by torch in Triton's python backend; "
                        "python-onnx: ONNX run by onnxruntime there (no torch in the image)")
    p.add_argument("--name", required=True, help="model name in the repository")
    p.add_argument("--out", required=True, type=Path, help="model repository folder")
    p.add_argument("--max-batch-size", type=int, default=16, help="0: model does not batch")
    p.add_argument("--no-dynamic-batching", action="store_true")
    p.add_argument("--preferred-batch-sizes", default="", help="e.g. 4,8 (default: none)")
    p.add_argument("--max-queue-delay-us", type=int, default=100)
    p.add_argument("--gpu", action="store_true", help="instance_group KIND_GPU")
    p.add_argument("--instances", type=int, default=1, help="instance_group count")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="python formats: torch (onnxruntime) threads per instance")


def _add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repository", required=True, type=Path)
    for name in ("http", "grpc", "metrics"):
        p.add_argument(f"--{name}-port", type=int, default=0, help="0: a free port")


def _add_profile(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="HOST:PORT of Triton's HTTP (or gRPC) endpoint")
    p.add_argument("--model", required=True)
    p.add_argument("--slo-ms", type=float, required=True)
    p.add_argument("--percentile", type=int, default=95, choices=[50, 95, 99])
    p.add_argument("--out", type=Path, required=True, help="capacity profile JSON to write")
    p.add_argument("--plot", type=Path, help="PNG (default: --out with .png)")
    p.add_argument("--protocol", default="http", choices=["http", "grpc"])
    p.add_argument("--levels", default="1,2,4,8,16,32", help="concurrency levels to sweep")
    p.add_argument("--step-s", type=float, default=5.0, help="seconds measured per level")
    p.add_argument("--gpu", action="store_true", help="record the hardware as GPU")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    commands = {"build": _build, "serve": _serve, "profile": _profile}
    try:
        return commands[args.runtime_command](args)
    except RuntimeInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BuildError, TritonError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def int_list(text: str, option: str) -> tuple[int, ...]:
    from sloscale_runtime.loader import positive_ints

    return positive_ints(text, option)


def _build(args: argparse.Namespace) -> int:
    from sloscale_runtime.builder import BuildOptions, build
    from sloscale_runtime.loader import parse_shape

    options = BuildOptions(
        model_ref=args.model,
        input_shape=parse_shape(args.input_shape),
        name=args.name,
        out_dir=args.out,
        dtype=args.dtype,
        format=args.format,
        max_batch_size=args.max_batch_size,
        dynamic_batching=not args.no_dynamic_batching,
        preferred_batch_sizes=(
            int_list(args.preferred_batch_sizes, "--preferred-batch-sizes")
            if args.preferred_batch_sizes else ()
        ),
        max_queue_delay_us=args.max_queue_delay_us,
        gpu=args.gpu,
        instance_count=args.instances,
        torch_threads=args.torch_threads,
    )
    print(f"built {build(options)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import signal

    from sloscale_runtime.triton import Ports, free_port

    ports = Ports(*(getattr(args, f"{n}_port") or free_port() for n in ("http", "grpc", "metrics")))
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _serve_until(args.repository, ports, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_until(repository: Path, ports: Ports, stop: threading.Event) -> int:
    from sloscale_runtime.triton import TritonServer

    with tempfile.TemporaryDirectory(prefix="sloscale-triton-") as workdir:
        server = TritonServer(repository, Path(workdir), ports)
        with server:
            print(f"Triton ready (log: {server.log_path})\n"
                  f"  http     http://{ports.http_url}\n  grpc     {ports.grpc_url}\n"
                  f"  metrics  {ports.metrics_url}\nCtrl-C stops it.", flush=True)
            while not stop.is_set() and server.running():
                stop.wait(0.5)
            exited = not server.running()
        if exited and not stop.is_set():
            raise TritonError(f"tritonserver exited on its own:\n{server.log_tail()}")
    print("Triton stopped.")
    return 0


def _profile(args: argparse.Namespace) -> int:
    import datetime as dt

    from sloscale_runtime import capacity, profiler
    from sloscale_runtime.plot import plot_profiles

    capacity.check_objective(args.percentile, args.slo_ms)
    config, points = profiler.sweep(
        args.protocol, args.url, args.model, args.percentile, args.slo_ms,
        levels=int_list(args.levels, "--levels"), step_s=args.step_s,
        progress=not args.no_progress,
    )
    profile = profiler.make_profile(
        config, points, args.protocol, args.percentile, args.slo_ms, args.step_s,
        profiler.hardware_description(args.gpu), dt.datetime.now(dt.UTC),
    )
    write_atomically(args.out, capacity.to_json(profile))
    plot_path = plot_profiles([profile], args.plot or args.out.with_suffix(".png"))
    print(f"max_rps_at_target (p{args.percentile} <= {args.slo_ms:g} ms): "
          f"{profile.max_rps_at_target}\nwrote {args.out} and {plot_path}")
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)
