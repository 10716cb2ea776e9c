"""Least-privilege RBAC: what the operator may do, and what it may not."""

from __future__ import annotations

import re

import pytest

from conftest import NAMESPACE, SCENARIOS, consts, find, render, render_objects

ROLE_KINDS = ("ClusterRole", "Role")


def rules_of(objects, kind):
    return [(o, r) for o in find(objects, kind) for r in o["rules"]]


def grants(objects, kind, group, resource, verb, namespace=None):
    """Rules of `kind` (in `namespace`, for Roles) that grant `verb` on `group/resource`."""
    out = []
    for o, r in rules_of(objects, kind):
        if namespace and o["metadata"].get("namespace") != namespace:
            continue
        if (group in r["apiGroups"] or "*" in r["apiGroups"]) and (resource in r["resources"] or "*" in r["resources"]) and (verb in r["verbs"] or "*" in r["verbs"]):
            out.append(r)
    return out


def test_no_wildcards(scenario):
    for kind in ROLE_KINDS:
        for _, rule in rules_of(render_objects(scenario[1]), kind):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), rule


def test_secrets_are_never_listed_or_watched_cluster_wide(scenario):
    objects = render_objects(scenario[1])
    for verb in ("list", "watch"):
        assert not grants(objects, "ClusterRole", "", "secrets", verb), f"ClusterRole grants {verb} on secrets"
    # Nor in a Role of the release namespace, except the one certificate Secret, by name.
    for rule in grants(objects, "Role", "", "secrets", "list", NAMESPACE):
        assert rule.get("resourceNames") == [consts()["WEBHOOK_CERT_SECRET"]], rule


def test_namespaced_install_scopes_secrets_to_the_listed_namespaces():
    values = SCENARIOS["everything-on"]
    objects = render_objects(values)
    for ns in [values["watchNamespace"]]:
        assert grants(objects, "Role", "", "secrets", "watch", ns), f"no Secret watch in {ns}"
        assert grants(objects, "Role", "gatehouse.dev", "ssoconfigs", "watch", ns)
        binding = next(b for b in find(objects, "RoleBinding") if b["metadata"]["namespace"] == ns)
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    # Nothing namespaced is granted cluster-wide; with cert-manager there is no ClusterRole at all.
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")


def test_operator_rules_cover_status_and_finalizers():
    objects = render_objects({})
    assert grants(objects, "ClusterRole", "gatehouse.dev", "ssoconfigs/status", "patch")
    assert grants(objects, "ClusterRole", "gatehouse.dev", "ssousers/status", "patch")
    assert grants(objects, "ClusterRole", "gatehouse.dev", "ssoconfigs/finalizers", "update")
    assert not grants(objects, "ClusterRole", "gatehouse.dev", "ssoconfigs", "patch"), "the operator never writes a spec"
    assert grants(objects, "ClusterRole", "events.k8s.io", "events", "create")
    assert grants(objects, "ClusterRole", "", "pods", "watch")
    assert grants(objects, "ClusterRole", "apps", "deployments", "patch")
    assert not grants(objects, "ClusterRole", "", "pods", "delete")


def test_operator_can_grant_the_sidecar_role_without_escalate():
    """The operator writes each sidecar a Role on SsoUsers and Events (operator/src/desired.rs).
    RBAC lets it only if it holds every verb itself, since it has no `escalate` or `bind`."""
    sidecar_rules = [
        (["gatehouse.dev"], ["ssousers", "ssousers/status"], ["get", "list", "watch", "create", "patch", "update"]),
        (["", "events.k8s.io"], ["events"], ["create", "patch"]),
        # SCIM mode only (provisioning.mode: scim): the identity provider deletes the users it pushed.
        (["gatehouse.dev"], ["ssousers"], ["delete"]),
    ]
    for values in ({}, SCENARIOS["everything-on"]):
        objects = render_objects(values)
        ns = values.get("watchNamespace") or None
        kind = "Role" if ns else "ClusterRole"
        for groups, resources, verbs in sidecar_rules:
            for g in groups:
                for r in resources:
                    for v in verbs:
                        assert grants(objects, kind, g, r, v, ns), f"operator lacks {v} {g}/{r}"
        for kind_ in ROLE_KINDS:
            for verb in ("escalate", "bind", "impersonate"):
                assert not grants(objects, kind_, "rbac.authorization.k8s.io", "roles", verb)


