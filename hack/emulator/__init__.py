"""Triton-metrics emulator: what Triton pods would export, for the demo and e2e tests."""
