"""Load a user's torch model factory from `FILE.py:FACTORY` and make its example input."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sloscale_runtime.dtypes import DType
from sloscale_runtime.errors import BuildError, RuntimeInputError

if TYPE_CHECKING:
    import torch


def parse_factory_ref(ref: str) -> tuple[Path, str]:
    """Split `path/to/file.py:factory`; the file must exist and the name be an identifier."""
    path_text, sep, factory = ref.rpartition(":")
    if not sep or not path_text or not factory.isidentifier():
        raise RuntimeInputError(f"--model: expected FILE.py:FACTORY, got {ref!r}")
    path = Path(path_text)
    if not path.is_file():
        raise RuntimeInputError(f"--model: file not found: {path}")
    return path, factory


def positive_ints(text: str, option: str) -> tuple[int, ...]:
    """Parse `1,3,32,32` into positive integers; errors name the command-line option."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError as error:
        raise RuntimeInputError(f"{option}: not a comma list of integers: {text!r}") from error
    if not values or any(v <= 0 for v in values):
        raise RuntimeInputError(f"{option}: values must be positive: {text!r}")
    return values


def parse_shape(text: str) -> tuple[int, ...]:
    return positive_ints(text, "--input-shape")


def load_model(ref: str) -> torch.nn.Module:
    """Import FILE.py, call FACTORY() and check that it returns an nn.Module in eval mode."""
    import torch

    path, factory_name = parse_factory_ref(ref)
    spec = importlib.util.spec_from_file_location(f"sloscale_user_model_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuntimeInputError(f"--model: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise BuildError(f"--model: importing {path} failed: {error!r}") from error
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise RuntimeInputError(f"--model: {path} has no callable {factory_name!r}")
    try:
        model = factory()
    except Exception as error:
        raise BuildError(f"--model: {path}:{factory_name}() raised {error!r}") from error
    if not isinstance(model, torch.nn.Module):
        raise RuntimeInputError(
            f"--model: {path}:{factory_name}() returned {type(model).__name__}, not nn.Module"
        )
    return model.eval()


def example_input(shape: tuple[int, ...], dtype: DType, seed: int = 0) -> torch.Tensor:
    """A deterministic example: random normal for floats, small integers otherwise."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    torch_dtype = getattr(torch, dtype.torch_name)
    if torch_dtype.is_floating_point:
        return torch.randn(shape, generator=generator).to(torch_dtype)
    if torch_dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    return torch.randint(0, 10, shape, generator=generator).to(torch_dtype)
