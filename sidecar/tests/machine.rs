//! Machine clients (`GATEHOUSE_MACHINE_AUTH`) through the sidecar in process: bearer tokens of a
//! token issuer whose discovery document and JWKS a small server on loopback serves, each attack
//! performed after the honest token is shown to pass. The verifier's own tables (Kubernetes
//! ServiceAccount tokens included) are in `gatehouse-auth`'s `machine` tests.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use common::harness::*;
use gatehouse_sidecar::Sidecar;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const AUDIENCE: &str = "api://portal";

/// A signing key and its public JWK.
struct Key {
    encoding: EncodingKey,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key pair");
    let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("EC key");
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).expect("public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    Key {
        encoding,
        jwk: serde_json::to_value(&jwk).expect("JWK JSON"),
    }
}

/// The token issuer: discovery and a JWKS whose keys a test can change.
async fn issuer(keys: Arc<Mutex<Vec<Value>>>, fetches: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let discovery = json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") });
    let router = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let discovery = discovery.clone();
                async move { axum::Json(discovery) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let fetches = fetches.clone();
                let keys = keys.lock().map(|k| k.clone()).unwrap_or_default();
                fetches.fetch_add(1, Ordering::SeqCst);
                async move { axum::Json(json!({ "keys": keys })) }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    base
}

fn token(key: &Key, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("signed")
}

fn claims(issuer: &str, extra: Value) -> Value {
    let now = gatehouse_auth::token::now_unix();
    let mut c = json!({
        "iss": issuer, "sub": "0oa-deploy-bot", "aud": AUDIENCE,
        "iat": now, "exp": now + 300, "scp": "portal.read portal.admin",
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

struct Setup {
    sc: Sidecar,
    issuer: String,
    key: Key,
    jwks: Arc<Mutex<Vec<Value>>>,
    /// How many times the issuer's JWKS was fetched.
    fetches: Arc<AtomicUsize>,
}

async fn setup(extra: &[(&str, &str)], forward: bool) -> Setup {
    let key = key("k1");
    let jwks = Arc::new(Mutex::new(vec![key.jwk.clone()]));
    let fetches = Arc::new(AtomicUsize::new(0));
    let issuer = issuer(jwks.clone(), fetches.clone()).await;
    let machine = json!({
        "issuers": [{
            "name": "okta-cc", "issuer": issuer, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "roleClaim": "scp",
            "roleMap": [{"value": "portal.admin", "role": "admin"}, {"value": "portal.read", "role": "member"}]
        }],
        "forwardToken": forward,
    })
    .to_string();
    let mut vars: Vec<(&str, &str)> = vec![("GATEHOUSE_MACHINE_AUTH", &machine)];
    vars.extend_from_slice(extra);
    let sc = sidecar(serve_app(Router::new().fallback(echo)).await, &vars).await;
    Setup {
        sc,
        issuer,
        key,
        jwks,
        fetches,
    }
}

async fn call(s: &Setup, bearer: &str, cookie: Option<&str>) -> (u16, Value) {
    let mut r = client()
        .get(url(&s.sc, "/api/items"))
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {bearer}"));
    if let Some(cookie) = cookie {
        r = r.header("cookie", cookie);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_valid_token_reaches_the_app_as_a_machine_with_its_role() {
    let s = setup(&[], false).await;
    let (status, seen) = call(
        &s,
        &token(&s.key, "k1", &claims(&s.issuer, json!({}))),
        None,
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        header_values(&seen, "x-forwarded-user"),
        ["okta-cc:0oa-deploy-bot"]
    );
    assert_eq!(header_values(&seen, "x-forwarded-provider"), ["okta-cc"]);
    assert_eq!(header_values(&seen, "x-forwarded-groups"), ["admin"]);
    assert!(header_values(&seen, "x-forwarded-email").is_empty());
    assert!(
        header_values(&seen, "authorization").is_empty(),
        "the token does not reach the app unless forwardToken"
    );
    let jwt = header_values(&seen, "x-gatehouse-identity")[0];
    use base64::Engine as _;
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).expect("payload"))
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(payload["principal_type"], "machine");
    assert_eq!(payload["sub"], "okta-cc:0oa-deploy-bot");
}

#[tokio::test]
async fn forward_token_passes_the_authorization_header_on() {
    let s = setup(&[], true).await;
    let bearer = token(&s.key, "k1", &claims(&s.issuer, json!({})));
    let (status, seen) = call(&s, &bearer, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        header_values(&seen, "authorization"),
        [format!("Bearer {bearer}")]
    );
}

#[tokio::test]
async fn forged_and_misdirected_tokens_are_refused_with_invalid_token() {
    let s = setup(&[], false).await;
    let honest = claims(&s.issuer, json!({}));
    assert_eq!(call(&s, &token(&s.key, "k1", &honest), None).await.0, 200);
    let now = gatehouse_auth::token::now_unix();
    let other = key("k1");
    let cases: Vec<(&str, String)> = vec![
        (
            "another audience",
            token(
                &s.key,
                "k1",
                &claims(
                    &s.issuer,
                    json!({"aud": "0oa-browser-client", "nonce": "n"}),
                ),
            ),
        ),
        (
            "another issuer",
            token(&s.key, "k1", &claims("http://127.0.0.1:9/evil", json!({}))),
        ),
        (
            "expired",
            token(&s.key, "k1", &claims(&s.issuer, json!({"exp": now - 600}))),
        ),
        (
            "not yet valid",
            token(&s.key, "k1", &claims(&s.issuer, json!({"nbf": now + 600}))),
        ),
        (
            "signed by another key under the same kid",
            token(&other, "k1", &honest),
        ),
        ("unknown kid", token(&other, "k9", &honest)),
        ("alg none", {
            use base64::Engine as _;
            let b64 =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "k1"})),
                b64(&honest)
            )
        }),
        ("HMAC with the public key as secret", {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("k1".into());
            let secret = EncodingKey::from_secret(s.key.jwk.to_string().as_bytes());
            jsonwebtoken::encode(&header, &honest, &secret).expect("signed")
        }),
        ("a key in the header (jku)", {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some("k1".into());
            header.jku = Some("http://127.0.0.1:9/jwks".into());
            jsonwebtoken::encode(&header, &honest, &s.key.encoding).expect("signed")
        }),
        ("not a JWT", "abc".to_owned()),
    ];
    for (what, bad) in cases {
        let r = client()
            .get(url(&s.sc, "/api/items"))
            .header("authorization", format!("Bearer {bad}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401, "{what}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"gatehouse\", error=\"invalid_token\"",
            "{what}"
        );
    }
}

#[tokio::test]
async fn an_invalid_token_is_refused_even_beside_a_valid_session_cookie() {
    let s = setup(&[], false).await;
    let cookie = cookie_for(&session("okta", 3600));
    // Honest: the cookie alone is a session.
    let r = client()
        .get(url(&s.sc, "/api/items"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let expired = claims(
        &s.issuer,
        json!({"exp": gatehouse_auth::token::now_unix() - 600}),
    );
    let (status, _) = call(&s, &token(&s.key, "k1", &expired), Some(&cookie)).await;
    assert_eq!(status, 401, "the bearer decides");
}

#[tokio::test]
async fn a_token_whose_claim_maps_to_no_role_is_forbidden_and_rules_apply_to_machines() {
    let policy = json!({"rules": [
        {"name": "bots-read", "action": "Allow", "from": [{"clients": ["okta-cc"]}], "to": [{"methods": ["GET"]}]},
        {"name": "no-bots-admin", "action": "Deny", "from": [{"principalTypes": ["machine"]}], "to": [{"paths": ["/admin"]}]}
    ]})
    .to_string();
    let s = setup(&[("GATEHOUSE_ACCESS", &policy)], false).await;
    let good = token(&s.key, "k1", &claims(&s.issuer, json!({})));
    assert_eq!(call(&s, &good, None).await.0, 200);
    let r = client()
        .get(url(&s.sc, "/admin/users"))
        .header("authorization", format!("Bearer {good}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403, "the Deny on machines");
    let r = client()
        .post(url(&s.sc, "/api/items"))
        .header("authorization", format!("Bearer {good}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403, "only GET is allowed to the client");
    let no_role = token(
        &s.key,
        "k1",
        &claims(&s.issuer, json!({"scp": "portal.other"})),
    );
    assert_eq!(call(&s, &no_role, None).await.0, 403);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_when_a_token_names_it() {
    let s = setup(&[], false).await;
    assert_eq!(
        call(
            &s,
            &token(&s.key, "k1", &claims(&s.issuer, json!({}))),
            None
        )
        .await
        .0,
        200
    );
    // The issuer rotates to a new key: the sidecar has not seen it, and fetches the JWKS again.
    let rotated = key("k2");
    if let Ok(mut keys) = s.jwks.lock() {
        keys.push(rotated.jwk.clone());
    }
    let (status, seen) = call(
        &s,
        &token(&rotated, "k2", &claims(&s.issuer, json!({}))),
        None,
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    // Tokens naming keys that do not exist do not make the sidecar hammer the issuer: within
    // the rate limit, no further fetch.
    let fetched = s.fetches.load(Ordering::SeqCst);
    for kid in ["k7", "k8", "k9"] {
        let forged = token(&key(kid), kid, &claims(&s.issuer, json!({})));
        assert_eq!(call(&s, &forged, None).await.0, 401);
    }
    assert_eq!(
        s.fetches.load(Ordering::SeqCst),
        fetched,
        "refetches for unknown kids are rate-limited"
    );
}

// ------------------------------------------------------------------------------------------
// Kubernetes ServiceAccount tokens

const CLUSTER_ISSUER: &str = "https://oidc.cluster.test";
const PROJECTED_AUDIENCE: &str = "gatehouse.dev/demo/portal";

/// An in-memory API server's JSON answer.
fn api_answer(status: u16, body: &Value) -> http::Response<kube::client::Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body.to_string().into_bytes()))
        .expect("response")
}

/// A Kubernetes client whose API server serves only its ServiceAccount issuer discovery and keys
/// (what the sidecar reads for ServiceAccount tokens), counting the key fetches.
fn api_server(jwks: Value, fetches: Arc<AtomicUsize>) -> kube::Client {
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let jwks = jwks.clone();
        let fetches = fetches.clone();
        async move {
            let (status, body) = match req.uri().path() {
                "/.well-known/openid-configuration" => (
                    200,
                    json!({"issuer": CLUSTER_ISSUER, "jwks_uri": format!("{CLUSTER_ISSUER}/openid/v1/jwks")}),
                ),
                "/openid/v1/jwks" => {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    (200, jwks)
                }
                _ => (404, json!({"kind": "Status", "code": 404})),
            };
            Ok::<_, std::convert::Infallible>(api_answer(status, &body))
        }
    });
    kube::Client::new(service, "demo")
}

async fn cluster_sidecar(jwks: Value, fetches: Arc<AtomicUsize>) -> Sidecar {
    let machine = json!({"kubernetes": {
        "audiences": [PROJECTED_AUDIENCE],
        "serviceAccounts": [{"name": "ci/deployer", "role": "admin"}]
    }});
    sidecar_on_cluster(machine, api_server(jwks, fetches)).await
}

/// A sidecar admitting the ServiceAccount tokens `machine` (`GATEHOUSE_MACHINE_AUTH`) says, on
/// the API server `kube`.
async fn sidecar_on_cluster(machine: Value, kube: kube::Client) -> Sidecar {
    let app = serve_app(Router::new().fallback(echo)).await;
    let vars: std::collections::HashMap<&str, String> = [
        ("GATEHOUSE_PUBLIC_URL", PUBLIC.to_owned()),
        ("GATEHOUSE_COOKIE_SECRET", KEY.to_owned()),
        ("GATEHOUSE_LISTEN", "127.0.0.1:0".to_owned()),
        ("GATEHOUSE_ADMIN_LISTEN", "127.0.0.2:0".to_owned()),
        ("GATEHOUSE_UPSTREAM", format!("http://{app}")),
        ("OKTA_CLIENT_ID", "okta-client".to_owned()),
        ("OKTA_CLIENT_SECRET", "okta-secret-value".to_owned()),
        ("OKTA_ISSUER", "http://127.0.0.1:9/okta".to_owned()),
        ("OKTA_ORG_ID", "acme".to_owned()),
        ("GATEHOUSE_PROVISIONING", "kubernetes".to_owned()),
        ("GATEHOUSE_NAMESPACE", "demo".to_owned()),
        ("GATEHOUSE_MACHINE_AUTH", machine.to_string()),
    ]
    .into_iter()
    .collect();
    let lookup = move |k: &str| vars.get(k).cloned();
    let config = gatehouse_sidecar::Config::from_source(&lookup).expect("valid config");
    gatehouse_sidecar::start_with(
        config,
        gatehouse_sidecar::StartOptions {
            kube_client: Some(kube),
            manual_user_watch: true,
        },
    )
    .await
    .expect("sidecar starts")
}

fn service_account_claims(namespace: &str, name: &str, audience: &str) -> Value {
    let now = gatehouse_auth::token::now_unix();
    json!({
        "iss": CLUSTER_ISSUER, "aud": [audience], "iat": now, "exp": now + 600,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "0f3c"}},
    })
}

async fn cluster_call(sc: &Sidecar, bearer: &str) -> (u16, Value) {
    let r = client()
        .get(url(sc, "/api/deploy"))
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_projected_service_account_token_is_a_machine_and_the_default_token_never_is() {
    let signer = key("sa-1");
    let fetches = Arc::new(AtomicUsize::new(0));
    let sc = cluster_sidecar(json!({"keys": [signer.jwk]}), fetches.clone()).await;
    // Honest: the projected token of a listed ServiceAccount.
    let projected = token(
        &signer,
        "sa-1",
        &service_account_claims("ci", "deployer", PROJECTED_AUDIENCE),
    );
    let (status, seen) = cluster_call(&sc, &projected).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        header_values(&seen, "x-forwarded-user"),
        ["system:serviceaccount:ci:deployer"]
    );
    assert_eq!(header_values(&seen, "x-forwarded-groups"), ["admin"]);
    // The default kube-api-access token: for the API server, never for the app.
    for audience in [
        "https://kubernetes.default.svc.cluster.local",
        "https://kubernetes.default.svc",
        CLUSTER_ISSUER,
    ] {
        let default = token(
            &signer,
            "sa-1",
            &service_account_claims("ci", "deployer", audience),
        );
        assert_eq!(cluster_call(&sc, &default).await.0, 401, "{audience}");
    }
    // Another audience, another ServiceAccount, a token signed by another key.
    let elsewhere = token(
        &signer,
        "sa-1",
        &service_account_claims("ci", "deployer", "vault"),
    );
    assert_eq!(cluster_call(&sc, &elsewhere).await.0, 401);
    let stranger = token(
        &signer,
        "sa-1",
        &service_account_claims("ci", "intern", PROJECTED_AUDIENCE),
    );
    assert_eq!(cluster_call(&sc, &stranger).await.0, 403, "no role");
    let forged = token(
        &key("sa-1"),
        "sa-1",
        &service_account_claims("ci", "deployer", PROJECTED_AUDIENCE),
    );
    assert_eq!(cluster_call(&sc, &forged).await.0, 401);
    // Unknown keys do not make the sidecar ask the API server again and again.
    let before = fetches.load(Ordering::SeqCst);
    for kid in ["sa-7", "sa-8"] {
        let unknown = token(
            &key(kid),
            kid,
            &service_account_claims("ci", "deployer", PROJECTED_AUDIENCE),
        );
        assert_eq!(cluster_call(&sc, &unknown).await.0, 401);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), before, "rate-limited");
}

// ------------------------------------------------------------------------------------------
// Kubernetes ServiceAccount tokens, TokenReview mode

/// The API server of TokenReview mode: it knows the tokens it issued (as a real one knows its
/// signing keys), which ServiceAccounts were deleted since, and answers TokenReviews the way
/// kube-apiserver does (authenticated only for an audience of the request the token names; the
/// audiences of the answer are those); it counts reviews and keeps the last request's audiences.
/// A token the in-memory API server issued: its ServiceAccount and audiences.
#[derive(Clone)]
struct Issued {
    namespace: String,
    name: String,
    audiences: Vec<String>,
}

#[derive(Clone, Default)]
struct ReviewingApi {
    issued: Arc<Mutex<std::collections::HashMap<String, Issued>>>,
    /// `namespace/name` of deleted ServiceAccounts.
    deleted: Arc<Mutex<Vec<String>>>,
    reviews: Arc<AtomicUsize>,
    requested_audiences: Arc<Mutex<Vec<String>>>,
    /// Answer 403, as to a ServiceAccount without `system:auth-delegator`.
    forbidden: Arc<std::sync::atomic::AtomicBool>,
}

impl ReviewingApi {
    /// A projected token for `audience`, as the kubelet would mount it.
    fn mint(&self, namespace: &str, name: &str, audience: &str) -> String {
        let raw = token(
            &key("cluster"),
            "cluster",
            &service_account_claims(namespace, name, audience),
        );
        self.issued.lock().expect("issued").insert(
            raw.clone(),
            Issued {
                namespace: namespace.into(),
                name: name.into(),
                audiences: vec![audience.into()],
            },
        );
        raw
    }

    fn answer(&self, review: &Value) -> Value {
        self.reviews.fetch_add(1, Ordering::SeqCst);
        let token = review["spec"]["token"].as_str().unwrap_or_default();
        let requested: Vec<String> =
            serde_json::from_value(review["spec"]["audiences"].clone()).unwrap_or_default();
        *self.requested_audiences.lock().expect("audiences") = requested.clone();
        let issued = self.issued.lock().expect("issued").get(token).cloned();
        let deleted = self.deleted.lock().expect("deleted").clone();
        let status = match issued {
            Some(Issued {
                namespace: ns,
                name,
                audiences,
            }) if !deleted.contains(&format!("{ns}/{name}")) => {
                let common: Vec<&String> =
                    audiences.iter().filter(|a| requested.contains(a)).collect();
                if common.is_empty() {
                    json!({"authenticated": false, "error": "token audiences are invalid"})
                } else {
                    json!({"authenticated": true, "audiences": common,
                           "user": {"username": format!("system:serviceaccount:{ns}:{name}"),
                                    "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}")]}})
                }
            }
            _ => json!({"authenticated": false, "error": "invalid bearer token"}),
        };
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
               "spec": review["spec"], "status": status})
    }

    fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let api = api.clone();
            async move {
                use http_body_util::BodyExt as _;
                let path = req.uri().path().to_owned();
                let post = req.method() == http::Method::POST;
                let body = req.into_body().collect().await.map(|b| b.to_bytes());
                let (status, body) = match (post, path.as_str()) {
                    _ if api.forbidden.load(Ordering::SeqCst) => (
                        403,
                        json!({"kind": "Status", "code": 403, "reason": "Forbidden",
                               "message": "tokenreviews.authentication.k8s.io is forbidden"}),
                    ),
                    (true, "/apis/authentication.k8s.io/v1/tokenreviews") => {
                        let review: Value = body
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok())
                            .unwrap_or_default();
                        (201, api.answer(&review))
                    }
                    _ => (404, json!({"kind": "Status", "code": 404})),
                };
                Ok::<_, std::convert::Infallible>(api_answer(status, &body))
            }
        });
        kube::Client::new(service, "demo")
    }
}

