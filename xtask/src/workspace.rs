//! The workspace xtask works in: its root, cargo's target directory, cargo run there, and
//! programs on PATH.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
};

use anyhow::{Context, Result, bail};

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
