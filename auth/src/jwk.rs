//! JSON Web Key sets: the usable signing keys of a provider, parsed from its JWKS document.
//!
//! Keys of an unknown `kty`, unsupported curve or algorithm, or `use` other than `sig` are
//! ignored, never fatal. Fetching and caching the document is the caller's job.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 512 * 1024;
/// Most keys kept from one document.
const MAX_KEYS: usize = 64;
/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Why a JWKS document is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// Not a JWKS document.
    #[error("JWKS document is not a JSON object with `keys`")]
    NotJwks,
}

/// One verification key and the one algorithm it may verify.
#[derive(Clone)]
pub struct VerifyKey {
    /// Key id, if the JWK has one.
    pub kid: Option<String>,
    /// The algorithm this key verifies.
    pub alg: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A parsed key set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the usable keys.
    pub fn parse(document: &[u8]) -> Result<Self, KeySetError> {
        let value: Value = serde_json::from_slice(document).map_err(|_| KeySetError::NotJwks)?;
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(KeySetError::NotJwks)?;
        let keys: Vec<VerifyKey> = keys.iter().filter_map(usable_key).take(MAX_KEYS).collect();
        Ok(Self { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys that may verify a token with this `kid` (all keys when the token has none) and `alg`.
    pub fn matching(&self, kid: Option<&str>, alg: Algorithm) -> Vec<VerifyKey> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg)
            .filter(|k| match kid {
                Some(kid) => k.kid.as_deref() == Some(kid),
                None => true,
            })
            .cloned()
            .collect()
    }
}

/// The JWK as a verification key, or `None` when we do not use it.
fn usable_key(raw: &Value) -> Option<VerifyKey> {
    let obj = raw.as_object()?;
    if obj.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match (
        obj.get("kty")?.as_str()?,
        obj.get("crv").and_then(Value::as_str),
    ) {
        ("RSA", _) => Algorithm::RS256,
        ("EC", Some("P-256")) => Algorithm::ES256,
        ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
        _ => return None,
    };
    // A key that declares its algorithm may only be used for that one.
    if let Some(declared) = obj.get("alg") {
        let expected = match alg {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => "EdDSA",
        };
        if declared.as_str() != Some(expected) {
            return None;
        }
    }
    if alg == Algorithm::RS256 {
        let n = obj.get("n")?.as_str()?;
        // base64url without padding: 4 chars per 3 bytes; leading zero bytes are not sent.
        if n.trim_end_matches('=').len() * 3 / 4 < MIN_RSA_MODULUS_BYTES {
            return None;
        }
    }
    let jwk: Jwk = serde_json::from_value(raw.clone()).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let kid = obj.get("kid").and_then(Value::as_str).map(str::to_owned);
    Some(VerifyKey { kid, alg, key })
}

/// Counts keys by algorithm (for start-up logs).
pub fn describe(set: &KeySet) -> String {
    let mut by_alg: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &set.keys {
        let name = match k.alg {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => "EdDSA",
        };
        *by_alg.entry(name).or_default() += 1;
    }
    by_alg
        .iter()
        .map(|(alg, n)| format!("{n} {alg}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A 2048-bit modulus-sized placeholder is enough for the filter; parsing needs a real key, so the
    // real-key paths are exercised by tests/token_verification.rs.
    #[test]
    fn unknown_and_unusable_keys_are_ignored() {
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
            {"kty": "OKP", "crv": "X25519", "x": "AA", "kid": "x25519"},
            {"kty": "PQC", "kid": "future"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "short"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
            "not an object"
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).expect("a JWKS");
        assert!(set.is_empty());
    }

    #[test]
    fn documents_without_keys_are_rejected() {
        assert!(matches!(KeySet::parse(b"[]"), Err(KeySetError::NotJwks)));
        assert!(matches!(
            KeySet::parse(b"{\"keys\": 1}"),
            Err(KeySetError::NotJwks)
        ));
        assert!(matches!(
            KeySet::parse(b"<html>"),
            Err(KeySetError::NotJwks)
        ));
    }

    #[test]
    fn ed25519_key_with_declared_alg() {
        let good = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "e1", "alg": "EdDSA",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        let set = KeySet::parse(good.to_string().as_bytes()).expect("a JWKS");
        assert_eq!(set.len(), 1);
        assert_eq!(set.matching(Some("e1"), Algorithm::EdDSA).len(), 1);
        assert!(set.matching(Some("e1"), Algorithm::RS256).is_empty());
        assert!(set.matching(Some("other"), Algorithm::EdDSA).is_empty());
        assert_eq!(set.matching(None, Algorithm::EdDSA).len(), 1);

        let mislabelled = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "e1", "alg": "HS256",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        assert!(
            KeySet::parse(mislabelled.to_string().as_bytes())
                .expect("a JWKS")
                .is_empty()
        );
    }
}
