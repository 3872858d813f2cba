"""e2e property: what validation accepts, the API server accepts, children included (issue 8).

For a seeded sample of generated specs, admission (CRD schema + CEL) and the operator's own
validation agree, and every child the operator would render passes a server-side dry run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from kubernetes import config

from hack.localcluster.cluster import LocalCluster
from sloscale.api.spec import SpecError, parse_spec
from sloscale.kube.client import Kube
from sloscale.kube.errors import ApplyError
from sloscale.render.renderer import render_children
from sloscale.render.templates import compile_templates, package_sources
from sloscale.render.values import RenderOptions
from tests.e2e.operator_process import install_api
from tests.spec_strategies import specs

pytestmark = pytest.mark.e2e
NS = "e2e-render-dry-run"
TEMPLATES = compile_templates(package_sources(), "package")


def dry_run(kube: Kube, manifest: dict[str, Any]) -> str | None:
    """The server's refusal, or None. Sent by the operator's own adapter, so what is tested is
    what the operator sends (kubectl re-encodes, and the API server refuses e.g. a raw DEL)."""
    try:
        kube.apply(manifest, dry_run=True)
    except ApplyError as error:
        return str(error)
    return None


@pytest.fixture(scope="module")
def kube(cluster: LocalCluster) -> Kube:
    install_api(cluster, NS)
    cluster.kubectl("apply", "--server-side", "-f",
                    str(Path(__file__).parent / "servicemonitor-crd.yaml"))
    return Kube(config.new_client_from_config(config_file=str(cluster.kubeconfig)))


@settings(max_examples=25, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=specs())
def test_validation_and_admission_agree_and_children_pass_dry_run(
        kube: Kube, raw: dict[str, Any]) -> None:
    isvc = {"apiVersion": "serving.sloscale.io/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": "generated", "namespace": NS}, "spec": raw}
    refused = dry_run(kube, isvc)
    try:
        spec = parse_spec(raw)
    except SpecError as error:
        assert refused, f"admitted what the operator calls invalid: {error.problems}"
        return
    assert refused is None, "operator accepts what admission refuses"
    children = render_children("generated", NS, "00000000-0000-0000-0000-000000000000", spec,
                               TEMPLATES, RenderOptions(servicemonitor=True))
    assert [dry_run(kube, child) for child in children] == [None] * len(children)
