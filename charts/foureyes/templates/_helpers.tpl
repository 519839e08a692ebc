{{/*
The chart installs cluster-wide objects with fixed names (the CRDs, the
admission policies, the ClusterRole foureyes-operator): one release per
cluster. Namespaced objects are named after the release.
*/}}
{{- define "foureyes.name" -}}
foureyes
{{- end -}}

{{- define "foureyes.fullname" -}}
{{- if contains "foureyes" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-foureyes" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "foureyes.serviceAccountName" -}}
{{- required "serviceAccount.name is required" .Values.serviceAccount.name -}}
{{- end -}}

{{- define "foureyes.selectorLabels" -}}
app.kubernetes.io/name: foureyes
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "foureyes.labels" -}}
{{ include "foureyes.selectorLabels" . }}
app.kubernetes.io/part-of: foureyes
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The ClusterRoles project roles may map to, as a JSON list: allowedClusterRoles,
else the values of roleMap (the operator's own rule, src/config.rs).
*/}}
{{- define "foureyes.allowedClusterRoles" -}}
{{- if not (hasKey .Values.config "roleMap") -}}
{{- fail "config.roleMap is required (to remove one of its roles, set that role to null)" -}}
{{- end -}}
{{- $allowed := .Values.config.allowedClusterRoles -}}
{{- if not $allowed -}}
{{- $allowed = values (.Values.config.roleMap | default dict) -}}
{{- end -}}
{{- $allowed | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* The operator's user name, which the admission policies trust. */}}
{{- define "foureyes.operatorUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "foureyes.serviceAccountName" .) -}}
{{- end -}}
