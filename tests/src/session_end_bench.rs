//! Figures for sessions that follow the IdP (run by `gatehouse-stack session-end-bench`), each
//! with a baseline measured in the same run:
//!
//! - **Back-channel logout → refusal on the other replica**: two sidecar replicas in process on
//!   one in-memory Kubernetes API ([`KubeStack`] and a [`Replica`]). A browser signed in at
//!   replica 1 confirms its logout at the fixture IdP; the IdP POSTs its back-channel logout
//!   token to replica 1, which records the session on the SsoUser. The in-memory API has no
//!   streaming watch, so the harness stands in for it: it polls the SsoUser every millisecond
//!   and, as soon as the revocation is there, delivers the SsoUser to replica 2's watch cache;
//!   then it sends the session's request to replica 2, which must refuse it. The interval runs
//!   from the browser's confirmation leaving the client to that refusal arriving; a real API
//!   server's watch delivery is not in it. Baseline: the same request on replica 2 admitted,
//!   just before the logout.
//! - **What a re-validation adds to the request that triggers it**: one sidecar (the release
//!   binary, a process of its own) with `GATEHOUSE_REVALIDATE_INTERVAL` at [`INTERVAL_SECS`] s,
//!   the fixture IdP's token endpoint slowed by [`TOKEN_DELAY`] (a request that waited for the
//!   refresh would show it). Sessions signed in, then left until they are due; one request each,
//!   which starts the refresh, is timed against the request of a session signed in just before
//!   (fresh, nothing to re-validate), alternating, on the same sidecar. The sidecar's
//!   `gatehouse_revalidations_total{outcome="refreshed"}` must grow by exactly the number of due
//!   sessions (each triggering request started one refresh, no baseline request did), and each
//!   due session's next request must carry its renewed session cookie; else the run fails.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{StatusCode, Url, header::COOKIE};
use serde::Serialize;

use crate::{
    ProviderKind, Stack, StackOptions,
    flow::{LoginFlow, form_action, input_value},
    idp::PASSWORD,
    kube_bench::Spread,
    kube_stack::{KubeOptions, KubeStack, Replica},
    stack::SESSION_COOKIE,
};

/// `GATEHOUSE_REVALIDATE_INTERVAL` of the re-validation measurement, seconds. The sidecar keeps
/// when a session was validated in whole seconds, so with 1 s a session signed in late in a
/// second is due within milliseconds; 2 s leaves every session at least one second fresh, which
/// the baseline needs.
pub const INTERVAL_SECS: u64 = 2;
/// How late the fixture IdP's token endpoint answers while due requests are timed.
pub const TOKEN_DELAY: Duration = Duration::from_millis(200);
/// The re-validation counter on the admin port.
const REVALIDATIONS: &str = "gatehouse_revalidations_total";
/// Accounts the logout trials sign in as, in turn (the fixture's Okta users with a role). Each
/// back-channel logout adds an entry to the user's `status.revokedSessions`, which holds 64.
const LOGOUT_USERS: [&str; 2] = ["ada", "bob"];
/// Most back-channel logouts per user in one run (below the 64 entries `revokedSessions` holds,
/// so every trial goes through the same path).
const LOGOUTS_PER_USER: usize = 60;
/// Header the sample app sets on `/static`.
const SAMPLE_MARKER: &str = "x-sample-app";

/// One logout trial, each figure from the browser's confirmation at the IdP leaving the client.
#[derive(Debug, Clone, Copy)]
struct LogoutTrial {
    /// To the refused answer from replica 2.
    total: Duration,
    /// To the harness seeing the revocation on the SsoUser in the API.
    recorded: Duration,
    /// The harness's watch stand-in: reading the SsoUser and applying it to replica 2's cache.
    delivery: Duration,
    /// The refused request on replica 2, alone.
    refused_request: Duration,
    /// To the IdP's answer to the browser (it sends the back-channel logout before answering).
    idp_answer: Duration,
    /// Baseline: the session's request admitted by replica 2 just before the logout.
    admitted_request: Duration,
}

/// One round of logout trials.
#[derive(Debug, Clone, Serialize)]
pub struct LogoutRound {
    /// Browser confirms the logout at the IdP → first refused request on the other replica.
    pub total: Spread,
    /// … → the revocation on the SsoUser (back-channel POST handled by replica 1).
    pub recorded: Spread,
    /// The harness delivering the SsoUser to replica 2's cache (stands in for the watch).
    pub delivery: Spread,
    /// The refused request on replica 2.
    pub refused_request: Spread,
    /// … → the IdP's answer to the browser.
    pub idp_answer: Spread,
    /// Baseline: the same request admitted by replica 2 before the logout.
    pub admitted_request: Spread,
}

