"""Local control plane tooling: node pool, kwok stages, and build failures named by step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from hack.localcluster import build
from hack.localcluster.errors import StepFailed
from hack.localcluster.nodes import GPU_RESOURCE, NodePool, node_manifests, stage_config


@pytest.mark.parametrize(
    ("pool", "gpu_nodes", "cpu_nodes"),
    [(NodePool(), 4, 1), (NodePool(gpu_nodes=2, gpus_per_node=4, cpu_nodes=0), 2, 0)],
)
def test_node_pool_shape(pool: NodePool, gpu_nodes: int, cpu_nodes: int) -> None:
    nodes = node_manifests(pool)
    gpu = [n for n in nodes if n["metadata"]["labels"]["sloscale.dev/pool"] == "gpu"]
    cpu = [n for n in nodes if n["metadata"]["labels"]["sloscale.dev/pool"] == "cpu"]
    assert (len(gpu), len(cpu)) == (gpu_nodes, cpu_nodes)
    for node in gpu:
        labels = node["metadata"]["labels"]
        assert node["status"]["allocatable"][GPU_RESOURCE] == str(pool.gpus_per_node)
        assert labels["nvidia.com/gpu.count"] == str(pool.gpus_per_node)
        assert labels["nvidia.com/gpu.product"] == pool.gpu_product
        assert node["spec"]["taints"] == [
            {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
        ]
    for node in cpu:
        assert GPU_RESOURCE not in node["status"]["allocatable"]
        assert node["spec"]["taints"] == []
    assert len({n["metadata"]["name"] for n in nodes}) == len(nodes)


def _stage(name: str, kind: str, delay: dict | None) -> dict:
    spec: dict = {"resourceRef": {"apiGroup": "v1", "kind": kind}, "selector": {}}
    if delay is not None:
        spec["delay"] = delay
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_stage_config_sets_startup_delay_and_makes_other_pod_stages_immediate(
    tmp_path: Path,
) -> None:
    jittered = {"durationMilliseconds": 1000, "jitterDurationMilliseconds": 5000}
    stages = {
        "pod-ready": _stage("pod-ready", "Pod", dict(jittered)),
        "pod-delete": _stage(
            "pod-delete",
            "Pod",
            {"durationMilliseconds": 1000, "jitterDurationFrom": {"expressionFrom": "x"}},
        ),
        "pod-create": _stage("pod-create", "Pod", dict(jittered)),
        "node-heartbeat": _stage("node-heartbeat", "Node", {"durationMilliseconds": 600000}),
        "node-initialize": _stage("node-initialize", "Node", None),
    }
    for name, stage in stages.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(stage))
    out = {
        doc["metadata"]["name"]: doc
        for doc in yaml.safe_load_all(
            stage_config(tmp_path, NodePool(startup_delay_s=60, startup_jitter_s=5))
        )
    }
    # kwok draws uniformly between the two (60 +- 5 s); the second is a bound, not a +-.
    assert out["pod-ready"]["spec"]["delay"] == {
        "durationMilliseconds": 55000,
        "jitterDurationMilliseconds": 65000,
    }
    assert out["pod-create"]["spec"]["delay"] == {"durationMilliseconds": 0}
    assert out["pod-delete"]["spec"]["delay"] == {"durationMilliseconds": 0}
    assert out["node-heartbeat"]["spec"]["delay"] == {"durationMilliseconds": 600000}
    assert "delay" not in out["node-initialize"]["spec"]


def test_no_jitter_is_a_fixed_startup_delay(tmp_path: Path) -> None:
    jittered = {"durationMilliseconds": 1000, "jitterDurationMilliseconds": 5000}
    (tmp_path / "pod-ready.yaml").write_text(yaml.safe_dump(_stage("pod-ready", "Pod", jittered)))
    ready = next(yaml.safe_load_all(stage_config(tmp_path, NodePool(startup_delay_s=30))))
    assert ready["spec"]["delay"] == {"durationMilliseconds": 30000}


def test_missing_go_names_the_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `go`
    with pytest.raises(StepFailed) as failure:
        build.ensure_install()
    assert failure.value.step == "check Go toolchain"
    assert "install Go" in failure.value.remedy


def test_failed_module_download_names_the_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLOSCALE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))  # empty: must download
    monkeypatch.setenv("GOPROXY", "off")  # and downloading is forbidden
    monkeypatch.setenv("GOFLAGS", "")
    with pytest.raises(StepFailed) as failure:
        build.ensure_install()
    assert failure.value.step == "download Go modules (k8s)"
    assert "GOPROXY" in failure.value.remedy
    leftovers = list((tmp_path / "cache").glob("k8s-*"))
    assert leftovers == []  # a failed build leaves no half-made install behind


def test_incomplete_cache_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLOSCALE_CACHE", str(tmp_path))
    install = build.install_dir()
    (install / "bin").mkdir(parents=True)
    (install / "kwok-stages").mkdir()
    (install / "kwok-stages" / "pod-ready.yaml").write_text("{}")
    for name in build.BINARIES:
        path = install / "bin" / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    assert build.cached_install() == install
    os.remove(install / "bin" / "kube-scheduler")
    assert build.cached_install() is None


def test_cache_key_changes_with_the_pins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = build.install_dir()
    fake_go = tmp_path / "go"
    fake_go.mkdir()
    (fake_go / "k8s").mkdir()
    (fake_go / "k8s" / "go.mod").write_text("module x\n")
    monkeypatch.setattr(build, "GO_DIR", fake_go)
    assert build.install_dir() != before
    assert build.install_dir().name.startswith(f"k8s-{build.KUBERNETES_VERSION}-")


def test_kubernetes_cache_key_is_the_one_before_toolsets() -> None:
    """The real pins: hack/go/keda joined without renaming the cached Kubernetes build
    (the key the recipe gave before KEDA, recomputed here the old way)."""
    import hashlib

    digest = hashlib.sha256(build._go_version().encode())
    for path in sorted(build.GO_DIR.rglob("*")):
        if path.is_file() and path.relative_to(build.GO_DIR).parts[0] != "keda":
            digest.update(str(path.relative_to(build.GO_DIR)).encode())
            digest.update(path.read_bytes())
    recipe = (build.KUBERNETES_VERSION, build.HELM_VERSION, build.BUILDS, build.KWOK_STAGE_FILES)
    digest.update(repr(recipe).encode())
    assert build.install_dir().name == f"k8s-{build.KUBERNETES_VERSION}-{digest.hexdigest()[:12]}"


def test_each_toolset_keys_only_its_own_pins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Adding or bumping KEDA's pins must not rebuild Kubernetes (half an hour), nor the
    reverse: each cache key hashes only its own module folders."""
    from hack.localcluster import keda

    fake_go = tmp_path / "go"
    for module_dir in ("k8s", "helm", "kubeconform", "keda"):
        (fake_go / module_dir).mkdir(parents=True)
        (fake_go / module_dir / "go.mod").write_text(f"module {module_dir}\n")
    monkeypatch.setattr(build, "GO_DIR", fake_go)
    k8s_before, keda_before = build.install_dir(), build.install_dir(keda.TOOLSET)
    assert keda_before.name.startswith(f"keda-{keda.KEDA_VERSION}-")
    (fake_go / "keda" / "go.sum").write_text("bumped\n")
    assert build.install_dir() == k8s_before
    assert build.install_dir(keda.TOOLSET) != keda_before
    (fake_go / "helm" / "go.sum").write_text("bumped\n")
    assert build.install_dir() != k8s_before


