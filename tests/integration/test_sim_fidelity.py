"""The simulator against a real Triton: one replica, open-loop Poisson loads at 30, 50 and 70 %
of the fitted max throughput, the same send times replayed through the simulator.

User story: policies are tuned and compared in the simulator, so for a load Triton serves with
some p50 and p95 the simulator must give about the same, or the tuning is wrong: within 20 %
(GOAL). The ServiceModel is the profile's: its line refitted on the loads' batches (the shared
machine's speed drifts), and how early Triton closes its next batch fitted on the profile's own
open-loop probe, never on these loads (docs/sim-fidelity.md).

p50 is held to the goal. p95 is held to BOUND while its goal is open: the simulator's batches
take exactly the fitted line while Triton's spread (7-11 % per size on a quiet machine, two to
three times the line when a neighbour preempts the model), so its p95 reads 3-24 % low on
undisturbed levels and more where a neighbour's burst hit; `make bench-fidelity` prints both
against the goal.
"""

from __future__ import annotations

import pytest

from sloscale.sim import fidelity, fidelity_bench
from sloscale_runtime.fit import ServiceFit
from sloscale_runtime.triton import TritonServer

pytestmark = pytest.mark.integration
GOAL = 0.20
BOUND = 0.40  # p95, until the service time's spread is modelled
# Up to 70 % of the fitted throughput: beyond, the sender, Triton and the model share the two
# cores so tightly that the run measures the machine (`make bench-fidelity` still shows 85 %).
FRACTIONS = (0.3, 0.5, 0.7)
Measured = tuple[ServiceFit, ServiceFit, list[fidelity.LevelComparison]]


@pytest.fixture(scope="module")
def measured(triton: TritonServer) -> Measured:
    """Fit (closed-loop steps, then the open-loop probe), then the three loads (about 80 s on
    two cores)."""
    return fidelity_bench.measure(triton.ports.http_url, triton.ports.grpc_url,
                                  fidelity_bench.MODEL_NAME, fractions=FRACTIONS)


def describe(measured: Measured) -> str:
    probe, fit, levels = measured
    rows = "\n".join(fidelity.format_row(level) for level in levels)
    return (f"\n{fidelity.format_fit('probe fit', probe)}\n{fidelity.format_fit('load fit', fit)}"
            f"\n{fidelity.HEADER}\n{rows}")


def test_the_fitted_line_describes_the_batches(measured: Measured) -> None:
    probe, fit, _ = measured
    for service in (probe, fit):
        assert service.base_ms > 0 and service.per_item_ms > 0, describe(measured)
        # A line that misses its own batches by more than a tenth of a full batch is no model.
        full_batch_ms = service.base_ms + service.per_item_ms * service.max_batch
        assert service.rms_residual_ms < 0.1 * full_batch_ms, describe(measured)
    assert (probe.max_batch, probe.max_queue_delay_ms) == (16, 0.1)  # the builder's defaults
    assert 0 < probe.overhead_ms < 10.0, describe(measured)


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_simulated_p50_within_the_goal_and_p95_within_the_bound(measured: Measured,
                                                                fraction: float) -> None:
    _, _, levels = measured
    level = next(level for level in levels if level.load_fraction == fraction)
    assert level.errors == 0, describe(measured)
    assert level.requests >= 500, describe(measured)
    assert abs(level.p50_error) <= GOAL, describe(measured)
    assert abs(level.p95_error) <= BOUND, describe(measured)
