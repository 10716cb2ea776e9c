//! Request dispatch: the sidecar's own routes, and everything else through the auth gate to the app.
//!
//! | route | method | what |
//! | --- | --- | --- |
//! | `/login` | GET, HEAD | login page (`rd`, `providers=all`, `error=<reason>`) |
//! | `/api/auth/oauth2/start/{provider}` | GET | starts sign-in (`rd`) |
//! | `/api/auth/oauth2/callback/{provider}` | GET | the redirect URI registered at the IdP |
//! | `/api/auth/logout` | GET, POST | ends the session; RP-initiated logout where offered |
//! | `/api/auth/session` | GET | the current identity as JSON, 401 without a session |
//! | `/.well-known/gatehouse/jwks.json` | GET, HEAD | public key of `X-Gatehouse-Identity` |
//! | anything else | any | the app, behind the auth gate |
//!
//! Other paths under `/api/auth/oauth2/` and `/api/auth/saml/` are reserved (404), never proxied.

use std::sync::Arc;

use axum::body::Body;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::audit::{self, Outcome};
use crate::claims::map_role;
use crate::config::AuthMode;
use crate::metrics::Handler;
use crate::pages::{self, LoginPage, ProviderButton, encode_query_value, html_response};
use crate::paths::{canonical_path, safe_redirect, under_prefix};
use crate::providers::Provider;
use crate::provisioning::{ProvisionError, SignedInUser};
use crate::proxy::{
    BodyFault, FORWARDING_HEADERS, bounded_body, strip_client_identity, strip_own_cookies,
    upgrade_protocol,
};
use crate::session::{ATTEMPT_TTL_SECS, Attempt, MAX_ATTEMPTS, Purpose, Session, random_token};
use crate::state::App;
use crate::token::{Expected, constant_time_eq, now_unix, verify_id_token};

/// Login page path.
pub const LOGIN_PATH: &str = "/login";
/// Sign-in start prefix.
pub const START_PREFIX: &str = "/api/auth/oauth2/start/";
/// Callback prefix.
pub const CALLBACK_PREFIX: &str = "/api/auth/oauth2/callback/";
/// Logout path.
pub const LOGOUT_PATH: &str = "/api/auth/logout";
/// Session JSON path.
pub const SESSION_PATH: &str = "/api/auth/session";
/// Identity JWKS path.
pub const JWKS_PATH: &str = "/.well-known/gatehouse/jwks.json";
/// Largest logout hint (sealed ID token) kept as a cookie.
const MAX_HINT_COOKIE: usize = 3072;

/// Answers one request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, peer: HeaderValue) -> Response<Body> {
    let path = req.uri().path();
    let (handler, response) = if path == LOGIN_PATH {
        (
            Handler::Auth,
            only(&req, &[Method::GET, Method::HEAD]).unwrap_or_else(|| login(&app, &req)),
        )
    } else if let Some(id) = path.strip_prefix(START_PREFIX) {
        let id = id.to_owned();
        (
            Handler::Auth,
            only(&req, &[Method::GET]).unwrap_or_else(|| start(&app, &req, &id)),
        )
    } else if let Some(id) = path.strip_prefix(CALLBACK_PREFIX) {
        let id = id.to_owned();
        let response = match only(&req, &[Method::GET]) {
            Some(r) => r,
            // Boxed: sign-in's future (IdP exchange, provisioning) is many times the size of the
            // proxy path's, and every request's future would otherwise be that large.
            None => Box::pin(callback(&app, &req, &id)).await,
        };
        (Handler::Auth, response)
    } else if path == LOGOUT_PATH {
        (
            Handler::Auth,
            only(&req, &[Method::GET, Method::POST]).unwrap_or_else(|| logout(&app, &req)),
        )
    } else if path == SESSION_PATH {
        (
            Handler::Auth,
            only(&req, &[Method::GET]).unwrap_or_else(|| session_json(&app, &req)),
        )
    } else if path == JWKS_PATH {
        (
            Handler::Auth,
            only(&req, &[Method::GET, Method::HEAD]).unwrap_or_else(|| jwks(&app)),
        )
    } else if path.starts_with("/api/auth/oauth2/") || path.starts_with("/api/auth/saml/") {
        (Handler::Auth, not_found())
    } else {
        (Handler::Proxy, gate(&app, req, &peer).await)
    };
    app.metrics.request(handler, response.status());
    response
}

