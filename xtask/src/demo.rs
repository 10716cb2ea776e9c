//! `cargo xtask demo`: the fixture IdP, the sample app and the sidecar in front of it, started by
//! the tests crate's `gatehouse-stack demo`; runs until Ctrl-C.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup;
use crate::workspace::{cargo, target_dir};

pub fn run(
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
        fuzz: false,
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
