//! Start-up figures for `cargo xtask bench` (run by `gatehouse-stack startup-bench`): how long the
//! sidecar takes from its process being spawned to `/readyz` answering 200 (issue 27's target:
//! 200 ms), with an OIDC configuration whose discovery answers. The chart's readiness probe and
//! every rolling update wait for exactly this.
//!
//! One stack runs the fixture OIDC IdP and the sample app, with a sidecar of one provider (Okta)
//! that is ready; then, `starts` times, a fresh sidecar process with that sidecar's environment
//! (its own ports) is spawned and its admin port's `/readyz` is asked every millisecond until it
//! answers 200; the process is then stopped. `/healthz` is asked too: the time to the first 200
//! there is when the process serves at all, before discovery and keys are loaded. The IdP is warm
//! (it answered the first sidecar), as it is for every pod of a running deployment.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::process::free_port;
use crate::stack::Sidecar;
use crate::{ProviderKind, Stack, StackOptions};

/// Longest a start may take before the run fails.
const GIVE_UP: Duration = Duration::from_secs(20);
/// Between two probes.
const PROBE_EVERY: Duration = Duration::from_millis(1);

/// One start.
#[derive(Debug, Clone, Serialize)]
pub struct Start {
    /// Spawn to the first 200 of `/healthz` (the process serves), ms.
    pub serving_ms: f64,
    /// Spawn to the first 200 of `/readyz` (discovery and keys loaded), ms.
    pub ready_ms: f64,
}

/// What `gatehouse-stack startup-bench` prints (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct StartupFigures {
    /// Providers of the configuration started.
    pub providers: Vec<String>,
    pub starts: Vec<Start>,
}

/// Starts a sidecar `starts` times and measures each start.
pub async fn run(starts: usize) -> Result<StartupFigures> {
    let providers = vec![ProviderKind::Okta];
    let stack = Stack::start(StackOptions {
        providers: providers.clone(),
        ..StackOptions::default()
    })
    .await
    .context("starting the stack")?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let mut measured = Vec::with_capacity(starts);
    for _ in 0..starts {
        measured.push(start_once(&stack, &http).await?);
        // Let the stopped process's ports and the machine settle.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(StartupFigures {
        providers: providers.iter().map(|p| format!("{p:?}")).collect(),
        starts: measured,
    })
}

async fn start_once(stack: &Stack, http: &reqwest::Client) -> Result<Start> {
    let (port, admin_port) = (free_port()?, free_port()?);
    let mut env = stack.sidecar.env().to_vec();
    for (k, v) in [
        ("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}")),
        ("GATEHOUSE_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
    ] {
        env.retain(|(name, _)| name != k);
        env.push((k.to_owned(), v));
    }
    let admin = format!("http://127.0.0.1:{admin_port}");
    let healthz = format!("{admin}/healthz");
    let readyz = format!("{admin}/readyz");
    let spawned = Instant::now();
    let mut sidecar = Sidecar::start(env, format!("http://127.0.0.1:{port}"), admin)?;
    let mut serving = None;
    loop {
        if spawned.elapsed() > GIVE_UP {
            bail!(
                "the sidecar was not ready within {GIVE_UP:?}; its output:\n{}",
                sidecar.process.logs.text()
            );
        }
        if let Some(status) = sidecar.process.exited() {
            bail!(
                "the sidecar exited ({status}) before becoming ready; its output:\n{}",
                sidecar.process.logs.text()
            );
        }
        if serving.is_none() && ok(http, &healthz).await {
            serving = Some(spawned.elapsed());
        }
        if serving.is_some() && ok(http, &readyz).await {
            let ready = spawned.elapsed();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let start = Start {
                serving_ms: ms(serving.unwrap_or(ready)),
                ready_ms: ms(ready),
            };
            drop(sidecar);
            return Ok(start);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

async fn ok(http: &reqwest::Client, url: &str) -> bool {
    http.get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
