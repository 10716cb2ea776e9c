//! Machine tokens verified moments ago, so that a client sending the same bearer token on every
//! request does not pay for its signature every time.
//!
//! Keyed by the token's SHA-256 digest (no token is stored), each entry holds the principal and
//! answers only from the second it was verified up to the token's `exp` (exclusive) and never
//! longer than [`MAX_AGE`]: a removed issuer or a key rotated away stops admitting within that
//! time. Only verified tokens enter; a refusal is never remembered, so the next request is checked
//! afresh. Held to [`CAPACITY`] entries: when full, entries past their end go first, then the
//! tenth ending soonest. The configuration is read once per process (a changed one restarts the
//! sidecar), so no entry outlives the issuers it was verified against.

use std::sync::{Arc, Mutex, MutexGuard};

use gatehouse_auth::collections::RandomKeyMap;
use gatehouse_auth::machine::{MAX_BEARER_BYTES, MachinePrincipal};
use sha2::Digest as _;

/// Most tokens held.
pub const CAPACITY: usize = 10_000;
/// Longest an entry answers after its token was verified, in seconds.
pub const MAX_AGE: i64 = 60;

/// What a token is remembered by: its SHA-256 digest.
pub type TokenKey = [u8; 32];

/// The key of `raw`; `None` for a token too large to be accepted (refused without being hashed).
pub fn key(raw: &str) -> Option<TokenKey> {
    (raw.len() <= MAX_BEARER_BYTES).then(|| sha2::Sha256::digest(raw.as_bytes()).into())
}

/// A verified bearer token: the principal it stands for (what it dereferences to), and the
/// token's SHA-256 digest, made once per request (the gate's machine session id is made from it).
#[derive(Debug, Clone)]
pub struct Verified {
    /// The principal.
    pub principal: Arc<MachinePrincipal>,
    /// SHA-256 of the token.
    pub digest: TokenKey,
}

impl std::ops::Deref for Verified {
    type Target = MachinePrincipal;

    fn deref(&self) -> &MachinePrincipal {
        &self.principal
    }
}

#[derive(Debug)]
struct Entry {
    principal: Arc<MachinePrincipal>,
    /// When the token was verified: the entry answers from then on, not before (a clock set
    /// back does not move a token before its `nbf`).
    from: i64,
    /// First second the entry no longer answers: the token's `exp`, or `from + max_age`.
    until: i64,
}

/// Recently verified machine tokens (see the module's documentation).
#[derive(Debug)]
pub struct VerifiedTokens {
    entries: Mutex<RandomKeyMap<TokenKey, Entry>>,
    capacity: usize,
    max_age: i64,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self::new(CAPACITY, MAX_AGE)
    }
}

