"""Names shared by the runtime integration tests and their fixtures (imported, not collected)."""

from __future__ import annotations

from pathlib import Path

from sloscale.autoscale.promql import PROM_SERVICE_LABEL

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = f"{ROOT / 'examples' / 'models' / 'small_cnn.py'}:make_model"
BATCHED = "small_cnn"
UNBATCHED = "small_cnn_unbatched"
ONNX = "small_cnn_onnx"  # the same model as ONNX run by onnxruntime in the python backend
# How pod discovery would label this Triton if it were an InferenceService's pod.
TRITON_LABELS = {"namespace": "integration", PROM_SERVICE_LABEL: "small-cnn"}
