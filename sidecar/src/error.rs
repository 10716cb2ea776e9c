//! Why a sign-in did not complete: one vocabulary for both protocols and every layer below
//! them. Each error names its metric label (also the audit line's `reason` and the key of the
//! page shown), the HTTP status of that page, and whether a verified user was refused (`denied`)
//! or the attempt broke (`failed`). The lower crates' errors keep their own labels
//! ([`TokenError::reason`], [`SamlError::reason`], [`RoleDenial::reason`],
//! [`ProvisionError::reason`]); this type carries them up to where they are counted.

use gatehouse_auth::access::MAX_SESSION_CLAIM_BYTES;
use gatehouse_auth::claims::RoleDenial;
use gatehouse_auth::saml::verify::SamlError;
use gatehouse_auth::token::TokenError;
use gatehouse_directory::ProvisionError;
use http::StatusCode;

use crate::audit::SignInOutcome;
use crate::hook::HookError;

/// A refused or failed sign-in.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// No attempt cookie matches the callback (missing, foreign, expired, or for another state
    /// or provider).
    #[error("no sign-in attempt matches this callback")]
    StateInvalid,
    /// The attempt was already used.
    #[error("this sign-in attempt was already used")]
    StateReplayed,
    /// The identity provider answered `error=access_denied`.
    #[error("the identity provider denied the sign-in")]
    IdpDenied,
    /// The identity provider answered with another error.
    #[error("the identity provider answered with an error")]
    IdpError,
    /// The callback carries no usable authorization code (counted as `idp_error`).
    #[error("the callback carries no authorization code")]
    CodeMissing,
    /// The callback's `iss` parameter is missing or names another issuer (RFC 9207).
    #[error("the callback's issuer is not this provider's")]
    IssuerMismatch,
    /// The provider's discovery document and keys, or the SAML metadata, are not loaded yet.
    #[error("the identity provider is not available")]
    ProviderUnavailable,
    /// The authorization code could not be exchanged for tokens.
    #[error("the code exchange failed")]
    ExchangeFailed,
    /// The ID token was refused.
    #[error(transparent)]
    Token(TokenError),
    /// The SAML response was refused.
    #[error(transparent)]
    Saml(SamlError),
    /// The verified user's claims map to no role.
    #[error("user {user}: no role ({})", denial.reason())]
    Role {
        /// The SsoUser name.
        user: String,
        /// Why no role.
        denial: RoleDenial,
    },
    /// The user's groups could not be read (an Entra ID group overage Microsoft Graph did not
    /// answer) and the role is mapped from the groups claim: no role can be given.
    #[error("user {user}: groups unknown, and the role is mapped from them")]
    GroupsUnavailable {
        /// The SsoUser name.
        user: String,
    },
    /// The user directory refused the user, or could not record the sign-in.
    #[error("user {user}: {error}")]
    Directory {
        /// The SsoUser name.
        user: String,
        /// What the directory said (boxed: it may hold a whole API error).
        #[source]
        error: Box<ProvisionError>,
    },
    /// The claims the access rules name do not fit in a session.
    #[error(
        "user {user}: the claims the access rules name are over {MAX_SESSION_CLAIM_BYTES} bytes"
    )]
    ClaimsTooLarge {
        /// The SsoUser name.
        user: String,
    },
    /// The app's provisioning hook failed.
    #[error("user {user}: {error}")]
    Hook {
        /// The SsoUser name.
        user: String,
        /// What failed.
        #[source]
        error: HookError,
    },
}

