"""Autoscaling: pure policies here, Prometheus and Kubernetes adapters beside them."""
