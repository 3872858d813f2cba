"""Trace-driven simulation of a Triton service under an autoscaling policy, and its oracle."""
