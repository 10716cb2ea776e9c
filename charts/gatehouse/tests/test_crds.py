"""The chart's CRDs are exactly the generated ones, and upgrade with the release."""

from __future__ import annotations

from conftest import CHART, REPO, SCENARIOS, find, need, render_objects, strip_meta

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
        # The chart adds labels and the keep policy; nothing else may differ.
        assert meta.pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert meta.pop("labels")["app.kubernetes.io/part-of"] == "gatehouse"
        assert got == expected, f"rendered {name} differs from {path.name}"
    assert len(rendered) == len(list(GENERATED.glob("*.yaml")))


def test_crd_toggles():
    assert not find(render_objects(SCENARIOS["crds-off-minimal"]), "CustomResourceDefinition")
    crds = find(render_objects(SCENARIOS["everything-on"]), "CustomResourceDefinition")
    assert len(crds) == 2
    for crd in crds:
        assert crd["metadata"]["annotations"] == {"argocd.argoproj.io/sync-options": "Prune=false"}
