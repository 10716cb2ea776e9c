//! Why a sign-in could not be recorded in the directory.

use std::time::Duration;

/// Why a sign-in could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The SsoUser has `suspended: true`.
    #[error("this account is suspended")]
    Suspended,
    /// Provisioning mode is `preDeclared` and no SsoUser exists for the user.
    #[error(
        "no SsoUser is declared for this user and the SsoConfig only admits pre-declared users"
    )]
    NotDeclared,
    /// A re-validation found no SsoUser: the user was deleted while the refresh was in the
    /// air. A re-validation never creates one (only a sign-in does).
    #[error("the SsoUser was deleted")]
    Deleted,
    /// An SsoUser of this name exists for another config, provider or subject.
    #[error("SsoUser {name} belongs to another identity or SsoConfig")]
    Collision {
        /// The SsoUser.
        name: String,
    },
    /// The Kubernetes API could not be reached or refused the request.
    #[error("the Kubernetes API is unavailable: {0}")]
    Unavailable(#[source] kube::Error),
    /// The Kubernetes API did not answer within the sign-in's budget ([`crate::SIGN_IN_API_BUDGET`]).
    #[error("the Kubernetes API did not answer within {0:?}")]
    TimedOut(Duration),
    /// Writers kept racing this sign-in.
    #[error("SsoUser {name} kept changing during sign-in")]
    Contended {
        /// The SsoUser.
        name: String,
    },
}

impl ProvisionError {
    /// Stable, low-cardinality reason code (metrics, audit lines, the page shown).
    pub fn reason(&self) -> &'static str {
        match self {
            ProvisionError::Suspended => "user_suspended",
            ProvisionError::NotDeclared => "user_not_declared",
            ProvisionError::Deleted => "user_deleted",
            ProvisionError::Collision { .. } => "user_conflict",
            ProvisionError::Unavailable(_) | ProvisionError::TimedOut(_) => "directory_unavailable",
            ProvisionError::Contended { .. } => "directory_contended",
        }
    }

    /// Whether the user was refused (as opposed to the sign-in failing for a technical reason).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            ProvisionError::Suspended
                | ProvisionError::NotDeclared
                | ProvisionError::Deleted
                | ProvisionError::Collision { .. }
        )
    }
}
