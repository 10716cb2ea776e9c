//! `gatehouse-operator`: parse the command line and hand off to the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    gatehouse_operator::cli::execute(gatehouse_operator::cli::Cli::parse()).await
}
