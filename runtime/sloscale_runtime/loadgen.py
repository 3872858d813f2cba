"""Load against a running Triton with tritonclient: closed-loop steps and open-loop schedules.

Closed loop (run_step): each worker thread owns its client (tritonclient clients are not shared
across threads) and sends requests back to back; a step counts the requests that completed
inside its window. Open loop (run_open_loop): one sender fires each request at its scheduled
time whatever is still outstanding (gRPC's asynchronous calls), as independent users would.
"""

from __future__ import annotations

import functools
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


def infer(protocol: str, url: str, model: str, batch: np.ndarray,
          input_name: str = "INPUT__0", output_name: str = "OUTPUT__0") -> np.ndarray:
    """One FP32 request, its output: the answer the tests compare with eager torch."""
    module = client_module(protocol)
    client = module.InferenceServerClient(url)
    try:
        tensor = module.InferInput(input_name, list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)
        return np.asarray(client.infer(model, [tensor]).as_numpy(output_name))
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


# Open loop: send(on_done) starts one request and returns at once; on_done(error) runs when the
# response (or the error) comes back, on another thread.
AsyncSend = Callable[[Callable[[BaseException | None], None]], None]


def async_request_factory(
    url: str, model: str, specs: list[InputSpec], seed: int = 0, timeout_s: float = 60.0
) -> tuple[AsyncSend, Callable[[], None]]:
    """One gRPC client whose asynchronous calls send the same random input; returns (send,
    close). gRPC, because tritonclient's HTTP client runs its asynchronous calls on gevent."""
    module = client_module("grpc")
    rng = np.random.default_rng(seed)
    client = module.InferenceServerClient(url)
    inputs = []
    for spec in specs:
        tensor = module.InferInput(spec.name, list(spec.shape), spec.wire_type)
        tensor.set_data_from_numpy(rng.standard_normal(spec.shape).astype(spec.numpy_type))
        inputs.append(tensor)

    def send(on_done: Callable[[BaseException | None], None]) -> None:
        # tritonclient calls back with keywords (result=, error=) on a gRPC thread, where an
        # exception would vanish: the names must match.
        client.async_infer(model, inputs, lambda result, error: on_done(error),
                           client_timeout=timeout_s)

    return send, client.close


def poisson_arrivals(rate_rps: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (seconds from 0, sorted) of a Poisson process over [0, duration_s)."""
    if rate_rps <= 0 or duration_s <= 0:
        raise ValueError("rate_rps and duration_s must be positive")
    gaps = rng.exponential(1.0 / rate_rps, int(rate_rps * duration_s * 1.5) + 20)
    arrivals = np.cumsum(gaps)
    return arrivals[arrivals < duration_s]


@dataclass
class OpenLoopResult:
    sent_s: np.ndarray  # when each request was really sent, seconds from the start
    latency_ms: np.ndarray  # per request; inf where it failed or never came back
    errors: int  # failed or unanswered
    first_error: str | None
    max_late_ms: float  # how far the sender fell behind its schedule at worst


@dataclass
class _Outstanding:
    count: int
    errors: int = 0
    first_error: str | None = None


def run_open_loop(
    send: AsyncSend,
    arrivals_s: np.ndarray,
    drain_timeout_s: float = 30.0,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> OpenLoopResult:
    """Send one request at each scheduled time (seconds from now), then wait for the last.

    The real send times are recorded beside the schedule: a sender that falls behind (a busy
    machine) shows it in max_late_ms, and a replay can use the times the server really saw."""
    sent = np.full(len(arrivals_s), np.nan)
    done = np.full(len(arrivals_s), np.inf)
    outstanding = _Outstanding(len(arrivals_s))
    lock = threading.Lock()
    finished = threading.Event()
    if outstanding.count == 0:
        finished.set()

    def on_done(index: int, error: BaseException | None) -> None:
        now = clock()
        with lock:
            if error is None:
                done[index] = now
            else:
                outstanding.errors += 1
                outstanding.first_error = outstanding.first_error or repr(error)
            outstanding.count -= 1
            if outstanding.count == 0:
                finished.set()

    start = clock()
    for index, offset in enumerate(arrivals_s.tolist()):
        wait = start + offset - clock()
        if wait > 0:
            sleep(wait)
        sent[index] = clock()
        try:
            send(functools.partial(on_done, index))
        except Exception as error:  # a refused send is counted like a failed request
            on_done(index, error)
    finished.wait(drain_timeout_s)
    with lock:
        latency_ms = (done - sent) * 1000.0
        unanswered = outstanding.count
        errors = outstanding.errors + unanswered
        first_error = outstanding.first_error or (
            f"{unanswered} requests unanswered after {drain_timeout_s:g} s" if unanswered else None)
    late_ms = (sent - start - arrivals_s) * 1000.0
    return OpenLoopResult(sent - start, latency_ms, errors, first_error,
                          float(late_ms.max()) if len(late_ms) else 0.0)
