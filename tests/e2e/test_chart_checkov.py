"""checkov on the rendered chart and on the children the operator renders for every example.

User story: a security reviewer runs checkov on what sloscale deploys; nothing fails, and
each finding left is a decision written down with its reason (skip annotations in the chart,
the table in docs/operating.md for the operator's children).

checkov gives severities only with a Prisma Cloud API key; offline every severity is None,
so every failed check counts as one to fix or to justify.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack import pyenv
from sloscale.api.spec import parse_object
from sloscale.render.contract import load_package_templates
from sloscale.render.renderer import render_children
from sloscale.render.values import DEFAULT_STORAGE_IMAGE, RenderOptions
from tests.e2e.chart_support import EVERYTHING, ROOT, render_text

pytestmark = pytest.mark.e2e
SECTION = "## Security checks (checkov)"


def checkov(manifests: str, folder: Path) -> dict[str, Any]:
    path = folder / "manifests.yaml"
    path.write_text(manifests)
    binary = pyenv.ensure_tool("checkov") / "bin" / "checkov"
    result = subprocess.run(
        [str(binary), "-f", str(path), "--framework", "kubernetes", "-o", "json", "--compact",
         "--skip-download"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: some check failed
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0, "checkov ran no check"
    return dict(report)


def children_of_examples() -> str:
    docs = []
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        for body in yaml.safe_load_all(example.read_text()):
            if not body or body["kind"] != "InferenceService":
                continue
            name = body["metadata"]["name"]
            body["metadata"].update(namespace="demo", uid=f"uid-{name}")
            options = RenderOptions(
                storage_initializer_image=DEFAULT_STORAGE_IMAGE, servicemonitor=True
            )
            docs += render_children(
                name, "demo", f"uid-{name}", parse_object(body), load_package_templates(), options
            )
    return yaml.safe_dump_all(docs)


def documented_findings() -> dict[str, str]:
    """Check id -> reason, from the table of the operator's children's findings."""
    text = (ROOT / "docs" / "operating.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(CKV2?_K8S_\d+)` \| [^|]+ \| ([^|]+) \|$", section, re.MULTILINE)
    return {check: reason.strip() for check, reason in rows}


def test_chart_has_no_failed_check_and_every_skip_says_why(tmp_path: Path) -> None:
    variants = [
        EVERYTHING,
        (*EVERYTHING, "replicaCount=2"),
        ("rbac.namespaced=true", "watchNamespaces={a,b}"),
    ]
    manifests = "\n---\n".join(render_text(*sets) for sets in variants)
    report = checkov(manifests, tmp_path)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    skipped = report["results"]["skipped_checks"]
    assert {c["check_id"] for c in skipped} == {"CKV_K8S_15", "CKV_K8S_38", "CKV_K8S_43"}
    assert all(len(c["check_result"]["suppress_comment"]) > 20 for c in skipped)


def test_operator_children_fail_exactly_the_documented_checks(tmp_path: Path) -> None:
    report = checkov(children_of_examples(), tmp_path)
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    documented = documented_findings()
    assert documented, f"docs/operating.md lacks the table under {SECTION!r}"
    assert failed - set(documented) == set(), "new findings: fix or justify them (docs)"
    assert set(documented) - failed == set(), "docs justify checks that no longer fail"
