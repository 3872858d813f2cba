"""One emulated Triton pod, driven in real time, against the simulator's per-pod model.

Story: the closed loop (emulator) and the simulator must describe the same pod, or neither
proves anything about a policy. At three loads, the emulator's runner (its 0.25 s step, its
thread, the wall clock) replays Poisson arrivals to one Ready pod; the p50 and p95 of what it
served must match the simulator's batcher on the same arrivals, and the p95 its /metrics page
reports must be the p95 of what it served within its summary window.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import replace

import numpy as np
import pytest

from hack.emulator.runner import EmulatorRunner, ReplayTarget
from hack.emulator.server import EmulatorServer, Registry
from hack.emulator.service import EmulatedService
from sloscale.autoscale.policies.base import AutoscalingSpec, Objective
from sloscale.sim.engine import SimConfig, simulate
from sloscale.sim.profile import FixedReplicas
from sloscale.sim.service import ServiceModel

pytestmark = pytest.mark.integration
MODEL = ServiceModel()  # 40 ms + 20 ms/item, batches of 8 after at most 5 ms
# The ideal batcher, and next batches closed two thirds into the running one: rules without a
# random draw, so the emulated and simulated pods run the same batches. Early closes drawn per
# batch (early_close_share) draw from each side's own generator; tests/unit/test_emulator.py
# holds the emulator to the simulator's rule for them.
CLOSE_AT_FRACTIONS = (1.0, 0.65)
SECONDS = 20.0
SUMMARY_WINDOW_S = 30.0
LOADS_RPS = (5.0, 15.0, 22.0)  # light, mid, near the 250 ms capacity (about 24 rps)


def _pod(name: str) -> dict:
    return {
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def _simulated_ms(arrivals_s: np.ndarray, model: ServiceModel) -> np.ndarray:
    spec = AutoscalingSpec(minReplicas=1, maxReplicas=1, objective=Objective("p95", 250.0))
    run = simulate(arrivals_s, FixedReplicas(1), spec, model, SimConfig(drain_s=5.0))
    return run.latency_ms


def _reported_p95_ms(address: str, service: str) -> float:
    url = f"http://{address}/metrics/default/{service}-0"
    with urllib.request.urlopen(url, timeout=5) as response:
        page = response.read().decode()
    for line in page.splitlines():
        if line.startswith("nv_inference_request_summary_us{") and 'quantile="0.95"' in line:
            return float(line.rsplit(" ", 1)[1]) / 1000.0
    raise AssertionError(f"no p95 summary on {url}")


@pytest.mark.parametrize("close_at_fraction", CLOSE_AT_FRACTIONS)
def test_one_emulated_pod_matches_the_simulators_pod_at_three_loads(close_at_fraction: float
                                                                    ) -> None:
    model = replace(MODEL, close_at_fraction=close_at_fraction)
    registry = Registry()
    server = EmulatorServer(registry).start()
    runners = {}
    try:
        for index, rate in enumerate(LOADS_RPS):
            rng = np.random.default_rng(index)
            arrivals = np.cumsum(rng.exponential(1.0 / rate, int(rate * SECONDS * 1.5)))
            name = f"load{index}"
            pod = _pod(f"{name}-0")
            runners[rate] = EmulatorRunner(
                ReplayTarget("default", name, "m"),
                EmulatedService(model, seed=index, summary_window_s=SUMMARY_WINDOW_S),
                arrivals[arrivals < SECONDS],
                registry,
                lambda pod=pod: [pod],
            )
        for runner in runners.values():  # the three pods share the CPU, as in the demo
            runner.start()
        while not all(runner.elapsed_s() > SECONDS + 1.0 for runner in runners.values()):
            time.sleep(0.5)
        for rate, runner in runners.items():
            with runner.lock:
                ledger = runner.service.ledger
                served = np.asarray(ledger.latency_ms)
                finished = np.asarray(ledger.finished_at_s)
                now = runner.elapsed_s()
                reported = _reported_p95_ms(server.address, runner.target.service)
            assert ledger.rejected == 0 and len(served) == len(runner.arrivals_s)
            simulated = _simulated_ms(runner.arrivals_s, model)
            for q in (50, 95):
                emulated_q, simulated_q = np.percentile(served, q), np.percentile(simulated, q)
                assert emulated_q == pytest.approx(simulated_q, rel=0.02, abs=1.0), (
                    f"{rate} rps: p{q} emulated {emulated_q:.1f} ms, simulated {simulated_q:.1f}"
                )
            recent = served[finished >= now - SUMMARY_WINDOW_S]
            assert reported == pytest.approx(np.percentile(recent, 95), rel=0.05, abs=2.0)
    finally:
        for runner in runners.values():
            runner.stop()
        server.stop()