/// `None` when the method is allowed, else the 405 answer.
fn only<B>(req: &Request<B>, allowed: &[Method]) -> Option<Response<Body>> {
    if allowed.contains(req.method()) {
        return None;
    }
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
    Some(r)
}

fn not_found() -> Response<Body> {
    html_response(
        StatusCode::NOT_FOUND,
        pages::plain_page("Not found", "There is nothing at this address."),
    )
}

/// Query parameters by name (first occurrence).
fn query_param(req: &Request<impl Sized>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
        }
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::from(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.as_bytes()
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"text/html"))
    })
}

fn start_url(provider: &str, rd: &str) -> String {
    format!("{START_PREFIX}{provider}?rd={}", encode_query_value(rd))
}

// ---------------------------------------------------------------------------------------------
// Login page

fn login(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let rd = safe_redirect(&query_param(req, "rd").unwrap_or_else(|| "/".to_owned()));
    let show_all = query_param(req, "providers").as_deref() == Some("all");
    let reason = if query_param(req, "state").as_deref() == Some("signed-out") {
        Some("signed_out".to_owned())
    } else {
        query_param(req, "error").filter(|e| pages::message_for(e).is_some())
    };
    let now = now_unix();
    if reason.is_none() && app.session(req.headers(), now).is_some() {
        return redirect(StatusCode::FOUND, &rd);
    }
    let exclusive = app.config.exclusive_provider.as_deref();
    if let Some(only) = exclusive
        && !show_all
        && reason.is_none()
    {
        return redirect(StatusCode::FOUND, &start_url(only, &rd));
    }
    let providers = app
        .providers
        .iter()
        .filter(|p| show_all || exclusive.is_none_or(|only| p.id() == only))
        .map(|p| ProviderButton {
            id: p.id(),
            label: &p.config.display_name,
        })
        .collect();
    let app_login = app.config.app_login_path.as_ref().and_then(|path| {
        match exclusive {
            None => Some(path.clone()),
            // The break-glass parameter keeps optional+exclusive mode from redirecting it back.
            Some(_) if show_all => Some(format!("{path}?providers=all")),
            Some(_) => None,
        }
    });
    let page = LoginPage {
        app: &app.app_name,
        providers,
        rd: &rd,
        reason: reason.as_deref(),
        app_login,
    };
    html_response(StatusCode::OK, page.render())
}

// ---------------------------------------------------------------------------------------------
// Start

