"""The `sloscale` command: from a clone (bin/sloscale), installed with pip, and in the image."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from sloscale import cli

ROOT = Path(__file__).resolve().parents[2]
# Libraries of the `sim` and `runtime` extras: the operator image carries none of them.
EXTRAS_ONLY = ("numpy", "matplotlib", "scipy", "numba", "torch", "tritonclient", "onnx")


def test_the_operator_imports_nothing_from_the_extras() -> None:
    """What `sloscale run` and `sloscale backtest` load fits in the image's dependencies."""
    code = (
        "import sys\n"
        "import sloscale.controller.run, sloscale.controller.handlers\n"
        "import sloscale.controller.autoscaling, sloscale.controller.peering\n"
        "import sloscale.autoscale.loop, sloscale.autoscale.metrics, sloscale.backtest_cmd\n"
        "import prometheus_api_client\n"
        f"print(sorted(m for m in sys.modules if m.partition('.')[0] in {EXTRAS_ONLY!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}{os.pathsep}{ROOT / 'runtime'}"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=True)
    assert result.stdout.strip() == "[]"


def test_bin_sloscale_runs_this_clone_from_anywhere(tmp_path: Path) -> None:
    """Story: after `make install`, `sloscale ...` works as the README writes it."""
    link = tmp_path / "sloscale"
    link.symlink_to(ROOT / "bin" / "sloscale")  # as in a folder on PATH
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(link), "run", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: sloscale run")


def test_a_missing_extra_is_named_with_its_install_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    command = types.ModuleType("needs_numpy")

    def run(args: argparse.Namespace) -> int:
        raise ModuleNotFoundError("No module named 'numpy'", name="numpy")

    command.add_arguments = lambda parser: None  # type: ignore[attr-defined]
    command.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "needs_numpy", command)
    monkeypatch.setattr(cli, "COMMANDS", {"simulate": ("needs_numpy", "needs numpy")})
    monkeypatch.setattr(cli.importlib.metadata, "requires", lambda name: [
        "kopf==1.45.2", 'numpy==2.4.6; extra == "sim"', 'torch==2.15.0; extra == "runtime"'])
    assert cli.main(["simulate"]) == 2
    assert "pip install 'sloscale[sim]'" in capsys.readouterr().err
    monkeypatch.setattr(cli.importlib.metadata, "requires", lambda name: ["kopf==1.45.2"])
    with pytest.raises(ModuleNotFoundError):  # not an extra's: a real bug, shown as one
        cli.main(["simulate"])
