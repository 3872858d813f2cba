"""`sloscale simulate`: the JSON document other work relies on, the table, the plot, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sloscale.autoscale.policies import POLICY_NAMES
from sloscale.cli import main


@pytest.fixture
def trace_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rate = np.where(np.arange(600) < 300, 60.0, 240.0)  # a step up half way
    times = np.concatenate([s + np.sort(rng.random(rng.poisson(r))) for s, r in enumerate(rate)])
    path = tmp_path / "step.csv"
    path.write_text("timestamp,input_tokens,output_tokens\n"
                    + "".join(f"{t:.4f},10,20\n" for t in times))
    return path


def test_json_document(trace_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                       ) -> None:
    plot = tmp_path / "out.png"
    code = main(["simulate", "--trace", str(trace_csv), "--policy", "all", "--slo-ms", "150",
                 "--percentile", "95", "--cold-start-s", "30", "--json", "--plot", str(plot),
                 "--seed", "3", "--max-replicas", "60", "--min-replicas", "1"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["trace"]["requests"] > 80000
    assert document["oracle"]["replica_hours"] > 0
    assert set(document["policies"]) == set(POLICY_NAMES)
    for row in document["policies"].values():
        for key in ("requests_within_slo", "windows_meeting_objective"):
            assert 0.0 <= row[key] <= 1.0
        assert row["replica_hours_vs_oracle"] == pytest.approx(
            row["replica_hours"] / document["oracle"]["replica_hours"])
        assert isinstance(row["scaling_actions"], int) and isinstance(row["rejected"], int)
    assert plot.stat().st_size > 10000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_table_for_one_policy(trace_csv: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--trace", str(trace_csv), "--policy", "slo", "--service-ms-base",
                 "20", "--service-ms-per-item", "10", "--max-batch", "4",
                 "--max-queue-delay-ms", "2", "--plot", str(tmp_path / "t.png")])
    out = capsys.readouterr().out
    assert code == 0
    assert "slo" in out and "oracle" in out and "hpa" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "/nonexistent.csv"], "/nonexistent.csv: no such trace file"),
        (["--rate-scale", "0"], "--rate-scale"),
        (["--max-batch", "0"], "--max-batch"),
        (["--batch-time-cv", "-0.1"], "--batch-time-cv"),
        (["--batch-time-tau-ms", "-5"], "--batch-time-tau-ms"),
        (["--slo-ms", "10"], "below the service time"),
    ],
)
def test_bad_input_names_the_field(trace_csv: Path, args: list[str], message: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--trace", str(trace_csv), *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_batch_time_cv_reaches_the_service_and_drops_the_bound(
        trace_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The bound's proof needs every batch to take at least the line; a spread breaks that.
    documents = []
    for cv in ("0", "0.3"):
        argv = ["simulate", "--trace", str(trace_csv), "--policy", "slo", "--json",
                "--batch-time-cv", cv, "--plot", str(tmp_path / f"{cv}.png")]
        assert main(argv) == 0
        documents.append(json.loads(capsys.readouterr().out))
    line, spread = documents
    assert line["lower_bound"]["replica_hours"] > 0 and spread["lower_bound"] is None
    assert spread["policies"]["slo"] != line["policies"]["slo"]


def test_batch_time_tau_reaches_the_service(trace_csv: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    documents = []
    for tau_ms in ("0", "200"):
        argv = ["simulate", "--trace", str(trace_csv), "--policy", "slo", "--json",
                "--batch-time-cv", "0.3", "--batch-time-tau-ms", tau_ms,
                "--plot", str(tmp_path / f"{tau_ms}.png")]
        assert main(argv) == 0
        documents.append(json.loads(capsys.readouterr().out))
    independent, spells = documents
    assert spells["policies"]["slo"] != independent["policies"]["slo"]