fn start(app: &App, req: &Request<Incoming>, id: &str) -> Response<Body> {
    let Some(provider) = app.provider(id) else {
        return not_found();
    };
    let Some(discovered) = provider.discovered() else {
        return html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem_page("provider_unavailable", LOGIN_PATH),
        );
    };
    let now = now_unix();
    let rd = safe_redirect(&query_param(req, "rd").unwrap_or_else(|| "/".to_owned()));
    let attempt = Attempt::new(id, &rd, now);
    let Some(cookie_id) = Attempt::cookie_id(&attempt.state) else {
        return html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::plain_page("Something went wrong", "Please try again."),
        );
    };

    let mut location = discovered.endpoints.authorization.clone();
    location
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.config.client_id)
        .append_pair("redirect_uri", &app.callback_url(id))
        .append_pair("scope", "openid email profile")
        .append_pair("state", &attempt.state)
        .append_pair("nonce", &attempt.nonce)
        .append_pair("code_challenge", &attempt.code_challenge())
        .append_pair("code_challenge_method", "S256");

    let mut response = redirect(StatusCode::FOUND, location.as_str());
    let keys = app.keys();
    let headers = response.headers_mut();
    // Bounded attempts: the oldest (and any we cannot read) go, so at most MAX_ATTEMPTS remain.
    let mut existing: Vec<(i64, String)> = crate::session::cookies(req.headers())
        .filter(|(name, _)| name.starts_with(&app.cookies.attempt_prefix))
        .map(|(name, value)| {
            let created =
                Attempt::unseal(&keys, &app.binding, value, now).map_or(i64::MIN, |a| a.created_at);
            (created, name.to_owned())
        })
        .collect();
    existing.sort();
    existing.dedup_by(|a, b| a.1 == b.1);
    let excess = (existing.len() + 1).saturating_sub(MAX_ATTEMPTS);
    for (_, name) in existing.iter().take(excess) {
        headers.append(header::SET_COOKIE, app.cookies.delete(name));
    }
    let name = format!("{}{cookie_id}", app.cookies.attempt_prefix);
    headers.append(
        header::SET_COOKIE,
        app.cookies
            .set(&name, &attempt.seal(&keys, &app.binding), ATTEMPT_TTL_SECS),
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Callback

/// A refused or failed sign-in: its reason, HTTP status and audit outcome.
struct Refusal {
    reason: &'static str,
    status: StatusCode,
    outcome: Outcome,
    user: Option<String>,
}

impl Refusal {
    fn failed(reason: &'static str, status: StatusCode) -> Self {
        Self {
            reason,
            status,
            outcome: Outcome::Failed,
            user: None,
        }
    }
}

async fn callback(app: &App, req: &Request<Incoming>, id: &str) -> Response<Body> {
    let Some(provider) = app.provider(id) else {
        return not_found();
    };
    let now = now_unix();
    let state = query_param(req, "state");
    let attempt_cookie = state
        .as_deref()
        .and_then(Attempt::cookie_id)
        .map(|cid| format!("{}{cid}", app.cookies.attempt_prefix));

    let result = complete_sign_in(
        app,
        req,
        provider,
        state.as_deref(),
        attempt_cookie.as_deref(),
        now,
    )
    .await;

    let mut response = match result {
        Ok((session, rd, hint)) => {
            audit::sign_in(
                id,
                Outcome::Success,
                None,
                Some(&session.user),
                Some(session.role.as_str()),
            );
            app.metrics.sign_in(id, Outcome::Success.as_str(), None);
            let mut r = redirect(StatusCode::FOUND, &rd);
            let ttl = session.expires_at - now;
            let sealed = session.seal(&app.keys(), &app.binding);
            r.headers_mut().append(
                header::SET_COOKIE,
                app.cookies.set(&app.cookies.session, &sealed, ttl),
            );
            if let Some(hint) = hint {
                r.headers_mut().append(
                    header::SET_COOKIE,
                    app.cookies.set(&app.cookies.logout_hint, &hint, ttl),
                );
            }
            r
        }
        Err(refusal) => {
            audit::sign_in(
                id,
                refusal.outcome,
                Some(refusal.reason),
                refusal.user.as_deref(),
                None,
            );
            app.metrics
                .sign_in(id, refusal.outcome.as_str(), Some(refusal.reason));
            html_response(
                refusal.status,
                pages::problem_page(refusal.reason, LOGIN_PATH),
            )
        }
    };
    if let Some(name) = attempt_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, app.cookies.delete(&name));
    }
    response
}

