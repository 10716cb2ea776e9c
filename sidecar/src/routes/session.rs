//! The session's own endpoints: logout, the session as JSON, and the identity JWKS.
//!
//! Logout ends the session on every replica and, through RP-initiated (OIDC) or SP-initiated
//! (SAML) logout, often at the identity provider too, so another site must not be able to make a
//! signed-in browser do it (logout CSRF). The browser says where a request comes from
//! (`Sec-Fetch-Site`, and `Origin` on a POST); the session cookie is `SameSite=Lax`, so it rides
//! along on another site's links and top-level navigations, never on its form POSTs.
//!
//! - A request from this origin's own pages, or one the user made (`Sec-Fetch-Site: none`: the
//!   address typed, a bookmark), signs out: a POST (the app's sign-out button) or a GET (a link).
//! - A POST that says nothing of where it comes from (no `Origin`, no fetch metadata) signs out
//!   too: browsers sent `Origin` with form POSTs before they sent fetch metadata, and
//!   `SameSite=Lax` keeps the cookie off another site's POST, so it is a client that is no
//!   browser. The app needs no token to render: a plain
//!   `<form method="post" action="/api/auth/logout">` is enough.
//! - Anything else — another site's link, image or redirect (`cross-site`, `same-site`), its
//!   form (`Origin` of another origin, or `null`), or a GET from a browser that sends no fetch
//!   metadata (so no GET can be told apart from another site's) — ends nothing and touches no
//!   cookie: while the session is live the answer is a page that asks, whose button POSTs back
//!   from this origin (200 for a GET, 403 for a POST); without one, a GET goes to the signed-out
//!   page (the identity provider's single logout sending the browser back), a POST is refused.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::header;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::json;

use super::extract::CurrentSession;
use crate::pages::{json_response, redirect, sign_out_confirmation};
use crate::providers::Providers;
use crate::saml::SamlLogoutHint;
use crate::sessions::Sessions;
use crate::state::{App, Site};
use gatehouse_auth::cookie::{Purpose, Session};
use gatehouse_auth::identity::IdentityIssuer;
use gatehouse_auth::saml::logout::RedirectQuery;
use gatehouse_auth::token::now_unix;
use gatehouse_crds::consts::{LOGIN_PATH, LOGOUT_PATH};

// ---------------------------------------------------------------------------------------------
// Logout, session, JWKS

/// Where a request to the logout path comes from, as the browser says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provenance {
    /// This origin's own pages (`Sec-Fetch-Site: same-origin`, or its `Origin`), or the user
    /// (`Sec-Fetch-Site: none`).
    SameOrigin,
    /// Another origin or site, or one the browser will not name (`Origin: null`).
    Elsewhere,
    /// Not said: a client that is no browser, or a browser without fetch metadata (and, on a
    /// GET, without `Origin`, which browsers do not send on navigations).
    Unsaid,
}

/// Reads [`Provenance`] from `headers`; `origin` is the public origin (`https://host[:port]`).
fn provenance(headers: &HeaderMap, origin: &str) -> Provenance {
    let sent_origin = headers.get(header::ORIGIN).map(HeaderValue::as_bytes);
    // An `Origin` naming another origin settles it, whatever else is sent. (`null` is what a
    // page under `Referrer-Policy: no-referrer` sends on its own POSTs, too: fetch metadata
    // decides those.)
    if sent_origin.is_some_and(|o| o != b"null" && o != origin.as_bytes()) {
        return Provenance::Elsewhere;
    }
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        Some(b"same-origin" | b"none") => return Provenance::SameOrigin,
        Some(_) => return Provenance::Elsewhere,
        None => {}
    }
    match sent_origin {
        Some(o) if o == origin.as_bytes() => Provenance::SameOrigin,
        Some(_) => Provenance::Elsewhere,
        None => Provenance::Unsaid,
    }
}

/// Whether a logout request with `provenance` may end the session (see the module's doc).
fn may_sign_out(method: &Method, provenance: Provenance) -> bool {
    match provenance {
        Provenance::SameOrigin => true,
        Provenance::Unsaid => method == Method::POST,
        Provenance::Elsewhere => false,
    }
}

