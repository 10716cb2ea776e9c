//! The one sign-in pipeline both protocols feed.
//!
//! Each protocol verifies what the IdP sent in its own module (OIDC: [`crate::token`] from the
//! callback in `routes::sign_in`; SAML: [`crate::saml::verify`] from the ACS in `routes::saml`)
//! and hands over a [`VerifiedIdentity`]. From there the path is the same: role → admit → hook →
//! provision → session ([`establish`]), then one answer ([`respond`]): the audit line, the
//! metrics, the cookies or the refusal page.

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, header};
use serde_json::{Map, Value};

use crate::audit::{self, Outcome};
use crate::claims::{Role, RolePolicy, map_role};
use crate::identity::ProviderIdentity;
use crate::pages::{self, html_response};
use crate::providers::Provider;
use crate::provisioning::{Occasion, ProvisionError, SignedInUser};
use crate::session::{Session, random_token};
use crate::state::App;
use crate::token::VerifiedIdToken;
use gatehouse_crds::consts::LOGIN_PATH;

/// What a protocol established about the user: verified by the protocol's own module, trusted
/// from here on.
#[derive(Debug)]
pub struct VerifiedIdentity<'a> {
    /// The provider the user signed in with.
    pub provider: &'a ProviderIdentity,
    /// The issuer (OIDC `iss`) or IdP entity ID (SAML): with the subject, names the SsoUser.
    pub issuer: String,
    /// The IdP's stable subject (OIDC `sub`, SAML persistent NameID).
    pub subject: String,
    /// Verified email address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Preferred user name.
    pub preferred_username: Option<String>,
    /// Claims (OIDC) or attributes (SAML, name → string or array of strings): what the role
    /// policy and `GATEHOUSE_ATTRIBUTE_MAPPINGS` read.
    pub claims: Map<String, Value>,
    /// The IdP's own session id (OIDC `sid`), which back-channel logout names.
    pub idp_session: Option<String>,
    /// `claims` with gaps filled from the IdP's UserInfo endpoint (OIDC), read for the attribute
    /// mappings; the role policy never reads it (the role comes from the signed token only).
    pub profile: Option<Map<String, Value>>,
}

impl<'a> VerifiedIdentity<'a> {
    /// What a verified ID token says about the user, with the gaps `userinfo` filled (profile
    /// and mapped attributes only: the role policy reads the ID token's own claims).
    pub fn oidc(
        provider: &'a Provider,
        token: VerifiedIdToken,
        userinfo: Option<Map<String, Value>>,
    ) -> Self {
        let profile = userinfo.as_ref().unwrap_or(&token.claims);
        let text = |name: &str| {
            profile
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty() && s.len() <= 512)
                .map(str::to_owned)
        };
        // An address the IdP says is unverified is not an identity.
        let email =
            text("email").filter(|_| profile.get("email_verified") != Some(&Value::Bool(false)));
        let preferred_username = text("preferred_username").or_else(|| email.clone());
        let name = text("name");
        VerifiedIdentity {
            provider: &provider.identity,
            issuer: provider.config.issuer.clone(),
            subject: token.subject.clone(),
            name,
            email,
            preferred_username,
            idp_session: crate::logout_token::idp_session_id(&token.claims),
            claims: token.claims,
            profile: userinfo,
        }
    }
}

/// A refused or failed sign-in: its reason, HTTP status and audit outcome.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Stable, low-cardinality reason (audit field, metric label, page message key).
    pub reason: &'static str,
    /// HTTP status of the refusal page.
    pub status: StatusCode,
    /// `failed` (the attempt was broken) or `denied` (a verified user was refused).
    pub outcome: Outcome,
    /// The SsoUser name, when the user is known.
    pub user: Option<String>,
}

impl Refusal {
    /// A broken attempt.
    pub fn failed(reason: &'static str, status: StatusCode) -> Self {
        Self {
            reason,
            status,
            outcome: Outcome::Failed,
            user: None,
        }
    }

    /// A verified user refused.
    pub fn denied(reason: &'static str, status: StatusCode, user: Option<String>) -> Self {
        Self {
            reason,
            status,
            outcome: Outcome::Denied,
            user,
        }
    }
}

/// A completed sign-in: the session, where to go, and the protocol's sealed cookies besides the
/// session's.
#[derive(Debug)]
pub struct SignedIn {
    /// The new session.
    pub session: Session,
    /// Same-origin path to return to.
    pub rd: String,
    /// Sealed value for the logout hint cookie (what single logout at the IdP needs).
    pub logout_hint: Option<String>,
    /// Sealed value for the refresh cookie (OIDC, when the IdP gave a refresh token and
    /// re-validation is on).
    pub refresh: Option<String>,
}

