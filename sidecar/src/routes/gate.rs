//! The gate in front of the app: the router's fallback service. A request with a valid session
//! goes on with the session's identity headers; without one, `GATEHOUSE_AUTH_MODE` decides
//! (login redirect, 401, or on to the app without identity). Client-sent identity headers and
//! the sidecar's cookies never reach the app.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use futures::FutureExt as _;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use serde_json::json;
use tower::Service;

use super::sign_in::start_url;
use crate::config::AuthMode;
use crate::judge::{Refusal, SessionLookup};
use crate::metrics::Handler as MetricHandler;
use crate::pages::{self, encode_query_value, html_response};
use crate::pages::{json_response, redirect};
use crate::revalidation::{DEPARTURE_WAIT, Departure, Step};
use crate::state::App;
use gatehouse_auth::access::{Decision, Policy, PrincipalType, RequestFacts, Who};
use gatehouse_auth::cookie::Session;
use gatehouse_auth::identity::{MACHINE_SESSION_PREFIX, ProviderIdentity};
use gatehouse_auth::machine::BearerError;
use gatehouse_auth::paths::{canonical_path, safe_redirect, under_prefix};
use gatehouse_auth::token::now_unix;
use gatehouse_crds::consts::LOGIN_PATH;
use gatehouse_proxy::ProxyError;
use gatehouse_proxy::body::{BodyFault, bounded_body};
use gatehouse_proxy::close::CutOnClose;
use gatehouse_proxy::headers::{
    FORWARDING_HEADERS, strip_client_hop_by_hop, strip_client_identity, strip_own_cookies,
};
use gatehouse_proxy::upgrade::upgrade_protocol;

/// Whether a path (as forwarded) is covered by `GATEHOUSE_SKIP_AUTH`.
pub fn is_skipped(skip: &[String], raw_path: &str) -> bool {
    !skip.is_empty()
        && canonical_path(raw_path)
            .is_some_and(|p| skip.iter().any(|prefix| under_prefix(&p, prefix)))
}

/// The gate as the router's fallback service.
pub(super) fn service(
    app: Arc<App>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |req: Request<Body>| gate(app.clone(), req).map(Ok))
}

/// Admits a request to the app (or answers it), forwards it, and counts it.
pub(super) async fn gate(app: Arc<App>, mut req: Request<Body>) -> Response<Body> {
    let peer = req.extensions_mut().remove::<ClientAddr>().map_or_else(
        || HeaderValue::from_static("unknown"),
        |ClientAddr(addr)| addr,
    );
    // Everything before the app is asked is synchronous, so none of it is kept in this future:
    // the future is moved several times per request, and its size is paid for each time. The
    // one exception, a watch-cache miss for a session issued moments ago, reads the API in a
    // boxed future of its own.
    let now = now_unix();
    // A session due for re-validation sends a flight off in the background once the app has
    // answered; one already renewed goes on as renewed, and its browser gets the renewed
    // cookies with this response.
    let mut renewal = None;
    let mut departure = None;
    let mut refresh_cookie = None;
    // A bearer token, where machine clients are configured, decides alone: with a session cookie
    // beside it too.
    let bearer = app
        .machine
        .as_ref()
        .and_then(|_| bearer_token(req.headers()));
    let gate = if let Some(token) = bearer {
        Box::pin(admit_machine(&app, req, token, now)).await
    } else {
        match app.session_from_cache(req.headers(), now) {
            SessionLookup::Valid(session) => {
                let step = app.flights.revalidate(&session, req.headers(), now);
                if step.unvouched {
                    // Due for re-validation with nothing to re-validate it with: refused, as a
                    // session past its grace is.
                    app.judge.refused(&session, Refusal::RevalidationUnvouched);
                    admit(&app, req, None, now)
                } else {
                    Step {
                        renewal,
                        departure,
                        ..
                    } = step;
                    refresh_cookie = app.flights.refresh_cookie_header(&session, req.headers());
                    let session = renewal.as_ref().map_or(session, |r| r.session.clone());
                    admit(&app, req, Some(session), now)
                }
            }
            SessionLookup::None => admit(&app, req, None, now),
            SessionLookup::Unconfirmed(session) => {
                Box::pin(admit_confirmed(&app, req, session, now)).await
            }
        }
    };
    let mut response = match gate {
        Gate::Pass {
            request,
            wants_html,
            session,
        } => match match departure.take() {
            None => app.upstream.forward(request, &peer).await,
            Some(flight) => Box::pin(forward_then_depart(&app, request, &peer, flight)).await,
        } {
            Ok((response, elapsed)) => {
                app.metrics.proxy_latency(elapsed.as_secs_f64());
                match session {
                    Some(session) => {
                        // A re-validation another request started may have landed meanwhile.
                        if renewal.is_none() {
                            renewal = app.revalidation.ready(&session, now_unix());
                        }
                        cut_on_session_end(&app, &session, response, refresh_cookie)
                    }
                    None => response,
                }
            }
            Err(e) => upstream_failed(&app, &e, wants_html),
        },
        Gate::Answer(response) => response,
    };
    if let Some(renewal) = renewal {
        renewal.set_cookies(response.headers_mut(), &app.sessions.cookies, now_unix());
    }
    if let Some(flight) = departure {
        flight.leave_now();
    }
    app.metrics.request(MetricHandler::Proxy, response.status());
    response
}

