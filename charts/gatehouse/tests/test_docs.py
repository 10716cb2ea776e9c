"""The docs stay true: the configuration reference matches the CRDs, the Argo CD health checks
run, the GitOps and install snippets parse and name the real objects and values."""

from __future__ import annotations

import importlib.util
import re

import pytest

from conftest import CHART, REPO, consts, need

DOCS = REPO / "docs"


def code_blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def yaml_docs(page: str) -> list[dict]:
    yaml = need("yaml")
    return [d for block in code_blocks(page, "yaml") for d in yaml.safe_load_all(block) if isinstance(d, dict)]


def test_configuration_reference_matches_the_crds():
    need("yaml")
    spec = importlib.util.spec_from_file_location("gen_configuration", DOCS / "gen_configuration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "configuration.md").read_text() == module.generate(), (
        "docs/configuration.md is stale: run python3 docs/gen_configuration.py"
    )


def test_configuration_reference_lists_every_spec_field():
    yaml = need("yaml")
    text = (DOCS / "configuration.md").read_text()
    for path in sorted((REPO / "crds" / "manifests").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        storage = next(v for v in crd["spec"]["versions"] if v["storage"])
        spec = storage["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for field in spec["properties"]:
            assert f"`spec.{field}`" in text, f"{crd['spec']['names']['kind']} spec.{field} missing"


def test_embedded_kubernetes_types_are_collapsed_to_one_row():
    need("yaml")
    spec = importlib.util.spec_from_file_location("gen_configuration", DOCS / "gen_configuration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.generate()
    for path in module.EMBEDDED:
        assert f"| `{path}` |" in text, f"{path}: no such field in the CRDs (the collapse never fires)"
        assert f"| `{path}." not in text and f"| `{path}[]." not in text, f"{path}: its fields are listed"


# --- Argo CD health checks, run by a real Lua interpreter --------------------------------------


def health_scripts() -> dict[str, str]:
    (cm,) = [d for d in yaml_docs("gitops.md") if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "argocd-cm"]
    return {k.rsplit("_", 1)[1]: v for k, v in cm["data"].items() if k.startswith("resource.customizations.health.gatehouse.dev_")}


def run_health(kind: str, obj: dict) -> dict:
    lupa = need("lupa")
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    # Argo CD runs the script as a chunk with `obj` set and reads the table it returns.
    result = lua.execute(health_scripts()[kind])
    return {"status": result["status"], "message": result["message"] or ""}


def ssoconfig(generation=2, observed=2, ready=None):
    obj = {"apiVersion": "gatehouse.dev/v1alpha1", "kind": "SsoConfig", "metadata": {"name": "portal", "generation": generation}, "spec": {}}
    if ready is not None:
        status, reason, message = ready
        obj["status"] = {
            "observedGeneration": observed,
            "conditions": [
                {"type": "Valid", "status": "True", "reason": "Valid", "message": "", "observedGeneration": observed},
                {"type": "Ready", "status": status, "reason": reason, "message": message, "observedGeneration": observed},
            ],
        }
    return obj


@pytest.mark.parametrize(
    "obj, status, message_part",
    [
        (ssoconfig(), "Progressing", "Waiting"),
        (ssoconfig(ready=("True", "Reconciled", "rendered")), "Healthy", "rendered"),
        (ssoconfig(ready=("False", "SecretsUnresolved", "Secret portal-okta not found")), "Degraded", "SecretsUnresolved: Secret portal-okta"),
        (ssoconfig(ready=("False", "InvalidSpec", "Fix the spec")), "Degraded", "InvalidSpec"),
        (ssoconfig(generation=3, observed=2, ready=("True", "Reconciled", "old")), "Progressing", "generation 3"),
        (ssoconfig(ready=("Unknown", "Pending", "")), "Progressing", ""),
    ],
)
def test_ssoconfig_health_check(obj, status, message_part):
    got = run_health("SsoConfig", obj)
    assert got["status"] == status and message_part in got["message"], got


def test_ssouser_health_check():
    user = {"kind": "SsoUser", "metadata": {"name": "okta-1"}, "spec": {"config": "portal", "suspended": False}}
    assert run_health("SsoUser", user)["status"] == "Healthy"
    assert run_health("SsoUser", dict(user, spec={"suspended": True}))["status"] == "Suspended"
    missing = dict(user, status={"conditions": [{"type": "Ready", "status": "False", "reason": "ConfigNotFound", "message": "no SsoConfig portal"}]})
    got = run_health("SsoUser", missing)
    assert got["status"] == "Degraded" and "ConfigNotFound" in got["message"]


# --- GitOps and install snippets ------------------------------------------------------------------


def test_argo_application_ignores_only_the_ca_bundle():
    c = consts()
    (app,) = [d for d in yaml_docs("gitops.md") if d.get("kind") == "Application"]
    assert app["spec"]["source"]["path"] == "charts/gatehouse"
    # The two caBundles the operator (or cert-manager) writes, and nothing else.
    (ignore, conversion) = app["spec"]["ignoreDifferences"]
    assert ignore["kind"] == "MutatingWebhookConfiguration" and ignore["name"] == c["WEBHOOK_NAME"]
    assert ignore["jqPathExpressions"] == [".webhooks[]?.clientConfig.caBundle"]
    assert conversion["kind"] == "CustomResourceDefinition" and conversion["name"] == "ssoconfigs.gatehouse.dev"
    assert conversion["jqPathExpressions"] == [".spec.conversion.webhook.clientConfig.caBundle"]
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
    # The values it passes are accepted by the chart's schema.
    helm = need("helm_python")
    helm.Chart.load(str(CHART)).validate_schema(app["spec"]["source"]["helm"]["valuesObject"])


def test_flux_helm_release_points_at_the_chart():
    docs = yaml_docs("gitops.md")
    (release,) = [d for d in docs if d.get("kind") == "HelmRelease"]
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert release["spec"]["chart"]["spec"]["chart"] == "./charts/gatehouse"
    helm = need("helm_python")
    helm.Chart.load(str(CHART)).validate_schema(release["spec"]["values"])


def test_install_values_table_names_real_values():
    yaml = need("yaml")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    text = (DOCS / "install.md").read_text()
    table = text[text.index("| value | default |"):text.index("To see exactly")]
    names = re.findall(r"^\| `([A-Za-z.]+)`", table, flags=re.M)
    names += [n for row in re.findall(r"^\| (`[^|]+)\|", table, flags=re.M) for n in re.findall(r"`([A-Za-z.]+)`", row)]
    assert len(set(names)) >= 12
    for name in set(names):
        if name.startswith("."):
            continue
        node = values
        for part in name.split("."):
            assert isinstance(node, dict) and part in node, f"install.md names {name}, which values.yaml lacks"
            node = node[part]


def test_idp_pages_give_the_exact_callback_paths():
    c = consts()
    for page, provider in [("idp-okta.md", "okta"), ("idp-entra.md", "entra"), ("idp-auth0.md", "auth0"), ("idp-cognito.md", "cognito"), ("idp-google.md", "google")]:
        assert f"{c['OIDC_CALLBACK_PREFIX']}{provider}" in (DOCS / page).read_text(), page
    saml = (DOCS / "idp-saml.md").read_text()
    assert c["SAML_ACS_PATH"] in saml and c["SAML_METADATA_PATH"] in saml


def test_snippets_are_valid_ssoconfigs():
    """Every SsoConfig in the docs passes the CRD's OpenAPI schema (structure, enums, patterns)."""
    yaml = need("yaml")
    jsonschema = need("jsonschema")
    crd = yaml.safe_load((REPO / "crds" / "manifests" / "ssoconfigs.gatehouse.dev.yaml").read_text())
    schemas = {f"gatehouse.dev/{v['name']}": v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"]}
    checked = 0
    for page in sorted(DOCS.glob("*.md")):
        for doc in yaml_docs(page.name):
            if doc.get("kind") == "SsoConfig":
                assert doc.get("apiVersion") == "gatehouse.dev/v1alpha2", (
                    f"{page.name}: SsoConfigs in the docs are written as gatehouse.dev/v1alpha2")
                jsonschema.validate({"spec": doc["spec"]}, schemas[doc["apiVersion"]])
                checked += 1
    assert checked >= 6


def test_relative_links_resolve():
    for page in sorted(DOCS.glob("*.md")):
        text = re.sub(r"`[^`\n]*`", "", page.read_text())  # links never sit in inline code
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).resolve().exists(), f"{page.name}: broken link {target}"


def operator_reasons() -> set[str]:
    """Condition and refusal reasons the operator can write: the third argument of each
    `conditions::new(...)` and the arms of each `fn reason(&self)` under operator/src."""
    reasons: set[str] = set()
    for path in (REPO / "operator" / "src").rglob("*.rs"):
        text = path.read_text()
        reasons |= set(re.findall(r'conditions::new\(\s*\w+,\s*[^,]+,\s*"(\w+)"', text, flags=re.S))
        for body in re.findall(r"fn reason\(&?self\)[^{]*\{(.*?)\n    \}", text, flags=re.S):
            reasons |= set(re.findall(r'=> "(\w+)"', body))
    return reasons


def sidecar_directory_reasons() -> set[str]:
    """Reasons the sidecar's user directory gives: sign-in refusals and refused sessions."""
    reasons: set[str] = set()
    for rel in ("error.rs", "kubernetes.rs"):
        text = (REPO / "directory" / "src" / rel).read_text()
        for body in re.findall(r"fn reason\(&?self\)[^{]*\{(.*?)\n    \}", text, flags=re.S):
            reasons |= set(re.findall(r'=> "(\w+)"', body))
    return reasons


def test_troubleshooting_explains_every_reason():
    sidecar = sidecar_directory_reasons()
    assert len(sidecar) >= 11, f"found only {sorted(sidecar)}: the extraction in this test needs updating"
    reasons = operator_reasons() | sidecar
    assert len(reasons) >= 15, f"found only {sorted(reasons)}: the extraction in this test needs updating"
    page = (DOCS / "troubleshooting.md").read_text()
    missing = sorted(r for r in reasons if f"`{r}`" not in page)
    assert not missing, f"docs/troubleshooting.md does not explain {missing}"


def test_services_in_front_of_the_sidecar_say_plain_http():
    """Traefik (k3s, k3d) speaks TLS to a backend port named `https…` or numbered 443, and the
    sidecar speaks plain HTTP: every Service the docs and examples put in front of it must name
    its port for what it serves, or the documented Ingress fails on every request."""
    yaml = need("yaml")
    c = consts()
    docs = [d for page in sorted(DOCS.glob("*.md")) for d in yaml_docs(page.name)]
    for path in sorted((REPO / "examples").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    fronting = [
        port
        for d in docs
        if d.get("kind") == "Service"
        for port in d["spec"].get("ports", [])
        if port.get("targetPort") in (c["SIDECAR_PORT_NAME"], int(c["SIDECAR_PORT"]))
    ]
    assert fronting, "no Service in docs/ or examples/ targets the sidecar's port"
    for port in fronting:
        assert not str(port.get("name", "")).lower().startswith("https"), port
        assert port.get("port") != 443, port
        assert port.get("appProtocol", "http") in ("http", "kubernetes.io/h2c"), port
    # The Ingress of install.md reaches the sample app's Service on one of those ports.
    (ingress,) = [d for d in yaml_docs("install.md") if d.get("kind") == "Ingress"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    (service,) = [
        d for d in yaml.safe_load_all((REPO / "examples" / "sample-app.yaml").read_text())
        if isinstance(d, dict) and d.get("kind") == "Service" and d["metadata"]["name"] == backend["name"]
    ]
    assert backend["port"]["number"] in [p["port"] for p in service["spec"]["ports"]]


def test_real_cluster_page_lists_every_cluster_test():
    """real-cluster.md's table says what each test of the real-cluster suite shows: a test added to
    operator/tests/cluster.rs without a row there fails here."""
    source = (REPO / "operator" / "tests" / "cluster.rs").read_text()
    tests = re.findall(r'#\[ignore = "needs a cluster[^"]*"\]\s*async fn (\w+)', source)
    assert len(tests) >= 8, f"found only {tests}: the extraction in this test needs updating"
    page = (DOCS / "real-cluster.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \|", page, flags=re.M))
    missing = sorted(set(tests) - rows)
    assert not missing, f"real-cluster.md's test table lacks {missing}"
    stale = sorted(r for r in rows if r.count("_") >= 3 and r not in tests)
    assert not stale, f"real-cluster.md's test table names tests that no longer exist: {stale}"


def test_what_helm_prints_names_every_identity_provider_guide_and_nothing_shipped_as_planned():
    """NOTES.txt is what `helm install` prints and Chart.yaml's description what `helm search`
    shows: both said "SAML planned" long after SAML shipped."""
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    chart = (CHART / "Chart.yaml").read_text()
    names = {"okta": "Okta", "entra": "Entra ID", "auth0": "Auth0", "cognito": "Cognito", "google": "Google", "saml": "SAML"}
    guides = sorted(p.stem.removeprefix("idp-") for p in DOCS.glob("idp-*.md"))
    assert len(guides) >= 6
    for guide in guides:
        assert guide in names, f"docs/idp-{guide}.md is new: name it in NOTES.txt and in this test"
        assert names[guide] in notes, f"NOTES.txt does not name the {names[guide]} guide"
        assert names[guide] in chart, f"Chart.yaml's description does not name {names[guide]}"
    shipped = [CHART / "Chart.yaml", CHART / "templates" / "NOTES.txt", REPO / "README.md", *DOCS.glob("*.md")]
    for path in shipped:
        assert not re.search(r"\bplanned\b", path.read_text(), flags=re.I), f"{path.name} calls something planned"
