//! The one sign-in pipeline both protocols feed.
//!
//! Each protocol verifies what the IdP sent in its own module (OIDC: [`gatehouse_auth::token`] from the
//! callback in `routes::sign_in`; SAML: [`gatehouse_auth::saml::verify`] from the ACS in `routes::saml`)
//! and hands over a [`VerifiedIdentity`]. From there the path is the same: role → admit → hook →
//! provision → session ([`establish`]), then one answer ([`respond`]): the audit line, the
//! metrics, the cookies or the refusal page.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, header};

use gatehouse_auth::access::{ClaimsTooLarge, Policy};
use gatehouse_auth::claims::{Role, RolePolicy};
use gatehouse_auth::collections::ExpiringSet;
use gatehouse_auth::identity::IdentityIssuer;
use gatehouse_auth::signin::{self, SignedInUser, VerifiedIdentity};
use gatehouse_directory::{ProvisionError, UserDirectory};

use crate::audit::{self, SignInOutcome};
use crate::error::SignInError;
use crate::hook::{HookError, ProvisionHook};
use crate::metrics::Metrics;
use crate::pages::{self, html_response};
use crate::sessions::Sessions;
use gatehouse_auth::cookie::{ATTEMPT_TTL_SECS, Attempt, Purpose, Session, random_token};
use gatehouse_crds::consts::LOGIN_PATH;

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

/// The sign-in service: what both protocols' callbacks share once the IdP's answer is verified,
/// with narrow handles to what that touches, built once.
#[derive(Debug)]
pub struct SignIn {
    /// `state` values already used by a callback.
    pub used_states: ExpiringSet,
    /// HTTP client for IdPs (no redirects, timeouts).
    pub http: reqwest::Client,
    /// The app's provisioning hook.
    pub hook: Option<ProvisionHook>,
    /// Where users are admitted and recorded.
    pub directory: Arc<UserDirectory>,
    /// Identity headers (the hook is called with them).
    pub identity: Arc<IdentityIssuer>,
    /// Cookie keys and names (the new session is sealed).
    pub sessions: Arc<Sessions>,
    /// Where sign-ins are counted.
    pub metrics: Arc<Metrics>,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// The SsoConfig's name (`GATEHOUSE_CONFIG`): part of its users' SsoUser names.
    pub config_name: String,
    /// `GATEHOUSE_ATTRIBUTE_MAPPINGS`: claims copied to the SsoUser.
    pub attribute_mappings: Vec<(String, String)>,
    /// The access rules: the session keeps the groups and claims they name.
    pub access: Option<Arc<Policy>>,
}

impl SignIn {
    /// Role → admit → hook → provision → session, for an identity a protocol verified.
    pub async fn establish(
        &self,
        identity: VerifiedIdentity<'_>,
        roles: &RolePolicy,
        now: i64,
    ) -> Result<Session, SignInError> {
        let provider = identity.provider;
        let mapped = signin::map_user(
            &self.config_name,
            &identity,
            roles,
            &self.attribute_mappings,
        );
        if let Some(reason) = identity.groups_unknown {
            let user = match &mapped {
                Ok((signed_in, _)) => &signed_in.user,
                Err(unmapped) => &unmapped.user,
            };
            audit::groups_unknown(&provider.id, "sign_in", reason, user);
            if roles.reads_claim(&provider.groups_claim) {
                return Err(SignInError::GroupsUnavailable { user: user.clone() });
            }
        }
        let (mut signed_in, role) = mapped.map_err(|unmapped| SignInError::Role {
            user: unmapped.user,
            denial: unmapped.denial,
        })?;
        let (groups, claims, facts) =
            rule_facts(self.access.as_deref(), &identity).map_err(|_| {
                SignInError::ClaimsTooLarge {
                    user: signed_in.user.clone(),
                }
            })?;
        // Read-only first: a refused user, an unreachable API or a failing hook leaves nothing behind.
        let admission = self
            .directory
            .admit(&signed_in)
            .await
            .map_err(|e| directory_refused(&provider.id, &signed_in.user, e))?;
        // An SsoUser made before names included the config keeps its name.
        if let Some(name) = admission.user_name() {
            signed_in.user = name.to_owned();
        }
        let user = signed_in.user.clone();

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
            expires_at: now + i64::try_from(self.session_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            user_uid: None,
            idp_sid: identity.idp_session,
            validated_at: None,
            groups,
            claims,
            facts,
            groups_unknown: identity.groups_unknown.is_some(),
        };
        if let Some(hook) = &self.hook {
            let headers = self.identity.headers_for(&session, provider, now);
            hook.call(&signed_in, &headers.headers)
                .await
                .map_err(|e| hook_failed(&provider.id, &user, e))?;
        }
        session.user_uid = self
            .directory
            .provision(&signed_in, admission)
            .await
            .map_err(|e| directory_refused(&provider.id, &user, e))?
            .user_uid;
        Ok(session)
    }

