//! The public listener: the sidecar's own endpoints as an axum [`Router`], and everything else
//! through the auth gate to the app (the router's fallback service).
//!
//! | route | method | what |
//! | --- | --- | --- |
//! | `/login` | GET, HEAD | login page (`rd`, `providers=all`, `error=<reason>`) |
//! | `/api/auth/oauth2/start/{provider}` | GET | starts sign-in (`rd`) |
//! | `/api/auth/oauth2/callback/{provider}` | GET | the redirect URI registered at the IdP |
//! | `/api/auth/oauth2/backchannel-logout/{provider}` | POST | OIDC Back-Channel Logout 1.0 |
//! | `/api/auth/saml/start` | GET | starts SAML sign-in (`rd`): AuthnRequest by HTTP-Redirect |
//! | `/api/auth/saml/acs` | POST | SAML assertion consumer service (HTTP-POST binding) |
//! | `/api/auth/saml/metadata` | GET, HEAD | the SP's SAML metadata |
//! | `/api/auth/logout` | GET, POST | ends the session on every replica; RP-initiated (OIDC) or SP-initiated (SAML) logout where offered; only for requests from this origin (another site's gets a page that asks, see `routes/session.rs`). With a signed `SAMLRequest`: single logout started by the SAML IdP (`routes/saml_logout.rs`) |
//! | `/api/auth/session` | GET | the current identity as JSON, 401 without a session |
//! | `/.well-known/gatehouse/jwks.json` | GET, HEAD | public key of `X-Gatehouse-Identity` |
//! | `/api/auth/scim/v2/…` | per resource | SCIM 2.0 provisioning (`provisioning.mode: scim`; bearer token), see `routes/scim.rs` |
//! | anything else | any | the app, behind the auth gate |
//!
//! Other paths under `/api/auth/oauth2/`, `/api/auth/saml/` and `/api/auth/scim/` are reserved (404), never proxied.
//! A method a route does not list is answered 405 with `Allow`.
//!
//! Adding an endpoint: a handler in a module of its own (extractors from [`extract`]), one
//! `.route(…)` line in [`router`]; the gate, metrics and 405 handling come with it.

