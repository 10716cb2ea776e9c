//! Reverse proxy to the app: one pooled HTTP/1.1 client, streaming bodies both ways, WebSocket (and
//! any HTTP/1.1 `Upgrade`) pass-through, and the header rules of the security model.
//!
//! Request headers: client-sent identity headers of every spelling are removed (`X-Forwarded-*`
//! except a well-formed `X-Forwarded-For`, `X-Auth-Request-*`, `X-Gatehouse-*`, `Forwarded`,
//! `Remote-User`, `X-Remote-User`; any case, `_` for `-`, duplicates), as are hop-by-hop headers and
//! the sidecar's own cookies; then the real identity (if any) and `X-Forwarded-For` (appended),
//! `X-Forwarded-Proto` (the public URL's scheme) and `X-Forwarded-Host` are set. The path and query
//! are forwarded byte for byte.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::uri::Authority;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::{LengthLimitError, Limited};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::TrySendError;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tower_http::timeout::{TimeoutBody, TimeoutError};

use crate::session::{CookieNames, cookie_pairs};

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers the proxy may add to a request: `X-Forwarded-For`, `-Proto`, `-Host` and `Host`.
pub const FORWARDING_HEADERS: usize = 4;

/// Header-name prefixes (after `_` → `-`) that only the sidecar may send to the app.
const IDENTITY_PREFIXES: [&str; 3] = ["x-forwarded-", "x-auth-request-", "x-gatehouse-"];
/// Whole header names (after `_` → `-`) that apps commonly trust as identity.
const IDENTITY_NAMES: [&str; 3] = ["forwarded", "remote-user", "x-remote-user"];

/// Whether a client-sent header must be removed before the request reaches the app.
pub fn is_client_identity_header(name: &str) -> bool {
    // `X-Forwarded-For` spelled exactly is a hop list we append to; its `_` spellings are not.
    if name.eq_ignore_ascii_case("x-forwarded-for") {
        return false;
    }
    IDENTITY_PREFIXES
        .iter()
        .any(|p| normalized_starts_with(name, p))
        || IDENTITY_NAMES
            .iter()
            .any(|n| name.len() == n.len() && normalized_starts_with(name, n))
}

/// `name` starts with `prefix`, ignoring ASCII case and reading `_` as `-`.
fn normalized_starts_with(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.bytes().zip(prefix.bytes()).all(|(a, b)| {
            let a = if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            };
            a == b
        })
}

/// Removes client-sent identity headers (all values of each).
pub fn strip_client_identity(headers: &mut HeaderMap) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        if is_client_identity_header(name.as_str()) {
            doomed.push(name.clone());
        }
    }
    for name in doomed {
        headers.remove(&name);
    }
}

/// The trimmed name of one `name=value` cookie pair.
fn cookie_pair_name(pair: &[u8]) -> &[u8] {
    let name = match memchr::memchr(b'=', pair) {
        Some(i) => &pair[..i],
        None => pair,
    };
    name.trim_ascii()
}

