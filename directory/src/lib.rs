//! Gatehouse's user directory: SsoUsers as the record of who signed in, and the per-request
//! revocation check the sidecar makes against them.
//!
//! - [`user_directory`]: the facade the sidecar holds ([`UserDirectory`]): admit, provision,
//!   check, confirm, end sessions; `Off` when there is no Kubernetes.
//! - [`kubernetes`]: just-in-time provisioning at sign-in (server-side apply), and the watch
//!   cache that revocation reads on every request.
//! - [`liveness`]: keeps that cache's freshness honest: proves the watch connection alive, and
//!   cuts a stalled one.
//! - [`read_through`]: settles the cache's misses for sessions issued moments ago (a user another
//!   replica just created) by a bounded, rate-limited read of the SsoUser.
//! - [`revocation`]: writes ended sessions on the SsoUsers, so every replica's watch carries them.
//! - [`scim`]: the config's SsoUsers as a SCIM 2.0 user store (`provisioning.mode: scim`).
//! - [`renewals`]: shares a session's re-validation between replicas (a lease on asking the IdP,
//!   and the latest renewal), so no replica refreshes with a token another has already used.
//!
//! No HTTP here: the app's provisioning hook belongs to the sidecar.
#![forbid(unsafe_code)]

pub mod error;
pub mod kubernetes;
pub mod liveness;
pub mod read_through;
pub mod renewals;
pub mod revocation;
pub mod scim;
pub mod user_directory;

pub use error::ProvisionError;
pub use user_directory::{
    Admission, DirectorySettings, KubernetesDirectory, Provisioned, SIGN_IN_API_BUDGET,
    UserDirectory,
};
