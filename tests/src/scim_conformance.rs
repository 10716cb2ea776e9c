//! The public SCIM conformance suite (PyPI `scim2-tester`) against a SCIM service provider.
//!
//! [`run`] starts `tests/fixtures/scim/conformance.py` with the pinned virtualenv
//! `target/scim-venv` (`tests/fixtures/scim/requirements.txt`, installed by `cargo xtask setup`
//! and by `cargo xtask test`), pointed at a SCIM root such as
//! `http://127.0.0.1:<port>/api/auth/scim/v2`. The bearer token goes through the child's
//! environment (`SCIM_TOKEN`), never its command line. The suite discovers the server
//! (ServiceProviderConfig, ResourceTypes, Schemas), then runs its create, read, update, delete and
//! PATCH checks on each resource type the server publishes; [`run`] returns every result as a
//! [`Check`] and leaves judging them to the caller.
//!
//! [`run`] blocks (a [`std::process::Command`] waited on for at most [`TIMEOUT`]); from a tokio
//! test whose sidecar runs in the same process, call it through `tokio::task::spawn_blocking` so
//! the runtime keeps serving the suite's requests.
//!
//! A server that cannot be reached is not an error of [`run`]: the script still exits 0 and the
//! discovery checks come back with status `ERROR` and the connection error as their reason (the
//! suite stops after discovery when it learnt nothing). [`run`] fails when the virtualenv is
//! missing, on a usage error of the script (exit 2), when the suite itself crashes (exit 1, its
//! traceback in the error), on unreadable output, and after [`TIMEOUT`] (the child is killed).
//!
//! What the suite expects, beyond the obvious CRUD: `POST`/`PUT`/`PATCH`/`DELETE` on each of
//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` answer 405; `/Schemas` lists the
//! schemas of `ResourceType`, `ServiceProviderConfig` and `Schema` themselves; an unknown path
//! answers a SCIM `Error` with status 404; `PATCH` checks are `SKIPPED` when the
//! ServiceProviderConfig says `patch.supported: false`; the server-root `POST /.search` check is
//! `SKIPPED` on a 501. Resource types come from discovery only, so a server without a `Group`
//! resource type gets no Group checks. The update, attribute and PATCH-remove checks fill every
//! writable attribute of the published schema with random values and compare what comes back:
//! publish only attributes the server keeps.

use std::{
    ffi::OsString,
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::process::workspace_root;

/// How long the whole suite may take before its process is killed.
pub const TIMEOUT: Duration = Duration::from_secs(300);
/// The driver, relative to the workspace root.
pub const SCRIPT: &str = "tests/fixtures/scim/conformance.py";
/// The virtualenv's directory name in the target directory.
pub const VENV: &str = "scim-venv";
/// Overrides the virtualenv's python.
pub const PYTHON_VAR: &str = "GATEHOUSE_SCIM_PYTHON";

/// One check of the suite.
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    /// The checker's name, e.g. `object_creation`, `service_provider_config_endpoint`.
    pub title: String,
    /// The name of `scim2_tester.Status`: `SUCCESS`, `COMPLIANT`, `ACCEPTABLE`, `DEVIATION`,
    /// `ERROR`, `CRITICAL` or `SKIPPED`.
    pub status: String,
    /// Why it failed, or how it succeeded.
    pub reason: Option<String>,
    /// The checker's tags, e.g. `discovery`, `schemas`, `crud:create`, `patch:add`, `misc`
    /// (sorted; the discovery checks that always run also carry `*`).
    pub tags: Vec<String>,
    /// What the check does and which part of RFC 7643/7644 it checks (the checker's docstring).
    pub description: Option<String>,
    /// The resource type a CRUD or PATCH check ran on (`User`), `None` for the others.
    #[serde(default)]
    pub resource_type: Option<String>,
}

impl Check {
    /// Whether the server broke a MUST of the RFCs (`ERROR`) or the protocol (`CRITICAL`).
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "ERROR" | "CRITICAL")
    }
}

/// Runs scim2-tester against `base_url` with bearer `token`; all its checks.
pub fn run(base_url: &str, token: &str) -> Result<Vec<Check>> {
    let python = python()?;
    let script = workspace_root().join(SCRIPT);
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(base_url)
        .env("SCIM_TOKEN", token)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for conformance.py")? {
            break status;
        }
        if started.elapsed() >= TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = joined(stderr);
            bail!(
                "the SCIM conformance suite against {base_url} did not finish in {}s; killed. \
                 stderr: {}",
                TIMEOUT.as_secs(),
                stderr.trim()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = joined(stdout);
    let stderr = joined(stderr);
    if !status.success() {
        bail!(
            "{} {base_url} failed ({status}): {}",
            script.display(),
            stderr.trim()
        );
    }
    serde_json::from_str(&stdout).with_context(|| {
        format!(
            "conformance.py printed no JSON list of checks: {:?} (stderr: {})",
            stdout.chars().take(500).collect::<String>(),
            stderr.trim()
        )
    })
}

