//! Sign-in: the login page, the start of an OIDC sign-in, and the callback that completes it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::header;
use http::{HeaderMap, StatusCode};

use super::extract::{CurrentSession, ProviderId, QueryParams};
use crate::config::Config;
use crate::error::SignInError;
use crate::pages::{self, LoginPage, ProviderButton, html_response};
use crate::pages::{encode_query_value, not_found_page, redirect};
use crate::pipeline::SignedIn;
use crate::providers::Providers;
use crate::providers::jwks::verify_id_token;
use crate::providers::{Discovered, ExchangedTokens, Provider};
use crate::sessions::Sessions;
use crate::state::{App, Site};
use gatehouse_auth::cookie::{ATTEMPT_TTL_SECS, Attempt, MAX_ATTEMPT_COOKIES, RefreshGrant};
use gatehouse_auth::paths::safe_redirect;
use gatehouse_auth::signin::VerifiedIdentity;
use gatehouse_auth::token::{Expected, Nonce, constant_time_eq, now_unix};
use gatehouse_crds::consts::LOGIN_PATH;

/// Largest logout hint (sealed ID token) kept as a cookie.
const MAX_HINT_COOKIE: usize = 3072;

// ---------------------------------------------------------------------------------------------
// Login page

/// `GET /login`.
pub(super) async fn login(
    State(config): State<Arc<Config>>,
    State(providers): State<Arc<Providers>>,
    State(site): State<Arc<Site>>,
    q: QueryParams,
    CurrentSession(session): CurrentSession,
) -> Response<Body> {
    let rd = safe_redirect(&q.get("rd").unwrap_or_else(|| "/".to_owned()));
    let show_all = q.get("providers").as_deref() == Some("all");
    let reason = if q.get("state").as_deref() == Some("signed-out") {
        Some("signed_out".to_owned())
    } else {
        q.get("error").filter(|e| pages::message_for(e).is_some())
    };
    if reason.is_none() && session.is_some() {
        return redirect(StatusCode::FOUND, &rd);
    }
    let exclusive = config.exclusive_provider.as_deref();
    if let Some(only) = exclusive
        && !show_all
        && reason.is_none()
    {
        return redirect(StatusCode::FOUND, &start_url(only, &rd));
    }
    let buttons = providers
        .methods()
        .filter(|(id, _)| show_all || exclusive.is_none_or(|only| id == &only))
        .map(|(id, label)| ProviderButton { id, label })
        .collect();
    let app_login = config.app_login_path.as_ref().and_then(|path| {
        match exclusive {
            None => Some(path.clone()),
            // The break-glass parameter keeps optional+exclusive mode from redirecting it back.
            Some(_) if show_all => Some(format!("{path}?providers=all")),
            Some(_) => None,
        }
    });
    let page = LoginPage {
        app: &site.name,
        providers: buttons,
        rd: &rd,
        reason: reason.as_deref(),
        app_login,
    };
    html_response(StatusCode::OK, page.render())
}

// ---------------------------------------------------------------------------------------------
// Start

/// `GET /api/auth/oauth2/start/{provider}`.
pub(super) async fn start(
    State(config): State<Arc<Config>>,
    State(providers): State<Arc<Providers>>,
    State(sessions): State<Arc<Sessions>>,
    State(site): State<Arc<Site>>,
    ProviderId(id): ProviderId,
    q: QueryParams,
    headers: HeaderMap,
) -> Response<Body> {
    let id = id.as_str();
    let Some(provider) = providers.get(id) else {
        return not_found_page();
    };
    let Some(discovered) = provider.discovered() else {
        return html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem_page("provider_unavailable", LOGIN_PATH),
        );
    };
    let now = now_unix();
    let rd = safe_redirect(&q.get("rd").unwrap_or_else(|| "/".to_owned()));
    let mut attempt = Attempt::new(id, &rd, now);
    attempt.offline = config.revalidate_interval.is_some() && provider.offers_offline_access();
    // Started again after the provider answered `invalid_scope` to `offline_access`: this
    // attempt asks without it, and still expects a refresh token (`attempt.offline`), so a
    // session without one ends when it is due for re-validation.
    attempt.scope_without_offline = q.get("offline").as_deref() == Some("0");
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
        .append_pair("redirect_uri", &site.callback_url(id))
        .append_pair("scope", scope(attempt.asks_offline_access()))
        .append_pair("state", &attempt.state)
        .append_pair("nonce", &attempt.nonce)
        .append_pair("code_challenge", &attempt.code_challenge())
        .append_pair("code_challenge_method", "S256");

    let mut response = redirect(StatusCode::FOUND, location.as_str());
    set_attempt_cookie(
        response.headers_mut(),
        &sessions,
        &headers,
        &attempt,
        cookie_id,
        false,
        now,
    );
    response
}