mod backchannel;
pub mod extract;
mod gate;
mod saml;
mod saml_logout;
mod scim;
mod session;
mod sign_in;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::{MethodRouter, any, get, post};
use futures::FutureExt as _;
use http::header;
use http::{HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use tower::Service as _;

use crate::metrics::Handler as MetricHandler;
use crate::pages::{self, html_response};
use crate::state::App;

pub use gate::{ClientAddr, is_skipped};

pub use gatehouse_crds::consts::{
    LOGIN_PATH, LOGOUT_PATH, OIDC_CALLBACK_PREFIX as CALLBACK_PREFIX,
    OIDC_START_PREFIX as START_PREFIX, SAML_ACS_PATH, SAML_METADATA_PATH, SAML_START_PATH,
    SCIM_PATH,
};
/// Back-channel logout prefix (the IdP's `backchannel_logout_uri`).
pub const BACKCHANNEL_LOGOUT_PREFIX: &str = gatehouse_crds::consts::OIDC_BACKCHANNEL_LOGOUT_PREFIX;
/// Session JSON path.
pub const SESSION_PATH: &str = "/api/auth/session";
/// Identity JWKS path.
pub const JWKS_PATH: &str = "/.well-known/gatehouse/jwks.json";
/// Path prefixes that belong to the sidecar whether or not a route exists under them.
pub const RESERVED_PREFIXES: [&str; 3] =
    ["/api/auth/oauth2/", "/api/auth/saml/", "/api/auth/scim/"];

/// The public listener's service: the sidecar's endpoints, then the gate in front of the app.
///
/// Requests must carry the client's address as a [`ClientAddr`] extension (the listener adds it).
pub fn router(app: Arc<App>) -> Router {
    let mut own = Router::new()
        .route(
            LOGIN_PATH,
            get(sign_in::login).fallback(refuse(&[Method::GET, Method::HEAD])),
        )
        .route(
            &format!("{START_PREFIX}{{provider}}"),
            get_only(sign_in::start),
        )
        .route(
            &format!("{CALLBACK_PREFIX}{{provider}}"),
            get_only(sign_in::callback),
        )
        .route(
            &format!("{BACKCHANNEL_LOGOUT_PREFIX}{{provider}}"),
            post(backchannel::backchannel_logout).fallback(refuse(&[Method::POST])),
        )
        .route(
            LOGOUT_PATH,
            get(session::logout)
                .post(session::logout)
                .head(refuse(&[Method::GET, Method::POST]))
                .fallback(refuse(&[Method::GET, Method::POST])),
        )
        .route(SAML_START_PATH, get_only(saml::start))
        .route(
            SAML_ACS_PATH,
            post(saml::acs).fallback(refuse(&[Method::POST])),
        )
        .route(
            SAML_METADATA_PATH,
            get(saml::metadata).fallback(refuse(&[Method::GET, Method::HEAD])),
        )
        .route(SESSION_PATH, get_only(session::session_json))
        .route(
            JWKS_PATH,
            get(session::jwks).fallback(refuse(&[Method::GET, Method::HEAD])),
        )
        .nest(SCIM_PATH, scim::router(App::clone(&app)));
    for prefix in RESERVED_PREFIXES {
        own = own
            .route(prefix, any(not_found))
            .route(&format!("{prefix}{{*rest}}"), any(not_found));
    }
    let metrics_app = app.clone();
    own.layer(tower::util::MapResponseLayer::new(move |r: Response| {
        metrics_app.metrics.request(MetricHandler::Auth, r.status());
        r
    }))
    .fallback_service(gate::service(app.clone()))
    .with_state(App::clone(&app))
}

/// Answers one request of the public listener; `peer` is the client's address.
pub fn handle(
    router: &Router,
    mut req: Request<Incoming>,
    peer: HeaderValue,
) -> impl Future<Output = Response<Body>> + Send + use<> {
    req.extensions_mut().insert(ClientAddr(peer));
    router.clone().call(req).map(infallible)
}

/// A GET-only route (HEAD refused too: these have effects or answer per request).
fn get_only<H, T>(handler: H) -> MethodRouter<App>
where
    H: Handler<T, App>,
    T: 'static,
{
    get(handler)
        .head(refuse(&[Method::GET]))
        .fallback(refuse(&[Method::GET]))
}

/// A handler answering 405 with `Allow: <allowed>`.
fn refuse(
    allowed: &'static [Method],
) -> impl Fn() -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move || std::future::ready(method_not_allowed(allowed))
}

fn method_not_allowed(allowed: &[Method]) -> Response {
    let mut r = html_response(
        StatusCode::METHOD_NOT_ALLOWED,
        pages::plain_page(
            "Method not allowed",
            "This address does not accept that method.",
        ),
    );
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(v) = HeaderValue::from_str(&allow) {
        r.headers_mut().insert(header::ALLOW, v);
    }
    r
}

async fn not_found() -> Response {
    pages::not_found_page()
}

/// Never fails: for `Result<_, Infallible>` services.
fn infallible<T>(r: Result<T, Infallible>) -> T {
    match r {
        Ok(t) => t,
        Err(e) => match e {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size2<A, B, F, Fut>(_: F) -> usize
    where
        F: FnOnce(A, B) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// The size of the future `f` returns, without calling it.
    fn future_size4<A, B, C, D, F, Fut>(_: F) -> usize
    where
        F: FnOnce(A, B, C, D) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every proxied request allocates, and hyper moves, the gate's future; when sign-in's future
    /// was inlined into it, every proxied request copied 10 KB around (half the sidecar's
    /// instructions). The router keeps each endpoint's future apart; this keeps the gate's small.
    #[test]
    fn a_request_future_stays_small_whatever_sign_in_needs() {
        let request = future_size2(gate::gate);
        let sign_in = future_size4(sign_in::callback);
        eprintln!("gate: {request} bytes, callback: {sign_in} bytes");
        assert!(
            request < sign_in,
            "the gate's future ({request} bytes) is larger than the sign-in callback's \
             ({sign_in} bytes): keep rare, large work boxed"
        );
        assert!(
            request <= 4096,
            "every request's future is {request} bytes; keep rare, large work boxed"
        );
    }
}
