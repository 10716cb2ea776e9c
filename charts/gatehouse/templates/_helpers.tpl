{{/*
Names. The webhook Service, the MutatingWebhookConfiguration, the webhook certificate Secret and
the leader Lease have fixed names: the operator binary looks them up by the constants in
crds/src/consts.rs (WEBHOOK_NAME, WEBHOOK_CERT_SECRET, LEADER_LEASE_NAME). One Gatehouse per
cluster, like any cluster-wide admission webhook.
*/}}
{{- define "gatehouse.webhookName" -}}gatehouse-webhook{{- end }}
{{- define "gatehouse.webhookCertSecret" -}}gatehouse-webhook-tls{{- end }}
{{- define "gatehouse.leaseName" -}}gatehouse-operator{{- end }}
{{- define "gatehouse.webhookPath" -}}/mutate-pods{{- end }}
{{- define "gatehouse.injectLabel" -}}gatehouse.dev/inject{{- end }}

{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the operator's objects: <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "gatehouse.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gatehouse.operatorName" -}}
{{- printf "%s-operator" (include "gatehouse.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- default (include "gatehouse.operatorName" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "gatehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the release; CRDs carry these. */}}
{{- define "gatehouse.commonLabels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gatehouse
{{- end }}

{{/* Labels of the operator's objects. */}}
{{- define "gatehouse.labels" -}}
{{ include "gatehouse.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* An image reference: repository, then @digest when set, else :tag (default: appVersion). */}}
{{- define "gatehouse.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* Namespaces the webhook never reaches: the control plane's, the node leases', the operator's own (a broken operator must never block its own restart), and any the user adds. */}}
{{- define "gatehouse.excludedNamespaces" -}}
{{- $ns := list "kube-system" "kube-node-lease" .Release.Namespace }}
{{- range .Values.webhook.excludeNamespaces }}{{ $ns = append $ns . }}{{ end }}
{{- toJson ($ns | uniq) }}
{{- end }}

{{/* cert-manager Certificate name, for the cert-manager.io/inject-ca-from annotation. */}}
{{- define "gatehouse.certificateName" -}}
{{- printf "%s-webhook" (include "gatehouse.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
