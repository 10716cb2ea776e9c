//! Reading a session from a request: the cookie keys (rotating without a restart), unsealing
//! (cached), and the sessions this replica ended (logout, back-channel logout).

use std::sync::{Arc, RwLock};

use gatehouse_auth::collections::ExpiringSet;
use gatehouse_auth::cookie::{Binding, CookieNames, KeyRing, Session, UnsealCache};
use http::HeaderMap;

/// Logged-out sessions remembered at once (per replica).
const LOGGED_OUT_CAPACITY: usize = 50_000;
/// Identity-provider sessions ended by back-channel logout, remembered at once (per replica).
const ENDED_IDP_SESSIONS_CAPACITY: usize = 50_000;
/// Used logout token ids (`jti`) remembered at once (per replica).
const USED_LOGOUT_TOKENS_CAPACITY: usize = 20_000;
/// Unsealed session cookies cached at once.
const UNSEAL_CACHE_CAPACITY: usize = 4096;

/// The cookie keys, and reading a session from a request: unsealing (cached), and the sessions
/// ended by logout.
#[derive(Debug)]
pub struct Sessions {
    keys: RwLock<Arc<KeyRing>>,
    unsealed: UnsealCache,
    /// What cookies are bound to.
    pub binding: Binding,
    /// Cookie names.
    pub cookies: CookieNames,
    /// Sessions ended by logout, until their expiry.
    pub logged_out: ExpiringSet,
    /// Identity-provider session ids (`sid`) ended by back-channel logout, until the sessions
    /// they could name expire. This replica's own record; other replicas learn it from the
    /// SsoUser.
    pub ended_idp_sessions: ExpiringSet,
    /// Logout token ids (`jti`) already used, by provider.
    pub used_logout_tokens: ExpiringSet,
}

impl Sessions {
    /// The sessions of an app whose cookies are bound to `binding`, sealed with `keys`.
    pub fn new(keys: KeyRing, binding: Binding, cookies: CookieNames) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            unsealed: UnsealCache::new(UNSEAL_CACHE_CAPACITY),
            binding,
            cookies,
            logged_out: ExpiringSet::new(LOGGED_OUT_CAPACITY),
            ended_idp_sessions: ExpiringSet::new(ENDED_IDP_SESSIONS_CAPACITY),
            used_logout_tokens: ExpiringSet::new(USED_LOGOUT_TOKENS_CAPACITY),
        }
    }

    /// The current cookie key ring.
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the key ring (rotation from a mounted Secret).
    pub fn set_keys(&self, ring: KeyRing) {
        match self.keys.write() {
            Ok(mut k) => *k = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
        // A removed key must stop admitting the sessions it sealed.
        self.unsealed.clear();
    }

    /// The session cookie of a request, unsealed, unexpired and not logged out.
    pub fn read(&self, headers: &HeaderMap, now: i64) -> Option<Arc<Session>> {
        let keys = self.keys();
        let session = gatehouse_auth::cookie::cookies(headers)
            .filter(|(name, _)| *name == self.cookies.session)
            .find_map(|(_, value)| {
                self.unsealed
                    .get_or_unseal(&keys, &self.binding, value, now)
            })?;
        (!self.is_ended(&session, now)).then_some(session)
    }

    /// Whether this replica ended `session` (logout, back-channel logout naming its IdP session).
    pub fn is_ended(&self, session: &Session, now: i64) -> bool {
        self.logged_out.contains(&session.sid, now)
            || session
                .idp_sid
                .as_deref()
                .is_some_and(|sid| self.ended_idp_sessions.contains(sid, now))
    }
}