impl LogoutRound {
    fn of(trials: &[LogoutTrial]) -> Self {
        let spread = |f: fn(&LogoutTrial) -> Duration| Spread::of(trials.iter().map(f).collect());
        Self {
            total: spread(|t| t.total),
            recorded: spread(|t| t.recorded),
            delivery: spread(|t| t.delivery),
            refused_request: spread(|t| t.refused_request),
            idp_answer: spread(|t| t.idp_answer),
            admitted_request: spread(|t| t.admitted_request),
        }
    }
}

/// The logout measurement.
#[derive(Debug, Clone, Serialize)]
pub struct LogoutFigures {
    /// Logouts per round.
    pub trials: usize,
    pub rounds: Vec<LogoutRound>,
}

/// One round of the re-validation measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RevalidationRound {
    /// Requests of fresh sessions (baseline).
    pub fresh: Spread,
    /// Requests of due sessions, each starting a refresh.
    pub triggering: Spread,
    /// Refreshes the sidecar counted as `refreshed` this round (must equal the due sessions).
    pub refreshed: u64,
}

/// The re-validation measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RevalidationFigures {
    /// Due sessions (and as many fresh ones) per round.
    pub sessions: usize,
    /// `GATEHOUSE_REVALIDATE_INTERVAL`, seconds.
    pub interval_s: u64,
    /// The IdP's token endpoint delay while due requests are timed, ms.
    pub token_delay_ms: u64,
    pub rounds: Vec<RevalidationRound>,
}

/// What `gatehouse-stack session-end-bench` prints (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct SessionEndFigures {
    pub logout: LogoutFigures,
    pub revalidation: RevalidationFigures,
}

/// Runs both measurements: `rounds` rounds of `trials` logouts, then `rounds` rounds of
/// `sessions` due against `sessions` fresh requests.
pub async fn run(rounds: usize, trials: usize, sessions: usize) -> Result<SessionEndFigures> {
    let rounds = rounds.max(1);
    Ok(SessionEndFigures {
        logout: logout(rounds, trials.max(1)).await?,
        revalidation: revalidation(rounds, sessions.max(1)).await?,
    })
}

// ---------------------------------------------------------------------------------------------
// Back-channel logout → refusal on the other replica

async fn logout(rounds: usize, trials: usize) -> Result<LogoutFigures> {
    if rounds * trials > LOGOUT_USERS.len() * LOGOUTS_PER_USER {
        bail!(
            "{rounds} rounds of {trials} logouts: at most {} in one run (each user's \
             revokedSessions holds 64 entries)",
            LOGOUT_USERS.len() * LOGOUTS_PER_USER
        );
    }
    eprintln!("session-end-bench: back-channel logout → refusal on the other replica");
    let mut stack = KubeStack::start(KubeOptions::default()).await?;
    stack.sync().await?;
    let mut replica = stack.start_replica().await?;
    // One sign-in per account creates its SsoUser (and warms the connections up).
    let mut names = Vec::new();
    for login in LOGOUT_USERS {
        let known: BTreeSet<String> = user_names(&stack).await?;
        stack.sign_in(ProviderKind::Okta, login).await?;
        let created = user_names(&stack)
            .await?
            .into_iter()
            .find(|n| !known.contains(n))
            .with_context(|| format!("the sign-in of {login} created no SsoUser"))?;
        names.push((login, created));
    }
    stack.sync().await?;
    replica.sync().await?;
    let http = crate::http_client()?;
    let mut out = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut measured = Vec::with_capacity(trials);
        for trial in 0..trials {
            let (login, name) = &names[(round * trials + trial) % names.len()];
            measured.push(
                logout_trial(&stack, &mut replica, &http, login, name)
                    .await
                    .with_context(|| format!("logout round {}, trial {}", round + 1, trial + 1))?,
            );
        }
        out.push(LogoutRound::of(&measured));
    }
    Ok(LogoutFigures {
        trials,
        rounds: out,
    })
}

async fn user_names(stack: &KubeStack) -> Result<BTreeSet<String>> {
    Ok(stack
        .all_users()
        .await?
        .into_iter()
        .filter_map(|u| u.metadata.name)
        .collect())
}

/// The ids in SsoUser `name`'s `status.revokedSessions`.
async fn revoked_ids(stack: &KubeStack, name: &str) -> Result<BTreeSet<String>> {
    let user = stack.users.get(name).await?;
    Ok(user
        .status
        .unwrap_or_default()
        .revoked_sessions
        .into_iter()
        .map(|r| r.id)
        .collect())
}

