"""Data type names across torch, numpy, Triton's config.pbtxt and Triton's wire protocol."""

from __future__ import annotations

from dataclasses import dataclass

from sloscale_runtime.errors import RuntimeInputError


@dataclass(frozen=True)
class DType:
    """One element type as each layer spells it."""

    torch_name: str  # attribute of the torch module: torch.float32
    numpy_name: str  # numpy.dtype(numpy_name)
    config_name: str  # config.pbtxt data_type enum: TYPE_FP32
    wire_name: str  # tritonclient InferInput datatype: FP32


# bfloat16 is left out on purpose: numpy (the python backend's tensor format) has no bf16.
_DTYPES = (
    DType("float32", "float32", "TYPE_FP32", "FP32"),
    DType("float16", "float16", "TYPE_FP16", "FP16"),
    DType("float64", "float64", "TYPE_FP64", "FP64"),
    DType("int64", "int64", "TYPE_INT64", "INT64"),
    DType("int32", "int32", "TYPE_INT32", "INT32"),
    DType("int16", "int16", "TYPE_INT16", "INT16"),
    DType("int8", "int8", "TYPE_INT8", "INT8"),
    DType("uint8", "uint8", "TYPE_UINT8", "UINT8"),
    DType("bool", "bool", "TYPE_BOOL", "BOOL"),
)
_BY_TORCH = {d.torch_name: d for d in _DTYPES}
_BY_CONFIG = {d.config_name: d for d in _DTYPES}


def supported_names() -> list[str]:
    return [d.torch_name for d in _DTYPES]


def from_torch_name(name: str, *, field: str = "dtype") -> DType:
    """Look up a torch dtype name ("float32" or "torch.float32"); unsupported names raise."""
    short = name.removeprefix("torch.")
    if short not in _BY_TORCH:
        raise RuntimeInputError(
            f"{field}: unsupported dtype {name!r}; supported: {', '.join(supported_names())}"
        )
    return _BY_TORCH[short]


def from_config_name(name: str) -> DType:
    if name not in _BY_CONFIG:
        raise RuntimeInputError(f"data_type: unsupported Triton type {name!r}")
    return _BY_CONFIG[name]
