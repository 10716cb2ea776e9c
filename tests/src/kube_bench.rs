//! Provisioning and revocation figures for `cargo xtask bench` (run by `gatehouse-stack
//! provisioning-bench`), each with a baseline measured in the same run:
//!
//! - **Deletion → refusal**: the time from an SsoUser deletion reaching the sidecar's watch cache
//!   to the answer of the first request it refuses, against the round trip of the same request
//!   while the user exists. The in-memory API stands in for the API server, so the time the API
//!   server and the network take to deliver the watch event is not part of it.
//! - **Callback handling**: the sidecar's own time per sign-in callback (its histogram
//!   `gatehouse_sign_in_callback_handling_seconds`, which leaves out the round trip to the IdP's
//!   token endpoint; provisioning goes to the in-memory API), against the whole callback as the
//!   browser sees it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::runtime::watcher;
use reqwest::StatusCode;
use serde::Serialize;

use crate::{
    ProviderKind,
    flow::LoginFlow,
    idp::PASSWORD,
    kube_stack::{KubeOptions, KubeStack},
};

/// Percentiles of a set of durations, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub samples: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Spread {
    /// The spread of `samples`.
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        Self {
            samples: samples.len(),
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            max_us: at(1.0),
        }
    }
}

/// What `gatehouse-stack provisioning-bench` prints (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct ProvisioningFigures {
    /// Deletion delivered to the cache → first refused request answered.
    pub deletion_to_refusal: Spread,
    /// The same request, admitted (baseline).
    pub admitted_request: Spread,
    /// Sign-in callbacks measured.
    pub sign_ins: usize,
    /// Mean of the sidecar's own callback handling time (IdP round trip excluded), µs.
    pub callback_handling_mean_us: f64,
    /// The whole callback as the client sees it (baseline).
    pub callback_total: Spread,
}

fn histogram_mean(metrics: &str, name: &str) -> Result<(f64, f64)> {
    let value = |suffix: &str| -> Result<f64> {
        let prefix = format!("{name}_{suffix} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("{name}_{suffix} not in /metrics"))
    };
    Ok((value("sum")?, value("count")?))
}

/// Runs both measurements.
pub async fn run(trials: usize, sign_ins: usize) -> Result<ProvisioningFigures> {
    let mut stack = KubeStack::start(KubeOptions::default()).await?;

    // Sign-ins: the first creates the SsoUser, the others update it.
    let mut callbacks = Vec::with_capacity(sign_ins);
    let mut session = None;
    for _ in 0..sign_ins.max(1) {
        let flow = LoginFlow::start_at(&stack.url(""), ProviderKind::Okta, Some("/")).await?;
        let callback = flow.authenticate("ada", PASSWORD).await?;
        let started = Instant::now();
        let attempt = flow.finish(callback).await?;
        callbacks.push(started.elapsed());
        session = Some(attempt.session.with_context(|| {
            format!(
                "sign-in failed: callback answered {}",
                attempt.callback.status
            )
        })?);
    }
    let session = session.context("no sign-in")?;
    let (sum, count) = histogram_mean(
        &stack.metrics().await?,
        "gatehouse_sign_in_callback_handling_seconds",
    )?;
    if count as usize != callbacks.len() {
        bail!(
            "the sidecar measured {count} callbacks, the client made {}",
            callbacks.len()
        );
    }

    stack.sync().await?;
    let user = stack
        .all_users()
        .await?
        .into_iter()
        .next()
        .context("the SsoUser exists")?;
    let mut admitted = Vec::with_capacity(trials);
    let mut refused = Vec::with_capacity(trials);
    for _ in 0..trials {
        let started = Instant::now();
        let answer = stack.get(&session, "/dashboard").await?;
        admitted.push(started.elapsed());
        if answer.status != StatusCode::OK {
            bail!(
                "the session was not admitted before the deletion: {}",
                answer.status
            );
        }

        let started = Instant::now();
        stack.deliver(Ok(watcher::Event::Delete(user.clone())));
        let answer = stack.get(&session, "/dashboard").await?;
        refused.push(started.elapsed());
        if answer.status != StatusCode::UNAUTHORIZED {
            bail!(
                "the first request after the deletion was not refused: {}",
                answer.status
            );
        }
        // The same object back (same UID): the session is valid again for the next trial.
        stack.deliver(Ok(watcher::Event::Apply(user.clone())));
    }

    Ok(ProvisioningFigures {
        deletion_to_refusal: Spread::of(refused),
        admitted_request: Spread::of(admitted),
        sign_ins: callbacks.len(),
        callback_handling_mean_us: sum / count * 1e6,
        callback_total: Spread::of(callbacks),
    })
}
