{{- define "hypergraph.name" -}}{{ .Chart.Name }}{{- end -}}

{{- define "hypergraph.labels" -}}
app.kubernetes.io/name: {{ include "hypergraph.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "hypergraph.selector" -}}
app.kubernetes.io/name: {{ include "hypergraph.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Pod security shared by every container: non-root, read-only root file system. */}}
{{- define "hypergraph.containerSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end -}}
