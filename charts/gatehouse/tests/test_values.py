"""values.yaml is documented for helm-docs, and values.schema.json guards it."""

from __future__ import annotations

import json
import re

import pytest

from conftest import CHART, NAMESPACE, RELEASE, need

VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"


def documented_paths() -> tuple[set[str], list[str]]:
    """Key paths of values.yaml, and those with a helm-docs `# --` comment right above them."""
    documented, keys = set(), []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in VALUES.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
            continue
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        m = re.match(r"^(\s*)([A-Za-z0-9_.-]+):", line)
        if not m:
            comment = []
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [m.group(2)])
        stack.append((indent, m.group(2)))
        keys.append(path)
        if any(c.startswith("# --") for c in comment):
            documented.add(path)
        comment = []
    return documented, keys


def leaves(value, prefix=""):
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def test_every_value_has_a_helm_docs_comment():
    yaml = need("yaml")
    documented, _ = documented_paths()
    values = yaml.safe_load(VALUES.read_text())
    missing = []
    for leaf in leaves(values):
        parts = leaf.split(".")
        # A value is documented by its own `# --` comment or by one on a parent it belongs to
        # (resources, documented as a whole).
        if not any(".".join(parts[:i]) in documented for i in range(len(parts), 0, -1)):
            missing.append(leaf)
    assert not missing, f"values without a `# --` comment: {missing}"


def test_the_comment_check_notices_a_missing_comment(tmp_path, monkeypatch):
    monkeypatch.setattr(__import__("test_values"), "VALUES", tmp_path / "values.yaml")
    (tmp_path / "values.yaml").write_text("# -- Documented.\na: 1\nb:\n  # -- Documented.\n  c: 2\n  d: 3\n")
    documented, keys = documented_paths()
    assert keys == ["a", "b", "b.c", "b.d"] and documented == {"a", "b.c"}


def test_schema_covers_every_value():
    yaml = need("yaml")
    schema = json.loads(SCHEMA.read_text())
    assert schema["additionalProperties"] is False

    def walk(values, node, path):
        for key, value in values.items():
            assert key in node.get("properties", {}), f"{path}{key} is not in values.schema.json"
            child = node["properties"][key]
            if isinstance(value, dict) and child.get("additionalProperties") is False:
                walk(value, child, f"{path}{key}.")

    walk(yaml.safe_load(VALUES.read_text()), schema, "")


def test_defaults_satisfy_the_schema():
    helm = need("helm_python")
    helm.Chart.load(str(CHART)).validate_schema({})


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"replicaCount": 0}, "/replicaCount"),
        ({"webhook": {"timeoutSeconds": 10}}, "/webhook/timeoutSeconds"),
        ({"webhook": {"port": 443}}, "/webhook/port"),
        ({"webhook": {"certManager": {"issuerRef": {"kind": "Vault"}}}}, "/webhook/certManager/issuerRef/kind"),
        ({"sidecar": {"nativeSidecars": "yes"}}, "/sidecar/nativeSidecars"),
        ({"sidecar": {"image": {"digest": "latest"}}}, "/sidecar/image/digest"),
        ({"logFormat": "xml"}, "/logFormat"),
        ({"watchNamespace": "Team_A"}, "/watchNamespace"),
        ({"crds": {"install": "false"}}, "/crds/install"),
        ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
        ({"replicas": 3}, "replicas"),  # a typo of replicaCount
        ({"image": {"repo": "x"}}, "repo"),
    ],
)
def test_schema_rejects_bad_values_at_render(bad, where):
    helm = need("helm_python")
    chart = helm.Chart.load(str(CHART))
    with pytest.raises(helm.HelmValuesError) as e:
        chart.render(values=bad, name=RELEASE, namespace=NAMESPACE)
    assert where in str(e.value), str(e.value)
