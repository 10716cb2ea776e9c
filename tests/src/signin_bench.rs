//! Sign-in figures for `cargo xtask bench` (run by `gatehouse-stack signin-bench`): what the
//! sidecar itself spends on a SAML ACS post (body read, XML-DSig verification, attribute
//! mapping, session) against what it spends on an OIDC callback (token exchange round trip to
//! the IdP excluded), measured in the same run.
//!
//! Two sidecars run side by side, one configured for the fixture OIDC IdP (Okta), one for the
//! pysaml2 SAML IdP. Each round signs in `sign_ins` times through each, one after the other, and
//! reads from each sidecar's `/metrics` how much its handling histogram
//! (`gatehouse_sign_in_callback_handling_seconds`, which both routes feed) grew: the mean per
//! sign-in of that round. The IdPs' own work (their login forms, pysaml2's signing) falls outside
//! both figures.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::{
    ProviderKind, Stack, StackOptions,
    flow::LoginFlow,
    idp::PASSWORD,
    kube_bench::Spread,
    saml_idp::{MEMBER, SamlFlow, SamlStack, session_of},
};

/// The histogram both the OIDC callback and the SAML ACS feed.
const HANDLING: &str = "gatehouse_sign_in_callback_handling_seconds";

/// One round's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// Mean of the sidecar's own OIDC callback handling this round, µs.
    pub oidc_handling_mean_us: f64,
    /// Mean of the sidecar's own SAML ACS handling this round, µs.
    pub saml_handling_mean_us: f64,
    /// The whole callback as the client sees it (request to answer).
    pub oidc_total: Spread,
    /// The whole ACS post as the client sees it.
    pub saml_total: Spread,
    /// The sidecar's own ACS handling of each SAML sign-in of the round (the histogram's sum
    /// read before and after each one), for its p50 and p99.
    pub saml_handling: Spread,
}

impl Round {
    /// SAML ACS handling over OIDC callback handling.
    pub fn ratio(&self) -> f64 {
        self.saml_handling_mean_us / self.oidc_handling_mean_us
    }
}

/// What `gatehouse-stack signin-bench` prints (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct SignInFigures {
    /// Sign-ins per protocol per round.
    pub sign_ins: usize,
    pub rounds: Vec<Round>,
}

/// `(sum, count)` of the handling histogram in a `/metrics` text.
fn handling(metrics: &str) -> Result<(f64, f64)> {
    let value = |suffix: &str| -> Result<f64> {
        let prefix = format!("{HANDLING}_{suffix} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("{HANDLING}_{suffix} not in /metrics"))
    };
    Ok((value("sum")?, value("count")?))
}

async fn metrics_text(admin_metrics_url: &str) -> Result<String> {
    Ok(crate::http_client()?
        .get(admin_metrics_url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// Mean handling per sign-in between two readings, µs; checks the sidecar counted `expected`.
fn mean_between(before: (f64, f64), after: (f64, f64), expected: usize) -> Result<f64> {
    let count = after.1 - before.1;
    if count as usize != expected {
        bail!("the sidecar measured {count} sign-ins, the client made {expected}");
    }
    Ok((after.0 - before.0) / count * 1e6)
}

async fn oidc_round(stack: &Stack, sign_ins: usize) -> Result<(f64, Spread)> {
    let metrics = stack.admin("/metrics");
    let before = handling(&metrics_text(&metrics).await?)?;
    let mut totals = Vec::with_capacity(sign_ins);
    for _ in 0..sign_ins {
        let flow = LoginFlow::start_at(&stack.url(""), ProviderKind::Okta, Some("/")).await?;
        let callback = flow.authenticate("ada", PASSWORD).await?;
        let started = Instant::now();
        let attempt = flow.finish(callback).await?;
        totals.push(started.elapsed());
        if attempt.session.is_none() {
            bail!(
                "OIDC sign-in failed: callback answered {}",
                attempt.callback.status
            );
        }
    }
    let after = handling(&metrics_text(&metrics).await?)?;
    Ok((mean_between(before, after, sign_ins)?, Spread::of(totals)))
}

async fn saml_round(stack: &SamlStack, sign_ins: usize) -> Result<(f64, Spread, Spread)> {
    let metrics = stack.admin("/metrics");
    let before = handling(&metrics_text(&metrics).await?)?;
    let mut totals = Vec::with_capacity(sign_ins);
    let mut each = Vec::with_capacity(sign_ins);
    let mut last = before;
    for _ in 0..sign_ins {
        let flow = SamlFlow::start(&stack.sidecar.url, Some("/")).await?;
        let post = flow.authenticate(MEMBER.login, PASSWORD).await?;
        let started = Instant::now();
        let answer = flow
            .post(&post.saml_response, post.relay_state.as_deref())
            .await?;
        totals.push(started.elapsed());
        if session_of(&answer).is_none() {
            bail!("SAML sign-in failed: the ACS answered {}", answer.status);
        }
        let now = handling(&metrics_text(&metrics).await?)?;
        each.push(std::time::Duration::from_secs_f64(
            mean_between(last, now, 1)? / 1e6,
        ));
        last = now;
    }
    Ok((
        mean_between(before, last, sign_ins)?,
        Spread::of(totals),
        Spread::of(each),
    ))
}

/// `rounds` rounds of `sign_ins` OIDC then `sign_ins` SAML sign-ins, after one warm-up
/// sign-in through each (connection set-up, the SAML IdP reading the SP metadata).
pub async fn run(rounds: usize, sign_ins: usize) -> Result<SignInFigures> {
    let oidc = Stack::start(StackOptions {
        providers: vec![ProviderKind::Okta],
        ..StackOptions::default()
    })
    .await?;
    let saml = SamlStack::start_default().await?;
    oidc_round(&oidc, 1).await.context("OIDC warm-up")?;
    saml_round(&saml, 1).await.context("SAML warm-up")?;
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let (oidc_mean, oidc_total) = oidc_round(&oidc, sign_ins).await?;
        let (saml_mean, saml_total, saml_handling) = saml_round(&saml, sign_ins).await?;
        out.push(Round {
            oidc_handling_mean_us: oidc_mean,
            saml_handling_mean_us: saml_mean,
            oidc_total,
            saml_total,
            saml_handling,
        });
    }
    Ok(SignInFigures {
        sign_ins,
        rounds: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handling_reads_the_histogram_and_the_mean_checks_the_count() {
        let text =
            format!("{HANDLING}_sum 0.5\n{HANDLING}_count 10\n{HANDLING}_bucket{{le=\"1\"}} 10\n");
        let later = format!("{HANDLING}_sum 0.8\n{HANDLING}_count 13\n");
        let (before, after) = (
            handling(&text).expect("before"),
            handling(&later).expect("after"),
        );
        assert_eq!(before, (0.5, 10.0));
        let mean = mean_between(before, after, 3).expect("mean");
        assert!((mean - 100_000.0).abs() < 1e-6, "{mean}");
        assert!(mean_between(before, after, 4).is_err());
        assert!(handling("other_sum 1\n").is_err());
    }
}
