//! The refresh cookie: the IdP's refresh token of one session, for re-validation.

use serde::{Deserialize, Serialize};

use super::seal::{Binding, KeyRing, Purpose};

/// Largest sealed refresh cookie set. A browser keeps at most 4096 bytes of name, value and
/// attributes per cookie; an IdP whose refresh tokens do not fit gets no re-validation.
pub const MAX_REFRESH_COOKIE: usize = 3800;

/// What the refresh cookie holds: the IdP's refresh token for one session. Kept apart from the
/// session cookie (which holds identity only) and never sent to the app. Bound to its session:
/// a refresh cookie of another session is no refresh cookie.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// The session ([`Session::sid`]) it belongs to.
    #[serde(rename = "i")]
    pub sid: String,
    /// The refresh token.
    #[serde(rename = "r")]
    pub token: String,
    /// The `nonce` of the sign-in: an ID token the refresh brings may repeat it, never change it.
    #[serde(rename = "n")]
    pub nonce: String,
}

impl std::fmt::Debug for RefreshGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshGrant")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

impl RefreshGrant {
    /// Seals the grant for its cookie; `None` when it would not fit ([`MAX_REFRESH_COOKIE`]).
    pub fn seal(&self, keys: &KeyRing, binding: &Binding) -> Option<String> {
        let json = serde_json::to_vec(self).ok()?;
        let sealed = keys.seal(Purpose::Refresh, binding, &json);
        (sealed.len() <= MAX_REFRESH_COOKIE).then_some(sealed)
    }

    /// Unseals a refresh cookie value; `None` for anything invalid or of another session.
    pub fn unseal(keys: &KeyRing, binding: &Binding, value: &str, sid: &str) -> Option<Self> {
        let json = keys.unseal(Purpose::Refresh, binding, value)?;
        let grant: RefreshGrant = serde_json::from_slice(&json).ok()?;
        (grant.sid == sid).then_some(grant)
    }

    /// Seals the grant for the other replicas ([`Purpose::SharedGrant`]: never a cookie).
    pub fn seal_shared(&self, keys: &KeyRing, binding: &Binding) -> Option<String> {
        let json = serde_json::to_vec(self).ok()?;
        let sealed = keys.seal(Purpose::SharedGrant, binding, &json);
        (sealed.len() <= MAX_REFRESH_COOKIE).then_some(sealed)
    }

    /// Unseals a shared grant of session `sid`; `None` for anything invalid or of another
    /// session.
    pub fn unseal_shared(
        keys: &KeyRing,
        binding: &Binding,
        value: &str,
        sid: &str,
    ) -> Option<Self> {
        let json = keys.unseal(Purpose::SharedGrant, binding, value)?;
        let grant: RefreshGrant = serde_json::from_slice(&json).ok()?;
        (grant.sid == sid).then_some(grant)
    }
}
