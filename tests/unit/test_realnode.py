"""The real node's configuration (`up --real-node`): what this machine needs, read back."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import pytest

from hack.localcluster import podnet, realnode
from hack.localcluster.cluster import LocalCluster
from hack.localcluster.errors import StepFailed


def test_containerd_keeps_everything_under_its_folder_and_sets_what_this_machine_needs(
    tmp_path: Path,
) -> None:
    text = realnode.containerd_config(tmp_path, "localhost/pause:1", tmp_path / "net.d")
    config = tomllib.loads(text)
    assert (config["root"], config["state"]) == (str(tmp_path / "root"), str(tmp_path / "state"))
    assert config["grpc"]["address"] == str(tmp_path / "containerd.sock")
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # negative oom_score_adj is refused here
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == "localhost/pause:1"
    assert cri["stream_server_address"] == "127.0.0.1"
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": str(tmp_path / "net.d"),
                          "max_conf_num": 1}  # fmt: skip
    runc = cri["containerd"]["runtimes"]["runc"]
    assert cri["containerd"]["default_runtime_name"] == "runc"  # crun refuses hybrid cgroups
    assert runc["options"]["SystemdCgroup"] is False


def test_the_cni_network_is_a_bridge_with_host_local_addresses_and_no_nat(tmp_path: Path) -> None:
    subnet = ipaddress.ip_network("10.244.7.0/24")
    conflist = podnet.cni_conflist("slo12345678", subnet, tmp_path)
    (bridge,) = conflist["plugins"]
    assert (bridge["type"], bridge["bridge"], bridge["ipMasq"]) == ("bridge", "slo12345678", False)
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.7.0/24", "gateway": "10.244.7.1"}]]
    assert bridge["ipam"]["dataDir"] == str(tmp_path)


def test_kubelet_settings_this_machine_needs(tmp_path: Path) -> None:
    local = LocalCluster(tmp_path)
    config = realnode.kubelet_config(local, {"kubelet": 1, "kubelet-healthz": 2}, "10.244.7.1")
    assert config["failCgroupV1"] is False
    assert (config["cgroupDriver"], config["cgroupsPerQOS"]) == ("cgroupfs", False)
    assert config["enforceNodeAllocatable"] == []
    assert config["failSwapOn"] is False
    assert config["containerRuntimeEndpoint"] == f"unix://{realnode.socket_path(local)}"
    assert (config["address"], config["healthzBindAddress"]) == ("10.244.7.1", "127.0.0.1")
    assert config["readOnlyPort"] == 0
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook"
    assert config["registerWithTaints"] == [realnode.TAINT]
    assert config["podLogsDir"] == str(local.logs / "pods")


def test_each_cluster_folder_has_its_own_bridge_name() -> None:
    names = {podnet.network_name(Path(f"/tmp/cluster-{i}")) for i in range(50)}
    assert len(names) == 50
    assert all(len(name) <= 15 for name in names)  # the kernel's limit on interface names


@pytest.mark.parametrize("taken_count", [0, 1, 10])
def test_the_pod_subnet_avoids_every_routed_network(taken_count: int) -> None:
    root = Path("/tmp/some-cluster")
    first = podnet.pick_subnet(root, [])
    assert first.subnet_of(podnet.POD_SUPERNET) and first.prefixlen == 24
    taken = [first]
    for _ in range(taken_count):
        taken.append(podnet.pick_subnet(root, taken))
    assert len(set(taken)) == len(taken)
    assert podnet.pick_subnet(root, [ipaddress.ip_network("192.168.0.0/16")]) == first


def test_no_free_subnet_is_a_named_step() -> None:
    with pytest.raises(StepFailed) as failure:
        podnet.pick_subnet(Path("/x"), [ipaddress.ip_network("10.0.0.0/8")])
    assert failure.value.step == "pick a pod subnet"


def test_mounts_under_reads_the_mount_table(tmp_path: Path) -> None:
    assert realnode.mounts_under(tmp_path) == []
    assert "/proc" in realnode.mounts_under(Path("/proc"))


def test_missing_tools_name_the_step_and_the_make_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CI without containerd must fail to start the real node (its e2e tests fail, not skip)."""
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder
    with pytest.raises(StepFailed) as failure:
        realnode.check_tools()
    assert failure.value.step == "check the real node's tools"
    assert "containerd" in failure.value.cause and "make system-deps" in failure.value.remedy
