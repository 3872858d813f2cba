"""Kubernetes reads and writes the autoscaler loop needs (adapter), a constant number per tick.

The listing and the informers are the autoscaler's own; the writes go through the shared
adapter (sloscale.kube): its client, its Events and its status write with conflict retry.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from fnmatch import fnmatch
from functools import partial
from typing import Any

from sloscale.api import AUTOSCALER_FIELD_MANAGER, GROUP, PLURAL, VERSION
from sloscale.api.status import merge_conditions
from sloscale.autoscale import actuator
from sloscale.autoscale.informer import READ_TIMEOUT_S, WATCH_S, Informer, list_all
from sloscale.autoscale.promql import ServiceKey
from sloscale.autoscale.replicas import census_fields, replicas_fields
from sloscale.autoscale.tick import TickOutcome
from sloscale.kube.client import Kube
from sloscale.kube.status import write_status

log = logging.getLogger(__name__)
LIST_PAGE = 500


class KubeAutoscalerClient:
    """Lists with raw JSON (camelCase, no model objects), writes status with retry on 409."""

    def __init__(self, kube: Kube, namespaces: list[str] | None = None,
                 services: Callable[[], list[dict[str, Any]]] | None = None,
                 deployments: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        """`services`, `deployments`: the InferenceServices and their Deployments as the
        operator's own watches keep them (else listed per tick, or followed by an informer
        of the loop's own: a second watch of the same Deployments)."""
        from kubernetes import client  # heavy import kept out of pure modules

        self._client = client
        self._kube = kube
        self._core = client.CoreV1Api(kube.api_client)
        self._apps = client.AppsV1Api(kube.api_client)
        self._hpa = client.AutoscalingV2Api(kube.api_client)
        self._custom = client.CustomObjectsApi(kube.api_client)
        self.namespaces = namespaces
        self._informers: dict[str, list[Informer]] = {}
        self._services = services
        self._deployments = deployments

    # -- reads ------------------------------------------------------------------------------
    def _exact_namespaces(self) -> list[str] | None:
        """Namespaces to list one by one, or None to list cluster-wide (all, or globs)."""
        if self.namespaces is None or any(set(ns) & set("*?[") for ns in self.namespaces):
            return None
        return self.namespaces

    def _watched(self, item: dict[str, Any]) -> bool:
        namespace = item["metadata"].get("namespace", "")
        return self.namespaces is None or any(fnmatch(namespace, p) for p in self.namespaces)

    def _items(self, list_all_ns: Any, list_namespaced: Any, keep: Any = None,
               **kwargs: Any) -> list[dict[str, Any]]:
        """Every watched item, read in pages; `keep` reduces each item to what is used."""
        exact = self._exact_namespaces()
        calls = [list_all_ns] if exact is None else [partial(list_namespaced, ns) for ns in exact]
        items = []
        for call in calls:
            found, _ = list_all(partial(_list_page, call, **kwargs), keep)
            items += [item for item in found if self._watched(item)]
        return items

    # -- informers: pods and Deployments from watches ------------------------------------
    def start_informers(self, service_label: str) -> None:
        """Follow pods and Deployments by watch from now on (snapshot_workloads reads them)."""
        kinds = {"pods": (self._core.list_pod_for_all_namespaces, self._core.list_namespaced_pod,
                          census_fields),
                 "deployments": (self._apps.list_deployment_for_all_namespaces,
                                 self._apps.list_namespaced_deployment, replicas_fields)}
        if self._deployments is not None:
            del kinds["deployments"]  # kopf already watches them
        exact = self._exact_namespaces()
        for kind, (list_all_ns, list_namespaced, keep) in kinds.items():
            calls = ([(kind, list_all_ns)] if exact is None else
                     [(f"{kind}/{ns}", partial(list_namespaced, ns)) for ns in exact])
            self._informers[kind] = [
                Informer(name, partial(_list_page, call, label_selector=service_label),
                         partial(_watch_lines, call, service_label), keep).start()
                for name, call in calls]

    def stop_informers(self) -> None:
        for informers in self._informers.values():
            for informer in informers:
                informer.stop()

    def _informed(self, kind: str) -> list[dict[str, Any]] | None:
        """The kind's watched items from its informers; None when any is out of sync."""
        informers = self._informers.get(kind)
        if not informers:  # not started (the loop's tests, a client used only to list)
            return None
        items = []
        for informer in informers:
            found = informer.items()
            if found is None:
                return None
            items += [item for item in found if self._watched(item)]
        return items

    def _current(self, kind: str, list_all_ns: Any, list_namespaced: Any, keep: Any,
                 selector: str) -> list[dict[str, Any]]:
        """From the kind's informers when in sync, else listed now."""
        informed = self._informed(kind)
        if informed is not None:
            return informed
        return self._items(list_all_ns, list_namespaced, keep=keep, label_selector=selector)

    def _current_deployments(self, service_label: str) -> list[dict[str, Any]]:
        if self._deployments is None:
            return self._current("deployments", self._apps.list_deployment_for_all_namespaces,
                                 self._apps.list_namespaced_deployment, replicas_fields,
                                 service_label)
        return [replicas_fields(dep) for dep in self._deployments()
                if service_label in (dep["metadata"].get("labels") or {}) and self._watched(dep)]

    def list_inference_services(self) -> list[dict[str, Any]]:
        if self._services is not None:
            return [item for item in self._services() if self._watched(item)]
        return self._items(
            lambda **kw: self._custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kw),
            lambda ns, **kw: self._custom.list_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, **kw))

    def snapshot_workloads(self, service_label: str) -> dict[str, Any]:
        """Pods and Deployments by service, HPAs and ScaledObjects by namespace."""
        pods: dict[ServiceKey, list[dict[str, Any]]] = defaultdict(list)
        for pod in self._current("pods", self._core.list_pod_for_all_namespaces,
                                 self._core.list_namespaced_pod, census_fields, service_label):
            meta = pod["metadata"]
            pods[ServiceKey(meta["namespace"], meta["labels"][service_label])].append(pod)
        deployments = {}
        for dep in self._current_deployments(service_label):
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
        api = ("keda.sh", "v1alpha1")
        exact = self._exact_namespaces()  # a namespaced install may not list cluster-wide
        try:
            if exact is None:
                items = self._custom.list_cluster_custom_object(*api, "scaledobjects")["items"]
            else:
                items = [
                    item
                    for ns in exact
                    for item in self._custom.list_namespaced_custom_object(
                        *api, ns, "scaledobjects"
                    )["items"]
                ]
        except self._client.ApiException as err:
            if err.status == 403:
                log.warning("may not list KEDA ScaledObjects: conflicts with KEDA go unseen")
            if err.status in (403, 404):  # KEDA not installed (or not ours to read): none
                return found
            raise
        for item in items:
            if self._watched(item):
                found[item["metadata"]["namespace"]].append(item)
        return found

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._kube.config_map(namespace, name)

    def newest(self, service: dict[str, Any]) -> dict[str, Any]:
        return self._kube.newest(service)

    # -- writes -----------------------------------------------------------------------------
    def scale(self, namespace: str, name: str, replicas: int) -> None:
        actuator.scale(self._kube, namespace, name, replicas)

    def event(self, service: dict[str, Any], reason: str, message: str) -> None:
        self._kube.post_event(service, "Normal", reason, message, AUTOSCALER_FIELD_MANAGER)

    def write_status(
        self,
        service: dict[str, Any],
        autoscaling: dict[str, Any],
        outcome: TickOutcome,
        now: float,
    ) -> None:
        """Merge our conditions into the status; optimistic concurrency, retried on 409."""
        wanted = [(c.type, c.status, c.reason, c.message) for c in outcome.conditions]
        stamp = datetime.fromtimestamp(now, UTC)

        def compute(current: dict[str, Any]) -> dict[str, Any]:
            status = current.get("status") or {}
            generation = int(current["metadata"].get("generation", 1))
            conditions = merge_conditions(status.get("conditions") or [], wanted, generation,
                                          stamp)
            return {"autoscaling": autoscaling, "conditions": conditions}

        write_status(self._kube, service, compute)


def _list_page(call: Any, token: str | None, **kwargs: Any) -> dict[str, Any]:
    response = call(**kwargs, limit=LIST_PAGE, _continue=token, _preload_content=False)
    return dict(json.loads(response.data))


def _watch_lines(call: Any, selector: str, resource_version: str) -> Iterator[str]:
    """The lines of one watch from `resource_version`, until the server ends it."""
    from kubernetes.watch.watch import iter_resp_lines

    response = call(label_selector=selector, watch=True, resource_version=resource_version,
                    allow_watch_bookmarks=True, timeout_seconds=WATCH_S,
                    _preload_content=False, _request_timeout=(10, READ_TIMEOUT_S))
    try:
        yield from iter_resp_lines(response)
    finally:
        response.release_conn()
