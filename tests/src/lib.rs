//! Shared harness for Gatehouse's end-to-end tests: real parts on loopback.
//!
//! - [`idp::Idp`]: the fixture OIDC providers (node, `oidc-provider`), Okta-, Entra- and
//!   Auth0-shaped, with a real login form.
//! - [`stack::SampleApp`]: the sample upstream app (this crate's `gatehouse-sample-app`).
//! - [`stack::Sidecar`]: the `gatehouse-sidecar` binary built by cargo, configured only by the
//!   brief's environment contract.
//! - [`flow::LoginFlow`]: the real sign-in over HTTP through the IdP's form.
//! - [`kube_stack::KubeStack`]: the sidecar in process with Kubernetes provisioning, on the
//!   in-memory API server of kube-fake-client.
//! - [`browser`]: Debian Chromium driven by playwright-core.
//! - [`raw`]: raw HTTP/1.1 for attacks a client library would normalise away.
//! - [`saml_idp`]: the fixture SAML IdPs (pysaml2, samlify), the forged-response tool, a SAML
//!   sidecar stack and the SAML sign-in flow.
//! - [`generated`]: the check that keeps generated regions of the docs equal to the code.
//! - [`markdown`]: the docs' Markdown files, code blocks, prose and shell commands, as the doc
//!   tests read them.
//! - [`apache::Apache`]: Apache httpd with mod_auth_openidc, the benchmark's authenticating peer.
//! - [`bench_access`]: the benchmark's 20-rule access policy.
//! - [`bench_machine`]: the benchmark's machine client: a client-credentials issuer and its token.
#![forbid(unsafe_code)]

pub mod apache;
pub mod bench_access;
pub mod bench_machine;
pub mod browser;
pub mod flow;
pub mod generated;
pub mod idp;
pub mod kube_bench;
pub mod kube_stack;
pub mod markdown;
pub mod process;
pub mod raw;
pub mod saml_idp;
pub mod sample;
pub mod scale_bench;
pub mod scim_conformance;
pub mod session_end_bench;
pub mod signin_bench;
pub mod stack;
pub mod startup_bench;

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result};
use reqwest::header::{ACCEPT, COOKIE};

pub use flow::{Answer, Session};
pub use sample::SeenRequest;
pub use stack::{ProviderKind, Stack, StackOptions};

/// A client that follows no redirects, uses no proxy and keeps no cookies.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(20))
}

/// [`client_builder`], built.
pub fn http_client() -> Result<reqwest::Client> {
    client_builder().build().context("building the HTTP client")
}

