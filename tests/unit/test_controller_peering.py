"""Multi-replica mode: the autoscaler follows kopf's rule for which peer is active."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sloscale.controller.peering import is_active, own_identity, random_priority

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def peer(priority: int, seen_s_ago: float, lifetime_s: int = 60) -> dict[str, object]:
    return {
        "priority": priority,
        "lifetime": lifetime_s,
        "lastseen": (NOW - timedelta(seconds=seen_s_ago)).isoformat(),
    }


@pytest.mark.parametrize(
    ("peers", "active"),
    [
        ({"me": peer(20, 5)}, True),                              # alone
        ({"me": peer(20, 5), "b": peer(10, 5)}, True),            # highest priority
        ({"me": peer(10, 5), "b": peer(20, 5)}, False),           # a higher peer works
        ({"me": peer(10, 5), "b": peer(10, 5)}, False),           # a tie pauses both (kopf)
        ({"me": peer(10, 5), "b": peer(20, 61)}, True),           # the higher one is dead
        ({"me": peer(20, 61), "b": peer(10, 5)}, False),          # our own record expired
        ({"b": peer(10, 5)}, False),                              # not registered yet
        ({"me": peer(20, 5), "b": "garbage"}, True),              # malformed records ignored
        ({"me": {"priority": 5, "lifetime": 60}, "b": peer(1, 5)}, False),  # never seen
    ],
)  # fmt: skip
def test_only_the_live_peer_with_the_top_priority_is_active(
    peers: dict[str, object], active: bool
) -> None:
    assert is_active(peers, "me", NOW) is active


def test_identity_is_the_pod_name_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_ID", "sloscale-abc")
    assert own_identity() == "sloscale-abc"
    monkeypatch.delenv("POD_ID")
    assert own_identity() != own_identity()  # unique per process start


def test_random_priorities_rarely_tie() -> None:
    assert len({random_priority() for _ in range(100)}) > 95
