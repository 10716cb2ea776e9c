//! `cargo xtask test`: setup, then every suite; a closing summary says what ran, what failed
//! and what did not run and why (a suite that did not run never looks like a pass).
//!
//! To add a suite, add a [`Suite`] to [`suites`].

use anyhow::{Result, bail};

use crate::{cargo_status, setup};

/// How a suite ended.
#[derive(Debug)]
pub enum Outcome {
    Passed,
    Failed(String),
    /// Did not run, and why.
    NotRun(String),
}

/// One step of `cargo xtask test`.
pub struct Suite {
    pub name: &'static str,
    pub run: Box<dyn Fn() -> Result<Outcome>>,
}

impl std::fmt::Debug for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite").field("name", &self.name).finish()
    }
}

fn from_status(status: std::process::ExitStatus) -> Outcome {
    if status.success() {
        Outcome::Passed
    } else {
        Outcome::Failed(format!("exit {status}"))
    }
}

/// The suites, in order.
pub fn suites(cargo_args: &[String]) -> Vec<Suite> {
    let extra: Vec<String> = cargo_args.to_vec();
    vec![
        Suite {
            name: "cargo test --workspace --all-targets",
            run: Box::new(move || {
                let mut args = vec!["test", "--workspace", "--all-targets"];
                args.extend(extra.iter().map(String::as_str));
                Ok(from_status(cargo_status(&args)?))
            }),
        },
        Suite {
            name: "real-cluster suite (cargo test -- --ignored)",
            run: Box::new(|| {
                if std::env::var_os("KUBECONFIG").is_none() {
                    return Ok(Outcome::NotRun(
                        "KUBECONFIG is unset; point it at a kind or k3d cluster to run it".into(),
                    ));
                }
                Ok(from_status(cargo_status(&[
                    "test",
                    "--workspace",
                    "--",
                    "--ignored",
                ])?))
            }),
        },
    ]
}

pub fn run(no_setup: bool, cargo_args: &[String]) -> Result<()> {
    if !no_setup {
        setup::run(setup::Needs {
            chromium: true,
            wrk: false,
        })?;
    }
    let mut results = Vec::new();
    for suite in suites(cargo_args) {
        eprintln!("xtask test: === {} ===", suite.name);
        let outcome = (suite.run)().unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")));
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
    if failed > 0 {
        bail!("{failed} suite(s) failed");
    }
    Ok(())
}
