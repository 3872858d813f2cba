"""Names shared by the runtime integration tests and their fixtures (imported, not collected)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = f"{ROOT / 'examples' / 'models' / 'small_cnn.py'}:make_model"
BATCHED = "small_cnn"
UNBATCHED = "small_cnn_unbatched"
