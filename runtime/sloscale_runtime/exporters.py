"""Write a torch model in one of Triton's formats and check that the written files load and agree.

python      -> model.pt (TorchScript) + model.py (python backend running torch)
python-onnx -> model.onnx + model.py (python backend running onnxruntime: no torch in the
               server's image)
torchscript -> model.pt for the pytorch_libtorch backend
onnx        -> model.onnx for the onnxruntime backend (batch dimension dynamic)
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from sloscale_runtime.errors import BuildError
from sloscale_runtime.model_config import ModelConfig

if TYPE_CHECKING:
    import torch

# The python backend's model.py for each python format: torch or onnxruntime runs the file.
PYTHON_MODEL_SOURCES = {"python": Path(__file__).with_name("python_backend_model.py"),
                        "python-onnx": Path(__file__).with_name("python_onnx_model.py")}
# float32 through a traced graph or onnxruntime reorders sums; these bound that, not bugs.
RTOL = 1e-4
ATOL = 1e-5


def write(
    fmt: str, model: torch.nn.Module, example: torch.Tensor, config: ModelConfig, version_dir: Path
) -> None:
    if fmt in ("python", "torchscript"):
        _trace(model, example).save(str(version_dir / "model.pt"))
    elif fmt in ("onnx", "python-onnx"):
        _export_onnx(model, example, config, version_dir / "model.onnx")
    else:
        raise BuildError(f"unknown format {fmt!r}")
    if fmt in PYTHON_MODEL_SOURCES:
        shutil.copyfile(PYTHON_MODEL_SOURCES[fmt], version_dir / "model.py")


def check_loads(
    fmt: str, version_dir: Path, example: torch.Tensor, expected: list[torch.Tensor]
) -> None:
    """Load what was written, run the example, compare with eager torch within RTOL/ATOL."""
    if fmt in ("onnx", "python-onnx"):
        got = _run_onnx(version_dir / "model.onnx", example)
    else:
        got = _run_torchscript(version_dir / "model.pt", example)
    if len(got) != len(expected):
        raise BuildError(
            f"{version_dir}: written model gives {len(got)} outputs, eager {len(expected)}"
        )
    for index, (actual, wanted) in enumerate(zip(got, expected, strict=True)):
        if not _close(actual, wanted.numpy()):
            raise BuildError(f"{version_dir}: output {index} differs from eager torch")


def _close(actual: object, wanted: object) -> bool:
    import numpy as np

    actual_array, wanted_array = np.asarray(actual), np.asarray(wanted)
    if actual_array.shape != wanted_array.shape:
        return False
    if wanted_array.dtype.kind == "f":
        return bool(np.allclose(actual_array, wanted_array, rtol=RTOL, atol=ATOL))
    return bool(np.array_equal(actual_array, wanted_array))


def _trace(model: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # trace's deprecation notes are not the user's problem
            return torch.jit.trace(model, (example,), check_trace=False)
    except Exception as error:
        raise BuildError(f"model fails to trace with TorchScript: {error}") from error


def _run_torchscript(path: Path, example: torch.Tensor) -> list[object]:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jit.load's deprecation note: same story as trace
            loaded = torch.jit.load(str(path), map_location="cpu").eval()
        with torch.inference_mode():
            result = loaded(example)
    except Exception as error:
        raise BuildError(f"{path}: written TorchScript does not load or run: {error}") from error
    outputs = result if isinstance(result, tuple | list) else (result,)
    return [o.numpy() for o in outputs]


def _export_onnx(
    model: torch.nn.Module, example: torch.Tensor, config: ModelConfig, path: Path
) -> None:
    import torch

    input_names = [t.name for t in config.inputs]
    output_names = [t.name for t in config.outputs]
    axes = {n: {0: "batch"} for n in input_names + output_names} if config.max_batch_size else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(path), input_names=input_names,
                output_names=output_names, dynamic_axes=axes, dynamo=False,
            )
    except Exception as error:
        raise BuildError(f"model fails to export to ONNX: {error}") from error


def _run_onnx(path: Path, example: torch.Tensor) -> list[object]:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return list(session.run(None, {name: example.numpy()}))
    except Exception as error:
        raise BuildError(f"{path}: written ONNX model does not load or run: {error}") from error
