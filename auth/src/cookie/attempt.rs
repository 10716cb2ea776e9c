//! The sign-in attempt cookie: `state`, `nonce` and PKCE verifier of one attempt, so the callback
//! can land on any replica.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::seal::{Binding, KeyRing, Purpose, random_token};

/// Most sign-in attempt cookies kept at once.
pub const MAX_ATTEMPT_COOKIES: usize = 3;
/// Lifetime of a sign-in attempt.
pub const ATTEMPT_TTL_SECS: i64 = 600;

/// One sign-in attempt, kept in its own short-lived sealed cookie so the callback can land on any
/// replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// OAuth `state` (single use).
    pub state: String,
    /// OIDC `nonce`.
    pub nonce: String,
    /// PKCE code verifier.
    pub verifier: String,
    /// Provider id the attempt was started for.
    pub provider: String,
    /// Sanitized same-origin path to return to.
    pub rd: String,
    /// Created at, Unix seconds.
    pub created_at: i64,
    /// Whether the sign-in expects a refresh token: re-validation is on and the provider offers
    /// `offline_access`. Decided by the sidecar when the attempt starts, whatever the browser
    /// does with the authorization URL: a session of such an attempt that got no refresh token
    /// cannot be vouched for, and ends when it is due for re-validation.
    #[serde(default)]
    pub offline: bool,
    /// Whether this attempt leaves `offline_access` out of the scopes it asks for (a sign-in
    /// started again after the provider answered `invalid_scope` to it).
    #[serde(default)]
    pub scope_without_offline: bool,
}

impl Attempt {
    /// Whether the authorization request asks for `offline_access`.
    pub fn asks_offline_access(&self) -> bool {
        self.offline && !self.scope_without_offline
    }

    /// A new attempt with fresh random `state`, `nonce` and PKCE verifier.
    pub fn new(provider: &str, rd: &str, now: i64) -> Self {
        Self {
            state: random_token(32),
            nonce: random_token(32),
            verifier: random_token(32),
            provider: provider.to_owned(),
            rd: rd.to_owned(),
            created_at: now,
            offline: false,
            scope_without_offline: false,
        }
    }

    /// Cookie-name suffix derived from the state (the state itself travels in the URL anyway).
    pub fn cookie_id(state: &str) -> Option<&str> {
        let id = state.get(..16)?;
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            .then_some(id)
    }

    /// PKCE S256 challenge of the verifier.
    pub fn code_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    /// Seals the attempt.
    pub fn seal(&self, keys: &KeyRing, binding: &Binding) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        keys.seal(Purpose::Attempt, binding, &json)
    }

    /// Unseals an attempt cookie; `None` when invalid or older than [`ATTEMPT_TTL_SECS`].
    pub fn unseal(keys: &KeyRing, binding: &Binding, value: &str, now: i64) -> Option<Self> {
        let json = keys.unseal(Purpose::Attempt, binding, value)?;
        let attempt: Attempt = serde_json::from_slice(&json).ok()?;
        (attempt.created_at + ATTEMPT_TTL_SECS > now && attempt.created_at <= now + 60)
            .then_some(attempt)
    }
}
