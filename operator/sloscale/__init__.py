"""sloscale: a Kubernetes operator that runs Triton inference services on latency SLOs."""

__version__ = "0.1.0"
