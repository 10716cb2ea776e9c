//! Entra ID group overage end to end: the fixture IdP's Entra-shaped issuer sends an ID token
//! that leaves `groups` out and names it in `_claim_names` (a user in too many groups), the
//! sidecar reads the user's 250 groups from a fixture Microsoft Graph in this test (pages of 100,
//! `@odata.nextLink`) with the sign-in's access token, and an access rule on one of them admits
//! the user. With Graph failing, the groups are unknown: the Allow-on-group rule admits no one,
//! a Deny-on-group rule refuses, and rules on other facts still decide. Graph's paging and
//! retries against every answer are unit-tested in sidecar/src/graph.rs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use anyhow::Result;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use gatehouse_tests::ProviderKind;
use gatehouse_tests::kube_stack::{ECHO_PATH, KubeOptions, KubeStack, seen_by_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Groups the overage user is in at the fixture Graph.
const GROUPS: usize = 250;
/// The one the Allow rule names: on the last page. Graph gives object ids, and rules on an
/// overage user's groups name them (a rule naming a group otherwise makes them unknown).
const NAMED_GROUP: &str = "00000249-0000-4000-8000-00000000cafe";
/// A group the user is not in, named by a Deny rule.
const CONTRACTORS: &str = "c0c0c0c0-0000-4000-8000-00000000cafe";

/// The object id of the fixture Graph's `i`th group.
fn group_id(i: usize) -> String {
    format!("{i:08}-0000-4000-8000-00000000cafe")
}

/// How the fixture Graph answers.
const OK: u8 = 0;
const FAILING: u8 = 1;
const THROTTLE_ONCE: u8 = 2;
const FOREIGN_NEXT: u8 = 3;

struct Graph {
    mode: AtomicU8,
    hits: AtomicUsize,
    throttled: AtomicBool,
    origin: String,
    /// Where a foreign `@odata.nextLink` points (an "attacker" listener of this test).
    foreign: String,
}

async fn transitive_member_of(
    State(graph): State<Arc<Graph>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    graph.hits.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| !token.is_empty());
    if !bearer || q.get("$select").map(String::as_str) != Some("id") {
        return AxumStatus::UNAUTHORIZED.into_response();
    }
    let mode = graph.mode.load(Ordering::SeqCst);
    if mode == FAILING {
        return AxumStatus::INTERNAL_SERVER_ERROR.into_response();
    }
    if mode == THROTTLE_ONCE && !graph.throttled.swap(true, Ordering::SeqCst) {
        return (AxumStatus::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response();
    }
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let end = (skip + 100).min(GROUPS);
    let value: Vec<Value> = (skip..end)
        .map(|i| json!({"@odata.type": "#microsoft.graph.group", "id": group_id(i)}))
        .collect();
    let mut body = json!({ "value": value });
    if end < GROUPS {
        let origin = if mode == FOREIGN_NEXT {
            &graph.foreign
        } else {
            &graph.origin
        };
        body["@odata.nextLink"] = json!(format!(
            "{origin}/v1.0/me/transitiveMemberOf?$select=id&$skiptoken={end}"
        ));
    }
    axum::Json(body).into_response()
}

/// Starts the fixture Graph and the foreign listener; the Graph and the foreign listener's hit
/// counter.
async fn start_graph() -> Result<(Arc<Graph>, Arc<AtomicUsize>)> {
    let foreign_hits = Arc::new(AtomicUsize::new(0));
    let foreign_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let foreign = format!("http://{}", foreign_listener.local_addr()?);
    let counter = foreign_hits.clone();
    let foreign_app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"value": [{"id": NAMED_GROUP}]}))
        }
    });
    tokio::spawn(async move { axum::serve(foreign_listener, foreign_app).await });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let graph = Arc::new(Graph {
        mode: AtomicU8::new(OK),
        hits: AtomicUsize::new(0),
        throttled: AtomicBool::new(false),
        origin: format!("http://{}", listener.local_addr()?),
        foreign,
    });
    let app = axum::Router::new()
        .route(
            "/v1.0/me/transitiveMemberOf",
            axum::routing::get(transitive_member_of),
        )
        .with_state(graph.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((graph, foreign_hits))
}

