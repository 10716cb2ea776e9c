//! User directories behind [`crate::provisioning::UserDirectory`].
//!
//! [`kubernetes`] keeps SsoUsers as the directory: just-in-time provisioning at sign-in and the
//! watch cache that revocation reads on every request. [`liveness`] keeps that cache's
//! freshness honest: it proves the watch connection alive, and cuts a stalled one. [`revocation`]
//! writes ended sessions on the SsoUsers, so every replica's watch carries them.

pub mod kubernetes;
pub mod liveness;
pub mod revocation;
