//! The audit trail: one structured line per sign-in attempt and per re-validation of a session,
//! on the `gatehouse::audit` target.
//!
//! Fields: `provider`, `outcome` (a sign-in's `success`, `denied`, `failed`; a re-validation's
//! [`crate::metrics::RevalidationOutcome`], or `refused` for a request whose session it
//! refused), `reason` (a stable code), `user` (the SsoUser name, a hash of issuer and subject)
//! and `role` when known. Never a token, code, cookie, email or raw subject.

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    /// A session was issued.
    Success,
    /// A verified user was refused (role, suspension).
    Denied,
    /// The attempt itself was broken (state, token, IdP error, outage).
    Failed,
}

impl SignInOutcome {
    /// `success`, `denied` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInOutcome::Success => "success",
            SignInOutcome::Denied => "denied",
            SignInOutcome::Failed => "failed",
        }
    }
}

/// Writes the audit line of one sign-in attempt.
pub fn sign_in(
    provider: &str,
    outcome: SignInOutcome,
    reason: Option<&str>,
    user: Option<&str>,
    role: Option<&str>,
) {
    let reason = reason.unwrap_or("none");
    let user = user.unwrap_or("unknown");
    let role = role.unwrap_or("none");
    match outcome {
        SignInOutcome::Success => tracing::info!(
            target: "gatehouse::audit",
            event = "sign_in", provider, outcome = outcome.as_str(), reason, user, role,
            "sign-in succeeded"
        ),
        SignInOutcome::Denied | SignInOutcome::Failed => tracing::warn!(
            target: "gatehouse::audit",
            event = "sign_in", provider, outcome = outcome.as_str(), reason, user, role,
            "sign-in refused"
        ),
    }
}

/// Writes the audit line of one re-validation of a session at its IdP. `outcome` is one of
/// [`crate::metrics::RevalidationOutcome`]; `reason` a stable code. A session refused for its
/// re-validation writes [`revalidation_refused`] instead.
pub fn revalidation(provider: &str, outcome: &str, reason: &str, user: &str, role: &str) {
    match outcome {
        "refreshed" => tracing::info!(
            target: "gatehouse::audit",
            event = "revalidation", provider, outcome, reason, user, role,
            "session re-validated at the identity provider"
        ),
        _ => tracing::warn!(
            target: "gatehouse::audit",
            event = "revalidation", provider, outcome, reason, user, role,
            "session not re-validated"
        ),
    }
}

/// Writes the audit line of a request refused because its session's re-validation failed it:
/// `outcome=refused`, `reason` a [`crate::judge::Refusal`] label (`revalidation_unvouched`,
/// `revalidation_overdue`), the same as in `gatehouse_sessions_refused_total`.
pub fn revalidation_refused(provider: &str, reason: &str, user: &str, role: &str) {
    tracing::warn!(
        target: "gatehouse::audit",
        event = "revalidation", provider, outcome = "refused", reason, user, role,
        "session refused: not re-validated"
    );
}

/// Writes the audit line of a sign-in (`occasion` `sign_in`) or re-validation (`revalidation`)
/// whose user's groups could not be read: the ID token left them out (Entra ID group overage)
/// and Microsoft Graph did not give them. `reason` a stable
/// [`crate::graph::GraphError`] label. The session decides access rules with the groups
/// unknown: a rule needing a group does not admit, a `Deny` on a group refuses.
pub fn groups_unknown(provider: &str, occasion: &str, reason: &str, user: &str) {
    tracing::warn!(
        target: "gatehouse::audit",
        event = "groups", outcome = "unknown", provider, occasion, reason, user,
        "the user's groups could not be read: rules on groups fail closed for this session"
    );
}

/// Writes the audit line of a request the access rules refused: `rule` names the `Deny` rule
/// that matched (`default` when `defaultAction` decided), `user` the principal (`anonymous`
/// without one). The path is the one requested, without its query.
pub fn access_denied(rule: &str, user: &str, provider: &str, method: &str, path: &str) {
    tracing::warn!(
        target: "gatehouse::audit",
        event = "access", outcome = "denied", rule, user, provider, method, path,
        "request refused by the access rules"
    );
}

/// [`access_denied`] for a session whose groups could not be read (`groups=unknown`): a rule
/// needing a group did not admit it, or a `Deny` on a group refused it, failing closed.
pub fn access_denied_groups_unknown(
    rule: &str,
    user: &str,
    provider: &str,
    method: &str,
    path: &str,
) {
    tracing::warn!(
        target: "gatehouse::audit",
        event = "access", outcome = "denied", rule, user, provider, method, path,
        groups = "unknown",
        "request refused by the access rules; the user's groups could not be read"
    );
}

/// Writes the audit line of a bearer token refused (machine clients): `reason` a stable
/// [`gatehouse_auth::machine::BearerError`] label; never the token.
pub fn bearer_refused(reason: &str, method: &str, path: &str) {
    tracing::warn!(
        target: "gatehouse::audit",
        event = "access", outcome = "invalid_token", reason, method, path,
        "bearer token refused"
    );
}

/// Writes the audit line of one change the identity provider made over SCIM: `caller` is the
/// SsoConfig whose token it presented, `action` what it did (`create`, `create_suspended`,
/// `update`, `suspend`, `reactivate`, `delete`), `outcome` `done` or `refused` (with `reason`, a
/// stable code), `user` the SsoUser. Never the token or the profile.
pub fn scim_change(caller: &str, action: &str, outcome: &str, user: Option<&str>, reason: &str) {
    let user = user.unwrap_or("none");
    match outcome {
        "done" => tracing::info!(
            target: "gatehouse::audit",
            event = "scim", caller, action, outcome, user, reason,
            "SCIM change made"
        ),
        _ => tracing::warn!(
            target: "gatehouse::audit",
            event = "scim", caller, action, outcome, user, reason,
            "SCIM change refused"
        ),
    }
}

/// Writes the audit line of a SCIM request refused before it was read: no or a wrong bearer
/// token (`reason`).
pub fn scim_refused(caller: &str, reason: &str) {
    tracing::warn!(
        target: "gatehouse::audit",
        event = "scim", caller, action = "authenticate", outcome = "refused", user = "none", reason,
        "SCIM request refused"
    );
}