fn policy() -> String {
    json!({"rules": [
        {"name": "eng-by-group", "action": "Allow",
         "from": [{"groups": [NAMED_GROUP]}], "to": [{"paths": ["/eng"]}]},
        {"name": "signed-in-docs", "action": "Allow",
         "from": [{"authenticated": true}], "to": [{"paths": ["/docs", ECHO_PATH]}]},
        {"name": "no-contractors", "action": "Deny",
         "from": [{"groups": [CONTRACTORS]}], "to": [{"paths": ["/docs/internal"]}]}
    ]})
    .to_string()
}

async fn stack() -> Result<(KubeStack, Arc<Graph>, Arc<AtomicUsize>)> {
    stack_with(None).await
}

async fn stack_with(
    revalidate: Option<(&'static str, &'static str)>,
) -> Result<(KubeStack, Arc<Graph>, Arc<AtomicUsize>)> {
    let (graph, foreign_hits) = start_graph().await?;
    let mut stack = KubeStack::start(KubeOptions {
        access: Some(policy()),
        extra_env: vec![("ENTRA_GRAPH_URL", graph.origin.clone())],
        revalidate,
        ..KubeOptions::default()
    })
    .await?;
    stack.sync().await?;
    // ada at the Entra-shaped issuer: in too many groups for the token.
    stack
        .idp
        .set_claims(
            "entra",
            "ada",
            &json!({
                "_claim_names": {"groups": "src1"},
                "_claim_sources": {"src1": {
                    "endpoint": format!("{}/retired-aad-graph/getMemberObjects", graph.foreign)
                }}
            }),
        )
        .await?;
    Ok((stack, graph, foreign_hits))
}

#[tokio::test]
async fn an_entra_user_in_250_groups_gets_them_from_graph() -> Result<()> {
    let (stack, graph, foreign_hits) = stack().await?;
    let ada = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert_eq!(graph.hits.load(Ordering::SeqCst), 3, "three pages of 100");
    assert!(
        stack
            .metrics()
            .await?
            .contains("gatehouse_group_overages_total{outcome=\"read\"} 1\n")
    );

    assert_eq!(stack.get(&ada, "/eng").await?.status, StatusCode::OK);
    assert_eq!(stack.get(&ada, "/docs").await?.status, StatusCode::OK);
    assert_eq!(
        stack.get(&ada, "/docs/internal").await?.status,
        StatusCode::OK,
        "not a contractor"
    );
    assert_eq!(
        foreign_hits.load(Ordering::SeqCst),
        0,
        "the token's _claim_sources endpoint is never asked"
    );

    // The SsoUser records the groups read from Graph.
    let users = stack.all_users().await?;
    let user = users
        .iter()
        .find(|u| {
            u.status.as_ref().and_then(|s| s.issuer.as_deref())
                == Some(stack.idp.entra_issuer.as_str())
        })
        .expect("ada's SsoUser");
    let groups = user.status.clone().expect("status").groups;
    assert_eq!(groups.len(), GROUPS);
    assert_eq!(groups.last().map(String::as_str), Some(NAMED_GROUP));

    // One 429 with Retry-After is waited out.
    graph.mode.store(THROTTLE_ONCE, Ordering::SeqCst);
    let again = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert_eq!(stack.get(&again, "/eng").await?.status, StatusCode::OK);

    // A sign-in whose groups Graph does not give leaves the SsoUser's last known groups.
    graph.mode.store(FAILING, Ordering::SeqCst);
    let unknown = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert_eq!(
        stack.get(&unknown, "/eng").await?.status,
        StatusCode::FORBIDDEN
    );
    let users = stack.all_users().await?;
    let status = users
        .iter()
        .find_map(|u| {
            u.status
                .clone()
                .filter(|s| s.issuer.as_deref() == Some(stack.idp.entra_issuer.as_str()))
        })
        .expect("ada's SsoUser");
    assert_eq!(status.groups.len(), GROUPS, "the last known groups");
    assert_eq!(status.login_count, Some(3));
    Ok(())
}

