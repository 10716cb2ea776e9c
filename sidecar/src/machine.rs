//! Machine clients (`GATEHOUSE_MACHINE_AUTH`): a bearer token from a configured issuer, verified
//! by [`gatehouse_auth::machine`] against the issuer's keys, which are fetched here: from the
//! configured `jwksUri`, else from the issuer's discovery document, on first use and again (rate
//! limited) when a token names a key not seen yet. Nothing in a token's header chooses where keys
//! come from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_auth::machine::{BearerError, MachinePrincipal, UnverifiedBearer};
use gatehouse_auth::token::now_unix;
use tokio::sync::OnceCell;

use crate::config::MachineConfig;
use crate::providers::jwks::JwksCache;

/// Shortest time between two fetches of an issuer's keys for unknown `kid`s.
const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// Verifies machine clients' bearer tokens.
#[derive(Debug)]
pub struct MachineClients {
    config: MachineConfig,
    http: reqwest::Client,
    keys: HashMap<String, OnceCell<Arc<JwksCache>>>,
}

impl MachineClients {
    /// Clients of `config`; keys are fetched with `http` when first needed.
    pub fn new(config: MachineConfig, http: reqwest::Client) -> Self {
        let keys = config
            .keys
            .iter()
            .map(|k| (k.name.clone(), OnceCell::new()))
            .collect();
        Self { config, http, keys }
    }

    /// Whether the app receives the client's `Authorization` header.
    pub fn forward_token(&self) -> bool {
        self.config.forward_token
    }

    /// The principal `raw` (the bearer token) stands for, or why it stands for none.
    pub async fn verify(&self, raw: &str) -> Result<MachinePrincipal, BearerError> {
        let token = UnverifiedBearer::parse(raw)?;
        let issuer = self.config.auth.issuer_of(&token)?;
        let cache = self
            .cache(issuer.name())
            .await
            .ok_or(BearerError::UnknownKey)?;
        match self
            .config
            .auth
            .verify(&token, &cache.current(), now_unix())
        {
            Err(BearerError::UnknownKey) => {
                // One refetch, unless another was made moments ago.
                let header = token.header();
                let _ = cache.keys_for(header.kid.as_deref(), header.alg).await;
                self.config
                    .auth
                    .verify(&token, &cache.current(), now_unix())
            }
            verified => verified,
        }
    }

    /// The key cache of issuer `name`, made (discovery, first fetch) on first use; `None` when
    /// its keys cannot be found now (asked again at the next token).
    async fn cache(&self, name: &str) -> Option<Arc<JwksCache>> {
        let cell = self.keys.get(name)?;
        let keys = self.config.keys.iter().find(|k| k.name == name)?;
        cell.get_or_try_init(|| async {
            let uri = match &keys.jwks_uri {
                Some(uri) => url::Url::parse(uri).map_err(|e| e.to_string())?,
                None => discover_jwks_uri(&self.http, &keys.issuer).await?,
            };
            let cache = Arc::new(JwksCache::new(uri, self.http.clone(), MIN_REFETCH));
            cache.load().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(cache)
        })
        .await
        .inspect_err(|e| {
            tracing::warn!(issuer = %keys.issuer, error = %e, "machine issuer's keys could not be fetched");
        })
        .ok()
        .cloned()
    }
}

/// The `jwks_uri` of `issuer`'s discovery document, whose `issuer` must be `issuer` itself.
async fn discover_jwks_uri(http: &reqwest::Client, issuer: &str) -> Result<url::Url, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let mut response = http.get(&url).send().await.map_err(|e| e.to_string())?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("{url} answered {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_DISCOVERY_BYTES {
            return Err(format!("{url}: discovery document too large"));
        }
        body.extend_from_slice(&chunk);
    }
    let document: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
    if document["issuer"].as_str() != Some(issuer) {
        return Err(format!("{url}: the document names another issuer"));
    }
    let jwks = document["jwks_uri"]
        .as_str()
        .ok_or_else(|| format!("{url}: no jwks_uri"))?;
    url::Url::parse(jwks).map_err(|e| format!("{url}: jwks_uri: {e}"))
}
