//! Sealed cookies: the session, the per-attempt sign-in state, the logout hint, and the refresh
//! token.
//!
//! A cookie value is `base64url(version ‖ key-id ‖ nonce ‖ XChaCha20-Poly1305(payload))`. The key
//! ring comes from `GATEHOUSE_COOKIE_SECRET`: the first key seals, every key unseals, so keys rotate
//! without dropping sessions. The additional data binds each cookie to its purpose (a sign-in
//! attempt cookie is never a session) and to this app (namespace, config name, public origin and,
//! with Kubernetes provisioning, the SsoConfig UID), so app A's cookie is worthless at app B.
//! Anything that does not unseal — tampered, truncated, foreign, oversized — is simply no cookie.
//!
//! Cookie names: `__Host-gatehouse-session` (and `__Host-gatehouse-attempt-<id>`,
//! `__Host-gatehouse-logout`, `__Host-gatehouse-refresh`) when the public URL is https; without the `__Host-` prefix and
//! without `Secure` when it is plain http. Always `Path=/`, `HttpOnly`, `SameSite=Lax`, no `Domain`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use http::{HeaderMap, HeaderValue};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::claims::Role;

/// Longest cookie value we try to unseal (the browser limit is 4096 bytes per cookie).
pub const MAX_COOKIE_BYTES: usize = 4096;
/// Most sign-in attempt cookies kept at once.
pub const MAX_ATTEMPTS: usize = 3;
/// Lifetime of a sign-in attempt.
pub const ATTEMPT_TTL_SECS: i64 = 600;

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;

/// Why `GATEHOUSE_COOKIE_SECRET` is unusable. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// No keys.
    #[error("no keys (expected comma-separated base64 of 32 random bytes each)")]
    Empty,
    /// One key is not base64 of exactly 32 bytes.
    #[error(
        "key {0} is not base64 of exactly 32 bytes (generate one with `openssl rand -base64 32`)"
    )]
    BadKey(usize),
    /// The same key twice.
    #[error("key {0} repeats an earlier key")]
    Duplicate(usize),
}

struct SealKey {
    id: [u8; KEY_ID_LEN],
    cipher: XChaCha20Poly1305,
}

/// Cookie sealing keys: the first seals, all unseal.
pub struct KeyRing {
    keys: Vec<SealKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// What a sealed value is for; part of the additional data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The session cookie.
    Session,
    /// A sign-in attempt cookie.
    Attempt,
    /// The logout hint cookie (the ID token for RP-initiated logout).
    LogoutHint,
    /// The refresh cookie (the IdP's refresh token, for re-validation).
    Refresh,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"gatehouse/session/v1",
            Purpose::Attempt => b"gatehouse/attempt/v1",
            Purpose::LogoutHint => b"gatehouse/logout-hint/v1",
            Purpose::Refresh => b"gatehouse/refresh/v1",
        }
    }
}

/// What a cookie is bound to: this app. Changes make every existing cookie invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    bytes: Vec<u8>,
}

