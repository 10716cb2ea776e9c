//! Microsoft Graph: the groups of an Entra ID user in more groups than the ID token carries.
//!
//! When the verified ID token shows a group overage ([`gatehouse_auth::overage::groups_overage`]),
//! the sign-in (and a re-validation) reads the user's groups from
//! `<ENTRA_GRAPH_URL>/v1.0/me/transitiveMemberOf?$select=id` with the access token of that same
//! sign-in (delegated `User.Read`, or `GroupMember.Read.All`), page by page, and puts them in the
//! groups claim, where role maps, access rules and `status.groups` read them. Never from the
//! token's `_claim_sources`.
//!
//! Bounded: [`GRAPH_BUDGET`] for all pages and one retry; at most
//! [`gatehouse_auth::overage::MAX_PAGES`] pages and [`gatehouse_auth::overage::MAX_GROUPS`]
//! groups; `@odata.nextLink` followed only on the Graph URL's origin (the access token goes with
//! it); no redirects (the sign-in client follows none). One 429 (or 503) is retried after its
//! `Retry-After` when that fits the time left. Anything else that goes wrong leaves the groups
//! unknown ([`GraphError`]): the session then decides access rules with
//! [`gatehouse_auth::access::Policy::decide_groups_unknown`], fail closed.

use std::time::Duration;

use gatehouse_auth::overage::{
    self, MAX_GROUPS, MAX_PAGE_BYTES, MAX_PAGES, MAX_RETRY_AFTER, groups_overage,
};
use serde_json::{Map, Value};
use tokio::time::Instant;
use url::Url;

/// Longest a sign-in or re-validation spends reading groups from Graph, pages and retry included.
pub const GRAPH_BUDGET: Duration = Duration::from_secs(5);

/// Why an overage user's groups could not be read: they are unknown for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The provider is not Entra ID: a groups claim it left out (a distributed claim) is not
    /// fetched from anywhere.
    #[error("the token's groups claim is distributed and the provider is not Entra ID")]
    NotEntra,
    /// The sign-in brought no access token to ask Graph with.
    #[error("no access token to ask Microsoft Graph with")]
    NoAccessToken,
    /// The request failed (connection, TLS, a broken body).
    #[error("Microsoft Graph could not be reached")]
    Unreachable,
    /// [`GRAPH_BUDGET`] ran out.
    #[error("Microsoft Graph did not answer within {GRAPH_BUDGET:?}")]
    TimedOut,
    /// 429 (or 503) again, or with no `Retry-After` that fits the time left.
    #[error("Microsoft Graph throttled the request")]
    Throttled,
    /// 401 or 403: the access token lacks `User.Read` (or `GroupMember.Read.All`).
    #[error("Microsoft Graph refused the access token ({0})")]
    Forbidden(u16),
    /// A 5xx.
    #[error("Microsoft Graph failed ({0})")]
    ServerError(u16),
    /// Another status.
    #[error("Microsoft Graph answered {0}")]
    Status(u16),
    /// A page over [`MAX_PAGE_BYTES`].
    #[error("Microsoft Graph page too large")]
    TooLarge,
    /// A page that is not a collection of objects.
    #[error("Microsoft Graph answer malformed")]
    Malformed,
    /// `@odata.nextLink` pointing away from the Graph URL: not followed with the access token.
    #[error("Microsoft Graph's next link points elsewhere")]
    ForeignLink,
    /// More than [`MAX_GROUPS`] groups or [`MAX_PAGES`] pages: a partial list is not the list.
    #[error("more groups than are read")]
    TooManyGroups,
}

impl GraphError {
    /// Stable label: the `reason` of the `groups_unknown` audit line.
    pub fn reason(self) -> &'static str {
        match self {
            GraphError::NotEntra => "groups_claim_distributed",
            GraphError::NoAccessToken => "graph_no_access_token",
            GraphError::Unreachable => "graph_unreachable",
            GraphError::TimedOut => "graph_timeout",
            GraphError::Throttled => "graph_throttled",
            GraphError::Forbidden(_) => "graph_forbidden",
            GraphError::ServerError(_) => "graph_server_error",
            GraphError::Status(_) => "graph_status",
            GraphError::TooLarge => "graph_too_large",
            GraphError::Malformed => "graph_malformed",
            GraphError::ForeignLink => "graph_foreign_link",
            GraphError::TooManyGroups => "graph_too_many_groups",
        }
    }
}

