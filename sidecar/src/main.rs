//! `gatehouse-sidecar`: configured by environment variables only (see the library docs).
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use gatehouse_sidecar::Config;
use gatehouse_sidecar::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Gatehouse auth sidecar: OIDC sign-in, sealed sessions, authenticated reverse proxy.
///
/// All settings come from environment variables (OKTA_*, ENTRA_*, OIDC_*, AUTH_EXCLUSIVE_PROVIDER,
/// GATEHOUSE_*).
#[derive(Debug, Parser)]
#[command(name = "gatehouse-sidecar", version)]
struct Args {
    /// Validate the environment, print a summary and exit (0 valid, 1 invalid).
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let runtime = gatehouse_sidecar::runtime::worker_threads_from_env()
        .and_then(|n| gatehouse_sidecar::runtime::build(n).map_err(|e| format!("runtime: {e}")));
    match runtime {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let args = Args::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        println!("{}", config.summary());
        return ExitCode::SUCCESS;
    }
    init_tracing(config.log_format);
    match gatehouse_sidecar::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal, and never with NO_COLOR (https://no-color.org).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
