//! User directories behind [`crate::provisioning::UserDirectory`].
//!
//! [`kubernetes`] keeps SsoUsers as the directory: just-in-time provisioning at sign-in and the
//! watch cache that revocation reads on every request.

pub mod kubernetes;
