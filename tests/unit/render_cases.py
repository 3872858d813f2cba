"""Render cases shared by the golden tests: every example plus branches examples miss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sloscale.api.spec import parse_spec
from sloscale.render.contract import load_package_templates
from sloscale.render.renderer import Manifest, render_children
from sloscale.render.values import RenderOptions

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"


def example_objects() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "InferenceService":
                found[f"example-{path.stem}"] = doc
    return found


def extra_objects() -> dict[str, dict[str, Any]]:
    model = {"name": "m", "storageUri": "pvc://store/models/m"}
    return {
        "pvc-mounted": {"metadata": {"name": "pvc"}, "spec": {"model": model}},
        "autoscaled-min3-pdb": {"metadata": {"name": "auto3"}, "spec": {
            "model": {"name": "m", "storageUri": "gs://bucket/m"},
            "autoscaling": {"enabled": True, "minReplicas": 3, "objective": {"targetMs": 20}}}},
        "user-gpu-toleration-kept": {"metadata": {"name": "tol"}, "spec": {
            "model": {"name": "m", "storageUri": "s3://bucket/m"},
            "runtime": {"resources": {"requests": {"nvidia.com/gpu": "1"}},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                        "affinity": {"nodeAffinity": {}}, "priorityClassName": "gpu-high",
                        "podLabels": {"team": "vision",
                                      "serving.sloscale.io/inferenceservice": "spoof"},
                        "podAnnotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "30s"}}}},
    }


CASES = {**example_objects(), **extra_objects()}


def render_case(case: str, servicemonitor: bool = True) -> list[Manifest]:
    obj = CASES[case]
    return render_children(obj["metadata"]["name"], "default", "00000000-uid", parse_spec(
        obj["spec"]), load_package_templates(), RenderOptions(servicemonitor=servicemonitor))


def golden_text(manifests: list[Manifest]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=False, width=100)
