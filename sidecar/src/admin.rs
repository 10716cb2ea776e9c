//! The admin listener (`GATEHOUSE_ADMIN_LISTEN`): `/healthz` (the process serves), `/readyz` (every
//! enabled provider's discovery document and keys are loaded, and the user directory is usable),
//! `/metrics` (Prometheus/OpenMetrics text). It starts before discovery and never waits for it.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::state::App;

/// Answers one admin request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".to_owned(),
        );
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".to_owned()),
        "/readyz" => {
            let mut waiting: Vec<&str> = app
                .providers
                .iter()
                .filter(|p| !p.is_ready())
                .map(|p| p.id())
                .collect();
            // SAML: until the IdP's metadata (and so its signing keys) is loaded.
            waiting.extend(
                app.providers
                    .saml()
                    .filter(|s| !s.is_ready())
                    .map(|s| s.id()),
            );
            if waiting.is_empty() && app.directory.is_ready() {
                text(StatusCode::OK, "ready\n".to_owned())
            } else if waiting.is_empty() {
                let why = match app.directory.cache() {
                    Some(cache) if !cache.is_synced() => "the SsoUser watch has not synced yet",
                    Some(_) => {
                        "the SsoUser watch has not shown it is alive for longer than GATEHOUSE_REVOCATION_STALENESS"
                    }
                    None => "user directory",
                };
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                )
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: waiting for providers {}\n", waiting.join(", ")),
                )
            }
        }
        "/metrics" => {
            if let Some(cache) = app.directory.cache() {
                app.metrics.user_watch(
                    cache.is_synced(),
                    cache.broken_for(),
                    cache.user_count(),
                    cache.undecodable_count(),
                );
            }
            let mut r = text(StatusCode::OK, app.metrics.encode());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
