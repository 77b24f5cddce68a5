{{/* Names and labels shared by every template. */}}
{{- define "gatetrace.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gatetrace.labels" -}}
app.kubernetes.io/part-of: gatetrace
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gatetrace.operatorSelector" -}}
app.kubernetes.io/name: gatetrace-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gatetrace.gatewaySelector" -}}
app.kubernetes.io/component: gateway
app.kubernetes.io/instance: {{ .Release.Name }}
gatetrace.dev/gateway: {{ .Values.gateway.name }}
{{- end -}}

{{- define "gatetrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gatetrace.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gatetrace.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "gatetrace.rootNamespace" -}}
{{- default .Release.Namespace .Values.operator.rootNamespace -}}
{{- end -}}

{{- define "gatetrace.tokenSecret" -}}
{{- default .Values.adminToken.secretName .Values.adminToken.existingSecret -}}
{{- end -}}

{{- define "gatetrace.peering" -}}
{{- if gt (int .Values.operator.replicas) 1 -}}{{ include "gatetrace.fullname" . }}{{- end -}}
{{- end -}}