/// Forwards a request whose session is due, and sends its re-validation flight off once the
/// app has answered (the response head; a streamed body goes on), or after [`DEPARTURE_WAIT`]
/// when the app is slower: a flight's own work does not delay the request that started it, and
/// a slow app does not delay the flight.
async fn forward_then_depart(
    app: &App,
    request: Request<Body>,
    peer: &HeaderValue,
    flight: Departure,
) -> Result<(Response<Body>, std::time::Duration), ProxyError> {
    let mut forward = std::pin::pin!(app.upstream.forward(request, peer));
    match tokio::time::timeout(DEPARTURE_WAIT, &mut forward).await {
        Ok(answered) => {
            flight.leave_now();
            answered
        }
        Err(_) => {
            flight.leave_now();
            forward.await
        }
    }
}

/// The answer when the exchange with the app failed: the client's body at fault (413/408), the
/// app too slow to answer (504), or the app unreachable (502).
fn upstream_failed(app: &App, e: &ProxyError, wants_html: bool) -> Response<Body> {
    if let Some(fault) = e.body_fault() {
        return body_refused(fault, wants_html);
    }
    app.metrics.upstream_error();
    if let ProxyError::ResponseTimeout(limit) = e {
        tracing::warn!(timeout = ?limit, "the app did not answer in time (GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT)");
        return unavailable(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", wants_html);
    }
    tracing::warn!(error = %DisplayChain(e), "app unreachable");
    unavailable(StatusCode::BAD_GATEWAY, "upstream_unavailable", wants_html)
}

/// An error and its sources, `: `-separated, for a log line.
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// What the gate does with a request.
enum Gate {
    /// On to the app, as it gets it: client identity and our cookies stripped, the session's
    /// identity added. `wants_html` picks the kind of error page if the app cannot be reached.
    Pass {
        request: Request<Body>,
        wants_html: bool,
        /// The session, when the request has one.
        session: Option<Arc<Session>>,
    },
    /// Answered by the sidecar instead (login redirect, 401).
    Answer(Response<Body>),
}

/// [`admit`] once the API has settled whether `session`'s user exists.
async fn admit_confirmed(app: &App, req: Request<Body>, session: Arc<Session>, now: i64) -> Gate {
    let session = app.confirm_session(session).await;
    admit(app, req, session, now)
}

fn admit(app: &App, req: Request<Body>, session: Option<Arc<Session>>, now: i64) -> Gate {
    match &app.config.access {
        Some(policy) => {
            if let Some(r) = authorize(app, policy, &req, session.as_deref()) {
                return Gate::Answer(r);
            }
        }
        None => {
            if session.is_none()
                && let Some(r) = refuse_without_session(app, &req)
            {
                return Gate::Answer(r);
            }
        }
    }
    pass(app, req, session, None, now)
}

/// A machine client, as the app sees it: a stand-in session for its identity headers (id
/// `machine:<hash of the token>`, so its headers are cached per token), and its issuer.
struct MachineIdentity {
    session: Session,
    provider: ProviderIdentity,
    /// Whether the app receives the client's `Authorization` header.
    forward_token: bool,
}

/// A request admitted (with the session or machine identity it carries, or none) as the app gets
/// it: hop-by-hop and client identity headers and our cookies removed, the body bounded, the
/// identity headers added.
fn pass(
    app: &App,
    req: Request<Body>,
    session: Option<Arc<Session>>,
    machine: Option<MachineIdentity>,
    now: i64,
) -> Gate {
    let upgrade_asked = upgrade_protocol(&req);
    let upgrade = upgrade_asked.is_some();
    let (mut parts, body) = req.into_parts();
    // First, before anything is added: what the client named hop-by-hop goes, so it cannot name
    // away a header the sidecar adds below.
    strip_client_hop_by_hop(&mut parts.headers, upgrade_asked);
    let body = match bounded_body(
        body,
        app.config.max_request_body,
        app.config.request_body_timeout,
    ) {
        Ok(body) => body,
        Err(fault) => return Gate::Answer(body_refused(fault, accepts_html(&parts.headers))),
    };
    if let Some(session) = &session
        && upgrade
    {
        // A tunnel may outlive every other request of its session: keep what re-validates it.
        app.flights
            .remember_refresh_grant(session, &parts.headers, now);
    }
    strip_client_identity(&mut parts.headers);
    strip_own_cookies(&mut parts.headers);
    if app.config.access.is_some() {
        // The rules decided on the method as sent: an app must not read another from these.
        for name in METHOD_OVERRIDE_HEADERS {
            parts.headers.remove(name);
        }
    }
    if let Some(machine) = &machine
        && !machine.forward_token
    {
        parts.headers.remove(header::AUTHORIZATION);
    }
    let identity = match (&session, &machine) {
        (Some(session), _) => app
            .providers
            .identity(&session.provider)
            .map(|provider| app.identity.headers_for(session, provider, now)),
        (None, Some(m)) => Some(app.identity.headers_for(&m.session, &m.provider, now)),
        (None, None) => None,
    };
    if let Some(identity) = identity {
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
    let mut request = Request::from_parts(parts, body);
    if let Some(session) = &session
        && upgrade
    {
        // The tunnel, if the app accepts the upgrade, closes when the session ends.
        request.extensions_mut().insert(app.live.register(session));
    }
    Gate::Pass {
        request,
        wants_html,
        session,
    }
}

/// What the access rules decide a request on: its method, its `Host` (HTTP/2: `:authority`;
/// never `X-Forwarded-Host`) and its path.
fn request_facts(req: &Request<Body>) -> RequestFacts<'_> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str));
    RequestFacts {
        method: req.method(),
        host,
        path: req.uri().path(),
    }
}

/// The token of the request's first `Authorization: Bearer` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_owned())
}

