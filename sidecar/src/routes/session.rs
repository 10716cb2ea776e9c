//! The session's own endpoints: logout, the session as JSON, and the identity JWKS.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::header;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

use super::extract::CurrentSession;
use crate::pages::{json_response, redirect};
use crate::providers::Providers;
use crate::saml::SamlLogoutHint;
use crate::sessions::Sessions;
use crate::state::{App, Site};
use gatehouse_auth::cookie::{Purpose, Session};
use gatehouse_auth::identity::IdentityIssuer;
use gatehouse_auth::token::now_unix;
use gatehouse_crds::consts::LOGIN_PATH;

// ---------------------------------------------------------------------------------------------
// Logout, session, JWKS

/// `GET|POST /api/auth/logout`.
pub(super) async fn logout(
    State(app): State<App>,
    State(sessions): State<Arc<Sessions>>,
    State(providers): State<Arc<Providers>>,
    State(site): State<Arc<Site>>,
    method: Method,
    headers: HeaderMap,
) -> Response<Body> {
    let now = now_unix();
    let keys = sessions.keys();
    let session = gatehouse_auth::cookie::cookies(&headers)
        .filter(|(name, _)| *name == sessions.cookies.session)
        .find_map(|(_, value)| Session::unseal(&keys, &sessions.binding, value, now));
    let hint = gatehouse_auth::cookie::cookie(&headers, &sessions.cookies.logout_hint)
        .and_then(|v| keys.unseal(Purpose::LogoutHint, &sessions.binding, v))
        .and_then(|raw| String::from_utf8(raw).ok());
    let saml_hint = hint
        .as_deref()
        .and_then(|h| serde_json::from_str::<SamlLogoutHint>(h).ok());

    let mut location = format!("{LOGIN_PATH}?state=signed-out");
    if let Some(session) = &session {
        app.ender.end(session, now).await;
        tracing::info!(target: "gatehouse::audit", event = "sign_out", provider = %session.provider, user = %session.user, "signed out");
        if let Some(provider) = providers.get(&session.provider)
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
                        &format!("{}{LOGIN_PATH}", site.origin),
                    )
                    .append_pair("state", "signed-out");
                if let Some(hint) = &hint {
                    q.append_pair("id_token_hint", hint);
                }
            }
            location = url.to_string();
        } else if let Some(saml) = providers.saml().filter(|s| s.id() == session.provider)
            && let Some(slo) = saml.metadata().and_then(|m| m.slo_redirect.clone())
        {
            // The session's subject is the NameID; the hint adds its format and the IdP's
            // session index when the browser still has it.
            let hint = saml_hint.filter(|h| h.name_id == session.subject);
            let id = format!("_{}", gatehouse_auth::cookie::random_token(32));
            location = gatehouse_auth::saml::messages::LogoutRequest {
                id: &id,
                destination: &slo,
                issuer: &saml.config.sp_entity_id,
                name_id: &session.subject,
                name_id_format: hint.as_ref().and_then(|h| h.format.as_deref()),
                session_index: hint.as_ref().and_then(|h| h.session_index.as_deref()),
                issued_at: now,
            }
            .redirect_url("")
            .to_string();
        }
    }
    let status = if method == Method::POST {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut response = redirect(status, &location);
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        sessions.cookies.delete(&sessions.cookies.session),
    );
    h.append(
        header::SET_COOKIE,
        sessions.cookies.delete(&sessions.cookies.logout_hint),
    );
    h.append(
        header::SET_COOKIE,
        sessions.cookies.delete(&sessions.cookies.refresh),
    );
    response
}

/// `GET /api/auth/session`.
pub(super) async fn session_json(
    State(providers): State<Arc<Providers>>,
    CurrentSession(session): CurrentSession,
) -> Response<Body> {
    let Some(s) = session else {
        return json_response(StatusCode::UNAUTHORIZED, json!({ "authenticated": false }));
    };
    let org = providers.identity(&s.provider).map(|p| p.org_id.clone());
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

/// `GET /.well-known/gatehouse/jwks.json`.
pub(super) async fn jwks(State(identity): State<Arc<IdentityIssuer>>) -> Response<Body> {
    let mut r = Response::new(Body::from(identity.jwks()));
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