/// The scopes a sign-in asks for: `offline_access` too when it wants a refresh token
/// (re-validation on, and the provider offers it).
fn scope(offline: bool) -> &'static str {
    if offline {
        "openid email profile offline_access"
    } else {
        "openid email profile"
    }
}

/// Adds the sealed attempt cookie of a new sign-in attempt to `out`, deleting the oldest of the
/// browser's attempt cookies (and any we cannot read) so that at most [`MAX_ATTEMPT_COOKIES`] remain.
/// `cross_site`: the IdP answers with a cross-site POST (SAML), so the cookie must be
/// `SameSite=None` to come back.
pub(super) fn set_attempt_cookie(
    out: &mut HeaderMap,
    sessions: &Sessions,
    request: &HeaderMap,
    attempt: &Attempt,
    cookie_id: &str,
    cross_site: bool,
    now: i64,
) {
    let keys = sessions.keys();
    let mut existing: Vec<(i64, String)> = gatehouse_auth::cookie::cookies(request)
        .filter(|(name, _)| name.starts_with(&sessions.cookies.attempt_prefix))
        .map(|(name, value)| {
            let created = Attempt::unseal(&keys, &sessions.binding, value, now)
                .map_or(i64::MIN, |a| a.created_at);
            (created, name.to_owned())
        })
        .collect();
    existing.sort();
    existing.dedup_by(|a, b| a.1 == b.1);
    let excess = (existing.len() + 1).saturating_sub(MAX_ATTEMPT_COOKIES);
    for (_, name) in existing.iter().take(excess) {
        out.append(header::SET_COOKIE, sessions.cookies.delete(name));
    }
    let name = format!("{}{cookie_id}", sessions.cookies.attempt_prefix);
    let sealed = attempt.seal(&keys, &sessions.binding);
    let cookie = if cross_site {
        sessions
            .cookies
            .set_cross_site(&name, &sealed, ATTEMPT_TTL_SECS)
    } else {
        sessions.cookies.set(&name, &sealed, ATTEMPT_TTL_SECS)
    };
    out.append(header::SET_COOKIE, cookie);
}

// ---------------------------------------------------------------------------------------------
// Callback

/// `GET /api/auth/oauth2/callback/{provider}`.
pub(super) async fn callback(
    State(app): State<App>,
    ProviderId(id): ProviderId,
    q: QueryParams,
    headers: HeaderMap,
) -> Response<Body> {
    let app = &app;
    let id = id.as_str();
    let Some(provider) = app.provider(id) else {
        return not_found_page();
    };
    let now = now_unix();
    let state = q.get("state");
    let attempt_cookie = state
        .as_deref()
        .and_then(Attempt::cookie_id)
        .map(|cid| format!("{}{cid}", app.sessions.cookies.attempt_prefix));

    let callback = Callback {
        headers: &headers,
        query: &q,
        state: state.as_deref(),
        attempt_cookie: attempt_cookie.as_deref(),
    };
    let result = complete_sign_in(app, callback, provider, now).await;
    let mut response = match result {
        Ok(Completed::SignedIn(signed_in)) => app.sign_in.respond(id, Ok(*signed_in), now),
        Ok(Completed::AgainWithoutOffline { rd }) => redirect(
            StatusCode::FOUND,
            &format!("{}&offline=0", start_url(id, &rd)),
        ),
        Err(refusal) => app.sign_in.respond(id, Err(refusal), now),
    };
    if let Some(name) = attempt_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, app.sessions.cookies.delete(&name));
    }
    response
}

