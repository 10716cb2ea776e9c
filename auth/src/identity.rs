//! Identity sent to the app: `X-Forwarded-*` headers and `X-Gatehouse-Identity`, a short-lived JWT
//! (EdDSA) signed by a key the sidecar generates at start-up. Apps that want proof verify it against
//! `/.well-known/gatehouse/jwks.json` on the sidecar (refetching on an unknown `kid`, since every
//! sidecar process has its own key).
//!
//! JWT claims: `iss` and `aud` = the public origin, `sub` = the stable user id (same as
//! `X-Forwarded-User`), `iat`, `exp` (≤ 120 s, never past the session), `email`, `name`,
//! `preferred_username`, `role`, `org`, `provider`, `idp_sub` (the IdP's subject).
//!
//! Signing per request would dominate the proxy's CPU time, so each session's header set is cached
//! and reissued once less than 60 s of the JWT's life remains.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde::Serialize;

use crate::collections::RandomKeyMap;
use crate::cookie::Session;

/// `X-Forwarded-User`: stable user id.
pub const X_FORWARDED_USER: HeaderName = HeaderName::from_static("x-forwarded-user");
/// `X-Forwarded-Email`.
pub const X_FORWARDED_EMAIL: HeaderName = HeaderName::from_static("x-forwarded-email");
/// `X-Forwarded-Preferred-Username`.
pub const X_FORWARDED_PREFERRED_USERNAME: HeaderName =
    HeaderName::from_static("x-forwarded-preferred-username");
/// `X-Forwarded-Groups`: the role.
pub const X_FORWARDED_GROUPS: HeaderName = HeaderName::from_static("x-forwarded-groups");
/// `X-Forwarded-Org`.
pub const X_FORWARDED_ORG: HeaderName = HeaderName::from_static("x-forwarded-org");
/// `X-Forwarded-Provider`.
pub const X_FORWARDED_PROVIDER: HeaderName = HeaderName::from_static("x-forwarded-provider");
/// `X-Gatehouse-Identity`: the signed identity JWT.
pub const X_GATEHOUSE_IDENTITY: HeaderName = HeaderName::from_static("x-gatehouse-identity");

/// Lifetime of an identity JWT.
pub const JWT_TTL_SECS: i64 = 120;
/// A cached JWT is reissued when less than this remains.
pub const JWT_MIN_REMAINING_SECS: i64 = 60;
/// Sessions whose headers are cached at once.
const CACHE_CAPACITY: usize = 4096;

/// What the identity headers say about the provider a session came from, whatever its protocol:
/// its id (`X-Forwarded-Provider`) and the organisation (`X-Forwarded-Org`).
#[derive(Debug, Clone)]
pub struct ProviderIdentity {
    /// Provider id (`okta`, `entra`, the generic id, or `saml`).
    pub id: String,
    /// Organisation id.
    pub org_id: String,
    /// The claim (SAML: attribute) holding the user's groups.
    pub groups_claim: String,
    /// The ID-token claim that names the person instead of `sub`, when one does: Entra ID's
    /// `oid` under SCIM provisioning (its `sub` differs per app; the object id is what Entra
    /// pushes as `externalId`).
    pub subject_claim: Option<String>,
    org_header: HeaderValue,
    provider_header: HeaderValue,
}

impl ProviderIdentity {
    /// The identity of provider `id` of organisation `org_id`.
    pub fn new(id: &str, org_id: &str) -> Self {
        let header =
            |v: &str| HeaderValue::from_bytes(v.as_bytes()).unwrap_or(HeaderValue::from_static(""));
        Self {
            id: id.to_owned(),
            org_id: org_id.to_owned(),
            groups_claim: crate::access::DEFAULT_GROUPS_CLAIM.to_owned(),
            subject_claim: None,
            org_header: header(org_id),
            provider_header: header(id),
        }
    }

    /// The same, with the user's groups read from `claim`.
    pub fn with_groups_claim(self, claim: &str) -> Self {
        Self {
            groups_claim: claim.to_owned(),
            ..self
        }
    }

    /// The same, with the person named by ID-token claim `claim` instead of `sub`.
    pub fn with_subject_claim(self, claim: Option<&str>) -> Self {
        Self {
            subject_claim: claim.map(str::to_owned),
            ..self
        }
    }
}

/// The identity headers of one session, ready to copy into requests.
#[derive(Debug)]
pub struct IdentityHeaders {
    /// Header name/value pairs (values are cheap to clone).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    reissue_at: i64,
    /// The [`Session::validated_at`] they were built for: a re-validated session (perhaps with
    /// another role) gets new headers.
    validated_at: Option<i64>,
}

