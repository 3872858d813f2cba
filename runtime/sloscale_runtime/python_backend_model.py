"""Triton python-backend model that runs a TorchScript file with torch (copied into repositories).

This file is not imported by sloscale: the builder copies it as `<model>/<version>/model.py`
and Triton's python backend stub runs it. It concatenates all requests that the dynamic
batcher hands to one execute() call into a single torch batch, so batching saves real work.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# The stub embeds Python in isolated mode, which ignores PYTHONPATH; honour it by hand so that
# a local server can use the venv's torch (in a Triton image torch is installed system-wide).
sys.path.extend(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)

import torch  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402  (provided by the stub)
from torch.utils.dlpack import from_dlpack, to_dlpack  # noqa: E402


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        threads = int(parameters.get("torch_num_threads", "0"))
        if threads > 0:
            torch.set_num_threads(threads)
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.model = torch.jit.load(str(version_dir / "model.pt"), map_location="cpu").eval()
        self.input_names = [spec["name"] for spec in config["input"]]
        self.output_names = [spec["name"] for spec in config["output"]]

    def execute(self, requests: list) -> list:
        # Tensors cross the stub by DLPack, not numpy: the stub's numpy bindings were built
        # for numpy 1 and misread numpy 2 arrays, while DLPack is the same for both.
        inputs = [
            torch.cat([_from_triton(pb_utils.get_input_tensor_by_name(r, name)) for r in requests])
            for name in self.input_names
        ]
        sizes = [int(pb_utils.get_input_tensor_by_name(r, self.input_names[0]).shape()[0])
                 for r in requests]
        with torch.inference_mode():
            result = self.model(*inputs)
        outputs = result if isinstance(result, tuple | list) else (result,)
        per_output = [torch.split(o, sizes) for o in outputs]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor.from_dlpack(name, to_dlpack(per_output[k][i].contiguous()))
                    for k, name in enumerate(self.output_names)
                ]
            )
            for i in range(len(requests))
        ]


def _from_triton(tensor: object) -> torch.Tensor:
    return from_dlpack(tensor.to_dlpack())  # type: ignore[attr-defined]
