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

{{/*
OTEL_RESOURCE_ATTRIBUTES of a gateway container: the k8s.* attributes from the Downward API
variables set beside it ($(VAR) is expanded by the kubelet), the Deployment and container
names, then gateway.resourceAttributes percent-encoded (the variable's own escaping: a value
may hold ',', '=' or spaces).
*/}}
{{- define "gatetrace.gatewayResourceAttributes" -}}
{{- $gw := .Values.gateway -}}
k8s.pod.name=$(GATETRACE_POD_NAME),k8s.pod.uid=$(GATETRACE_POD_UID),k8s.namespace.name=$(GATETRACE_POD_NAMESPACE),k8s.node.name=$(GATETRACE_NODE_NAME),k8s.deployment.name={{ include "gatetrace.fullname" . }}-{{ $gw.name }},k8s.container.name=gateway
{{- range $key, $value := $gw.resourceAttributes -}}
,{{ $key }}={{ toString $value | urlquery | replace "+" "%20" }}
{{- end -}}
{{- end -}}

{{/*
The gateway's `workers`: gateway.workers, else the container's CPU limit rounded up
("1500m" -> 2, "2" -> 2, at least 1); empty without either (the gateway then counts the
CPUs its cgroup allows).
*/}}
{{- define "gatetrace.gatewayWorkers" -}}
{{- $gw := .Values.gateway -}}
{{- if $gw.workers -}}
{{- $gw.workers | int -}}
{{- else -}}
{{- $cpu := toString (dig "limits" "cpu" "" ($gw.resources | default dict)) -}}
{{- if hasSuffix "m" $cpu -}}
{{- max 1 (int (ceil (divf (float64 (trimSuffix "m" $cpu)) 1000))) -}}
{{- else if $cpu -}}
{{- max 1 (int (ceil (float64 $cpu))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
