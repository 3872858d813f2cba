"""Policies stay pure: importing them loads no kopf, no Kubernetes client, no HTTP library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("kopf", "kubernetes", "prometheus_api_client", "requests", "urllib3", "aiohttp",
             "httpx", "http.client", "socket")
OPERATOR = Path(__file__).resolve().parents[2] / "operator"


@pytest.mark.parametrize("module", ["base", "slo", "hpa_controller", "hpa", "keda", "kpa",
                                    "registry"])
def test_policy_module_imports_nothing_impure(module: str) -> None:
    code = (f"import sys; import sloscale.autoscale.policies.{module}; "
            f"print(' '.join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(OPERATOR)}, check=True)
    assert result.stdout.strip() == ""
