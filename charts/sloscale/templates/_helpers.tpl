{{- define "sloscale.name" -}}sloscale{{- end -}}

{{- define "sloscale.fullname" -}}
{{- if contains "sloscale" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-sloscale" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "sloscale.labels" -}}
app.kubernetes.io/name: {{ include "sloscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{- define "sloscale.selector" -}}
app.kubernetes.io/name: {{ include "sloscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "sloscale.serviceAccount" -}}
{{- default (include "sloscale.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The rules every mode needs, for the objects the operator owns in watched namespaces.
Each is a call the code makes (tests/e2e/test_chart_cluster.py checks them against the API
server's audit log of a run). Server-side apply changes through `patch`; a patch that
creates the object needs `create` as well. */}}
{{- define "sloscale.namespacedRules" -}}
- apiGroups: ["serving.sloscale.io"]
  resources: ["inferenceservices"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["serving.sloscale.io"]
  resources: ["inferenceservices/status"]
  verbs: ["patch"]
# Children are read from the operator's watches (kopf indexes), never by GET.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# delete: a template set without a ServiceMonitor template prunes the one made before.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "create", "patch", "delete"]
# The autoscaler follows pods by watch (Pending and Ready counts).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# --templates-configmap and capacityProfile.configMapRef.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* Non-empty when more than one replica runs: kopf peering instead of standalone. */}}
{{- define "sloscale.peering" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (int .Values.shards)) }}true{{ end -}}
{{- end -}}