async fn logout_trial(
    stack: &KubeStack,
    replica: &mut Replica,
    http: &reqwest::Client,
    login: &str,
    name: &str,
) -> Result<LogoutTrial> {
    // A browser of its own: a new IdP session, so a new `sid`.
    let flow = LoginFlow::start_at(&stack.url(""), ProviderKind::Okta, Some("/")).await?;
    let callback = flow.authenticate(login, PASSWORD).await?;
    let attempt = flow.finish(callback).await?;
    let session = attempt.session.with_context(|| {
        format!(
            "sign-in of {login} gave no session: callback answered {}",
            attempt.callback.status
        )
    })?;
    // Replica 2's cache as the API holds the user now (this sign-in updated it).
    replica.deliver_current(name).await?;
    let started = Instant::now();
    if !replica.reaches_app(&session).await? {
        bail!("replica 2 does not admit the session before the logout");
    }
    let admitted_request = started.elapsed();
    let before = revoked_ids(stack, name).await?;

    // The IdP's logout confirmation page (not timed), then the browser's "yes, sign me out".
    let end = Url::parse(&format!("{}/session/end", stack.idp.okta_issuer))?;
    let page = flow.visit(&end).await?;
    if page.status != StatusCode::OK {
        bail!("the IdP's logout page answered {}", page.status);
    }
    let action = form_action(&page.body).context("logout page without a form")?;
    let xsrf = input_value(&page.body, "xsrf").context("logout form without xsrf")?;
    let confirm_url = end.join(&action)?;
    let confirm = http
        .post(confirm_url.clone())
        .header(COOKIE, flow.cookies_for(&confirm_url))
        .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")]);

    let t0 = Instant::now();
    let idp = async {
        let res = confirm.send().await?;
        let status = res.status();
        let _ = res.bytes().await;
        Ok::<_, anyhow::Error>((status, t0.elapsed()))
    };
    let other = async {
        // The watch stand-in: the revocation as soon as it is in the API, to replica 2.
        loop {
            if revoked_ids(stack, name)
                .await?
                .iter()
                .any(|id| !before.contains(id))
            {
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("no revocation on SsoUser {name} 10 s after the logout at the IdP");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let recorded = t0.elapsed();
        replica.deliver_current(name).await?;
        let delivered = t0.elapsed();
        if replica.reaches_app(&session).await? {
            bail!("replica 2 admitted the session after the revocation reached its cache");
        }
        Ok::<_, anyhow::Error>((recorded, delivered, t0.elapsed()))
    };
    let (idp, other) = tokio::join!(idp, other);
    let (status, idp_answer) = idp?;
    if !(status.is_redirection() || status.is_success()) {
        bail!("the IdP answered the logout with {status}");
    }
    let (recorded, delivered, total) = other?;
    if stack.reaches_app(&session).await? {
        bail!("replica 1, which received the back-channel logout, still admits the session");
    }
    Ok(LogoutTrial {
        total,
        recorded,
        delivery: delivered - recorded,
        refused_request: total - delivered,
        idp_answer,
        admitted_request,
    })
}

// ---------------------------------------------------------------------------------------------
// What a re-validation adds to the request that triggers it

/// `name=value` of every gatehouse cookie (session, refresh, logout hint) the `Set-Cookie`
/// values set, as a browser would send them back; cleared cookies are left out.
pub fn gatehouse_cookies(set_cookies: &[String]) -> Vec<(String, String)> {
    set_cookies
        .iter()
        .filter_map(|header| {
            let (name, value) = header.split(';').next()?.trim().split_once('=')?;
            let ours = name.starts_with("gatehouse-") || name.starts_with("__Host-gatehouse-");
            let cleared = value.is_empty() || header.to_ascii_lowercase().contains("max-age=0");
            (ours && !cleared).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// A `Cookie` header of `cookies`.
fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `gatehouse_revalidations_total` by outcome, from a `/metrics` text.
pub fn revalidations(metrics: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{REVALIDATIONS}{{outcome=\"");
    metrics
        .lines()
        .filter_map(|line| {
            let (outcome, rest) = line.strip_prefix(&prefix)?.split_once("\"}")?;
            let value: f64 = rest.trim().parse().ok()?;
            Some((outcome.to_owned(), value as u64))
        })
        .collect()
}

/// What the counters grew by between two readings; fails unless exactly `expected` refreshes
/// and nothing else.
pub fn refreshed_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    expected: u64,
) -> Result<u64> {
    let grew = |outcome: &str| {
        after
            .get(outcome)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(outcome).copied().unwrap_or(0))
    };
    if !after.contains_key("refreshed") {
        bail!("{REVALIDATIONS}{{outcome=\"refreshed\"}} not in /metrics");
    }
    let others: Vec<String> = after
        .keys()
        .filter(|o| *o != "refreshed" && grew(o) > 0)
        .map(|o| format!("{o} {}", grew(o)))
        .collect();
    if !others.is_empty() {
        bail!("re-validations that did not refresh: {}", others.join(", "));
    }
    let refreshed = grew("refreshed");
    if refreshed != expected {
        bail!(
            "{refreshed} sessions were refreshed, {expected} requests of due sessions were made: \
             the figures would not be what they claim"
        );
    }
    Ok(refreshed)
}

/// Signs in as `ada` and returns the `Cookie` header of every gatehouse cookie the callback set;
/// fails without a refresh cookie (nothing to re-validate with).
async fn sign_in_cookies(stack: &Stack) -> Result<String> {
    let attempt = LoginFlow::start(stack, ProviderKind::Okta, Some("/"))
        .await?
        .complete("ada", PASSWORD)
        .await?;
    if attempt.session.is_none() {
        bail!(
            "sign-in gave no session: callback answered {}",
            attempt.callback.status
        );
    }
    let cookies = gatehouse_cookies(&attempt.callback.set_cookies());
    if !cookies
        .iter()
        .any(|(n, _)| n.ends_with("gatehouse-refresh"))
    {
        bail!("the callback set no refresh cookie: the session cannot be re-validated");
    }
    Ok(cookie_header(&cookies))
}

/// One request to the app through the sidecar with `cookie`; its round trip, and whether it
/// renewed the session cookie.
async fn timed_request(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
) -> Result<(Duration, bool)> {
    let started = Instant::now();
    let res = http
        .get(url)
        .header("accept", "application/json")
        .header(COOKIE, cookie)
        .send()
        .await?;
    let status = res.status();
    let served = res.headers().contains_key(SAMPLE_MARKER);
    let renewed = gatehouse_cookies(
        &res.headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect::<Vec<_>>(),
    )
    .iter()
    .any(|(n, _)| n.ends_with(SESSION_COOKIE));
    let _ = res.bytes().await?;
    let elapsed = started.elapsed();
    if status != StatusCode::OK || !served {
        bail!("the app did not answer through the sidecar: {status}");
    }
    Ok((elapsed, renewed))
}

async fn metrics(http: &reqwest::Client, stack: &Stack) -> Result<BTreeMap<String, u64>> {
    let text = http
        .get(stack.admin("/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(revalidations(&text))
}

async fn revalidation(rounds: usize, sessions: usize) -> Result<RevalidationFigures> {
    eprintln!("session-end-bench: what a re-validation adds to the request that triggers it");
    let stack = Stack::start(StackOptions {
        providers: vec![ProviderKind::Okta],
        extra_env: vec![(
            "GATEHOUSE_REVALIDATE_INTERVAL".to_owned(),
            format!("{INTERVAL_SECS}s"),
        )],
        ..StackOptions::default()
    })
    .await?;
    let http = crate::http_client()?;
    let url = stack.url("/static");
    // Warm-up: a sign-in and a few requests of it while fresh.
    let warm = sign_in_cookies(&stack).await?;
    for _ in 0..5 {
        timed_request(&http, &url, &warm).await?;
    }
    let mut out = Vec::with_capacity(rounds);
    for round in 0..rounds {
        out.push(
            revalidation_round(&stack, &http, &url, sessions)
                .await
                .with_context(|| format!("re-validation round {}", round + 1))?,
        );
    }
    Ok(RevalidationFigures {
        sessions,
        interval_s: INTERVAL_SECS,
        token_delay_ms: TOKEN_DELAY.as_millis() as u64,
        rounds: out,
    })
}

/// The time, for a failure message.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The re-validation counters once no refresh is landing: two readings [`TOKEN_DELAY`] × 2
/// apart that agree (a refresh running now would land in between).
async fn settled_metrics(http: &reqwest::Client, stack: &Stack) -> Result<BTreeMap<String, u64>> {
    let mut last = metrics(http, stack).await?;
    for _ in 0..50 {
        tokio::time::sleep(TOKEN_DELAY * 2).await;
        let now = metrics(http, stack).await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    bail!("the sidecar's re-validation counters kept changing with no request coming")
}

async fn revalidation_round(
    stack: &Stack,
    http: &reqwest::Client,
    url: &str,
    sessions: usize,
) -> Result<RevalidationRound> {
    // The previous round's last requests (each due session's renewed cookie checked) may have
    // found renewals due in their turn and started refreshes: counted once they have landed.
    let before = settled_metrics(http, stack).await?;
    let round_start = unix_now();
    let mut due = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        due.push(sign_in_cookies(stack).await?);
    }
    let signed_in = Instant::now();
    stack.idp().set_token_delay("okta", TOKEN_DELAY).await?;
    // Validated at the whole second of the sign-in: due once the interval has passed from there.
    tokio::time::sleep(
        (Duration::from_secs(INTERVAL_SECS) + Duration::from_millis(200))
            .saturating_sub(signed_in.elapsed()),
    )
    .await;

    let due_from = unix_now();
    let mut fresh = Vec::with_capacity(sessions);
    let mut triggering = Vec::with_capacity(sessions);
    for (i, due_cookie) in due.iter().enumerate() {
        // Signed in just now: fresh for at least INTERVAL_SECS - 1 s.
        let fresh_cookie = sign_in_cookies(stack).await?;
        // Alternate which goes first, so neither always follows the sign-in.
        if i % 2 == 0 {
            fresh.push(timed_request(http, url, &fresh_cookie).await?.0);
            triggering.push(timed_request(http, url, due_cookie).await?.0);
        } else {
            triggering.push(timed_request(http, url, due_cookie).await?.0);
            fresh.push(timed_request(http, url, &fresh_cookie).await?.0);
        }
    }

    let done = unix_now();
    // Every triggering request started a refresh, and none other did.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = metrics(http, stack).await?;
        let grown = now
            .get("refreshed")
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get("refreshed").copied().unwrap_or(0));
        if grown >= sessions as u64 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for one more flight to land, had a baseline request started one.
    tokio::time::sleep(TOKEN_DELAY * 2).await;
    let refreshed = refreshed_between(&before, &metrics(http, stack).await?, sessions as u64)
        .with_context(|| {
            format!(
                "round started at {round_start:.3}, sessions due from {due_from:.3}, requests \
                 done at {done:.3} (Unix s); the sidecar's re-validation lines:\n{}",
                stack.sidecar.process.logs.matching("revalidation")
            )
        })?;
    stack.idp().set_token_delay("okta", Duration::ZERO).await?;
    // The next response of each due session carries its renewed session cookie.
    for due_cookie in &due {
        if !timed_request(http, url, due_cookie).await?.1 {
            bail!("a refreshed session's next response carried no renewed session cookie");
        }
    }
    Ok(RevalidationRound {
        fresh: Spread::of(fresh),
        triggering: Spread::of(triggering),
        refreshed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gatehouse_cookies_keeps_ours_and_leaves_out_cleared_and_foreign_ones() {
        let set = [
            "gatehouse-session=abc; Path=/; HttpOnly; Max-Age=43200",
            "gatehouse-refresh=def; Path=/; HttpOnly",
            "gatehouse-state-x1=; Path=/; Max-Age=0",
            "gatehouse-logout=ghi; Max-Age=0",
            "__Host-gatehouse-refresh=jkl; Path=/; Secure",
            "other=zzz",
        ]
        .map(str::to_owned);
        let cookies = gatehouse_cookies(&set);
        assert_eq!(
            cookie_header(&cookies),
            "gatehouse-session=abc; gatehouse-refresh=def; __Host-gatehouse-refresh=jkl"
        );
    }

    #[test]
    fn revalidations_reads_every_outcome_and_the_check_wants_exactly_the_refreshes() {
        let text = |refreshed: u64, unavailable: u64| {
            format!(
                "# HELP {REVALIDATIONS} x\n{REVALIDATIONS}{{outcome=\"refreshed\"}} {refreshed}\n\
                 {REVALIDATIONS}{{outcome=\"ended\"}} 0\n\
                 {REVALIDATIONS}{{outcome=\"unavailable\"}} {unavailable}\nother 1\n"
            )
        };
        let before = revalidations(&text(3, 1));
        assert_eq!(before.get("refreshed"), Some(&3));
        assert_eq!(before.get("unavailable"), Some(&1));
        assert_eq!(before.len(), 3);
        assert_eq!(
            refreshed_between(&before, &revalidations(&text(8, 1)), 5).expect("five"),
            5
        );
        // A refresh too few or too many, or any other outcome, voids the figures.
        assert!(refreshed_between(&before, &revalidations(&text(7, 1)), 5).is_err());
        assert!(refreshed_between(&before, &revalidations(&text(9, 1)), 5).is_err());
        assert!(refreshed_between(&before, &revalidations(&text(8, 2)), 5).is_err());
        assert!(refreshed_between(&before, &BTreeMap::new(), 0).is_err());
    }
}
