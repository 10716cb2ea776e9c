//! The sidecar in process, in front of a real upstream app: the auth gate, header rules, cookies,
//! logout, WebSocket and streaming pass-through, the sign-in endpoints' edge cases, and the admin
//! port. Sessions are minted with the configured key ring (as a signed-in browser would hold them);
//! the full sign-in flow against a real IdP and browser lives in the workspace `tests/`.

mod common;

use common::harness::*;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::{any, get, post};
use futures::StreamExt;
use gatehouse_auth::cookie::{Attempt, Binding, KeyRing, random_token};
use gatehouse_auth::token::now_unix;
use gatehouse_sidecar::Sidecar;
use gatehouse_sidecar::providers::jwks::JwksCache;
use gatehouse_sidecar::providers::{Discovered, Endpoints, TokenAuth};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ------------------------------------------------------------------------------------------
// The upstream app

type Gate = Arc<Mutex<Option<futures::channel::oneshot::Receiver<()>>>>;

async fn upload(body: Body) -> Response {
    Response::new(body)
}

async fn upstream(gate: Gate) -> SocketAddr {
    let stream = move || {
        let gate = gate.clone();
        async move {
            let release = gate.lock().ok().and_then(|mut g| g.take());
            let first = futures::stream::once(async {
                Ok::<_, Infallible>(bytes::Bytes::from_static(b"first-chunk\n"))
            });
            let second = futures::stream::once(async move {
                if let Some(release) = release {
                    let _ = release.await;
                }
                Ok::<_, Infallible>(bytes::Bytes::from_static(b"second-chunk\n"))
            });
            Response::new(Body::from_stream(first.chain(second)))
        }
    };
    let router = Router::new()
        .route("/ws", get(common::echo_upgrade))
        .route("/upload", post(upload))
        .route("/stream", get(stream))
        .route(
            "/set-cookie",
            get(|| async {
                Response::builder()
                    .header(
                        "set-cookie",
                        "__Host-gatehouse-session=planted; Path=/; Secure",
                    )
                    .header("set-cookie", "app=1; Path=/")
                    .body(Body::from("ok"))
                    .unwrap_or_default()
            }),
        )
        .fallback(any(echo));
    serve_app(router).await
}

// ------------------------------------------------------------------------------------------
// The sidecar

fn discovered(token_port: u16) -> Discovered {
    let base = format!("http://127.0.0.1:{token_port}");
    Discovered {
        endpoints: Endpoints {
            authorization: url::Url::parse("https://idp.test/authorize?tenant=x").expect("url"),
            token: url::Url::parse(&format!("{base}/token")).expect("url"),
            end_session: Some(url::Url::parse("https://idp.test/logout").expect("url")),
            userinfo: None,
            iss_parameter_supported: false,
            offline_access: false,
            token_auth: TokenAuth::Basic,
        },
        jwks: JwksCache::new(
            url::Url::parse(&format!("{base}/jwks")).expect("url"),
            reqwest::Client::new(),
            Duration::from_secs(30),
        ),
    }
}

// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn without_a_session_browsers_go_to_login_and_api_clients_get_401() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let c = client();
    let r = c
        .get(url(&sc, "/reports/q3?year=2026"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/login?rd=%2Freports%2Fq3%3Fyear%3D2026"
    );

    let r = c
        .get(url(&sc, "/api/items"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthenticated");

    let r = c
        .post(url(&sc, "/api/items"))
        .body("x")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    sc.shutdown().await;
}

#[tokio::test]
async fn a_session_gets_identity_headers_and_forged_ones_never_reach_the_app() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let s = session("okta", 3600);
    let request = format!(
        "GET /whoami?x=1 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\
         Cookie: theme=dark; {}\r\nCookie: other=1; __Host-gatehouse-attempt-abc=zzz\r\n\
         X-Forwarded-User: mallory\r\nx-forwarded-user: mallory2\r\nX_Forwarded_User: mallory3\r\n\
         x-forwarded_email: m@evil.example\r\nX-FORWARDED-GROUPS: admin\r\nX-Forwarded-Org: evil\r\n\
         X-Forwarded-Provider: evil\r\nX-Forwarded-Preferred-Username: mallory\r\n\
         X-Auth-Request-Email: m@evil.example\r\nx_auth_request_user: mallory\r\n\
         X-Gatehouse-Identity: forged.jwt.value\r\nRemote-User: mallory\r\nForwarded: for=1.2.3.4;proto=http\r\n\
         X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: http\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n",
        cookie_for(&s)
    );
    let (status, _, body) = raw(sc.addr(), &request).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let echo: Value = serde_json::from_slice(&body).expect("echo json");
    assert_eq!(echo["path"], "/whoami?x=1");
    assert_eq!(header_values(&echo, "x-forwarded-user"), [s.user.as_str()]);
    assert_eq!(
        header_values(&echo, "x-forwarded-email"),
        ["ada@example.com"]
    );
    assert_eq!(
        header_values(&echo, "x-forwarded-preferred-username"),
        ["ada"]
    );
    assert_eq!(header_values(&echo, "x-forwarded-groups"), ["admin"]);
    assert_eq!(header_values(&echo, "x-forwarded-org"), ["acme"]);
    assert_eq!(header_values(&echo, "x-forwarded-provider"), ["okta"]);
    assert_eq!(header_values(&echo, "x-forwarded-proto"), ["https"]);
    assert_eq!(header_values(&echo, "x-forwarded-host"), ["app.test"]);
    assert_eq!(
        header_values(&echo, "x-forwarded-for"),
        ["198.51.100.7, 127.0.0.1"]
    );
    assert_eq!(header_values(&echo, "cookie"), ["theme=dark; other=1"]);
    let identity = header_values(&echo, "x-gatehouse-identity");
    assert_eq!(identity.len(), 1);
    assert_ne!(identity[0], "forged.jwt.value");
    for name in echo["headers"].as_object().expect("headers").keys() {
        let n = name.replace('_', "-");
        assert!(
            !n.starts_with("x-auth-request") && n != "remote-user" && n != "forwarded",
            "{name} reached the app"
        );
    }
    let all = serde_json::to_string(&echo).expect("json");
    assert!(!all.contains("mallory") && !all.contains("evil"), "{all}");
    sc.shutdown().await;
}

/// Hardening issue, defect 3: a client that names the identity headers in `Connection` must not
/// get them removed after the sidecar added them (hop-by-hop stripping comes first).
#[tokio::test]
async fn a_client_cannot_strip_the_identity_headers_by_naming_them_hop_by_hop() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let s = session("okta", 3600);
    let request = format!(
        "GET /whoami HTTP/1.1\r\nHost: app.test\r\n\
         Connection: close, x-forwarded-user, x-forwarded-groups, X-Gatehouse-Identity, \
         x-forwarded-email, x-forwarded-for, x-forwarded-proto, x-forwarded-host, x-forwarded-org, \
         x-forwarded-provider, x-forwarded-preferred-username\r\n\
         Cookie: {}\r\nX-Hop: gone\r\nConnection: x-hop\r\n\r\n",
        cookie_for(&s)
    );
    let (status, _, body) = raw(sc.addr(), &request).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let echo: Value = serde_json::from_slice(&body).expect("echo json");
    assert_eq!(header_values(&echo, "x-forwarded-user"), [s.user.as_str()]);
    assert_eq!(header_values(&echo, "x-forwarded-groups"), ["admin"]);
    assert_eq!(
        header_values(&echo, "x-forwarded-email"),
        ["ada@example.com"]
    );
    assert_eq!(header_values(&echo, "x-forwarded-org"), ["acme"]);
    assert_eq!(header_values(&echo, "x-forwarded-provider"), ["okta"]);
    assert_eq!(header_values(&echo, "x-forwarded-proto"), ["https"]);
    assert_eq!(header_values(&echo, "x-forwarded-host"), ["app.test"]);
    assert_eq!(header_values(&echo, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(header_values(&echo, "x-gatehouse-identity").len(), 1);
    // The client's own hop-by-hop header still goes.
    assert!(header_values(&echo, "x-hop").is_empty(), "{echo}");
    sc.shutdown().await;
}

#[tokio::test]
async fn identity_jwt_verifies_against_the_sidecar_jwks_and_is_cached() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let c = client();
    let s = session("okta", 3600);
    let jwt = |echo: Value| header_values(&echo, "x-gatehouse-identity")[0].to_owned();
    let get = || {
        c.get(url(&sc, "/x"))
            .header("cookie", cookie_for(&s))
            .send()
    };
    let first = jwt(get().await.expect("send").json().await.expect("json"));
    let second = jwt(get().await.expect("send").json().await.expect("json"));
    assert_eq!(
        first, second,
        "the JWT is cached per session, not signed per request"
    );

    let jwks: jsonwebtoken::jwk::JwkSet = c
        .get(url(&sc, "/.well-known/gatehouse/jwks.json"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("jwks");
    let header = jsonwebtoken::decode_header(&first).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("key published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[PUBLIC]);
    validation.set_issuer(&[PUBLIC]);
    let claims = jsonwebtoken::decode::<Value>(
        &first,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("identity JWT verifies")
    .claims;
    assert_eq!(claims["sub"], s.user.as_str());
    assert_eq!(claims["role"], "admin");
    assert_eq!(claims["org"], "acme");
    assert_eq!(claims["provider"], "okta");
    assert_eq!(claims["idp_sub"], "00u1ada");
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    assert!((1..=120).contains(&lifetime), "short-lived: {lifetime}s");
    sc.shutdown().await;
}

#[tokio::test]
async fn tampered_foreign_expired_and_oversized_cookies_are_no_session() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let c = client();
    let status = |cookie: String| {
        let c = c.clone();
        let u = url(&sc, "/x");
        async move {
            c.get(u)
                .header("cookie", cookie)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let s = session("okta", 3600);
    let good = cookie_for(&s);
    assert_eq!(status(good.clone()).await, 200);

    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        status(String::from_utf8(tampered).expect("ascii")).await,
        401
    );
    assert_eq!(status(good[..good.len() - 10].to_owned()).await, 401);

    let ring = KeyRing::parse(KEY).expect("ring");
    let other_app = Binding::new("default", "billing", PUBLIC, None);
    assert_eq!(
        status(format!("{SESSION}={}", s.seal(&ring, &other_app))).await,
        401
    );
    let other_key = KeyRing::parse("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=").expect("ring");
    assert_eq!(
        status(format!("{SESSION}={}", s.seal(&other_key, &binding()))).await,
        401
    );
    assert_eq!(status(cookie_for(&session("okta", -1))).await, 401);
    assert_eq!(
        status(cookie_for(&session("retired-provider", 3600))).await,
        401
    );
    // The http spelling is not accepted on an https app.
    assert_eq!(status(good.replace("__Host-", "")).await, 401);

    // 100 KB cookie: refused before the app (431 from the header limit).
    let huge = format!("{SESSION}={}", "A".repeat(100 * 1024));
    let code = status(huge).await;
    assert!(code == 431 || code == 401, "got {code}");
    // 3 KB of junk under our name: no session.
    assert_eq!(status(format!("{SESSION}={}", "A".repeat(3000))).await, 401);
    sc.shutdown().await;
}

#[tokio::test]
async fn key_rotation_keeps_existing_sessions() {
    let new_key = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let ring = format!("{new_key},{KEY}");
    let sc = sidecar(
        upstream(Gate::default()).await,
        &[("GATEHOUSE_COOKIE_SECRET", ring.as_str())],
    )
    .await;
    let r = client()
        .get(url(&sc, "/x"))
        .header("cookie", cookie_for(&session("okta", 3600)))
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        200,
        "a cookie sealed with the old key still works"
    );
    sc.shutdown().await;
}

#[tokio::test]
async fn logout_ends_the_session_and_a_replayed_cookie_is_refused() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let c = client();
    let cookie = cookie_for(&session("okta", 3600));
    let r = c
        .get(url(&sc, "/api/auth/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["authenticated"], true);
    assert_eq!(me["user"]["role"], "admin");
    assert_eq!(me["user"]["org"], "acme");
    assert!(!me.to_string().contains("token"), "{me}");

    let r = c
        .post(url(&sc, "/api/auth/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 303);
    // The provider is not discovered here, so no RP-initiated logout: straight to the login page.
    assert_eq!(r.headers()["location"], "/login?state=signed-out");
    let set: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        set.iter()
            .any(|c| c.starts_with(&format!("{SESSION}=;")) && c.contains("Max-Age=0")),
        "{set:?}"
    );

    let r = c
        .get(url(&sc, "/api/auth/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let r = c
        .get(url(&sc, "/x"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401, "replayed cookie after logout");

    let page = c
        .get(url(&sc, "/login?state=signed-out"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(page.contains("You have signed out"));
    sc.shutdown().await;
}

#[tokio::test]
async fn logout_with_rp_initiated_logout_goes_to_the_idp() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    assert!(sc.app().providers[0].set_discovered(discovered(9)));
    let r = client()
        .get(url(&sc, "/api/auth/logout"))
        .header("sec-fetch-site", "same-origin")
        .header("cookie", cookie_for(&session("okta", 3600)))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 302);
    let location = url::Url::parse(r.headers()["location"].to_str().expect("ascii")).expect("url");
    assert_eq!(location.path(), "/logout");
    let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(q["post_logout_redirect_uri"], "https://app.test/login");
    assert_eq!(q["client_id"], "okta-client");
    assert_eq!(q["state"], "signed-out");
    sc.shutdown().await;
}

#[tokio::test]
async fn skip_auth_matches_the_canonical_path_only() {
    let sc = sidecar(
        upstream(Gate::default()).await,
        &[("GATEHOUSE_SKIP_AUTH", "/healthz,/public/")],
    )
    .await;
    let cases = [
        ("/healthz", 200),
        ("/healthz/live", 200),
        ("/%68ealthz", 200),
        ("/public/app.css", 200),
        ("/healthzz", 401),
        ("/public", 401),
        ("/HEALTHZ", 401),
        ("/healthz/../admin", 401),
        ("/healthz/%2e%2e/admin", 401),
        ("/healthz%2f..%2fadmin", 401),
        ("/public/..;/admin", 401),
        ("/public//admin", 401),
        ("/public\\..\\admin", 401),
    ];
    for (path, expected) in cases {
        let (status, _, body) = raw(
            sc.addr(),
            &format!("GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, expected, "{path}");
        if status == 200 {
            let echo: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(echo["path"], path, "forwarded byte for byte");
            assert!(header_values(&echo, "x-forwarded-user").is_empty());
        }
    }
    sc.shutdown().await;
}

#[tokio::test]
async fn upstream_down_is_a_clean_502() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let sc = sidecar(closed, &[]).await;
    let c = client();
    let cookie = cookie_for(&session("okta", 3600));
    let r = c
        .get(url(&sc, "/x"))
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 502);
    let page = r.text().await.expect("text");
    assert!(page.contains("not responding"));
    for leak in [
        "127.0.0.1",
        "refused",
        "error",
        "hyper",
        &closed.port().to_string(),
    ] {
        assert!(!page.contains(leak), "502 page leaks `{leak}`");
    }
    let r = c
        .get(url(&sc, "/x"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 502);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "upstream_unavailable"
    );
    sc.shutdown().await;
}

#[tokio::test]
async fn websocket_upgrades_pass_through_and_need_a_session() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let handshake = |cookie: &str| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAccept: text/html\r\n{cookie}\r\n"
        )
    };
    let (status, _, _) = raw(sc.addr(), &handshake("")).await;
    assert_eq!(status, 401, "no redirect for WebSocket clients");

    let mut stream = TcpStream::connect(sc.addr()).await.expect("connect");
    let cookie = format!("Cookie: {}\r\n", cookie_for(&session("okta", 3600)));
    stream
        .write_all(handshake(&cookie).as_bytes())
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("timely")
            .expect("read");
        assert_eq!(n, 1, "connection closed during handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for message in [
        &b"hello through the sidecar"[..],
        &[0u8, 1, 2, 255, 254][..],
    ] {
        stream.write_all(message).await.expect("write");
        let mut back = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
            .await
            .expect("timely")
            .expect("read");
        assert_eq!(back, message);
    }
    sc.shutdown().await;
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let (release, gate) = futures::channel::oneshot::channel();
    let sc = sidecar(upstream(Arc::new(Mutex::new(Some(gate)))).await, &[]).await;
    let c = client();
    let cookie = cookie_for(&session("okta", 3600));

    // 8 MiB up and back.
    let payload: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let r = c
        .post(url(&sc, "/upload"))
        .header("cookie", &cookie)
        .body(payload.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes().await.expect("body") == payload,
        "body round-trips intact"
    );

    // The first chunk arrives while the app is still holding back the second.
    let mut r = c
        .get(url(&sc, "/stream"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .expect("first chunk in time")
        .expect("chunk");
    assert_eq!(first.as_deref(), Some(&b"first-chunk\n"[..]));
    let _ = release.send(());
    let rest = r.bytes().await.expect("rest");
    assert_eq!(&rest[..], b"second-chunk\n");
    sc.shutdown().await;
}

#[tokio::test]
async fn the_app_cannot_plant_the_session_cookie() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let r = client()
        .get(url(&sc, "/set-cookie"))
        .header("cookie", cookie_for(&session("okta", 3600)))
        .send()
        .await
        .expect("send");
    let set: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(set, ["app=1; Path=/"]);
    sc.shutdown().await;
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_without_identity() {
    let sc = sidecar(
        upstream(Gate::default()).await,
        &[
            ("GATEHOUSE_AUTH_MODE", "optional"),
            ("AUTH_EXCLUSIVE_PROVIDER", "okta"),
            ("GATEHOUSE_APP_LOGIN_PATH", "/app/login"),
        ],
    )
    .await;
    let c = client();
    let r = c
        .get(url(&sc, "/dashboard"))
        .header("accept", "text/html")
        .header("x-forwarded-user", "mallory")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.expect("json");
    assert!(header_values(&echo, "x-forwarded-user").is_empty());

    // The app's own login page goes to the exclusive provider, unless break-glass.
    let r = c.get(url(&sc, "/app/login")).send().await.expect("send");
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/api/auth/oauth2/start/okta?rd=%2F"
    );
    let r = c
        .get(url(&sc, "/app/login?providers=all"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json")["path"],
        "/app/login?providers=all"
    );

    // With a session the identity is added.
    let r = c
        .get(url(&sc, "/dashboard"))
        .header("cookie", cookie_for(&session("okta", 3600)))
        .send()
        .await
        .expect("send");
    let echo: Value = r.json().await.expect("json");
    assert_eq!(header_values(&echo, "x-forwarded-groups"), ["admin"]);
    sc.shutdown().await;
}

#[tokio::test]
async fn login_page_providers_exclusive_mode_and_break_glass() {
    let oidc = [
        ("OIDC_PROVIDER_ID", "auth0"),
        ("OIDC_PROVIDER_NAME", "Auth0"),
        ("OIDC_CLIENT_ID", "a"),
        ("OIDC_CLIENT_SECRET", "b"),
        ("OIDC_ISSUER", "http://127.0.0.1:9/auth0"),
        ("OIDC_ORG_ID", "acme"),
        ("OIDC_DEFAULT_ROLE", "member"),
        ("GATEHOUSE_APP_LOGIN_PATH", "/app/login"),
    ];
    let up = upstream(Gate::default()).await;
    let sc = sidecar(up, &oidc).await;
    let c = client();
    let r = c
        .get(url(&sc, "/login?rd=%2Fdocs"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    let page = r.text().await.expect("text");
    assert!(
        page.contains("href=\"/api/auth/oauth2/start/okta?rd=%2Fdocs\""),
        "{page}"
    );
    assert!(page.contains("href=\"/api/auth/oauth2/start/auth0?rd=%2Fdocs\""));
    assert!(page.contains("Sign in with Auth0"));
    assert!(page.contains("href=\"/app/login\""));
    assert!(!page.contains("<script"));
    // Friendly message per denial reason; unknown codes are not reflected.
    let page = c
        .get(url(&sc, "/login?error=role_not_mapped"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(page.contains("does not have a role"));
    let page = c
        .get(url(&sc, "/login?error=%3Cscript%3E"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(!page.contains("<script>"));
    // Open redirect attempts in rd are neutralized on the page.
    let page = c
        .get(url(&sc, "/login?rd=%2F%2Fevil.example"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(page.contains("start/okta?rd=%2F\""), "{page}");
    sc.shutdown().await;

    let mut exclusive = oidc.to_vec();
    exclusive.push(("AUTH_EXCLUSIVE_PROVIDER", "auth0"));
    let sc = sidecar(up, &exclusive).await;
    let r = c
        .get(url(&sc, "/login?rd=%2Fdocs"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/api/auth/oauth2/start/auth0?rd=%2Fdocs"
    );
    let page = c
        .get(url(&sc, "/login?providers=all"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(page.contains("start/okta") && page.contains("start/auth0"));
    assert!(page.contains("href=\"/app/login?providers=all\""));
    // After a denial the exclusive page explains instead of bouncing back to the IdP.
    let r = c
        .get(url(&sc, "/login?error=role_not_mapped"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("text");
    assert!(
        page.contains("start/auth0")
            && !page.contains("start/okta")
            && !page.contains("/app/login")
    );
    sc.shutdown().await;
}

#[tokio::test]
async fn sign_in_start_and_callback_edge_cases() {
    // A closed port stands for the token endpoint: no fake IdP, the exchange simply fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let c = client();
    let admin = |path: &str| format!("http://{}{path}", sc.admin_addr());

    // Not discovered yet: start is unavailable and the sidecar is not ready (but healthy).
    assert_eq!(
        c.get(url(&sc, "/api/auth/oauth2/start/okta"))
            .send()
            .await
            .expect("send")
            .status(),
        503
    );
    assert_eq!(
        c.get(admin("/healthz"))
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    let r = c.get(admin("/readyz")).send().await.expect("send");
    assert_eq!(r.status(), 503);
    assert!(r.text().await.expect("text").contains("okta"));

    assert!(sc.app().providers[0].set_discovered(discovered(closed)));
    assert_eq!(
        c.get(admin("/readyz")).send().await.expect("send").status(),
        200
    );
    assert_eq!(
        c.get(url(&sc, "/api/auth/oauth2/start/nope"))
            .send()
            .await
            .expect("send")
            .status(),
        404
    );
    assert_eq!(
        c.get(url(&sc, "/api/auth/oauth2/other"))
            .send()
            .await
            .expect("send")
            .status(),
        404
    );

    // Start: PKCE S256, state, nonce, exact redirect URI, a sealed attempt cookie.
    let r = c
        .get(url(
            &sc,
            "/api/auth/oauth2/start/okta?rd=%2F%2Fevil.example",
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 302);
    let location = url::Url::parse(r.headers()["location"].to_str().expect("ascii")).expect("url");
    assert_eq!(location.host_str(), Some("idp.test"));
    let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(
        q["tenant"], "x",
        "existing query of the authorization endpoint kept"
    );
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "okta-client");
    assert_eq!(
        q["redirect_uri"],
        "https://app.test/api/auth/oauth2/callback/okta"
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let state = q["state"].clone();
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    assert_eq!(set.len(), 1);
    let attempt_cookie = set[0].split(';').next().expect("pair").to_owned();
    assert!(attempt_cookie.starts_with(&format!("__Host-gatehouse-attempt-{}", &state[..16])));
    for attr in [
        "Path=/",
        "Max-Age=600",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    ] {
        assert!(set[0].contains(attr), "{attr} in {}", set[0]);
    }
    assert!(!set[0].contains("Domain"));
    let ring = KeyRing::parse(KEY).expect("ring");
    let sealed = attempt_cookie.split_once('=').expect("pair").1;
    let attempt = Attempt::unseal(&ring, &binding(), sealed, now_unix()).expect("sealed attempt");
    assert_eq!(attempt.rd, "/", "open redirect neutralized at start");
    assert_eq!(attempt.code_challenge(), q["code_challenge"]);
    assert_eq!(attempt.nonce, q["nonce"]);

    // At most three attempt cookies: the oldest goes.
    let mut jar = Vec::new();
    for i in 0..3 {
        let mut a = Attempt::new("okta", "/", now_unix() - 100 + i);
        a.state = format!("{i}{}", &random_token(32)[1..]);
        jar.push(format!(
            "__Host-gatehouse-attempt-{}={}",
            &a.state[..16],
            a.seal(&ring, &binding())
        ));
    }
    let r = c
        .get(url(&sc, "/api/auth/oauth2/start/okta"))
        .header("cookie", jar.join("; "))
        .send()
        .await
        .expect("send");
    let set: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(set.len(), 2, "{set:?}");
    let oldest_name = jar[0].split('=').next().expect("name");
    assert!(
        set.iter()
            .any(|c| c.starts_with(&format!("{oldest_name}=;")) && c.contains("Max-Age=0")),
        "{set:?}"
    );

    // Callback without state, with a foreign state, with an IdP error, with a wrong iss.
    let callback = |query: &str, cookie: &str| {
        c.get(url(&sc, &format!("/api/auth/oauth2/callback/okta?{query}")))
            .header("cookie", cookie.to_owned())
            .send()
    };
    assert_eq!(
        callback("code=abc", &attempt_cookie)
            .await
            .expect("send")
            .status(),
        400
    );
    let other = format!("{}{}", &state[..16], "x".repeat(27));
    assert_eq!(
        callback(&format!("code=abc&state={other}"), &attempt_cookie)
            .await
            .expect("send")
            .status(),
        400
    );
    let r = callback(&format!("code=abc&state={state}"), "")
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .expect("text")
            .contains("expired or was started in another browser")
    );

    let fresh = |rd: &str| {
        let a = Attempt::new("okta", rd, now_unix());
        let cookie = format!(
            "__Host-gatehouse-attempt-{}={}",
            &a.state[..16],
            a.seal(&ring, &binding())
        );
        (a.state, cookie)
    };
    let (s1, k1) = fresh("/");
    let r = callback(&format!("error=access_denied&state={s1}"), &k1)
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    let (s2, k2) = fresh("/");
    assert_eq!(
        callback(
            &format!("code=abc&state={s2}&iss=https%3A%2F%2Fevil.test"),
            &k2
        )
        .await
        .expect("send")
        .status(),
        400
    );

    // A well-formed callback reaches the (unreachable) token endpoint once; its replay is refused.
    let (s3, k3) = fresh("/after");
    let r = callback(&format!("code=abc&state={s3}"), &k3)
        .await
        .expect("send");
    assert_eq!(r.status(), 502);
    let set: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        set.iter().any(|c| c.contains("Max-Age=0")),
        "attempt cookie cleared: {set:?}"
    );
    assert!(
        !set.iter().any(|c| c.starts_with(SESSION)),
        "no session: {set:?}"
    );
    let r = callback(&format!("code=abc&state={s3}"), &k3)
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("text").contains("already used"));

    // A session-purpose cookie cannot stand in for an attempt.
    let fake = format!(
        "__Host-gatehouse-attempt-{}={}",
        &s3[..16],
        session("okta", 60).seal(&ring, &binding())
    );
    assert_eq!(
        callback(&format!("code=abc&state={s3}"), &fake)
            .await
            .expect("send")
            .status(),
        400
    );

    let metrics = c
        .get(admin("/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    for line in [
        "gatehouse_sign_ins_total{provider=\"okta\",outcome=\"failed\"}",
        "gatehouse_sign_in_denials_total{reason=\"state_replayed\"} 1",
        "gatehouse_sign_in_denials_total{reason=\"idp_denied\"} 1",
        "gatehouse_sign_in_denials_total{reason=\"exchange_failed\"} 1",
        "gatehouse_http_requests_total{handler=\"auth\",class=\"4xx\"}",
        "gatehouse_provider_ready{provider=\"okta\"}",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    // The samples only: a HELP text may well hold "metadata".
    let samples: String = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !samples.contains("ada") && !samples.contains("00u1"),
        "no user data in labels"
    );
    sc.shutdown().await;
}

#[tokio::test]
async fn method_rules_on_sidecar_routes() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let c = client();
    let r = c.delete(url(&sc, "/login")).send().await.expect("send");
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    assert_eq!(
        c.post(url(&sc, "/api/auth/session"))
            .send()
            .await
            .expect("send")
            .status(),
        405
    );
    assert_eq!(
        c.get(url(&sc, "/api/auth/session"))
            .send()
            .await
            .expect("send")
            .status(),
        401
    );
    sc.shutdown().await;
}

#[tokio::test]
async fn rotated_cookie_key_file_applies_without_restart() {
    let new_key = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let dir = std::env::temp_dir().join(format!("gatehouse-gate-{}", random_token(6)));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("cookie-keys");
    std::fs::write(&file, format!("{KEY}\n")).expect("write");
    let path = file.display().to_string();
    let sc = sidecar(
        upstream(Gate::default()).await,
        &[
            ("GATEHOUSE_COOKIE_SECRET", ""),
            ("GATEHOUSE_COOKIE_SECRET_FILE", path.as_str()),
        ],
    )
    .await;
    let c = client();
    let status = |ring: &str| {
        let ring = KeyRing::parse(ring).expect("ring");
        let cookie = format!(
            "{SESSION}={}",
            session("okta", 3600).seal(&ring, &binding())
        );
        let req = c.get(url(&sc, "/x")).header("cookie", cookie);
        async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    assert_eq!(status(KEY).await, 200);
    assert_eq!(status(new_key).await, 401, "not yet in the ring");

    // The mounted Secret gains a new first key: new and old cookies both work.
    std::fs::write(&file, format!("{new_key},{KEY}\n")).expect("write");
    sc.app().reload_secrets().await;
    assert_eq!(status(new_key).await, 200);
    assert_eq!(status(KEY).await, 200);

    // Invalid content is ignored; the ring stays.
    std::fs::write(&file, "not-a-key\n").expect("write");
    sc.app().reload_secrets().await;
    assert_eq!(status(KEY).await, 200);

    // The old key is retired: its cookies stop working (no stale cache).
    std::fs::write(&file, format!("{new_key}\n")).expect("write");
    sc.app().reload_secrets().await;
    assert_eq!(status(new_key).await, 200);
    assert_eq!(status(KEY).await, 401);
    sc.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// An app that counts the requests it sees and the bodies it reads to the end, and echoes the
/// length of each whole body.
async fn counting_upstream() -> (
    SocketAddr,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = Arc::new(AtomicUsize::new(0));
    let whole = Arc::new(AtomicUsize::new(0));
    let (s, w) = (seen.clone(), whole.clone());
    let router = Router::new().route(
        "/upload",
        post(move |body: Body| {
            let (seen, whole) = (s.clone(), w.clone());
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(bytes) => {
                        whole.fetch_add(1, Ordering::SeqCst);
                        bytes.len().to_string()
                    }
                    Err(_) => "aborted".to_owned(),
                }
            }
        }),
    );
    (serve_app(router).await, seen, whole)
}

/// A request body of `count` chunks of `size` bytes, sent without a declared length.
fn chunked(count: usize, size: usize) -> reqwest::Body {
    let frames = futures::stream::iter((0..count).map(move |_| {
        Ok::<_, Infallible>(hyper::body::Frame::data(bytes::Bytes::from(vec![
            b'b';
            size
        ])))
    }));
    reqwest::Body::wrap(http_body_util::StreamBody::new(frames))
}

#[tokio::test]
async fn request_bodies_over_the_limit_or_stalled_never_reach_the_app_whole() {
    use std::sync::atomic::Ordering;
    let (app, seen, whole) = counting_upstream().await;
    let sc = sidecar(
        app,
        &[
            ("GATEHOUSE_MAX_REQUEST_BODY", "64Ki"),
            ("GATEHOUSE_REQUEST_BODY_TIMEOUT", "1s"),
        ],
    )
    .await;
    let c = client();
    let cookie = cookie_for(&session("okta", 3600));
    let limit = 64 * 1024;

    // Exactly the limit passes, declared or chunked.
    let r = c
        .post(url(&sc, "/upload"))
        .header("cookie", &cookie)
        .body(vec![b'a'; limit])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), limit.to_string());
    let chunks = chunked(16, limit / 16);
    let r = c
        .post(url(&sc, "/upload"))
        .header("cookie", &cookie)
        .body(chunks)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), limit.to_string());
    assert_eq!(
        (seen.load(Ordering::SeqCst), whole.load(Ordering::SeqCst)),
        (2, 2)
    );

    // A declared length one byte over: refused at the head, before any of the body is read or
    // the app hears of it; JSON for API clients, a page for browsers. (Raw exchanges: a client
    // library still writing the body may see the connection close before it reads the answer.)
    let over = |accept: &str| {
        format!(
            "POST /upload HTTP/1.1\r\nhost: app.test\r\ncookie: {cookie}\r\naccept: {accept}\r\n\
             content-length: {}\r\n\r\n",
            limit + 1
        )
    };
    let (status, _, body) = raw(sc.addr(), &over("application/json")).await;
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("request_body_too_large"));
    let (status, _, body) = raw(sc.addr(), &over("text/html")).await;
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("Upload too large"));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "the app saw an oversized request"
    );

    // Chunked, no length declared: cut off where it crosses the limit; the app never gets a
    // whole body.
    let flood = chunked(64, 16 * 1024);
    let r = c
        .post(url(&sc, "/upload"))
        .header("cookie", &cookie)
        .body(flood)
        .send()
        .await;
    // The sidecar answers 413 and closes; a client still writing may see the close first.
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
    assert_eq!(
        whole.load(Ordering::SeqCst),
        2,
        "the app read a flood to the end"
    );

    // A body that stops arriving: 408 once the pause passes the timeout.
    let started = std::time::Instant::now();
    let (status, _, body) = raw(
        sc.addr(),
        &format!(
            "POST /upload HTTP/1.1\r\nhost: app.test\r\ncookie: {cookie}\r\n\
             content-length: 1000\r\n\r\nonly-the-start"
        ),
    )
    .await;
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("request_body_timeout"));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        whole.load(Ordering::SeqCst),
        2,
        "the app got a stalled body whole"
    );

    // Without a session nothing is read or sent on, whatever the size.
    let before = seen.load(Ordering::SeqCst);
    let (status, _, _) = raw(
        sc.addr(),
        "POST /upload HTTP/1.1\r\nhost: app.test\r\ncontent-length: 1000000000\r\n\r\n",
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        before,
        "an anonymous upload reached the app"
    );
    sc.shutdown().await;
}

/// Sets its flag when dropped.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_the_app_released() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // An app answering with an endless body; `released` turns true once nobody takes it any more.
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    let router = Router::new().route(
        "/endless",
        get(move || {
            let guard = DropFlag(flag.clone());
            async move {
                let endless = futures::stream::unfold(guard, |guard| async move {
                    let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
                    Some((Ok::<_, Infallible>(chunk), guard))
                });
                Response::new(Body::from_stream(endless))
            }
        }),
    );
    let sc = sidecar(serve_app(router).await, &[("GATEHOUSE_SEND_TIMEOUT", "1s")]).await;
    let cookie = cookie_for(&session("okta", 3600));

    let mut stream = TcpStream::connect(sc.addr()).await.expect("connect");
    stream
        .write_all(
            format!("GET /endless HTTP/1.1\r\nhost: app.test\r\ncookie: {cookie}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
    // A reading client gets the body as long as it reads.
    let mut taken = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while taken < 4 * 1024 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("data keeps coming while the client reads")
            .expect("read");
        assert!(n > 0, "the sidecar closed a connection whose client reads");
        taken += n;
    }
    assert!(
        !released.load(Ordering::SeqCst),
        "the app's response ended early"
    );

    // Then it stops reading: once the socket buffers are full and a write has waited 1 s, the
    // sidecar drops the connection, and with it the app's response.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !released.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "a client that stopped reading still holds the app's response after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(stream);
    sc.shutdown().await;
}

/// An app whose `/wait/{ms}` answers after `ms` milliseconds, and whose `/trickle` sends its head
/// at once and the rest of its body 2 s later.
async fn slow_app() -> SocketAddr {
    let router = Router::new()
        .route(
            "/wait/{ms}",
            get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "late but here"
                },
            ),
        )
        .route(
            "/trickle",
            get(|| async {
                let first = futures::stream::once(async {
                    Ok::<_, Infallible>(bytes::Bytes::from_static(b"head-then-"))
                });
                let second = futures::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok::<_, Infallible>(bytes::Bytes::from_static(b"tail"))
                });
                Response::new(Body::from_stream(first.chain(second)))
            }),
        );
    serve_app(router).await
}

#[tokio::test]
async fn an_app_slower_than_the_response_timeout_is_answered_504() {
    let sc = sidecar(
        slow_app().await,
        &[("GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT", "1s")],
    )
    .await;
    let c = client();
    let cookie = cookie_for(&session("okta", 3600));

    let r = c
        .get(url(&sc, "/wait/5000"))
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 504);
    let page = r.text().await.expect("text");
    assert!(page.contains("took too long"), "{page}");
    assert!(
        !page.contains("127.0.0.1") && !page.contains("1s"),
        "{page}"
    );

    let r = c
        .get(url(&sc, "/wait/5000"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 504);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "upstream_timeout"
    );

    // Within the limit: the app's answer.
    let r = c
        .get(url(&sc, "/wait/10"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    // The limit is on the response head: a body that takes longer still arrives whole.
    let r = c
        .get(url(&sc, "/trickle"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "head-then-tail");

    let metrics = client()
        .get(format!("http://{}/metrics", sc.admin_addr()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("gatehouse_http_requests_total{handler=\"proxy\",class=\"5xx\"} 2"),
        "{metrics}"
    );
    sc.shutdown().await;
}

#[tokio::test]
async fn without_a_response_timeout_a_slow_app_is_waited_for() {
    let sc = sidecar(slow_app().await, &[]).await;
    let r = client()
        .get(url(&sc, "/wait/1500"))
        .header("cookie", cookie_for(&session("okta", 3600)))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "late but here");
    sc.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// Logout from another site (hardening #6): the browser says where a request comes from
// (`Sec-Fetch-Site`, `Origin`); what another site makes it send ends nothing.

/// Headers a browser sends with a request, as (name, value).
type BrowserHeaders = Vec<(&'static str, &'static str)>;

/// `method` on `/api/auth/logout` with `cookie` and `headers`, as a browser would send it.
async fn logout_request(
    sc: &Sidecar,
    method: reqwest::Method,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client().request(method, url(sc, "/api/auth/logout"));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("send")
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// Whether `cookie`'s session is still valid at the sidecar.
async fn session_valid(sc: &Sidecar, cookie: &str) -> bool {
    client()
        .get(url(sc, "/api/auth/session"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("send")
        .status()
        == 200
}

/// The confirmation page's form: a POST back to the logout path, nothing else to submit.
fn is_confirmation_page(body: &str) -> bool {
    body.contains("<form method=\"post\" action=\"/api/auth/logout\">")
        && body.contains("<button")
        && !body.contains("<script")
}

#[tokio::test]
async fn a_cross_site_request_to_logout_ends_nothing() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    // With RP-initiated logout offered, a forged logout would also sign the user out at the IdP.
    assert!(sc.app().providers[0].set_discovered(discovered(9)));
    let cookie = cookie_for(&session("okta", 3600));
    use reqwest::Method;
    let attacks: Vec<(&str, Method, BrowserHeaders)> = vec![
        (
            "a link, redirect or image on another site",
            Method::GET,
            vec![
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
            ],
        ),
        (
            "a link on a sibling subdomain",
            Method::GET,
            vec![("sec-fetch-site", "same-site")],
        ),
        ("a browser without fetch metadata", Method::GET, vec![]),
        (
            "an old browser's form on another site",
            Method::POST,
            vec![("origin", "https://evil.example")],
        ),
        (
            "a form on another site",
            Method::POST,
            vec![
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
        (
            "a form on a sibling subdomain",
            Method::POST,
            vec![
                ("origin", "https://evil.app.test"),
                ("sec-fetch-site", "same-site"),
            ],
        ),
        (
            "the same host over plain http",
            Method::POST,
            vec![("origin", "http://app.test")],
        ),
        (
            "a sandboxed frame's form (Origin: null)",
            Method::POST,
            vec![("origin", "null")],
        ),
        (
            "fetch metadata alone",
            Method::POST,
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "same-origin fetch metadata with a foreign Origin",
            Method::POST,
            vec![
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ),
    ];
    for (name, method, headers) in attacks {
        let post = method == Method::POST;
        let r = logout_request(&sc, method, Some(&cookie), &headers).await;
        let status = r.status().as_u16();
        assert_eq!(status, if post { 403 } else { 200 }, "{name}");
        assert!(
            r.headers().get("location").is_none(),
            "{name}: no redirect to the IdP"
        );
        assert_eq!(
            set_cookies(&r),
            Vec::<String>::new(),
            "{name}: no cookie touched"
        );
        let body = r.text().await.expect("text");
        assert!(
            is_confirmation_page(&body),
            "{name}: the page asks instead: {body}"
        );
        assert!(
            session_valid(&sc, &cookie).await,
            "{name}: a request from another site ended the session"
        );
    }
    sc.shutdown().await;
}

#[tokio::test]
async fn a_same_origin_logout_ends_the_session() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    use reqwest::Method;
    let cases: Vec<(&str, Method, BrowserHeaders, u16)> = vec![
        (
            "the app's sign-out button",
            Method::POST,
            vec![("origin", PUBLIC), ("sec-fetch-site", "same-origin")],
            303,
        ),
        (
            "a form on a page with Referrer-Policy: no-referrer (Origin: null)",
            Method::POST,
            vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
            303,
        ),
        (
            "a browser without fetch metadata",
            Method::POST,
            vec![("origin", PUBLIC)],
            303,
        ),
        ("a client that is no browser", Method::POST, vec![], 303),
        (
            "the app's sign-out link",
            Method::GET,
            vec![
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-mode", "navigate"),
            ],
            302,
        ),
        (
            "the address typed, or a bookmark",
            Method::GET,
            vec![("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")],
            302,
        ),
    ];
    for (name, method, headers, status) in cases {
        let cookie = cookie_for(&session("okta", 3600));
        assert!(session_valid(&sc, &cookie).await);
        let r = logout_request(&sc, method, Some(&cookie), &headers).await;
        assert_eq!(r.status().as_u16(), status, "{name}");
        assert_eq!(r.headers()["location"], "/login?state=signed-out", "{name}");
        assert!(
            set_cookies(&r)
                .iter()
                .any(|c| c.starts_with(&format!("{SESSION}=;")) && c.contains("Max-Age=0")),
            "{name}: the cookie is deleted"
        );
        assert!(
            !session_valid(&sc, &cookie).await,
            "{name}: the session ended"
        );
    }
    sc.shutdown().await;
}

#[tokio::test]
async fn the_confirmation_page_signs_out_with_one_same_origin_post() {
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let cookie = cookie_for(&session("okta", 3600));
    let r = logout_request(
        &sc,
        reqwest::Method::GET,
        Some(&cookie),
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    // The form's POST carries the page's origin even where the browser sends no fetch metadata
    // (under `no-referrer` it would send `Origin: null`).
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY", "never framed (clickjacking)");
    assert!(
        h["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("frame-ancestors 'none'")
    );
    let body = r.text().await.expect("text");
    assert!(is_confirmation_page(&body), "{body}");
    assert!(
        body.contains("<meta name=\"referrer\" content=\"same-origin\">"),
        "{body}"
    );
    assert!(body.contains("Sign out"), "{body}");
    // The user clicks the button.
    let r = logout_request(
        &sc,
        reqwest::Method::POST,
        Some(&cookie),
        &[("origin", PUBLIC), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(!session_valid(&sc, &cookie).await);
    sc.shutdown().await;
}

#[tokio::test]
async fn a_cross_site_return_without_a_session_goes_to_the_signed_out_page() {
    // An identity provider's single logout sends the browser back to the logout path once the
    // session has ended: nothing to end, nothing to ask.
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    let r = client()
        .get(url(&sc, "/api/auth/logout?SAMLResponse=x&RelayState=y"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/login?state=signed-out");
    sc.shutdown().await;
}

#[tokio::test]
async fn no_request_another_site_can_make_to_the_sidecars_own_routes_ends_a_session() {
    // Every route of routes/mod.rs that takes GET (links, redirects, images and top-level
    // navigations from another site carry the SameSite=Lax cookie), and the POST ones. A new
    // route with an effect on the session belongs here.
    let sc = sidecar(upstream(Gate::default()).await, &[]).await;
    assert!(sc.app().providers[0].set_discovered(discovered(9)));
    let cookie = cookie_for(&session("okta", 3600));
    let gets = [
        "/login",
        "/login?state=signed-out",
        "/api/auth/oauth2/start/okta?rd=/",
        "/api/auth/oauth2/callback/okta?code=c&state=s",
        "/api/auth/oauth2/callback/okta?error=access_denied",
        "/api/auth/saml/start",
        "/api/auth/saml/metadata",
        "/api/auth/logout",
        "/api/auth/logout?SAMLRequest=x",
        "/api/auth/session",
        "/.well-known/gatehouse/jwks.json",
        "/anything-of-the-app",
    ];
    let posts = [
        "/api/auth/logout",
        "/api/auth/saml/acs",
        "/api/auth/oauth2/backchannel-logout/okta",
    ];
    let requests = gets
        .iter()
        .map(|p| (reqwest::Method::GET, *p))
        .chain(posts.iter().map(|p| (reqwest::Method::POST, *p)));
    for (method, path) in requests {
        // What another site's link or redirect sends (and an old browser's, with no fetch
        // metadata); what its form sends, in a browser with fetch metadata and in one with
        // `Origin` only.
        let provenances: [&[(&str, &str)]; 2] = if method == reqwest::Method::GET {
            [&[("sec-fetch-site", "cross-site")], &[]]
        } else {
            [
                &[
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://evil.example"),
                ],
                &[("origin", "https://evil.example")],
            ]
        };
        for headers in provenances {
            let mut req = client()
                .request(method.clone(), url(&sc, path))
                .header("cookie", &cookie)
                .header("content-type", "application/x-www-form-urlencoded");
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            let r = req.body("").send().await.expect("send");
            assert!(
                !set_cookies(&r)
                    .iter()
                    .any(|c| c.starts_with(&format!("{SESSION}="))),
                "{method} {path} {headers:?} touched the session cookie"
            );
            assert!(
                session_valid(&sc, &cookie).await,
                "{method} {path} {headers:?} from another site ended the session"
            );
        }
    }
    sc.shutdown().await;
}