/// Role → admit → hook → provision → session, for an identity a protocol verified.
pub async fn establish(
    app: &App,
    identity: VerifiedIdentity<'_>,
    roles: &RolePolicy,
    now: i64,
) -> Result<Session, Refusal> {
    let provider = identity.provider;
    let (signed_in, role) = map_user(app, &identity, roles)?;
    let user = signed_in.user.clone();
    // Read-only first: a refused user, an unreachable API or a failing hook leaves nothing behind.
    let admission = app
        .directory
        .admit(&signed_in)
        .await
        .map_err(|e| provision_refusal(&provider.id, &user, e))?;

    let mut session = Session {
        sid: random_token(16),
        user: user.clone(),
        subject: identity.subject,
        provider: provider.id.clone(),
        email: identity.email,
        name: identity.name,
        username: identity.preferred_username,
        role,
        issued_at: now,
        expires_at: now + i64::try_from(app.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 2),
        user_uid: None,
        idp_sid: identity.idp_session,
        validated_at: None,
    };
    if let Some(hook) = &app.sign_in.hook {
        let headers = app.identity.headers_for(&session, provider, now);
        hook.call(&signed_in, &headers.headers)
            .await
            .map_err(|e| provision_refusal(&provider.id, &user, e))?;
    }
    session.user_uid = app
        .directory
        .provision(&signed_in, admission)
        .await
        .map_err(|e| provision_refusal(&provider.id, &user, e))?
        .user_uid;
    Ok(session)
}

/// What a verified identity makes of the user: the SsoUser record of the sign-in (name,
/// profile, mapped attributes) and the role its claims map to, or the denial. Sign-in and
/// re-validation both start here.
pub fn map_user(
    app: &App,
    identity: &VerifiedIdentity<'_>,
    roles: &RolePolicy,
) -> Result<(SignedInUser, Role), Refusal> {
    let provider = identity.provider;
    let user =
        gatehouse_crds::names::sso_user_name(&provider.id, &identity.issuer, &identity.subject);
    let role = map_role(roles, &identity.claims)
        .map_err(|d| Refusal::denied(d.reason(), StatusCode::FORBIDDEN, Some(user.clone())))?;
    let signed_in = SignedInUser {
        user,
        provider: provider.id.clone(),
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        email: identity.email.clone(),
        name: identity.name.clone(),
        preferred_username: identity.preferred_username.clone(),
        role: role.as_str(),
        org: provider.org_id.clone(),
        attributes: crate::claims::attributes(
            &app.config.attribute_mappings,
            identity.profile.as_ref().unwrap_or(&identity.claims),
        ),
        occasion: Occasion::SignIn,
    };
    Ok((signed_in, role))
}

/// The refusal for a user directory or hook error `e` about `user`: a denial (suspended, not
/// declared) or a failure (API unreachable, hook failing), which is logged.
pub fn provision_refusal(provider: &str, user: &str, e: ProvisionError) -> Refusal {
    let (status, outcome) = match &e {
        e if e.is_denial() => (StatusCode::FORBIDDEN, Outcome::Denied),
        ProvisionError::Hook(_) => (StatusCode::BAD_GATEWAY, Outcome::Failed),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Outcome::Failed),
    };
    if outcome == Outcome::Failed {
        tracing::warn!(provider, user, error = %e, "sign-in could not be recorded");
    }
    Refusal {
        reason: e.reason(),
        status,
        outcome,
        user: Some(user.to_owned()),
    }
}

/// The answer to a completed or refused sign-in of `provider`: audit line and metrics, then the
/// session cookies and a redirect, or the refusal page.
pub fn respond(
    app: &App,
    provider: &str,
    result: Result<SignedIn, Refusal>,
    now: i64,
) -> Response<Body> {
    match result {
        Ok(signed_in) => {
            let session = &signed_in.session;
            audit::sign_in(
                provider,
                Outcome::Success,
                None,
                Some(&session.user),
                Some(session.role.as_str()),
            );
            app.metrics
                .sign_in(provider, Outcome::Success.as_str(), None);
            let mut r = crate::routes::redirect(StatusCode::FOUND, &signed_in.rd);
            let ttl = session.expires_at - now;
            let sealed = session.seal(&app.sessions.keys(), &app.sessions.binding);
            let cookies = &app.sessions.cookies;
            r.headers_mut().append(
                header::SET_COOKIE,
                cookies.set(&cookies.session, &sealed, ttl),
            );
            if let Some(hint) = &signed_in.logout_hint {
                r.headers_mut().append(
                    header::SET_COOKIE,
                    cookies.set(&cookies.logout_hint, hint, ttl),
                );
            }
            if let Some(refresh) = &signed_in.refresh {
                r.headers_mut().append(
                    header::SET_COOKIE,
                    cookies.set(&cookies.refresh, refresh, ttl),
                );
            }
            r
        }
        Err(refusal) => {
            audit::sign_in(
                provider,
                refusal.outcome,
                Some(refusal.reason),
                refusal.user.as_deref(),
                None,
            );
            app.metrics
                .sign_in(provider, refusal.outcome.as_str(), Some(refusal.reason));
            html_response(
                refusal.status,
                pages::problem_page(refusal.reason, LOGIN_PATH),
            )
        }
    }
}