/// The answer to a request with two `Authorization` headers: which one counts is a guess.
fn two_authorizations() -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "error": "invalid_request", "error_description": "more than one Authorization header" }),
    )
}

/// A machine client's request: its bearer token decides (an invalid one is a 401 even beside a
/// valid session cookie), then its role and the access rules.
async fn admit_machine(app: &App, req: Request<Body>, token: String, now: i64) -> Gate {
    let Some(machine) = &app.machine else {
        return admit(app, req, None, now);
    };
    if req.headers().get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Gate::Answer(two_authorizations());
    }
    let principal = match machine.verify(&token).await {
        Ok(principal) => principal,
        Err(e) => {
            crate::audit::bearer_refused(e.reason(), req.method().as_str(), req.uri().path());
            app.metrics.access_refused(false, Some(e.reason()));
            if e == BearerError::Unverifiable {
                // Not the client's fault: it may retry, with the same token.
                let mut r = json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": "temporarily_unavailable", "error_description": e.reason() }),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return Gate::Answer(r);
            }
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                json!({ "error": "invalid_token", "error_description": e.reason() }),
            );
            r.headers_mut().insert(
                HeaderName::from_static("www-authenticate"),
                HeaderValue::from_static("Bearer realm=\"gatehouse\", error=\"invalid_token\""),
            );
            return Gate::Answer(r);
        }
    };
    let refused: Option<Option<&str>> = match (principal.role, &app.config.access) {
        (None, _) => Some(Some("no_role")),
        (Some(_), None) => None,
        (Some(_), Some(policy)) => {
            match policy.decide(&request_facts(&req), Some(&principal.who())) {
                Decision::Allow { .. } => None,
                Decision::Deny { rule } => Some(rule),
                Decision::SignIn => Some(None),
            }
        }
    };
    if let Some(rule) = refused {
        app.metrics.access_refused(true, rule);
        crate::audit::access_denied(
            rule.unwrap_or("default"),
            &principal.id,
            &principal.issuer_name,
            req.method().as_str(),
            req.uri().path(),
        );
        return Gate::Answer(json_response(
            StatusCode::FORBIDDEN,
            json!({ "error": "forbidden" }),
        ));
    }
    let role = principal
        .role
        .unwrap_or(gatehouse_auth::claims::Role::Member);
    // The first 12 bytes of the token's SHA-256 digest (made once, by the verification), in hex.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut sid = String::with_capacity(MACHINE_SESSION_PREFIX.len() + 24);
    sid.push_str(MACHINE_SESSION_PREFIX);
    for b in &principal.digest[..12] {
        sid.push(char::from(HEX[usize::from(b >> 4)]));
        sid.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    let identity = MachineIdentity {
        session: Session {
            sid,
            user: principal.id.clone(),
            subject: principal.subject.clone(),
            provider: principal.issuer_name.clone(),
            email: None,
            name: None,
            username: None,
            role,
            issued_at: now,
            expires_at: principal.expires_at,
            user_uid: None,
            idp_sid: None,
            validated_at: None,
            groups: Vec::new(),
            claims: None,
            facts: None,
            groups_unknown: false,
        },
        provider: ProviderIdentity::new(&principal.issuer_name, ""),
        forward_token: machine.forward_token(),
    };
    pass(app, req, None, Some(identity), now)
}

