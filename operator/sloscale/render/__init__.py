"""Rendering: InferenceService spec in, list of child manifest dicts out (pure)."""
