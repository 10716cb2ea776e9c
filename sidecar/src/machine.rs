//! Machine clients (`GATEHOUSE_MACHINE_AUTH`): a bearer token from a configured issuer, verified
//! by [`gatehouse_auth::machine`] against the issuer's keys, which are fetched here: from the
//! configured `jwksUri`, else from the issuer's discovery document, on first use and again (rate
//! limited) when a token names a key not seen yet. Nothing in a token's header chooses where keys
//! come from.
//!
//! Kubernetes ServiceAccount tokens are checked against the API server's own issuer and keys
//! (`/.well-known/openid-configuration`, `/openid/v1/jwks`), read through the sidecar's
//! Kubernetes client at the first such token; or, in TokenReview mode, each by the API server's
//! TokenReview API with the configured audiences.

mod verified;

pub use verified::Verified;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_auth::jwk::KeySet;
use gatehouse_auth::machine::{
    BearerError, DEFAULT_SKEW, KubernetesIssuer, MachineAuth, MachinePrincipal, Review,
    UnverifiedBearer,
};
use gatehouse_auth::token::now_unix;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use tokio::sync::OnceCell;

use crate::config::MachineConfig;
use crate::providers::jwks::JwksCache;

/// Shortest time between two fetches of an issuer's keys for unknown `kid`s.
const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Oldest a machine issuer's keys may get before they are fetched again (as the sign-in
/// providers' are), so that a key the issuer removed stops being trusted.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Largest discovery document read.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;
/// Longest wait for the API server's answer to a TokenReview.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// Verifies machine clients' bearer tokens.
pub struct MachineClients {
    config: MachineConfig,
    http: reqwest::Client,
    keys: HashMap<String, OnceCell<Arc<JwksCache>>>,
    /// The Kubernetes client ServiceAccount tokens are checked through (set at start).
    kube: std::sync::OnceLock<kube::Client>,
    /// The API server's issuer and keys, read at the first ServiceAccount token.
    kubernetes: OnceCell<ApiServerKeys>,
    /// TokenReview mode: what a review's answer is checked against.
    reviewed: Option<KubernetesIssuer>,
    /// Tokens verified moments ago: of the configured issuers, and ServiceAccount tokens (checked
    /// against the API server's keys or reviewed by it).
    verified: verified::VerifiedTokens,
}

impl std::fmt::Debug for MachineClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineClients")
            .field("config", &self.config)
            .field("kube", &self.kube.get().is_some())
            .field("kubernetes", &self.kubernetes.get().is_some())
            .finish_non_exhaustive()
    }
}

/// What checks ServiceAccount tokens: a verifier that knows the API server's issuer, and its
/// keys (refetched, rate-limited, for an unknown `kid`).
#[derive(Debug)]
struct ApiServerKeys {
    auth: MachineAuth,
    keys: std::sync::RwLock<Arc<KeySet>>,
    last_fetch: tokio::sync::Mutex<std::time::Instant>,
}

impl MachineClients {
    /// Clients of `config`; keys are fetched with `http` when first needed.
    pub fn new(config: MachineConfig, http: reqwest::Client) -> Self {
        let keys = config
            .keys
            .iter()
            .map(|k| (k.name.clone(), OnceCell::new()))
            .collect();
        let reviewed = config
            .kubernetes
            .as_ref()
            .filter(|k| k.token_review)
            .map(|k| KubernetesIssuer {
                // No discovery in this mode: the API server itself decides whose token it is.
                issuer: String::new(),
                audiences: k.audiences.clone(),
                service_accounts: k.service_accounts.clone(),
            });
        Self {
            config,
            http,
            keys,
            kube: std::sync::OnceLock::new(),
            kubernetes: OnceCell::new(),
            reviewed,
            verified: verified::VerifiedTokens::default(),
        }
    }

    /// The Kubernetes client ServiceAccount tokens are checked through.
    pub fn set_kube_client(&self, client: kube::Client) {
        let _ = self.kube.set(client);
    }

    /// Whether the app receives the client's `Authorization` header.
    pub fn forward_token(&self) -> bool {
        self.config.forward_token
    }

