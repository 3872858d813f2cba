"""Shared fixtures: the local control plane, started once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.localcluster.cluster import LocalCluster
from hack.localcluster.nodes import NodePool


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real control plane (etcd, apiserver, controller-manager, scheduler, kwok) on loopback.

    Set SLOSCALE_TEST_CLUSTER_DIR to the --dir of a cluster started by `make cluster-up`
    to reuse it instead of starting a fresh one.
    """
    reuse = os.environ.get("SLOSCALE_TEST_CLUSTER_DIR")
    if reuse:
        yield LocalCluster(Path(reuse)).up()
        return
    # Three CPU nodes (330 pods): the modules share this cluster and the fault suite alone
    # runs 100 pods beside what earlier modules are still tearing down.
    local = LocalCluster(tmp_path_factory.mktemp("cluster"),
                         NodePool(startup_delay_s=2.0, cpu_nodes=3))
    local.up()
    try:
        yield local
    finally:
        local.down()
