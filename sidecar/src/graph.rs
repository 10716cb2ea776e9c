//! Microsoft Graph: the groups of an Entra ID user in more groups than the ID token carries.
//!
//! When the verified ID token shows a group overage ([`gatehouse_auth::overage::groups_overage`]),
//! the sign-in (and a re-validation) reads the user's groups from
//! `<ENTRA_GRAPH_URL>/v1.0/me/transitiveMemberOf?$select=id` with the access token of that same
//! sign-in (delegated `User.Read`, or `GroupMember.Read.All`) or, with
//! `ENTRA_GROUP_OVERAGE=application`, from `/v1.0/users/<oid>/transitiveMemberOf` with the app's
//! own client-credentials token (application `GroupMember.Read.All`), page by page, and puts them
//! in the groups claim, where role maps, access rules and `status.groups` read them. Never from
//! the token's `_claim_sources`.
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

use crate::config::GraphConfig;
use crate::providers::Provider;

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
    /// `application`: the token endpoint gave no app token for Graph.
    #[error("no application token for Microsoft Graph")]
    AppToken,
    /// `application`: the ID token has no `oid` (a GUID) to ask about.
    #[error("the ID token has no object id")]
    NoObjectId,
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
    /// Graph gave object ids, and the access rules name groups by something else (names, as an
    /// app registration may emit them for users under the limit): matched against ids they would
    /// never match, so a `Deny` on a group would miss the user. The groups are unknown instead.
    #[error("the access rules name groups by name, and Microsoft Graph gives object ids")]
    NamesNotIds,
}

impl GraphError {
    /// Stable label: the `reason` of the `groups_unknown` audit line.
    pub fn reason(self) -> &'static str {
        match self {
            GraphError::NotEntra => "groups_claim_distributed",
            GraphError::NoAccessToken => "graph_no_access_token",
            GraphError::AppToken => "graph_app_token_failed",
            GraphError::NoObjectId => "graph_no_object_id",
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
            GraphError::NamesNotIds => "graph_ids_not_rule_names",
        }
    }
}

/// What a sign-in or re-validation learnt of a user's groups beyond the ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overage {
    /// No overage: the token carries the groups (or none); nothing was asked.
    None,
    /// An overage whose groups were read from Graph and put in the groups claim.
    Read,
    /// An overage whose groups could not be read ([`GraphError::reason`]): they are unknown.
    Unknown(&'static str),
}

impl Overage {
    /// `self`, held to the access rules: groups read from Graph are object ids, so when `access`
    /// names a group by anything but an object id (a GUID) they cannot be matched against it
    /// and are unknown ([`GraphError::NamesNotIds`]): a rule needing such a group does not admit
    /// the user and a `Deny` naming one refuses, instead of a `Deny` silently missing.
    pub fn held_to(self, access: Option<&gatehouse_auth::access::Policy>) -> Overage {
        match (self, access) {
            (Overage::Read, Some(policy))
                if policy
                    .referenced_groups()
                    .iter()
                    .any(|g| !overage::is_object_id(g)) =>
            {
                Overage::Unknown(GraphError::NamesNotIds.reason())
            }
            (overage, _) => overage,
        }
    }

    /// Why the groups are unknown, when they are.
    pub fn unknown(self) -> Option<&'static str> {
        match self {
            Overage::Unknown(reason) => Some(reason),
            _ => None,
        }
    }

    /// The `gatehouse_group_overages_total` outcome, for an overage.
    pub fn outcome(self) -> Option<&'static str> {
        match self {
            Overage::None => None,
            Overage::Read => Some("read"),
            Overage::Unknown(reason) => Some(reason),
        }
    }
}

/// Completes `claims` (a verified ID token of `provider`) with the user's groups when the token
/// shows a group overage for the provider's groups claim: read from Graph (Entra ID only) with
/// `access_token` (the sign-in's), or the app's own token under `ENTRA_GROUP_OVERAGE=application`.
/// See [`complete_groups_with`].
pub async fn complete_groups(
    http: &reqwest::Client,
    provider: &Provider,
    claims: &mut Map<String, Value>,
    access_token: Option<&str>,
) -> Overage {
    let config = &provider.config;
    if !groups_overage(claims, &config.groups_claim) {
        return Overage::None;
    }
    let started = Instant::now();
    let token = match &config.graph {
        Some(GraphConfig {
            url,
            application: true,
        }) => {
            let asked = tokio::time::timeout(GRAPH_BUDGET, provider.graph_app_token(http, url));
            match asked.await {
                Ok(Ok(token)) => GraphToken::Application(Ok(token)),
                Ok(Err(e)) => {
                    tracing::warn!(provider = %config.id, error = %e, "group overage: no application token for Microsoft Graph");
                    GraphToken::Application(Err(GraphError::AppToken))
                }
                Err(_) => GraphToken::Application(Err(GraphError::TimedOut)),
            }
        }
        _ => GraphToken::Delegated(access_token),
    };
    let graph = config.graph.as_ref().map(|g| &g.url);
    // The app token's request and the pages share one budget.
    let budget = GRAPH_BUDGET.saturating_sub(started.elapsed());
    complete_groups_with(
        http,
        graph,
        token,
        budget,
        &config.groups_claim,
        claims,
        &config.id,
    )
    .await
}

