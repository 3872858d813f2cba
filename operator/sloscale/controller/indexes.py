"""kopf indexes: the watched InferenceServices and children, for reads without a GET.

kopf fills an index from the watch it already runs for the handlers, and starts no handler
before every index has seen its first listing: after a restart, the first reconcile already
sees every child. The Kubernetes adapter reads them through `kube.watched.WatchedObjects`;
the autoscaler takes its list of InferenceServices from the same index instead of a LIST
per tick.
"""

from __future__ import annotations

from typing import Any

import kopf

from sloscale.api import GROUP, KIND, PLURAL, VERSION
from sloscale.kube.watched import WatchedObjects


def owned(body: kopf.Body, **_: Any) -> bool:
    """Owned by an InferenceService (by owner reference, not label: a child whose label
    was removed by hand is still ours)."""
    for owner in body.get("metadata", {}).get("ownerReferences", []) or []:
        if owner.get("kind") == KIND and owner.get("apiVersion", "").startswith(f"{GROUP}/"):
            return True
    return False


def _by_name(body: kopf.Body,
             keep_managed_fields: bool = False) -> dict[tuple[str, str], dict[str, Any]]:
    """The object under (namespace, name), without its managedFields unless asked (a few
    kB an object, read only to know who owns a Deployment's replicas)."""
    # Shallow: kopf replaces the raw event's dicts on the next event, it never edits them.
    meta = body.get("metadata", {})
    if not keep_managed_fields:
        meta = {key: value for key, value in meta.items() if key != "managedFields"}
    return {(meta.get("namespace", ""), meta.get("name", "")): {**body, "metadata": meta}}


# async: run inline on the event loop (cheap), not through the handler thread pool.
@kopf.index(GROUP, VERSION, PLURAL)
async def inferenceservices(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    return _by_name(body)


@kopf.index("apps", "v1", "deployments", when=owned)
async def owned_deployments(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    return _by_name(body, keep_managed_fields=True)  # reconcile.owns_replicas reads them


@kopf.index("v1", "services", when=owned)
async def owned_services(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    return _by_name(body)


@kopf.index("policy", "v1", "poddisruptionbudgets", when=owned)
async def owned_pdbs(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    return _by_name(body)


def scales_a_deployment(body: kopf.Body, **_: Any) -> bool:
    ref = body.get("spec", {}).get("scaleTargetRef") or {}
    return bool(ref.get("kind") == "Deployment" and ref.get("name"))


@kopf.index("autoscaling", "v2", "horizontalpodautoscalers", when=scales_a_deployment)
async def hpas_by_target(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    """HPAs (KEDA's included: a ScaledObject works through one) by the Deployment they
    scale: with our autoscaling off, such a Deployment's replicas are left to them."""
    meta = body.get("metadata", {})
    kept = {"name": meta.get("name"), "namespace": meta.get("namespace"),
            "ownerReferences": meta.get("ownerReferences") or []}
    return {(meta.get("namespace", ""), body["spec"]["scaleTargetRef"]["name"]):
            {"metadata": kept, "spec": {"scaleTargetRef": body["spec"]["scaleTargetRef"]}}}


def watched_children(kube: Any, indices: dict[str, Any]) -> WatchedObjects:
    """The adapter's view of the children's indexes (from a handler's kwargs)."""
    return WatchedObjects({("apps/v1", "Deployment"): indices["owned_deployments"],
                           ("v1", "Service"): indices["owned_services"],
                           ("policy/v1", "PodDisruptionBudget"): indices["owned_pdbs"]},
                          kube.get, hpas_by_target=indices["hpas_by_target"])