/// How an OIDC callback completed.
enum Completed {
    /// Signed in.
    SignedIn(Box<SignedIn>),
    /// The provider refused `offline_access` to this attempt: the sign-in starts again without
    /// it (that browser's next attempt only).
    AgainWithoutOffline {
        /// Where the sign-in returns to.
        rd: String,
    },
}

/// What an OIDC callback brought: its query, its cookies, and the attempt cookie its `state`
/// names.
struct Callback<'a> {
    headers: &'a HeaderMap,
    query: &'a QueryParams,
    state: Option<&'a str>,
    attempt_cookie: Option<&'a str>,
}

/// The OIDC half of sign-in, as named steps: the attempt, the IdP's answer, the code exchange
/// and the ID token, verified; then the sign-in shared with SAML ([`crate::pipeline::SignIn`]),
/// and the OIDC cookies beside the session's.
async fn complete_sign_in(
    app: &App,
    callback: Callback<'_>,
    provider: &Provider,
    now: i64,
) -> Result<Completed, SignInError> {
    let started = std::time::Instant::now();
    let attempt = open_attempt(app, &callback, provider, now)?;
    app.sign_in.use_attempt(&attempt, now)?;
    if let Some(error) = callback.query.get("error") {
        return idp_answered_error(provider, &error, attempt);
    }
    let discovered = provider
        .discovered()
        .ok_or(SignInError::ProviderUnavailable)?;
    check_issuer_parameter(callback.query, provider, discovered)?;
    let exchange_started = std::time::Instant::now();
    let tokens = exchange_code(app, callback.query, provider, &attempt).await?;
    let idp_round_trip = exchange_started.elapsed();
    let expected = Expected {
        issuer: &provider.config.issuer,
        client_id: &provider.config.client_id,
        nonce: Nonce::Sent(&attempt.nonce),
        skew: app.config.clock_skew,
    };
    let raw_token = tokens.id_token.as_str();
    let mut token = verify_id_token(raw_token, &discovered.jwks, &expected)
        .await
        .map_err(SignInError::Token)?;
    // A user in more groups than the ID token carries (Entra ID group overage): their groups
    // from Microsoft Graph, with this sign-in's access token; unknown when Graph does not say.
    let graph_started = std::time::Instant::now();
    let overage = crate::graph::complete_groups(
        &app.sign_in.http,
        provider,
        &mut token.claims,
        tokens.access_token.as_deref(),
    )
    .await
    .held_to(app.config.access.as_deref());
    if let Some(outcome) = overage.outcome() {
        app.metrics.group_overage(outcome);
    }
    let groups_unknown = overage.unknown();
    let idp_round_trip = idp_round_trip + graph_started.elapsed();
    // Profile claims the ID token lacks, from UserInfo; the role keeps coming from the ID token.
    let userinfo = crate::userinfo::complete(
        &app.sign_in.http,
        discovered.endpoints.userinfo.as_ref(),
        tokens.access_token.as_deref(),
        &token.claims,
        &token.subject,
        &app.config.attribute_mappings,
        provider.id(),
    )
    .await;
    let mut identity =
        VerifiedIdentity::oidc(&provider.identity, &provider.config.issuer, token, userinfo);
    identity.groups_unknown = groups_unknown;
    let mut session = app
        .sign_in
        .establish(identity, &provider.config.roles, now)
        .await?;
    let refresh = refresh_cookie(app, &mut session, tokens.refresh_token, &attempt, now);
    // RP-initiated logout needs the ID token as its hint, where the provider offers it.
    let logout_hint = discovered
        .endpoints
        .end_session
        .as_ref()
        .map(|_| app.sign_in.seal_logout_hint(raw_token.as_bytes()))
        .filter(|sealed| sealed.len() <= MAX_HINT_COOKIE);
    app.metrics.sign_in_handling(
        started
            .elapsed()
            .saturating_sub(idp_round_trip)
            .as_secs_f64(),
    );
    Ok(Completed::SignedIn(Box::new(SignedIn {
        session,
        rd: attempt.rd,
        logout_hint,
        refresh,
    })))
}

