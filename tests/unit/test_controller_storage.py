"""kopf's annotations, hand-edited into garbage, read as absent instead of failing."""

from __future__ import annotations

import kopf
import pytest

from sloscale.controller.storage import TolerantDiffBaseStorage, TolerantProgressStorage

DIFFBASE = "serving.sloscale.io/last-handled-configuration"
PROGRESS = "serving.sloscale.io/reconcile_inferenceservice"


def body(annotations: dict[str, str]) -> kopf.Body:
    return kopf.Body({"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
                      "metadata": {"name": "a", "namespace": "ns", "annotations": annotations}})


@pytest.mark.parametrize("garbage", ["{not json", "", "[1, 2]", "42", '"text"'])
def test_garbage_reads_as_absent(garbage: str) -> None:
    diffbase = TolerantDiffBaseStorage(prefix="serving.sloscale.io",
                                       key="last-handled-configuration")
    progress = TolerantProgressStorage(prefix="serving.sloscale.io")
    broken = body({DIFFBASE: garbage, PROGRESS: garbage})
    assert diffbase.fetch(body=broken) is None
    assert progress.fetch(key=kopf.HandlerId("reconcile_inferenceservice"), body=broken) is None


def test_valid_values_are_read_as_kopf_wrote_them() -> None:
    diffbase = TolerantDiffBaseStorage(prefix="serving.sloscale.io",
                                       key="last-handled-configuration")
    progress = TolerantProgressStorage(prefix="serving.sloscale.io")
    good = body({DIFFBASE: '{"spec": {"replicas": 2}}\n', PROGRESS: '{"retries": 1}'})
    assert diffbase.fetch(body=good) == {"spec": {"replicas": 2}}
    assert progress.fetch(key=kopf.HandlerId("reconcile_inferenceservice"),
                          body=good) == {"retries": 1}


def test_essence_is_kopfs_own_built_from_less() -> None:
    """The slimmed build gives what kopf's full deep copy would: no spurious diffs."""
    ours = TolerantDiffBaseStorage(prefix="serving.sloscale.io", key="last-handled-configuration")
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix="serving.sloscale.io",
                                            key="last-handled-configuration")
    full = kopf.Body({
        "apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
        "metadata": {
            "name": "a", "namespace": "ns", "uid": "u-1", "generation": 3,
            "resourceVersion": "77", "labels": {"team": "x"},
            "annotations": {DIFFBASE: '{"spec": {}}', PROGRESS: "{}", "note": "kept",
                            "kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "finalizers": ["x/y"],
        },
        "spec": {"model": {"name": "m"}, "replicas": 2},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    })
    essence = ours.build(body=full)
    assert essence == kopfs.build(body=full)
    assert essence["spec"] == {"model": {"name": "m"}, "replicas": 2}
    assert "status" not in essence and set(essence["metadata"]) == {"labels", "annotations"}
    assert essence["metadata"]["annotations"]["note"] == "kept"
    assert DIFFBASE not in essence["metadata"]["annotations"]
