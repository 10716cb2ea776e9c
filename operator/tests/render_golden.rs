//! `gatehouse-operator render` on the shipped examples, through the real binary.
//!
//! Each valid example's output (secrets redacted) must equal its golden file under
//! `operator/tests/golden/`. After an intended change, regenerate them with
//!
//! ```sh
//! GATEHOUSE_UPDATE_GOLDEN=1 cargo test -p gatehouse-operator --test render_golden
//! ```
//!
//! and review the diff. Each invalid example must fail with one line naming the file, the object
//! and the field, containing the message its `# expect:` line names, and exit code 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("operator/ sits in the workspace")
        .to_path_buf()
}

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse-operator"))
        .arg("render")
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the binary runs")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .expect("inside the repo")
        .display()
        .to_string()
}

#[test]
fn examples_render_to_their_golden_files() {
    let update = std::env::var_os("GATEHOUSE_UPDATE_GOLDEN").is_some();
    let golden_dir = repo_root().join("operator/tests/golden");
    let examples = yaml_files(&repo_root().join("examples"));
    assert!(examples.len() >= 8, "examples are shipped");
    let mut mismatches = Vec::new();
    for example in examples {
        let shown = relative(&example);
        let out = render(&["-f", &shown]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{shown}: render failed: {stderr}");
        // Only notes, and only where the operator has nothing to add: a declared SsoUser says why.
        let notes: Vec<&str> = stderr.lines().collect();
        assert!(
            notes
                .iter()
                .all(|l| l.starts_with(&format!("note: {shown}: "))),
            "{shown}: unexpected stderr: {stderr}"
        );
        if shown.ends_with("ssouser-suspended.yaml") {
            assert!(
                notes.len() == 1
                    && notes[0]
                        .contains("SsoUser demo/okta-9330e3e810c092e1: passed through unchanged"),
                "{shown}: the SsoUser's note: {stderr}"
            );
        }
        let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
        // Every fake secret value in the examples contains "not-real"; the cookie keys of
        // entra.yaml start with this base64 prefix. None may appear without --show-secrets.
        assert!(
            !stdout.contains("not-real") && !stdout.contains("ZmFrZS1jb29raWUta2V5"),
            "{shown}: a secret value is printed"
        );
        let golden = golden_dir.join(example.file_name().expect("file name"));
        if update {
            std::fs::write(&golden, &stdout).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run GATEHOUSE_UPDATE_GOLDEN=1 cargo test -p gatehouse-operator --test render_golden",
                golden.display()
            )
        });
        if stdout != expected {
            mismatches.push(shown);
        }
    }
    assert!(
        mismatches.is_empty(),
        "render output differs from operator/tests/golden/ for {mismatches:?}; if intended, run \
         GATEHOUSE_UPDATE_GOLDEN=1 cargo test -p gatehouse-operator --test render_golden and review the diff"
    );
}

/// A manifest still written as `gatehouse.dev/v1alpha1` (the single provider object) renders
/// exactly what its v1alpha2 rewrite renders, read through the conversion webhook's function,
/// and stderr says it is deprecated and how to rewrite it.
#[test]
fn an_old_v1alpha1_manifest_renders_as_its_v1alpha2_rewrite_with_a_warning() {
    let old = render(&["-f", "crds/tests/fixtures/v1alpha1-auth0.yaml"]);
    let stderr = String::from_utf8_lossy(&old.stderr);
    assert!(old.status.success(), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: crds/tests/fixtures/v1alpha1-auth0.yaml: SsoConfig demo/wiki: {}",
            gatehouse_crds::V1ALPHA1_DEPRECATION_WARNING
        )
    );
    let new = render(&["-f", "examples/auth0.yaml"]);
    assert!(new.status.success());
    let objects = |out: &Output| -> Vec<serde_json::Value> {
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("YAML")
    };
    // Everything the operator creates is the same; only the passed-through input differs.
    let created = |docs: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        docs.into_iter()
            .filter(|d| d["kind"] != "SsoConfig")
            .collect()
    };
    let (old_objects, new_objects) = (objects(&old), objects(&new));
    assert!(
        old_objects.iter().any(|d| d["kind"] == "Secret"
            && d["metadata"]["name"] == "wiki-gatehouse-env"
            && d["stringData"]["OIDC_PROVIDER_ID"] == "auth0"),
        "{old_objects:#?}"
    );
    assert_eq!(created(old_objects), created(new_objects));
}

