"""The CRD: generated from the schema, current on disk, structural and documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sloscale.api.crd import CRD_FILE, build_crd, crd_text, main

ROOT = Path(__file__).resolve().parents[2]


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, schema)]
    for name, prop in schema.get("properties", {}).items():
        nodes += walk(prop, f"{path}.{name}")
    if "items" in schema:
        nodes += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        nodes += walk(schema["additionalProperties"], f"{path}{{}}")
    return nodes


def openapi() -> dict[str, Any]:
    return build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_checked_in_crd_is_current() -> None:
    on_disk = (ROOT / "crds" / CRD_FILE).read_text()
    assert on_disk == crd_text(), "crds/ is stale: run `make crds`"


def test_check_mode_fails_on_stale_file(tmp_path: Path) -> None:
    (tmp_path / CRD_FILE).write_text("stale")
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0


def test_every_property_has_a_description() -> None:
    missing = [path for path, node in walk(openapi())
               if path not in ("", ".metadata") and not path.endswith(("{}", "[]"))
               and not node.get("description")]
    assert missing == []


def test_schema_is_structural() -> None:
    untyped = [path for path, node in walk(openapi())
               if "type" not in node and not node.get("x-kubernetes-int-or-string")]
    assert untyped == []


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (".spec.autoscaling", "self.minReplicas <= self.maxReplicas"),
        (".spec.autoscaling", "has(self.objective)"),
        (".spec.model", "self.storageUri.matches("),
        (".spec.autoscaling.capacityProfile",
         "has(self.maxRpsPerReplica) != has(self.configMapRef)"),
        (".spec.autoscaling.objective", "self.window.matches("),
    ],
)
def test_cel_rules_are_rendered(path: str, fragment: str) -> None:
    node = dict(walk(openapi()))[path]
    rules = [entry["rule"] for entry in node.get("x-kubernetes-validations", [])]
    assert any(fragment in rule for rule in rules), rules


def test_subresources_names_and_columns() -> None:
    crd = build_crd()
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "isvc" not in crd["spec"]["names"]["shortNames"]
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns[:3] == ["Ready", "Ready-Pods", "Desired"] and columns[-1] == "Age"
    assert yaml.safe_load(crd_text()) == crd
