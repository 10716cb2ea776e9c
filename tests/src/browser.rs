//! A real browser: Debian's Chromium driven by playwright-core (fixtures/idp/browser-login.mjs).

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::{
    idp::{ensure_node_modules, node_binary},
    process::{ChildProcess, idp_dir},
};

/// What the browser saw at the end of a sign-in.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowserOutcome {
    /// The page the app's URL led to first (the login page).
    pub login_url: String,
    /// Labels of the sign-in buttons on that page.
    pub buttons: Vec<String>,
    pub final_url: String,
    /// Status of the last non-redirect document response.
    pub status: Option<u16>,
    pub title: String,
    pub text: String,
    /// Identity table of the sample app (header → value).
    pub identity: std::collections::BTreeMap<String, String>,
    /// The page shown after an upload, when one was asked for ([`sign_in_and_upload`]).
    #[serde(default)]
    pub upload: Option<UploadOutcome>,
}

/// What the browser showed after submitting an upload form.
#[derive(Debug, Clone, Deserialize)]
pub struct UploadOutcome {
    /// Status of the page shown, if any.
    pub status: Option<u16>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub text: String,
    /// The browser's error when it could show no page (a reset connection, say).
    pub error: Option<String>,
}

/// The Chromium executable: `$CHROMIUM` or `/usr/bin/chromium`. A clear error when absent.
pub fn chromium_path() -> Result<PathBuf> {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()));
    if !path.is_file() {
        bail!(
            "Chromium not found at {}: install it with `apt-get install -y chromium` \
             (or run `cargo xtask setup`), or set CHROMIUM to its path",
            path.display()
        );
    }
    Ok(path)
}

/// Opens `url` in a fresh Chromium profile, clicks `provider`'s button on the login page and
/// signs in as `user` at the fixture IdP.
pub fn sign_in(url: &str, provider: &str, user: &str, password: &str) -> Result<BrowserOutcome> {
    run(url, provider, user, password, None)
}

/// [`sign_in`], then submits a form with a file of `bytes` bytes to `/upload`, as a user would.
pub fn sign_in_and_upload(
    url: &str,
    provider: &str,
    user: &str,
    password: &str,
    bytes: usize,
) -> Result<BrowserOutcome> {
    run(url, provider, user, password, Some(bytes))
}

fn run(
    url: &str,
    provider: &str,
    user: &str,
    password: &str,
    upload_bytes: Option<usize>,
) -> Result<BrowserOutcome> {
    let dir = idp_dir();
    ensure_node_modules(&dir)?;
    run_driver(
        &dir,
        "browser-login.mjs",
        &format!("{provider}-{user}"),
        |cmd| {
            cmd.args(["--url", url, "--provider", provider, "--user", user])
                .args(["--password", password]);
            if let Some(bytes) = upload_bytes {
                cmd.args(["--upload-bytes", &bytes.to_string()]);
            }
        },
    )
}

/// Runs the Playwright driver `script` of the node project `dir` with Debian's Chromium and a
/// screenshot path (named after `label`), the arguments `args` adds, and parses the JSON line it
/// prints as its result. Blocking.
pub fn run_driver<T: serde::de::DeserializeOwned>(
    dir: &std::path::Path,
    script: &str,
    label: &str,
    args: impl FnOnce(&mut Command),
) -> Result<T> {
    let chromium = chromium_path()?;
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        bail!(
            "playwright-core is missing in {}: run `cargo xtask setup`",
            dir.display()
        );
    }
    let screenshot =
        std::env::temp_dir().join(format!("gatehouse-e2e-{label}-{}.png", std::process::id()));
    let mut cmd = Command::new(node_binary());
    cmd.current_dir(dir).arg(script);
    args(&mut cmd);
    cmd.arg("--chromium")
        .arg(&chromium)
        .arg("--screenshot")
        .arg(&screenshot);
    let (mut proc, line) = ChildProcess::spawn("browser", cmd, Some(Duration::from_secs(120)))
        .context("running the browser")?;
    proc.wait_exit(Duration::from_secs(30));
    let line = line.context("browser result")?;
    let outcome: T = serde_json::from_str(&line).with_context(|| {
        format!(
            "parsing the browser's result {line:?}; its output:\n{}",
            proc.logs.text()
        )
    })?;
    eprintln!("browser screenshot: {}", screenshot.display());
    Ok(outcome)
}