impl Binding {
    /// Binds to the config's namespace and name, the public origin, and the SsoConfig UID when known.
    pub fn new(
        namespace: &str,
        config: &str,
        public_origin: &str,
        config_uid: Option<&str>,
    ) -> Self {
        let mut bytes = Vec::new();
        for part in [namespace, config, public_origin, config_uid.unwrap_or("")] {
            bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        Self { bytes }
    }

    fn aad(&self, purpose: Purpose) -> Vec<u8> {
        let mut aad = Vec::with_capacity(purpose.tag().len() + 1 + self.bytes.len());
        aad.extend_from_slice(purpose.tag());
        aad.push(0);
        aad.extend_from_slice(&self.bytes);
        aad
    }
}

fn decode_key(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    [&STANDARD, &URL_SAFE]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .or_else(|| {
            let padded = format!("{text}{}", "=".repeat((4 - text.len() % 4) % 4));
            [&STANDARD, &URL_SAFE]
                .iter()
                .find_map(|e| e.decode(&padded).ok())
        })
}

impl KeyRing {
    /// Parses comma-separated base64 (standard or URL-safe, padding optional) 32-byte keys.
    pub fn parse(list: &str) -> Result<Self, KeyRingError> {
        let mut keys: Vec<SealKey> = Vec::new();
        let mut seen: Vec<[u8; 32]> = Vec::new();
        for (i, text) in list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            let raw = decode_key(text).ok_or(KeyRingError::BadKey(i + 1))?;
            let raw: [u8; 32] = raw.try_into().map_err(|_| KeyRingError::BadKey(i + 1))?;
            if seen.contains(&raw) {
                return Err(KeyRingError::Duplicate(i + 1));
            }
            seen.push(raw);
            let digest = Sha256::digest(raw);
            let mut id = [0u8; KEY_ID_LEN];
            id.copy_from_slice(&digest[..KEY_ID_LEN]);
            let cipher =
                XChaCha20Poly1305::new_from_slice(&raw).map_err(|_| KeyRingError::BadKey(i + 1))?;
            keys.push(SealKey { id, cipher });
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(Self { keys })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a ring has at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Seals `plaintext` with the first key.
    pub fn seal(&self, purpose: Purpose, binding: &Binding, plaintext: &[u8]) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = binding.aad(purpose);
        let sealed = key
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // XChaCha20-Poly1305 only fails for messages over 256 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Unseals a value sealed by any key of the ring for this purpose and binding.
    pub fn unseal(&self, purpose: Purpose, binding: &Binding, value: &str) -> Option<Vec<u8>> {
        if value.len() > MAX_COOKIE_BYTES {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
        if raw.len() < 1 + KEY_ID_LEN + NONCE_LEN + 16 || raw[0] != VERSION {
            return None;
        }
        let (id, rest) = raw[1..].split_at(KEY_ID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let key = self.keys.iter().find(|k| k.id == id)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = binding.aad(purpose);
        key.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .ok()
    }
}

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
}

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
    /// Whether the attempt asked for `offline_access` (a refresh token).
    #[serde(default)]
    pub offline: bool,
}

impl Attempt {
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
}

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

    /// Forgets everything (key rotation).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The sidecar's cookie names for this public URL scheme.
#[derive(Debug, Clone)]
pub struct CookieNames {
    /// Session cookie.
    pub session: String,
    /// Prefix of attempt cookies.
    pub attempt_prefix: String,
    /// Logout hint cookie.
    pub logout_hint: String,
    /// Refresh cookie.
    pub refresh: String,
    secure: bool,
}

/// Every spelling of our cookie names, stripped before a request reaches the app.
const OWN_COOKIE_PREFIXES: [&str; 2] = ["__Host-gatehouse-", "gatehouse-"];

impl CookieNames {
    /// Names with the `__Host-` prefix (and `Secure`) when `secure`.
    pub fn new(secure: bool) -> Self {
        let prefix = if secure { "__Host-" } else { "" };
        Self {
            session: format!("{prefix}gatehouse-session"),
            attempt_prefix: format!("{prefix}gatehouse-attempt-"),
            logout_hint: format!("{prefix}gatehouse-logout"),
            refresh: format!("{prefix}gatehouse-refresh"),
            secure,
        }
    }

    /// Whether cookies carry `Secure`.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// `Set-Cookie` for `name=value` living `max_age` seconds.
    pub fn set(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let line =
            format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
        HeaderValue::from_str(&line).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` for a cookie that must come back on a cross-site POST (the SAML ACS):
    /// `SameSite=None` (which browsers accept only with `Secure`); on plain http, where `Secure`
    /// is impossible, `SameSite=Lax` as every other cookie.
    pub fn set_cross_site(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        if !self.secure {
            return self.set(name, value, max_age);
        }
        let line =
            format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=None; Secure");
        HeaderValue::from_str(&line).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` that deletes `name`.
    pub fn delete(&self, name: &str) -> HeaderValue {
        self.set(name, "", 0)
    }

    /// Whether a cookie name is one of ours (any spelling).
    pub fn is_own(name: &str) -> bool {
        Self::is_own_name(name.as_bytes())
    }

    /// [`CookieNames::is_own`] for a name as bytes.
    pub fn is_own_name(name: &[u8]) -> bool {
        OWN_COOKIE_PREFIXES
            .iter()
            .any(|p| name.starts_with(p.as_bytes()))
    }
}

/// The `;`-separated pairs of one `Cookie` header value, untrimmed.
pub fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b';', r) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// All `name=value` pairs of the request's `Cookie` headers (pairs that are not UTF-8 are
/// skipped, the others of the same header still count).
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| cookie_pairs(v.as_bytes()))
        .filter_map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            let (name, value) = pair.split_once('=')?;
            Some((name.trim(), value.trim().trim_matches('"')))
        })
}