/// Headers some frameworks read a method from in place of the request's own; removed with access
/// rules, which decide on the request's method.
const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The access rules' answer to a request, when it is not to reach the app: 400 for two
/// `Authorization` headers, the sign-in (login redirect or 401) where credentials could help,
/// else 403 with an audit line naming the rule. `None`: on to the app.
fn authorize(
    app: &App,
    policy: &Policy,
    req: &Request<Body>,
    session: Option<&Session>,
) -> Option<Response<Body>> {
    let headers = req.headers();
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Some(two_authorizations());
    }
    let facts = request_facts(req);
    // A session signed in under rules that named other groups or claims lacks facts these rules
    // may ask about: it is not decided on them, but asked to sign in again.
    let session = session.filter(|s| policy.facts_current(s.facts.as_deref()));
    let who = session.map(|s| Who {
        kind: PrincipalType::User,
        user: &s.user,
        role: Some(s.role),
        groups: &s.groups,
        email: s.email.as_deref(),
        provider: &s.provider,
        service_account: None,
        client: None,
        claims: s.claims.as_ref(),
    });
    // A session whose groups could not be read (Entra ID group overage, Graph unanswered) is
    // decided with them unknown: a rule needing a group does not admit, a Deny on one refuses.
    let groups_unknown = session.is_some_and(|s| s.groups_unknown);
    let decision = match &who {
        Some(who) if groups_unknown => policy.decide_groups_unknown(&facts, who),
        who => policy.decide(&facts, who.as_ref()),
    };
    let rule = match decision {
        Decision::Allow { .. } => return None,
        Decision::SignIn => {
            let skipped = is_skipped(&app.config.skip_auth, req.uri().path());
            if skipped || app.config.auth_mode == AuthMode::Optional {
                // A public path, or an app that signs its anonymous visitors in itself.
                return None;
            }
            app.metrics.access_refused(false, None);
            return Some(sign_in_first(req));
        }
        Decision::Deny { rule } => rule,
    };
    // `skipAuth` paths stay public unless a `Deny` rule itself refuses them.
    if session.is_none() && rule.is_none() && is_skipped(&app.config.skip_auth, req.uri().path()) {
        return None;
    }
    app.metrics.access_refused(true, rule);
    let audit = if groups_unknown {
        crate::audit::access_denied_groups_unknown
    } else {
        crate::audit::access_denied
    };
    audit(
        rule.unwrap_or("default"),
        session.map_or("anonymous", |s| s.user.as_str()),
        session.map_or("", |s| s.provider.as_str()),
        req.method().as_str(),
        req.uri().path(),
    );
    Some(if accepts_html(headers) {
        let text = if groups_unknown {
            "You are signed in, but your group memberships could not be read from your identity provider, so this part of the application is closed to you for now. Sign in again later."
        } else if session.is_some() {
            "You are signed in, but this part of the application is not open to you. Ask your administrator for access."
        } else {
            "This part of the application is not open to anyone who could sign in here."
        };
        html_response(StatusCode::FORBIDDEN, pages::plain_page("No access", text))
    } else {
        json_response(StatusCode::FORBIDDEN, json!({ "error": "forbidden" }))
    })
}