/// Removes the sidecar's cookies and folds several `Cookie` headers into one (HTTP/1.1 wants one).
///
/// Works on the header bytes, so a value that is not visible ASCII cannot hide one of our cookies.
pub fn strip_own_cookies(headers: &mut HeaderMap) {
    let mut count = 0;
    let mut ours = false;
    let mut only_ours = true;
    for v in headers.get_all(header::COOKIE) {
        count += 1;
        let bytes = v.as_bytes();
        // Every spelling of our names contains this; most apps' cookies never do.
        if memchr::memmem::find(bytes, b"gatehouse-").is_none() {
            only_ours = false;
            continue;
        }
        for pair in cookie_pairs(bytes) {
            if CookieNames::is_own_name(cookie_pair_name(pair)) {
                ours = true;
            } else if !pair.trim_ascii().is_empty() {
                only_ours = false;
            }
        }
    }
    if count == 0 || (count == 1 && !ours) {
        return;
    }
    if only_ours {
        headers.remove(header::COOKIE);
        return;
    }
    let mut kept: Vec<u8> = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        for pair in cookie_pairs(v.as_bytes()) {
            let pair = pair.trim_ascii();
            if pair.is_empty() || CookieNames::is_own_name(cookie_pair_name(pair)) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_bytes(&kept)
    {
        headers.insert(header::COOKIE, v);
    }
}

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass of cheap comparisons instead of eight hashed removals.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let mut listed: Vec<HeaderName> = Vec::new();
    for v in headers.get_all(header::CONNECTION) {
        if let Ok(text) = v.to_str() {
            for token in text.split(',') {
                if let Ok(name) = HeaderName::from_bytes(token.trim().as_bytes()) {
                    listed.push(name);
                }
            }
        }
    }
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// The `Upgrade` value of an HTTP/1.1 upgrade request (`Connection: upgrade` + `Upgrade: x`).
pub fn upgrade_protocol<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let connection_upgrade = req.headers().get_all(header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|t| {
            t.split(',')
                .any(|tok| tok.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    connection_upgrade
        .then(|| req.headers().get(header::UPGRADE).cloned())
        .flatten()
}

/// A request body the sidecar will not send on, whole, to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// More bytes than `GATEHOUSE_MAX_REQUEST_BODY` (declared up front, or counted on the way).
    TooLarge,
    /// A pause longer than `GATEHOUSE_REQUEST_BODY_TIMEOUT`.
    Stalled,
}

/// The request body as the app gets it, streamed: at most `max` bytes, and no pause longer than
/// `idle` (a client that stalls an upload loses the request instead of holding two connections).
/// A declared length over `max` is refused before anything is sent; a body without one is counted
/// as it passes and cut off at the limit. A request without a body (most of them) passes
/// untouched, with no timer.
pub fn bounded_body(body: Incoming, max: u64, idle: Duration) -> Result<Body, BodyFault> {
    if body.is_end_stream() {
        return Ok(Body::new(body));
    }
    if body.size_hint().lower() > max {
        return Err(BodyFault::TooLarge);
    }
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    Ok(Body::new(TimeoutBody::new(idle, Limited::new(body, max))))
}

/// Why the app could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Connecting to the app failed or timed out.
    #[error("cannot connect to the app: {0}")]
    Connect(String),
    /// The exchange with the app failed.
    #[error("upstream request failed: {0}")]
    Upstream(#[from] hyper::Error),
    /// The request cannot be expressed to the app (no path).
    #[error("request has no path")]
    NoPath,
}

impl ProxyError {
    /// The client's request body, when that (not the app) is why the exchange failed.
    pub fn body_fault(&self) -> Option<BodyFault> {
        let Self::Upstream(e) = self else {
            return None;
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cause {
            if err.is::<LengthLimitError>() {
                return Some(BodyFault::TooLarge);
            }
            if err.is::<TimeoutError>() {
                return Some(BodyFault::Stalled);
            }
            cause = err.source();
        }
        None
    }
}

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 256;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to open a connection to the app.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Keep-alive HTTP/1.1 connections to the one upstream, most recently used first.
///
/// A connection returns to the pool when its response body has been read to the end; a response
/// abandoned half-way (client gone) closes its connection instead. No hashing, no per-request
/// bookkeeping beyond one mutex push and pop.
#[derive(Debug)]
struct Pool {
    authority: Authority,
    idle: Mutex<Vec<(Instant, SendRequest<Body>)>>,
}

impl Pool {
    fn take_idle(&self) -> Option<SendRequest<Body>> {
        let mut idle = match self.idle.lock() {
            Ok(i) => i,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some((since, sender)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn put_back(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = match self.idle.lock() {
            Ok(i) => i,
            Err(poisoned) => poisoned.into_inner(),
        };
        // The bottom of the stack is the longest idle: let it go once stale.
        if idle
            .first()
            .is_some_and(|(since, _)| since.elapsed() >= IDLE_TIMEOUT)
        {
            idle.remove(0);
        }
        if idle.len() < MAX_IDLE {
            idle.push((Instant::now(), sender));
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, ProxyError> {
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(self.authority.as_str()),
        )
        .await
        .map_err(|_| ProxyError::Connect("timed out".to_owned()))?
        .map_err(|e| ProxyError::Connect(e.kind().to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            // As on the server side: one flattened buffer per request head.
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// A connection ready for a request: a pooled one if any is usable, else a new one.
    async fn checkout(&self) -> Result<SendRequest<Body>, ProxyError> {
        while let Some(mut sender) = self.take_idle() {
            if sender.is_ready() {
                return Ok(sender);
            }
            // Just finished its previous exchange: becomes ready at once, or turns out closed.
            let ready = tokio::time::timeout(
                Duration::from_secs(1),
                std::future::poll_fn(|cx| sender.poll_ready(cx)),
            )
            .await;
            if matches!(ready, Ok(Ok(()))) {
                return Ok(sender);
            }
        }
        // Boxed: opening a connection is rare, and its future would otherwise make every
        // request's future several hundred bytes larger.
        Box::pin(self.connect()).await
    }
}

/// The app behind the sidecar.
#[derive(Debug, Clone)]
pub struct Upstream {
    pool: Arc<Pool>,
    host: HeaderValue,
    proto: HeaderValue,
}

impl Upstream {
    /// The app at `authority`; `public_scheme` is sent as `X-Forwarded-Proto`.
    pub fn new(authority: Authority, public_scheme: &str) -> Self {
        Self {
            host: HeaderValue::from_str(authority.as_str())
                .unwrap_or(HeaderValue::from_static("localhost")),
            pool: Arc::new(Pool {
                authority,
                idle: Mutex::new(Vec::new()),
            }),
            proto: HeaderValue::from_str(public_scheme)
                .unwrap_or(HeaderValue::from_static("https")),
        }
    }

    /// Sends a request (origin-form URI, headers final) to the app. A pooled connection the app
    /// closed before the request went out is replaced by a new one, once.
    ///
    /// Only the exchange itself is awaited here; what comes before and after is synchronous, and
    /// the rare paths (a new connection, a retry) are boxed, so the future every request moves
    /// around stays small.
    pub async fn send(&self, mut req: Request<Body>) -> Result<Response<Body>, ProxyError> {
        *req.version_mut() = Version::HTTP_11;
        if !req.headers().contains_key(header::HOST) {
            req.headers_mut().insert(header::HOST, self.host.clone());
        }
        let mut sender = self.pool.checkout().await?;
        let response = match sender.try_send_request(req).await {
            Ok(response) => response,
            Err(e) => {
                let (fresh, response) = Box::pin(self.resend(e)).await?;
                sender = fresh;
                response
            }
        };
        Ok(self.pooled(response, sender))
    }

    /// Sends again, on a new connection, a request a pooled connection could not take.
    async fn resend(
        &self,
        mut failed: TrySendError<Request<Body>>,
    ) -> Result<(SendRequest<Body>, Response<Incoming>), ProxyError> {
        let Some(req) = failed.take_message() else {
            return Err(failed.into_error().into());
        };
        let mut sender = self.pool.connect().await?;
        let response = sender.send_request(req).await?;
        Ok((sender, response))
    }

    /// The app's response, with its connection going back to the pool once the body is read.
    fn pooled(&self, response: Response<Incoming>, sender: SendRequest<Body>) -> Response<Body> {
        let (parts, body) = response.into_parts();
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            // The connection now belongs to the upgraded stream.
            return Response::from_parts(parts, Body::new(body));
        }
        let body = PooledBody {
            inner: body,
            sender: Some(sender),
            pool: self.pool.clone(),
        };
        Response::from_parts(parts, Body::new(body))
    }

    /// Sets the forwarding headers, rewrites the URI to origin-form, and sends the request to the
    /// app. `peer` is the client address as a header value. Identity headers must already be in
    /// place. Returns the response and the time to its head.
    pub async fn forward(
        &self,
        mut req: Request<Body>,
        peer: &HeaderValue,
    ) -> Result<(Response<Body>, Duration), ProxyError> {
        let client_upgrade = self.prepare(&mut req, peer)?;
        let started = Instant::now();
        let response = self.send(req).await?;
        let elapsed = started.elapsed();
        Ok((finish(response, client_upgrade), elapsed))
    }

    /// Rewrites a request for the app; returns the client's side of an upgrade it asks for.
    fn prepare(
        &self,
        req: &mut Request<Body>,
        peer: &HeaderValue,
    ) -> Result<Option<ClientUpgrade>, ProxyError> {
        let upgrade = upgrade_protocol(req);
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .ok_or(ProxyError::NoPath)?;
        let host = req.headers().get(header::HOST).cloned().or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });

        let headers = req.headers_mut();
        strip_hop_by_hop(headers);
        if let Some(host) = host {
            // `insert` also leaves exactly one `Host` when the client sent several.
            headers.insert(X_FORWARDED_HOST, host.clone());
            headers.insert(header::HOST, host);
        }
        headers.insert(X_FORWARDED_PROTO, self.proto.clone());
        append_forwarded_for(headers, peer);
        if let Some(protocol) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        *req.uri_mut() = Uri::from(path);
        Ok(upgrade.map(|_| ClientUpgrade(hyper::upgrade::on(req))))
    }
}

/// The client's side of an HTTP/1.1 upgrade, taken from its request before that is sent on.
struct ClientUpgrade(hyper::upgrade::OnUpgrade);

/// The app's response as the client gets it: hop-by-hop headers and our cookies removed, or, for
/// an accepted upgrade, both upgraded connections joined.
fn finish(response: Response<Body>, client_upgrade: Option<ClientUpgrade>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::SWITCHING_PROTOCOLS
        && let Some(ClientUpgrade(client_upgrade)) = client_upgrade
    {
        let upstream_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let protocol = parts.headers.get(header::UPGRADE).cloned();
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(p) = protocol {
            parts.headers.insert(header::UPGRADE, p);
        }
        if let Some(upstream_upgrade) = upstream_upgrade {
            tokio::spawn(async move {
                let (client, upstream) = tokio::join!(client_upgrade, upstream_upgrade);
                if let (Ok(client), Ok(upstream)) = (client, upstream) {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
        return Response::from_parts(parts, Body::empty());
    }

    strip_hop_by_hop(&mut parts.headers);
    strip_own_set_cookies(&mut parts.headers);
    Response::from_parts(parts, body)
}

/// A response body from the app that hands its connection back to the pool once fully read.
struct PooledBody {
    inner: Incoming,
    sender: Option<SendRequest<Body>>,
    pool: Arc<Pool>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.pool.put_back(sender);
        }
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            Poll::Ready(Some(Err(_))) => self.sender = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Fully read (or empty, e.g. 204 or HEAD): reusable. Abandoned half-way: not.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: &HeaderValue) {
    let existing: Vec<&[u8]> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if existing.is_empty() {
        headers.insert(X_FORWARDED_FOR, peer.clone());
        return;
    }
    let mut joined = Vec::with_capacity(64);
    for v in existing {
        joined.extend_from_slice(v);
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(peer.as_bytes());
    match HeaderValue::from_bytes(&joined) {
        Ok(v) => headers.insert(X_FORWARDED_FOR, v),
        Err(_) => headers.insert(X_FORWARDED_FOR, peer.clone()),
    };
}

/// The app may not set (or clear) the sidecar's cookies.
fn strip_own_set_cookies(headers: &mut HeaderMap) {
    if !headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(set_cookie_is_own)
    {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| !set_cookie_is_own(v))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in kept {
        headers.append(header::SET_COOKIE, v);
    }
}

fn set_cookie_is_own(v: &HeaderValue) -> bool {
    let bytes = v.as_bytes();
    let name_end = bytes.iter().position(|b| *b == b'=').unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..name_end]).is_ok_and(|n| CookieNames::is_own(n.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_header_table() {
        let stripped = [
            "x-forwarded-user",
            "X-Forwarded-User",
            "X-FORWARDED-EMAIL",
            "x-forwarded-preferred-username",
            "x-forwarded-groups",
            "x-forwarded-org",
            "x-forwarded-provider",
            "x-forwarded-access-token",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x_forwarded_user",
            "X_Forwarded_Email",
            "x-forwarded_user",
            "x_forwarded-for",
            "x_forwarded_for",
            "x-auth-request-email",
            "X-Auth-Request-User",
            "x_auth_request_email",
            "x-auth-request-access-token",
            "x-gatehouse-identity",
            "X_GATEHOUSE_IDENTITY",
            "forwarded",
            "remote-user",
            "remote_user",
            "x-remote-user",
        ];
        for name in stripped {
            assert!(is_client_identity_header(name), "{name} must be stripped");
        }
        let kept = [
            "x-forwarded-for",
            "X-Forwarded-For",
            "x-request-id",
            "authorization",
            "cookie",
            "x-forwarded",
            "x-forward-user",
            "remote-users",
            "user-agent",
        ];
        for name in kept {
            assert!(!is_client_identity_header(name), "{name} must be kept");
        }
    }

    #[test]
    fn stripping_removes_every_value_of_every_spelling() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("x-forwarded-user", "mallory"),
            ("x-forwarded-user", "mallory2"),
            ("x_forwarded_email", "m@evil"),
            ("x-auth-request-email", "m@evil"),
            ("x-gatehouse-identity", "forged"),
            ("x-forwarded-for", "203.0.113.9"),
            ("accept", "text/html"),
        ] {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_static(v),
            );
        }
        strip_client_identity(&mut h);
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "x-forwarded-for"]);
    }

    #[test]
    fn own_cookies_are_removed_and_others_kept() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("app=1; __Host-gatehouse-session=abc"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("gatehouse-attempt-x=1; theme=dark"),
        );
        strip_own_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(
            h.get(header::COOKIE).and_then(|v| v.to_str().ok()),
            Some("app=1; theme=dark")
        );

        let mut only_ours = HeaderMap::new();
        only_ours.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-gatehouse-session=abc"),
        );
        strip_own_cookies(&mut only_ours);
        assert!(only_ours.get(header::COOKIE).is_none());

        // A value that is not visible ASCII still loses our cookie.
        let mut odd = HeaderMap::new();
        odd.insert(
            header::COOKIE,
            HeaderValue::from_bytes(b"gatehouse-session=abc; caf\xc3\xa9=1").expect("value"),
        );
        strip_own_cookies(&mut odd);
        assert_eq!(
            odd.get(header::COOKIE).map(HeaderValue::as_bytes),
            Some(&b"caf\xc3\xa9=1"[..])
        );

        let mut untouched = HeaderMap::new();
        untouched.insert(header::COOKIE, HeaderValue::from_static("a=1;b=2"));
        strip_own_cookies(&mut untouched);
        assert_eq!(
            untouched.get(header::COOKIE).and_then(|v| v.to_str().ok()),
            Some("a=1;b=2")
        );
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept"]);
    }

    #[test]
    fn forwarded_for_is_appended() {
        let peer = HeaderValue::from_static("10.0.0.7");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, &peer);
        assert_eq!(h.get(X_FORWARDED_FOR), Some(&peer));
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.1"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.2"));
        append_forwarded_for(&mut h, &peer);
        assert_eq!(
            h.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()),
            Some("198.51.100.1, 203.0.113.2, 10.0.0.7")
        );
    }

    #[test]
    fn the_app_cannot_set_our_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("__Host-gatehouse-session=x; Path=/"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("app=1; Path=/"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("gatehouse-session=; Max-Age=0"),
        );
        strip_own_set_cookies(&mut h);
        let left: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(left, ["app=1; Path=/"]);
    }

    #[test]
    fn upgrade_detection() {
        let ws = Request::builder()
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::UPGRADE, "websocket")
            .body(())
            .expect("request");
        assert_eq!(
            upgrade_protocol(&ws),
            Some(HeaderValue::from_static("websocket"))
        );
        let plain = Request::builder()
            .header(header::UPGRADE, "websocket")
            .body(())
            .expect("request");
        assert_eq!(upgrade_protocol(&plain), None);
    }
}