async fn reviewing_sidecar(api: &ReviewingApi) -> Sidecar {
    let machine = json!({"kubernetes": {
        "mode": "TokenReview",
        "audiences": [PROJECTED_AUDIENCE],
        "serviceAccounts": [{"name": "ci/deployer", "role": "admin"}]
    }});
    sidecar_on_cluster(machine, api.client()).await
}

#[tokio::test]
async fn in_token_review_mode_the_api_server_decides_and_a_deleted_service_account_is_refused() {
    let api = ReviewingApi::default();
    let sc = reviewing_sidecar(&api).await;
    // Honest: a projected token of a listed ServiceAccount, reviewed with the configured audience.
    let projected = api.mint("ci", "deployer", PROJECTED_AUDIENCE);
    let (status, seen) = cluster_call(&sc, &projected).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        header_values(&seen, "x-forwarded-user"),
        ["system:serviceaccount:ci:deployer"]
    );
    assert_eq!(header_values(&seen, "x-forwarded-provider"), ["kubernetes"]);
    assert!(header_values(&seen, "authorization").is_empty());
    assert_eq!(
        *api.requested_audiences.lock().expect("audiences"),
        [PROJECTED_AUDIENCE]
    );
    assert_eq!(api.reviews.load(Ordering::SeqCst), 1);
    // The same token again: the review is reused (at most 60 s, never past its exp).
    assert_eq!(cluster_call(&sc, &projected).await.0, 200);
    assert_eq!(
        api.reviews.load(Ordering::SeqCst),
        1,
        "one review per token"
    );

    // The default kube-api-access token: the review (for our audience only) does not admit it.
    let default = api.mint(
        "ci",
        "deployer",
        "https://kubernetes.default.svc.cluster.local",
    );
    let (status, body) = cluster_call(&sc, &default).await;
    assert_eq!(status, 401);
    assert_eq!(body["error_description"], "bearer_review_refused");
    // A token the API server never issued (signed by a key of the attacker's), and one for
    // another audience.
    let forged = token(
        &key("cluster"),
        "cluster",
        &service_account_claims("ci", "deployer", PROJECTED_AUDIENCE),
    );
    assert_eq!(cluster_call(&sc, &forged).await.0, 401);
    let vault = api.mint("ci", "deployer", "vault");
    assert_eq!(cluster_call(&sc, &vault).await.0, 401);
    // A ServiceAccount not listed: authenticated, no role.
    let stranger = api.mint("ci", "intern", PROJECTED_AUDIENCE);
    assert_eq!(cluster_call(&sc, &stranger).await.0, 403);

    // The ServiceAccount is deleted: a token of it that was never reviewed is refused at once
    // (with the published keys alone it would pass until it expires).
    let second = api.mint("ci", "deployer", PROJECTED_AUDIENCE);
    api.deleted
        .lock()
        .expect("deleted")
        .push("ci/deployer".into());
    let (status, body) = cluster_call(&sc, &second).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_description"], "bearer_review_refused");
}

#[tokio::test]
async fn without_the_auth_delegator_binding_service_account_tokens_get_503_not_401() {
    let api = ReviewingApi::default();
    api.forbidden.store(true, Ordering::SeqCst);
    let sc = reviewing_sidecar(&api).await;
    let projected = api.mint("ci", "deployer", PROJECTED_AUDIENCE);
    let r = client()
        .get(url(&sc, "/api/deploy"))
        .header("authorization", format!("Bearer {projected}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error_description"], "bearer_unverifiable");
    // Once the binding exists, the same token is admitted: a failed review was not remembered.
    api.forbidden.store(false, Ordering::SeqCst);
    assert_eq!(cluster_call(&sc, &projected).await.0, 200);
}
