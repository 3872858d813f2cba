"""A real Kubernetes control plane on loopback with simulated GPU nodes (kwok)."""
