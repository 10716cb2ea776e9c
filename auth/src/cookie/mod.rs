//! Sealed cookies, one module per job: the sealing itself ([`seal`]), the session
//! ([`session`]), the sign-in attempt ([`attempt`]), the refresh grant ([`refresh`]), and cookie
//! names and `Cookie` header parsing ([`header`]). The logout hint cookie is sealed with
//! [`Purpose::LogoutHint`] by whoever builds it.

pub mod attempt;
pub mod header;
pub mod refresh;
pub mod seal;
pub mod session;
#[cfg(test)]
mod tests;

pub use attempt::{ATTEMPT_TTL_SECS, Attempt, MAX_ATTEMPT_COOKIES};
pub use header::{CookieNames, cookie, cookie_pairs, cookies};
pub use refresh::{MAX_REFRESH_COOKIE, RefreshGrant};
pub use seal::{Binding, KeyRing, KeyRingError, MAX_COOKIE_BYTES, Purpose, random_token};
pub use session::{Session, UnsealCache};