/// Whose token asks Graph.
#[derive(Debug)]
pub enum GraphToken<'a> {
    /// The sign-in's access token (if it sent one): `/me/transitiveMemberOf`.
    Delegated(Option<&'a str>),
    /// The app's own token, or why there is none: `/users/<oid>/transitiveMemberOf`.
    Application(Result<String, GraphError>),
}

/// Completes `claims` (a verified ID token's) with the user's groups when the token shows a
/// group overage for `groups_claim`: read from Graph at `graph` (Entra ID; `None` for other
/// providers) with `token` within `budget`, and put in `groups_claim` as an array of object ids;
/// when they cannot be read, the reason (logged) is returned and they are unknown.
pub async fn complete_groups_with(
    http: &reqwest::Client,
    graph: Option<&Url>,
    token: GraphToken<'_>,
    budget: Duration,
    groups_claim: &str,
    claims: &mut Map<String, Value>,
    provider: &str,
) -> Overage {
    if !groups_overage(claims, groups_claim) {
        return Overage::None;
    }
    let read = match (graph, token) {
        (None, _) => Err(GraphError::NotEntra),
        (Some(_), GraphToken::Delegated(None)) => Err(GraphError::NoAccessToken),
        (Some(base), GraphToken::Delegated(Some(token))) => {
            let first = overage::first_page(base);
            transitive_groups_from(http, base, first, token, budget).await
        }
        (Some(_), GraphToken::Application(Err(e))) => Err(e),
        (Some(base), GraphToken::Application(Ok(token))) => {
            let oid = claims
                .get("oid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match overage::first_page_of_user(base, oid) {
                None => Err(GraphError::NoObjectId),
                Some(first) => transitive_groups_from(http, base, first, &token, budget).await,
            }
        }
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
            Overage::Read
        }
        Err(e) => {
            tracing::warn!(provider, reason = e.reason(), error = %e, "group overage: the user's groups could not be read; rules on groups fail closed for this session");
            Overage::Unknown(e.reason())
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
    transitive_groups_from(http, base, overage::first_page(base), access_token, budget).await
}

/// [`transitive_groups`] from page `first` (the signed-in user's, or one user's by object id).
pub async fn transitive_groups_from(
    http: &reqwest::Client,
    base: &Url,
    first: Url,
    access_token: &str,
    budget: Duration,
) -> Result<Vec<String>, GraphError> {
    let deadline = Instant::now() + budget;
    let mut url = first;
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
            .route(
                "/v1.0/users/7f1c9a52-0d3b-4e8a-9c61-2b5e8d4f7a01/transitiveMemberOf",
                axum::routing::get(serve),
            )
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
        use GraphToken::{Application, Delegated};
        let (base, _) = graph(Mode::Pages(250)).await;
        let overage = json!({"sub": "x", "_claim_names": {"groups": "src1"},
            "oid": "7f1c9a52-0d3b-4e8a-9c61-2b5e8d4f7a01",
            "_claim_sources": {"src1": {"endpoint": "http://attacker.invalid/"}}});
        let claims = || match overage.clone() {
            Value::Object(m) => m,
            _ => panic!("object"),
        };
        let complete = |graph: Option<Url>, token: GraphToken<'static>| {
            let mut claims = claims();
            async move {
                let unknown = complete_groups_with(
                    &client(),
                    graph.as_ref(),
                    token,
                    GRAPH_BUDGET,
                    "groups",
                    &mut claims,
                    "entra",
                )
                .await;
                (unknown, claims)
            }
        };
        let (unknown, got) = complete(Some(base.clone()), Delegated(Some(TOKEN))).await;
        assert_eq!(unknown, Overage::Read);
        assert_eq!(got["groups"].as_array().map(Vec::len), Some(250));

        // The application's token asks about the user by object id.
        let (unknown, got) = complete(Some(base.clone()), Application(Ok(TOKEN.to_owned()))).await;
        assert_eq!(unknown, Overage::Read);
        assert_eq!(got["groups"].as_array().map(Vec::len), Some(250));

        // No overage: nothing asked, nothing changed.
        let Value::Object(mut plain) = json!({"groups": ["a"]}) else {
            panic!("object")
        };
        let before = plain.clone();
        assert_eq!(
            complete_groups_with(
                &client(),
                None,
                Delegated(None),
                GRAPH_BUDGET,
                "groups",
                &mut plain,
                "entra"
            )
            .await,
            Overage::None
        );
        assert_eq!(plain, before);

        let (down, _) = graph(Mode::Fails).await;
        for (graph, token, reason) in [
            (None, Delegated(Some(TOKEN)), "groups_claim_distributed"),
            (Some(base.clone()), Delegated(None), "graph_no_access_token"),
            (
                Some(base.clone()),
                Application(Err(GraphError::AppToken)),
                "graph_app_token_failed",
            ),
            (
                Some(down.clone()),
                Delegated(Some(TOKEN)),
                "graph_server_error",
            ),
            (
                Some(down),
                Application(Ok(TOKEN.to_owned())),
                "graph_server_error",
            ),
        ] {
            let (unknown, got) = complete(graph, token).await;
            assert_eq!(unknown, Overage::Unknown(reason));
            assert!(!got.contains_key("groups"), "{reason}");
        }
        let mut no_oid = claims();
        no_oid.remove("oid");
        assert_eq!(
            complete_groups_with(
                &client(),
                Some(&base),
                Application(Ok(TOKEN.to_owned())),
                GRAPH_BUDGET,
                "groups",
                &mut no_oid,
                "entra"
            )
            .await,
            Overage::Unknown("graph_no_object_id")
        );
    }

    #[test]
    fn every_reason_is_a_counted_outcome() {
        let examples = [
            GraphError::NotEntra,
            GraphError::NoAccessToken,
            GraphError::AppToken,
            GraphError::NoObjectId,
            GraphError::Unreachable,
            GraphError::TimedOut,
            GraphError::Throttled,
            GraphError::Forbidden(403),
            GraphError::ServerError(500),
            GraphError::Status(404),
            GraphError::TooLarge,
            GraphError::Malformed,
            GraphError::ForeignLink,
            GraphError::TooManyGroups,
            GraphError::NamesNotIds,
        ];
        let outcomes = crate::metrics::GROUP_OVERAGE_OUTCOMES;
        assert_eq!(
            outcomes.len(),
            examples.len() + 1,
            "read and one per reason"
        );
        for e in examples {
            assert!(outcomes.contains(&e.reason()), "{}", e.reason());
            assert_eq!(Overage::Unknown(e.reason()).outcome(), Some(e.reason()));
        }
        assert_eq!(Overage::Read.outcome(), Some("read"));
        assert_eq!(Overage::None.outcome(), None);
    }

    fn policy_naming(groups: &[&str]) -> gatehouse_auth::access::Policy {
        let spec: gatehouse_crds::access::AccessSpec = serde_json::from_value(serde_json::json!({
            "defaultAction": "Deny",
            "rules": [
                {"name": "deny-contractors", "action": "Deny", "from": [{"groups": groups}]},
                {"name": "everyone", "action": "Allow", "from": [{"authenticated": true}]},
            ]
        }))
        .expect("access spec");
        gatehouse_auth::access::Policy::compile(&spec).expect("valid policy")
    }

    #[test]
    fn groups_read_as_ids_are_unknown_when_the_rules_name_groups_otherwise() {
        // Rules naming groups by object id: the ids Graph gave decide.
        let by_id = policy_naming(&["3f2504e0-4f89-11d3-9a0c-0305e82c3301"]);
        assert_eq!(Overage::Read.held_to(Some(&by_id)), Overage::Read);
        // A Deny naming a group by name would never match an id: unknown instead (it fails
        // closed), with its own reason.
        let by_name = policy_naming(&["contractors"]);
        assert_eq!(
            Overage::Read.held_to(Some(&by_name)),
            Overage::Unknown("graph_ids_not_rule_names")
        );
        let mixed = policy_naming(&["3f2504e0-4f89-11d3-9a0c-0305e82c3301", "Contractors EU"]);
        assert_eq!(
            Overage::Read.held_to(Some(&mixed)).unknown(),
            Some("graph_ids_not_rule_names")
        );
        // Nothing read, nothing changed; no rules, nothing to miss.
        assert_eq!(Overage::None.held_to(Some(&by_name)), Overage::None);
        assert_eq!(
            Overage::Unknown("graph_timeout").held_to(Some(&by_id)),
            Overage::Unknown("graph_timeout")
        );
        assert_eq!(Overage::Read.held_to(None), Overage::Read);
    }
}