    /// The principal `raw` (the bearer token) stands for, or why it stands for none. A token of
    /// a configured issuer verified moments ago is answered from [`verified::VerifiedTokens`].
    pub async fn verify(&self, raw: &str) -> Result<Verified, BearerError> {
        let key = verified::key(raw).ok_or(BearerError::TooLarge)?;
        if let Some(principal) = self.verified.get(&key, now_unix()) {
            return Ok(Verified {
                principal,
                digest: key,
            });
        }
        let token = UnverifiedBearer::parse(raw)?;
        let issuer = match self.config.auth.issuer_of(&token) {
            Ok(issuer) => issuer,
            Err(BearerError::IssuerMismatch) if self.config.kubernetes.is_some() => {
                // A ServiceAccount token: reviewed by the API server (a review is reused like a
                // verification: at most 60 s, never past `exp`), or checked against its keys.
                let principal = Arc::new(if self.reviewed.is_some() {
                    self.review(raw, &token).await?
                } else {
                    self.verify_service_account(&token).await?
                });
                self.verified.insert(key, principal.clone(), now_unix());
                return Ok(Verified {
                    principal,
                    digest: key,
                });
            }
            Err(e) => return Err(e),
        };
        let cache = self
            .cache(issuer.name())
            .await
            .ok_or(BearerError::UnknownKey)?;
        cache.refresh_if_older(KEYS_MAX_AGE);
        let principal = Arc::new(match self
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
        }?);
        self.verified.insert(key, principal.clone(), now_unix());
        Ok(Verified {
            principal,
            digest: key,
        })
    }

    /// A token of no external issuer, where ServiceAccount tokens are admitted: the API server's
    /// issuer and keys decide.
    async fn verify_service_account(
        &self,
        token: &UnverifiedBearer<'_>,
    ) -> Result<MachinePrincipal, BearerError> {
        let Some(api) = self.api_server().await else {
            return Err(BearerError::Unverifiable);
        };
        let keys = api.keys.read().map(|k| k.clone()).unwrap_or_default();
        match api.auth.verify(token, &keys, now_unix()) {
            Err(BearerError::UnknownKey) => {
                let mut last = api.last_fetch.lock().await;
                if last.elapsed() >= MIN_REFETCH
                    && let Some(client) = self.kube.get()
                    && let Ok(fresh) = api_server_keys(client).await
                {
                    *last = std::time::Instant::now();
                    if let Ok(mut keys) = api.keys.write() {
                        *keys = Arc::new(fresh);
                    }
                }
                drop(last);
                let keys = api.keys.read().map(|k| k.clone()).unwrap_or_default();
                api.auth.verify(token, &keys, now_unix())
            }
            verified => verified,
        }
    }

    /// TokenReview mode: the API server checks `raw` (signature, expiry, audiences, and that its
    /// ServiceAccount and bound pod still exist); its answer is then held to the configuration.
    async fn review(
        &self,
        raw: &str,
        token: &UnverifiedBearer<'_>,
    ) -> Result<MachinePrincipal, BearerError> {
        let (Some(reviewed), Some(client)) = (&self.reviewed, self.kube.get()) else {
            return Err(BearerError::Unverifiable);
        };
        let request = TokenReview {
            spec: TokenReviewSpec {
                token: Some(raw.to_owned()),
                audiences: Some(reviewed.audiences.clone()),
            },
            ..TokenReview::default()
        };
        let api: kube::Api<TokenReview> = kube::Api::all(client.clone());
        let answer = tokio::time::timeout(
            REVIEW_TIMEOUT,
            api.create(&kube::api::PostParams::default(), &request),
        )
        .await
        .map_err(|_| "no answer within 5 s".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()));
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                // The error names the API's answer, never the token.
                tracing::warn!(%error, "the API server's TokenReview could not be made: does the sidecar's ServiceAccount have the system:auth-delegator binding?");
                return Err(BearerError::Unverifiable);
            }
        };
        let status = answer.status.unwrap_or_default();
        let audiences = status.audiences.unwrap_or_default();
        let username = status
            .user
            .as_ref()
            .and_then(|u| u.username.as_deref())
            .unwrap_or_default();
        reviewed.reviewed(
            token,
            &Review {
                authenticated: status.authenticated == Some(true),
                username,
                audiences: &audiences,
            },
            DEFAULT_SKEW,
            now_unix(),
        )
    }

    /// The API server's issuer and keys, read on first use; `None` when they cannot be read now.
    async fn api_server(&self) -> Option<&ApiServerKeys> {
        let k8s = self.config.kubernetes.as_ref()?;
        let client = self.kube.get()?;
        self.kubernetes
            .get_or_try_init(|| async {
                let discovery: serde_json::Value = client
                    .request(
                        http::Request::get("/.well-known/openid-configuration")
                            .body(Vec::new())
                            .map_err(|e| e.to_string())?,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let issuer = discovery["issuer"]
                    .as_str()
                    .ok_or("the API server's discovery document names no issuer")?
                    .to_owned();
                let auth = MachineAuth::new(
                    Vec::new(),
                    Some(KubernetesIssuer {
                        issuer,
                        audiences: k8s.audiences.clone(),
                        service_accounts: k8s.service_accounts.clone(),
                    }),
                    DEFAULT_SKEW,
                )
                .map_err(|e| e.to_string())?;
                let keys = api_server_keys(client).await?;
                Ok::<_, String>(ApiServerKeys {
                    auth,
                    keys: std::sync::RwLock::new(Arc::new(keys)),
                    last_fetch: tokio::sync::Mutex::new(std::time::Instant::now()),
                })
            })
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %e, "the API server's ServiceAccount issuer or keys could not be read");
            })
            .ok()
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

/// The API server's ServiceAccount signing keys (`/openid/v1/jwks`), read through `client`.
async fn api_server_keys(client: &kube::Client) -> Result<KeySet, String> {
    let text = client
        .request_text(
            http::Request::get("/openid/v1/jwks")
                .body(Vec::new())
                .map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| e.to_string())?;
    KeySet::parse(text.as_bytes()).map_err(|e| e.to_string())
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
