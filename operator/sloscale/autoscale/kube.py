"""Kubernetes reads and writes the autoscaler loop needs (adapter), a constant number per tick."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sloscale.api.status import merge_conditions
from sloscale.autoscale.actuator import FIELD_MANAGER, DeploymentScaler
from sloscale.autoscale.promql import ServiceKey
from sloscale.autoscale.tick import TickOutcome

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL = "serving.sloscale.io", "v1alpha1", "inferenceservices"
STATUS_RETRIES = 3


class KubeAutoscalerClient:
    """Lists with raw JSON (camelCase, no model objects), writes status with retry on 409."""

    def __init__(self, api_client: Any, namespaces: list[str] | None = None) -> None:
        from kubernetes import client  # heavy import kept out of pure modules

        self._client = client
        self._api_client = api_client
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._hpa = client.AutoscalingV2Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._scaler = DeploymentScaler(api_client)
        self.namespaces = namespaces

    # -- reads ------------------------------------------------------------------------------
    def _items(self, list_all: Any, list_namespaced: Any, **kwargs: Any) -> list[dict[str, Any]]:
        calls = (
            [lambda: list_all(**kwargs, _preload_content=False)]
            if self.namespaces is None
            else [
                lambda ns=ns: list_namespaced(ns, **kwargs, _preload_content=False)
                for ns in self.namespaces
            ]
        )
        items: list[dict[str, Any]] = []
        for call in calls:
            items += json.loads(call().data).get("items", [])
        return items

    def list_inference_services(self) -> list[dict[str, Any]]:
        if self.namespaces is None:
            result = self._custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            return list(result.get("items", []))
        items: list[dict[str, Any]] = []
        for ns in self.namespaces:
            items += self._custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        return items

    def snapshot_workloads(self, service_label: str) -> dict[str, Any]:
        """Pods and Deployments by service, HPAs and ScaledObjects by namespace."""
        pods: dict[ServiceKey, list[dict[str, Any]]] = defaultdict(list)
        for pod in self._items(
            self._core.list_pod_for_all_namespaces,
            self._core.list_namespaced_pod,
            label_selector=service_label,
        ):
            meta = pod["metadata"]
            pods[ServiceKey(meta["namespace"], meta["labels"][service_label])].append(pod)
        deployments = {}
        for dep in self._items(
            self._apps.list_deployment_for_all_namespaces,
            self._apps.list_namespaced_deployment,
            label_selector=service_label,
        ):
            meta = dep["metadata"]
            deployments[ServiceKey(meta["namespace"], meta["labels"][service_label])] = dep
        hpas: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for hpa in self._items(
            self._hpa.list_horizontal_pod_autoscaler_for_all_namespaces,
            self._hpa.list_namespaced_horizontal_pod_autoscaler,
        ):
            hpas[hpa["metadata"]["namespace"]].append(hpa)
        return {
            "pods": pods,
            "deployments": deployments,
            "hpas": hpas,
            "scaled_objects": self._scaled_objects(),
        }

    def _scaled_objects(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        try:
            result = self._custom.list_cluster_custom_object("keda.sh", "v1alpha1", "scaledobjects")
        except self._client.ApiException as err:
            if err.status in (403, 404):  # KEDA not installed (or not ours to read): none
                return found
            raise
        for item in result.get("items", []):
            if self.namespaces is None or item["metadata"]["namespace"] in self.namespaces:
                found[item["metadata"]["namespace"]].append(item)
        return found

    # -- writes -----------------------------------------------------------------------------
    def scale(self, namespace: str, name: str, replicas: int) -> None:
        self._scaler.scale(namespace, name, replicas)

    def event(self, service: dict[str, Any], reason: str, message: str) -> None:
        meta = service["metadata"]
        now = datetime.now(UTC)
        body = self._client.CoreV1Event(
            metadata=self._client.V1ObjectMeta(
                generate_name=f"{meta['name']}.", namespace=meta["namespace"]
            ),
            involved_object=self._client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind="InferenceService",
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
            ),
            reason=reason,
            message=message[:1024],
            type="Normal",
            source=self._client.V1EventSource(component=FIELD_MANAGER),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            self._core.create_namespaced_event(meta["namespace"], body)
        except self._client.ApiException as err:  # an event is best effort, never fatal
            log.warning("could not post event for %s: %s", meta["name"], err.reason)

    def write_status(
        self,
        service: dict[str, Any],
        autoscaling: dict[str, Any],
        outcome: TickOutcome,
        now: float,
    ) -> None:
        """Merge our conditions into the current list; optimistic concurrency, retried on 409."""
        meta = service["metadata"]
        wanted = [(c.type, c.status, c.reason, c.message) for c in outcome.conditions]
        stamp = datetime.fromtimestamp(now, UTC)
        for attempt in range(1, STATUS_RETRIES + 1):
            current = self._custom.get_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"]
            )
            status = current.get("status") or {}
            generation = int(current["metadata"].get("generation", 1))
            conditions = merge_conditions(status.get("conditions") or [], wanted, generation, stamp)
            patch = {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "status": {"autoscaling": autoscaling, "conditions": conditions},
            }
            try:
                self._custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], patch
                )
                return
            except self._client.ApiException as err:
                if err.status != 409 or attempt == STATUS_RETRIES:
                    raise