    /// Marks `attempt` used: a callback (or ACS post) is honoured once, also against a replay
    /// that carries a copy of the attempt cookie.
    pub fn use_attempt(&self, attempt: &Attempt, now: i64) -> Result<(), SignInError> {
        let until = attempt.created_at + ATTEMPT_TTL_SECS;
        if self.used_states.insert(&attempt.state, until, now) {
            Ok(())
        } else {
            Err(SignInError::StateReplayed)
        }
    }

    /// Seals what single logout at the IdP will need (the ID token for OIDC, the NameID and
    /// session index for SAML) for the logout hint cookie.
    pub fn seal_logout_hint(&self, hint: &[u8]) -> String {
        self.sessions
            .keys()
            .seal(Purpose::LogoutHint, &self.sessions.binding, hint)
    }

    /// What a verified identity makes of the user ([`gatehouse_auth::signin::map_user`] with this
    /// sidecar's attribute mappings), or the refusal.
    pub fn map_user(
        &self,
        identity: &VerifiedIdentity<'_>,
        roles: &RolePolicy,
    ) -> Result<(SignedInUser, Role), SignInError> {
        signin::map_user(&self.config_name, identity, roles, &self.attribute_mappings).map_err(
            |unmapped| SignInError::Role {
                user: unmapped.user,
                denial: unmapped.denial,
            },
        )
    }

    /// The answer to a completed or refused sign-in of `provider`: audit line and metrics, then the
    /// session cookies and a redirect, or the refusal page.
    pub fn respond(
        &self,
        provider: &str,
        result: Result<SignedIn, SignInError>,
        now: i64,
    ) -> Response<Body> {
        match result {
            Ok(signed_in) => {
                let session = &signed_in.session;
                audit::sign_in(
                    provider,
                    SignInOutcome::Success,
                    None,
                    Some(&session.user),
                    Some(session.role.as_str()),
                );
                self.metrics
                    .sign_in(provider, SignInOutcome::Success.as_str(), None);
                let mut r = pages::redirect(StatusCode::FOUND, &signed_in.rd);
                let ttl = session.expires_at - now;
                let sealed = session.seal(&self.sessions.keys(), &self.sessions.binding);
                let cookies = &self.sessions.cookies;
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
            Err(error) => {
                let (outcome, reason) = (error.outcome(), error.metric_label());
                audit::sign_in(provider, outcome, Some(reason), error.user(), None);
                self.metrics
                    .sign_in(provider, outcome.as_str(), Some(reason));
                html_response(error.status(), pages::problem_page(reason, LOGIN_PATH))
            }
        }
    }
}

/// The error for the app's provisioning hook failing `error` for `user` (logged).
fn hook_failed(provider: &str, user: &str, error: HookError) -> SignInError {
    tracing::warn!(provider, user, error = %error, "sign-in could not be recorded");
    SignInError::Hook {
        user: user.to_owned(),
        error,
    }
}

/// The error for the user directory refusing `user` or failing to record the sign-in; a
/// failure (not a refusal) is logged.
fn directory_refused(provider: &str, user: &str, error: ProvisionError) -> SignInError {
    if !error.is_denial() {
        tracing::warn!(provider, user, error = %error, "sign-in could not be recorded");
    }
    SignInError::Directory {
        user: user.to_owned(),
        error: Box::new(error),
    }
}

/// What a session keeps for the access rules: the user's groups they name (of all the groups
/// read, ID token or Microsoft Graph; none when they are unknown), the ID-token claims their
/// `when` conditions name, and the fingerprint of that choice. Nothing without rules.
pub fn rule_facts(
    access: Option<&Policy>,
    identity: &VerifiedIdentity<'_>,
) -> Result<RuleFacts, ClaimsTooLarge> {
    let Some(policy) = access else {
        return Ok((Vec::new(), None, None));
    };
    let groups = if identity.groups_unknown.is_some() {
        Vec::new()
    } else {
        policy.session_groups_from_claims(&identity.claims, &identity.provider.groups_claim)
    };
    Ok((
        groups,
        policy.session_claims(&identity.claims)?,
        policy.facts_fingerprint().map(str::to_owned),
    ))
}

/// A session's [`Session::groups`], [`Session::claims`] and [`Session::facts`].
pub type RuleFacts = (
    Vec<String>,
    Option<serde_json::Map<String, serde_json::Value>>,
    Option<String>,
);
