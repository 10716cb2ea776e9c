//! OIDC Back-Channel Logout at the sidecar's real endpoint, and the connections a session ending
//! cuts: logout tokens signed with locally generated keys (tests/data) and verified against an
//! in-process JWKS endpoint; a real upstream app with a WebSocket-style upgrade and an endless
//! streamed response. Every attack is a POST of a forged token that must change nothing.
//!
//! With Kubernetes provisioning, the sidecars run against kube-fake-client's in-memory API (each
//! call delayed a little, as a real API server's are, and counted), and the tests play the
//! SsoUser watch of each replica.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_auth::claims::Role;
use gatehouse_auth::cookie::{Binding, KeyRing, Session, random_token};
use gatehouse_auth::logout_token::BACKCHANNEL_LOGOUT_EVENT;
use gatehouse_auth::token::now_unix;
use gatehouse_crds::names::sso_user_name;
use gatehouse_crds::{SsoUser, SsoUserSpec};
use gatehouse_directory::kubernetes::UserCacheFeeder;
use gatehouse_sidecar::providers::jwks::JwksCache;
use gatehouse_sidecar::providers::{Discovered, Endpoints, TokenAuth};
use gatehouse_sidecar::{Config, Sidecar, StartOptions};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const PUBLIC: &str = "https://app.test";
const SESSION: &str = "__Host-gatehouse-session";
/// The provider's issuer (discovery never runs: the test installs the endpoints and keys).
const ISSUER: &str = "http://127.0.0.1:9/okta";
const CLIENT: &str = "okta-client";
const PATH: &str = "/api/auth/oauth2/backchannel-logout/okta";
/// A second provider (the generic OIDC one), with keys of its own.
const PARTNER: &str = "partner";
const PARTNER_ISSUER: &str = "http://127.0.0.1:9/partner";
const PARTNER_CLIENT: &str = "partner-client";
/// The SsoConfig the sessions are bound to.
const NAMESPACE: &str = "team-a";
const CONFIG: &str = "portal";
/// The fixture subjects.
const ADA: &str = "00u1ada";
const BOB: &str = "00u2bob";

// ------------------------------------------------------------------------------------------
// Keys and tokens

fn pem(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rsa(file: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&pem(file)).expect("test key")
}

fn jwks_document(file: &str, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&rsa(file), Algorithm::RS256).expect("JWK");
    jwk.common.key_id = Some(kid.into());
    json!({ "keys": [serde_json::to_value(&jwk).expect("JWK JSON")] })
}

/// Claims of a valid logout token for `sid` (and the fixture subject).
fn claims(sid: &str) -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "iat": now_unix(), "exp": now_unix() + 120,
        "jti": random_token(12), "sub": "00u1ada", "sid": sid,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

fn with(mut c: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    if let Value::Object(m) = &mut c {
        f(m);
    }
    c
}

