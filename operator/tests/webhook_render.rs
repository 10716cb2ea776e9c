//! `gatehouse-operator render -f examples/` prints the sample Deployment with the sidecar
//! injected by the webhook's own function, wired to the objects the operator renders for its
//! SsoConfig (environment Secret, ServiceAccount token Secret), and the result is a valid
//! Kubernetes 1.33 Deployment.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("operator/ sits in the workspace")
        .to_path_buf()
}

fn render_examples() -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse-operator"))
        .args(["render", "-f", "examples/"])
        .current_dir(repo_root())
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    serde_saphyr::from_multiple::<Value>(&text)
        .expect("render prints YAML documents")
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("render prints {kind} {name}"))
}

#[test]
fn render_shows_the_injected_sample_deployment() {
    let docs = render_examples();
    let deployment = find(&docs, "Deployment", "portal");
    let pod = &deployment["spec"]["template"]["spec"];
    let sidecar = &pod["initContainers"][0];
    assert_eq!(sidecar["name"], "gatehouse");
    assert_eq!(sidecar["restartPolicy"], "Always");
    assert_eq!(
        pod["containers"][0]["name"], "app",
        "the app container is kept"
    );
    assert!(
        deployment["spec"]["template"]["metadata"]["annotations"]["gatehouse.dev/injected-version"]
            .is_string()
    );

    // The names the sidecar uses are the objects the operator renders for SsoConfig portal.
    let env_secret = sidecar["envFrom"][0]["secretRef"]["name"]
        .as_str()
        .expect("envFrom");
    let env = find(&docs, "Secret", env_secret);
    assert_eq!(env["metadata"]["namespace"], "demo");
    let token_volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "gatehouse-token")
        .expect("token volume");
    let token_secret = token_volume["secret"]["secretName"]
        .as_str()
        .expect("secretName");
    let token = find(&docs, "Secret", token_secret);
    assert_eq!(token["type"], "kubernetes.io/service-account-token");
    let account = token["metadata"]["annotations"]["kubernetes.io/service-account.name"]
        .as_str()
        .expect("token names its ServiceAccount");
    find(&docs, "ServiceAccount", account);
}

#[test]
fn the_rendered_deployment_matches_the_kubernetes_schema() {
    let probe = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--version"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "kubernetes-validate is not installed for python3: run the suite with `cargo xtask test` (it installs the pinned tools into target/py-venv), or pip install 'kubernetes-validate>=1.33'"
    );
    let docs = render_examples();
    let deployment = find(&docs, "Deployment", "portal");
    let path = std::env::temp_dir().join(format!("gatehouse-render-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(deployment).expect("json")).expect("write");
    let out = Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "-k",
            "1.33.0",
            "--strict",
            "--quiet",
        ])
        .arg(&path)
        .output()
        .expect("run kubernetes-validate");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
