//! `POST /api/auth/oauth2/backchannel-logout/{provider}`: OIDC Back-Channel Logout 1.0.
//!
//! The identity provider POSTs a logout token (form field `logout_token`) when a user logs out
//! there or is logged out by an administrator. A verified token ([`gatehouse_auth::logout_token`])
//! speaks for that provider only. With a `sid` it ends the sessions signed in through the
//! provider's session of that id (only the subject's, when it names a `sub` too); with only a
//! `sub`, every session of that user started up to the token's `iat`. Either is recorded on the
//! user's SsoUser (`status.revokedSessions`, or `spec.sessionsNotBefore`), which every replica's
//! watch carries within a second, and on this replica at once. The answer is 200, or 400 with
//! `{"error":"invalid_request"}` and nothing else: why a token was refused is only logged.
//!
//! A token acts once per replica (its `jti`, taken before anything is written), and what it ends
//! depends on the token alone, so a replay to another replica or a retry ends nothing more. When
//! the SsoUser cannot be written the `jti` is given back, so the identity provider's retry can
//! record the logout.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use gatehouse_crds::names::{legacy_sso_user_name, sso_user_name};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::extract::ProviderId;
use crate::pages::{json_response, not_found_page};
use crate::providers::Provider;
use crate::providers::jwks::verify_logout_token;
use crate::state::App;
use gatehouse_auth::logout_token::{LogoutExpected, LogoutToken, MAX_AGE};
use gatehouse_auth::token::now_unix;
use gatehouse_directory::revocation::{RevocationError, Revoked};

/// Largest request body read (the token is at most 16 KiB).
const MAX_BODY_BYTES: usize = 32 * 1024;

/// Why a back-channel logout was refused or failed: logged, never sent.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("request is not a form with one `logout_token`")]
    BadRequest,
    #[error("the provider's keys are not loaded yet")]
    ProviderUnavailable,
    #[error(transparent)]
    Token(#[from] gatehouse_auth::logout_token::LogoutTokenError),
    #[error("logout token replayed (`jti` already used)")]
    Replayed,
    #[error("a logout token with only `sub` needs GATEHOUSE_PROVISIONING=kubernetes")]
    NoDirectory,
    #[error("could not record the logout on the SsoUser")]
    NotRecorded(#[source] RevocationError),
}

impl Refused {
    fn reason(&self) -> &'static str {
        match self {
            Refused::BadRequest => "request_invalid",
            Refused::ProviderUnavailable => "provider_unavailable",
            Refused::Token(e) => e.reason(),
            Refused::Replayed => "logout_token_replayed",
            Refused::NoDirectory => "directory_off",
            Refused::NotRecorded(_) => "directory_unavailable",
        }
    }
}

/// `POST /api/auth/oauth2/backchannel-logout/{provider}`.
pub(super) async fn backchannel_logout(
    State(app): State<App>,
    ProviderId(id): ProviderId,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let Some(provider) = app.provider(&id).cloned() else {
        return not_found_page();
    };
    match logout(&app, &provider, &headers, &body).await {
        Ok(token) => {
            tracing::info!(
                target: "gatehouse::audit",
                event = "backchannel_logout",
                provider = %provider.id(),
                scope = if token.sid.is_some() { "session" } else { "user" },
                "identity provider ended sessions"
            );
            let mut r = Response::new(Body::empty());
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(refused) => {
            tracing::warn!(
                target: "gatehouse::audit",
                event = "backchannel_logout",
                provider = %provider.id(),
                reason = refused.reason(),
                error = %refused,
                "back-channel logout refused"
            );
            json_response(
                StatusCode::BAD_REQUEST,
                json!({ "error": "invalid_request" }),
            )
        }
    }
}

fn logout_token_of(headers: &HeaderMap, body: &[u8]) -> Result<String, Refused> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form || body.len() > MAX_BODY_BYTES {
        return Err(Refused::BadRequest);
    }
    let mut tokens = url::form_urlencoded::parse(body)
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    match (tokens.next(), tokens.next()) {
        (Some(token), None) if !token.is_empty() => Ok(token),
        _ => Err(Refused::BadRequest),
    }
}