/// The answer to an anonymous request the rules would admit with credentials: a browser
/// navigation goes to the login page; anything else, and any request that brought a bearer
/// token, gets 401 with `WWW-Authenticate: Bearer` (an API client is never redirected).
fn sign_in_first(req: &Request<Body>) -> Response<Body> {
    let headers = req.headers();
    let bearer = headers.get(header::AUTHORIZATION).is_some_and(|v| {
        v.as_bytes().len() > 7 && v.as_bytes()[..7].eq_ignore_ascii_case(b"bearer ")
    });
    let navigation = accepts_html(headers)
        || headers
            .get("sec-fetch-mode")
            .is_some_and(|v| v.as_bytes() == b"navigate");
    if navigation && !bearer && upgrade_protocol(req).is_none() {
        return login_redirect(req);
    }
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        json!({ "error": "unauthenticated", "login_url": LOGIN_PATH }),
    );
    r.headers_mut().insert(
        HeaderName::from_static("www-authenticate"),
        HeaderValue::from_static("Bearer realm=\"gatehouse\""),
    );
    r
}

/// The redirect to the login page, back to this request's path (for a `GET` or `HEAD`) after it.
fn login_redirect(req: &Request<Body>) -> Response<Body> {
    let rd = if matches!(*req.method(), Method::GET | Method::HEAD) {
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    } else {
        "/"
    };
    let location = format!("{LOGIN_PATH}?rd={}", encode_query_value(&safe_redirect(rd)));
    redirect(StatusCode::FOUND, &location)
}

/// Responses with a `Content-Length` of at least this many bytes (a download) are cut when their
/// session ends, like streams of unknown length.
const CUT_KNOWN_LENGTH_FROM: u64 = 256 * 1024;

/// A streamed response (no `Content-Length`, or a long one) of a session is cut when the session
/// ends. `refresh_cookie`: the request's `Cookie` header with the session's refresh cookie, kept
/// so the stream's session can be re-validated while no other request comes.
fn cut_on_session_end(
    app: &App,
    session: &Arc<Session>,
    response: Response<Body>,
    refresh_cookie: Option<HeaderValue>,
) -> Response<Body> {
    // Small bodies of a known length are over before a session's end could matter, and most
    // responses are such: they are not registered (a lock and a map entry per request).
    let long_or_unknown = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_none_or(|length| length >= CUT_KNOWN_LENGTH_FROM);
    let streamed = response.status() != StatusCode::SWITCHING_PROTOCOLS
        && long_or_unknown
        && !hyper::body::Body::is_end_stream(response.body());
    if !streamed {
        return response;
    }
    if let Some(cookie) = refresh_cookie {
        let mut headers = http::HeaderMap::with_capacity(1);
        headers.insert(http::header::COOKIE, cookie);
        app.flights
            .remember_refresh_grant(session, &headers, now_unix());
    }
    let end = app.live.register(session);
    response.map(|body| Body::new(CutOnClose::new(body, end)))
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
fn refuse_without_session(app: &App, req: &Request<Body>) -> Option<Response<Body>> {
    let path = req.uri().path();
    match app.config.auth_mode {
        AuthMode::Optional => {
            // The app's own login page becomes the exclusive provider's sign-in, except break-glass.
            let exclusive = app.config.exclusive_provider.as_deref()?;
            let login = app.config.app_login_path.as_deref()?;
            let is_login = canonical_path(path).is_some_and(|p| p == login);
            if is_login && query_param(req.uri(), "providers").as_deref() != Some("all") {
                return Some(redirect(StatusCode::FOUND, &start_url(exclusive, "/")));
            }
            None
        }
        AuthMode::Required => {
            if is_skipped(&app.config.skip_auth, path) {
                return None;
            }
            if accepts_html(req.headers()) && upgrade_protocol(req).is_none() {
                return Some(login_redirect(req));
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

/// The first value of query parameter `name`.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
/// The client's address as sent in `X-Forwarded-For`, set on each request by the listener.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub HeaderValue);

fn accepts_html(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.as_bytes()
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"text/html"))
    })
}

/// The 502 the client gets when the app cannot be reached, as a page or as JSON.
fn unavailable(status: StatusCode, code: &str, wants_html: bool) -> Response<Body> {
    if wants_html {
        let (title, text) = if status == StatusCode::GATEWAY_TIMEOUT {
            (
                "Application not answering",
                "The application took too long to answer. Please try again in a moment.",
            )
        } else {
            (
                "Application unavailable",
                "The application is not responding right now. Please try again in a moment.",
            )
        };
        html_response(status, pages::plain_page(title, text))
    } else {
        json_response(status, json!({ "error": code }))
    }
}
