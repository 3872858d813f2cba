"""Closed-loop load against a running Triton with tritonclient (HTTP or gRPC), one step at a time.

Each worker thread owns its client (tritonclient clients are not shared across threads) and
sends requests back to back; a step counts the requests that completed inside its window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sloscale_runtime.dtypes import from_config_name
from sloscale_runtime.errors import RuntimeInputError, TritonError

PROTOCOLS = ("http", "grpc")
Request = Callable[[], Any]


@dataclass(frozen=True)
class InputSpec:
    name: str
    wire_type: str  # FP32 ...
    shape: tuple[int, ...]  # with the batch dimension when the model batches
    numpy_type: str


def client_module(protocol: str) -> Any:
    if protocol not in PROTOCOLS:
        raise RuntimeInputError(f"--protocol: {protocol!r} not one of {PROTOCOLS}")
    if protocol == "http":
        import tritonclient.http as module
    else:
        import tritonclient.grpc as module
    return module


def model_config(protocol: str, url: str, model: str) -> dict[str, Any]:
    """The served model's config as Triton reports it (JSON form)."""
    module = client_module(protocol)
    client = module.InferenceServerClient(url)
    try:
        if protocol == "grpc":
            return dict(client.get_model_config(model, as_json=True)["config"])
        return dict(client.get_model_config(model))
    except Exception as error:
        raise TritonError(f"--url {url}: cannot read config of model {model!r}: {error}") from error
    finally:
        client.close()


def input_specs(config: dict[str, Any], batch: int = 1) -> list[InputSpec]:
    """Request shapes from a model config: fixed dims only (variable dims are not guessed)."""
    batched = int(config.get("max_batch_size", 0)) > 0
    specs = []
    for tensor in config["input"]:
        dims = tuple(int(d) for d in tensor["dims"])
        if any(d < 0 for d in dims):
            raise RuntimeInputError(f"input {tensor['name']}: variable dims {dims} not supported")
        dtype = from_config_name(tensor["data_type"])
        shape = (batch, *dims) if batched else dims
        specs.append(InputSpec(tensor["name"], dtype.wire_name, shape, dtype.numpy_name))
    return specs


def request_factory(
    protocol: str, url: str, model: str, specs: list[InputSpec], seed: int = 0
) -> Callable[[], Request]:
    """Returns a maker: each call opens a new client and returns its one-request callable."""
    module = client_module(protocol)
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s.shape).astype(s.numpy_type) for s in specs]

    def make() -> Request:
        client = module.InferenceServerClient(url)
        inputs = []
        for spec, array in zip(specs, arrays, strict=True):
            tensor = module.InferInput(spec.name, list(spec.shape), spec.wire_type)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        return lambda: client.infer(model, inputs)

    return make


@dataclass
class StepResult:
    latencies_ms: list[float]
    errors: int
    duration_s: float
    first_error: str | None = None
    completed_at: list[float] = field(default_factory=list)  # clock() at each counted finish


def run_step(
    make_request: Callable[[], Request],
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    clock: Callable[[], float] = time.perf_counter,
) -> StepResult:
    """`concurrency` workers send back to back for warmup_s + duration_s; count the window."""
    requests = [make_request() for _ in range(concurrency)]
    start = clock()
    window = (start + warmup_s, start + warmup_s + duration_s)
    result = StepResult([], 0, duration_s)
    lock = threading.Lock()

    def worker(send: Request) -> None:
        while clock() < window[1]:
            sent = clock()
            try:
                send()
            except Exception as error:  # counted and reported, the step goes on
                with lock:
                    result.errors += 1
                    result.first_error = result.first_error or repr(error)
                continue
            done = clock()
            if window[0] <= done <= window[1]:
                with lock:
                    result.latencies_ms.append((done - sent) * 1000.0)
                    result.completed_at.append(done)

    threads = [threading.Thread(target=worker, args=(r,), daemon=True) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result