fn sign_as(claims: &Value, key: &EncodingKey, kid: &str, typ: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn sign(claims: &Value) -> String {
    sign_as(claims, &rsa("rsa-1.pem"), "rsa-1", Some("logout+jwt"))
}

// ------------------------------------------------------------------------------------------
// The app, the JWKS endpoint and the sidecar

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// One chunk, then nothing, forever: only the session's end finishes it.
async fn endless_stream() -> Response {
    let first = futures::stream::once(async {
        Ok::<_, Infallible>(bytes::Bytes::from_static(b"first-chunk\n"))
    });
    let never = futures::stream::pending::<Result<bytes::Bytes, Infallible>>();
    Response::new(Body::from_stream(futures::StreamExt::chain(first, never)))
}

async fn app() -> SocketAddr {
    serve(
        Router::new()
            .route("/ws", get(common::echo_upgrade))
            .route("/stream", get(endless_stream))
            .fallback(|| async { "the app" }),
    )
    .await
}

async fn sidecar() -> Sidecar {
    sidecar_with(None).await
}

/// A sidecar with two providers (`okta`, and the generic `partner` with keys of its own), their
/// endpoints and keys installed; with `kube`, Kubernetes provisioning on that API and a watch the
/// test plays (the feeder is still in the sidecar: [`Replica`] takes it).
async fn sidecar_with(kube: Option<kube::Client>) -> Sidecar {
    let upstream = app().await;
    let jwks = serve(
        Router::new()
            .route(
                "/okta",
                get(|| async { axum::Json(jwks_document("rsa-1.pem", "rsa-1")) }),
            )
            .route(
                "/partner",
                get(|| async { axum::Json(jwks_document("rsa-2.pem", "partner-1")) }),
            ),
    )
    .await;
    let mut vars: HashMap<String, String> = HashMap::from([
        ("GATEHOUSE_PUBLIC_URL".into(), PUBLIC.into()),
        ("GATEHOUSE_COOKIE_SECRET".into(), KEY.into()),
        ("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into()),
        ("GATEHOUSE_ADMIN_LISTEN".into(), "127.0.0.2:0".into()),
        ("GATEHOUSE_UPSTREAM".into(), format!("http://{upstream}")),
        ("GATEHOUSE_NAMESPACE".into(), NAMESPACE.into()),
        ("GATEHOUSE_CONFIG".into(), CONFIG.into()),
        ("OKTA_CLIENT_ID".into(), CLIENT.into()),
        ("OKTA_CLIENT_SECRET".into(), "okta-secret-value".into()),
        ("OKTA_ISSUER".into(), ISSUER.into()),
        ("OKTA_ORG_ID".into(), "acme".into()),
        ("OIDC_PROVIDER_ID".into(), PARTNER.into()),
        ("OIDC_CLIENT_ID".into(), PARTNER_CLIENT.into()),
        ("OIDC_CLIENT_SECRET".into(), "partner-secret-value".into()),
        ("OIDC_ISSUER".into(), PARTNER_ISSUER.into()),
        ("OIDC_ORG_ID".into(), "partner-org".into()),
        ("OIDC_DEFAULT_ROLE".into(), "member".into()),
    ]);
    if kube.is_some() {
        vars.insert("GATEHOUSE_PROVISIONING".into(), "kubernetes".into());
    }
    let lookup = move |k: &str| vars.get(k).cloned();
    let config = Config::from_source(&lookup).expect("valid config");
    let sc = gatehouse_sidecar::start_with(
        config,
        StartOptions {
            manual_user_watch: kube.is_some(),
            kube_client: kube,
        },
    )
    .await
    .expect("sidecar starts");
    for id in ["okta", PARTNER] {
        let cache = JwksCache::new(
            url::Url::parse(&format!("http://{jwks}/{id}")).expect("url"),
            reqwest::Client::new(),
            Duration::from_secs(30),
        );
        cache.refresh().await.expect("JWKS");
        let installed = sc
            .app()
            .provider(id)
            .expect("provider configured")
            .set_discovered(Discovered {
                endpoints: Endpoints {
                    authorization: url::Url::parse("https://idp.test/authorize").expect("url"),
                    token: url::Url::parse("https://idp.test/token").expect("url"),
                    end_session: None,
                    userinfo: None,
                    iss_parameter_supported: false,
                    offline_access: false,
                    token_auth: TokenAuth::Basic,
                },
                jwks: cache,
            });
        assert!(installed, "endpoints installed");
    }
    sc
}

/// A session of `subject` at `provider` (signed in through the IdP session `idp_sid`), issued at
/// `issued_at`, bound to SsoUser UID `uid` when there is one.
fn session_of(
    provider: &str,
    subject: &str,
    idp_sid: Option<&str>,
    issued_at: i64,
    uid: Option<&str>,
) -> Session {
    let issuer = if provider == PARTNER {
        PARTNER_ISSUER
    } else {
        ISSUER
    };
    Session {
        sid: random_token(16),
        user: sso_user_name(CONFIG, provider, issuer, subject),
        subject: subject.into(),
        provider: provider.into(),
        email: None,
        name: None,
        username: None,
        role: Role::Member,
        issued_at,
        expires_at: issued_at + 3600,
        user_uid: uid.map(str::to_owned),
        idp_sid: idp_sid.map(str::to_owned),
        validated_at: None,
        groups: Vec::new(),
        claims: None,
        facts: None,
        groups_unknown: false,
    }
}

fn cookie_of(session: &Session) -> String {
    let ring = KeyRing::parse(KEY).expect("ring");
    let binding = Binding::new(NAMESPACE, CONFIG, PUBLIC, None);
    format!("{SESSION}={}", session.seal(&ring, &binding))
}

fn cookie(idp_sid: &str) -> String {
    cookie_of(&session_of("okta", ADA, Some(idp_sid), now_unix(), None))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn post_form(sc: &Sidecar, body: &str) -> (u16, String) {
    post_form_to(sc, PATH, body).await
}

async fn post_form_to(sc: &Sidecar, path: &str, body: &str) -> (u16, String) {
    let r = client()
        .post(format!("http://{}{path}", sc.addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn post_token(sc: &Sidecar, token: &str) -> (u16, String) {
    post_token_to(sc, PATH, token).await
}

async fn post_token_to(sc: &Sidecar, path: &str, token: &str) -> (u16, String) {
    post_form_to(
        sc,
        path,
        &format!(
            "logout_token={}",
            url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
        ),
    )
    .await
}

async fn reaches_app(sc: &Sidecar, cookie: &str) -> bool {
    let r = client()
        .get(format!("http://{}/page", sc.addr()))
        .header("accept", "application/json")
        .header("cookie", cookie)
        .send()
        .await
        .expect("send");
    r.status() == 200 && r.text().await.unwrap_or_default() == "the app"
}

/// An upgraded connection through the sidecar to the app's echo.
async fn tunnel(sc: &Sidecar, cookie: &str) -> TcpStream {
    let mut stream = TcpStream::connect(sc.addr()).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Cookie: {cookie}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("head in time")
            .expect("read");
        assert_eq!(n, 1, "connection closed during the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    echoes(&mut stream).await.expect("the tunnel echoes");
    stream
}

/// Whether the tunnel still echoes a message.
async fn echoes(stream: &mut TcpStream) -> Option<()> {
    stream.write_all(b"ping").await.ok()?;
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut back))
        .await
        .ok()?
        .ok()?;
    (&back == b"ping").then_some(())
}

/// Waits up to a second for the peer to close `stream`.
async fn closed_within_a_second(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn forged_logout_tokens_are_refused_with_a_bare_400_and_end_nothing() {
    let sc = sidecar().await;
    let victim = cookie("idp-session-1");
    assert!(reaches_app(&sc, &victim).await);

    let rsa1 = rsa("rsa-1.pem");
    let now = now_unix();
    let valid = claims("idp-session-1");
    let public_pem = pem("rsa-1.pub.pem");
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        header.typ = Some("logout+jwt".into());
        jsonwebtoken::encode(&header, &valid, &EncodingKey::from_secret(&public_pem))
            .expect("HS256")
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"logout+jwt"}"#),
        URL_SAFE_NO_PAD.encode(valid.to_string())
    );
    let id_token = sign_as(
        &json!({"iss": ISSUER, "aud": CLIENT, "sub": "00u1ada", "sid": "idp-session-1",
                "nonce": "n-1", "iat": now, "exp": now + 300}),
        &rsa1,
        "rsa-1",
        Some("JWT"),
    );
    let id_token_untyped = sign_as(
        &json!({"iss": ISSUER, "aud": CLIENT, "sub": "00u1ada", "sid": "idp-session-1",
                "nonce": "n-1", "iat": now, "exp": now + 300}),
        &rsa1,
        "rsa-1",
        None,
    );
    let other_provider = sign_as(
        &with(valid.clone(), |c| {
            c.insert(
                "iss".into(),
                json!("http://127.0.0.1:9/entra/0c9e2b71/v2.0"),
            );
        }),
        &rsa("rsa-2.pem"),
        "entra-key",
        Some("logout+jwt"),
    );
    let attacks: Vec<(&str, String)> = vec![
        (
            "nonce",
            sign(&with(valid.clone(), |c| {
                c.insert("nonce".into(), json!("n-1"));
            })),
        ),
        (
            "wrong aud",
            sign(&with(valid.clone(), |c| {
                c.insert("aud".into(), json!("someone-else"));
            })),
        ),
        (
            "wrong iss",
            sign(&with(valid.clone(), |c| {
                c.insert("iss".into(), json!("https://evil.example/okta"));
            })),
        ),
        (
            "missing events",
            sign(&with(valid.clone(), |c| {
                c.remove("events");
            })),
        ),
        (
            "expired iat",
            sign(&with(valid.clone(), |c| {
                c.insert("iat".into(), json!(now - 3600));
                c.remove("exp");
            })),
        ),
        (
            "expired exp",
            sign(&with(valid.clone(), |c| {
                c.insert("exp".into(), json!(now - 3600));
            })),
        ),
        (
            "future iat",
            sign(&with(valid.clone(), |c| {
                c.insert("iat".into(), json!(now + 3600));
                c.insert("exp".into(), json!(now + 7200));
            })),
        ),
        (
            "no sid or sub",
            sign(&with(valid.clone(), |c| {
                c.remove("sid");
                c.remove("sub");
            })),
        ),
        (
            "no jti",
            sign(&with(valid.clone(), |c| {
                c.remove("jti");
            })),
        ),
        (
            "unknown kid",
            sign_as(
                &valid,
                &rsa("rsa-2.pem"),
                "never-published",
                Some("logout+jwt"),
            ),
        ),
        (
            "right kid, wrong key",
            sign_as(&valid, &rsa("rsa-2.pem"), "rsa-1", Some("logout+jwt")),
        ),
        ("alg none", alg_none),
        ("HS256 with the public key", hs256),
        ("an ID token", id_token),
        ("an ID token without typ", id_token_untyped),
        ("wrong typ", sign_as(&valid, &rsa1, "rsa-1", Some("JWT"))),
        ("another provider's token", other_provider),
        ("garbage", "not.a.jwt".into()),
    ];
    for (name, token) in &attacks {
        let (status, body) = post_token(&sc, token).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).ok(),
            Some(json!({"error": "invalid_request"})),
            "{name}: the answer says nothing else"
        );
    }
    // Not a form, no token, two tokens.
    let token = sign(&valid);
    let r = client()
        .post(format!("http://{}{PATH}", sc.addr()))
        .header("content-type", "application/json")
        .body(json!({ "logout_token": token }).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "JSON body");
    assert_eq!(post_form(&sc, "other=1").await.0, 400, "no token");
    assert_eq!(
        post_form(&sc, &format!("logout_token={token}&logout_token={token}"))
            .await
            .0,
        400,
        "two tokens"
    );
    assert!(
        reaches_app(&sc, &victim).await,
        "a refused logout token ended a session"
    );

    // The endpoint takes POST only.
    let r = client()
        .get(format!("http://{}{PATH}", sc.addr()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 405);

    // The genuine token ends exactly the session it names, once.
    let bystander = cookie("idp-session-2");
    assert_eq!(post_token(&sc, &token).await.0, 200);
    assert!(!reaches_app(&sc, &victim).await, "the named session ended");
    assert!(
        reaches_app(&sc, &bystander).await,
        "another session did not"
    );
    assert_eq!(post_token(&sc, &token).await.0, 400, "a replayed jti");
    sc.shutdown().await;
}

#[tokio::test]
async fn a_subject_only_token_needs_the_kubernetes_directory() {
    let sc = sidecar().await;
    let session = cookie("idp-session-1");
    let token = sign(&with(claims("unused"), |c| {
        c.remove("sid");
    }));
    // No SsoUser to record `sessionsNotBefore` on: refused, and the session goes on.
    assert_eq!(post_token(&sc, &token).await.0, 400);
    assert!(reaches_app(&sc, &session).await);
    sc.shutdown().await;
}

#[tokio::test]
async fn a_back_channel_logout_closes_the_sessions_open_tunnel_and_stream() {
    let sc = sidecar().await;
    let victim = cookie("idp-session-1");
    let bystander = cookie("idp-session-2");
    let mut victim_tunnel = tunnel(&sc, &victim).await;
    let mut bystander_tunnel = tunnel(&sc, &bystander).await;
    let mut stream = client()
        .get(format!("http://{}/stream", sc.addr()))
        .header("cookie", &victim)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("first chunk in time")
        .expect("chunk");
    assert_eq!(first.as_deref(), Some(&b"first-chunk\n"[..]));

    assert_eq!(
        post_token(&sc, &sign(&claims("idp-session-1"))).await.0,
        200
    );

    assert!(
        closed_within_a_second(&mut victim_tunnel).await,
        "the logged-out session's tunnel stayed open"
    );
    let rest = tokio::time::timeout(Duration::from_secs(1), stream.chunk()).await;
    assert!(
        matches!(rest, Ok(Err(_))),
        "the logged-out session's stream was not cut within a second: {rest:?}"
    );
    assert!(
        echoes(&mut bystander_tunnel).await.is_some(),
        "another session's tunnel was closed"
    );
    sc.shutdown().await;
}

#[tokio::test]
async fn logout_closes_the_sessions_open_tunnel() {
    let sc = sidecar().await;
    let session = cookie("idp-session-1");
    let mut open = tunnel(&sc, &session).await;
    let r = client()
        .post(format!("http://{}/api/auth/logout", sc.addr()))
        .header("cookie", &session)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 303);
    assert!(
        closed_within_a_second(&mut open).await,
        "the tunnel outlived the logout"
    );
}

// ------------------------------------------------------------------------------------------
// Kubernetes provisioning: the in-memory API and replicas whose watch the test plays

/// How long each call to the in-memory API takes: a real API server answers in milliseconds, and
/// the races these tests look for happen in that time.
const API_LATENCY: Duration = Duration::from_millis(40);

/// The in-memory API server as the sidecars reach it: every call delayed by [`API_LATENCY`], its
/// writes (PATCHes) counted, and an outage switch.
struct FakeApi {
    /// What the sidecars use.
    client: kube::Client,
    /// The in-memory API itself, for the test's own reads.
    direct: kube::Client,
    down: Arc<AtomicBool>,
    writes: Arc<AtomicUsize>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn fake_api(users: Vec<SsoUser>) -> FakeApi {
    let mut builder = kube_fake_client::ClientBuilder::new()
        .with_resource::<SsoUser>()
        .with_status_subresource::<SsoUser>();
    for user in users {
        builder = builder.with_object(user);
    }
    let direct = builder.build().await.expect("in-memory API");
    let down = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let service = {
        let (direct, down, writes) = (direct.clone(), down.clone(), writes.clone());
        tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let (direct, down, writes) = (direct.clone(), down.clone(), writes.clone());
            async move {
                tokio::time::sleep(API_LATENCY).await;
                if down.load(Ordering::SeqCst) {
                    return Err::<http::Response<kube::client::Body>, BoxError>(
                        "the API server is unreachable (test outage)".into(),
                    );
                }
                if req.method() == http::Method::PATCH {
                    writes.fetch_add(1, Ordering::SeqCst);
                }
                direct.send(req).await.map_err(BoxError::from)
            }
        })
    };
    FakeApi {
        client: kube::Client::new(service, NAMESPACE),
        direct,
        down,
        writes,
    }
}

impl FakeApi {
    fn users(&self) -> kube::Api<SsoUser> {
        kube::Api::namespaced(self.direct.clone(), NAMESPACE)
    }

    async fn user(&self, subject: &str) -> SsoUser {
        self.users()
            .get(&sso_user_name(CONFIG, "okta", ISSUER, subject))
            .await
            .expect("SsoUser")
    }

    /// The UID of `subject`'s SsoUser (Okta).
    async fn uid(&self, subject: &str) -> String {
        self.user(subject).await.metadata.uid.expect("a UID")
    }

    /// `status.sessionsNotBefore` of `subject`'s SsoUser (the sidecar's cut-off), Unix seconds.
    /// Its spec is never written: the cut-off of a GitOps-owned SsoUser would be reverted there.
    async fn not_before(&self, subject: &str) -> Option<i64> {
        let user = self.user(subject).await;
        assert_eq!(
            user.spec.sessions_not_before, None,
            "the sidecar wrote the spec of an existing SsoUser"
        );
        user.status
            .and_then(|s| s.sessions_not_before)
            .map(|t| t.0.as_second())
    }

    /// The ids in `status.revokedSessions` of `subject`'s SsoUser.
    async fn revoked(&self, subject: &str) -> Vec<String> {
        self.user(subject)
            .await
            .status
            .unwrap_or_default()
            .revoked_sessions
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

/// `subject`'s SsoUser at Okta, in the test's SsoConfig.
fn sso_user(subject: &str) -> SsoUser {
    let mut user = SsoUser::new(
        &sso_user_name(CONFIG, "okta", ISSUER, subject),
        SsoUserSpec {
            config: CONFIG.into(),
            provider: "okta".into(),
            subject: subject.into(),
            suspended: None,
            sessions_not_before: None,
            scim: None,
        },
    );
    user.metadata.namespace = Some(NAMESPACE.into());
    user.metadata.uid = Some(format!("uid-{subject}"));
    // As the sidecar's provisioning labels them.
    user.metadata.labels = Some(
        [(
            gatehouse_crds::consts::LABEL_CONFIG.to_owned(),
            CONFIG.to_owned(),
        )]
        .into(),
    );
    user
}

/// One replica of the sidecar on the in-memory API, with the SsoUser watch the test plays.
struct Replica {
    sc: Sidecar,
    feeder: UserCacheFeeder,
}

impl Replica {
    async fn start(api: &FakeApi) -> Self {
        let mut sc = sidecar_with(Some(api.client.clone())).await;
        let feeder = sc.take_user_feeder().expect("a manual watch");
        let mut replica = Replica { sc, feeder };
        replica.sync(api).await;
        replica
    }

    /// What a (re)started watch delivers: every SsoUser as the API holds it now.
    async fn sync(&mut self, api: &FakeApi) {
        use kube::runtime::watcher::Event;
        let list = api
            .users()
            .list(&kube::api::ListParams::default())
            .await
            .expect("list SsoUsers");
        self.feeder.apply(Ok(Event::Init));
        for user in list.items {
            self.feeder.apply(Ok(Event::InitApply(user)));
        }
        self.feeder.apply(Ok(Event::InitDone));
    }
}

/// A logout token from `provider` (its issuer, audience and key) naming `sid` and/or `sub`.
fn token_from(provider: &str, sid: Option<&str>, sub: Option<&str>, iat: i64) -> String {
    let (iss, aud, key, kid) = if provider == PARTNER {
        (PARTNER_ISSUER, PARTNER_CLIENT, "rsa-2.pem", "partner-1")
    } else {
        (ISSUER, CLIENT, "rsa-1.pem", "rsa-1")
    };
    let mut c = json!({
        "iss": iss, "aud": aud, "iat": iat, "exp": iat + 120, "jti": random_token(12),
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    if let Some(sid) = sid {
        c["sid"] = json!(sid);
    }
    if let Some(sub) = sub {
        c["sub"] = json!(sub);
    }
    sign_as(&c, &rsa(key), kid, Some("logout+jwt"))
}

fn logout_path(provider: &str) -> String {
    format!("/api/auth/oauth2/backchannel-logout/{provider}")
}

/// Waits until the clock reads at least `second` (Unix seconds).
async fn wait_for_second(second: i64) {
    while now_unix() < second {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------------------------------
// Whose sessions a logout token ends (hardening #4)

#[tokio::test]
async fn a_logout_token_ends_only_sessions_of_the_provider_that_signed_it() {
    let sc = sidecar().await;
    let now = now_unix();
    // A `sid` is unique per issuer only: two providers may use the same one.
    let at_okta = cookie_of(&session_of("okta", ADA, Some("shared-sid"), now, None));
    let at_partner = cookie_of(&session_of(PARTNER, ADA, Some("shared-sid"), now, None));
    let bob_at_okta = cookie_of(&session_of("okta", BOB, Some("other-sid"), now, None));
    assert!(reaches_app(&sc, &at_okta).await);
    assert!(reaches_app(&sc, &at_partner).await);

    // The attack: the partner (or whoever holds its keys) signs a valid token of its own that
    // names the Okta sessions' ids, with and without the same subject string.
    for (sid, sub) in [("shared-sid", Some(ADA)), ("other-sid", None)] {
        let token = token_from(PARTNER, Some(sid), sub, now);
        let (status, body) = post_token_to(&sc, &logout_path(PARTNER), &token).await;
        assert_eq!(
            status, 200,
            "{sid}: the partner's token is valid for the partner: {body}"
        );
    }
    assert!(
        !reaches_app(&sc, &at_partner).await,
        "the partner's own session ended"
    );
    assert!(
        reaches_app(&sc, &at_okta).await,
        "a logout token from the partner ended an Okta session with the same sid and subject"
    );
    assert!(
        reaches_app(&sc, &bob_at_okta).await,
        "a sid-only logout token from the partner ended an Okta session with that sid"
    );
    // The partner's token at Okta's endpoint is not Okta's (issuer, audience, key).
    let token = token_from(PARTNER, Some("shared-sid"), None, now);
    assert_eq!(post_token_to(&sc, PATH, &token).await.0, 400);
    assert!(reaches_app(&sc, &at_okta).await);
    sc.shutdown().await;
}

#[tokio::test]
async fn a_logout_token_with_sid_and_sub_ends_only_that_subjects_session_on_every_replica() {
    let api = fake_api(vec![sso_user(ADA), sso_user(BOB)]).await;
    let mut r1 = Replica::start(&api).await;
    let mut r2 = Replica::start(&api).await;
    let now = now_unix();
    // Two users whose IdP sessions carry the same `sid` (an IdP whose sids are per user, or a
    // collision): a token naming Bob's must not end Ada's.
    let ada = cookie_of(&session_of(
        "okta",
        ADA,
        Some("shared-sid"),
        now - 5,
        Some(&api.uid(ADA).await),
    ));
    let bob = cookie_of(&session_of(
        "okta",
        BOB,
        Some("shared-sid"),
        now - 5,
        Some(&api.uid(BOB).await),
    ));
    for r in [&r1, &r2] {
        assert!(reaches_app(&r.sc, &ada).await);
        assert!(reaches_app(&r.sc, &bob).await);
    }

    let token = token_from("okta", Some("shared-sid"), Some(BOB), now);
    assert_eq!(post_token(&r1.sc, &token).await.0, 200);
    r1.sync(&api).await;
    r2.sync(&api).await;
    for (name, r) in [("the replica that took the token", &r1), ("the other", &r2)] {
        assert!(
            !reaches_app(&r.sc, &bob).await,
            "{name}: Bob's session ended"
        );
        assert!(
            reaches_app(&r.sc, &ada).await,
            "{name}: a token naming Bob's sid and subject ended Ada's session"
        );
    }
    // On the cluster, only Bob's SsoUser records it.
    assert_eq!(api.revoked(BOB).await, ["shared-sid"]);
    assert!(api.revoked(ADA).await.is_empty());

    // A `sid` alone names no SsoUser: it ends that provider's sessions with the sid, on the
    // replica that took it only.
    let token = token_from("okta", Some("shared-sid"), None, now);
    assert_eq!(post_token(&r1.sc, &token).await.0, 200);
    assert!(!reaches_app(&r1.sc, &ada).await);
    assert!(reaches_app(&r2.sc, &ada).await);
    r1.sc.shutdown().await;
    r2.sc.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// A logout with only `sub` is idempotent (hardening #5)

#[tokio::test]
async fn a_replayed_subject_only_token_does_not_end_a_session_started_after_the_logout() {
    let api = fake_api(vec![sso_user(ADA)]).await;
    let uid = api.uid(ADA).await;
    let mut r1 = Replica::start(&api).await;
    let mut r2 = Replica::start(&api).await;
    let iat = now_unix();
    let before = cookie_of(&session_of("okta", ADA, None, iat - 5, Some(&uid)));
    // Whole seconds: a session started in the logout's own second may have started before it.
    let same_second = cookie_of(&session_of("okta", ADA, None, iat, Some(&uid)));
    assert!(reaches_app(&r1.sc, &before).await);

    let token = token_from("okta", None, Some(ADA), iat);
    assert_eq!(post_token(&r1.sc, &token).await.0, 200);
    // Dated by the token: the sessions started in `iat`'s second or before end (how the second
    // is written is the directory's business: `gatehouse_directory::revocation`).
    let recorded = api.not_before(ADA).await;
    assert!(
        recorded.is_some_and(|t| t == iat || t == iat + 1),
        "sessionsNotBefore {recorded:?} is dated by the token's iat {iat}"
    );
    r1.sync(&api).await;
    r2.sync(&api).await;
    for r in [&r1, &r2] {
        assert!(!reaches_app(&r.sc, &before).await);
        assert!(!reaches_app(&r.sc, &same_second).await);
    }

    // Ada signs in again after the logout.
    wait_for_second(iat + 1).await;
    let after = cookie_of(&session_of("okta", ADA, None, now_unix(), Some(&uid)));

    // The same token again, at the other replica, which has not seen its jti (an IdP that
    // delivers to every replica behind the Service, or whoever captured the token).
    let (status, body) = post_token(&r2.sc, &token).await;
    assert_eq!(status, 200, "accepted, and changes nothing: {body}");
    assert_eq!(
        api.not_before(ADA).await,
        recorded,
        "the replay moved sessionsNotBefore"
    );
    // And at the replica that took it: a replay.
    assert_eq!(post_token(&r1.sc, &token).await.0, 400);
    r1.sync(&api).await;
    r2.sync(&api).await;
    for (name, r) in [("first replica", &r1), ("second replica", &r2)] {
        assert!(
            reaches_app(&r.sc, &after).await,
            "{name}: a replayed logout token ended a session started after the logout"
        );
        assert!(!reaches_app(&r.sc, &before).await, "{name}");
    }
    r1.sc.shutdown().await;
    r2.sc.shutdown().await;
}

#[tokio::test]
async fn the_identity_providers_retry_after_a_failed_write_ends_only_what_the_logout_did() {
    let api = fake_api(vec![sso_user(ADA)]).await;
    let uid = api.uid(ADA).await;
    let mut r1 = Replica::start(&api).await;
    let iat = now_unix();
    let before = cookie_of(&session_of("okta", ADA, None, iat - 5, Some(&uid)));
    let token = token_from("okta", None, Some(ADA), iat);

    // The SsoUser cannot be written: the IdP is told (400) and will retry.
    api.set_down(true);
    assert_eq!(post_token(&r1.sc, &token).await.0, 400);
    api.set_down(false);
    assert_eq!(api.not_before(ADA).await, None, "nothing was recorded");

    // Meanwhile Ada signs in again; then the IdP's retry arrives at the same replica. Its jti
    // was not kept, so it is taken, and it ends what the logout ended, no more.
    wait_for_second(iat + 1).await;
    let after = cookie_of(&session_of("okta", ADA, None, now_unix(), Some(&uid)));
    let (status, body) = post_token(&r1.sc, &token).await;
    assert_eq!(
        status, 200,
        "the retry of a logout that was not recorded: {body}"
    );
    let recorded = api.not_before(ADA).await;
    assert!(
        recorded.is_some_and(|t| t == iat || t == iat + 1),
        "sessionsNotBefore {recorded:?} is dated by the token's iat {iat}"
    );
    r1.sync(&api).await;
    assert!(!reaches_app(&r1.sc, &before).await);
    assert!(
        reaches_app(&r1.sc, &after).await,
        "the IdP's retry ended a session started after the logout"
    );
    r1.sc.shutdown().await;
}

#[tokio::test]
async fn concurrent_deliveries_of_one_token_write_once() {
    let api = fake_api(vec![sso_user(ADA), sso_user(BOB)]).await;
    let r1 = Replica::start(&api).await;
    let now = now_unix();
    for (what, token) in [
        ("sub only", token_from("okta", None, Some(ADA), now)),
        (
            "sid and sub",
            token_from("okta", Some("idp-1"), Some(BOB), now),
        ),
    ] {
        let writes = api.writes();
        let answers = futures::future::join_all((0..8).map(|_| post_token(&r1.sc, &token))).await;
        let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{what}: one delivery acts, the others are replays: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 400),
            "{statuses:?}"
        );
        assert_eq!(
            api.writes() - writes,
            1,
            "{what}: eight concurrent deliveries of one token wrote the SsoUser more than once"
        );
    }
    assert!(api.not_before(ADA).await.is_some());
    assert_eq!(api.revoked(BOB).await, ["idp-1"]);
    r1.sc.shutdown().await;
}
