"""The GitHub Actions workflows cannot run here: actionlint checks them (syntax, expressions,
action inputs, and the `run:` scripts through shellcheck), and these tests hold them to what they
promise: images pushed where the chart pulls them from, the chart as an OCI artifact, the
real-cluster job doing what docs/real-cluster.md says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHART, REPO, need

WORKFLOWS = REPO / ".github" / "workflows"
FILES = ["ci.yml", "release.yml", "e2e.yml"]


def actionlint() -> str:
    """The actionlint binary of the pinned wheel (beside this interpreter), with shellcheck."""
    found = Path(sys.executable).parent / "actionlint"
    binary = str(found) if found.is_file() else shutil.which("actionlint")
    if binary is None:
        pytest.fail("actionlint is missing; install the chart test tools: "
                    "python3 -m pip install -r charts/gatehouse/tests/requirements.txt", pytrace=False)
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing (actionlint checks run: scripts with it): "
                    "apt-get install -y shellcheck, or cargo xtask setup as root", pytrace=False)
    return binary


def lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", *map(str, paths)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def workflow(name: str) -> dict:
    yaml = need("yaml")
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_every_workflow_passes_actionlint():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == sorted(FILES)
    result = lint(*(WORKFLOWS / f for f in FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_refuses_a_broken_workflow(tmp_path):
    """The check above can fail: an unknown action input, a bad expression, a shell bug."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v5\n"
        "        with: {no-such-input: true}\n"
        "      - run: echo ${{ github.no_such_context }}\n"
        "      - run: cd $UNQUOTED_DIR && ls\n"
    )
    result = subprocess.run([actionlint(), "-no-color", str(broken)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    for problem in ["no-such-input", "no_such_context", "SC2086"]:
        assert problem in result.stdout, result.stdout


def test_release_pushes_the_images_the_chart_deploys():
    yaml = need("yaml")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    release = workflow("release.yml")
    assert list(release[True]["push"]) == ["tags"], "release runs on tags only"
    images = release["jobs"]["images"]
    pushed = {f"{release['env']['IMAGE_PREFIX']}/gatehouse-{image}" for image in images["strategy"]["matrix"]["image"]}
    assert pushed == {values["image"]["repository"], values["sidecar"]["image"]["repository"]}
    (build,) = [s for s in images["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["target"] == "${{ matrix.image }}"
    # The tag is checked against the workspace version and the chart's appVersion before anything.
    check = "\n".join(s.get("run", "") for s in release["jobs"]["version"]["steps"])
    assert "Cargo.toml" in check and "Chart.yaml" in check
    chart_job = "\n".join(s.get("run", "") for s in release["jobs"]["chart"]["steps"])
    assert "helm package charts/gatehouse" in chart_job
    assert 'helm push "dist/gatehouse-$VERSION.tgz" "$CHART_REPOSITORY"' in chart_job
    assert release["env"]["CHART_REPOSITORY"].startswith("oci://")


def test_ci_runs_fmt_clippy_and_the_whole_suite():
    ci = workflow("ci.yml")
    runs = [s.get("run", "") for job in ci["jobs"].values() for s in job["steps"]]
    assert "cargo fmt --all -- --check" in runs
    assert any(r.startswith("cargo clippy --workspace --all-targets") and r.endswith("-D warnings") for r in runs)
    assert ".ci/run" in runs
    assert "cargo xtask test" in (REPO / ".ci" / "run").read_text()


def test_e2e_installs_the_chart_on_kind_and_runs_what_the_docs_say():
    e2e = workflow("e2e.yml")
    (job,) = e2e["jobs"].values()
    steps = {s.get("name", s.get("uses", "")): s for s in job["steps"]}
    script = "\n".join(s.get("run", "") for s in job["steps"])
    assert any(str(s.get("uses", "")).startswith("helm/kind-action@") for s in job["steps"])
    assert "kind load docker-image" in script
    assert "helm install gatehouse charts/gatehouse" in script
    assert "-- --ignored" in script
    assert "kubectl -n demo port-forward" in script and "browser-login.mjs" in script
    assert "--replicas=0" in script
    docs = (REPO / "docs" / "real-cluster.md").read_text()
    for name in steps:
        if "/" not in name:
            assert f"`{name}`" in docs, f"docs/real-cluster.md does not say what the e2e step {name!r} does"


def test_real_cluster_doc_says_what_every_job_runs():
    docs = (REPO / "docs" / "real-cluster.md").read_text()
    for file in FILES:
        name = file.removesuffix(".yml")
        for job in workflow(file)["jobs"]:
            assert f"| `{name}` · `{job}` |" in docs, f"docs/real-cluster.md has no row for {name} · {job}"
