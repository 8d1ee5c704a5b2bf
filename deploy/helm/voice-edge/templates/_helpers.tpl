{{- define "voice-edge.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voice-edge.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
hotpath.io/tenant: {{ .Values.tenant.id | quote }}
{{- end -}}

{{- define "voice-edge.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "voice-edge.mqttSecret" -}}
{{- if .Values.mqtt.auth.passwd -}}{{ include "voice-edge.fullname" . }}-mqtt{{- else -}}{{ .Values.mqtt.auth.existingSecret }}{{- end -}}
{{- end -}}

{{- define "voice-edge.cloudSecret" -}}
{{- if .Values.cloud.apiKey.value -}}{{ include "voice-edge.fullname" . }}-cloud{{- else -}}{{ .Values.cloud.apiKey.existingSecret }}{{- end -}}
{{- end -}}

{{- define "voice-edge.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/* The environment every hotpath container gets: site config file, broker login, cloud key. */}}
{{- define "voice-edge.env" -}}
- name: HOTPATH_CONFIG
  value: /etc/hotpath/site.yaml
- name: HOTPATH_RUNTIME_DIR
  value: /var/lib/hotpath
- name: HOTPATH_MQTT__USERNAME
  value: {{ .Values.mqtt.auth.edgeUsername | quote }}
- name: HOTPATH_MQTT__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "voice-edge.mqttSecret" . }}
      key: edge-password
- name: HOTPATH_VOICE__CLOUD__API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "voice-edge.cloudSecret" . }}
      key: api-key
      optional: true
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
{{- end -}}
