//! SAML 2.0 Web Browser SSO, the pure parts: verifying a Response against the IdP's
//! certificates ([`verify`]) and the SP's own messages ([`messages`]). Metadata loading and the
//! ACS route live in the sidecar.

pub mod logout;
#[cfg(test)]
mod logout_tests;
pub mod messages;
pub mod verify;
#[cfg(test)]
mod verify_tests;