/// The attempt the callback's `state` names: its sealed cookie, unexpired, with that state and
/// for this provider.
fn open_attempt(
    app: &App,
    callback: &Callback<'_>,
    provider: &Provider,
    now: i64,
) -> Result<Attempt, SignInError> {
    let state = callback.state.ok_or(SignInError::StateInvalid)?;
    let keys = app.sessions.keys();
    callback
        .attempt_cookie
        .and_then(|name| {
            gatehouse_auth::cookie::cookies(callback.headers)
                .filter(|(n, _)| *n == name)
                .find_map(|(_, v)| Attempt::unseal(&keys, &app.sessions.binding, v, now))
        })
        .filter(|a| constant_time_eq(a.state.as_bytes(), state.as_bytes()))
        .filter(|a| a.provider == provider.id())
        .ok_or(SignInError::StateInvalid)
}

/// The IdP sent the browser back with `error=…` instead of a code.
fn idp_answered_error(
    provider: &Provider,
    error: &str,
    attempt: Attempt,
) -> Result<Completed, SignInError> {
    if error == "invalid_scope" && attempt.asks_offline_access() {
        // This attempt only: an error a browser brings back never changes other sign-ins.
        tracing::warn!(
            provider = %provider.id(),
            "the provider refused offline_access to this client: this sign-in starts again \
             without it, and its session ends when it is due for re-validation (allow the \
             refresh-token grant at the provider so sessions can be re-validated)"
        );
        return Ok(Completed::AgainWithoutOffline { rd: attempt.rd });
    }
    tracing::info!(provider = %provider.id(), error = %crate::providers::sanitize_code(error), "identity provider returned an error");
    Err(if error == "access_denied" {
        SignInError::IdpDenied
    } else {
        SignInError::IdpError
    })
}

/// RFC 9207: the response's `iss` must be our provider's (mix-up attack defence), and is
/// required when the provider says it sends one.
fn check_issuer_parameter(
    query: &QueryParams,
    provider: &Provider,
    discovered: &Discovered,
) -> Result<(), SignInError> {
    match query.get("iss") {
        Some(iss) if iss != provider.config.issuer => Err(SignInError::IssuerMismatch),
        None if discovered.endpoints.iss_parameter_supported => Err(SignInError::IssuerMismatch),
        _ => Ok(()),
    }
}

/// The authorization code, exchanged for tokens with the attempt's PKCE verifier.
async fn exchange_code(
    app: &App,
    query: &QueryParams,
    provider: &Provider,
    attempt: &Attempt,
) -> Result<ExchangedTokens, SignInError> {
    let code = query
        .get("code")
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or(SignInError::CodeMissing)?;
    provider
        .exchange_code_for_tokens(
            &app.sign_in.http,
            &code,
            &attempt.verifier,
            &app.site.callback_url(provider.id()),
        )
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.id(), error = %e, "code exchange failed");
            SignInError::ExchangeFailed
        })
}

/// The sealed refresh cookie, when the IdP gave a refresh token and re-validation is on: the IdP
/// can then be asked again later whether the session still holds. `validated_at` is set for
/// every session of an attempt that expected a refresh token, got one or not: one without it
/// cannot be vouched for, and is refused once it is due (the refresh cookie is missing).
fn refresh_cookie(
    app: &App,
    session: &mut gatehouse_auth::cookie::Session,
    refresh_token: Option<String>,
    attempt: &Attempt,
    now: i64,
) -> Option<String> {
    let sealed = refresh_token
        .filter(|_| app.revalidation.is_on())
        .and_then(|token| {
            RefreshGrant {
                sid: session.sid.clone(),
                token,
                nonce: attempt.nonce.clone(),
            }
            .seal(&app.sessions.keys(), &app.sessions.binding)
        });
    if sealed.is_some() || attempt.offline {
        session.validated_at = Some(now);
    }
    sealed
}

/// Where sign-in with `provider` starts, returning to `rd`.
pub(super) fn start_url(provider: &str, rd: &str) -> String {
    format!(
        "{}?rd={}",
        pages::start_path(provider),
        encode_query_value(rd)
    )
}
