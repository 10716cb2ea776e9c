//! The session cookie: who the user is, sealed. Identity only, never tokens.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::seal::{Binding, KeyRing, Purpose};
use crate::claims::Role;
use crate::collections::RandomKeyMap;

/// What the session cookie holds. Identity only, never tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random session id (logout denylist key).
    #[serde(rename = "i")]
    pub sid: String,
    /// Stable user id: the SsoUser name, `<provider>-<hash of issuer and subject>`.
    #[serde(rename = "u")]
    pub user: String,
    /// The IdP's `sub`.
    #[serde(rename = "s")]
    pub subject: String,
    /// Provider id.
    #[serde(rename = "p")]
    pub provider: String,
    /// Email, if the IdP sent one (and did not mark it unverified).
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Preferred username (falls back to the email).
    #[serde(rename = "pu", default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Role.
    #[serde(rename = "r")]
    pub role: Role,
    /// Issued at, Unix seconds.
    #[serde(rename = "t")]
    pub issued_at: i64,
    /// Expires at, Unix seconds.
    #[serde(rename = "x")]
    pub expires_at: i64,
    /// The SsoUser's UID (Kubernetes provisioning): a re-created user does not revive old cookies.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub user_uid: Option<String>,
    /// The identity provider's session id (`sid` of the ID token), when it sent one: a
    /// back-channel logout naming it ends this session.
    #[serde(rename = "is", default, skip_serializing_if = "Option::is_none")]
    pub idp_sid: Option<String>,
    /// When the IdP last vouched for this session (sign-in or a refresh), Unix seconds; set only
    /// for sessions that can be re-validated (an OIDC IdP gave a refresh token). See
    /// [`crate::revalidation`].
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub validated_at: Option<i64>,
    /// The user's groups that the access rules name (the others are never needed here, and a
    /// cookie is small); empty without access rules. See [`crate::access::session_groups`].
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The ID-token claims the access rules' `when` conditions name, as the IdP sent them;
    /// `None` without such conditions. See [`crate::access::session_claims`].
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The [`crate::access::Policy::facts_fingerprint`] of the access rules [`Session::groups`]
    /// and [`Session::claims`] were kept for; `None` when they named no group or claim.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<String>,
    /// The user's groups could not be read (an Entra ID group overage that Microsoft Graph did
    /// not answer): [`Session::groups`] is empty and not the user's list, so the access rules
    /// decide with [`crate::access::Policy::decide_groups_unknown`] (a rule needing a group does
    /// not admit, a `Deny` on a group refuses). Asked again at the next re-validation or sign-in.
    #[serde(rename = "gu", default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_unknown: bool,
}

impl Session {
    /// Seals the session for its cookie.
    pub fn seal(&self, keys: &KeyRing, binding: &Binding) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        keys.seal(Purpose::Session, binding, &json)
    }

    /// Unseals a session cookie value; `None` for anything invalid or expired at `now`.
    pub fn unseal(keys: &KeyRing, binding: &Binding, value: &str, now: i64) -> Option<Self> {
        let json = keys.unseal(Purpose::Session, binding, value)?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        (session.expires_at > now).then_some(session)
    }

    /// Seals the session for the other replicas ([`Purpose::SharedSession`]: never a cookie).
    pub fn seal_shared(&self, keys: &KeyRing, binding: &Binding) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        keys.seal(Purpose::SharedSession, binding, &json)
    }

    /// Unseals a shared session of id `sid`; `None` for anything invalid, of another session or
    /// expired at `now`.
    pub fn unseal_shared(
        keys: &KeyRing,
        binding: &Binding,
        value: &str,
        sid: &str,
        now: i64,
    ) -> Option<Self> {
        let json = keys.unseal(Purpose::SharedSession, binding, value)?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        (session.sid == sid && session.expires_at > now).then_some(session)
    }
}

/// Cookie slot → (the whole cookie value, its session).
type UnsealEntries = RandomKeyMap<[u8; 16], (Box<str>, std::sync::Arc<Session>)>;

/// Recently unsealed session cookies, so a browser's every request does not pay for base64, AEAD
/// and JSON again. Keyed by the cookie's last 16 characters (part of the AEAD tag, so attacker
/// chosen values cannot collide with a real cookie's slot) and confirmed by comparing the whole value.
/// Only successfully unsealed cookies enter; expiry, logout and revocation are still checked on every
/// request by the caller. Clear it whenever the key ring changes.
#[derive(Debug)]
pub struct UnsealCache {
    entries: Mutex<UnsealEntries>,
    capacity: usize,
}

impl UnsealCache {
    /// An empty cache of at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(RandomKeyMap::default()),
            capacity: capacity.max(1),
        }
    }

    fn key(cookie: &str) -> Option<[u8; 16]> {
        let bytes = cookie.as_bytes();
        bytes.get(bytes.len().checked_sub(16)?..)?.try_into().ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UnsealEntries> {
        match self.entries.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The session sealed in `cookie`, from the cache or by unsealing it; `None` if invalid or
    /// expired at `now`.
    pub fn get_or_unseal(
        &self,
        keys: &KeyRing,
        binding: &Binding,
        cookie: &str,
        now: i64,
    ) -> Option<std::sync::Arc<Session>> {
        let key = Self::key(cookie)?;
        if let Some((value, session)) = self.lock().get(&key)
            && crate::token::constant_time_eq(value.as_bytes(), cookie.as_bytes())
        {
            return (session.expires_at > now).then(|| session.clone());
        }
        let session = std::sync::Arc::new(Session::unseal(keys, binding, cookie, now)?);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, s)| s.expires_at > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (cookie.into(), session.clone()));
        Some(session)
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (key rotation).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
