"""Backtest core: range results regrouped per step and replayed through a policy."""

from __future__ import annotations

from sloscale.autoscale.backtest import replay, vectors_at
from sloscale.autoscale.backtest_report import table
from sloscale.autoscale.config import parse_autoscaling
from sloscale.autoscale.promql import PROM_SERVICE_LABEL, ServiceKey

KEY = ServiceKey("prod", "bert")
LABELS = {"namespace": "prod", PROM_SERVICE_LABEL: "bert"}


def _matrix(values: list[tuple[float, str]], labels: dict | None = None) -> list[dict]:
    return [{"metric": labels or LABELS, "values": [[t, v] for t, v in values]}]


def test_vectors_regrouped_by_time_and_other_services_ignored() -> None:
    other = {"namespace": "prod", PROM_SERVICE_LABEL: "other"}
    grouped = vectors_at(
        {"rps": _matrix([(10, "1"), (20, "2")]) + _matrix([(10, "9")], other)}, KEY
    )
    assert grouped == {10.0: {"rps": {KEY: 1.0}}, 20.0: {"rps": {KEY: 2.0}}}


def test_replay_recommends_what_the_policy_would_have() -> None:
    spec = parse_autoscaling(
        {
            "policy": "keda",
            "objective": {"targetMs": 200},
            "capacityProfile": {"maxRpsPerReplica": 10},
        }
    )
    matrices = {
        "rps": _matrix([(0, "3"), (15, "35"), (30, "35")]),
        "last_sample": _matrix([(0, "0"), (15, "15"), (30, "30")]),
        "latency_p95_ms": _matrix([(0, "50"), (15, "90"), (30, "90")]),
        "actual_pods": _matrix([(0, "1"), (15, "1"), (30, "5")]),
    }
    rows = replay(matrices, KEY, spec, stale_after_s=45)
    assert [r.actual for r in rows] == [1, 1, 5]
    # KEDA AverageValue: ceil(35 rps / (0.7 x 10 rps)) = 5 replicas.
    assert rows[1].recommended == 5
    assert "3 decisions" in table(rows)


def test_replay_holds_where_prometheus_had_nothing() -> None:
    spec = parse_autoscaling({"objective": {"targetMs": 200}})
    rows = replay({"actual_pods": _matrix([(0, "3")])}, KEY, spec, stale_after_s=45)
    assert (rows[0].recommended, rows[0].reason) == (3, "hold: NoSamples")
