"""InferenceService API: schema (one source of truth), CRD, defaults, validation, spec, status."""

GROUP = "serving.sloscale.io"
VERSION = "v1alpha1"
KIND = "InferenceService"
PLURAL = "inferenceservices"
SINGULAR = "inferenceservice"
SHORT_NAMES = ("infsvc",)  # KServe owns `isvc`
CATEGORIES = ("sloscale",)
API_VERSION = f"{GROUP}/{VERSION}"

# Every pod and child carries this label naming its InferenceService.
SERVICE_LABEL = f"{GROUP}/inferenceservice"
FIELD_MANAGER = "sloscale"
AUTOSCALER_FIELD_MANAGER = "sloscale-autoscaler"
