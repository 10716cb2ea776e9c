//! A provider's signing keys, cached.
//!
//! Keys are fetched at discovery and refreshed periodically. A token whose `kid` is unknown causes
//! at most one refetch per `min_refetch_interval` (an attacker sending random `kid`s cannot make us
//! hammer the IdP). Keys of an unknown `kty`, unsupported curve or algorithm, or `use` other than
//! `sig` are ignored, never fatal.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use gatehouse_auth::jwk::{KeySet, KeySetError, MAX_JWKS_BYTES, VerifyKey};
use gatehouse_auth::logout_token::{
    LogoutExpected, LogoutToken, LogoutTokenError, UnverifiedLogoutToken,
};
use gatehouse_auth::token::{Expected, TokenError, UnverifiedIdToken, VerifiedIdToken, now_unix};
use jsonwebtoken::Algorithm;

/// Why the key set could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Transport failure.
    #[error("JWKS request failed: {0}")]
    Request(#[source] reqwest::Error),
    /// Non-200 answer.
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(u16),
    /// Document over the size limit.
    #[error("JWKS document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not a JWKS document.
    #[error(transparent)]
    NotJwks(#[from] KeySetError),
    /// A JWKS without a single key we can use.
    #[error("JWKS has no usable signing key (RS256, ES256 or EdDSA)")]
    NoUsableKey,
}
/// The cached key set of one provider.
pub struct JwksCache {
    uri: url::Url,
    http: reqwest::Client,
    keys: RwLock<Arc<KeySet>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refetch_interval: Duration,
    /// When the keys were last stored (a fetch that failed keeps the old keys and this time).
    stored_at: std::sync::Mutex<Option<Instant>>,
    /// A background refresh of stale keys is under way ([`JwksCache::refresh_if_older`]).
    refreshing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("uri", &self.uri.as_str())
            .field("keys", &self.current().len())
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// An empty cache for `uri`; call [`JwksCache::refresh`] to load it.
    pub fn new(uri: url::Url, http: reqwest::Client, min_refetch_interval: Duration) -> Self {
        Self {
            uri,
            http,
            keys: RwLock::new(Arc::new(KeySet::default())),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refetch_interval,
            stored_at: std::sync::Mutex::new(None),
            refreshing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the keys were stored longer than `max_age` ago (or never), so that a key the
    /// issuer has removed would still be trusted: then one refresh is started in the background
    /// (the caller goes on with the keys it has) and `true` is returned.
    pub fn refresh_if_older(self: &Arc<Self>, max_age: Duration) -> bool {
        use std::sync::atomic::Ordering;
        let stale = self
            .stored_at
            .lock()
            .map(|at| at.is_none_or(|at| at.elapsed() >= max_age))
            .unwrap_or(true);
        if !stale || self.refreshing.swap(true, Ordering::AcqRel) {
            return false;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            if let Err(error) = cache.refresh().await {
                tracing::warn!(uri = %cache.uri, %error, "keys could not be refreshed; the old ones stay");
                // Tried now: not again at every request until `max_age` passes once more.
                if let Ok(mut at) = cache.stored_at.lock() {
                    *at = Some(Instant::now());
                }
            }
            cache.refreshing.store(false, Ordering::Release);
        });
        true
    }

    /// The keys as of now.
    pub fn current(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the key set for the first time: unlike [`JwksCache::refresh`], it does not count
    /// against the rate limit, so a key the issuer rotated in right after the load is fetched
    /// at the first token that names it.
    pub async fn load(&self) -> Result<usize, JwksError> {
        self.fetch_and_store().await
    }

    /// Fetches the key set now, regardless of the rate limit. Keeps the old keys on failure.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_store().await
    }

    async fn fetch_and_store(&self) -> Result<usize, JwksError> {
        let set = fetch(&self.http, &self.uri).await?;
        if set.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        let n = set.len();
        match self.keys.write() {
            Ok(mut keys) => *keys = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        if let Ok(mut at) = self.stored_at.lock() {
            *at = Some(Instant::now());
        }
        Ok(n)
    }

    /// Keys for a token's `kid` and `alg`. An unknown `kid` triggers one refetch unless the last
    /// fetch is more recent than the rate limit allows.
    pub async fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Vec<VerifyKey> {
        let found = self.current().matching(kid, alg);
        if !found.is_empty() {
            return found;
        }
        {
            let mut last = self.last_fetch.lock().await;
            // Another request may have refetched while we waited for the lock.
            let found = self.current().matching(kid, alg);
            if !found.is_empty() {
                return found;
            }
            if last.is_some_and(|t| t.elapsed() < self.min_refetch_interval) {
                tracing::debug!(jwks = %self.uri, "unknown signing key; refetch rate-limited");
                return Vec::new();
            }
            *last = Some(Instant::now());
            if let Err(e) = self.fetch_and_store().await {
                tracing::warn!(jwks = %self.uri, error = %e, "JWKS refetch for an unknown key failed");
                return Vec::new();
            }
        }
        self.current().matching(kid, alg)
    }
}

async fn fetch(http: &reqwest::Client, uri: &url::Url) -> Result<KeySet, JwksError> {
    let mut response = http
        .get(uri.clone())
        .header(
            http::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .send()
        .await
        .map_err(JwksError::Request)?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(JwksError::Status(response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(JwksError::Request)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(KeySet::parse(&body)?)
}

/// Verifies an ID token against the provider's keys `jwks` (fetched again, within its rate
/// limit, when the token names a key the cache does not hold) and `expected`, at the current
/// time. The rules are [`gatehouse_auth::token`]'s.
pub async fn verify_id_token(
    raw: &str,
    jwks: &JwksCache,
    expected: &Expected<'_>,
) -> Result<VerifiedIdToken, TokenError> {
    let token = UnverifiedIdToken::parse(raw)?;
    let header = token.header();
    let keys = jwks.keys_for(header.kid.as_deref(), header.alg).await;
    token.verify(&keys, expected, now_unix())
}

/// Verifies a back-channel logout token against the provider's keys `jwks` and `expected`, at
/// `now` (Unix seconds). The rules are [`gatehouse_auth::logout_token`]'s.
pub async fn verify_logout_token(
    raw: &str,
    jwks: &JwksCache,
    expected: &LogoutExpected<'_>,
    now: i64,
) -> Result<LogoutToken, LogoutTokenError> {
    let token = UnverifiedLogoutToken::parse(raw)?;
    let header = token.header();
    let keys = jwks.keys_for(header.kid.as_deref(), header.alg).await;
    token.verify(&keys, expected, now)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn jwk(kid: &str) -> serde_json::Value {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let encoding = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
            .expect("EC key");
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        serde_json::to_value(&jwk).expect("JWK JSON")
    }

    /// An issuer's JWKS endpoint whose keys the test changes.
    async fn issuer(keys: Arc<Mutex<Vec<serde_json::Value>>>) -> url::Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let keys = keys.lock().map(|k| k.clone()).unwrap_or_default();
                async move { axum::Json(serde_json::json!({ "keys": keys })) }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        url::Url::parse(&format!("http://{addr}/jwks")).expect("url")
    }

    #[tokio::test]
    async fn keys_older_than_their_max_age_are_fetched_again_so_a_removed_key_goes() {
        let keys = Arc::new(Mutex::new(vec![jwk("old")]));
        let cache = Arc::new(JwksCache::new(
            issuer(keys.clone()).await,
            reqwest::Client::new(),
            Duration::from_secs(30),
        ));
        cache.load().await.expect("loaded");
        let has = |kid: &str| {
            !cache
                .current()
                .matching(Some(kid), Algorithm::ES256)
                .is_empty()
        };
        assert!(has("old"));
        // The issuer rotates: "old" is removed (compromised, say), "new" published.
        *keys.lock().expect("keys") = vec![jwk("new")];
        // Fresh keys are not fetched again.
        assert!(!cache.refresh_if_older(Duration::from_secs(3600)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(has("old"), "nothing was fetched");
        // Past their age, one request starts a refresh in the background; the removed key goes.
        assert!(cache.refresh_if_older(Duration::ZERO));
        for _ in 0..100 {
            if has("new") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            has("new") && !has("old"),
            "the removed key is no longer trusted"
        );
    }
}
