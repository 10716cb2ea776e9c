//! User directories behind [`crate::provisioning::UserDirectory`].
//!
//! [`kubernetes`] keeps SsoUsers as the directory: just-in-time provisioning at sign-in and the
//! watch cache that revocation reads on every request. [`liveness`] keeps that cache's
//! freshness honest: it proves the watch connection alive, and cuts a stalled one.

pub mod kubernetes;
pub mod liveness;