#[tokio::test]
async fn with_graph_failing_the_groups_are_unknown_and_group_rules_fail_closed() -> Result<()> {
    let (stack, graph, _) = stack().await?;
    graph.mode.store(FAILING, Ordering::SeqCst);
    let ada = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert_eq!(graph.hits.load(Ordering::SeqCst), 1);
    assert!(
        stack
            .metrics()
            .await?
            .contains("gatehouse_group_overages_total{outcome=\"graph_server_error\"} 1\n")
    );

    let eng = stack.get(&ada, "/eng").await?;
    assert_eq!(
        eng.status,
        StatusCode::FORBIDDEN,
        "the Allow rule on a group admits no one whose groups are unknown"
    );
    assert_eq!(
        stack.get(&ada, "/docs").await?.status,
        StatusCode::OK,
        "rules on other facts still decide"
    );
    assert_eq!(
        stack.get(&ada, "/docs/internal").await?.status,
        StatusCode::FORBIDDEN,
        "a Deny on a group fails closed"
    );
    let page = stack
        .get_with(
            "/eng",
            &[("accept", "text/html"), ("cookie", &ada.cookie_header())],
        )
        .await?;
    assert!(
        page.body.contains("group memberships could not be read"),
        "{}",
        page.body
    );

    // The app is told too: the identity JWT says the groups are unknown.
    assert_eq!(
        identity_claims(&stack, &ada).await?["groups_unknown"],
        json!(true)
    );

    // Graph back: the next sign-in has the groups.
    graph.mode.store(OK, Ordering::SeqCst);
    let later = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert_eq!(stack.get(&later, "/eng").await?.status, StatusCode::OK);
    let claims = identity_claims(&stack, &later).await?;
    assert_eq!(
        claims["groups"],
        json!([NAMED_GROUP]),
        "the groups the rules name"
    );
    assert_eq!(claims.get("groups_unknown"), None);
    Ok(())
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_not_followed_with_the_access_token() -> Result<()> {
    let (stack, graph, foreign_hits) = stack().await?;
    graph.mode.store(FOREIGN_NEXT, Ordering::SeqCst);
    let ada = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert_eq!(
        foreign_hits.load(Ordering::SeqCst),
        0,
        "the access token never went to the foreign origin"
    );
    assert_eq!(graph.hits.load(Ordering::SeqCst), 1);
    // The first page's groups are not the list: unknown, fail closed.
    assert_eq!(stack.get(&ada, "/eng").await?.status, StatusCode::FORBIDDEN);
    assert_eq!(
        stack.get(&ada, "/docs/internal").await?.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(stack.get(&ada, "/docs").await?.status, StatusCode::OK);
    Ok(())
}

/// Requests `/docs` (open to every signed-in user) with `session` until `/eng` (open through the
/// group only) answers `want`, applying the sidecar's renewed cookies: the re-validations in
/// between read the groups from Graph again.
async fn until_eng_answers(
    stack: &KubeStack,
    session: &mut gatehouse_tests::flow::Session,
    want: StatusCode,
) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let docs = stack.get(session, "/docs").await?;
        session.apply_set_cookies(&docs.headers);
        let eng = stack.get(session, "/eng").await?;
        session.apply_set_cookies(&eng.headers);
        if eng.status == want {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "/eng still answers {} after re-validations, not {want}",
            eng.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn re_validation_reads_the_groups_again() -> Result<()> {
    let (stack, graph, _) = stack_with(Some(("1s", "1h"))).await?;
    // Signed in while Graph fails: groups unknown.
    graph.mode.store(FAILING, Ordering::SeqCst);
    let mut ada = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert_eq!(stack.get(&ada, "/eng").await?.status, StatusCode::FORBIDDEN);

    // Graph back: the next re-validation (refresh token) learns the groups.
    graph.mode.store(OK, Ordering::SeqCst);
    let hits = graph.hits.load(Ordering::SeqCst);
    until_eng_answers(&stack, &mut ada, StatusCode::OK).await?;
    assert!(
        graph.hits.load(Ordering::SeqCst) > hits,
        "Graph was asked again"
    );

    // Graph down again: a re-validation leaves the groups unknown, and the rule closes.
    graph.mode.store(FAILING, Ordering::SeqCst);
    until_eng_answers(&stack, &mut ada, StatusCode::FORBIDDEN).await?;
    assert_eq!(
        stack.get(&ada, "/docs/internal").await?.status,
        StatusCode::FORBIDDEN,
        "a Deny on a group fails closed after the re-validation too"
    );
    Ok(())
}

/// The claims of the identity JWT the app receives for `session`.
async fn identity_claims(
    stack: &KubeStack,
    session: &gatehouse_tests::flow::Session,
) -> Result<serde_json::Map<String, Value>> {
    use base64::Engine;
    let answer = stack.get(session, ECHO_PATH).await?;
    let seen = seen_by_app(&answer).ok_or_else(|| anyhow::anyhow!("{}", answer.status))?;
    let jwt = seen
        .header("x-gatehouse-identity")
        .ok_or_else(|| anyhow::anyhow!("no identity JWT"))?;
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}