def test_cluster_scoped_writes_are_limited_by_name():
    c = consts()
    objects = render_objects({})
    (rule,) = grants(objects, "ClusterRole", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch")
    assert rule["resourceNames"] == [c["WEBHOOK_NAME"]]
    assert not grants(objects, "ClusterRole", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch")
    for rule in grants(objects, "Role", "coordination.k8s.io", "leases", "update", NAMESPACE):
        assert rule["resourceNames"] == [c["LEADER_LEASE_NAME"]]
    # The SsoConfig CRD's conversion webhook caBundle (operator/src/webhook/certs.rs): that one CRD.
    (rule,) = grants(objects, "ClusterRole", "apiextensions.k8s.io", "customresourcedefinitions", "patch")
    assert rule["resourceNames"] == ["ssoconfigs.gatehouse.dev"]
    assert rule["verbs"] == ["get", "patch"]
    # cert-manager writes caBundle: the operator then holds no webhook-configuration rule at all.
    objects = render_objects(SCENARIOS["cert-manager-cluster-issuer"])
    assert not grants(objects, "ClusterRole", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "get")
    assert not grants(objects, "ClusterRole", "apiextensions.k8s.io", "customresourcedefinitions", "get")
    assert not grants(objects, "Role", "", "secrets", "create", NAMESPACE)


def test_token_review_may_bind_only_auth_delegator_and_only_when_enabled():
    """With tokenReview.enabled the operator binds sidecars to system:auth-delegator
    (operator/src/controllers/token_review.rs): `bind` on that one ClusterRole, never `escalate`,
    ClusterRoleBindings written and deleted, and SsoConfigs patched for the finalizer."""
    for values in ({"tokenReview": {"enabled": True}}, SCENARIOS["token-review-namespaced"]):
        objects = render_objects(values)
        (bind,) = grants(objects, "ClusterRole", "rbac.authorization.k8s.io", "clusterroles", "bind")
        assert bind["resourceNames"] == ["system:auth-delegator"]
        for verb in ("get", "create", "patch", "delete"):
            assert grants(objects, "ClusterRole", "rbac.authorization.k8s.io", "clusterrolebindings", verb), verb
        ns = values.get("watchNamespace")
        assert grants(objects, "Role" if ns else "ClusterRole", "gatehouse.dev", "ssoconfigs", "patch", ns)
        for kind in ROLE_KINDS:
            for _, rule in rules_of(objects, kind):
                assert "escalate" not in rule["verbs"], rule
                if "bind" in rule["verbs"]:
                    assert rule["resourceNames"] == ["system:auth-delegator"], rule
        if ns:
            # Namespaced install: the ClusterRole holds the binding's rules and nothing namespaced.
            (cluster_role,) = find(objects, "ClusterRole")
            assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {"clusterrolebindings", "clusterroles"}
            assert not grants(objects, "ClusterRole", "gatehouse.dev", "ssoconfigs", "patch")
    for values in ({}, SCENARIOS["everything-on"]):
        objects = render_objects(values)
        for kind in ROLE_KINDS:
            assert not grants(objects, kind, "rbac.authorization.k8s.io", "clusterrolebindings", "create")
            assert not grants(objects, kind, "rbac.authorization.k8s.io", "clusterroles", "bind")
            assert not grants(objects, kind, "gatehouse.dev", "ssoconfigs", "patch")


def test_every_rule_has_a_comment(scenario):
    """Each rule in the rendered RBAC is preceded by a `#` line saying why it exists."""
    text = render(scenario[1])["gatehouse/templates/rbac.yaml"]
    lines = text.splitlines()
    rule_starts = [i for i, line in enumerate(lines) if re.match(r"^\s*- apiGroups:", line)]
    assert rule_starts
    for i in rule_starts:
        above = lines[i - 1].strip()
        assert above.startswith("#"), f"rule without a comment: {lines[i]} {lines[i + 1].strip()}"


def test_bindings_point_at_the_operator_service_account(scenario):
    objects = render_objects(scenario[1])
    sa = find(objects, "ServiceAccount")[0]["metadata"]["name"]
    bindings = find(objects, "ClusterRoleBinding") + find(objects, "RoleBinding")
    assert bindings
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in find(objects, "ClusterRole") + find(objects, "Role")}
    for b in bindings:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
        ns = None if b["roleRef"]["kind"] == "ClusterRole" else b["metadata"]["namespace"]
        assert (b["roleRef"]["kind"], ns, b["roleRef"]["name"]) in roles, f"{b['metadata']['name']} binds a missing role"


@pytest.mark.parametrize("values", [{}], ids=["defaults"])
def test_deployment_uses_that_service_account(values):
    objects = render_objects(values)
    sa = find(objects, "ServiceAccount")[0]
    deployment = find(objects, "Deployment")[0]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    assert sa["automountServiceAccountToken"] is False
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
