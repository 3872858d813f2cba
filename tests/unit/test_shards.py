"""Sharded mode's decisions: which shard a service is in, and what a Lease round does."""

from __future__ import annotations

from collections import Counter

import pytest

from sloscale.controller.shards import (
    LeaseView,
    fair_share,
    lease_view,
    live_members,
    owner_shard,
    plan,
    shard_of,
)

NOW = 1_000_000.0


def held(by: str | None, renewed: float = NOW - 1, duration: float = 15) -> LeaseView:
    return LeaseView(by, renewed, duration, "1")


def test_a_service_keeps_its_shard_and_shards_split_a_fleet_evenly() -> None:
    assert shard_of("prod", "alpha", 4) == shard_of("prod", "alpha", 4)  # not hash()'s salt
    assert shard_of("prod", "alpha", 1) == 0
    counts = Counter(shard_of("ns", f"svc-{i}", 2) for i in range(1000))
    assert set(counts) == {0, 1} and min(counts.values()) > 450, counts
    # namespace and name both count: the same name elsewhere lands independently
    spread = {shard_of(f"team-{i}", "model", 8) for i in range(64)}
    assert len(spread) == 8


def test_a_child_is_in_its_owners_shard() -> None:
    isvc = {"kind": "InferenceService", "metadata": {"namespace": "prod", "name": "alpha"}}
    child = {"kind": "Deployment", "metadata": {"namespace": "prod", "name": "alpha-predictor",
                                                "ownerReferences": [{"kind": "InferenceService",
                                                                     "name": "alpha"}]}}
    stray = {"kind": "Deployment", "metadata": {"namespace": "prod", "name": "x"}}
    assert owner_shard(child, 8, "InferenceService") == owner_shard(isvc, 8, "InferenceService")
    assert owner_shard(isvc, 8, "InferenceService") == shard_of("prod", "alpha", 8)
    assert owner_shard(stray, 8, "InferenceService") is None


def test_a_lease_is_live_while_renewed_within_its_duration() -> None:
    assert held("a", NOW - 14.9).live(NOW)
    assert not held("a", NOW - 15.0).live(NOW)
    assert not held(None).live(NOW)  # released
    assert not LeaseView("a", None, 15).live(NOW)


def test_lease_view_reads_the_api_objects_fields() -> None:
    view = lease_view({"metadata": {"resourceVersion": "42"},
                       "spec": {"holderIdentity": "p1", "leaseDurationSeconds": 15,
                                "renewTime": "1970-01-12T13:46:40.000000Z"}})
    assert view == LeaseView("p1", NOW, 15.0, "42")
    assert lease_view({"spec": {"holderIdentity": ""}}).holder is None


@pytest.mark.parametrize(("shards", "members", "share"), [(2, 1, 2), (2, 2, 1), (5, 2, 3),
                                                          (2, 3, 1), (4, 0, 4)])
def test_fair_share(shards: int, members: int, share: int) -> None:
    assert fair_share(shards, members) == share


def test_alone_a_process_takes_every_shard() -> None:
    decided = plan("a", {0: None, 1: None}, members=1, now_s=NOW)
    assert decided.acquire == (0, 1) and not decided.renew and not decided.release


def test_a_second_member_gets_half_once_the_first_releases() -> None:
    leases = {0: held("a"), 1: held("a")}
    # b sees everything held: nothing to take yet
    assert plan("b", leases, members=2, now_s=NOW).acquire == ()
    # a sees two members: keeps its fair share, releases the highest shard
    by_a = plan("a", leases, members=2, now_s=NOW)
    assert by_a.renew == {0} and by_a.release == {1} and by_a.acquire == ()
    # released: b takes it
    assert plan("b", {0: held("a"), 1: held(None)}, members=2, now_s=NOW).acquire == (1,)


def test_a_dead_holders_expired_shard_is_taken_over() -> None:
    leases = {0: held("a"), 1: held("dead", renewed=NOW - 16)}
    decided = plan("a", leases, members=1, now_s=NOW)
    assert decided.renew == {0} and decided.acquire == (1,)
    # while the dead process still counts as a member, a holds its share and waits
    assert plan("a", leases, members=2, now_s=NOW).acquire == ()


def test_a_live_lease_of_another_is_never_taken() -> None:
    leases = {0: held("b"), 1: held("c")}
    assert plan("a", leases, members=1, now_s=NOW).acquire == ()


def test_our_own_expired_lease_is_taken_again_not_renewed_blindly() -> None:
    leases = {0: held("a", renewed=NOW - 20)}
    decided = plan("a", leases, members=1, now_s=NOW)
    assert decided.acquire == (0,) and not decided.renew


def test_members_are_the_live_member_leases_and_ourselves() -> None:
    leases = [held("a"), held("b"), held("gone", renewed=NOW - 60)]
    assert live_members(leases, "a", NOW) == 2
    assert live_members([], "a", NOW) == 1


@pytest.mark.parametrize("args", [["--shards", "2", "--peering", "sloscale"],
                                  ["--shards", "-1"], ["--shards", "2", "--shard-lease-s", "1"]])
def test_run_refuses_bad_shard_options_before_touching_a_cluster(
        args: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sloscale.cli import main

    monkeypatch.setenv("KUBECONFIG", "/nonexistent")  # any cluster access would fail otherwise
    assert main(["run", *args]) == 2
    assert "--shards" in capsys.readouterr().err
