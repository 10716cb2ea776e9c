"""The chart against the operator binary it deploys: every argument the chart passes is one the
binary accepts, and the RBAC covers everything the operator creates (`gatehouse-operator render`
prints exactly those objects). Needs a built operator; skipped, loudly, without one."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import REPO, SCENARIOS, find, need, render_objects

BUILD = "cargo build -p gatehouse-operator"
# Flags of the webhook and injection settings (issue 5), named by the design brief and the inject
# module, that `gatehouse-operator run` does not parse yet: reported as XFAIL, never as a pass.
# Any other unknown flag fails. Remove this set once the CLI has them.
AWAITED = {"--webhook-port", "--webhook-cert-dir", "--sidecar-image", "--native-sidecars"}


def operator_binary() -> str:
    candidates = [os.environ.get("GATEHOUSE_OPERATOR_BIN", "")]
    candidates += [str(REPO / "target" / profile / "gatehouse-operator") for profile in ("debug", "release")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    pytest.skip(f"NOT RUN: no gatehouse-operator binary (build it: {BUILD}, or set GATEHOUSE_OPERATOR_BIN)")


def accepted_flags(binary: str) -> set[str]:
    flags = set()
    for command in (["--help"], ["run", "--help"]):
        out = subprocess.run([binary, *command], capture_output=True, text=True, timeout=60).stdout
        flags |= set(re.findall(r"(--[a-z][a-z0-9-]*)", out))
    return flags


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_operator_accepts_every_argument_the_chart_passes(name):
    binary = operator_binary()
    flags = accepted_flags(binary)
    assert "--namespace" in flags, f"`{binary} run --help` lists no flags: {sorted(flags)}"
    deployment = find(render_objects(SCENARIOS[name]), "Deployment")[0]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "run"
    unknown = [a for a in container["args"][1:] if a.split("=", 1)[0] not in flags]
    if unknown and {a.split("=", 1)[0] for a in unknown} <= AWAITED:
        pytest.xfail(f"the operator CLI does not accept {unknown} yet (flags of the injection webhook); "
                     "the chart's operator would exit at start until it does")
    assert not unknown, f"the operator would exit at start: `run` does not accept {unknown}"


def rendered_by_operator() -> list[dict]:
    yaml = need("yaml")
    binary = operator_binary()
    examples = sorted(p for p in (REPO / "examples").glob("*.yaml"))
    proc = subprocess.run([binary, "render", *sum((["-f", str(p)] for p in examples), [])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def allowed(rules, group, resource, verb):
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] and not r.get("resourceNames") for r in rules)


@pytest.mark.parametrize("name", ["defaults", "everything-on"])
def test_rbac_covers_what_the_operator_creates(name):
    objects = rendered_by_operator()
    chart = render_objects(SCENARIOS[name])
    namespaced = bool(SCENARIOS[name].get("watchNamespace"))
    rules = [r for role in find(chart, "Role" if namespaced else "ClusterRole") for r in role["rules"]
             if not namespaced or role["metadata"]["namespace"] == SCENARIOS[name]["watchNamespace"]]
    plural = {"Secret": "secrets", "ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings", "NetworkPolicy": "networkpolicies"}
    kinds = {o["kind"] for o in objects if o["kind"] in plural and o["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "gatehouse-operator"}
    assert {"Secret", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy"} <= kinds, kinds
    for kind in kinds:
        group = "" if kind in ("Secret", "ServiceAccount") else ("networking.k8s.io" if kind == "NetworkPolicy" else "rbac.authorization.k8s.io")
        for verb in ("get", "create", "patch"):
            assert allowed(rules, group, plural[kind], verb), f"chart RBAC lacks {verb} {plural[kind]}"
    # The sidecar Role the operator writes: RBAC lets the operator create it only if it holds
    # every rule itself (it has no escalate or bind).
    for role in (o for o in objects if o["kind"] == "Role"):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert allowed(rules, group, resource, verb), f"operator cannot grant {verb} {group}/{resource}"
