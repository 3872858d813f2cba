"""Triton side of sloscale: build model repositories from torch, serve them, profile capacity."""
