"""Load generator pieces that need no server: request shapes, the step window, the CLI wiring."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sloscale.cli import main
from sloscale_runtime import loadgen
from sloscale_runtime.cli import int_list
from sloscale_runtime.errors import RuntimeInputError

IMAGE = {"name": "INPUT__0", "data_type": "TYPE_FP32", "dims": ["3", "32", "32"]}


@pytest.mark.parametrize(
    ("config", "batch", "expected"),
    [
        ({"max_batch_size": 16, "input": [IMAGE]}, 1,
         [loadgen.InputSpec("INPUT__0", "FP32", (1, 3, 32, 32), "float32")]),
        ({"max_batch_size": 16, "input": [IMAGE]}, 4,
         [loadgen.InputSpec("INPUT__0", "FP32", (4, 3, 32, 32), "float32")]),
        ({"input": [{"name": "ids", "data_type": "TYPE_INT64", "dims": [7]}]}, 1,
         [loadgen.InputSpec("ids", "INT64", (7,), "int64")]),
    ],
)
def test_input_specs(config: dict[str, object], batch: int,
                     expected: list[loadgen.InputSpec]) -> None:
    assert loadgen.input_specs(config, batch) == expected


@pytest.mark.parametrize(
    ("tensor", "message"),
    [({"name": "x", "data_type": "TYPE_FP32", "dims": [-1]}, "variable dims"),
     ({"name": "x", "data_type": "TYPE_STRING", "dims": [1]}, "TYPE_STRING")],
)
def test_input_specs_reject(tensor: dict[str, object], message: str) -> None:
    with pytest.raises(RuntimeInputError, match=message):
        loadgen.input_specs({"input": [tensor]})


def test_unknown_protocol() -> None:
    with pytest.raises(RuntimeInputError, match="--protocol"):
        loadgen.client_module("udp")


def test_step_counts_only_the_window_and_errors() -> None:
    ticks = itertools.count()
    sent: list[int] = []

    def make() -> loadgen.Request:
        def send() -> None:
            sent.append(1)
            if len(sent) % 5 == 0:
                raise ConnectionError("reset")

        return send

    # A fake clock that advances 1 "second" per reading: each request reads it twice
    # (sent, done) so it takes 1 s, and the loop condition reads it once more.
    result = loadgen.run_step(make, concurrency=1, duration_s=20, warmup_s=5,
                              clock=lambda: float(next(ticks)))
    assert result.errors == len(sent) // 5
    assert result.first_error == "ConnectionError('reset')"
    assert result.latencies_ms and all(ms == 1000.0 for ms in result.latencies_ms)
    assert len(result.latencies_ms) < len(sent) - result.errors  # warm-up requests left out


def test_step_runs_workers_concurrently() -> None:
    def make() -> loadgen.Request:
        return lambda: time.sleep(0.02)

    started = time.perf_counter()
    result = loadgen.run_step(make, concurrency=4, duration_s=0.3, warmup_s=0.0)
    assert time.perf_counter() - started < 1.0
    # 4 workers x 0.3 s / 0.02 s per request, give or take scheduling
    assert 30 <= len(result.latencies_ms) <= 64


@pytest.mark.parametrize(("text", "expected"), [("1,2,4", (1, 2, 4)), ("8", (8,))])
def test_int_list(text: str, expected: tuple[int, ...]) -> None:
    assert int_list(text, "--levels") == expected


@pytest.mark.parametrize("text", ["", "1,a", "0,2", "-4"])
def test_int_list_rejects(text: str) -> None:
    with pytest.raises(RuntimeInputError, match="--levels"):
        int_list(text, "--levels")


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["build", "--model", "nowhere.py:f", "--input-shape", "1,4", "--name", "m"], 2,
         "file not found"),
        (["build", "--model", "x.py:f", "--input-shape", "1,a", "--name", "m"], 2,
         "--input-shape"),
        (["profile", "--url", "127.0.0.1:1", "--model", "m", "--slo-ms", "0"], 2, "--slo-ms"),
        (["serve", "--repository", "does/not/exist"], 1, "not a folder"),
    ],
)
def test_cli_errors_name_the_cause(argv: list[str], code: int, message: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--out", str(tmp_path / "out")] if argv[0] in ("build", "profile") else []
    assert main(["runtime", *argv, *extra]) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_poisson_arrivals_rate_and_bounds() -> None:
    arrivals = loadgen.poisson_arrivals(200.0, 50.0, np.random.default_rng(0))
    assert np.all(np.diff(arrivals) > 0) and arrivals[0] >= 0 and arrivals[-1] < 50.0
    assert len(arrivals) == pytest.approx(10_000, rel=0.05)
    with pytest.raises(ValueError, match="positive"):
        loadgen.poisson_arrivals(0.0, 1.0, np.random.default_rng(0))


class FakeTime:
    """A clock that only moves when the sender sleeps, or when a response takes time."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_open_loop_sends_on_schedule_without_waiting_for_responses() -> None:
    fake = FakeTime()
    pending: list[Callable[[BaseException | None], None]] = []

    def send(on_done: Callable[[BaseException | None], None]) -> None:
        pending.append(on_done)
        if len(pending) == 3:  # the server answers all three together, 50 ms after the last
            fake.now += 0.05
            for index, callback in enumerate(pending):
                callback(ConnectionError("reset") if index == 1 else None)

    result = loadgen.run_open_loop(send, np.array([0.0, 0.01, 0.03]), clock=fake.clock,
                                   sleep=fake.sleep)
    np.testing.assert_allclose(result.sent_s, [0.0, 0.01, 0.03])
    np.testing.assert_allclose(result.latency_ms, [80.0, np.inf, 50.0])
    assert (result.errors, result.first_error) == (1, "ConnectionError('reset')")
    assert result.max_late_ms == pytest.approx(0.0, abs=1e-6)


def test_open_loop_records_a_late_sender_and_unanswered_requests() -> None:
    fake = FakeTime()

    def slow_send(on_done: Callable[[BaseException | None], None]) -> None:
        fake.now += 0.02  # each send blocks 20 ms: the second is sent 10 ms late
        if fake.now < 100.03:
            on_done(None)

    result = loadgen.run_open_loop(slow_send, np.array([0.0, 0.01]), drain_timeout_s=0.01,
                                   clock=fake.clock, sleep=fake.sleep)
    np.testing.assert_allclose(result.sent_s, [0.0, 0.02])
    assert result.max_late_ms == pytest.approx(10.0)
    assert result.errors == 1 and result.first_error == "1 requests unanswered after 0.01 s"
    assert np.isinf(result.latency_ms[1])


def test_open_loop_counts_a_refused_send() -> None:
    def refuse(on_done: Callable[[BaseException | None], None]) -> None:
        raise OSError("no route")

    result = loadgen.run_open_loop(refuse, np.array([0.0]), drain_timeout_s=1.0)
    assert result.errors == 1 and result.first_error == "OSError('no route')"
