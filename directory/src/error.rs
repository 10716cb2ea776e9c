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
    /// Provisioning mode is `scim` and the identity provider has not pushed this user (or
    /// pushed it without the `externalId` that links it to sign-ins).
    #[error("the identity provider has not provisioned this user for this application (SCIM)")]
    NotProvisioned,
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
    /// The Kubernetes API did not answer within the sign-in's budget (`SIGN_IN_API_BUDGET`).
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
            ProvisionError::NotProvisioned => "user_not_provisioned",
            ProvisionError::Deleted => "user_deleted",
            ProvisionError::Collision { .. } => "user_conflict",
            ProvisionError::Unavailable(_) | ProvisionError::TimedOut(_) => "directory_unavailable",
            ProvisionError::Contended { .. } => "directory_contended",
        }
    }

    /// One error of every reason a sign-in can end with, for the table of sign-in reasons in
    /// the docs ([`ProvisionError::Deleted`] is left out: only a re-validation meets it). Keep
    /// it in step with [`ProvisionError::explanation`], whose match fails to compile on a new
    /// variant.
    pub fn sign_in_examples() -> [ProvisionError; 6] {
        [
            ProvisionError::Suspended,
            ProvisionError::NotDeclared,
            ProvisionError::NotProvisioned,
            ProvisionError::Collision {
                name: String::new(),
            },
            // An example only (its label is what counts): any budget will do.
            ProvisionError::TimedOut(std::time::Duration::from_secs(5)),
            ProvisionError::Contended {
                name: String::new(),
            },
        ]
    }

    /// What the reason tells an operator, and what to do: one line of the docs' table of
    /// sign-in reasons (`docs/troubleshooting.md`, generated from this).
    pub fn explanation(&self) -> &'static str {
        match self {
            ProvisionError::Suspended => "the user's SsoUser has `spec.suspended: true`",
            ProvisionError::NotDeclared => {
                "the SsoConfig has `provisioning.mode: preDeclared` and no SsoUser is declared for \
                 this user: declare one, or switch to `jit`"
            }
            ProvisionError::NotProvisioned => {
                "the SsoConfig has `provisioning.mode: scim` and the identity provider has not \
                 pushed this user, or pushed it without an `externalId` equal to the sign-in's \
                 subject (Okta: the user id; Entra ID: the object id): assign the user to the app \
                 at the IdP"
            }
            ProvisionError::Deleted => {
                "the user's SsoUser was deleted while a re-validation was under way: the session \
                 ends (a re-validation never re-creates a user)"
            }
            ProvisionError::Collision { .. } => {
                "an SsoUser with the computed name exists but belongs to another SsoConfig, \
                 provider or subject (usually a hand-written SsoUser with a mistyped \
                 `spec.subject`): fix or delete that SsoUser"
            }
            ProvisionError::Unavailable(_) | ProvisionError::TimedOut(_) => {
                "the sidecar could not read or write SsoUsers within 5 s (the sign-in's whole \
                 budget for the API, kube's retries of 429/503 included; no session, nothing \
                 written; signed-in users keep working from the watch cache): the API server is \
                 unreachable or overloaded, or the sidecar's Role or token is missing \
                 (`kubectl auth can-i create ssousers \
                 --as=system:serviceaccount:<namespace>:<config>-gatehouse -n <namespace>`)"
            }
            ProvisionError::Contended { .. } => {
                "the same user's SsoUser kept changing during the sign-in (dozens of simultaneous \
                 sign-ins of one person): trying again works"
            }
        }
    }

    /// Whether the user was refused (as opposed to the sign-in failing for a technical reason).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            ProvisionError::Suspended
                | ProvisionError::NotDeclared
                | ProvisionError::NotProvisioned
                | ProvisionError::Deleted
                | ProvisionError::Collision { .. }
        )
    }
}
