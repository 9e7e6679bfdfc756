{{/* Labels of everything this chart creates. */}}
{{- define "c8dr-worker.labels" -}}
app.kubernetes.io/name: c8dr-worker
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* Selector labels of the worker pod (the Deployment's selector: keep them unchanged). */}}
{{- define "c8dr-worker.selectorLabels" -}}
app.kubernetes.io/name: c8dr-worker
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The worker's ServiceAccount: serviceAccount.name, else the release name when the chart
creates it, else the namespace's "default". */}}
{{- define "c8dr-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default .Release.Name .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