async fn complete_sign_in(
    app: &App,
    req: &Request<Incoming>,
    provider: &Provider,
    state: Option<&str>,
    attempt_cookie: Option<&str>,
    now: i64,
) -> Result<(Session, String, Option<String>), Refusal> {
    use StatusCode as S;
    let started = std::time::Instant::now();
    let keys = app.keys();
    let state = state.ok_or(Refusal::failed("state_invalid", S::BAD_REQUEST))?;
    let attempt = attempt_cookie
        .and_then(|name| {
            crate::session::cookies(req.headers())
                .filter(|(n, _)| *n == name)
                .find_map(|(_, v)| Attempt::unseal(&keys, &app.binding, v, now))
        })
        .filter(|a| constant_time_eq(a.state.as_bytes(), state.as_bytes()))
        .filter(|a| a.provider == provider.id())
        .ok_or(Refusal::failed("state_invalid", S::BAD_REQUEST))?;
    // Single use, also against a replay that carries a copy of the attempt cookie.
    if !app
        .used_states
        .insert(&attempt.state, attempt.created_at + ATTEMPT_TTL_SECS, now)
    {
        return Err(Refusal::failed("state_replayed", S::BAD_REQUEST));
    }

    if let Some(error) = query_param(req, "error") {
        let reason = if error == "access_denied" {
            "idp_denied"
        } else {
            "idp_error"
        };
        tracing::info!(provider = %provider.id(), error = %crate::providers::sanitize_code(&error), "identity provider returned an error");
        return Err(Refusal::failed(reason, S::FORBIDDEN));
    }
    let discovered = provider.discovered().ok_or(Refusal::failed(
        "provider_unavailable",
        S::SERVICE_UNAVAILABLE,
    ))?;
    // RFC 9207: the response's `iss` must be our provider's (mix-up attack defence).
    match query_param(req, "iss") {
        Some(iss) if iss != provider.config.issuer => {
            return Err(Refusal::failed("issuer_mismatch", S::BAD_REQUEST));
        }
        None if discovered.endpoints.iss_parameter_supported => {
            return Err(Refusal::failed("issuer_mismatch", S::BAD_REQUEST));
        }
        _ => {}
    }
    let code = query_param(req, "code")
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or(Refusal::failed("idp_error", S::BAD_REQUEST))?;

    let exchange_started = std::time::Instant::now();
    let raw_token = provider
        .exchange_code(
            &app.http,
            &code,
            &attempt.verifier,
            &app.callback_url(provider.id()),
        )
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.id(), error = %e, "code exchange failed");
            Refusal::failed("exchange_failed", S::BAD_GATEWAY)
        })?;
    let idp_round_trip = exchange_started.elapsed();
    let expected = Expected {
        issuer: &provider.config.issuer,
        client_id: &provider.config.client_id,
        nonce: &attempt.nonce,
        skew: app.config.clock_skew,
    };
    let token = verify_id_token(&raw_token, &discovered.jwks, &expected)
        .await
        .map_err(|e| Refusal::failed(e.reason(), S::BAD_REQUEST))?;

    let user = gatehouse_crds::names::sso_user_name(
        provider.id(),
        &provider.config.issuer,
        &token.subject,
    );
    let role = map_role(&provider.config.roles, &token.claims).map_err(|d| Refusal {
        reason: d.reason(),
        status: S::FORBIDDEN,
        outcome: Outcome::Denied,
        user: Some(user.clone()),
    })?;

    let text = |name: &str| {
        token
            .claims
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 512)
            .map(str::to_owned)
    };
    // An address the IdP says is unverified is not an identity.
    let email = text("email").filter(|_| token.claims.get("email_verified") != Some(&json!(false)));
    let username = text("preferred_username").or_else(|| email.clone());
    let signed_in = SignedInUser {
        user: user.clone(),
        provider: provider.id().to_owned(),
        issuer: provider.config.issuer.clone(),
        subject: token.subject.clone(),
        email: email.clone(),
        name: text("name"),
        preferred_username: username.clone(),
        role: role.as_str(),
        org: provider.config.org_id.clone(),
        attributes: crate::claims::attributes(&app.config.attribute_mappings, &token.claims),
    };
    let refused = |e: ProvisionError| {
        let (status, outcome) = match &e {
            e if e.is_denial() => (S::FORBIDDEN, Outcome::Denied),
            ProvisionError::Hook(_) => (S::BAD_GATEWAY, Outcome::Failed),
            _ => (S::SERVICE_UNAVAILABLE, Outcome::Failed),
        };
        if outcome == Outcome::Failed {
            tracing::warn!(provider = %provider.id(), user = %user, error = %e, "sign-in could not be recorded");
        }
        Refusal {
            reason: e.reason(),
            status,
            outcome,
            user: Some(user.clone()),
        }
    };
    // Read-only first: a refused user, an unreachable API or a failing hook leaves nothing behind.
    let admission = app.directory.admit(&signed_in).await.map_err(refused)?;

    let mut session = Session {
        sid: random_token(16),
        user: user.clone(),
        subject: token.subject.clone(),
        provider: provider.id().to_owned(),
        email,
        name: signed_in.name.clone(),
        username,
        role,
        issued_at: now,
        expires_at: now + i64::try_from(app.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 2),
        user_uid: None,
    };
    if let Some(hook) = &app.hook {
        let identity = app.identity.headers_for(&session, provider, now);
        hook.call(&signed_in, &identity.headers)
            .await
            .map_err(refused)?;
    }
    session.user_uid = app
        .directory
        .provision(&signed_in, admission)
        .await
        .map_err(refused)?
        .user_uid;

    let hint = discovered
        .endpoints
        .end_session
        .as_ref()
        .map(|_| keys.seal(Purpose::LogoutHint, &app.binding, raw_token.as_bytes()))
        .filter(|sealed| sealed.len() <= MAX_HINT_COOKIE);
    app.metrics.sign_in_handling(
        started
            .elapsed()
            .saturating_sub(idp_round_trip)
            .as_secs_f64(),
    );
    Ok((session, attempt.rd, hint))
}

// ---------------------------------------------------------------------------------------------
// Logout, session, JWKS

