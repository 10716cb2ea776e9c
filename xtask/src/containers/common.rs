//! What the container suite's checks share: a container's logs, and a random cookie key for the
//! sidecars they start.

use std::process::Command;

use anyhow::Result;

use crate::image::{container_tool, output};

/// A container's output, stdout and stderr.
pub fn container_logs(name: &str) -> String {
    container_tool("podman")
        .and_then(|mut cmd| Ok(cmd.args(["logs", name]).output()?))
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
}

/// A random base64 32-byte cookie key, from the kernel's random source.
pub fn cookie_key() -> Result<String> {
    let out = output(Command::new("sh").args(["-c", "head -c 32 /dev/urandom | base64"]))?;
    Ok(out.trim().to_owned())
}
