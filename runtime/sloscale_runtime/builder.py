"""Build a Triton model repository from a torch model: probe, trace or export, write, verify.

Everything is written under a temporary folder beside the destination and renamed into place
only when the written model has been parsed back and loaded, so a failed build never leaves a
half-written repository behind.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sloscale_runtime import exporters
from sloscale_runtime.dtypes import DType, from_torch_name
from sloscale_runtime.errors import BuildError, RuntimeInputError
from sloscale_runtime.loader import example_input, load_model
from sloscale_runtime.model_config import (
    DynamicBatching,
    ModelConfig,
    TensorSpec,
    check_name,
    parse_pbtxt,
    to_pbtxt,
)

if TYPE_CHECKING:
    import torch

FORMATS = {"python": "python", "python-onnx": "python", "torchscript": "pytorch",
           "onnx": "onnxruntime"}
VERSION = "1"


@dataclass(frozen=True)
class BuildOptions:
    model_ref: str  # FILE.py:FACTORY
    input_shape: tuple[int, ...]  # the example's shape, batch dimension first when batching
    name: str
    out_dir: Path
    dtype: str = "float32"
    format: str = "python"
    max_batch_size: int = 16
    dynamic_batching: bool = True
    # No preferred sizes and a short delay: Triton batches whatever is queued when the model
    # frees up, so light load pays (almost) no wait and heavy load gets large batches.
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 100
    gpu: bool = False
    instance_count: int = 1
    torch_threads: int = 1  # python formats: torch (onnxruntime) threads per model instance


def input_name(index: int) -> str:
    # Triton's pytorch backend maps tensors by this naming convention; we use it everywhere.
    return f"INPUT__{index}"


def output_name(index: int) -> str:
    return f"OUTPUT__{index}"


def make_config(
    options: BuildOptions, input_dtype: DType, outputs: list[tuple[DType, tuple[int, ...]]]
) -> ModelConfig:
    """The config.pbtxt for a probed model; shapes here are full (batch first when batching)."""
    batching = options.max_batch_size > 0

    def dims(shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape[1:] if batching else shape

    dynamic = None
    if batching and options.dynamic_batching:
        sizes = tuple(s for s in options.preferred_batch_sizes if s <= options.max_batch_size)
        dynamic = DynamicBatching(sizes, options.max_queue_delay_us)
    parameters = {}
    if options.format == "python":
        parameters["torch_num_threads"] = str(options.torch_threads)
    elif options.format == "python-onnx":
        parameters["onnx_num_threads"] = str(options.torch_threads)
    return ModelConfig(
        name=options.name,
        backend=FORMATS[options.format],
        max_batch_size=options.max_batch_size,
        inputs=(TensorSpec(input_name(0), input_dtype.config_name, dims(options.input_shape)),),
        outputs=tuple(
            TensorSpec(output_name(i), dtype.config_name, dims(shape))
            for i, (dtype, shape) in enumerate(outputs)
        ),
        dynamic_batching=dynamic,
        instance_kind="KIND_GPU" if options.gpu else "KIND_CPU",
        instance_count=options.instance_count,
        parameters=parameters,
    )


def check_options(options: BuildOptions) -> DType:
    check_name(options.name, field_name="--name")
    if options.format not in FORMATS:
        raise RuntimeInputError(f"--format: {options.format!r} not one of {sorted(FORMATS)}")
    if options.gpu and options.format == "python-onnx":
        raise RuntimeInputError("--gpu: the python-onnx format runs onnxruntime on the CPU")
    if options.max_batch_size < 0:
        raise RuntimeInputError("--max-batch-size: must be >= 0")
    if options.max_batch_size > 0 and options.input_shape[0] > options.max_batch_size:
        raise RuntimeInputError(
            f"--input-shape: batch dimension {options.input_shape[0]} exceeds "
            f"--max-batch-size {options.max_batch_size}"
        )
    if (options.out_dir / options.name).exists():
        raise RuntimeInputError(f"--out: {options.out_dir / options.name} already exists")
    return from_torch_name(options.dtype, field="--dtype")


def probe(
    model: torch.nn.Module, example: torch.Tensor, batching: bool
) -> tuple[list[torch.Tensor], list[tuple[DType, tuple[int, ...]]]]:
    """Run the example through the model eagerly; describe each output tensor."""
    import torch

    try:
        with torch.inference_mode():
            result = model(example)
    except Exception as error:
        raise BuildError(
            f"model fails on the example input (shape {tuple(example.shape)}, "
            f"dtype {example.dtype}): {error}"
        ) from error
    tensors = list(result) if isinstance(result, tuple | list) else [result]
    described = []
    for index, tensor in enumerate(tensors):
        if not isinstance(tensor, torch.Tensor):
            raise BuildError(f"output {index} is {type(tensor).__name__}, not a tensor")
        dtype = from_torch_name(str(tensor.dtype), field=f"output {index} dtype")
        if batching and (tensor.dim() == 0 or tensor.shape[0] != example.shape[0]):
            raise BuildError(
                f"output {index} shape {tuple(tensor.shape)} has no batch dimension matching the "
                f"input's {example.shape[0]}; pass --max-batch-size 0 for an unbatched model"
            )
        described.append((dtype, tuple(tensor.shape)))
    return tensors, described


def build(options: BuildOptions) -> Path:
    """Build the repository entry `<out>/<name>/` and return its path."""
    input_dtype = check_options(options)
    model = load_model(options.model_ref)
    example = example_input(options.input_shape, input_dtype)
    expected, outputs = probe(model, example, options.max_batch_size > 0)
    config = make_config(options, input_dtype, outputs)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{options.name}.building-", dir=options.out_dir))
    try:
        model_dir = staging / options.name
        (model_dir / VERSION).mkdir(parents=True)
        exporters.write(options.format, model, example, config, model_dir / VERSION)
        (model_dir / "config.pbtxt").write_text(to_pbtxt(config))
        verify(model_dir, options.format, example, expected)
        destination = options.out_dir / options.name
        model_dir.rename(destination)
        return destination
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def verify(
    model_dir: Path, fmt: str, example: torch.Tensor, expected: list[torch.Tensor]
) -> None:
    """Parse config.pbtxt back and run the written model on the example against eager torch."""
    config_path = model_dir / "config.pbtxt"
    parsed = parse_pbtxt(config_path.read_text(), source=str(config_path))
    if parsed.name != model_dir.name:
        raise BuildError(f"{config_path}: name {parsed.name!r} does not match its folder")
    exporters.check_loads(fmt, model_dir / VERSION, example, expected)
