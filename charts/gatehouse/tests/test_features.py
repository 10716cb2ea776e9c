"""What users rely on: the webhook registration, the operator Deployment's wiring and security
context, cert-manager, the ServiceMonitor, and the names the operator binary expects."""

from __future__ import annotations

import pytest

from conftest import CHART, NAMESPACE, SCENARIOS, consts, find, need, one, render_objects


def operator_container(objects):
    deployment = one(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


def args_of(container) -> dict[str, str]:
    out = {}
    for arg in container["args"][1:]:
        key, _, value = arg.partition("=")
        out[key] = value
    return out


# --- webhook registration ---------------------------------------------------------------------


def test_webhook_registration_is_safe(scenario):
    name, values = scenario
    objects = render_objects(values)
    c = consts()
    config = one(objects, "MutatingWebhookConfiguration", c["WEBHOOK_NAME"])
    (hook,) = config["webhooks"]
    assert hook["rules"] == [
        {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}
    ]
    # NoneOnDryRun: a refused pod leaves an Event, except in dry runs.
    assert hook["sideEffects"] == "NoneOnDryRun"
    assert hook["failurePolicy"] == "Fail"
    assert 1 <= hook["timeoutSeconds"] <= 5
    assert hook["matchPolicy"] == "Equivalent"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["objectSelector"] == {"matchExpressions": [{"key": c["LABEL_INJECT"], "operator": "Exists"}]}
    excluded = [e for e in hook["namespaceSelector"]["matchExpressions"] if e["operator"] == "NotIn"]
    assert len(excluded) == 1 and excluded[0]["key"] == "kubernetes.io/metadata.name"
    assert {"kube-system", "kube-node-lease", NAMESPACE} <= set(excluded[0]["values"])
    # caBundle is the operator's (or cert-manager's) to write; Helm must not reset it.
    assert "caBundle" not in hook["clientConfig"]


def test_webhook_reaches_the_operator_port():
    c = consts()
    objects = render_objects({})
    hook = one(objects, "MutatingWebhookConfiguration")["webhooks"][0]
    target = hook["clientConfig"]["service"]
    # As the operator's registration builder writes it (operator/src/webhook/registration.rs).
    assert target == {"name": c["WEBHOOK_NAME"], "namespace": NAMESPACE, "path": c["WEBHOOK_INJECT_PATH"], "port": int(c["WEBHOOK_PORT"])}
    service = one(objects, "Service", c["WEBHOOK_NAME"])
    (port,) = service["spec"]["ports"]
    assert port["port"] == int(c["WEBHOOK_PORT"])
    deployment, container = operator_container(objects)
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named[port["targetPort"]] == int(c["WEBHOOK_PORT"])
    assert args_of(container)["--webhook-port"] == c["WEBHOOK_PORT"]
    # The Service selects the operator pods.
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_webhook_options_follow_values():
    objects = render_objects(SCENARIOS["everything-on"])
    hook = one(objects, "MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["timeoutSeconds"] == 3
    expressions = {e["operator"]: e["values"] for e in hook["namespaceSelector"]["matchExpressions"]}
    assert expressions["In"] == ["team-a"]
    assert "monitoring" in expressions["NotIn"]


# --- certificates -------------------------------------------------------------------------------


def test_self_managed_certificates_by_default():
    c = consts()
    objects = render_objects({})
    _, container = operator_container(objects)
    assert "--webhook-cert-dir" not in args_of(container)
    assert not find(objects, "Certificate") and not find(objects, "Issuer")
    config = one(objects, "MutatingWebhookConfiguration")
    assert "cert-manager.io/inject-ca-from" not in (config["metadata"].get("annotations") or {})


def test_cert_manager_issues_the_webhook_certificate(scenario):
    name, values = scenario
    if not values.get("webhook", {}).get("certManager", {}).get("enabled"):
        return
    c = consts()
    objects = render_objects(values)
    cert = one(objects, "Certificate")
    assert cert["spec"]["secretName"] == c["WEBHOOK_CERT_SECRET"]
    svc = c["WEBHOOK_NAME"]
    assert set(cert["spec"]["dnsNames"]) == {f"{svc}.{NAMESPACE}.svc", f"{svc}.{NAMESPACE}.svc.cluster.local"}
    assert "server auth" in cert["spec"]["usages"]
    issuer_ref = cert["spec"]["issuerRef"]
    issuer_name = values["webhook"]["certManager"].get("issuerRef", {}).get("name")
    if issuer_name:
        assert issuer_ref["name"] == issuer_name and not find(objects, "Issuer")
    else:
        issuer = one(objects, "Issuer", issuer_ref["name"])
        assert issuer["spec"] == {"selfSigned": {}}
    # The API server trusts it through cainjector.
    config = one(objects, "MutatingWebhookConfiguration")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{cert['metadata']['name']}"
    # The operator serves it from the mounted Secret.
    deployment, container = operator_container(objects)
    cert_dir = args_of(container)["--webhook-cert-dir"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == cert_dir)
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == c["WEBHOOK_CERT_SECRET"] and mount["readOnly"] is True


# --- operator Deployment --------------------------------------------------------------------------


def test_operator_is_highly_available():
    objects = render_objects({})
    deployment, _ = operator_container(objects)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_operator_meets_pod_security_restricted(scenario):
    """Each rule of the Pod Security Standards "restricted" profile, asserted field by field."""
    name, values = scenario
    deployment, container = operator_container(render_objects(values))
    pod = deployment["spec"]["template"]["spec"]
    psc, csc = pod["securityContext"], container["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"]["drop"] == ["ALL"] and "add" not in csc["capabilities"]
    assert csc["readOnlyRootFilesystem"] is True
    assert csc.get("privileged") is not True
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= {"emptyDir", "secret", "configMap", "projected"}, volume
    for port in container["ports"]:
        assert "hostPort" not in port


def test_operator_has_probes_and_resources():
    _, container = operator_container(render_objects({}))
    metrics = next(p for p in container["ports"] if p["name"] == "metrics")
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert args_of(container)["--admin-addr"] == f"0.0.0.0:{metrics['containerPort']}"
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_operator_arguments_follow_values():
    c = consts()
    _, container = operator_container(render_objects({}))
    args = args_of(container)
    assert container["args"][0] == "run"
    assert args["--sidecar-image"] == c["DEFAULT_SIDECAR_IMAGE"], "chart default and crds consts disagree"
    assert args["--native-sidecars"] == "true" and args["--log-format"] == "json"
    assert "--namespace" not in args
    assert container["image"] == "ghcr.io/gatehouse-dev/gatehouse-operator:0.1.0"

    deployment, container = operator_container(render_objects(SCENARIOS["everything-on"]))
    args = args_of(container)
    assert args["--sidecar-image"] == "registry.example/gatehouse-sidecar:0.1.0-rc1"
    assert args["--native-sidecars"] == "false" and args["--log-format"] == "text"
    assert args["--namespace"] == "team-a"
    assert container["image"] == "ghcr.io/gatehouse-dev/gatehouse-operator@sha256:" + "a" * 64
    assert {e["name"]: e.get("value") for e in container["env"]}["RUST_LOG"] == "debug"
    pod = deployment["spec"]["template"]
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["metadata"]["annotations"] == {"example.com/team": "platform"}
    assert pod["metadata"]["labels"]["example.com/tier"] == "control"


def test_operator_network_policy_admits_only_its_ports():
    objects = render_objects({})
    policy = one(objects, "NetworkPolicy")
    ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert sorted(ports) == ["metrics", "webhook"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert not find(render_objects(SCENARIOS["crds-off-minimal"]), "NetworkPolicy")


# --- monitoring -----------------------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_port():
    objects = render_objects(SCENARIOS["everything-on"])
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selected = [s for s in find(objects, "Service") if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert len(selected) == 1, "the ServiceMonitor must select exactly the metrics Service"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert not find(render_objects({}), "ServiceMonitor")


def test_fixed_names_match_the_operator_constants():
    """The operator finds these objects by the constants in crds/src/consts.rs."""
    c = consts()
    objects = render_objects({})
    one(objects, "Service", c["WEBHOOK_NAME"])
    one(objects, "MutatingWebhookConfiguration", c["WEBHOOK_NAME"])
    lease_rules = [r for role in find(objects, "Role") for r in role["rules"] if "leases" in r["resources"]]
    assert any(r.get("resourceNames") == [c["LEADER_LEASE_NAME"]] for r in lease_rules)
    cert_rules = [r for role in find(objects, "Role") for r in role["rules"] if r.get("resourceNames") == [c["WEBHOOK_CERT_SECRET"]]]
    assert cert_rules, "the operator must be able to keep its self-managed webhook certificate Secret"


def test_a_disruption_budget_that_would_block_drains_is_refused():
    helm = need("helm_python")
    chart = helm.Chart.load(str(CHART))
    with pytest.raises(helm.HelmError) as e:
        chart.render(values={"replicaCount": 1}, name="gatehouse", namespace=NAMESPACE)
    assert "must be below replicaCount" in str(e.value)
    # A percentage is left to the user.
    chart.render(values={"replicaCount": 1, "podDisruptionBudget": {"minAvailable": "50%"}}, name="gatehouse", namespace=NAMESPACE)
