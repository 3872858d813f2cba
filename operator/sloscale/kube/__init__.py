"""The Kubernetes adapter the controller and the autoscaler share: client, errors, status writes."""
