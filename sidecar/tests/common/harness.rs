//! The sidecar in process in front of an echoing app, and sessions minted with its key ring (as a
//! signed-in browser would hold them): what the gate and access-rule tests share.
// Each test binary that includes `common` uses a part of this.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use gatehouse_auth::claims::Role;
use gatehouse_auth::cookie::{Binding, KeyRing, Session, random_token};
use gatehouse_auth::token::now_unix;
use gatehouse_sidecar::{Config, Sidecar};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The cookie key ring of every test sidecar.
pub const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const PUBLIC: &str = "https://app.test";
pub const SESSION: &str = "__Host-gatehouse-session";

pub async fn echo(req: Request) -> axum::Json<Value> {
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in req.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    axum::Json(json!({
        "method": req.method().as_str(),
        "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
        "headers": headers,
    }))
}

/// Serves `router` as the app on a free loopback port.
pub async fn serve_app(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub async fn sidecar(upstream: SocketAddr, extra: &[(&str, &str)]) -> Sidecar {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("GATEHOUSE_PUBLIC_URL".into(), PUBLIC.into()),
        ("GATEHOUSE_COOKIE_SECRET".into(), KEY.into()),
        ("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into()),
        ("GATEHOUSE_ADMIN_LISTEN".into(), "127.0.0.2:0".into()),
        ("GATEHOUSE_UPSTREAM".into(), format!("http://{upstream}")),
        ("OKTA_CLIENT_ID".into(), "okta-client".into()),
        ("OKTA_CLIENT_SECRET".into(), "okta-secret-value".into()),
        // Port 9 (discard) refuses: discovery keeps failing unless a test installs endpoints.
        ("OKTA_ISSUER".into(), "http://127.0.0.1:9/okta".into()),
        ("OKTA_ORG_ID".into(), "acme".into()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let lookup = move |k: &str| vars.get(k).cloned();
    let config = Config::from_source(&lookup).expect("valid config");
    gatehouse_sidecar::start(config)
        .await
        .expect("sidecar starts")
}

pub fn binding() -> Binding {
    Binding::new("default", "gatehouse", PUBLIC, None)
}

pub fn session(provider: &str, ttl: i64) -> Session {
    let now = now_unix();
    Session {
        sid: random_token(16),
        user: format!("{provider}-0123456789abcdef"),
        subject: "00u1ada".into(),
        provider: provider.into(),
        email: Some("ada@example.com".into()),
        name: Some("Ada Lovelace".into()),
        username: Some("ada".into()),
        role: Role::Admin,
        issued_at: now,
        expires_at: now + ttl,
        user_uid: None,
        idp_sid: None,
        validated_at: None,
        groups: Vec::new(),
        claims: None,
        facts: None,
        groups_unknown: false,
    }
}

pub fn cookie_for(s: &Session) -> String {
    let ring = KeyRing::parse(KEY).expect("ring");
    format!("{SESSION}={}", s.seal(&ring, &binding()))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn url(sc: &Sidecar, path: &str) -> String {
    format!("http://{}{path}", sc.addr())
}

/// One raw HTTP/1.1 exchange: status, head, body (read to Content-Length, else to EOF).
pub async fn raw(addr: SocketAddr, request: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| buf.len() >= split + 4 + n) {
                break;
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let body = buf.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, body)
}

pub fn header_values<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
    echo["headers"][name]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
