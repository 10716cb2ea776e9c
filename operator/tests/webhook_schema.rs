//! The injected pods of the golden files, and the webhook registration, validate against the
//! Kubernetes 1.33 OpenAPI schema (strict: unknown fields fail) with PyPI `kubernetes-validate`.

mod webhook_common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use webhook_common::{golden_dir, injected_pods};

const KUBERNETES_VERSION: &str = "1.33.0";
const INSTALL: &str = "`cargo xtask test` (it installs the pinned tools into target/py-venv), or pip install 'kubernetes-validate>=1.33'";

fn validator_available() {
    let probe = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--version"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "kubernetes-validate is not installed ({}); install it with: {INSTALL}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(error) => {
            panic!("python3 is not available ({error}); install python3, then: {INSTALL}")
        }
    }
}

/// Run the validator on `files`; `(passed, output)`.
fn validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "-k",
            KUBERNETES_VERSION,
            "--strict",
            "--quiet",
        ])
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Pods created through `generateName` reach the webhook without a name; the API server names
/// them afterwards. The validator needs one, so give it the name the server would.
fn as_stored(mut pod: Value) -> Value {
    if pod["metadata"].get("name").is_none() {
        let prefix = pod["metadata"]["generateName"]
            .as_str()
            .unwrap_or("pod-")
            .to_string();
        pod["metadata"]["name"] = Value::String(format!("{prefix}x7k2p"));
    }
    pod
}

#[test]
fn injected_pods_and_the_registration_match_the_kubernetes_schema() {
    validator_available();
    let dir = scratch_dir("schema");
    let mut files = Vec::new();
    let pods = injected_pods();
    assert!(pods.len() >= 6, "the golden cases produce injected pods");
    for (case, pod) in pods {
        let path = dir.join(format!("{case}.pod.json"));
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&as_stored(pod)).expect("json"),
        )
        .expect("write");
        files.push(path);
    }
    files.push(golden_dir().join("mutatingwebhookconfiguration.json"));
    let (passed, output) = validate(&files);
    assert!(passed, "schema validation failed:\n{output}");
}

#[test]
fn the_validator_rejects_a_broken_pod() {
    // A control: if validation silently passed everything, the test above would prove nothing.
    validator_available();
    let dir = scratch_dir("schema-control");
    let (_, pod) = injected_pods().into_iter().next().expect("an injected pod");
    let mut pod = as_stored(pod);
    pod["spec"]["initContainers"][0]["securityContext"]["runAsNonRoot"] =
        Value::String("yes".into());
    let path = dir.join("broken.pod.json");
    std::fs::write(&path, serde_json::to_vec(&pod).expect("json")).expect("write");
    let (passed, output) = validate(&[path]);
    assert!(
        !passed,
        "a pod with a string runAsNonRoot must fail validation:\n{output}"
    );
}