fn logout(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let now = now_unix();
    let keys = app.keys();
    let session = crate::session::cookies(req.headers())
        .filter(|(name, _)| *name == app.cookies.session)
        .find_map(|(_, value)| Session::unseal(&keys, &app.binding, value, now));
    let hint = crate::session::cookie(req.headers(), &app.cookies.logout_hint)
        .and_then(|v| keys.unseal(Purpose::LogoutHint, &app.binding, v))
        .and_then(|raw| String::from_utf8(raw).ok());

    let mut location = format!("{LOGIN_PATH}?state=signed-out");
    if let Some(session) = &session {
        app.logged_out.insert(&session.sid, session.expires_at, now);
        app.identity.forget(&session.sid);
        tracing::info!(target: "gatehouse::audit", event = "sign_out", provider = %session.provider, user = %session.user, "signed out");
        if let Some(provider) = app.provider(&session.provider)
            && let Some(end_session) = provider
                .discovered()
                .and_then(|d| d.endpoints.end_session.as_ref())
        {
            let mut url = end_session.clone();
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("client_id", &provider.config.client_id)
                    .append_pair(
                        "post_logout_redirect_uri",
                        &format!("{}{LOGIN_PATH}", app.origin),
                    )
                    .append_pair("state", "signed-out");
                if let Some(hint) = &hint {
                    q.append_pair("id_token_hint", hint);
                }
            }
            location = url.to_string();
        }
    }
    let status = if req.method() == Method::POST {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut response = redirect(status, &location);
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, app.cookies.delete(&app.cookies.session));
    h.append(
        header::SET_COOKIE,
        app.cookies.delete(&app.cookies.logout_hint),
    );
    response
}