impl VerifiedTokens {
    /// An empty cache of at most `capacity` tokens, each answering at most `max_age` seconds.
    pub fn new(capacity: usize, max_age: i64) -> Self {
        Self {
            entries: Mutex::new(RandomKeyMap::default()),
            capacity: capacity.max(1),
            max_age: max_age.max(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RandomKeyMap<TokenKey, Entry>> {
        match self.entries.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The principal of the token `key` was made from, if it was verified at most `max_age`
    /// seconds before `now` and `now` is before its `exp`.
    pub fn get(&self, key: &TokenKey, now: i64) -> Option<Arc<MachinePrincipal>> {
        let entries = self.lock();
        let entry = entries.get(key)?;
        (entry.from <= now && now < entry.until).then(|| entry.principal.clone())
    }

    /// Remembers that the token `key` was made from was verified at `now` as `principal`.
    pub fn insert(&self, key: TokenKey, principal: Arc<MachinePrincipal>, now: i64) {
        let until = principal.expires_at.min(now.saturating_add(self.max_age));
        if until <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= self.capacity {
                // Still full of live tokens: drop the tenth ending soonest in one go, so that a
                // flood of distinct tokens pays for one sort per `capacity / 10` inserts.
                let mut by_end: Vec<(i64, TokenKey)> =
                    entries.iter().map(|(k, e)| (e.until, *k)).collect();
                by_end.sort_unstable();
                for (_, k) in by_end.iter().take((self.capacity / 10).max(1)) {
                    entries.remove(k);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                principal,
                from: now,
                until,
            },
        );
    }

    /// Number of tokens held (those past their end included until pruned).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn principal(expires_at: i64) -> Arc<MachinePrincipal> {
        Arc::new(MachinePrincipal {
            id: "okta-cc:0oa-deploy-bot".into(),
            issuer_name: "okta-cc".into(),
            subject: "0oa-deploy-bot".into(),
            role: None,
            service_account: None,
            claims: serde_json::Map::new(),
            expires_at,
        })
    }

    fn k(raw: &str) -> TokenKey {
        key(raw).expect("a key")
    }

    #[test]
    fn a_verified_token_answers_until_its_exp_and_not_after() {
        let cache = VerifiedTokens::default();
        let p = principal(NOW + 30);
        cache.insert(k("token-a"), p.clone(), NOW);
        assert_eq!(cache.get(&k("token-a"), NOW), Some(p.clone()));
        assert_eq!(cache.get(&k("token-a"), NOW + 29), Some(p));
        assert_eq!(
            cache.get(&k("token-a"), NOW + 30),
            None,
            "at exp: verified again"
        );
        assert_eq!(cache.get(&k("token-a"), NOW + 3600), None);
        assert_eq!(
            cache.get(&k("token-b"), NOW),
            None,
            "another token is not it"
        );
        // A token already past its exp (admitted within the verifier's skew) is not remembered.
        cache.insert(k("token-c"), principal(NOW - 10), NOW);
        assert_eq!(cache.get(&k("token-c"), NOW), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn an_entry_answers_for_max_age_at_most_however_long_its_token_lives() {
        let cache = VerifiedTokens::default();
        let p = principal(NOW + 24 * 3600);
        cache.insert(k("token"), p.clone(), NOW);
        assert_eq!(cache.get(&k("token"), NOW + MAX_AGE - 1), Some(p.clone()));
        assert_eq!(
            cache.get(&k("token"), NOW + MAX_AGE),
            None,
            "verified again: a removed issuer or key stops admitting within MAX_AGE"
        );
        // Verified again, it answers for another MAX_AGE.
        cache.insert(k("token"), p.clone(), NOW + MAX_AGE);
        assert_eq!(cache.get(&k("token"), NOW + 2 * MAX_AGE - 1), Some(p));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn an_entry_never_answers_before_the_second_it_was_verified() {
        // The clock set back: the token may be before its `nbf` again, so it is verified again.
        let cache = VerifiedTokens::default();
        cache.insert(k("token"), principal(NOW + 300), NOW);
        assert_eq!(cache.get(&k("token"), NOW - 1), None);
    }

    #[test]
    fn the_size_is_bounded_and_entries_past_their_end_go_first() {
        let cache = VerifiedTokens::new(100, MAX_AGE);
        // Half end at NOW + 10, half live long.
        for i in 0..100 {
            let exp = if i % 2 == 0 { NOW + 10 } else { NOW + 3600 };
            cache.insert(k(&format!("t{i}")), principal(exp), NOW);
        }
        assert_eq!(cache.len(), 100);
        cache.insert(k("late"), principal(NOW + 3600), NOW + 20);
        assert_eq!(cache.len(), 51, "the 50 ended ones went, nothing else");
        for i in (1..100).step_by(2) {
            assert!(cache.get(&k(&format!("t{i}")), NOW + 20).is_some(), "t{i}");
        }
        // A flood of distinct live tokens: the size never exceeds the bound, and the newest is
        // always held.
        for i in 0..1000 {
            let raw = format!("flood{i}");
            cache.insert(k(&raw), principal(NOW + 3600 + i), NOW + 20);
            assert!(cache.len() <= 100);
            assert!(cache.get(&k(&raw), NOW + 20).is_some());
        }
    }

    #[test]
    fn an_oversized_token_has_no_key() {
        assert!(key(&"a".repeat(MAX_BEARER_BYTES)).is_some());
        assert!(key(&"a".repeat(MAX_BEARER_BYTES + 1)).is_none());
    }
}
