//! Why a sign-in did not complete: one vocabulary for both protocols and every layer below
//! them. Each error names its metric label (also the audit line's `reason` and the key of the
//! page shown), the HTTP status of that page, and whether a verified user was refused (`denied`)
//! or the attempt broke (`failed`). The lower crates' errors keep their own labels
//! ([`TokenError::reason`], [`SamlError::reason`], [`RoleDenial::reason`],
//! [`ProvisionError::reason`]); this type carries them up to where they are counted.

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
    /// The user directory refused the user, or could not record the sign-in.
    #[error("user {user}: {error}")]
    Directory {
        /// The SsoUser name.
        user: String,
        /// What the directory said (boxed: it may hold a whole API error).
        #[source]
        error: Box<ProvisionError>,
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
            Self::ProviderUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ExchangeFailed | Self::Hook { .. } => StatusCode::BAD_GATEWAY,
            Self::Saml(e) => e.status(),
            Self::Role { .. } => StatusCode::FORBIDDEN,
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

    /// The SsoUser name, when the user was verified before the refusal.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::Role { user, .. } | Self::Directory { user, .. } | Self::Hook { user, .. } => {
                Some(user)
            }
            _ => None,
        }
    }
}