fn session_json(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let now = now_unix();
    let Some(s) = app.session(req.headers(), now) else {
        return json_response(StatusCode::UNAUTHORIZED, json!({ "authenticated": false }));
    };
    let org = app.provider(&s.provider).map(|p| p.config.org_id.clone());
    let expires_at = jiff::Timestamp::from_second(s.expires_at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    json_response(
        StatusCode::OK,
        json!({
            "authenticated": true,
            "user": {
                "id": s.user,
                "subject": s.subject,
                "email": s.email,
                "name": s.name,
                "preferred_username": s.username,
                "role": s.role.as_str(),
                "org": org,
                "provider": s.provider,
            },
            "expires_at": expires_at,
        }),
    )
}

fn jwks(app: &App) -> Response<Body> {
    let mut r = Response::new(Body::from(app.identity.jwks()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

// ---------------------------------------------------------------------------------------------
// The gate in front of the app

/// Whether a path (as forwarded) is covered by `GATEHOUSE_SKIP_AUTH`.
pub fn is_skipped(skip: &[String], raw_path: &str) -> bool {
    !skip.is_empty()
        && canonical_path(raw_path)
            .is_some_and(|p| skip.iter().any(|prefix| under_prefix(&p, prefix)))
}

async fn gate(app: &App, req: Request<Incoming>, peer: &HeaderValue) -> Response<Body> {
    // Everything before the app is asked is synchronous, so none of it is kept in this future:
    // the future is moved several times per request, and its size is paid for each time.
    let (request, wants_html) = match admit(app, req) {
        Gate::Pass {
            request,
            wants_html,
        } => (request, wants_html),
        Gate::Answer(response) => return response,
    };
    match app.upstream.forward(request, peer).await {
        Ok((response, elapsed)) => {
            app.metrics.proxy_latency(elapsed.as_secs_f64());
            response
        }
        Err(e) => {
            if let Some(fault) = e.body_fault() {
                return body_refused(fault, wants_html);
            }
            tracing::warn!(error = %e, "app unreachable");
            app.metrics.upstream_error();
            if wants_html {
                html_response(
                    StatusCode::BAD_GATEWAY,
                    pages::plain_page(
                        "Application unavailable",
                        "The application is not responding right now. Please try again in a moment.",
                    ),
                )
            } else {
                json_response(
                    StatusCode::BAD_GATEWAY,
                    json!({ "error": "upstream_unavailable" }),
                )
            }
        }
    }
}

/// What the gate does with a request.
enum Gate {
    /// On to the app, as it gets it: client identity and our cookies stripped, the session's
    /// identity added. `wants_html` picks the kind of error page if the app cannot be reached.
    Pass {
        request: Request<Body>,
        wants_html: bool,
    },
    /// Answered by the sidecar instead (login redirect, 401).
    Answer(Response<Body>),
}

fn admit(app: &App, req: Request<Incoming>) -> Gate {
    let now = now_unix();
    let session = app.session(req.headers(), now);
    if session.is_none()
        && let Some(r) = refuse_without_session(app, &req)
    {
        return Gate::Answer(r);
    }
    let (mut parts, body) = req.into_parts();
    let body = match bounded_body(
        body,
        app.config.max_request_body,
        app.config.request_body_timeout,
    ) {
        Ok(body) => body,
        Err(fault) => return Gate::Answer(body_refused(fault, accepts_html(&parts.headers))),
    };
    strip_client_identity(&mut parts.headers);
    strip_own_cookies(&mut parts.headers);
    if let Some(session) = &session
        && let Some(provider) = app.provider(&session.provider)
    {
        let identity = app.identity.headers_for(session, provider, now);
        // Room for these and the forwarding headers at once, instead of growing (and rehashing)
        // the map several times on the way.
        parts
            .headers
            .reserve(identity.headers.len() + FORWARDING_HEADERS);
        for (name, value) in &identity.headers {
            // `insert`, not `append`: whatever a client sent under one of these names must not
            // survive beside ours, even for a name the stripping above would not know.
            parts.headers.insert(name.clone(), value.clone());
        }
    }
    let wants_html = accepts_html(&parts.headers);
    Gate::Pass {
        request: Request::from_parts(parts, body),
        wants_html,
    }
}

/// The answer to a request whose body the sidecar would not send on: 413 (over
/// `GATEHOUSE_MAX_REQUEST_BODY`) or 408 (stalled). hyper closes the connection after it, as the rest
/// of the body is never read.
fn body_refused(fault: BodyFault, wants_html: bool) -> Response<Body> {
    let (status, code, title, text) = match fault {
        BodyFault::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_body_too_large",
            "Upload too large",
            "The request body is larger than this application accepts.",
        ),
        BodyFault::Stalled => (
            StatusCode::REQUEST_TIMEOUT,
            "request_body_timeout",
            "Upload stalled",
            "The request body stopped arriving. Please try again.",
        ),
    };
    tracing::info!(
        status = status.as_u16(),
        reason = code,
        "request body refused"
    );
    if wants_html {
        html_response(status, pages::plain_page(title, text))
    } else {
        json_response(status, json!({ "error": code }))
    }
}

/// For a request without a session: the answer that replaces the app's, if any.
fn refuse_without_session(app: &App, req: &Request<Incoming>) -> Option<Response<Body>> {
    let path = req.uri().path();
    match app.config.auth_mode {
        AuthMode::Optional => {
            // The app's own login page becomes the exclusive provider's sign-in, except break-glass.
            let exclusive = app.config.exclusive_provider.as_deref()?;
            let login = app.config.app_login_path.as_deref()?;
            let is_login = canonical_path(path).is_some_and(|p| p == login);
            if is_login && query_param(req, "providers").as_deref() != Some("all") {
                return Some(redirect(StatusCode::FOUND, &start_url(exclusive, "/")));
            }
            None
        }
        AuthMode::Required => {
            if is_skipped(&app.config.skip_auth, path) {
                return None;
            }
            if accepts_html(req.headers()) && upgrade_protocol(req).is_none() {
                let rd = if matches!(*req.method(), Method::GET | Method::HEAD) {
                    req.uri().path_and_query().map_or("/", |p| p.as_str())
                } else {
                    "/"
                };
                let location =
                    format!("{LOGIN_PATH}?rd={}", encode_query_value(&safe_redirect(rd)));
                return Some(redirect(StatusCode::FOUND, &location));
            }
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                json!({ "error": "unauthenticated", "login_url": LOGIN_PATH }),
            );
            r.headers_mut().insert(
                HeaderName::from_static("www-authenticate"),
                HeaderValue::from_static("Cookie realm=\"gatehouse\""),
            );
            Some(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, C, F, Fut>(_: F) -> usize
    where
        F: FnOnce(A, B, C) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// hyper moves each request's future several times; when sign-in's future was inlined into
    /// it, every proxied request copied 10 KB around (half the sidecar's instructions).
    #[test]
    fn a_request_future_stays_small_whatever_sign_in_needs() {
        let request = future_size(handle);
        let sign_in = future_size(callback);
        eprintln!("handle: {request} bytes, callback: {sign_in} bytes");
        assert!(
            request < sign_in,
            "the sign-in callback's future ({sign_in} bytes) is inlined into every request's \
             ({request} bytes): box it"
        );
        assert!(
            request <= 4096,
            "every request's future is {request} bytes; keep rare, large work boxed"
        );
    }
}
