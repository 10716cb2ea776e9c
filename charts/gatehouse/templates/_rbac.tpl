{{/*
RBAC rules for the namespaced objects the operator works with. Rendered into one ClusterRole when
the operator serves every namespace (watchNamespace empty), or into a Role in watchNamespace.
Argument: a dict with "namespaced" (bool) and "tokenReview" (bool: tokenReview.enabled).

Why Secrets are never listed or watched cluster-wide: RBAC cannot restrict a list or watch by label,
so a label-selected watch would still need `list secrets` in every namespace, which reads every
Secret in the cluster (a metadata-only watch too: RBAC does not tell metadata from data, and
kubectl's last-applied annotation carries the data). Trade-off:
  - cluster scope (default): `get` on Secrets by name, no list/watch. The operator can read a
    Secret it is told the name of, never enumerate them; a rotated client secret is picked up at
    the next reconcile of its SsoConfig, not by a watch.
  - watchNamespace set: list/watch on Secrets only inside that namespace, so a rotation
    re-renders within seconds, and no Secret outside it is readable at all.
*/}}
{{- define "gatehouse.rbac.namespacedRules" -}}
# SsoConfigs are what the operator reconciles (watch cache); it never writes their spec.
- apiGroups: ["gatehouse.dev"]
  resources: ["ssoconfigs"]
  verbs: ["get", "list", "watch"]
{{- if .tokenReview }}
# TokenReview mode (tokenReview.enabled): the operator adds and removes its finalizer
# gatehouse.dev/token-review-binding (metadata only; it never writes the spec).
- apiGroups: ["gatehouse.dev"]
  resources: ["ssoconfigs"]
  verbs: ["patch"]
{{- end }}
# Status (conditions, callback URLs, user count), written by server-side apply.
- apiGroups: ["gatehouse.dev"]
  resources: ["ssoconfigs/status"]
  verbs: ["get", "patch", "update"]
# Everything the operator creates carries an owner reference to its SsoConfig with
# blockOwnerDeletion: true, which the OwnerReferencesPermissionEnforcement admission plugin allows
# only to a client that may update the owner's finalizers. The operator adds no finalizer.
- apiGroups: ["gatehouse.dev"]
  resources: ["ssoconfigs/finalizers"]
  verbs: ["update"]
# SsoUsers: counted per SsoConfig (watch cache) and their conditions kept. create/patch/update on
# both the object and its status are here because the operator writes each sidecar a Role granting
# exactly these verbs, and RBAC lets a client grant only what it holds itself. Holding the verbs was
# chosen over `escalate` on roles (which would let the operator grant anything) and over `bind`.
# No ssousers/finalizers: nothing the operator creates is owned by an SsoUser.
- apiGroups: ["gatehouse.dev"]
  resources: ["ssousers", "ssousers/status"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
# Deleting SSO-created users inactive longer than spec.provisioning.deleteAfterInactive; and the
# Role of a sidecar in SCIM mode (provisioning.mode: scim) grants it delete on ssousers, which the
# operator can grant only because it holds it here.
- apiGroups: ["gatehouse.dev"]
  resources: ["ssousers"]
  verbs: ["delete"]
# Secrets: the operator creates the sidecar environment (<config>-gatehouse-env), the generated
# cookie key (<config>-gatehouse-cookie) and the sidecar's token Secret (<config>-gatehouse-token),
# and reads, by name, the Secrets an SsoConfig names in its own namespace.
{{- if .namespaced }}
# Namespaced install: list/watch too, so a rotated Secret re-renders within seconds.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
{{- else }}
# Cluster-wide install: get by name, never list or watch (see the note at the top of _rbac.tpl).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch", "update"]
{{- end }}
# The sidecar's own ServiceAccount (its token reaches the sidecar container only). Watched, by
# label, so a hand-deleted one is put back.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
# The sidecar's Role + RoleBinding, limited to SsoUsers and Events of its namespace. No `bind` or
# `escalate`: the operator can grant only the verbs it holds (see the ssousers rule).
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "update"]
# The NetworkPolicy that admits traffic to injected pods only on the sidecar's port; delete removes
# it when an SsoConfig sets networkPolicy.enabled: false.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Events on SsoConfigs and pods (transitions, denied injections, pods running without the
# sidecar). Both API groups: kube-rs writes events.k8s.io; the sidecar's Role, which the operator
# grants, names both.
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Self-repair: find pods labelled gatehouse.dev/inject that run without the sidecar (created before
# the webhook existed). The operator selects by that label; RBAC cannot.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# ...and the workload that owns such a pod: pod -> ReplicaSet -> Deployment.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get"]
# Rolling restart of that workload (pod-template annotation), only when its SsoConfig asks for it.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["get", "patch"]
{{- end }}
