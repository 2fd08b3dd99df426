{{- define "mlops-trace.labels" -}}
app.kubernetes.io/name: mlops-trace
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "mlops-trace.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "mlops-trace.scope" -}}
{{- if .Values.namespaces }}
{{- range .Values.namespaces }} --namespace {{ . }}{{ end }}
{{- else }} --all-namespaces{{ end }}
{{- end }}

{{- define "mlops-trace.scopeArgs" -}}
{{- if .Values.namespaces }}
{{- range .Values.namespaces }}
- --namespace
- {{ . | quote }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
{{- end }}