/// Completes `claims` (a verified ID token's) with the user's groups when the token shows a
/// group overage for `groups_claim`: read from Graph at `graph` (Entra ID; `None` for other
/// providers) with `access_token`, and put in `groups_claim` as an array of object ids. Returns
/// why the groups are unknown when they could not be read (logged), `None` when they are known
/// (from the token or from Graph).
pub async fn complete_groups(
    http: &reqwest::Client,
    graph: Option<&Url>,
    groups_claim: &str,
    claims: &mut Map<String, Value>,
    access_token: Option<&str>,
    provider: &str,
) -> Option<&'static str> {
    if !groups_overage(claims, groups_claim) {
        return None;
    }
    let read = match (graph, access_token) {
        (None, _) => Err(GraphError::NotEntra),
        (Some(_), None) => Err(GraphError::NoAccessToken),
        (Some(base), Some(token)) => transitive_groups(http, base, token, GRAPH_BUDGET).await,
    };
    match read {
        Ok(ids) => {
            tracing::debug!(
                provider,
                groups = ids.len(),
                "group overage: groups read from Microsoft Graph"
            );
            claims.insert(
                groups_claim.to_owned(),
                Value::Array(ids.into_iter().map(Value::String).collect()),
            );
            None
        }
        Err(e) => {
            tracing::warn!(provider, reason = e.reason(), error = %e, "group overage: the user's groups could not be read; rules on groups fail closed for this session");
            Some(e.reason())
        }
    }
}

/// The ids of every group (and directory role) the signed-in user is in, directly or through
/// other groups: `transitiveMemberOf` under Graph URL `base`, every page, within `budget`.
pub async fn transitive_groups(
    http: &reqwest::Client,
    base: &Url,
    access_token: &str,
    budget: Duration,
) -> Result<Vec<String>, GraphError> {
    let deadline = Instant::now() + budget;
    let mut url = overage::first_page(base);
    let mut groups = Vec::new();
    let mut pages = 0;
    let mut retried = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let response = tokio::time::timeout(
            left,
            http.get(url.clone())
                .bearer_auth(access_token)
                .header(http::header::ACCEPT, "application/json")
                .send(),
        )
        .await
        .map_err(|_| GraphError::TimedOut)?
        .map_err(|e| {
            if e.is_timeout() {
                GraphError::TimedOut
            } else {
                GraphError::Unreachable
            }
        })?;
        let status = response.status().as_u16();
        if status == 429 || status == 503 {
            let wait = overage::retry_after(
                response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            );
            let left = deadline.saturating_duration_since(Instant::now());
            match wait {
                Some(wait) if !retried && wait <= MAX_RETRY_AFTER && wait < left => {
                    retried = true;
                    tokio::time::sleep(wait).await;
                    continue;
                }
                _ if status == 429 => return Err(GraphError::Throttled),
                _ => return Err(GraphError::ServerError(status)),
            }
        }
        match status {
            200 => {}
            401 | 403 => return Err(GraphError::Forbidden(status)),
            500..=599 => return Err(GraphError::ServerError(status)),
            _ => return Err(GraphError::Status(status)),
        }
        pages += 1;
        let body = tokio::time::timeout_at(deadline, read_page(response))
            .await
            .map_err(|_| GraphError::TimedOut)??;
        let page = overage::parse_page(&body).map_err(|_| GraphError::Malformed)?;
        groups.extend(page.ids);
        if groups.len() > MAX_GROUPS {
            return Err(GraphError::TooManyGroups);
        }
        let Some(link) = page.next_link else {
            return Ok(groups);
        };
        if pages >= MAX_PAGES {
            return Err(GraphError::TooManyGroups);
        }
        url = overage::next_page(base, &link).ok_or(GraphError::ForeignLink)?;
    }
}

