//! `cargo xtask test`: setup, then every suite; a closing summary says what ran, what failed
//! and what did not run and why (a suite that did not run never looks like a pass).
//!
//! To add a suite, add a [`Suite`] to [`suites`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::local_packages::pinned_venv;
use crate::setup;
use crate::suite::{Outcome, Suite};
use crate::workspace::{cargo_command, root, target_dir};

fn from_status(status: std::process::ExitStatus) -> Outcome {
    if status.success() {
        Outcome::Passed
    } else {
        Outcome::Failed(format!("exit {status}"))
    }
}

/// `cargo <args>` with the Python tools' virtualenv first on PATH, so tests that call `python3`
/// (the operator's Kubernetes-schema checks) get the pinned `kubernetes-validate`.
fn cargo_with_tools(args: &[&str], venv: &Path) -> Result<std::process::ExitStatus> {
    let mut path = OsString::from(venv.join("bin"));
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }
    cargo_command(args)
        .env("PATH", path)
        .env("VIRTUAL_ENV", venv)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))
}

/// Seconds each fuzz target runs in the `fuzz` suite: a smoke test that every target builds
/// instrumented, starts from its seeds and finds no shallow crash. Longer runs: `cargo xtask
/// fuzz --time 60`.
const FUZZ_SMOKE_SECS: u64 = 10;

/// The suites, in order. `venv` holds the pinned Python tools (see [`python_tools`]).
pub fn suites(cargo_args: &[String], venv: PathBuf) -> Vec<Suite> {
    let extra: Vec<String> = cargo_args.to_vec();
    let (venv_cargo, venv_chart, venv_cluster) = (venv.clone(), venv.clone(), venv);
    vec![
        Suite {
            key: "cargo",
            name: "cargo test --workspace --all-targets",
            run: Box::new(move || {
                let mut args = vec!["test", "--workspace", "--all-targets"];
                args.extend(extra.iter().map(String::as_str));
                Ok(from_status(cargo_with_tools(&args, &venv_cargo)?))
            }),
        },
        Suite {
            key: "fuzz",
            name: "fuzz smoke: every target of fuzz/ for 10 s under AFL++",
            run: Box::new(|| crate::fuzz::suite(FUZZ_SMOKE_SECS)),
        },
        Suite {
            key: "chart",
            name: "chart and docs (pytest: Helm SDK, Kubernetes schemas, checkov)",
            run: Box::new(move || chart_suite(&venv_chart)),
        },
        Suite {
            key: "containers",
            name: "containers (podman: the images, end-to-end sign-in through them)",
            run: Box::new(crate::containers::suite),
        },
        Suite {
            key: "cluster",
            name: "real-cluster suite (cargo test -- --ignored)",
            run: Box::new(move || {
                if std::env::var_os("KUBECONFIG").is_none() {
                    return Ok(Outcome::NotRun(
                        "KUBECONFIG is unset; point it at a kind or k3d cluster to run it".into(),
                    ));
                }
                Ok(from_status(cargo_with_tools(
                    &["test", "--workspace", "--", "--ignored"],
                    &venv_cluster,
                )?))
            }),
        },
    ]
}

/// A virtualenv under `target/` holding the pinned Python tools of
/// `charts/gatehouse/tests/requirements.txt` (Helm SDK, kubernetes-validate, checkov, pytest),
/// re-installed when that file changes. Made before any suite runs: the chart suite and the
/// operator's schema tests both use it.
pub fn python_tools() -> Result<PathBuf> {
    pinned_venv(
        "py-venv",
        "charts/gatehouse/tests/requirements.txt",
        "the Python test tools",
    )
}

/// The chart's pytest suite. It runs after `cargo test`, which has built the operator binary its
/// contract tests call.
fn chart_suite(venv: &Path) -> Result<Outcome> {
    let status = std::process::Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "charts/gatehouse/tests", "-rsx", "-q"])
        .current_dir(root())
        .env(
            "GATEHOUSE_OPERATOR_BIN",
            target_dir().join("debug/gatehouse-operator"),
        )
        .status()?;
    Ok(from_status(status))
}

pub fn run(no_setup: bool, skip: &[String], cargo_args: &[String]) -> Result<()> {
    if !no_setup {
        setup::run(setup::Needs {
            chromium: true,
            wrk: false,
            nginx: false,
            apache: false,
            python_venv: true,
            containers: true,
            shellcheck: true,
            fuzz: true,
        })?;
    }
    let venv = python_tools()?;
    // The SAML fixtures' own virtualenv (pysaml2, signxml): the SAML end-to-end tests run it.
    crate::saml_fixtures::venv()?;
    // The SCIM conformance suite's virtualenv (scim2-tester): the SCIM end-to-end test runs it.
    crate::scim_fixtures::venv()?;
    let mut results = Vec::new();
    let all = suites(cargo_args, venv);
    if let Some(unknown) = skip
        .iter()
        .find(|k| !all.iter().any(|s| s.key == k.as_str()))
    {
        let keys: Vec<_> = all.iter().map(|s| s.key).collect();
        bail!(
            "--skip {unknown}: no such suite (suites: {})",
            keys.join(", ")
        );
    }
    for suite in all {
        eprintln!("xtask test: === {} ===", suite.name);
        let outcome = if skip.iter().any(|k| k == suite.key) {
            Outcome::NotRun(format!("skipped on request (--skip {})", suite.key))
        } else {
            (suite.run)().unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")))
        };
        results.push((suite.name, outcome));
    }
    eprintln!();
    eprintln!("xtask test: summary");
    let mut failed = 0;
    for (name, outcome) in &results {
        match outcome {
            Outcome::Passed => eprintln!("  PASSED   {name}"),
            Outcome::Failed(why) => {
                failed += 1;
                eprintln!("  FAILED   {name}: {why}");
            }
            Outcome::NotRun(why) => eprintln!("  NOT RUN  {name}: {why}"),
        }
    }
    let passed = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Passed))
        .count();
    let not_run = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::NotRun(_)))
        .count();
    // The plain closing line CI systems read: suites, not individual tests.
    eprintln!("suites: {passed} passed, {failed} failed, {not_run} skipped");
    if failed > 0 {
        bail!("{failed} suite(s) failed");
    }
    Ok(())
}
