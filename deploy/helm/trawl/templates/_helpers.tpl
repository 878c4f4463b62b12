{{/* Names, labels and the figures the templates share. */}}

{{- define "trawl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* RELEASE-trawl, or the release name when it already says trawl. */}}
{{- define "trawl.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "trawl.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "trawl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "scheduler"). */}}
{{- define "trawl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trawl.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "trawl.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "trawl.scheduler.name" -}}
{{ include "trawl.fullname" . }}-scheduler
{{- end }}

{{/* The scheduler's Service name, the one workers and clients dial. */}}
{{- define "trawl.scheduler.service" -}}
{{ include "trawl.fullname" . }}-scheduler
{{- end }}

{{/* The names in the scheduler's TLS certificate, one per line. */}}
{{- define "trawl.scheduler.hosts" -}}
{{- $svc := include "trawl.scheduler.service" . -}}
{{ $svc }}
{{ $svc }}.{{ .Release.Namespace }}
{{ $svc }}.{{ .Release.Namespace }}.svc
{{ $svc }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- range .Values.scheduler.hosts }}
{{ . }}
{{- end }}
{{- end }}

{{/* The URL workers reach the scheduler at (TLS: the data directory is initialised). */}}
{{- define "trawl.scheduler.url" -}}
https://{{ include "trawl.scheduler.service" . }}.{{ .Release.Namespace }}.svc:{{ .Values.scheduler.ports.grpc }}
{{- end }}

{{/* The data volume's claim, as the StatefulSet names it: TEMPLATE-STATEFULSET-0. */}}
{{- define "trawl.scheduler.claim" -}}
data-{{ include "trawl.scheduler.name" . }}-0
{{- end }}

{{- define "trawl.auditKeySecret" -}}
{{ .Values.scheduler.auditKey.existingSecret | default (printf "%s-audit-key" (include "trawl.fullname" .)) }}
{{- end }}

{{- define "trawl.workerTlsSecret" -}}
{{ .Values.worker.tls.existingSecret | default (printf "%s-worker-tls" (include "trawl.fullname" .)) }}
{{- end }}

{{- define "trawl.objectStoreSecret" -}}
{{ .Values.objectStore.credentials.existingSecret | default (printf "%s-object-store" (include "trawl.fullname" .)) }}
{{- end }}

{{/*
A worker's memory, in MiB: the bound measured in BENCHMARKS.md ("Scale"),
shard size x slots + 256 MiB, with the largest shard size jobs use.
*/}}
{{- define "trawl.worker.memoryMiB" -}}
{{- $slots := int .Values.worker.slots -}}
{{- $shard := int .Values.worker.maxShardSizeMiB -}}
{{- $base := int .Values.worker.memoryBaseMiB -}}
{{- if or (lt $slots 1) (lt $shard 1) (lt $base 0) -}}
{{- fail "worker.slots and worker.maxShardSizeMiB must be at least 1, worker.memoryBaseMiB at least 0" -}}
{{- end -}}
{{- add (mul $shard $slots) $base -}}
{{- end }}

{{/* The worker pod's grace period: drain time plus the margin to hand leases back. */}}
{{- define "trawl.worker.gracePeriod" -}}
{{- $drain := int .Values.worker.drainSeconds -}}
{{- $margin := int .Values.worker.drainMarginSeconds -}}
{{- if lt $drain 0 -}}{{- fail "worker.drainSeconds must be at least 0" -}}{{- end -}}
{{- if lt $margin 5 -}}
{{- fail "worker.drainMarginSeconds must be at least 5: the pod's grace period must exceed the drain time, or the kubelet kills a draining worker before it hands its leases back" -}}
{{- end -}}
{{- add $drain $margin -}}
{{- end }}

{{/* Environment of both pods for the object store: endpoint and region from values, keys from a Secret. */}}
{{- define "trawl.objectStoreEnv" -}}
{{- if .Values.objectStore.enabled }}
{{- if .Values.objectStore.endpoint }}
- name: AWS_ENDPOINT
  value: {{ .Values.objectStore.endpoint | quote }}
{{- end }}
- name: AWS_REGION
  value: {{ .Values.objectStore.region | quote }}
- name: AWS_ALLOW_HTTP
  value: {{ ternary "true" "false" (.Values.objectStore.allowHttp | default false) | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "trawl.objectStoreSecret" . }}
      key: {{ .Values.objectStore.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "trawl.objectStoreSecret" . }}
      key: {{ .Values.objectStore.credentials.secretAccessKeyKey }}
{{- end }}
{{- end }}

{{/* Refusals of values that cannot work, checked by every render. */}}
{{- define "trawl.validate" -}}
{{- if and (not .Values.init.enabled) (or (not .Values.scheduler.auditKey.existingSecret) (not .Values.worker.tls.existingSecret)) }}
{{- fail "init.enabled=false: nothing makes the audit key and the worker certificate, so give scheduler.auditKey.existingSecret and worker.tls.existingSecret (and a data volume initialised with trawl-scheduler init)" }}
{{- end }}
{{- if .Values.objectStore.enabled }}
{{- $c := .Values.objectStore.credentials }}
{{- if and (not $c.existingSecret) (or (not $c.accessKeyId) (not $c.secretAccessKey)) }}
{{- fail "objectStore.enabled: give objectStore.credentials.existingSecret (a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or both accessKeyId and secretAccessKey" }}
{{- end }}
{{- end }}
{{- if and .Values.worker.autoscaling.enabled (not .Values.worker.autoscaling.cpu.enabled) (not .Values.worker.autoscaling.queueDepth.enabled) }}
{{- fail "worker.autoscaling.enabled: turn on cpu or queueDepth (or both)" }}
{{- end }}
{{- if or (lt (int .Values.worker.cpu) 1) (ne (float64 (int .Values.worker.cpu)) (float64 .Values.worker.cpu)) }}
{{- fail "worker.cpu: whole cores, at least 1 (the CPU request and the analysis threads)" }}
{{- end }}
{{- if not (has .Values.scheduler.healthProbe (list "grpc" "tcp")) }}
{{- fail "scheduler.healthProbe: grpc or tcp" }}
{{- end }}
{{- end }}

{{/* An address to bind, bracketed when it is IPv6. */}}
{{- define "trawl.hostPort" -}}
{{- if contains ":" . }}[{{ . }}]{{ else }}{{ . }}{{ end }}
{{- end }}

{{- define "trawl.validate.init" -}}
{{- if and .Values.init.enabled .Values.scheduler.auditKey.existingSecret }}
{{- fail "scheduler.auditKey.existingSecret is for init.enabled=false: the init job makes the audit key of the data directory it initialises" }}
{{- end }}
{{- end }}
