//! SAML sign-in: the start (AuthnRequest, HTTP-Redirect binding), the assertion consumer service
//! (Response, HTTP-POST binding) and the SP metadata. Verification is [`gatehouse_auth::saml::verify`];
//! what follows it is the shared pipeline.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::extract::QueryParams;
use super::sign_in::set_attempt_cookie;
use crate::error::SignInError;
use crate::pages::{self, html_response};
use crate::pages::{not_found_page, redirect};
use crate::pipeline::SignedIn;
use crate::saml::{SamlLogoutHint, SamlProvider};
use crate::state::App;
use gatehouse_auth::cookie::{ATTEMPT_TTL_SECS, Attempt};
use gatehouse_auth::paths::safe_redirect;
use gatehouse_auth::saml::verify::{self, Expected, NAMEID_EMAIL, SamlError, VerifiedAssertion};
use gatehouse_auth::signin::VerifiedIdentity;
use gatehouse_auth::token::now_unix;
use gatehouse_crds::consts::LOGIN_PATH;

/// Largest ACS request body read: the response bound, plus room for `RelayState` and encoding.
const MAX_ACS_BODY: usize = 2 * verify::MAX_RESPONSE_BYTES;

/// The SAML request ID of an attempt: `_` (IDs are XML names, which cannot start with a digit or
/// `-`) and the attempt's random 256-bit state.
pub fn request_id(attempt: &Attempt) -> String {
    format!("_{}", attempt.state)
}

/// `GET /api/auth/saml/start`.
pub(super) async fn start(State(app): State<App>, q: QueryParams, headers: HeaderMap) -> Response {
    let Some(saml) = app.providers.saml() else {
        return not_found_page();
    };
    let Some(metadata) = saml.metadata() else {
        return html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::problem_page("provider_unavailable", LOGIN_PATH),
        );
    };
    let now = now_unix();
    let rd = safe_redirect(&q.get("rd").unwrap_or_else(|| "/".to_owned()));
    let attempt = Attempt::new(saml.id(), &rd, now);
    let Some(cookie_id) = Attempt::cookie_id(&attempt.state) else {
        return html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::plain_page("Something went wrong", "Please try again."),
        );
    };
    let id = request_id(&attempt);
    let location = gatehouse_auth::saml::messages::AuthnRequest {
        id: &id,
        destination: &metadata.sso_redirect,
        issuer: &saml.config.sp_entity_id,
        acs_url: &saml.config.acs_url,
        issued_at: now,
    }
    .redirect_url("");
    let mut response = redirect(StatusCode::FOUND, location.as_str());
    set_attempt_cookie(
        response.headers_mut(),
        &app.sessions,
        &headers,
        &attempt,
        cookie_id,
        true,
        now,
    );
    response
}

/// `GET /api/auth/saml/metadata`.
pub(super) async fn metadata(State(app): State<App>) -> Response {
    let Some(saml) = app.providers.saml() else {
        return not_found_page();
    };
    let c = &saml.config;
    let mut r = Response::new(Body::from(gatehouse_auth::saml::messages::sp_metadata(
        &c.sp_entity_id,
        &c.acs_url,
        &c.slo_url,
        c.signing.as_ref().map_or(&[][..], |key| key.certs()),
    )));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/samlmetadata+xml"),
    );
    r
}

/// `POST /api/auth/saml/acs`.
pub(super) async fn acs(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let Some(saml) = app.providers.saml().cloned() else {
        return not_found_page();
    };
    let now = now_unix();
    let started = std::time::Instant::now();
    let attempts = attempts(&app, &headers, now);
    let result = complete(&app, &saml, &attempts, body, now).await;
    let matched = result
        .as_ref()
        .ok()
        .map(|(_, attempt)| attempt.clone())
        .and_then(|state| Attempt::cookie_id(&state).map(str::to_owned));
    let result = result.map(|(signed_in, _)| signed_in);
    if result.is_ok() {
        app.metrics
            .sign_in_handling(started.elapsed().as_secs_f64());
    }
    let mut response = app.sign_in.respond(saml.id(), result, now);
    if let Some(cookie_id) = matched {
        let name = format!("{}{cookie_id}", app.sessions.cookies.attempt_prefix);
        response
            .headers_mut()
            .append(header::SET_COOKIE, app.sessions.cookies.delete(&name));
    }
    response
}

/// The browser's live SAML attempts, from its attempt cookies.
fn attempts(app: &App, headers: &HeaderMap, now: i64) -> Vec<Attempt> {
    let keys = app.sessions.keys();
    let prefix = &app.sessions.cookies.attempt_prefix;
    gatehouse_auth::cookie::cookies(headers)
        .filter(|(name, _)| name.starts_with(prefix.as_str()))
        .filter_map(|(_, value)| Attempt::unseal(&keys, &app.sessions.binding, value, now))
        .filter(|a| a.provider == gatehouse_crds::consts::PROVIDER_SAML)
        .collect()
}