async fn logout(
    app: &App,
    provider: &Provider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<LogoutToken, Refused> {
    let raw = logout_token_of(headers, body)?;
    let discovered = provider.discovered().ok_or(Refused::ProviderUnavailable)?;
    let now = now_unix();
    let expected = LogoutExpected {
        issuer: &provider.config.issuer,
        client_id: &provider.config.client_id,
        skew: app.config.clock_skew,
    };
    let token = verify_logout_token(&raw, &discovered.jwks, &expected, now).await?;

    // `jti` once per provider, remembered as long as the token could be accepted. Taken before
    // anything is written (check and insert in one step), so that concurrent deliveries of one
    // token act once.
    let skew = i64::try_from(app.config.clock_skew.as_secs()).unwrap_or(0);
    let max_age = i64::try_from(MAX_AGE.as_secs()).unwrap_or(0);
    let jti_until = token
        .issued_at
        .saturating_add(max_age)
        .saturating_add(skew)
        .saturating_add(1);
    if !app
        .sessions
        .take_logout_token(provider.id(), &token.jti, jti_until, now)
    {
        return Err(Refused::Replayed);
    }
    match end_sessions(app, provider, &token, now).await {
        Ok(()) => Ok(token),
        Err(refused) => {
            // Not recorded: the identity provider is answered 400 and may retry. Its retry must
            // be taken, or the logout never reaches the other replicas; and taking it again is
            // safe, because what a token ends depends on the token alone (its `sid` and `sub`,
            // and `iat` for `sessionsNotBefore`), not on when it arrives.
            app.sessions.release_logout_token(provider.id(), &token.jti);
            Err(refused)
        }
    }
}

/// Ends what a verified logout token names: on this replica at once, and on the others through
/// the SsoUser of its subject at this provider. Applying it again ends nothing more.
async fn end_sessions(
    app: &App,
    provider: &Provider,
    token: &LogoutToken,
    now: i64,
) -> Result<(), Refused> {
    let ttl = i64::try_from(app.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let until_unix = now.saturating_add(ttl);
    let user = token
        .subject
        .as_deref()
        .map(|sub| user_name(app, provider.id(), &provider.config.issuer, sub));

    match (&token.sid, &user) {
        (Some(sid), user) => {
            // This replica at once: this provider's sessions with that `sid`, of that subject
            // when the token names one. The others through the subject's SsoUser, which holds
            // only that subject's sessions at this provider.
            app.sessions.end_idp_session(
                provider.id(),
                sid,
                token.subject.as_deref(),
                until_unix,
                now,
            );
            app.live.wake();
            match user {
                Some(user) => {
                    let until =
                        jiff::Timestamp::from_second(until_unix).unwrap_or(jiff::Timestamp::MAX);
                    record(app.directory.end_session(user, sid, until).await)?;
                }
                None => tracing::info!(
                    provider = %provider.id(),
                    "logout token names a session but no subject: ended on this replica only"
                ),
            }
        }
        (None, Some(user)) => {
            // Every session the user started up to the logout: dated by the token's `iat`, not
            // by its arrival, so a replay (to another replica, or the IdP's retry) ends no
            // session the user started after the logout.
            let logged_out_at =
                jiff::Timestamp::from_second(token.issued_at).unwrap_or(jiff::Timestamp::MAX);
            match app.directory.end_all_sessions(user, logged_out_at).await {
                None => return Err(Refused::NoDirectory),
                outcome => record(outcome)?,
            }
            app.live.wake();
        }
        // The token check guarantees `sid` or `sub`.
        (None, None) => return Err(Refused::BadRequest),
    }
    Ok(())
}

/// The name of the SsoUser of `subject` at `issuer` (through `provider`) in this config: the
/// current name, or the one Gatehouse 0.1 gave it when only that one exists (such an SsoUser
/// keeps its name).
pub(super) fn user_name(app: &App, provider: &str, issuer: &str, subject: &str) -> String {
    let current = sso_user_name(&app.config.config_name, provider, issuer, subject);
    let legacy = legacy_sso_user_name(provider, issuer, subject);
    if app.directory.holds_own(&legacy) && !app.directory.holds_own(&current) {
        legacy
    } else {
        current
    }
}

fn record(outcome: Option<Result<Revoked, RevocationError>>) -> Result<(), Refused> {
    match outcome {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(Refused::NotRecorded(e)),
    }
}
