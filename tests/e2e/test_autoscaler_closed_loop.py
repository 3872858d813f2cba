"""The autoscaler in the running operator, closed loop on the local control plane.

User story: an SRE applies an InferenceService with a p95 objective; sloscale reads the
Triton metrics of its Ready pods from a real Prometheus, scales up when load steps up, holds
the objective once new pods are Ready, scales down stepwise when load drops, holds when
Prometheus is gone, stops at what the GPUs allow, and never fights the user's manifest.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import numpy as np
import pytest

from hack.emulator.runner import EmulatorRunner
from hack.localcluster.cluster import LocalCluster
from sloscale.api import SERVICE_LABEL
from tests.e2e.autoscale_stack import (
    CAPACITY_RPS,
    SLO_MS,
    Stack,
    isvc,
    outage_holds_replicas_and_recovers,
    running_stack,
)
from tests.e2e.operator_process import get_json, wait_for

pytestmark = pytest.mark.e2e
NS = "e2e-autoscale"


@pytest.fixture(scope="module")
def stack(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(cluster, tmp_path_factory.mktemp("autoscale"), NS) as running:
        yield running


def p95_between(runner: EmulatorRunner, start_s: float, end_s: float) -> float:
    with runner.lock:
        done = np.asarray(runner.service.ledger.finished_at_s)
        latency = np.asarray(runner.service.ledger.latency_ms)
    inside = latency[(done >= start_s) & (done < end_s)]
    assert len(inside) > 50, f"too few requests finished in [{start_s}, {end_s})"
    return float(np.percentile(inside, 95))


def last_decisions(stack: Stack, name: str, last: int = 6) -> str:
    """The service's last decisions, for a failure's message (the why of each step)."""
    obj = get_json(stack.cluster, "-n", NS, "inferenceservice", name) or {}
    found = ((obj.get("status") or {}).get("autoscaling") or {}).get("decisions") or []
    return json.dumps(found[-last:])


def test_load_step_scales_up_holds_the_objective_then_scales_down_stepwise(
    stack: Stack,
) -> None:
    # The load starts at its step. An opening at a low rate teaches the policy, rightly from
    # what it sees, that demand at ~5-10 rps once rose twelvefold within a horizon (levels
    # average a horizon of rates, some from windows still filling), and it keeps headroom for
    # that at the low phase's 5 rps (3 or 4 pods): by design, but not the step-down this test
    # is about. An 8 s opening at 10 rps still did so in one CI run of two on 2026-12-03.
    runner = stack.replay("step", [(110, 120.0), (100, 5.0)])
    try:
        needed = math.ceil(120.0 / CAPACITY_RPS)
        try:
            wait_for(lambda: stack.replicas("step") >= needed, 60, f">= {needed} replicas")
        except AssertionError as error:
            raise AssertionError(f"{error}; {last_decisions(stack, 'step')}") from None
        wait_for(lambda: runner.elapsed_s() > 100, 120, "the end of the high phase")
        # After the cold start the objective holds again (ground truth from the emulator).
        p95 = p95_between(runner, 80, 110)
        assert p95 <= SLO_MS, f"p95 {p95:.0f} ms; {last_decisions(stack, 'step')}"

        # GitOps: the autoscaler's replicas are not in the user's manifest's fields.
        path = str(stack.root / "step.json")
        diff = stack.cluster.kubectl("diff", "--server-side", "-f", path, check=False)
        assert diff.returncode == 0, diff.stdout + diff.stderr
        before = stack.replicas("step")
        stack.cluster.kubectl("apply", "--server-side", "-f", path)
        # Not reset to the manifest's minimum (1); the autoscaler itself may take one step
        # meanwhile (it held spare pods for the opening's backlog: 10 -> 9 in one CI run).
        after = stack.replicas("step")
        assert after > 1 and abs(after - before) <= 1, (before, after)

        # The load drops at 110 s; the 10 s rate window and the pods' summaries see only the
        # low load from about 125 s on. From then on: no step up, only steps down.
        wait_for(lambda: runner.elapsed_s() > 126, 45, "the metrics to see the drop")
        peak, series = stack.replicas("step"), []
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline and (not series or series[-1] > 1):
            series.append(stack.replicas("step"))
            time.sleep(1)
        obj = get_json(stack.cluster, "-n", NS, "inferenceservice", "step") or {}
        decisions = obj["status"]["autoscaling"]["decisions"]
        assert series[-1] < peak, (
            f"never scaled down from {peak}: {series}; {json.dumps(decisions[-6:])}")
        # Stepwise (scaleDown.maxStep = 1) and no flapping: once load is low, never up again.
        steps = [b - a for a, b in zip(series, series[1:], strict=False) if b != a]
        assert all(step == -1 for step in steps), (
            f"not stepwise down by 1: {series}; last decisions: {json.dumps(decisions[-4:])}"
        )
        assert decisions and all("reason" in d and "from" in d for d in decisions)
        # The CRD keeps the last decision's numbers (the API server pruned them once).
        last = obj["status"]["autoscaling"]["lastDecision"]
        assert isinstance(last.get("applied"), bool) and isinstance(last.get("details"), dict), last
        events = stack.cluster.kubectl(
            "get", "events", "-n", NS, "--field-selector", "reason=Scaled", "-o", "json"
        )
        assert json.loads(events.stdout)["items"], "no Scaled events"
    finally:
        runner.stop()


def test_prometheus_outage_holds_replicas_and_recovers(stack: Stack) -> None:
    outage_holds_replicas_and_recovers(stack, "outage", outage_s=10)


def test_more_demand_than_gpus_stops_at_what_fits_and_says_so(stack: Stack) -> None:
    # 8 GPUs a replica: at most one replica per free node, far below what this load needs.
    manifest = isvc("gpu-bound", NS, max_replicas=12, gpus=8)
    runner = stack.replay_manifest(manifest, [(300, 400.0)])
    try:
        limited = wait_for(
            lambda: (
                (c := stack.condition("gpu-bound", "ScalingLimited")).get("reason")
                == "Unschedulable"
                and c
            ),
            120,
            "ScalingLimited=Unschedulable",
        )
        assert "nvidia.com/gpu" in limited["message"]
        # The condition may be written while an earlier ask is still being applied (1 -> 3
        # in one CI run): what fits is judged once that has landed.
        time.sleep(8)
        capped = stack.replicas("gpu-bound")
        time.sleep(8)
        now = stack.replicas("gpu-bound")
        assert now <= capped + 1  # no further asks beyond what fits
        pods = get_json(stack.cluster, "-n", NS, "pods", "-l",
                        f"{SERVICE_LABEL}=gpu-bound") or {"items": []}
        placed = sum(1 for p in pods["items"] if p["spec"].get("nodeName")
                     and not p["metadata"].get("deletionTimestamp"))
        assert now <= placed + 1, (now, placed)  # far below the ~17 this load needs
    finally:
        runner.stop()
        stack.cluster.kubectl("delete", "inferenceservice", "gpu-bound", "-n", NS, "--wait=false")
