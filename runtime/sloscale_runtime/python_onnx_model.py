"""Triton python-backend model that runs an ONNX file with onnxruntime (copied into repositories).

This file is not imported by sloscale: the builder copies it as `<model>/<version>/model.py`
for the `python-onnx` format, and Triton's python backend stub runs it. It needs numpy and
onnxruntime, not torch: a Triton image with only the python backend (the one the
nvidia-pytriton wheel ships) serves a torch model this way in a few hundred MB, where torch's
own wheel and its CUDA libraries weigh over 4 GB. Like the torch flavour, it concatenates all
requests of one execute() call into a single batch, so batching saves real work.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The stub embeds Python in isolated mode, which ignores PYTHONPATH; honour it by hand so that
# a local server can use a venv's onnxruntime (in an image it is installed system-wide).
sys.path.extend(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402  (provided by the stub)

# The stub's numpy bindings were built for numpy 1. With numpy 1 (a Triton image) tensors
# cross as numpy arrays; with numpy 2 (a venv) those misread and DLPack is used instead, which
# with numpy 1 fails (the stub renames the capsule numpy's destructor then looks for).
NUMPY_1 = int(np.__version__.split(".")[0]) < 2


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = onnxruntime.SessionOptions()
        threads = int(parameters.get("onnx_num_threads", "0"))
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.session = onnxruntime.InferenceSession(
            str(version_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.input_names = [spec["name"] for spec in config["input"]]
        self.output_names = [spec["name"] for spec in config["output"]]

    def execute(self, requests: list) -> list:
        feeds = {
            name: np.concatenate([_from_triton(pb_utils.get_input_tensor_by_name(r, name))
                                  for r in requests])
            for name in self.input_names
        }
        sizes = [int(pb_utils.get_input_tensor_by_name(r, self.input_names[0]).shape()[0])
                 for r in requests]
        outputs = self.session.run(self.output_names, feeds)
        bounds = np.cumsum(sizes)[:-1]
        per_output = [np.split(output, bounds) for output in outputs]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[
                    _to_triton(name, np.ascontiguousarray(per_output[k][i]))
                    for k, name in enumerate(self.output_names)
                ]
            )
            for i in range(len(requests))
        ]


def _from_triton(tensor: object) -> np.ndarray:
    return tensor.as_numpy() if NUMPY_1 else np.from_dlpack(tensor)  # type: ignore[attr-defined]


def _to_triton(name: str, array: np.ndarray) -> object:
    return pb_utils.Tensor(name, array) if NUMPY_1 else pb_utils.Tensor.from_dlpack(name, array)
