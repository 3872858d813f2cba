"""Spec defaults and validation: the operator's mirror of the CRD's schema and CEL rules."""

from __future__ import annotations

from typing import Any

import pytest

from sloscale.api.spec import SpecError, parse_object, parse_spec

MODEL = {"name": "m", "storageUri": "s3://bucket/m"}


def spec(**overrides: Any) -> dict[str, Any]:
    return {"model": dict(MODEL), **overrides}


def autoscaling(**fields: Any) -> dict[str, Any]:
    return spec(autoscaling={"enabled": True, "objective": {"targetMs": 50}, **fields})


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not a mapping", "spec: must be an object"),
        ({}, "spec.model: required"),
        (spec(model={"name": "m"}), "spec.model.storageUri: required"),
        (spec(model={"name": "m", "storageUri": "ftp://x/y"}), "spec.model.storageUri: storageUri"),
        (spec(model={"name": "m", "storageUri": "s3://"}), "spec.model.storageUri: storageUri"),
        (spec(model={"name": "bad/name", "storageUri": "s3://b/m"}), "spec.model.name: does not"),
        (spec(model={**MODEL, "format": "caffe"}), "spec.model.format: must be one of"),
        (spec(replicas=-1), "spec.replicas: must be at least 0"),
        (spec(replicas="2"), "spec.replicas: must be of type integer"),
        (spec(replicas=True), "spec.replicas: must be of type integer"),
        (spec(runtime={"args": "--x"}), "spec.runtime.args: must be of type array"),
        (spec(runtime={"env": [{"value": "v"}]}), "spec.runtime.env[0].name: required"),
        (spec(runtime={"resources": {"limits": {"nvidia.com/gpu": "lots"}}}),
         "spec.runtime.resources.limits.nvidia.com/gpu: does not match"),
        (spec(runtime={"startupSeconds": 5}), "spec.runtime.startupSeconds: must be at least 10"),
        (autoscaling(minReplicas=5, maxReplicas=2),
         "spec.autoscaling.minReplicas: minReplicas must not exceed maxReplicas"),
        (spec(autoscaling={"enabled": True}), "spec.autoscaling.objective: objective is required"),
        (autoscaling(objective={"targetMs": 0}), "spec.autoscaling.objective.targetMs: must be "
                                                 "greater than 0"),
        (autoscaling(objective={"targetMs": 5, "window": "soon"}),
         "spec.autoscaling.objective.window: window must be a duration"),
        (autoscaling(objective={"targetMs": 5, "window": "0s"}),
         "spec.autoscaling.objective.window: window must be a duration"),
        (autoscaling(interval="2h"), "spec.autoscaling.interval: interval must be a duration"),
        (autoscaling(interval="15s\n"), "spec.autoscaling.interval: interval must be a duration"),
        (autoscaling(objective={"targetMs": 10 ** 9}),
         "spec.autoscaling.objective.targetMs: must be at most"),
        (autoscaling(objective={"targetMs": float("nan")}),
         "spec.autoscaling.objective.targetMs: must be of type number"),
        (autoscaling(maxReplicas=10 ** 9), "spec.autoscaling.maxReplicas: must be at most 1000"),
        (spec(replicas=10 ** 9), "spec.replicas: must be at most 1000"),
        (spec(runtime={"resources": {"limits": {"nvidia.com/gpu": 10 ** 6}}}),
         "spec.runtime.resources.limits: limits['nvidia.com/gpu'] must be a whole number"),
        (spec(runtime={"resources": {"requests": {"cpu": "-1"}}}),
         "spec.runtime.resources.requests.cpu: does not match"),
        (spec(runtime={"podLabels": {"team": "a b"}}), "spec.runtime.podLabels.team: does not"),
        (spec(runtime={"podAnnotations": {"a b": "x"}}),
         "spec.runtime.podAnnotations: every key must be an annotation key"),
        (spec(runtime={"env": [{"name": "A=B", "value": "v"}]}),
         "spec.runtime.env[0].name: does not match"),
        (spec(runtime={"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}),
         "spec.runtime.tolerations[0].value: value must be empty"),
        (spec(runtime={"image": "triton:latest\n"}), "spec.runtime.image: does not match"),
        (spec(model={**MODEL, "credentialsSecretName": "../x"}),
         "spec.model.credentialsSecretName: does not match"),
        (spec(model={"name": "m", "storageUri": "s3://bucket/a b"}),
         "spec.model.storageUri: storageUri"),
        (autoscaling(mode="maybe"), "spec.autoscaling.mode: must be one of"),
        (autoscaling(policy="magic"), "spec.autoscaling.policy: must be one of"),
        (autoscaling(scaleUp={"maxStep": 0}), "spec.autoscaling.scaleUp.maxStep: must be at least"),
        (autoscaling(capacityProfile={}), "capacityProfile needs exactly one"),
        (autoscaling(capacityProfile={"maxRpsPerReplica": 3, "configMapRef": {"name": "a",
                                                                              "key": "b"}}),
         "capacityProfile needs exactly one"),
        (autoscaling(capacityProfile={"configMapRef": {"name": "a"}}),
         "spec.autoscaling.capacityProfile.configMapRef.key: required"),
    ],
)
def test_invalid_specs_name_the_field(raw: Any, problem: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert any(problem in found for found in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    "uri",
    ["s3://bucket/path/to/model", "gs://bucket", "https://host.example/m.tar.gz",
     "pvc://claim/sub/dir", "pvc://claim"],
)
def test_storage_schemes_accepted(uri: str) -> None:
    assert parse_spec(spec(model={"name": "m", "storageUri": uri})).model.storage_uri == uri


def test_defaults_fill_every_level() -> None:
    parsed = parse_spec(autoscaling())
    assert parsed.replicas == 1
    assert parsed.runtime.image.startswith("nvcr.io/nvidia/tritonserver:")
    assert parsed.runtime.shm_size == "1Gi"
    assert (parsed.autoscaling["mode"], parsed.autoscaling["policy"]) == ("active", "slo")
    assert (parsed.autoscaling["minReplicas"], parsed.autoscaling["maxReplicas"]) == (1, 8)
    assert "scaleDown" not in parsed.autoscaling  # unset: the policy's own rules
    assert parsed.autoscaling["objective"] == {"targetMs": 50, "latency": "p95",
                                                   "window": "1m"}


def test_parse_does_not_mutate_input() -> None:
    raw = spec()
    parse_spec(raw)
    assert raw == spec()


@pytest.mark.parametrize(
    ("name", "valid"),
    [("resnet", True), ("a", True), ("bert-onnx-2", True), ("1bad", False), ("Caps", False),
     ("ends-", False), ("x" * 63, True), ("x" * 64, False), ("dot.ted", False)],
)
def test_object_name_must_fit_a_service_name(name: str, valid: bool) -> None:
    body = {"metadata": {"name": name}, "spec": spec()}
    if valid:
        assert parse_object(body).model.name == "m"
    else:
        with pytest.raises(SpecError, match="metadata.name: metadata.name must be a DNS-1035"):
            parse_object(body)
