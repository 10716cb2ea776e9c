//! `ENTRA_GROUP_OVERAGE=application`: an overage user's groups read with the app's own Graph
//! token (client credentials at the provider's token endpoint, `scope=<graph>/.default`), asked
//! once and cached, from `/v1.0/users/<oid>/transitiveMemberOf`. A fixture token endpoint and
//! a fixture Graph in this test; the delegated mode runs end to end in
//! tests/tests/entra_overage.rs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_sidecar::config::Config;
use gatehouse_sidecar::graph::{Overage, complete_groups};
use gatehouse_sidecar::providers::jwks::JwksCache;
use gatehouse_sidecar::providers::{Discovered, Endpoints, Provider, TokenAuth};
use serde_json::{Value, json};

const OID: &str = "7f1c9a52-0d3b-4e8a-9c61-2b5e8d4f7a01";
const APP_TOKEN: &str = "app-token-for-graph";

#[derive(Default)]
struct Fixture {
    token_requests: AtomicUsize,
    graph_requests: AtomicUsize,
    graph_origin: std::sync::OnceLock<String>,
}

async fn token(
    State(f): State<Arc<Fixture>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    f.token_requests.fetch_add(1, Ordering::SeqCst);
    let scope = format!("{}/.default", f.graph_origin.get().expect("origin"));
    let authenticated = headers.get(header::AUTHORIZATION).is_some();
    if !authenticated
        || form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("scope") != Some(&scope)
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    }
    axum::Json(json!({"access_token": APP_TOKEN, "token_type": "Bearer", "expires_in": 3599}))
        .into_response()
}

async fn groups(State(f): State<Arc<Fixture>>, headers: HeaderMap) -> Response {
    f.graph_requests.fetch_add(1, Ordering::SeqCst);
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {APP_TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(json!({"value": [{"id": "g-1"}, {"id": "g-2"}]})).into_response()
}

async fn start() -> (Provider, Arc<Fixture>) {
    let fixture = Arc::new(Fixture::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    fixture.graph_origin.set(origin.clone()).expect("once");
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .route(
            &format!("/v1.0/users/{OID}/transitiveMemberOf"),
            axum::routing::get(groups),
        )
        .with_state(fixture.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let vars: HashMap<&str, String> = HashMap::from([
        (
            "GATEHOUSE_PUBLIC_URL",
            "https://portal.example.com".to_owned(),
        ),
        (
            "GATEHOUSE_COOKIE_SECRET",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
        ),
        ("GATEHOUSE_UPSTREAM", "http://127.0.0.1:9".to_owned()),
        ("ENTRA_CLIENT_ID", "entra-client".to_owned()),
        ("ENTRA_CLIENT_SECRET", "entra-secret".to_owned()),
        (
            "ENTRA_TENANT_ID",
            "0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90".to_owned(),
        ),
        ("ENTRA_ORG_ID", "acme".to_owned()),
        ("ENTRA_GRAPH_URL", origin.clone()),
        ("ENTRA_GROUP_OVERAGE", "application".to_owned()),
    ]);
    let lookup = move |k: &str| vars.get(k).cloned();
    let config = Config::from_source(&lookup).expect("valid config");
    let provider = Provider::new(config.providers[0].clone());
    assert!(provider.set_discovered(Discovered {
        endpoints: Endpoints {
            authorization: url::Url::parse("https://idp.test/authorize").expect("url"),
            token: url::Url::parse(&format!("{origin}/token")).expect("url"),
            end_session: None,
            userinfo: None,
            iss_parameter_supported: false,
            offline_access: false,
            token_auth: TokenAuth::Basic,
        },
        jwks: JwksCache::new(
            url::Url::parse(&format!("{origin}/jwks")).expect("url"),
            reqwest::Client::new(),
            Duration::from_secs(30),
        ),
    }));
    (provider, fixture)
}

fn overage_claims(oid: Option<&str>) -> serde_json::Map<String, Value> {
    let mut claims = json!({"sub": "s", "_claim_names": {"groups": "src1"}});
    if let Some(oid) = oid {
        claims["oid"] = json!(oid);
    }
    match claims {
        Value::Object(m) => m,
        _ => panic!("object"),
    }
}

#[tokio::test]
async fn the_apps_own_token_reads_the_users_groups_by_object_id_and_is_reused() {
    let (provider, fixture) = start().await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let mut claims = overage_claims(Some(OID));
        // The sign-in's access token is not used in this mode.
        let unknown = complete_groups(&http, &provider, &mut claims, Some("user-token")).await;
        assert_eq!(unknown, Overage::Read);
        assert_eq!(claims["groups"], json!(["g-1", "g-2"]));
    }
    assert_eq!(fixture.token_requests.load(Ordering::SeqCst), 1, "cached");
    assert_eq!(fixture.graph_requests.load(Ordering::SeqCst), 2);

    let mut no_oid = overage_claims(None);
    assert_eq!(
        complete_groups(&http, &provider, &mut no_oid, None).await,
        Overage::Unknown("graph_no_object_id")
    );
    let mut not_a_guid = overage_claims(Some("../me"));
    assert_eq!(
        complete_groups(&http, &provider, &mut not_a_guid, None).await,
        Overage::Unknown("graph_no_object_id")
    );
    assert_eq!(fixture.graph_requests.load(Ordering::SeqCst), 2);
}
