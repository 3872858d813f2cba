"""Kubernetes scale writes (adapter): the Deployment's replicas under the autoscaler's own manager.

Server-side apply with field manager `sloscale-autoscaler` makes the autoscaler the owner of
exactly one field, `spec.replicas`; the operator's `sloscale` manager never applies it while
autoscaling is on, and a user's GitOps manifest (the InferenceService) never contains it.
"""

from __future__ import annotations

import json
from typing import Any

FIELD_MANAGER = "sloscale-autoscaler"


def replicas_apply_body(namespace: str, name: str, replicas: int) -> dict[str, Any]:
    """The apply configuration: only the field this manager owns."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas},
    }


class DeploymentScaler:
    """Writes replicas with server-side apply; `force` takes the field from a manual scale."""

    def __init__(self, api_client: Any) -> None:
        self._api_client = api_client

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        body = replicas_apply_body(namespace, name, replicas)
        # The generated client has no typed apply; call the endpoint with the apply patch type.
        self._api_client.call_api(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "PATCH",
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            header_params={
                "Content-Type": "application/apply-patch+yaml",
                "Accept": "application/json",
            },
            body=json.dumps(body),
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
        )
