"""`sloscale run` refuses a broken template set before it touches any cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloscale.cli import main
from sloscale.render.templates import package_sources


def write_set(folder: Path, overrides: dict[str, str]) -> Path:
    for name, text in {**package_sources(), **overrides}.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--templates", "/does/not/exist"], "/does/not/exist: template directory does not exist"),
        (["--templates-configmap", "no-slash"], "expected NAMESPACE/NAME"),
        (["--templates", ".", "--templates-configmap", "a/b"], "exclude each other"),
    ],
)
def test_bad_template_options_exit_2_with_reason(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *argv]) == 2
    assert message in capsys.readouterr().err


def test_unquoted_user_value_refused_at_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service = package_sources()["service.yaml.j2"].replace(
        "labels: {{ labels | tojson }}", "labels: {app: {{ name }}}")
    folder = write_set(tmp_path, {"service.yaml.j2": service})
    assert main(["run", "--templates", str(folder)]) == 2
    assert "pass every value through `| tojson`" in capsys.readouterr().err


def test_api_retries_never_run_out_and_restart_for_each_request() -> None:
    import itertools

    from sloscale.controller.handlers import ApiBackoffs

    backoffs = ApiBackoffs()
    first = list(itertools.islice(backoffs, 200))
    assert first[:8] == [1, 1, 2, 3, 5, 8, 13, 21] and set(first[8:]) == {30.0}
    assert list(itertools.islice(backoffs, 3)) == [1, 1, 2]  # a fresh sequence per request
