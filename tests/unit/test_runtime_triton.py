"""Pure parts of the local Triton launcher: command line, backend folder, env, log summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloscale_runtime.errors import TritonError
from sloscale_runtime.triton import (
    Ports,
    error_summary,
    find_triton_home,
    prepare_backends,
    server_command,
    server_env,
)

PORTS = Ports(8000, 8001, 8002)


def test_command_binds_loopback_and_turns_summaries_on() -> None:
    command = server_command(Path("/t/bin/tritonserver"), Path("/repo"), Path("/b"), PORTS)
    assert command[0] == "/t/bin/tritonserver"
    for flag in ("--model-repository=/repo", "--backend-directory=/b",
                 "--http-address=127.0.0.1", "--http-port=8000", "--grpc-address=127.0.0.1",
                 "--grpc-port=8001", "--metrics-address=127.0.0.1", "--metrics-port=8002",
                 "--metrics-config=summary_latencies=true"):
        assert flag in command


def test_a_trace_file_comes_with_tracing_off() -> None:
    plain = server_command(Path("/t/bin/tritonserver"), Path("/repo"), Path("/b"), PORTS)
    traced = server_command(Path("/t/bin/tritonserver"), Path("/repo"), Path("/b"), PORTS,
                            trace_file=Path("/w/trace.json"))
    assert not any(flag.startswith("--trace-config") for flag in plain)
    assert traced[:len(plain)] == plain
    assert {"--trace-config=triton,file=/w/trace.json", "--trace-config=level=OFF"} <= set(traced)


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [("http_url", "127.0.0.1:8000"), ("grpc_url", "127.0.0.1:8001"),
     ("metrics_url", "http://127.0.0.1:8002/metrics")],
)
def test_ports_urls(attribute: str, expected: str) -> None:
    assert getattr(PORTS, attribute) == expected


def fake_wheel(root: Path, versions: list[str]) -> Path:
    home = root / "pytriton" / "tritonserver"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "tritonserver").write_text("")
    (home / "backends" / "python").mkdir(parents=True)
    (home / "backends" / "python" / "libtriton_python.so").write_text("")
    (home / "backends" / "python" / "triton_python_backend_utils.py").write_text("")
    for version in versions:
        stub_dir = home / "python_backend_stubs" / version
        stub_dir.mkdir(parents=True)
        (stub_dir / "triton_python_backend_stub").write_text(version)
    return home


def test_backend_folder_links_the_stub_of_this_python(tmp_path: Path) -> None:
    home = fake_wheel(tmp_path / "wheel", ["3.10", "3.11"])
    backends = prepare_backends(home, tmp_path / "work", "3.11")
    python_dir = backends / "python"
    assert sorted(p.name for p in python_dir.iterdir()) == [
        "libtriton_python.so", "triton_python_backend_stub", "triton_python_backend_utils.py"]
    assert (python_dir / "triton_python_backend_stub").read_text() == "3.11"
    assert prepare_backends(home, tmp_path / "work", "3.11") == backends  # idempotent


def test_missing_stub_is_named(tmp_path: Path) -> None:
    home = fake_wheel(tmp_path / "wheel", ["3.10"])
    with pytest.raises(TritonError, match="no python backend stub for Python 3.11"):
        prepare_backends(home, tmp_path / "work", "3.11")


def test_missing_binary_says_how_to_install(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOSCALE_TRITON_HOME", str(tmp_path))
    with pytest.raises(TritonError, match="make install"):
        find_triton_home()


def test_home_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = fake_wheel(tmp_path, [])
    monkeypatch.setenv("SLOSCALE_TRITON_HOME", str(home))
    assert find_triton_home() == home


def test_env_points_the_stub_at_this_interpreter() -> None:
    env = server_env({"PYTHONPATH": "/mine", "LD_LIBRARY_PATH": "/libs"})
    assert env["PYTHONPATH"].endswith(":/mine") and "site-packages" in env["PYTHONPATH"]
    assert env["LD_LIBRARY_PATH"].endswith(":/libs")
    assert env["PYTHONHOME"]


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("I1122 fine\nE1122 07:00 model failed: xyz\n| table |\nerror: creating server",
         "E1122 07:00 model failed: xyz\nerror: creating server"),
        ("I1 a\nI2 b\nI3 c", "I2 b\nI3 c"),
        ("Everything ok\nEnd", "Everything ok\nEnd"),
    ],
)
def test_error_summary(log: str, expected: str) -> None:
    assert error_summary(log, max_lines=2) == expected
