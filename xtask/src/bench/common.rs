//! What the parts of `cargo xtask bench` share: its arguments, the release build they all
//! measure, and writing one part's section alone (`--only`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::workspace::{cargo, root, target_dir};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Markdown file to write the figures to (relative to the workspace root).
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// Print the figures without writing the file.
    #[arg(long)]
    pub no_write: bool,
    /// Rounds per load level; each figure is the median over them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Run only this section and replace just it in the written file (`requests`: the
    /// requests through the sidecar and its peers, the part before provisioning; `scale`,
    /// `signin`, `session-end`, `startup`).
    #[arg(long, value_parser = ["requests", "scale", "signin", "session-end", "startup"])]
    pub only: Option<String>,
}

/// Builds the release binaries every bench part runs (the sidecar, `gatehouse-stack`, the sample
/// app) and returns their directory.
pub fn release_binaries() -> Result<PathBuf> {
    cargo(&[
        "build",
        "--release",
        "-p",
        "gatehouse-sidecar",
        "-p",
        "gatehouse-tests",
        "--bins",
    ])?;
    Ok(target_dir().join("release"))
}

/// Runs `gatehouse-stack <subcommand> <args>` from `release` (its log at `rust_log`, on stderr)
/// and returns the figures it prints: the last line of its standard output that is a JSON object.
pub fn stack_figures(
    release: &Path,
    subcommand: &str,
    args: &[String],
    rust_log: &str,
) -> Result<Value> {
    let output = Command::new(release.join("gatehouse-stack"))
        .arg(subcommand)
        .args(args)
        .env("GATEHOUSE_TEST_LOG", "warn")
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running gatehouse-stack {subcommand}"))?;
    if !output.status.success() {
        bail!("gatehouse-stack {subcommand} failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no figures from {subcommand}"))?;
    serde_json::from_str(line).with_context(|| format!("parsing the figures of {subcommand}"))
}

/// `--only <part>`: prints `section` and, unless told not to write, replaces only the part under
/// `heading` in the written file.
pub fn write_section_alone(args: &BenchArgs, heading: &str, section: &str) -> Result<()> {
    println!("{section}");
    if !args.no_write {
        let out = root().join(&args.out);
        let doc = std::fs::read_to_string(&out).unwrap_or_default();
        std::fs::write(&out, replace_section(&doc, heading, section))
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("xtask bench: replaced \"{heading}\" in {}", out.display());
    }
    Ok(())
}

/// `doc` with the part under `heading` (up to the next `## `) replaced by `section`, which starts
/// with that heading; appended when `doc` has no such part.
pub fn replace_section(doc: &str, heading: &str, section: &str) -> String {
    let Some(start) = doc.find(&format!("\n{heading}")) else {
        return format!("{}\n{}", doc.trim_end(), section);
    };
    let after = start + 1 + heading.len();
    let end = doc[after..].find("\n## ").map_or(doc.len(), |i| after + i);
    format!("{}{}{}", &doc[..start], section, &doc[end..])
}