#[test]
fn show_secrets_prints_the_values_but_never_a_generated_key() {
    let out = render(&["-f", "examples/okta.yaml", "--show-secrets"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(stdout.contains("OKTA_CLIENT_SECRET: fake-okta-client-secret-not-real"));
    assert!(stdout.contains("GATEHOUSE_COOKIE_SECRET: <generated at apply time>"));
    assert!(stdout.contains("cookie-secret: <generated at apply time>"));
}

#[test]
fn the_examples_directory_renders_as_a_whole() {
    let out = render(&["-f", "examples"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    for config in [
        "portal", "intranet", "wiki", "billing", "docs", "hr", "handbook",
    ] {
        assert!(
            stdout.contains(&format!("name: {config}-gatehouse-env")),
            "{config} is rendered"
        );
    }
    // SAML renders no OIDC variables, even with an OIDC block present.
    let hr = stdout
        .split("---\n")
        .find(|doc| doc.contains("name: hr-gatehouse-env"))
        .expect("hr's env Secret");
    assert!(!hr.contains("OKTA_") && hr.contains("SAML_IDP_METADATA:"));
}

#[test]
fn invalid_examples_fail_with_one_line_each_naming_file_and_field() {
    let invalid = yaml_files(&repo_root().join("examples/invalid"));
    assert!(invalid.len() >= 7, "invalid examples are shipped");
    for file in invalid {
        let shown = relative(&file);
        let text = std::fs::read_to_string(&file).expect("readable");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{shown}: first line must be `# expect: <message>`"));
        let out = render(&["-f", &shown]);
        assert_eq!(out.status.code(), Some(1), "{shown}: exit code");
        assert!(out.stdout.is_empty(), "{shown}: nothing on stdout");
        let stderr = String::from_utf8(out.stderr).expect("UTF-8");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{shown}: one problem, one line: {stderr}");
        let prefix = format!("{shown}: SsoConfig demo/");
        assert!(lines[0].starts_with(&prefix), "{shown}: {}", lines[0]);
        assert!(
            lines[0].contains(": spec."),
            "{shown}: names the field: {}",
            lines[0]
        );
        assert!(
            lines[0].contains(expect),
            "{shown}: expected {expect:?} in {}",
            lines[0]
        );
    }
}

#[test]
fn the_predeclared_user_has_the_name_the_sidecar_looks_up() {
    let text = std::fs::read_to_string(repo_root().join("examples/ssouser-suspended.yaml"))
        .expect("example");
    let user: gatehouse_crds::SsoUser = serde_saphyr::from_str(&text).expect("SsoUser");
    let okta: gatehouse_crds::SsoConfig = serde_saphyr::from_multiple(
        &std::fs::read_to_string(repo_root().join("examples/okta.yaml")).expect("example"),
    )
    .ok()
    .and_then(|docs: Vec<serde_json::Value>| {
        docs.into_iter()
            .find(|d| d["kind"] == "SsoConfig")
            .and_then(|d| serde_json::from_value(d).ok())
    })
    .expect("okta SsoConfig");
    let issuer = &okta
        .spec
        .providers
        .as_ref()
        .and_then(|p| p.okta.as_ref())
        .expect("okta")
        .issuer;
    assert_eq!(
        user.metadata.name.as_deref(),
        Some(
            gatehouse_crds::names::sso_user_name(
                &user.spec.config,
                "okta",
                issuer,
                &user.spec.subject
            )
            .as_str()
        )
    );
    assert_eq!(user.spec.config, "portal");
    assert!(user.spec.is_suspended());
}

/// (kind, namespace, name) of every document of a multi-document YAML text.
fn identities(docs: &[serde_json::Value]) -> Vec<(String, String, String)> {
    docs.iter()
        .filter(|d| !d.is_null())
        .map(|d| {
            let field = |pointer: &str| {
                d.pointer(pointer)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            (
                field("/kind"),
                field("/metadata/namespace"),
                field("/metadata/name"),
            )
        })
        .collect()
}

fn documents(text: &str) -> Vec<serde_json::Value> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).expect("YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

#[test]
fn render_is_a_filter_every_input_object_comes_out_and_its_own_output_renders_unchanged() {
    let scratch =
        std::env::temp_dir().join(format!("gatehouse-render-filter-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let mut inputs: Vec<String> = yaml_files(&repo_root().join("examples"))
        .iter()
        .map(|p| relative(p))
        .collect();
    inputs.push("examples".into());
    for input in inputs {
        let first = render(&["-f", &input, "--show-secrets"]);
        assert!(
            first.status.success(),
            "{input}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        let first = String::from_utf8(first.stdout).expect("UTF-8");
        let out_docs = documents(&first);
        let out_ids = identities(&out_docs);

        // Every input object comes out (a workload possibly with the sidecar added).
        let path = repo_root().join(&input);
        let files = if path.is_dir() {
            yaml_files(&path)
        } else {
            vec![path]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).expect("example");
            for (kind, ns, name) in identities(&documents(&text)) {
                let ns = if ns.is_empty() {
                    "default".to_string()
                } else {
                    ns
                };
                assert!(
                    out_ids.iter().any(|(k, n, m)| (k, m) == (&kind, &name)
                        && (n == &ns || (n.is_empty() && ns == "default"))),
                    "{input}: {kind} {ns}/{name} is missing from the output"
                );
            }
        }

        // Render of its own output changes no object.
        let again_file = scratch.join("rendered.yaml");
        std::fs::write(&again_file, &first).expect("write");
        let second = render(&[
            "-f",
            again_file.to_str().expect("UTF-8 path"),
            "--show-secrets",
        ]);
        assert!(
            second.status.success(),
            "{input}: rendering the output failed: {}",
            String::from_utf8_lossy(&second.stderr)
        );
        let second_docs = documents(&String::from_utf8(second.stdout).expect("UTF-8"));
        assert_eq!(
            identities(&second_docs),
            out_ids,
            "{input}: the same objects in the same order"
        );
        assert!(
            second_docs == out_docs,
            "{input}: render of its own output changed an object"
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
