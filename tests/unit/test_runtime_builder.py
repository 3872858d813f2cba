"""Building real (tiny) torch models into Triton repositories; bad inputs leave nothing behind."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sloscale_runtime.builder import BuildOptions, build
from sloscale_runtime.errors import BuildError, RuntimeInputError
from sloscale_runtime.loader import parse_factory_ref, parse_shape
from sloscale_runtime.model_config import DynamicBatching, parse_pbtxt

MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)
        def forward(self, x):
            y = self.linear(x)
            return y, (y > 0).to(torch.int64)

    class Refuses(nn.Module):
        def forward(self, x):
            if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
                raise RuntimeError("data-dependent python the tracer cannot follow")
            return x * 2

    class NoisyOnnx(nn.Module):
        def forward(self, x):
            if torch.onnx.is_in_onnx_export():
                raise RuntimeError("op with no ONNX symbolic")
            return x * 2

    class Random(nn.Module):
        def forward(self, x):
            return x + torch.rand(1)

    class Scalar(nn.Module):
        def forward(self, x):
            return x.sum()

    class Embed(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(10, 2)
        def forward(self, ids):
            return self.table(ids)

    def two_heads():
        torch.manual_seed(0)
        return TwoHeads()

    def refuses():
        return Refuses()

    def noisy_onnx():
        return NoisyOnnx()

    def random():
        return Random()

    def scalar():
        return Scalar()

    def embed():
        torch.manual_seed(0)
        return Embed()

    def not_a_module():
        return 42

    def raises():
        raise ValueError("bad weights")
    """
)


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path


def options(models_file: Path, factory: str = "two_heads", **overrides: object) -> BuildOptions:
    fields: dict[str, object] = dict(
        model_ref=f"{models_file}:{factory}", input_shape=(2, 4), name="m",
        out_dir=models_file.parent / "repo",
    )
    fields.update(overrides)
    return BuildOptions(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "files", "backend"),
    [
        ("python", ["1/model.pt", "1/model.py", "config.pbtxt"], "python"),
        ("python-onnx", ["1/model.onnx", "1/model.py", "config.pbtxt"], "python"),
        ("torchscript", ["1/model.pt", "config.pbtxt"], "pytorch"),
        ("onnx", ["1/model.onnx", "config.pbtxt"], "onnxruntime"),
    ],
)
def test_builds_each_format(models_file: Path, fmt: str, files: list[str], backend: str) -> None:
    built = build(options(models_file, format=fmt))
    assert sorted(str(p.relative_to(built)) for p in built.rglob("*") if p.is_file()) == files
    config = parse_pbtxt((built / "config.pbtxt").read_text())
    assert config.backend == backend
    assert [(t.name, t.data_type, t.dims) for t in config.inputs] == [
        ("INPUT__0", "TYPE_FP32", (4,))]
    assert [(t.name, t.data_type, t.dims) for t in config.outputs] == [
        ("OUTPUT__0", "TYPE_FP32", (3,)), ("OUTPUT__1", "TYPE_INT64", (3,))]
    assert sorted(p.name for p in built.parent.iterdir()) == ["m"]  # no staging left


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({}, lambda c: c.dynamic_batching == DynamicBatching((), 100)),
        ({"dynamic_batching": False}, lambda c: c.dynamic_batching is None),
        ({"max_batch_size": 8, "preferred_batch_sizes": (4, 8, 16), "max_queue_delay_us": 500},
         lambda c: c.dynamic_batching == DynamicBatching((4, 8), 500)),
        ({"max_batch_size": 0, "input_shape": (4,)},
         lambda c: c.dynamic_batching is None and c.inputs[0].dims == (4,)),
        ({"gpu": True, "instance_count": 2},
         lambda c: (c.instance_kind, c.instance_count) == ("KIND_GPU", 2)),
        ({"torch_threads": 3}, lambda c: c.parameters == {"torch_num_threads": "3"}),
        ({"format": "torchscript"}, lambda c: c.parameters == {}),
    ],
)
def test_config_settings(models_file: Path, overrides: dict[str, object], check: object) -> None:
    built = build(options(models_file, **overrides))
    assert check(parse_pbtxt((built / "config.pbtxt").read_text()))  # type: ignore[operator]


def test_integer_input_dtype(models_file: Path) -> None:
    built = build(options(models_file, "embed", input_shape=(2, 5), dtype="int64"))
    config = parse_pbtxt((built / "config.pbtxt").read_text())
    assert (config.inputs[0].data_type, config.outputs[0].dims) == ("TYPE_INT64", (5, 2))


@pytest.mark.parametrize(
    ("factory", "overrides", "error", "message"),
    [
        ("two_heads", {"model_ref": "/nonexistent/model.py:f"}, RuntimeInputError,
         "file not found"),
        ("missing", {}, RuntimeInputError, "no callable 'missing'"),
        ("not_a_module", {}, RuntimeInputError, "returned int, not nn.Module"),
        ("raises", {}, BuildError, "bad weights"),
        ("two_heads", {"input_shape": (2, 5)}, BuildError, "fails on the example input"),
        ("two_heads", {"dtype": "bfloat16"}, RuntimeInputError, "unsupported dtype"),
        ("two_heads", {"dtype": "complex64"}, RuntimeInputError, "unsupported dtype"),
        ("refuses", {}, BuildError, "fails to trace"),
        ("noisy_onnx", {"format": "onnx"}, BuildError, "fails to export to ONNX"),
        ("random", {}, BuildError, "differs from eager"),
        ("scalar", {}, BuildError, "no batch dimension"),
        ("two_heads", {"input_shape": (32, 4)}, RuntimeInputError, "exceeds --max-batch-size"),
        ("two_heads", {"name": "../escape"}, RuntimeInputError, "--name"),
        ("two_heads", {"format": "tensorrt"}, RuntimeInputError, "--format"),
        ("two_heads", {"format": "python-onnx", "gpu": True}, RuntimeInputError, "--gpu"),
    ],
)
def test_bad_inputs_fail_clearly_and_leave_nothing(
    models_file: Path, factory: str, overrides: dict[str, object], error: type[Exception],
    message: str,
) -> None:
    opts = options(models_file, factory, **overrides)
    with pytest.raises(error, match=message):
        build(opts)
    leftovers = list(opts.out_dir.iterdir()) if opts.out_dir.exists() else []
    assert leftovers == []


def test_existing_destination_is_not_overwritten(models_file: Path) -> None:
    first = build(options(models_file))
    before = (first / "config.pbtxt").read_text()
    with pytest.raises(RuntimeInputError, match="already exists"):
        build(options(models_file, max_batch_size=4))
    assert (first / "config.pbtxt").read_text() == before


@pytest.mark.parametrize(
    ("text", "expected"), [("1,3,32,32", (1, 3, 32, 32)), ("8", (8,)), (" 2, 4", (2, 4))]
)
def test_parse_shape(text: str, expected: tuple[int, ...]) -> None:
    assert parse_shape(text) == expected


@pytest.mark.parametrize("text", ["", "1,x", "1,0,3", "-1,3"])
def test_parse_shape_rejects(text: str) -> None:
    with pytest.raises(RuntimeInputError, match="--input-shape"):
        parse_shape(text)


@pytest.mark.parametrize("ref", ["model.py", ":f", "model.py:", "model.py:not-ident"])
def test_parse_factory_ref_rejects(ref: str) -> None:
    with pytest.raises(RuntimeInputError, match="--model"):
        parse_factory_ref(ref)
