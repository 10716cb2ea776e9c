//! OIDC Back-Channel Logout at the sidecar's real endpoint, and the connections a session ending
//! cuts: logout tokens signed with locally generated keys (tests/data) and verified against an
//! in-process JWKS endpoint; a real upstream app with a WebSocket-style upgrade and an endless
//! streamed response. Every attack is a POST of a forged token that must change nothing.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
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
use gatehouse_sidecar::providers::jwks::JwksCache;
use gatehouse_sidecar::providers::{Discovered, Endpoints, TokenAuth};
use gatehouse_sidecar::{Config, Sidecar};
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

// ------------------------------------------------------------------------------------------
// Keys and tokens

fn pem(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rsa(file: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&pem(file)).expect("test key")
}

fn jwks_document() -> Value {
    let mut jwk = Jwk::from_encoding_key(&rsa("rsa-1.pem"), Algorithm::RS256).expect("JWK");
    jwk.common.key_id = Some("rsa-1".into());
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
    let upstream = app().await;
    let jwks =
        serve(Router::new().route("/jwks", get(|| async { axum::Json(jwks_document()) }))).await;
    let vars: HashMap<String, String> = HashMap::from([
        ("GATEHOUSE_PUBLIC_URL".into(), PUBLIC.into()),
        ("GATEHOUSE_COOKIE_SECRET".into(), KEY.into()),
        ("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into()),
        ("GATEHOUSE_ADMIN_LISTEN".into(), "127.0.0.2:0".into()),
        ("GATEHOUSE_UPSTREAM".into(), format!("http://{upstream}")),
        ("OKTA_CLIENT_ID".into(), CLIENT.into()),
        ("OKTA_CLIENT_SECRET".into(), "okta-secret-value".into()),
        ("OKTA_ISSUER".into(), ISSUER.into()),
        ("OKTA_ORG_ID".into(), "acme".into()),
    ]);
    let lookup = move |k: &str| vars.get(k).cloned();
    let config = Config::from_source(&lookup).expect("valid config");
    let sc = gatehouse_sidecar::start(config)
        .await
        .expect("sidecar starts");
    let cache = JwksCache::new(
        url::Url::parse(&format!("http://{jwks}/jwks")).expect("url"),
        reqwest::Client::new(),
        Duration::from_secs(30),
    );
    cache.refresh().await.expect("JWKS");
    let installed = sc.app().providers[0].set_discovered(Discovered {
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
    sc
}

fn cookie(idp_sid: &str) -> String {
    let now = now_unix();
    let session = Session {
        sid: random_token(16),
        user: "okta-0123456789abcdef".into(),
        subject: "00u1ada".into(),
        provider: "okta".into(),
        email: None,
        name: None,
        username: None,
        role: Role::Member,
        issued_at: now,
        expires_at: now + 3600,
        user_uid: None,
        idp_sid: Some(idp_sid.into()),
        validated_at: None,
    };
    let ring = KeyRing::parse(KEY).expect("ring");
    let binding = Binding::new("default", "gatehouse", PUBLIC, None);
    format!("{SESSION}={}", session.seal(&ring, &binding))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn post_form(sc: &Sidecar, body: &str) -> (u16, String) {
    let r = client()
        .post(format!("http://{}{PATH}", sc.addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn post_token(sc: &Sidecar, token: &str) -> (u16, String) {
    post_form(
        sc,
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
