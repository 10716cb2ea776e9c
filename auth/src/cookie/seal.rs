//! Sealing: `base64url(version ‖ key-id ‖ nonce ‖ XChaCha20-Poly1305(payload))`.
//!
//! The key ring comes from `GATEHOUSE_COOKIE_SECRET`: the first key seals, every key unseals, so
//! keys rotate without dropping sessions. The additional data binds each value to its purpose (a
//! sign-in attempt cookie is never a session) and to this app (namespace, config name, public
//! origin and, with Kubernetes provisioning, the SsoConfig UID), so app A's cookie is worthless at
//! app B. Anything that does not unseal — tampered, truncated, foreign, oversized — is simply no
//! cookie.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Longest cookie value we try to unseal (the browser limit is 4096 bytes per cookie).
pub const MAX_COOKIE_BYTES: usize = 4096;

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
    /// A renewed session shared with the other replicas through the SsoUser
    /// (`status.sessionRenewals`): never opens as a session cookie, so reading an SsoUser
    /// gives no one a cookie.
    SharedSession,
    /// A refresh grant shared with the other replicas through the SsoUser: never opens as a
    /// refresh cookie.
    SharedGrant,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"gatehouse/session/v1",
            Purpose::Attempt => b"gatehouse/attempt/v1",
            Purpose::LogoutHint => b"gatehouse/logout-hint/v1",
            Purpose::Refresh => b"gatehouse/refresh/v1",
            Purpose::SharedSession => b"gatehouse/shared-session/v1",
            Purpose::SharedGrant => b"gatehouse/shared-grant/v1",
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

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
