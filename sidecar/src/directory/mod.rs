//! User directories behind [`crate::provisioning::UserDirectory`].
//!
//! [`kubernetes`] keeps SsoUsers as the directory: just-in-time provisioning at sign-in and the
//! watch cache that revocation reads on every request. [`liveness`] keeps that cache's
//! freshness honest: it proves the watch connection alive, and cuts a stalled one.
//! [`read_through`] settles that cache's misses for sessions issued moments ago (a user another
//! replica just created) by a bounded, rate-limited read of the SsoUser. [`revocation`] writes
//! ended sessions on the SsoUsers, so every replica's watch carries them.

pub mod kubernetes;
pub mod liveness;
pub mod read_through;
pub mod revocation;
