"""Shared fixtures of the chart tests: the real Helm SDK renders the chart offline."""

from __future__ import annotations

import importlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
RELEASE = "gatehouse"
NAMESPACE = "gatehouse-system"
INSTALL = "python3 -m pip install -r charts/gatehouse/tests/requirements.txt"

# Kubernetes versions the rendered manifests are validated against: the oldest the chart supports
# (Chart.yaml kubeVersion), the first with native sidecars on by default, and a current one.
KUBE_VERSIONS = ["1.27", "1.30", "1.33"]

# Value sets rendered by every test that takes `scenario`: defaults, and every optional feature.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything-on": {
        "watchNamespace": "team-a",
        "image": {"digest": "sha256:" + "a" * 64, "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "sidecar": {
            "image": {"repository": "registry.example/gatehouse-sidecar", "tag": "0.1.0-rc1"},
            "nativeSidecars": False,
        },
        "webhook": {
            "timeoutSeconds": 3,
            "excludeNamespaces": ["monitoring"],
            "certManager": {"enabled": True},
        },
        "logFormat": "text",
        "logLevel": "debug",
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "networkPolicy": {
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
        },
        "crds": {"keep": False, "annotations": {"argocd.argoproj.io/sync-options": "Prune=false"}},
        "serviceAccount": {"annotations": {"example.com/role": "gatehouse"}},
        "priorityClassName": "system-cluster-critical",
        "podAnnotations": {"example.com/team": "platform"},
        "podLabels": {"example.com/tier": "control"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "gatehouse"}},
            }
        ],
    },
    "cert-manager-cluster-issuer": {
        "webhook": {"certManager": {"enabled": True, "issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}},
    },
    # One namespace, cert-manager, and SsoConfigs in TokenReview mode: the only cluster-wide
    # rules are the ones that binding needs.
    "token-review-namespaced": {
        "watchNamespace": "team-a",
        "tokenReview": {"enabled": True},
        "webhook": {"certManager": {"enabled": True}},
    },
    "crds-off-minimal": {
        "crds": {"install": False},
        "replicaCount": 1,
        "podDisruptionBudget": {"enabled": False},
        "networkPolicy": {"enabled": False},
    },
}


def need(module: str):
    """Import a test tool, or fail (never skip) with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - exercised only on a machine without the tools
        pytest.fail(f"{module} is missing ({e}); install the chart test tools: {INSTALL}", pytrace=False)


@lru_cache(maxsize=1)
def _chart():
    helm = need("helm_python")
    return helm.Chart.load(str(CHART))


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template gatehouse -n gatehouse-system`."""
    return dict(_render_cached(json.dumps(values or {}, sort_keys=True)))


@lru_cache(maxsize=64)
def _render_cached(values_json: str) -> tuple[tuple[str, str], ...]:
    rendered = _chart().render(values=json.loads(values_json), name=RELEASE, namespace=NAMESPACE, is_install=True)
    return tuple(sorted(rendered.items()))


def render_objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders (NOTES.txt excluded)."""
    yaml = need("yaml")
    objects = []
    for path, text in sorted(render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("__template__", path)
                objects.append(doc)
    return objects


def strip_meta(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "__template__"}


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@lru_cache(maxsize=1)
def consts() -> dict[str, str]:
    """String and integer constants of crds/src/consts.rs: the names the operator binary uses."""
    text = (REPO / "crds" / "src" / "consts.rs").read_text()
    found = dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', text))
    found.update(re.findall(r"pub const (\w+): (?:u16|i64|u32) = (\d+);", text))
    return found


@pytest.fixture(params=list(SCENARIOS), ids=list(SCENARIOS))
def scenario(request) -> tuple[str, dict[str, Any]]:
    return request.param, SCENARIOS[request.param]
