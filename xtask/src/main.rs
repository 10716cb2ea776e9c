//! Gatehouse's task runner: `cargo xtask setup | test | demo | bench | image | fuzz`.
//!
//! Deliberately small: std, anyhow, clap, serde_json and serde-saphyr. The stack itself (fixture IdP, sample
//! app, sidecar) is started by the tests crate's `gatehouse-stack` binary, so the demo and the
//! benchmark use exactly the harness the end-to-end tests use.
//!
//! This file is the command line and its dispatch to the tasks' modules; what they share about
//! the workspace (its root, the target directory, running cargo) is in [`workspace`]. The test
//! `tests/architecture` keeps the modules free of cycles and of imports from their ancestors.
#![forbid(unsafe_code)]

mod bench;
mod containers;
mod demo;
mod fuzz;
mod image;
mod local_packages;
mod saml_fixtures;
mod scim_fixtures;
mod setup;
mod suite;
mod test;
mod workspace;

use anyhow::Result;
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
        /// Do not run this suite (cargo, fuzz, chart, containers, cluster); reported as not run.
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
    Image {
        /// Only prepare `target/release` for `docker build --target *-prebuilt` (the release
        /// binaries and the sidecar's shared libraries); no buildah, no images.
        #[arg(long)]
        context_only: bool,
    },
    /// Fuzz every target of `fuzz/` under AFL++ (cargo-afl, stable toolchain) for a bounded
    /// time each; reports execs and crashes per target, keeps crashes under
    /// `fuzz/regressions/<target>/` and fails when a target crashed.
    Fuzz(fuzz::FuzzArgs),
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
        } => demo::run(port, admin_port, exclusive, auth_mode, saml),
        Task::Bench(args) => bench::run(&args),
        Task::Image { context_only } => {
            setup::run(setup::Needs {
                chromium: false,
                wrk: false,
                nginx: false,
                apache: false,
                python_venv: false,
                containers: !context_only,
                shellcheck: false,
                fuzz: false,
            })?;
            image::run(context_only)
        }
        Task::Fuzz(args) => fuzz::run(&args),
    }
}