/// Reads a pipe to its end on a thread, so a full pipe never blocks the child.
fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<String>> {
    pipe.map(|mut pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
}

fn joined(reader: Option<JoinHandle<String>>) -> String {
    reader.and_then(|r| r.join().ok()).unwrap_or_default()
}

/// The python of `target/scim-venv`: `$GATEHOUSE_SCIM_PYTHON`, else the virtualenv in
/// `$CARGO_TARGET_DIR`, in the target directory above the running executable, or in the
/// workspace's `target/`. An error that says to run `cargo xtask setup` when it is missing.
pub fn python() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join(VENV).join("bin/python"));
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/debug/deps/<test> or target/debug/<bin> → target/scim-venv
        for target in exe.ancestors().skip(2).take(2) {
            candidates.push(target.join(VENV).join("bin/python"));
        }
    }
    candidates.push(
        workspace_root()
            .join("target")
            .join(VENV)
            .join("bin/python"),
    );
    locate(std::env::var_os(PYTHON_VAR), &candidates)
}

/// The override when set (it must exist), else the first candidate that is a file.
fn locate(overridden: Option<OsString>, candidates: &[PathBuf]) -> Result<PathBuf> {
    if let Some(path) = overridden {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "{PYTHON_VAR}={} is not a file: unset it to use target/{VENV}, which `cargo xtask \
             setup` installs from tests/fixtures/scim/requirements.txt",
            path.display()
        );
    }
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "the SCIM conformance suite's Python virtualenv is missing (looked at {}): run \
                 `cargo xtask setup` (it installs tests/fixtures/scim/requirements.txt into \
                 target/{VENV}), or set {PYTHON_VAR}",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing() -> PathBuf {
        std::env::temp_dir().join("gatehouse-scim-conformance-no-such-dir/bin/python")
    }

    #[test]
    fn a_missing_override_says_to_run_setup() {
        let err = locate(Some(missing().into_os_string()), &[])
            .expect_err("a missing override is an error");
        let message = format!("{err:#}");
        assert!(message.contains("cargo xtask setup"), "{message}");
        assert!(message.contains(PYTHON_VAR), "{message}");
    }

    #[test]
    fn no_virtualenv_says_to_run_setup_and_where_it_looked() {
        let err = locate(None, &[missing()]).expect_err("no candidate exists");
        let message = format!("{err:#}");
        assert!(message.contains("cargo xtask setup"), "{message}");
        assert!(
            message.contains(&missing().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn the_first_existing_candidate_wins_and_an_existing_override_beats_it() {
        let exe = std::env::current_exe().expect("the test binary");
        assert_eq!(
            locate(None, &[missing(), exe.clone()]).expect("the existing candidate"),
            exe
        );
        let script = workspace_root().join(SCRIPT);
        assert_eq!(
            locate(Some(script.clone().into_os_string()), &[exe]).expect("the override"),
            script
        );
    }

    #[test]
    fn checks_parse_from_the_scripts_output() {
        let json = r#"[{"title":"object_creation","status":"ERROR","reason":"boom",
            "tags":["crud:create"],"description":"Create.","resource_type":"User"},
            {"title":"random_url","status":"SUCCESS","reason":null,"tags":["misc"],
            "description":null}]"#;
        let checks: Vec<Check> = serde_json::from_str(json).expect("the JSON parses");
        assert!(checks[0].failed());
        assert_eq!(checks[0].resource_type.as_deref(), Some("User"));
        assert!(!checks[1].failed());
        assert_eq!(checks[1].resource_type, None);
    }

    /// The script and the virtualenv for real (`cargo xtask setup` installs it), against a port
    /// where nothing listens: exit 0 and the discovery checks erroring.
    #[test]
    fn an_unreachable_server_gives_erroring_discovery_checks() {
        let port = crate::process::free_port().expect("a free port");
        let url = format!("http://127.0.0.1:{port}/api/auth/scim/v2");
        let checks = run(&url, "not-a-real-token").expect("the suite runs");
        assert!(!checks.is_empty());
        assert!(checks.iter().all(Check::failed), "{checks:#?}");
        assert!(
            checks
                .iter()
                .any(|c| c.title == "service_provider_config_endpoint"),
            "{checks:#?}"
        );
    }
}