/// A page's body, up to [`MAX_PAGE_BYTES`].
async fn read_page(mut response: reqwest::Response) -> Result<Vec<u8>, GraphError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| GraphError::Unreachable)?
    {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(GraphError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::{Query, State};
    use axum::response::{IntoResponse, Response};
    use http::{HeaderMap, StatusCode};
    use serde_json::json;

    /// What the fixture Graph does.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mode {
        /// `n` groups in pages of 100.
        Pages(usize),
        /// The first request gets 429 with `Retry-After: <secs>`, then pages.
        ThrottleOnce(u64),
        /// Every request gets 429 with `Retry-After: 1`.
        ThrottleAlways,
        /// 503 without `Retry-After`.
        Unavailable,
        /// 500.
        Fails,
        /// The first page links to another origin.
        ForeignNext,
        /// Every page links to the next, for ever.
        Endless,
        /// 401.
        Unauthorized,
    }

    struct Fixture {
        mode: Mode,
        hits: AtomicUsize,
        origin: std::sync::OnceLock<String>,
    }

    const TOKEN: &str = "access-token-of-this-sign-in";

    async fn serve(
        State(f): State<Arc<Fixture>>,
        headers: HeaderMap,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> Response {
        let hit = f.hits.fetch_add(1, Ordering::SeqCst);
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if authorization != Some(&format!("Bearer {TOKEN}")) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        assert_eq!(q.get("$select").map(String::as_str), Some("id"));
        let origin = f.origin.get().expect("origin").clone();
        let skip: usize = q
            .get("$skiptoken")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let page = |total: usize, skip: usize| {
            let end = (skip + 100).min(total);
            let value: Vec<Value> = (skip..end)
                .map(|i| json!({"@odata.type": "#microsoft.graph.group", "id": format!("group-{i:04}")}))
                .collect();
            let mut body = json!({"value": value});
            if end < total {
                body["@odata.nextLink"] = json!(format!(
                    "{origin}/v1.0/me/transitiveMemberOf?$select=id&$top=999&$skiptoken={end}"
                ));
            }
            axum::Json(body).into_response()
        };
        match f.mode {
            Mode::Pages(n) => page(n, skip),
            Mode::ThrottleOnce(secs) if hit == 0 => (
                StatusCode::TOO_MANY_REQUESTS,
                [(http::header::RETRY_AFTER, secs.to_string())],
            )
                .into_response(),
            Mode::ThrottleOnce(_) => page(250, skip),
            Mode::ThrottleAlways => (
                StatusCode::TOO_MANY_REQUESTS,
                [(http::header::RETRY_AFTER, "1")],
            )
                .into_response(),
            Mode::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            Mode::Fails => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            Mode::ForeignNext => axum::Json(json!({
                "value": [{"id": "group-0000"}],
                "@odata.nextLink": "http://attacker.invalid/v1.0/me/transitiveMemberOf?$skiptoken=1"
            }))
            .into_response(),
            Mode::Endless => page(usize::MAX, skip),
            Mode::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
        }
    }

    /// A fixture Graph on loopback: its base URL and its state.
    async fn graph(mode: Mode) -> (Url, Arc<Fixture>) {
        let fixture = Arc::new(Fixture {
            mode,
            hits: AtomicUsize::new(0),
            origin: std::sync::OnceLock::new(),
        });
        let app = axum::Router::new()
            .route("/v1.0/me/transitiveMemberOf", axum::routing::get(serve))
            .with_state(fixture.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        fixture.origin.set(origin.clone()).expect("once");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (Url::parse(&origin).expect("url"), fixture)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    async fn read(mode: Mode, budget: Duration) -> (Result<Vec<String>, GraphError>, usize) {
        let (base, fixture) = graph(mode).await;
        let got = transitive_groups(&client(), &base, TOKEN, budget).await;
        (got, fixture.hits.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn every_page_is_read() {
        let (got, hits) = read(Mode::Pages(250), GRAPH_BUDGET).await;
        let got = got.expect("groups");
        assert_eq!(hits, 3);
        assert_eq!(got.len(), 250);
        assert_eq!(got[0], "group-0000");
        assert_eq!(got[249], "group-0249");
        let (got, hits) = read(Mode::Pages(0), GRAPH_BUDGET).await;
        assert_eq!((got, hits), (Ok(vec![]), 1));
    }

    #[tokio::test]
    async fn one_429_is_retried_after_its_retry_after() {
        let started = std::time::Instant::now();
        let (got, hits) = read(Mode::ThrottleOnce(1), GRAPH_BUDGET).await;
        assert_eq!(got.expect("groups").len(), 250);
        assert_eq!(hits, 4, "the throttled request, then three pages");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited as asked"
        );
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_budget_is_not_waited_for() {
        let started = std::time::Instant::now();
        let (got, hits) = read(Mode::ThrottleOnce(3), Duration::from_secs(2)).await;
        assert_eq!((got, hits), (Err(GraphError::Throttled), 1));
        assert!(started.elapsed() < Duration::from_secs(2));
        let (got, hits) = read(
            Mode::ThrottleOnce(MAX_RETRY_AFTER.as_secs() + 1),
            GRAPH_BUDGET * 10,
        )
        .await;
        assert_eq!((got, hits), (Err(GraphError::Throttled), 1));
    }

    #[tokio::test]
    async fn a_second_429_ends_the_read() {
        let (got, hits) = read(Mode::ThrottleAlways, GRAPH_BUDGET).await;
        assert_eq!((got, hits), (Err(GraphError::Throttled), 2));
    }

    #[tokio::test]
    async fn server_errors_and_refusals_leave_the_groups_unknown() {
        assert_eq!(
            read(Mode::Fails, GRAPH_BUDGET).await,
            (Err(GraphError::ServerError(500)), 1)
        );
        assert_eq!(
            read(Mode::Unavailable, GRAPH_BUDGET).await,
            (Err(GraphError::ServerError(503)), 1)
        );
        assert_eq!(
            read(Mode::Unauthorized, GRAPH_BUDGET).await,
            (Err(GraphError::Forbidden(401)), 1)
        );
        let nowhere = Url::parse("http://127.0.0.1:9").expect("url");
        assert_eq!(
            transitive_groups(&client(), &nowhere, TOKEN, GRAPH_BUDGET).await,
            Err(GraphError::Unreachable)
        );
    }

    #[tokio::test]
    async fn a_next_link_to_another_origin_is_not_followed() {
        // The access token would go with it: refused before any request leaves.
        let (got, hits) = read(Mode::ForeignNext, GRAPH_BUDGET).await;
        assert_eq!((got, hits), (Err(GraphError::ForeignLink), 1));
    }

    #[tokio::test]
    async fn endless_paging_stops_at_the_cap() {
        let (got, hits) = read(Mode::Endless, GRAPH_BUDGET).await;
        assert_eq!((got, hits), (Err(GraphError::TooManyGroups), MAX_PAGES));
    }

    #[tokio::test]
    async fn overage_claims_are_completed_and_failures_named() {
        let (base, _) = graph(Mode::Pages(250)).await;
        let overage = json!({"sub": "x", "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "http://attacker.invalid/"}}});
        let Value::Object(mut claims) = overage.clone() else {
            panic!("object")
        };
        let unknown = complete_groups(
            &client(),
            Some(&base),
            "groups",
            &mut claims,
            Some(TOKEN),
            "entra",
        )
        .await;
        assert_eq!(unknown, None);
        assert_eq!(claims["groups"].as_array().map(Vec::len), Some(250));

        // No overage: nothing asked, nothing changed.
        let Value::Object(mut plain) = json!({"groups": ["a"]}) else {
            panic!("object")
        };
        let before = plain.clone();
        assert_eq!(
            complete_groups(&client(), None, "groups", &mut plain, None, "entra").await,
            None
        );
        assert_eq!(plain, before);

        let Value::Object(mut claims) = overage.clone() else {
            panic!("object")
        };
        assert_eq!(
            complete_groups(&client(), None, "groups", &mut claims, Some(TOKEN), "oidc").await,
            Some("groups_claim_distributed")
        );
        assert_eq!(
            complete_groups(&client(), Some(&base), "groups", &mut claims, None, "entra").await,
            Some("graph_no_access_token")
        );
        let (down, _) = graph(Mode::Fails).await;
        assert_eq!(
            complete_groups(
                &client(),
                Some(&down),
                "groups",
                &mut claims,
                Some(TOKEN),
                "entra"
            )
            .await,
            Some("graph_server_error")
        );
        assert!(!claims.contains_key("groups"));
    }
}