/// The first cookie called `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

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

    const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    const NOW: i64 = 1_800_000_000;

    fn binding() -> Binding {
        Binding::new("team-a", "portal", "https://portal.example.com", None)
    }

    fn session() -> Session {
        Session {
            sid: random_token(16),
            user: "okta-0123456789abcdef".into(),
            subject: "00u1".into(),
            provider: "okta".into(),
            email: Some("ada@example.com".into()),
            name: Some("Ada".into()),
            username: Some("ada@example.com".into()),
            role: Role::Admin,
            issued_at: NOW,
            expires_at: NOW + 3600,
            user_uid: None,
            idp_sid: None,
            validated_at: None,
        }
    }

    #[test]
    fn a_refresh_cookie_opens_only_for_its_own_session_and_never_as_another_cookie() {
        let ring = KeyRing::parse(K1).expect("ring");
        let grant = RefreshGrant {
            sid: "sid-1".into(),
            token: "rt-secret".into(),
            nonce: "n".into(),
        };
        let sealed = grant.seal(&ring, &binding()).expect("fits");
        assert!(!sealed.contains("rt-secret"));
        assert_eq!(
            RefreshGrant::unseal(&ring, &binding(), &sealed, "sid-1"),
            Some(grant.clone())
        );
        // Pasted beside another session: refused.
        assert_eq!(
            RefreshGrant::unseal(&ring, &binding(), &sealed, "sid-2"),
            None
        );
        // Another app's binding, or the value offered as a session cookie: refused.
        let other_app = Binding::new("team-a", "billing", "https://portal.example.com", None);
        assert_eq!(
            RefreshGrant::unseal(&ring, &other_app, &sealed, "sid-1"),
            None
        );
        assert_eq!(Session::unseal(&ring, &binding(), &sealed, NOW), None);
        // A session cookie is no refresh cookie either.
        let session_cookie = session().seal(&ring, &binding());
        assert_eq!(
            RefreshGrant::unseal(&ring, &binding(), &session_cookie, "sid-1"),
            None
        );
        // Its debug form names the session, never the token.
        assert!(!format!("{grant:?}").contains("rt-secret"));
    }

    #[test]
    fn a_refresh_token_too_large_for_a_cookie_is_not_kept() {
        let ring = KeyRing::parse(K1).expect("ring");
        let grant = |len: usize| RefreshGrant {
            sid: "sid-1".into(),
            token: "r".repeat(len),
            nonce: "n".into(),
        };
        assert!(grant(2000).seal(&ring, &binding()).is_some());
        assert!(grant(3000).seal(&ring, &binding()).is_none());
    }

    #[test]
    fn seal_and_unseal_round_trip() {
        let ring = KeyRing::parse(K1).expect("ring");
        let s = session();
        let sealed = s.seal(&ring, &binding());
        assert!(sealed.len() < 600, "cookie stays small: {}", sealed.len());
        assert_eq!(
            Session::unseal(&ring, &binding(), &sealed, NOW),
            Some(s.clone())
        );
        // Expired at its expiry.
        assert_eq!(
            Session::unseal(&ring, &binding(), &sealed, NOW + 3600),
            None
        );
        // Two seals of the same session differ (fresh nonce).
        assert_ne!(sealed, s.seal(&ring, &binding()));
    }

    #[test]
    fn tampered_truncated_oversized_and_foreign_cookies_are_no_session() {
        let ring = KeyRing::parse(K1).expect("ring");
        let sealed = session().seal(&ring, &binding());
        let unseal = |v: &str| Session::unseal(&ring, &binding(), v, NOW);

        // Every single-character change anywhere is rejected.
        for i in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).expect("ascii");
            assert_eq!(unseal(&tampered), None, "byte {i}");
        }
        for len in [0, 1, 10, 40, sealed.len() - 1] {
            assert_eq!(unseal(&sealed[..len]), None, "truncated to {len}");
        }
        let huge = "A".repeat(100 * 1024);
        assert_eq!(unseal(&huge), None);
        assert_eq!(unseal(&format!("{sealed}{}", "A".repeat(4096))), None);
        assert_eq!(unseal("not base64 !!"), None);

        // Another app (config, namespace, origin or UID) cannot use it.
        for other in [
            Binding::new("team-a", "billing", "https://portal.example.com", None),
            Binding::new("team-b", "portal", "https://portal.example.com", None),
            Binding::new("team-a", "portal", "https://other.example.com", None),
            Binding::new(
                "team-a",
                "portal",
                "https://portal.example.com",
                Some("uid-1"),
            ),
        ] {
            assert_eq!(Session::unseal(&ring, &other, &sealed, NOW), None);
        }
        // Nor can a ring without the key.
        let stranger = KeyRing::parse(K2).expect("ring");
        assert_eq!(Session::unseal(&stranger, &binding(), &sealed, NOW), None);
        // Nor is an attempt cookie a session.
        let attempt = Attempt::new("okta", "/", NOW).seal(&ring, &binding());
        assert_eq!(unseal(&attempt), None);
    }

    #[test]
    fn key_rotation_keeps_old_sessions() {
        let old = KeyRing::parse(K1).expect("ring");
        let sealed_old = session().seal(&old, &binding());
        let rotated = KeyRing::parse(&format!("{K2},{K1}")).expect("ring");
        assert!(Session::unseal(&rotated, &binding(), &sealed_old, NOW).is_some());
        let sealed_new = session().seal(&rotated, &binding());
        // New cookies use the new first key: the old ring cannot read them.
        assert!(Session::unseal(&old, &binding(), &sealed_new, NOW).is_none());
        let only_new = KeyRing::parse(K2).expect("ring");
        assert!(Session::unseal(&only_new, &binding(), &sealed_new, NOW).is_some());
        assert!(Session::unseal(&only_new, &binding(), &sealed_old, NOW).is_none());
    }

    #[test]
    fn key_ring_parsing() {
        assert_eq!(KeyRing::parse("").err(), Some(KeyRingError::Empty));
        assert_eq!(KeyRing::parse(" , ").err(), Some(KeyRingError::Empty));
        assert_eq!(
            KeyRing::parse("c2hvcnQ=").err(),
            Some(KeyRingError::BadKey(1))
        );
        assert_eq!(
            KeyRing::parse(&format!("{K1},???")).err(),
            Some(KeyRingError::BadKey(2))
        );
        assert_eq!(
            KeyRing::parse(&format!("{K1},{K1}")).err(),
            Some(KeyRingError::Duplicate(2))
        );
        // URL-safe and unpadded forms are accepted.
        assert_eq!(
            KeyRing::parse(K1.trim_end_matches('='))
                .map(|r| r.len())
                .ok(),
            Some(1)
        );
        assert_eq!(
            KeyRing::parse(&format!(" {K1} , {K2} "))
                .map(|r| r.len())
                .ok(),
            Some(2)
        );
        let debug = format!("{:?}", KeyRing::parse(K1).expect("ring"));
        assert!(!debug.contains(K1) && debug.contains("keys: 1"), "{debug}");
    }

    #[test]
    fn attempts_expire_and_have_pkce() {
        let ring = KeyRing::parse(K1).expect("ring");
        let a = Attempt::new("okta", "/x", NOW);
        assert_eq!(a.state.len(), 43);
        assert_ne!(a.state, a.nonce);
        let sealed = a.seal(&ring, &binding());
        assert_eq!(
            Attempt::unseal(&ring, &binding(), &sealed, NOW + 10),
            Some(a.clone())
        );
        assert_eq!(
            Attempt::unseal(&ring, &binding(), &sealed, NOW + ATTEMPT_TTL_SECS),
            None
        );
        // RFC 7636 appendix B.
        let rfc = Attempt {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ..a
        };
        assert_eq!(
            rfc.code_challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(Attempt::cookie_id("abc"), None);
        assert_eq!(
            Attempt::cookie_id("0123456789abcdef-rest"),
            Some("0123456789abcdef")
        );
        assert_eq!(Attempt::cookie_id("0123456789abcd;f-rest"), None);
    }

    #[test]
    fn cookie_attributes() {
        let https = CookieNames::new(true);
        assert_eq!(https.session, "__Host-gatehouse-session");
        assert_eq!(
            https.set(&https.session, "v", 60).to_str().ok(),
            Some("__Host-gatehouse-session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure")
        );
        let http = CookieNames::new(false);
        assert_eq!(http.session, "gatehouse-session");
        assert_eq!(
            http.delete(&http.session).to_str().ok(),
            Some("gatehouse-session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
        );
        assert!(CookieNames::is_own("__Host-gatehouse-attempt-abc"));
        assert!(CookieNames::is_own("gatehouse-session"));
        assert!(!CookieNames::is_own("session"));
    }

    #[test]
    fn cookie_header_parsing() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::COOKIE,
            HeaderValue::from_static("a=1; gatehouse-session=xyz"),
        );
        h.append(http::header::COOKIE, HeaderValue::from_static("b=\"2\""));
        assert_eq!(cookie(&h, "gatehouse-session"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(cookies(&h).count(), 3);
    }

    #[test]
    fn unseal_cache_only_answers_for_the_exact_cookie() {
        let ring = KeyRing::parse(K1).expect("ring");
        let cache = UnsealCache::new(2);
        let s = session();
        let sealed = s.seal(&ring, &binding());
        let hit = cache
            .get_or_unseal(&ring, &binding(), &sealed, NOW)
            .expect("valid");
        assert_eq!(*hit, s);
        assert!(
            cache
                .get_or_unseal(&ring, &binding(), &sealed, NOW)
                .is_some()
        );
        // Same last 16 characters, different prefix: not a hit, and not valid either.
        let forged = format!("AAAA{}", &sealed[4..]);
        assert!(
            cache
                .get_or_unseal(&ring, &binding(), &forged, NOW)
                .is_none()
        );
        // Expiry still applies to cached entries.
        assert!(
            cache
                .get_or_unseal(&ring, &binding(), &sealed, NOW + 3600)
                .is_none()
        );
        // Bounded.
        for _ in 0..5 {
            let other = session().seal(&ring, &binding());
            assert!(
                cache
                    .get_or_unseal(&ring, &binding(), &other, NOW)
                    .is_some()
            );
        }
        assert!(cache.lock().len() <= 2);
        // After a key change the caller clears it: the old ring's cookies must unseal again.
        cache.clear();
        let stranger = KeyRing::parse(K2).expect("ring");
        assert!(
            cache
                .get_or_unseal(&stranger, &binding(), &sealed, NOW)
                .is_none()
        );
    }

    #[test]
    fn expiring_set_is_bounded() {
        let set = ExpiringSet::new(3);
        assert!(!set.contains("a", NOW));
        assert!(set.insert("a", NOW + 10, NOW));
        assert!(
            !set.insert("a", NOW + 10, NOW),
            "second insert reports a replay"
        );
        assert!(set.contains("a", NOW));
        assert!(!set.contains("a", NOW + 10), "gone at expiry");
        set.insert("b", NOW + 20, NOW);
        set.insert("c", NOW + 30, NOW);
        set.insert("d", NOW + 40, NOW);
        assert!(set.len() <= 3);
        assert!(!set.contains("a", NOW), "soonest-expiring evicted first");
        assert!(set.contains("d", NOW));
    }
}
