"""Local helpers for the demo and tests: real servers started on loopback."""