/// `GET|POST /api/auth/logout`.
pub(super) async fn logout(
    State(app): State<App>,
    State(sessions): State<Arc<Sessions>>,
    State(providers): State<Arc<Providers>>,
    State(site): State<Arc<Site>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let now = now_unix();
    // Single logout started by the SAML IdP: its signature, not the browser, says where it
    // comes from (it arrives as another site's navigation).
    if method == Method::GET
        && let Some(saml) = providers.saml()
        && let Some(query) = uri.query()
    {
        match RedirectQuery::parse(query) {
            Ok(None) => {}
            Ok(Some(request)) => {
                let keys = sessions.keys();
                let session = gatehouse_auth::cookie::cookies(&headers)
                    .filter(|(name, _)| *name == sessions.cookies.session)
                    .find_map(|(_, value)| Session::unseal(&keys, &sessions.binding, value, now));
                let (mut response, ended_own) =
                    super::saml_logout::idp_logout(&app, saml, &request, session.as_ref(), now)
                        .await;
                if ended_own {
                    delete_session_cookies(&sessions, response.headers_mut());
                }
                return response;
            }
            Err(refused) => return super::saml_logout::refusal(saml, refused),
        }
    }
    let provenance = provenance(&headers, &site.origin);
    if !may_sign_out(&method, provenance) {
        let live = sessions.read(&headers, now);
        tracing::info!(
            target: "gatehouse::audit",
            event = "sign_out_unconfirmed",
            method = %method,
            provenance = ?provenance,
            session = live.is_some(),
            "logout not made from this origin: nothing ended"
        );
        return match (live, method == Method::GET) {
            (Some(_), true) => sign_out_confirmation(StatusCode::OK, &site.name, LOGOUT_PATH),
            (None, true) => redirect(StatusCode::FOUND, &format!("{LOGIN_PATH}?state=signed-out")),
            (_, false) => sign_out_confirmation(StatusCode::FORBIDDEN, &site.name, LOGOUT_PATH),
        };
    }
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
    delete_session_cookies(&sessions, response.headers_mut());
    response
}

/// Deletes the session, logout-hint and refresh cookies.
fn delete_session_cookies(sessions: &Sessions, h: &mut HeaderMap) {
    for name in [
        &sessions.cookies.session,
        &sessions.cookies.logout_hint,
        &sessions.cookies.refresh,
    ] {
        h.append(header::SET_COOKIE, sessions.cookies.delete(name));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://app.example.com";

    fn of(pairs: &[(&'static str, &'static str)]) -> Provenance {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        provenance(&h, ORIGIN)
    }

    #[test]
    fn the_browser_says_where_a_logout_comes_from() {
        use Provenance::{Elsewhere, SameOrigin, Unsaid};
        let cases: [(&[(&str, &str)], Provenance); 14] = [
            (&[("sec-fetch-site", "same-origin")], SameOrigin),
            (&[("sec-fetch-site", "none")], SameOrigin),
            (&[("sec-fetch-site", "same-site")], Elsewhere),
            (&[("sec-fetch-site", "cross-site")], Elsewhere),
            (&[("sec-fetch-site", "something-new")], Elsewhere),
            (&[("origin", ORIGIN)], SameOrigin),
            (&[("origin", "https://evil.example")], Elsewhere),
            (
                &[("origin", "https://app.example.com.evil.example")],
                Elsewhere,
            ),
            (&[("origin", "http://app.example.com")], Elsewhere),
            (&[("origin", "https://app.example.com:8443")], Elsewhere),
            (&[("origin", "null")], Elsewhere),
            (
                &[("origin", "null"), ("sec-fetch-site", "same-origin")],
                SameOrigin,
            ),
            (
                &[
                    ("origin", "https://evil.example"),
                    ("sec-fetch-site", "same-origin"),
                ],
                Elsewhere,
            ),
            (&[], Unsaid),
        ];
        for (headers, want) in cases {
            assert_eq!(of(headers), want, "{headers:?}");
        }
    }

    #[test]
    fn only_a_same_origin_request_or_an_anonymous_post_signs_out() {
        use Provenance::{Elsewhere, SameOrigin, Unsaid};
        assert!(may_sign_out(&Method::GET, SameOrigin));
        assert!(may_sign_out(&Method::POST, SameOrigin));
        assert!(may_sign_out(&Method::POST, Unsaid));
        assert!(
            !may_sign_out(&Method::GET, Unsaid),
            "no GET can be told from another site's"
        );
        assert!(!may_sign_out(&Method::GET, Elsewhere));
        assert!(!may_sign_out(&Method::POST, Elsewhere));
    }
}