#[derive(Serialize)]
struct IdentityClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    role: &'a str,
    org: &'a str,
    provider: &'a str,
    idp_sub: &'a str,
    /// `user` (signed in through the browser) or `machine` (a bearer token).
    principal_type: &'a str,
    /// The user's groups that the access rules name.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    /// `true` when the user's groups could not be read (Entra ID group overage, Graph
    /// unanswered): `groups` is not their list, and an app deciding on groups fails closed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    groups_unknown: bool,
}

/// The session id prefix of a machine principal's stand-in session (its identity JWT says
/// `principal_type: machine`); a browser session's id never has it.
pub const MACHINE_SESSION_PREFIX: &str = "machine:";

/// Signs identity JWTs and caches each session's identity headers.
pub struct IdentityIssuer {
    key: EncodingKey,
    kid: String,
    jwks: Bytes,
    origin: String,
    cache: Mutex<RandomKeyMap<String, Arc<IdentityHeaders>>>,
}

impl std::fmt::Debug for IdentityIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityIssuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410), followed by the 32-byte seed.
pub(crate) const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why the signing key could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("identity signing key: {0}")]
pub struct IdentityKeyError(String);

impl IdentityIssuer {
    /// A fresh Ed25519 key; `origin` is the JWT's `iss` and `aud`.
    pub fn generate(origin: &str) -> Result<Self, IdentityKeyError> {
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        der.extend_from_slice(&seed);
        let key = EncodingKey::from_ed_der(&der);
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA)
            .map_err(|e| IdentityKeyError(e.to_string()))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| IdentityKeyError(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": [jwk] }))
            .map_err(|e| IdentityKeyError(e.to_string()))?;
        Ok(Self {
            key,
            kid,
            jwks: Bytes::from(jwks),
            origin: origin.to_owned(),
            cache: Mutex::new(RandomKeyMap::default()),
        })
    }

    /// The public JWKS document.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// Key id of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The identity headers for `session`, from the cache while its JWT is fresh enough.
    pub fn headers_for(
        &self,
        session: &Session,
        provider: &ProviderIdentity,
        now: i64,
    ) -> Arc<IdentityHeaders> {
        if let Some(hit) = self.lock().get(&session.sid)
            && hit.reissue_at > now
            && hit.validated_at == session.validated_at
        {
            return hit.clone();
        }
        let fresh = Arc::new(self.build(session, provider, now));
        let mut cache = self.lock();
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, v| v.reissue_at > now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(session.sid.clone(), fresh.clone());
        fresh
    }

    /// Drops a session's cached headers (logout).
    pub fn forget(&self, sid: &str) {
        self.lock().remove(sid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RandomKeyMap<String, Arc<IdentityHeaders>>> {
        match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Signs an identity JWT for `session`, valid until `exp`.
    pub fn sign(&self, session: &Session, org: &str, now: i64, exp: i64) -> Option<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".to_owned());
        let claims = IdentityClaims {
            iss: &self.origin,
            aud: &self.origin,
            sub: &session.user,
            iat: now,
            exp,
            email: session.email.as_deref(),
            name: session.name.as_deref(),
            preferred_username: session.username.as_deref(),
            role: session.role.as_str(),
            org,
            provider: &session.provider,
            idp_sub: &session.subject,
            principal_type: if session.sid.starts_with(MACHINE_SESSION_PREFIX) {
                "machine"
            } else {
                "user"
            },
            groups: &session.groups,
            groups_unknown: session.groups_unknown,
        };
        match jsonwebtoken::encode(&header, &claims, &self.key) {
            Ok(jwt) => Some(jwt),
            Err(e) => {
                tracing::error!(error = %e, "could not sign the identity JWT");
                None
            }
        }
    }

    fn build(&self, session: &Session, provider: &ProviderIdentity, now: i64) -> IdentityHeaders {
        let exp = (now + JWT_TTL_SECS).min(session.expires_at);
        let mut headers = Vec::with_capacity(7);
        let mut push = |name: HeaderName, value: Option<&str>| {
            if let Some(v) = value.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
                headers.push((name, v));
            }
        };
        push(X_FORWARDED_USER, Some(&session.user));
        push(X_FORWARDED_EMAIL, session.email.as_deref());
        push(X_FORWARDED_PREFERRED_USERNAME, session.username.as_deref());
        push(X_FORWARDED_GROUPS, Some(session.role.as_str()));
        headers.push((X_FORWARDED_ORG, provider.org_header.clone()));
        headers.push((X_FORWARDED_PROVIDER, provider.provider_header.clone()));
        if let Some(jwt) = self.sign(session, &provider.org_id, now, exp)
            && let Ok(v) = HeaderValue::from_str(&jwt)
        {
            headers.push((X_GATEHOUSE_IDENTITY, v));
        }
        IdentityHeaders {
            headers,
            reissue_at: exp - JWT_MIN_REMAINING_SECS,
            validated_at: session.validated_at,
        }
    }
}
