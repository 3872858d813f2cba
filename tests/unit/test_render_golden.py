"""Golden files of rendered children, one per case; `make golden` rewrites them for review."""

from __future__ import annotations

import os
from typing import Any

import pytest

from sloscale.api.spec import parse_spec
from sloscale.render.contract import load_package_templates
from sloscale.render.renderer import render_children
from sloscale.render.values import RenderOptions
from tests.unit.render_cases import CASES, GOLDEN, golden_text, render_case

UPDATE = os.environ.get("SLOSCALE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_children_match_golden(case: str) -> None:
    text = golden_text(render_case(case))
    path = GOLDEN / f"{case}.yaml"
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path} missing: run `make golden`"
    assert text == path.read_text(), f"{path} differs: run `make golden` and review the diff"


def kinds(case: str, servicemonitor: bool = True) -> list[str]:
    return [m["kind"] for m in render_case(case, servicemonitor)]


def triton(case: str) -> dict[str, Any]:
    deployment = render_case(case)[0]
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(
    ("case", "servicemonitor", "expected"),
    [
        ("example-pytorch-resnet", True,
         ["Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"]),
        ("example-pytorch-resnet", False, ["Deployment", "PodDisruptionBudget", "Service"]),
        ("example-python-echo", False, ["Deployment", "Service"]),
        ("autoscaled-min3-pdb", False, ["Deployment", "PodDisruptionBudget", "Service"]),
        ("example-onnx-bert", False, ["Deployment", "Service"]),
    ],
)
def test_children_selected(case: str, servicemonitor: bool, expected: list[str]) -> None:
    assert kinds(case, servicemonitor) == expected


@pytest.mark.parametrize(
    ("case", "has_replicas"),
    [("example-pytorch-resnet", True), ("example-onnx-bert", False),
     ("autoscaled-min3-pdb", False)],
)
def test_replicas_left_to_autoscaler(case: str, has_replicas: bool) -> None:
    assert ("replicas" in render_case(case)[0]["spec"]) is has_replicas


def test_replicas_left_to_another_autoscaler_while_ours_is_off() -> None:
    obj = CASES["example-pytorch-resnet"]  # autoscaling off, spec.replicas set
    children = render_children(
        obj["metadata"]["name"], "default", "00000000-uid", parse_spec(obj["spec"]),
        load_package_templates(), RenderOptions(scaled_by="HorizontalPodAutoscaler/web"))
    assert "replicas" not in children[0]["spec"]
    assert children[0]["spec"]["template"] == render_case("example-pytorch-resnet")[0]["spec"][
        "template"]  # nothing else changes


@pytest.mark.parametrize(
    ("case", "gpu_tolerations"),
    [("example-pytorch-resnet", 1), ("example-python-echo", 0), ("user-gpu-toleration-kept", 1)],
)
def test_gpu_toleration(case: str, gpu_tolerations: int) -> None:
    pod = render_case(case)[0]["spec"]["template"]["spec"]
    assert sum(t.get("key") == "nvidia.com/gpu" for t in pod["tolerations"]) == gpu_tolerations


@pytest.mark.parametrize(
    ("case", "init_containers", "sub_path"),
    [("example-pytorch-resnet", 1, None), ("pvc-mounted", 0, "models/m")],
)
def test_storage(case: str, init_containers: int, sub_path: str | None) -> None:
    pod = render_case(case)[0]["spec"]["template"]["spec"]
    assert len(pod.get("initContainers", [])) == init_containers
    assert "--model-repository=/mnt/models" in triton(case)["args"]
    mount = triton(case)["volumeMounts"][0]
    assert (mount["mountPath"], mount.get("subPath")) == ("/mnt/models", sub_path)


def test_user_pod_metadata_merged_ours_win() -> None:
    pod = render_case("user-gpu-toleration-kept")[0]["spec"]["template"]["metadata"]
    assert pod["labels"]["team"] == "vision"
    assert pod["labels"]["serving.sloscale.io/inferenceservice"] == "tol"
    assert pod["annotations"]["pod-ready.stage.kwok.x-k8s.io/delay"] == "30s"


def test_every_child_owned_and_labelled() -> None:
    for case in CASES:
        for manifest in render_case(case):
            owner = manifest["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["uid"], owner["controller"]) == (
                "InferenceService", "00000000-uid", True)
            label = manifest["metadata"]["labels"]["serving.sloscale.io/inferenceservice"]
            assert label == CASES[case]["metadata"]["name"]
