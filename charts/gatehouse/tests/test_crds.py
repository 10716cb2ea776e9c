"""The chart's CRDs are exactly the generated ones, and upgrade with the release."""

from __future__ import annotations

from conftest import CHART, NAMESPACE, REPO, SCENARIOS, consts, find, need, one, render_objects, strip_meta

GENERATED = REPO / "crds" / "manifests"
COPIES = CHART / "files" / "crds"
REFRESH = "cp crds/manifests/*.yaml charts/gatehouse/files/crds/"


def test_chart_copies_match_the_generated_crds():
    generated = {p.name: p.read_bytes() for p in GENERATED.glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in COPIES.glob("*.yaml")}
    assert generated, f"no CRDs in {GENERATED}"
    assert sorted(copies) == sorted(generated), f"CRD files differ from crds/manifests; refresh with: {REFRESH}"
    for name, content in generated.items():
        assert copies[name] == content, f"charts/gatehouse/files/crds/{name} drifted from crds/manifests; refresh with: {REFRESH}"


def test_rendered_crds_carry_the_generated_content():
    yaml = need("yaml")
    rendered = {o["metadata"]["name"]: strip_meta(o) for o in find(render_objects({}), "CustomResourceDefinition")}
    for path in sorted(GENERATED.glob("*.yaml")):
        expected = yaml.safe_load(path.read_text())
        name = expected["metadata"]["name"]
        assert name in rendered, f"{name} is not rendered"
        got = rendered[name]
        meta = got["metadata"]
        # The chart adds labels and the keep policy, and names its own webhook Service for the
        # conversion (crds/manifests/ names the default one); nothing else may differ.
        assert meta.pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert meta.pop("labels")["app.kubernetes.io/part-of"] == "gatehouse"
        if "conversion" in expected["spec"]:
            assert got["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["namespace"] == NAMESPACE
            got["spec"]["conversion"] = expected["spec"]["conversion"]
        assert got == expected, f"rendered {name} differs from {path.name}"
    assert len(rendered) == len(list(GENERATED.glob("*.yaml")))


def test_crd_toggles():
    assert not find(render_objects(SCENARIOS["crds-off-minimal"]), "CustomResourceDefinition")
    crds = find(render_objects(SCENARIOS["everything-on"]), "CustomResourceDefinition")
    assert len(crds) == 2
    for crd in crds:
        annotations = dict(crd["metadata"]["annotations"])
        if crd["metadata"]["name"] == "ssoconfigs.gatehouse.dev":
            # everything-on uses cert-manager: its cainjector fills the conversion caBundle.
            assert annotations.pop("cert-manager.io/inject-ca-from") == f"{NAMESPACE}/gatehouse-webhook"
        assert annotations == {"argocd.argoproj.io/sync-options": "Prune=false"}


def test_ssoconfigs_are_converted_by_this_releases_webhook():
    """SsoConfig serves gatehouse.dev/v1alpha1 (deprecated) and v1alpha2 (storage); the API server
    converts between them by calling the operator's webhook (POST /convert) through the chart's
    webhook Service, the one the MutatingWebhookConfiguration uses. caBundle is never rendered:
    the operator or cert-manager's cainjector writes it, and Helm leaves it alone."""
    c = consts()
    for values, port in (({}, 8443), ({"webhook": {"port": 9443}}, 9443)):
        objects = render_objects(values)
        crd = one(objects, "CustomResourceDefinition", "ssoconfigs.gatehouse.dev")
        conversion = crd["spec"]["conversion"]
        assert conversion["strategy"] == "Webhook"
        assert conversion["webhook"]["conversionReviewVersions"] == ["v1"]
        client_config = conversion["webhook"]["clientConfig"]
        assert "caBundle" not in client_config
        assert client_config["service"] == {
            "name": c["WEBHOOK_NAME"],
            "namespace": NAMESPACE,
            "path": c["WEBHOOK_CONVERT_PATH"],
            "port": port,
        }
        mutating = one(objects, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["service"]
        assert (mutating["name"], mutating["namespace"], mutating["port"]) == (
            client_config["service"]["name"], client_config["service"]["namespace"], client_config["service"]["port"])
        service = one(objects, "Service", c["WEBHOOK_NAME"])
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
        versions = {v["name"]: v for v in crd["spec"]["versions"]}
        assert versions["v1alpha2"]["served"] is True and versions["v1alpha2"]["storage"] is True
        assert versions["v1alpha1"]["served"] is True and versions["v1alpha1"]["storage"] is False
        assert versions["v1alpha1"]["deprecated"] is True
        assert "gatehouse.dev/v1alpha2" in versions["v1alpha1"]["deprecationWarning"]
        # SsoUser has one version and needs no conversion.
        assert "conversion" not in one(objects, "CustomResourceDefinition", "ssousers.gatehouse.dev")["spec"]


def test_cert_manager_injects_the_ca_into_the_conversion_webhook_too():
    objects = render_objects(SCENARIOS["cert-manager-cluster-issuer"])
    crd = one(objects, "CustomResourceDefinition", "ssoconfigs.gatehouse.dev")
    mutating = one(objects, "MutatingWebhookConfiguration")
    injected = mutating["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert crd["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == injected
    user_crd = one(objects, "CustomResourceDefinition", "ssousers.gatehouse.dev")
    assert "cert-manager.io/inject-ca-from" not in user_crd["metadata"].get("annotations", {})
    crd = one(render_objects({}), "CustomResourceDefinition", "ssoconfigs.gatehouse.dev")
    assert "cert-manager.io/inject-ca-from" not in crd["metadata"]["annotations"]
