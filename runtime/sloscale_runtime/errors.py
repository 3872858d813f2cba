"""Errors the runtime raises for bad input, each naming the field, file or step at fault."""

from __future__ import annotations


class RuntimeInputError(ValueError):
    """Something the user gave us is wrong: a file, a field, a shape, a dtype."""


class BuildError(RuntimeError):
    """The model could not be turned into a repository (trace, export, load check)."""


class TritonError(RuntimeError):
    """The local Triton server could not be found, started or reached."""
