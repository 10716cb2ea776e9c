//! The provisioning part of `cargo xtask bench`: runs `gatehouse-stack provisioning-bench` (the
//! sidecar in process on the in-memory Kubernetes API, signing in at the fixture IdP) and renders
//! its figures, each next to the baseline measured in the same run.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Runs the measurement with the release `gatehouse-stack` in `release`.
pub fn run(release: &Path) -> Result<Value> {
    eprintln!("xtask bench: provisioning and revocation (in-memory Kubernetes API)");
    let output = Command::new(release.join("gatehouse-stack"))
        .arg("provisioning-bench")
        .env("GATEHOUSE_TEST_LOG", "warn")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running gatehouse-stack provisioning-bench")?;
    if !output.status.success() {
        bail!(
            "gatehouse-stack provisioning-bench failed ({})",
            output.status
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no figures from provisioning-bench")?;
    serde_json::from_str(line).context("parsing the provisioning figures")
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN) / 1000.0
}

/// The markdown section.
pub fn render(f: &Value) -> String {
    let refusal = &f["deletion_to_refusal"];
    let admitted = &f["admitted_request"];
    let total = &f["callback_total"];
    let handling_ms = ms(&f["callback_handling_mean_us"]);
    let refusal_p99_ms = ms(&refusal["p99_us"]);
    let mut out = String::new();
    out.push_str("\n## Provisioning and revocation\n\n");
    out.push_str(
        "Produced by the same command (`gatehouse-stack provisioning-bench`, release build): the \
         sidecar runs in process with `GATEHOUSE_PROVISIONING=kubernetes` on kube-fake-client's \
         in-memory API server and signs in through the fixture Okta IdP. The in-memory API stands \
         in for a real API server, so the time a real API server and network take to deliver the \
         watch event, or to answer provisioning calls, is not included.\n\n",
    );
    out.push_str("| measurement | samples | p50 | p99 | baseline (same run) | ratio at p50 |\n");
    out.push_str("| --- | ---: | ---: | ---: | --- | ---: |\n");
    out.push_str(&format!(
        "| SsoUser deletion reaching the cache → first refused request answered | {} | {:.2} ms | {:.2} ms | the same request while the user exists: p50 {:.2} ms, p99 {:.2} ms | {:.2} |\n",
        refusal["samples"],
        ms(&refusal["p50_us"]),
        refusal_p99_ms,
        ms(&admitted["p50_us"]),
        ms(&admitted["p99_us"]),
        ms(&refusal["p50_us"]) / ms(&admitted["p50_us"]),
    ));
    out.push_str(&format!(
        "| sign-in callback, sidecar's own handling (IdP token round trip excluded; mean of its histogram) | {} | {:.2} ms (mean) | – | the whole callback as the browser sees it: p50 {:.2} ms, p99 {:.2} ms | {:.2} |\n",
        f["sign_ins"],
        handling_ms,
        ms(&total["p50_us"]),
        ms(&total["p99_us"]),
        handling_ms / ms(&total["p50_us"]),
    ));
    out.push_str(&format!(
        "\nTarget (the revocation goal Gatehouse is built to): a deleted user's sessions refused on every replica within 2 s of the \
         deletion. Once the event reaches the cache the next request is refused ({refusal_p99_ms:.2} ms \
         at p99, {}); the rest of the 2 s budget is the API server's watch delivery.\n",
        if refusal_p99_ms < 2000.0 { "met" } else { "NOT met" }
    ));
    out
}
