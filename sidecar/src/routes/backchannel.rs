//! `POST /api/auth/oauth2/backchannel-logout/{provider}`: OIDC Back-Channel Logout 1.0.
//!
//! The identity provider POSTs a logout token (form field `logout_token`) when a user logs out
//! there or is logged out by an administrator. A verified token ([`gatehouse_auth::logout_token`]) with a
//! `sid` ends the session the provider knows by that id; with only a `sub`, every session of
//! that user. Either is recorded on the user's SsoUser (`status.revokedSessions`, or
//! `spec.sessionsNotBefore`), which every replica's watch carries within a second, and on this
//! replica at once. The answer is 200, or 400 with `{"error":"invalid_request"}` and nothing
//! else: why a token was refused is only logged.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use gatehouse_crds::names::sso_user_name;
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

    // `jti` once per provider, remembered as long as the token could be accepted.
    let jti_key = format!("{}\n{}", provider.id(), token.jti);
    if app.sessions.used_logout_tokens.contains(&jti_key, now) {
        return Err(Refused::Replayed);
    }
    let ttl = i64::try_from(app.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let until_unix = now.saturating_add(ttl);
    let user = token
        .subject
        .as_deref()
        .map(|sub| sso_user_name(provider.id(), &provider.config.issuer, sub));

    match (&token.sid, &user) {
        (Some(sid), user) => {
            // This replica at once; the others through the SsoUser.
            app.sessions.ended_idp_sessions.insert(sid, until_unix, now);
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
            match app.directory.end_all_sessions(user).await {
                None => return Err(Refused::NoDirectory),
                outcome => record(outcome)?,
            }
            app.live.wake();
        }
        // The token check guarantees `sid` or `sub`.
        (None, None) => return Err(Refused::BadRequest),
    }

    let skew = i64::try_from(app.config.clock_skew.as_secs()).unwrap_or(0);
    let max_age = i64::try_from(MAX_AGE.as_secs()).unwrap_or(0);
    app.sessions.used_logout_tokens.insert(
        &jti_key,
        token
            .issued_at
            .saturating_add(max_age)
            .saturating_add(skew)
            .saturating_add(1),
        now,
    );
    Ok(token)
}

fn record(outcome: Option<Result<Revoked, RevocationError>>) -> Result<(), Refused> {
    match outcome {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(Refused::NotRecorded(e)),
    }
}
