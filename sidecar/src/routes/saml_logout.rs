//! Single logout started by the SAML IdP: `GET /api/auth/logout?SAMLRequest=…` (HTTP-Redirect
//! binding, the SingleLogoutService the SP metadata advertises).
//!
//! The request speaks for the IdP only through its signature, checked against the IdP's metadata
//! certificates before anything else ([`gatehouse_auth::saml::logout`]); then its issuer,
//! destination, validity and ID (once per replica). It ends the sessions it names — each
//! `SessionIndex` of its NameID, or every session of the NameID when it names none — through the
//! same path as an OIDC back-channel logout: this replica at once, the others through the
//! SsoUser (`status.revokedSessions`, `spec.sessionsNotBefore`). The browser is sent back to the
//! IdP with a LogoutResponse signed by the SP's own key. A refused request ends nothing: the
//! browser gets a page, the audit log a line with the reason.

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, header};

use crate::pages::{html_response, plain_page, redirect};
use crate::saml::SamlProvider;
use crate::state::App;
use gatehouse_auth::cookie::Session;
use gatehouse_auth::saml::logout::{
    IdpLogoutRequest, LogoutError, LogoutExpected, LogoutResponse, RedirectQuery, STATUS_RESPONDER,
    STATUS_SUCCESS, parse_logout_request,
};
use gatehouse_crds::consts::LOGIN_PATH;

/// Handles a logout request carrying `SAMLRequest`; `session` is the browser's own, if any.
/// Returns the answer and whether the browser's session cookies are to be deleted.
pub(super) async fn idp_logout(
    app: &App,
    saml: &SamlProvider,
    query: &RedirectQuery<'_>,
    session: Option<&Session>,
    now: i64,
) -> (Response<Body>, bool) {
    let Some(metadata) = saml.metadata() else {
        tracing::warn!(
            target: "gatehouse::audit",
            event = "saml_idp_logout",
            provider = saml.id(),
            reason = "provider_unavailable",
            "single logout from the IdP before its metadata is loaded: nothing ended"
        );
        return (
            html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                plain_page(
                    "Sign-out not available yet",
                    "The identity provider's details are still loading. Please try again in a moment.",
                ),
            ),
            false,
        );
    };
    let skew = i64::try_from(app.config.clock_skew.as_secs()).unwrap_or(0);
    let checked = check(saml, &metadata, query, skew, now);
    let request = match checked {
        Ok(request) => request,
        Err(refused) => return (refusal(saml, refused), false),
    };

    let recorded = end_sessions(app, saml, &metadata.entity_id, &request, now).await;
    // The browser's own session, when it is the named user's at this IdP: it is among those
    // ended (by its SessionIndex, or as one of the NameID's), and its cookies go too.
    let own = session.filter(|s| s.provider == saml.id() && s.subject == request.name_id);
    if let Some(own) = own {
        app.ender.end(own, now).await;
    }
    app.live.wake();
    tracing::info!(
        target: "gatehouse::audit",
        event = "saml_idp_logout",
        provider = saml.id(),
        scope = if request.session_indexes.is_empty() { "user" } else { "session" },
        recorded,
        "identity provider ended sessions"
    );

    let mut answer = match &metadata.slo_redirect {
        Some(slo) => {
            let id = format!("_{}", gatehouse_auth::cookie::random_token(32));
            let url = LogoutResponse {
                id: &id,
                in_response_to: &request.id,
                destination: slo,
                issuer: &saml.config.sp_entity_id,
                status: if recorded {
                    STATUS_SUCCESS
                } else {
                    STATUS_RESPONDER
                },
                issued_at: now,
            }
            .redirect_url(
                query.relay_state().as_deref(),
                saml.config.signing.as_deref(),
            );
            redirect(StatusCode::FOUND, url.as_str())
        }
        None => redirect(StatusCode::FOUND, &format!("{LOGIN_PATH}?state=signed-out")),
    };
    answer.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    (answer, own.is_some())
}

/// A refused request: nothing ended, an audit line with the reason, a page for the browser.
pub(super) fn refusal(saml: &SamlProvider, refused: LogoutError) -> Response<Body> {
    tracing::warn!(
        target: "gatehouse::audit",
        event = "saml_idp_logout",
        provider = saml.id(),
        reason = refused.reason(),
        error = %refused,
        "single logout request from the IdP refused: nothing ended"
    );
    html_response(
        StatusCode::BAD_REQUEST,
        plain_page(
            "Sign-out request refused",
            "This sign-out request could not be verified as coming from your identity provider, so nothing was signed out. If you meant to sign out, use the application's own sign-out.",
        ),
    )
}

/// The signature, then the request itself, then its ID once.
fn check(
    saml: &SamlProvider,
    metadata: &gatehouse_crds::saml_metadata::IdpMetadata,
    query: &RedirectQuery<'_>,
    skew: i64,
    now: i64,
) -> Result<IdpLogoutRequest, LogoutError> {
    query.verify_signature(&metadata.signing_certs, saml.config.algorithms.allow_sha1)?;
    let request = parse_logout_request(
        &query.inflate()?,
        &LogoutExpected {
            idp_entity_id: &metadata.entity_id,
            slo_url: &saml.config.slo_url,
            skew_secs: skew,
            now,
        },
    )?;
    let until = request.valid_until().saturating_add(skew).saturating_add(1);
    if !saml
        .used_ids
        .insert(&format!("logout\n{}", request.id), until, now)
    {
        return Err(LogoutError::Replayed);
    }
    Ok(request)
}

/// Ends what the request names on this replica and, through the NameID's SsoUser, on the
/// others; `false` when that could not be recorded (the IdP is told `Responder`).
async fn end_sessions(
    app: &App,
    saml: &SamlProvider,
    issuer: &str,
    request: &IdpLogoutRequest,
    now: i64,
) -> bool {
    let user = super::backchannel::user_name(app, saml.id(), issuer, &request.name_id);
    if request.session_indexes.is_empty() {
        // Every session of the user started up to the request.
        let at = jiff::Timestamp::from_second(request.issued_at).unwrap_or(jiff::Timestamp::MAX);
        return match app.directory.end_all_sessions(&user, at).await {
            Some(Ok(_)) => true,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "could not record the IdP's logout on the SsoUser");
                false
            }
            None => {
                tracing::info!(
                    "the IdP's logout names no session and provisioning is off: only this browser's session ended"
                );
                false
            }
        };
    }
    let ttl = i64::try_from(app.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let until_unix = now.saturating_add(ttl);
    let until = jiff::Timestamp::from_second(until_unix).unwrap_or(jiff::Timestamp::MAX);
    let mut recorded = true;
    for index in &request.session_indexes {
        app.sessions
            .end_idp_session(saml.id(), index, Some(&request.name_id), until_unix, now);
        if let Some(Err(e)) = app.directory.end_session(&user, index, until).await {
            tracing::warn!(error = %e, "could not record the IdP's logout on the SsoUser");
            recorded = false;
        }
    }
    recorded
}