/// The SAML half of sign-in: the form, the verified response, single use; then the pipeline.
/// Returns the sign-in and the state of the attempt it completed.
async fn complete(
    app: &App,
    saml: &SamlProvider,
    attempts: &[Attempt],
    body: Body,
    now: i64,
) -> Result<(SignedIn, String), SignInError> {
    let body = axum::body::to_bytes(body, MAX_ACS_BODY)
        .await
        .map_err(|_| SignInError::Saml(SamlError::TooLarge))?;
    let response = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "SAMLResponse")
        .map(|(_, v)| v.into_owned())
        .ok_or(SignInError::Saml(SamlError::Malformed))?;
    let metadata = saml.metadata().ok_or(SignInError::ProviderUnavailable)?;

    let request_ids: Vec<String> = attempts.iter().map(request_id).collect();
    let config = saml.config.clone();
    let skew = i64::try_from(app.config.clock_skew.as_secs()).unwrap_or(600);
    let idp = metadata.clone();
    // libxml2/xmlsec work is CPU-bound and synchronous: off the event loop.
    let verified = tokio::task::spawn_blocking(move || {
        let ids: Vec<&str> = request_ids.iter().map(String::as_str).collect();
        verify::verify_response_with(
            &response,
            &Expected {
                idp_entity_id: &idp.entity_id,
                certs: &idp.signing_certs,
                sp_entity_id: &config.sp_entity_id,
                acs_url: &config.acs_url,
                request_ids: &ids,
                skew_secs: skew,
                now,
            },
            config.algorithms,
        )
    })
    .await
    .map_err(|_| SignInError::Saml(SamlError::Malformed))?
    .map_err(|e| {
        tracing::info!(provider = saml.id(), reason = e.reason(), error = %e, "SAML response refused");
        SignInError::Saml(e)
    })?;

    let attempt = attempts
        .iter()
        .find(|a| request_id(a) == verified.in_response_to)
        .ok_or(SignInError::Saml(SamlError::UnknownRequest))?;
    // Single use: the attempt (also against a copy of its cookie) and the response's IDs.
    app.sign_in.use_attempt(attempt, now)?;
    let remember_until = verified
        .valid_until
        .min(now + ATTEMPT_TTL_SECS + 3600)
        .max(now + ATTEMPT_TTL_SECS);
    for id in [&verified.response_id, &verified.assertion_id] {
        if !id.is_empty() && !saml.used_ids.insert(id, remember_until, now) {
            return Err(SignInError::StateReplayed);
        }
    }

    let session = app
        .sign_in
        .establish(
            saml_identity(saml, &metadata.entity_id, &verified),
            &saml.config.roles,
            now,
        )
        .await?;
    let logout_hint = metadata.slo_redirect.as_ref().and_then(|_| {
        let hint = SamlLogoutHint {
            name_id: verified.name_id.clone(),
            format: verified.name_id_format.clone(),
            session_index: verified.session_index.clone(),
        };
        let json = serde_json::to_vec(&hint).ok()?;
        Some(app.sign_in.seal_logout_hint(&json))
    });
    Ok((
        SignedIn {
            session,
            rd: attempt.rd.clone(),
            logout_hint,
            refresh: None,
        },
        attempt.state.clone(),
    ))
}

/// Attribute names that carry the email address, display name and user name, by their usual
/// friendly names and their LDAP OIDs (what Okta, Entra ID, Keycloak and ADFS send).
const EMAIL_ATTRIBUTES: [&str; 4] = [
    "email",
    "mail",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
];
const NAME_ATTRIBUTES: [&str; 5] = [
    "displayName",
    "name",
    "cn",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "http://schemas.microsoft.com/identity/claims/displayname",
];
const USERNAME_ATTRIBUTES: [&str; 2] = ["uid", "urn:oid:0.9.2342.19200300.100.1.1"];

/// The attribute Entra ID sends instead of the groups when a user is in more than 150 of them.
const GROUPS_LINK_ATTRIBUTE: &str = "http://schemas.microsoft.com/claims/groups.link";

/// What a verified assertion says about the user.
fn saml_identity<'a>(
    saml: &'a SamlProvider,
    idp_entity_id: &str,
    verified: &VerifiedAssertion,
) -> VerifiedIdentity<'a> {
    let first = |names: &[&str]| {
        names.iter().find_map(|n| {
            let value = verified.attributes.get(*n)?;
            let text = match value {
                serde_json::Value::Array(items) => items.first()?.as_str()?,
                other => other.as_str()?,
            };
            (!text.is_empty() && text.len() <= 512).then(|| text.to_owned())
        })
    };
    let email = first(&EMAIL_ATTRIBUTES).or_else(|| {
        (verified.name_id_format.as_deref() == Some(NAMEID_EMAIL)).then(|| verified.name_id.clone())
    });
    VerifiedIdentity {
        provider: &saml.identity,
        issuer: idp_entity_id.to_owned(),
        subject: verified.name_id.clone(),
        name: first(&NAME_ATTRIBUTES),
        preferred_username: first(&USERNAME_ATTRIBUTES).or_else(|| email.clone()),
        email,
        claims: verified.attributes.clone(),
        // The IdP's session: its single logout names it (`SessionIndex`), as an OIDC
        // back-channel logout names `sid`.
        idp_session: verified.session_index.clone(),
        // SAML has no UserInfo: the signed attributes are the whole profile.
        profile: None,
        // Entra's SAML group overage: past 150 groups the assertion has no groups attribute but
        // a `groups.link`. Not read through Graph (no access token here): the groups are
        // unknown, and rules on groups fail closed.
        groups_unknown: (verified.attributes.contains_key(GROUPS_LINK_ATTRIBUTE)
            && !verified
                .attributes
                .contains_key(&saml.identity.groups_claim))
        .then_some("saml_groups_overage"),
    }
}