/// GETs `path` on the sidecar as an API client (`Accept: application/json`) with `session`'s
/// cookie (if any) and `extra` headers; returns the answer and, when the sample app answered,
/// what it saw.
pub async fn get_app(
    stack: &Stack,
    session: Option<&Session>,
    path: &str,
    extra: &[(&str, &str)],
) -> Result<(Answer, Option<SeenRequest>)> {
    let mut req = http_client()?
        .get(stack.url(path))
        .header(ACCEPT, "application/json");
    if let Some(s) = session {
        req = req.header(COOKIE, s.cookie_header());
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.send().await.with_context(|| format!("GET {path}"))?;
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap_or_default();
    let from_app = headers.contains_key(sample::MARKER_HEADER);
    let seen = if from_app && status.is_success() {
        serde_json::from_str(&body).ok()
    } else {
        None
    };
    Ok((
        Answer {
            status,
            headers,
            body,
        },
        seen,
    ))
}

/// Whether an answer came from the sample app (its marker header is present).
pub fn from_app(answer: &Answer) -> bool {
    answer.headers.contains_key(sample::MARKER_HEADER)
}

/// One Prometheus sample: `name{labels}` → value.
pub type MetricSamples = BTreeMap<String, f64>;

/// Reads the sidecar's `/metrics` and returns every sample.
pub async fn metrics(stack: &Stack) -> Result<(String, MetricSamples)> {
    let text = http_client()?
        .get(stack.admin("/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok((text.clone(), parse_metrics(&text)))
}

/// Parses Prometheus text exposition into samples (comments skipped).
pub fn parse_metrics(text: &str) -> MetricSamples {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Samples whose value grew between `before` and `after` (new samples count from 0).
pub fn grown(before: &MetricSamples, after: &MetricSamples) -> Vec<String> {
    after
        .iter()
        .filter(|(k, v)| **v > before.get(*k).copied().unwrap_or(0.0))
        .map(|(k, _)| k.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_growth_is_detected() {
        let before =
            parse_metrics("# HELP x\nsignins_total{provider=\"okta\",outcome=\"ok\"} 1\nother 3\n");
        let after = parse_metrics(
            "signins_total{provider=\"okta\",outcome=\"ok\"} 2\nother 3\nnew_total 1\n",
        );
        let g = grown(&before, &after);
        assert_eq!(
            g,
            vec![
                "new_total".to_owned(),
                "signins_total{provider=\"okta\",outcome=\"ok\"}".to_owned()
            ]
        );
    }

    fn set_cookies(lines: &[&str]) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        for line in lines {
            headers.append(
                reqwest::header::SET_COOKIE,
                line.parse().expect("header value"),
            );
        }
        headers
    }

    #[test]
    fn a_session_carries_the_refresh_cookie_set_beside_it_and_follows_set_cookie() {
        let callback = set_cookies(&[
            "gatehouse-attempt-x=; Path=/; Max-Age=0; HttpOnly",
            "gatehouse-session=s1; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax",
            "gatehouse-logout=h1; Path=/; Max-Age=3600; HttpOnly",
            "gatehouse-refresh=r1; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax",
        ]);
        let mut session = flow::session_from_headers(&callback).expect("a session");
        assert_eq!(session.cookie_value, "s1");
        assert_eq!(session.refresh_value(), Some("r1"));
        assert_eq!(
            session.cookie_header(),
            "gatehouse-session=s1; gatehouse-refresh=r1"
        );
        assert_eq!(
            session.without_refresh().cookie_header(),
            "gatehouse-session=s1"
        );

        // A renewal: a new session cookie, the refresh cookie unchanged; other cookies ignored.
        let renewal = set_cookies(&[
            "gatehouse-session=s2; Path=/; Max-Age=3000; HttpOnly",
            "gatehouse-refresh=r1; Path=/; Max-Age=3000; HttpOnly",
            "theme=dark; Path=/",
        ]);
        assert_eq!(
            session.apply_set_cookies(&renewal),
            vec!["gatehouse-session".to_owned()]
        );
        assert_eq!(
            session.cookie_header(),
            "gatehouse-session=s2; gatehouse-refresh=r1"
        );
        assert!(session.apply_set_cookies(&renewal).is_empty(), "no change");

        // A logout deletes both.
        let logout = set_cookies(&[
            "gatehouse-session=; Path=/; Max-Age=0; HttpOnly",
            "gatehouse-refresh=; Path=/; max-age=0; HttpOnly",
        ]);
        assert_eq!(session.apply_set_cookies(&logout).len(), 2);
        assert_eq!(session.refresh, None);
        assert_eq!(session.cookie_header(), "");

        // Without a refresh cookie, a session is its session cookie alone.
        let plain = set_cookies(&["__Host-gatehouse-session=s3; Path=/; Max-Age=60; Secure"]);
        let session = flow::session_from_headers(&plain).expect("a session");
        assert_eq!(session.cookie_header(), "__Host-gatehouse-session=s3");
        assert!(flow::session_from_headers(&logout).is_none());
    }

    #[test]
    fn form_action_is_unescaped() {
        let html =
            r#"<p>x</p><form method="post" action="/okta/interaction/abc/login?a=1&amp;b=2">"#;
        assert_eq!(
            flow::form_action(html).as_deref(),
            Some("/okta/interaction/abc/login?a=1&b=2")
        );
    }
}
