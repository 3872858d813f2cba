"""The batches Triton ran, one by one, from its per-request traces (`level=TIMESTAMPS`).

Triton's statistics give only the mean compute time per batch size; how much one batch's time
spreads around that mean shows only in its traces. With `--trace-config triton,file=<f>`, every
traced request writes COMPUTE_START and COMPUTE_END; the requests of one batch share both
(the backend runs them as one execution), so a batch is the requests sharing a COMPUTE_START
and its compute time is COMPUTE_END - COMPUTE_START.

Triton starts with tracing off (`trace_config_args`); `traced` switches it on for one model
while a probe runs and reads back what was written (one file per trace, so nothing waits in
the server's memory for a shutdown).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sloscale_runtime.errors import TritonError


@dataclass(frozen=True)
class TracedBatch:
    start_ns: int  # COMPUTE_START, Triton's steady clock
    size: int  # requests in the batch (each of one item, as the load generators send them)
    compute_ms: float  # COMPUTE_END - COMPUTE_START


def trace_config_args(trace_file: Path) -> list[str]:
    """tritonserver flags for a trace file with tracing off until `traced` switches it on."""
    return [f"--trace-config=triton,file={trace_file}", "--trace-config=level=OFF",
            "--trace-config=rate=1", "--trace-config=count=-1",
            "--trace-config=log_frequency=1"]


def batches(documents: list[list[dict[str, Any]]]) -> list[TracedBatch]:
    """The batches in trace documents (each a JSON list of entries), ordered by start; a
    request without both compute timestamps (a failed one) is left out."""
    stamps: dict[tuple[int, int], dict[str, int]] = {}
    for number, document in enumerate(documents):
        for entry in document:
            for stamp in entry.get("timestamps", []):
                # Trace ids restart per trace setting: key them by their document too.
                stamps.setdefault((number, int(entry["id"])), {})[stamp["name"]] = int(stamp["ns"])
    by_start: dict[int, tuple[int, int]] = {}
    for request in stamps.values():
        start, end = request.get("COMPUTE_START"), request.get("COMPUTE_END")
        if start is None or end is None:
            continue
        size, latest_end = by_start.get(start, (0, end))
        by_start[start] = (size + 1, max(latest_end, end))
    return [TracedBatch(start, size, (end - start) / 1e6)
            for start, (size, end) in sorted(by_start.items())]


def read_documents(paths: list[Path]) -> list[list[dict[str, Any]]]:
    """The trace files' documents; one still being written when read is left out (its batch
    then counts a request less, which a spread over hundreds of batches does not notice)."""
    documents = []
    for path in paths:
        try:
            documents.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return documents


def _setting(http_url: str, model: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET (or, with a body, POST) the model's trace setting."""
    url = f"http://{http_url}/v2/models/{model}/trace/setting"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))
    except OSError as error:
        raise TritonError(f"{url}: {error}") from error


@contextmanager
def traced(http_url: str, model: str, requests: int,
           wait_s: float = 10.0) -> Iterator[list[TracedBatch]]:
    """Trace every request to `model` inside the block; the yielded list holds its batches
    once the block ends. `requests` is how many the block sends, so that the traces of the
    last ones (written after their responses) are waited for. Empty if Triton has no trace
    file."""
    trace_file = Path(str(_setting(http_url, model).get("trace_file") or ""))
    found: list[TracedBatch] = []
    if not trace_file.name:
        yield found
        return
    written = set(trace_file.parent.glob(f"{trace_file.name}.*"))
    _setting(http_url, model, {"trace_level": ["TIMESTAMPS"], "trace_rate": "1",
                               "trace_count": "-1", "log_frequency": "1"})
    try:
        yield found
    finally:
        _setting(http_url, model, {"trace_level": ["OFF"]})
    deadline = time.monotonic() + wait_s
    while True:
        new = sorted(set(trace_file.parent.glob(f"{trace_file.name}.*")) - written)
        if len(new) >= requests or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    found.extend(batches(read_documents(new)))