impl SignInError {
    /// Stable, low-cardinality label: metric label, audit `reason`, the page's message key.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::StateInvalid => "state_invalid",
            Self::StateReplayed => "state_replayed",
            Self::IdpDenied => "idp_denied",
            Self::IdpError | Self::CodeMissing => "idp_error",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::ExchangeFailed => "exchange_failed",
            Self::Token(e) => e.reason(),
            Self::Saml(e) => e.reason(),
            Self::Role { denial, .. } => denial.reason(),
            Self::Directory { error, .. } => error.reason(),
            Self::Hook { .. } => "provision_hook_failed",
            Self::ClaimsTooLarge { .. } => "access_claims_too_large",
            Self::GroupsUnavailable { .. } => "groups_unavailable",
        }
    }

    /// HTTP status of the refusal page.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::IdpDenied | Self::IdpError => StatusCode::FORBIDDEN,
            Self::StateInvalid
            | Self::StateReplayed
            | Self::CodeMissing
            | Self::IssuerMismatch
            | Self::Token(_) => StatusCode::BAD_REQUEST,
            Self::ProviderUnavailable | Self::GroupsUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::ExchangeFailed | Self::Hook { .. } => StatusCode::BAD_GATEWAY,
            Self::Saml(e) => e.status(),
            Self::Role { .. } | Self::ClaimsTooLarge { .. } => StatusCode::FORBIDDEN,
            Self::Directory { error, .. } if error.is_denial() => StatusCode::FORBIDDEN,
            Self::Directory { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `denied` (a verified user was refused) or `failed` (the attempt broke).
    pub fn outcome(&self) -> SignInOutcome {
        let denied = match self {
            Self::Role { .. } => true,
            Self::Saml(e) => e.is_denial(),
            Self::Directory { error, .. } => error.is_denial(),
            _ => false,
        };
        if denied {
            SignInOutcome::Denied
        } else {
            SignInOutcome::Failed
        }
    }

    /// One error of every reason a sign-in can end with — the sidecar's own and the lower
    /// crates' ([`TokenError::EXAMPLES`], [`SamlError::ALL`], [`RoleDenial::ALL`],
    /// [`ProvisionError::sign_in_examples`]) — for the table of sign-in reasons in the docs.
    /// Keep the sidecar's own in step with [`SignInError::explanation`], whose match fails to
    /// compile on a new variant.
    pub fn examples() -> Vec<SignInError> {
        let user = || String::new();
        let own = [
            Self::StateInvalid,
            Self::StateReplayed,
            Self::IdpDenied,
            Self::IdpError,
            Self::CodeMissing,
            Self::IssuerMismatch,
            Self::ProviderUnavailable,
            Self::ExchangeFailed,
            Self::Hook {
                user: user(),
                error: HookError("timeout".into()),
            },
            Self::ClaimsTooLarge { user: user() },
            Self::GroupsUnavailable { user: user() },
        ];
        own.into_iter()
            .chain(TokenError::EXAMPLES.into_iter().map(Self::Token))
            .chain(SamlError::ALL.into_iter().map(Self::Saml))
            .chain(RoleDenial::ALL.into_iter().map(|denial| Self::Role {
                user: user(),
                denial,
            }))
            .chain(
                ProvisionError::sign_in_examples()
                    .into_iter()
                    .map(|error| Self::Directory {
                        user: user(),
                        error: Box::new(error),
                    }),
            )
            .collect()
    }

    /// What the reason tells an operator, and what to do: one line of the docs' table of
    /// sign-in reasons (`docs/troubleshooting.md`, generated from this).
    pub fn explanation(&self) -> &'static str {
        match self {
            Self::StateInvalid => {
                "no sign-in attempt matches the callback: its attempt cookie is missing, expired \
                 (10 minutes), from another browser, or for another provider. The user signs in \
                 again; when it happens to everyone, the browser drops the cookie (`publicUrl` is \
                 not what the browser shows)"
            }
            Self::StateReplayed => {
                "the sign-in attempt (or the SAML response) was already used: a reload of the \
                 callback, or a replay. The user signs in again"
            }
            Self::IdpDenied => {
                "the IdP answered `error=access_denied`: the user cancelled, or the IdP's policy \
                 refused them (the app is not assigned to them at the IdP)"
            }
            Self::IdpError | Self::CodeMissing => {
                "the IdP answered the callback with an error other than `access_denied`, or \
                 without an authorization code: the IdP's log says why (often the client's grant \
                 types or redirect URI)"
            }
            Self::IssuerMismatch => {
                "the callback's `iss` parameter is missing or names another issuer (RFC 9207 \
                 mix-up protection): check the provider's issuer"
            }
            Self::ProviderUnavailable => {
                "the provider's discovery document and keys (or the SAML metadata) are not loaded: \
                 `<issuer>/.well-known/openid-configuration` unreachable from the pod (egress \
                 policy, proxy) or the issuer mistyped; `gatehouse_provider_ready` shows it"
            }
            Self::ExchangeFailed => {
                "the IdP's token endpoint refused the authorization code or could not be reached: \
                 the sidecar's log line has the IdP's error; check the client secret and the \
                 egress to the IdP"
            }
            Self::Token(e) => e.explanation(),
            Self::Saml(e) => e.explanation(),
            Self::Role { denial, .. } => denial.explanation(),
            Self::Directory { error, .. } => error.explanation(),
            Self::Hook { .. } => {
                "the app's provisioning hook (`provisioning.hookPath`) answered non-2xx, timed out \
                 (5 s) or was unreachable; nothing was written: see the app's log"
            }
            Self::ClaimsTooLarge { .. } => {
                "the ID-token claims the access rules' `when` conditions name are over 1 KiB (as \
                 JSON) for this user, more than a session cookie can carry: name smaller claims \
                 in `when`, or have the IdP send less in them"
            }
            Self::GroupsUnavailable { .. } => {
                "the user is in more groups than the ID token carries (Entra ID group overage), \
                 Microsoft Graph did not answer with them (the `event=groups` audit line says why), \
                 and the role is mapped from the groups claim: the user tries again \
                 later. Map the role from app roles instead, so a Graph outage only affects \
                 rules on groups"
            }
        }
    }

    /// The SsoUser name, when the user was verified before the refusal.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::Role { user, .. }
            | Self::Directory { user, .. }
            | Self::Hook { user, .. }
            | Self::ClaimsTooLarge { user }
            | Self::GroupsUnavailable { user } => Some(user),
            _ => None,
        }
    }
}
