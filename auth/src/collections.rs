//! Small bounded collections for values no client chooses or that expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Hashes keys that are random values no client chooses — AEAD tag characters of cookies that
/// unsealed, session ids from sealed sessions — so SipHash's flooding resistance buys nothing:
/// a multiply-and-fold over 8-byte words instead.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomKeyHasher(u64);

impl std::hash::Hasher for RandomKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }

    fn write_usize(&mut self, i: usize) {
        self.write(&i.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by random values (see [`RandomKeyHasher`]).
pub type RandomKeyMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<RandomKeyHasher>>;

/// A bounded set of ids remembered until their expiry (logged-out sessions, used `state`s).
///
/// Lookups are a lock and a hash probe; when full, expired entries go first, then the tenth
/// expiring soonest.
#[derive(Debug)]
pub struct ExpiringSet {
    entries: Mutex<HashMap<String, i64>>,
    len: AtomicUsize,
    capacity: usize,
}

impl ExpiringSet {
    /// An empty set holding at most `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            len: AtomicUsize::new(0),
            capacity: capacity.max(1),
        }
    }

    /// Remembers `id` until `expires_at`. Returns false when it was already present.
    pub fn insert(&self, id: &str, expires_at: i64, now: i64) -> bool {
        let mut entries = match self.entries.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        if entries.get(id).is_some_and(|exp| *exp > now) {
            return false;
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, exp| *exp > now);
        }
        if entries.len() >= self.capacity {
            // Still full of live ids: drop the tenth that expires soonest in one go, so a flood
            // pays for one sort per `capacity / 10` inserts, not one per insert.
            let mut by_expiry: Vec<(i64, String)> =
                entries.iter().map(|(k, v)| (*v, k.clone())).collect();
            by_expiry.sort_unstable();
            let evict = (self.capacity / 10).max(1);
            for (_, k) in by_expiry.iter().take(evict) {
                entries.remove(k);
            }
        }
        entries.insert(id.to_owned(), expires_at);
        self.len.store(entries.len(), Ordering::Relaxed);
        true
    }

    /// Whether `id` is present and not expired.
    pub fn contains(&self, id: &str, now: i64) -> bool {
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let entries = match self.entries.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.get(id).is_some_and(|exp| *exp > now)
    }

    /// Forgets `id` (a claim whose work did not go through, so that it may be made again).
    /// Returns whether it was present.
    pub fn remove(&self, id: &str) -> bool {
        let mut entries = match self.entries.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        let removed = entries.remove(id).is_some();
        self.len.store(entries.len(), Ordering::Relaxed);
        removed
    }

    /// Number of ids held (expired ones included until pruned).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_taken_once_until_it_expires_or_is_removed() {
        let set = ExpiringSet::new(8);
        assert!(set.insert("a", 100, 0));
        assert!(!set.insert("a", 100, 1), "taken");
        assert!(set.contains("a", 99));
        assert!(!set.contains("a", 100), "expired");
        assert!(set.remove("a"));
        assert!(!set.remove("a"));
        assert!(set.is_empty());
        assert!(set.insert("a", 100, 2), "taken again after removal");
    }
}
