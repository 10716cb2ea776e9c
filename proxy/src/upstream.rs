//! [`Upstream`]: the app behind the sidecar. It rewrites a request for the app (the header
//! rules of [`crate::headers`]), sends it through the [`crate::pool`], and shapes the app's
//! response for the client. The path and query are forwarded byte for byte.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_core::body::Body;
use http::header;
use http::uri::Authority;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};

use crate::error::ProxyError;
use crate::headers::{
    X_FORWARDED_HOST, X_FORWARDED_PROTO, append_forwarded_for, strip_hop_by_hop,
    strip_own_set_cookies,
};
use crate::pool::{Pool, PoolSettings};
use crate::upgrade::{ClientUpgrade, switching_headers, upgrade_protocol};

/// The app behind the sidecar.
#[derive(Debug, Clone)]
pub struct Upstream {
    pool: Arc<Pool>,
    host: HeaderValue,
    proto: HeaderValue,
    response_timeout: Option<Duration>,
}

impl Upstream {
    /// The app at `authority`; `public_scheme` is sent as `X-Forwarded-Proto`.
    pub fn new(authority: Authority, public_scheme: &str) -> Self {
        Self {
            host: HeaderValue::from_str(authority.as_str())
                .unwrap_or(HeaderValue::from_static("localhost")),
            pool: Arc::new(Pool::new(authority, PoolSettings::default())),
            proto: HeaderValue::from_str(public_scheme)
                .unwrap_or(HeaderValue::from_static("https")),
            response_timeout: None,
        }
    }

    /// Gives up on a forwarded request whose response head has not arrived `limit` after it was
    /// sent (`None`: wait as long as the client does).
    #[must_use]
    pub fn with_response_timeout(mut self, limit: Option<Duration>) -> Self {
        self.response_timeout = limit;
        self
    }

    /// The connection pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Sends a request (origin-form URI, headers final) to the app as HTTP/1.1, with the app's
    /// own `Host` unless the request has one.
    pub async fn send(&self, mut req: Request<Body>) -> Result<Response<Body>, ProxyError> {
        *req.version_mut() = Version::HTTP_11;
        if !req.headers().contains_key(header::HOST) {
            req.headers_mut().insert(header::HOST, self.host.clone());
        }
        self.pool.send(req).await
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
        let response = match self.response_timeout {
            None => self.send(req).await?,
            Some(limit) => tokio::time::timeout(limit, self.send(req))
                .await
                .map_err(|_| ProxyError::ResponseTimeout(limit))??,
        };
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
        Ok(upgrade.map(|_| ClientUpgrade::take(req)))
    }
}

/// The app's response as the client gets it: hop-by-hop headers and our cookies removed, or, for
/// an accepted upgrade, both upgraded connections joined.
fn finish(response: Response<Body>, client_upgrade: Option<ClientUpgrade>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        switching_headers(&mut parts.headers);
        if let Some(upstream_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
            client_upgrade.join(upstream_upgrade);
        }
        return Response::from_parts(parts, Body::empty());
    }
    strip_hop_by_hop(&mut parts.headers);
    strip_own_set_cookies(&mut parts.headers);
    Response::from_parts(parts, body)
}
