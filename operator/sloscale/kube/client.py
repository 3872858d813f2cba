"""The Kubernetes client both sides use: apply, reads, status patches, Events, ConfigMaps.

Every call returns plain data (dicts, or None for "not there"), never the client's models.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from sloscale.api import FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION
from sloscale.flowyaml import flow_yaml
from sloscale.kube.errors import ApplyError, StatusConflict
from sloscale.kube.status import WrittenStatuses
from sloscale.kube.watched import WatchedObjects, objects_in

log = logging.getLogger(__name__)
CRD_CACHE_S = 60.0
CONNECTIONS = 32
REPAIR_FIELD_MANAGER = f"{FIELD_MANAGER}-repair"
USER_AGENT = "sloscale"


def load_config() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the current KUBECONFIG."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    settings = client.Configuration.get_default_copy()
    # One connection per handler thread plus the autoscaler's writers; the default pool of
    # 10 made urllib3 discard and reopen TLS connections under a burst.
    settings.connection_pool_maxsize = CONNECTIONS
    api_client = client.ApiClient(settings)
    # Named in the API server's audit log, apart from other clients of the same credentials.
    api_client.user_agent = USER_AGENT
    return api_client


def _server_message(error: ApiException, manifest: dict[str, Any]) -> str:
    what = f"{manifest['kind']} {manifest['metadata']['name']}"
    try:
        return f"{what}: {json.loads(error.body)['message']}"
    except (TypeError, ValueError, KeyError):
        return f"{what}: {error.status} {error.reason}"


def _json(response: Any) -> dict[str, Any]:
    """A response body as plain data. The dynamic client's own ResourceInstance wraps every
    nested field in an object and converts it back in to_dict(): several times the cost of
    parsing, for each of the reconcile's reads and applies."""
    return dict(json.loads(response.data))


class Kube:
    """The calls the controller and the autoscaler make, each returning plain data."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api_client = api_client or load_config()
        self.dynamic = DynamicClient(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.extensions = client.ApiextensionsV1Api(self.api_client)
        self._crd_seen: dict[str, tuple[float, bool]] = {}
        # Set once the operator's watches run (controller/indexes.py); until then, GETs.
        self.watched: WatchedObjects | None = None
        self._written = WrittenStatuses()  # our status writes' answers, for `newest`

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self._resource(api_version, kind).get(name=name, namespace=namespace,
                                                          serialize=False)
        except (NotFoundError, ResourceNotFoundError):
            return None
        return _json(found)

    def observed(self, api_version: str, kind: str, namespace: str,
                 name: str) -> dict[str, Any] | None:
        """A child as the watch last saw it (kube/watched.py), or read now where none does."""
        if self.watched is None:
            return self.get(api_version, kind, namespace, name)
        return self.watched.child(api_version, kind, namespace, name)

    def hpas_near(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        """The HPAs the watch saw aiming at `deployment`; where no watch runs, every HPA in
        the namespace (callers pick by scaleTargetRef, autoscale/conflicts.py)."""
        if self.watched is not None and self.watched.hpas_by_target is not None:
            return objects_in(self.watched.hpas_by_target, namespace, deployment)
        found = self._resource("autoscaling/v2", "HorizontalPodAutoscaler").get(
            namespace=namespace, serialize=False)
        return list(_json(found).get("items") or [])

    def apply(self, manifest: dict[str, Any], field_manager: str = FIELD_MANAGER,
              dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply under our field manager; forced so hand edits are put back."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        try:
            # Our own serialisation, not the client's json.dumps: the API server reads an apply
            # body as YAML, which refuses JSON's surrogate-pair escapes of non-BMP characters
            # (an emoji in an env value); flow_yaml writes them as YAML's \U escapes instead.
            applied = self.dynamic.request(
                "patch", resource.path(name=meta["name"], namespace=meta.get("namespace")),
                body=flow_yaml(manifest), content_type="application/apply-patch+yaml",
                field_manager=field_manager, force_conflicts=True,
                dry_run="All" if dry_run else None, serialize=False,
            )
        except ApiException as error:
            # Any refusal, 4xx or the 500 some type errors get, is reported and retried
            # with backoff by the caller.
            raise ApplyError(_server_message(error, manifest), error.status) from error
        return _json(applied)

    def merge_patch(self, manifest: dict[str, Any], patch: dict[str, Any]) -> None:
        """A JSON merge patch of the child `manifest` names, under a manager of its own so
        that the `sloscale` manager stays an apply-only owner."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        try:
            self.dynamic.patch(resource, body=patch, name=meta["name"],
                               namespace=meta["namespace"],
                               content_type="application/merge-patch+json",
                               field_manager=REPAIR_FIELD_MANAGER)
        except ApiException as error:
            raise ApplyError(_server_message(error, manifest), error.status) from error

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        with contextlib.suppress(NotFoundError, ResourceNotFoundError):
            self._resource(api_version, kind).delete(name=name, namespace=namespace)

    def secret_exists(self, namespace: str, name: str) -> bool:
        """False only when the Secret is known to be missing.

        A cluster-wide install may not read Secrets at all (least privilege): then the check
        is skipped and a missing Secret shows up as the pods' CreateContainerConfigError.
        """
        try:
            self.core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            if error.status == 403:
                log.debug("may not read Secret %s/%s: not checked", namespace, name)
                return True
            raise
        return True

    def crd_exists(self, name: str) -> bool:
        """Whether a CRD is installed, cached for a minute (checked on every reconcile)."""
        seen_at, exists = self._crd_seen.get(name, (-CRD_CACHE_S, False))
        if time.monotonic() - seen_at < CRD_CACHE_S:
            return exists
        try:
            self.extensions.read_custom_resource_definition(name)
            exists = True
        except ApiException as error:
            if error.status != 404:
                raise
            exists = False
        self._crd_seen[name] = (time.monotonic(), exists)
        return exists

    def get_inferenceservice(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                             name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(found)

    def patch_status(self, namespace: str, name: str, status: dict[str, Any],
                     resource_version: str | None = None) -> None:
        """Merge-patch the status; with a resourceVersion, a newer object is a StatusConflict."""
        patch: dict[str, Any] = {"status": status}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}
        try:
            answer = self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, patch
            )
        except ApiException as error:
            if error.status == 409:
                raise StatusConflict(f"{namespace}/{name}: {error.reason}") from error
            if error.status != 404:  # deleted meanwhile: nothing to report on
                raise
            return
        self._written.remember(namespace, name, answer)

    def newest(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` (a watched version, which may not have seen our last status write yet) with
        that write's answer in it where the answer is newer (WrittenStatuses)."""
        return self._written.newest(body)

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's data; None when there is no such ConfigMap."""
        try:
            found = self.core.read_namespaced_config_map(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(found.data or {})

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str,
                   component: str) -> None:
        """An Event on the InferenceService `involved`; best effort: a refusal is logged."""
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
                               "name": meta["name"], "namespace": meta["namespace"],
                               "uid": meta.get("uid")},
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(meta["namespace"], body)
        except ApiException as error:  # an Event is best effort, never fatal
            log.warning("could not post event %s for %s: %s", reason, meta["name"], error.reason)
