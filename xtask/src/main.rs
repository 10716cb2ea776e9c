//! Gatehouse's task runner: `cargo xtask setup | test | demo | bench | image`.
//!
//! Deliberately small: std, anyhow, clap, serde_json and serde-saphyr. The stack itself (fixture IdP, sample
//! app, sidecar) is started by the tests crate's `gatehouse-stack` binary, so the demo and the
//! benchmark use exactly the harness the end-to-end tests use.
#![forbid(unsafe_code)]

mod bench;
mod bench_provisioning;
mod bench_scale;
mod bench_session_end;
mod bench_signin;
mod containers;
mod image;
mod pod;
mod saml_fixtures;
mod setup;
mod test;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Gatehouse developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what the tests need: Debian packages (nodejs, npm, chromium, wrk) when missing
    /// and running as root, and the fixture IdP's node modules (`npm ci`).
    Setup,
    /// Setup, then every test of the workspace; reports suites that did not run.
    Test {
        /// Skip the setup step.
        #[arg(long)]
        no_setup: bool,
        /// Do not run this suite (cargo, chart, containers, cluster); reported as not run.
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Start the fixture IdP, the sample app and the sidecar in front of it; runs until Ctrl-C.
    Demo {
        /// Sidecar public port.
        #[arg(long, default_value_t = 4180)]
        port: u16,
        /// Sidecar admin port.
        #[arg(long, default_value_t = 9090)]
        admin_port: u16,
        /// Only offer this provider (AUTH_EXCLUSIVE_PROVIDER).
        #[arg(long)]
        exclusive: Option<String>,
        /// GATEHOUSE_AUTH_MODE: required or optional.
        #[arg(long)]
        auth_mode: Option<String>,
        /// Sign in through the fixture SAML IdP (pysaml2) instead of the OIDC providers.
        #[arg(long)]
        saml: bool,
    },
    /// Benchmark: direct vs through the sidecar (release builds, wrk); writes docs/benchmarks.md.
    Bench(bench::BenchArgs),
    /// Build the operator and sidecar images offline (release binaries, buildah, the root
    /// Dockerfile's `*-prebuilt` targets); tags `localhost/gatehouse-{operator,sidecar}:<version>`
    /// and saves OCI archives under `target/images/`.
    Image,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Task::Setup => setup::run(setup::Needs::all()),
        Task::Test {
            no_setup,
            skip,
            cargo_args,
        } => test::run(no_setup, &skip, &cargo_args),
        Task::Demo {
            port,
            admin_port,
            exclusive,
            auth_mode,
            saml,
        } => demo(port, admin_port, exclusive, auth_mode, saml),
        Task::Bench(args) => bench::run(&args),
        Task::Image => {
            setup::run(setup::Needs {
                chromium: false,
                wrk: false,
                nginx: false,
                apache: false,
                python_venv: false,
                containers: true,
                shellcheck: false,
            })?;
            image::run()
        }
    }
}

fn demo(
    port: u16,
    admin_port: u16,
    exclusive: Option<String>,
    auth_mode: Option<String>,
    saml: bool,
) -> Result<()> {
    setup::run(setup::Needs {
        chromium: false,
        wrk: false,
        nginx: false,
        apache: false,
        // The SAML fixture IdP runs in a pinned virtualenv.
        python_venv: saml,
        containers: false,
        shellcheck: false,
    })?;
    cargo(&[
        "build",
        "-p",
        "gatehouse-sidecar",
        "-p",
        "gatehouse-tests",
        "--bins",
    ])?;
    let target = target_dir();
    let mut cmd = Command::new(target.join("debug/gatehouse-stack"));
    cmd.arg("demo")
        .arg("--port")
        .arg(port.to_string())
        .arg("--admin-port")
        .arg(admin_port.to_string())
        .env(
            "GATEHOUSE_SIDECAR_BIN",
            target.join("debug/gatehouse-sidecar"),
        )
        .env(
            "GATEHOUSE_SAMPLE_APP_BIN",
            target.join("debug/gatehouse-sample-app"),
        );
    if let Some(p) = exclusive {
        cmd.arg("--exclusive").arg(p);
    }
    if let Some(m) = auth_mode {
        cmd.arg("--auth-mode").arg(m);
    }
    if saml {
        cmd.arg("--saml");
    }
    // Ctrl-C reaches the whole foreground process group; the stack cleans up its children.
    let status = cmd.status().context("running gatehouse-stack")?;
    if !status.success() && status.code().is_some() {
        bail!("demo stopped: {status}");
    }
    Ok(())
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs cargo (the one that runs us) in the workspace root; fails on a non-zero exit.
pub fn cargo(args: &[&str]) -> Result<()> {
    let status = cargo_status(args)?;
    if !status.success() {
        bail!("`cargo {}` failed: {status}", args.join(" "));
    }
    Ok(())
}

/// Runs cargo and returns its exit status.
pub fn cargo_status(args: &[&str]) -> Result<ExitStatus> {
    cargo_command(args)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))
}

/// `cargo <args>` in the workspace root, announced on stderr, without the variables `cargo run`
/// set for xtask itself.
pub fn cargo_command(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut cmd = Command::new(cargo);
    // `cargo run` set these for xtask itself. Some build scripts (ring's) rebuild when
    // `CARGO_MANIFEST_DIR` changes, so passing them on would make every xtask build and every
    // plain `cargo build` undo each other's work.
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && (name.starts_with("CARGO_PKG_")
                || matches!(
                    name,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                ))
        {
            cmd.env_remove(name);
        }
    }
    cmd.args(args).current_dir(root());
    cmd
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
