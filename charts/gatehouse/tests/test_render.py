"""The real Helm SDK lints and renders the chart; the rendered objects validate against the
Kubernetes schemas of several versions."""

from __future__ import annotations

import pytest

from conftest import CHART, KUBE_VERSIONS, NAMESPACE, SCENARIOS, need, render, render_objects, strip_meta

# Kinds served by CRDs of other projects: kubernetes-validate ships only the built-in schemas.
# They are checked field by field in test_features.py instead.
FOREIGN_KINDS = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_lint_is_clean(scenario, kube_version):
    helm = need("helm_python")
    name, values = scenario
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not report["errors"] and not problems, f"helm lint ({name}, {kube_version}): {report}"


def test_supported_kubernetes_versions_are_the_validated_ones():
    """Chart.yaml's kubeVersion floor is the oldest version the manifests are validated against."""
    yaml = need("yaml")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={KUBE_VERSIONS[0]}.0-0"
    assert chart["appVersion"] == "0.1.0"


def test_every_scenario_renders_objects(scenario):
    name, values = scenario
    objects = render_objects(values)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ServiceAccount", "Service", "MutatingWebhookConfiguration", "Role"} <= kinds, name
    for o in objects:
        assert o["metadata"]["name"], o
        if o["kind"] not in {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "CustomResourceDefinition"}:
            assert o["metadata"].get("namespace"), f"{o['kind']} {o['metadata']['name']} renders without a namespace"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(scenario, kube_version):
    kv = need("kubernetes_validate")
    name, values = scenario
    validated, foreign = 0, []
    for obj in render_objects(values):
        key = (obj["apiVersion"], obj["kind"])
        if key in FOREIGN_KINDS:
            foreign.append(f"{obj['kind']}/{obj['metadata']['name']}")
            continue
        # strict: unknown fields are errors, as kubectl --validate=strict reports them.
        kv.validate(strip_meta(obj), kube_version, strict=True)
        validated += 1
    assert validated >= 8, f"only {validated} objects validated"
    if foreign:
        # Printed so the run shows what the Kubernetes schemas did not cover.
        print(f"[{name} @ {kube_version}] not in the Kubernetes schemas (CRDs of cert-manager / "
              f"Prometheus Operator; fields asserted in test_features.py): {', '.join(foreign)}")


def test_validation_catches_a_broken_manifest():
    """The schema check is real: a field of the wrong type in a rendered Deployment fails it."""
    kv = need("kubernetes_validate")
    deployment = next(o for o in render_objects({}) if o["kind"] == "Deployment")
    broken = strip_meta(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, "1.33", strict=True)


def test_scenarios_cover_every_optional_feature():
    """Each toggle of values.yaml is turned both ways by some scenario, so none goes unrendered."""
    on = SCENARIOS["everything-on"]
    assert on["webhook"]["certManager"]["enabled"] and on["serviceMonitor"]["enabled"]
    assert on["watchNamespace"] and on["crds"]["keep"] is False and on["sidecar"]["nativeSidecars"] is False
    off = SCENARIOS["crds-off-minimal"]
    assert off["crds"]["install"] is False and off["podDisruptionBudget"]["enabled"] is False
    assert off["networkPolicy"]["enabled"] is False


def test_notes_tell_the_next_step():
    notes = render({})["gatehouse/templates/NOTES.txt"]
    assert "rollout status deployment/gatehouse-operator" in notes
    assert "gatehouse.dev/inject" in notes and "callbackUrls" in notes
    notes = render({"crds": {"install": False}, "webhook": {"certManager": {"enabled": True}}})["gatehouse/templates/NOTES.txt"]
    assert "crds.install=false" in notes and "get certificate" in notes