def test_the_kubelet_is_cached_apart_from_the_control_plane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same pinned module as the control plane, its own key: adding the kubelet (or changing
    how it is built) never rebuilds the cached Kubernetes binaries, nor the reverse."""
    import dataclasses

    k8s_before, kubelet_before = build.install_dir(), build.install_dir(build.KUBELET)
    assert kubelet_before.name.startswith(f"kubelet-{build.KUBERNETES_VERSION}-")
    assert kubelet_before != k8s_before
    assert build.KUBELET.module_dirs == {"k8s"}  # the pins the control plane is built from
    changed = dataclasses.replace(build.KUBELET, recipe=(*build.KUBELET.recipe, "-race"))
    monkeypatch.setattr(build, "KUBELET", changed)
    assert build.install_dir(changed) != kubelet_before
    assert build.install_dir() == k8s_before


def test_a_binaries_only_toolset_is_complete_without_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLOSCALE_CACHE", str(tmp_path))
    assert build.cached_install(build.KUBELET) is None
    kubelet = build.install_dir(build.KUBELET) / "bin" / "kubelet"
    kubelet.parent.mkdir(parents=True)
    kubelet.write_text("#!/bin/sh\n")
    kubelet.chmod(0o755)
    assert build.cached_install(build.KUBELET) == build.install_dir(build.KUBELET)
