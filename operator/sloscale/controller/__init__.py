"""The operator: kopf handlers, the reconcile that applies children, the Kubernetes adapter."""
