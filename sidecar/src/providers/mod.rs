//! Sign-in providers: their configuration (one module each), discovery, keys and code exchange.
//!
//! Discovery (`/.well-known/openid-configuration`, through `openidconnect` with our reqwest client
//! behind its `AsyncHttpClient` trait) runs in the background at start-up and retries with backoff;
//! a provider is *ready* once its metadata and its JWKS are loaded. Start-up never waits for it.

pub mod jwks;

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use serde::{Deserialize, Serialize};

use crate::config::{ProviderConfig, Secret, check_https_or_loopback};
use gatehouse_auth::identity::ProviderIdentity;
use jwks::JwksCache;

use crate::saml::SamlProvider;

pub use crate::config::ProviderKind;

/// Discovery fields `openidconnect` does not model.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RP-initiated logout endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// RFC 9207: the authorization response carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl openidconnect::AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = openidconnect::ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// How we authenticate at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuth {
    /// `client_secret_basic` (the default of the spec).
    Basic,
    /// `client_secret_post`.
    Post,
}

/// The endpoints discovery found.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorization: url::Url,
    /// Where the code is exchanged.
    pub token: url::Url,
    /// RP-initiated logout, if offered.
    pub end_session: Option<url::Url>,
    /// UserInfo endpoint, if offered.
    pub userinfo: Option<url::Url>,
    /// Whether the authorization response carries `iss` (RFC 9207).
    pub iss_parameter_supported: bool,
    /// Whether the provider lists `offline_access` in `scopes_supported`: asked for when
    /// re-validation is on, so that the sign-in brings a refresh token.
    pub offline_access: bool,
    /// Client authentication at the token endpoint.
    pub token_auth: TokenAuth,
}

/// Discovery result: endpoints and keys.
#[derive(Debug)]
pub struct Discovered {
    /// Endpoints.
    pub endpoints: Endpoints,
    /// Signing keys.
    pub jwks: JwksCache,
}

/// Why discovery failed (no secrets inside).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The discovery document could not be fetched or parsed, or names another issuer.
    #[error("discovery failed: {0}")]
    Metadata(String),
    /// An endpoint is not https (or loopback http).
    #[error("discovery document has an unusable {0}")]
    Endpoint(&'static str),
    /// The keys could not be loaded.
    #[error(transparent)]
    Jwks(#[from] jwks::JwksError),
}

/// Why the authorization code could not be exchanged.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The provider is not discovered yet.
    #[error("provider not ready")]
    NotReady,
    /// Transport failure.
    #[error("token request failed ({0})")]
    Transport(&'static str),
    /// The token endpoint refused (with the OAuth error code, sanitized).
    #[error("token endpoint answered HTTP {status} ({error})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// OAuth `error` code (`[a-z_]`, at most 40 characters) or `unknown`.
        error: String,
    },
    /// The answer had no ID token.
    #[error("token response has no ID token")]
    NoIdToken,
    /// The answer was not JSON, or larger than we read.
    #[error("token response is not JSON or too large")]
    Unreadable,
}

/// Body of the token endpoint's answer we care about.
#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    /// Seconds (a number, or a string of one: Entra's v1 endpoint).
    expires_in: Option<serde_json::Value>,
}

/// What a code exchange returns: the raw ID token, the access token when the provider sent one
/// (used once, for UserInfo, and never kept), and the refresh token when it sent one (kept
/// sealed in its own cookie, for re-validation; never sent to the app).
pub struct ExchangedTokens {
    /// The raw ID token (verified by the caller).
    pub id_token: String,
    /// The access token.
    pub access_token: Option<String>,
    /// The refresh token.
    pub refresh_token: Option<String>,
}

/// What a refresh returns; each part only when the provider sent it.
pub struct RefreshedTokens {
    /// A new raw ID token (verified by the caller).
    pub id_token: Option<String>,
    /// A new access token (used once, for UserInfo).
    pub access_token: Option<String>,
    /// A new refresh token (the old one may no longer work).
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for ExchangedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangedTokens").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RefreshedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshedTokens").finish_non_exhaustive()
    }
}

/// An enabled provider at run time.
pub struct Provider {
    /// Its configuration.
    pub config: ProviderConfig,
    client_secret: RwLock<Secret>,
    discovered: OnceLock<Discovered>,
    /// What the identity headers say about it.
    pub identity: ProviderIdentity,
    /// The app's own Microsoft Graph token (client credentials) and until when it is used.
    graph_token: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.config.id)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// Largest discovery document or token response accepted.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

impl Provider {
    /// A provider that is not discovered yet.
    pub fn new(config: ProviderConfig) -> Self {
        Self {
            client_secret: RwLock::new(config.client_secret.value.clone()),
            discovered: OnceLock::new(),
            identity: ProviderIdentity::new(&config.id, &config.org_id)
                .with_groups_claim(&config.groups_claim),
            graph_token: std::sync::Mutex::new(None),
            config,
        }
    }

    /// Provider id (`okta`, `entra`, or the generic id).
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Whether metadata and keys are loaded.
    pub fn is_ready(&self) -> bool {
        self.discovered.get().is_some()
    }

    /// Metadata and keys, once loaded.
    pub fn discovered(&self) -> Option<&Discovered> {
        self.discovered.get()
    }

    /// Whether a sign-in should ask for `offline_access` (a refresh token): the provider lists
    /// it in `scopes_supported`. An `invalid_scope` answer from a browser's attempt never
    /// changes this (it changes that attempt only).
    pub fn offers_offline_access(&self) -> bool {
        self.discovered()
            .is_some_and(|d| d.endpoints.offline_access)
    }

    /// Replaces the client secret (rotation from a mounted file).
    pub fn set_client_secret(&self, secret: Secret) {
        match self.client_secret.write() {
            Ok(mut s) => *s = secret,
            Err(poisoned) => *poisoned.into_inner() = secret,
        }
    }

    fn client_secret(&self) -> Secret {
        match self.client_secret.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Installs discovery results directly (tests and callers that discovered elsewhere).
    pub fn set_discovered(&self, discovered: Discovered) -> bool {
        self.discovered.set(discovered).is_ok()
    }

    /// Runs discovery once: metadata, endpoint checks, keys.
    pub async fn discover(
        &self,
        http: &reqwest::Client,
        min_refetch_interval: Duration,
    ) -> Result<(), DiscoveryError> {
        if self.is_ready() {
            return Ok(());
        }
        let issuer = openidconnect::IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| DiscoveryError::Metadata(e.to_string()))?;
        let client = OidcClient(http.clone());
        let metadata = Metadata::discover_async(issuer, &client)
            .await
            .map_err(|e| DiscoveryError::Metadata(discovery_message(&e)))?;

        let endpoint = |name: &'static str, url: &url::Url| {
            check_https_or_loopback(name, url).map_err(|_| DiscoveryError::Endpoint(name))
        };
        let authorization = metadata.authorization_endpoint().url().clone();
        endpoint("authorization_endpoint", &authorization)?;
        let token = metadata
            .token_endpoint()
            .map(|t| t.url().clone())
            .ok_or(DiscoveryError::Endpoint("token_endpoint"))?;
        endpoint("token_endpoint", &token)?;
        let jwks_uri = metadata.jwks_uri().url().clone();
        endpoint("jwks_uri", &jwks_uri)?;
        let extra = metadata.additional_metadata();
        let end_session = match &extra.end_session_endpoint {
            Some(raw) => {
                let url = url::Url::parse(raw)
                    .map_err(|_| DiscoveryError::Endpoint("end_session_endpoint"))?;
                endpoint("end_session_endpoint", &url)?;
                Some(url)
            }
            None => None,
        };
        let userinfo = match metadata.userinfo_endpoint() {
            Some(u) => {
                let url = u.url().clone();
                endpoint("userinfo_endpoint", &url)?;
                Some(url)
            }
            None => None,
        };
        let token_auth = match metadata.token_endpoint_auth_methods_supported() {
            Some(methods)
                if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
            {
                TokenAuth::Post
            }
            _ => TokenAuth::Basic,
        };
        let endpoints = Endpoints {
            authorization,
            token,
            end_session,
            userinfo,
            iss_parameter_supported: extra
                .authorization_response_iss_parameter_supported
                .unwrap_or(false),
            offline_access: metadata
                .scopes_supported()
                .is_some_and(|scopes| scopes.iter().any(|s| s.as_str() == "offline_access")),
            token_auth,
        };

        let jwks = JwksCache::new(jwks_uri, http.clone(), min_refetch_interval);
        jwks.refresh().await?;
        tracing::info!(
            provider = %self.config.id,
            keys = %gatehouse_auth::jwk::describe(&jwks.current()),
            rp_logout = endpoints.end_session.is_some(),
            "provider discovered"
        );
        let _ = self.discovered.set(Discovered { endpoints, jwks });
        Ok(())
    }

    /// Exchanges an authorization code (with its PKCE verifier) for the tokens of a sign-in.
    pub async fn exchange_code_for_tokens(
        &self,
        http: &reqwest::Client,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<ExchangedTokens, ExchangeError> {
        let tokens = self
            .token_request(
                http,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", code_verifier),
                ],
            )
            .await?;
        Ok(ExchangedTokens {
            id_token: tokens.id_token.ok_or(ExchangeError::NoIdToken)?,
            access_token: tokens.access_token.filter(|t| !t.is_empty()),
            refresh_token: tokens.refresh_token.filter(|t| !t.is_empty()),
        })
    }

    /// Asks the provider to vouch for a session again: the refresh-token grant (RFC 6749 §6).
    /// `invalid_grant` in [`ExchangeError::Refused`] means the IdP will not (user disabled,
    /// grant revoked, token expired). The answer may carry a new ID token (re-verified by the
    /// caller) and a new refresh token (rotation).
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        refresh_token: &str,
    ) -> Result<RefreshedTokens, ExchangeError> {
        let tokens = self
            .token_request(
                http,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?;
        Ok(RefreshedTokens {
            id_token: tokens.id_token.filter(|t| !t.is_empty()),
            access_token: tokens.access_token.filter(|t| !t.is_empty()),
            refresh_token: tokens.refresh_token.filter(|t| !t.is_empty()),
        })
    }

    /// The app's own access token for Microsoft Graph at `graph` (client credentials,
    /// `scope=<graph origin>/.default`), for reading an overage user's groups
    /// (`ENTRA_GROUP_OVERAGE=application`). Cached until a minute before it expires (at most an
    /// hour); a token request only when there is none.
    pub async fn graph_app_token(
        &self,
        http: &reqwest::Client,
        graph: &url::Url,
    ) -> Result<String, ExchangeError> {
        let now = std::time::Instant::now();
        if let Ok(cached) = self.graph_token.lock()
            && let Some((token, until)) = cached.as_ref()
            && now < *until
        {
            return Ok(token.clone());
        }
        let scope = format!("{}/.default", graph.origin().ascii_serialization());
        let tokens = self
            .token_request(
                http,
                &[("grant_type", "client_credentials"), ("scope", &scope)],
            )
            .await?;
        let token = tokens
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or(ExchangeError::Unreadable)?;
        let lifetime = match &tokens.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(300)
        .min(3600)
        .saturating_sub(60);
        if let Ok(mut cached) = self.graph_token.lock() {
            *cached = Some((
                token.clone(),
                now + std::time::Duration::from_secs(lifetime),
            ));
        }
        Ok(token)
    }

    /// One request to the token endpoint with `grant` and our client authentication.
    async fn token_request(
        &self,
        http: &reqwest::Client,
        grant: &[(&str, &str)],
    ) -> Result<TokenResponse, ExchangeError> {
        let discovered = self.discovered().ok_or(ExchangeError::NotReady)?;
        let secret = self.client_secret();
        let mut request = http
            .post(discovered.endpoints.token.clone())
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(grant);
            match discovered.endpoints.token_auth {
                TokenAuth::Basic => {
                    // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
                    let id: String =
                        url::form_urlencoded::byte_serialize(self.config.client_id.as_bytes())
                            .collect();
                    let pw: String =
                        url::form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
                    let basic = STANDARD.encode(format!("{id}:{pw}"));
                    let mut value = HeaderValue::from_str(&format!("Basic {basic}"))
                        .map_err(|_| ExchangeError::Transport("client credentials"))?;
                    value.set_sensitive(true);
                    request = request.header(http::header::AUTHORIZATION, value);
                }
                TokenAuth::Post => {
                    form.append_pair("client_id", &self.config.client_id)
                        .append_pair("client_secret", secret.expose());
                }
            }
            form.finish()
        };
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| ExchangeError::Transport(transport_kind(&e)))?;
        let status = response.status();
        let body = read_limited(response)
            .await
            .map_err(|e| ExchangeError::Transport(transport_kind(&e)))?
            .ok_or(ExchangeError::Unreadable)?;
        if !status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(sanitize_code))
                .unwrap_or_else(|| "unknown".to_owned());
            return Err(ExchangeError::Refused {
                status: status.as_u16(),
                error,
            });
        }
        serde_json::from_slice::<TokenResponse>(&body).map_err(|_| ExchangeError::Unreadable)
    }
}

/// Keeps an IdP-supplied error code printable and bounded: `[a-z0-9_]`, at most 40 characters.
pub fn sanitize_code(code: &str) -> String {
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect::<String>()
        .to_ascii_lowercase();
    if clean.is_empty() {
        "unknown".to_owned()
    } else {
        clean
    }
}

fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    }
}

/// Reads a response body up to [`MAX_RESPONSE_BYTES`]; `None` when larger.
async fn read_limited(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Transport error of the `openidconnect` adapter.
#[derive(Debug, thiserror::Error)]
pub enum OidcHttpError {
    /// reqwest failed.
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    /// The request could not be built.
    #[error("invalid request: {0}")]
    Build(#[from] http::Error),
    /// Response over the size limit.
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// `openidconnect`'s HTTP client: our single reqwest client behind its `AsyncHttpClient` trait.
struct OidcClient(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for OidcClient {
    type Error = OidcHttpError;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<openidconnect::HttpResponse, OidcHttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(oidc_http(self.0.clone(), request))
    }
}

async fn oidc_http(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, OidcHttpError> {
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string();
    let response = http
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = http::Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        headers.extend(
            response
                .headers()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    let body = read_limited(response)
        .await?
        .ok_or(OidcHttpError::TooLarge)?;
    Ok(builder.body(body)?)
}

fn discovery_message<E: std::error::Error>(e: &openidconnect::DiscoveryError<E>) -> String {
    use openidconnect::DiscoveryError as D;
    match e {
        D::Request(inner) => format!("request failed: {inner}"),
        D::Response(status, _, message) => format!("HTTP {status}: {message}"),
        D::Parse(inner) => format!("invalid discovery document: {inner}"),
        D::Validation(message) => message.clone(),
        D::UrlParse(inner) => format!("bad URL: {inner}"),
        D::Other(message) => message.clone(),
        _ => "unknown error".to_owned(),
    }
}

/// Discovers `provider` in the background until it succeeds (backoff 1 s … 60 s), then refreshes its
/// keys every hour.
pub async fn run_discovery(
    provider: Arc<Provider>,
    http: reqwest::Client,
    on_ready: impl Fn(&str) + Send + 'static,
) {
    let mut delay = Duration::from_secs(1);
    loop {
        match provider.discover(&http, KEY_REFETCH_INTERVAL).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(provider = %provider.id(), error = %e, retry_in = ?delay, "provider discovery failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
    on_ready(provider.id());
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Some(d) = provider.discovered()
            && let Err(e) = d.jwks.refresh().await
        {
            tracing::warn!(provider = %provider.id(), error = %e, "periodic JWKS refresh failed; keeping the old keys");
        }
    }
}

/// At most one JWKS refetch per this interval for unknown key ids.
pub const KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The enabled sign-in methods: the OIDC providers in configuration order (what this derefs
/// to), or SAML.
#[derive(Debug, Default)]
pub struct Providers {
    oidc: Vec<Arc<Provider>>,
    saml: Option<Arc<SamlProvider>>,
}

impl Providers {
    /// The sign-in methods `config` enables: its OIDC providers, or SAML. No network access.
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            oidc: config
                .providers
                .iter()
                .cloned()
                .map(|p| {
                    // Under SCIM, Entra ID pushes the object id as `externalId`; its `sub`
                    // differs per app, so sign-ins name the person by `oid`.
                    let by_oid = config.user_provisioning == gatehouse_crds::ProvisioningMode::Scim
                        && p.kind == crate::config::ProviderKind::Entra;
                    let mut provider = Provider::new(p);
                    if by_oid {
                        provider.identity =
                            provider.identity.with_subject_claim(Some(OBJECT_ID_CLAIM));
                    }
                    Arc::new(provider)
                })
                .collect(),
            saml: config.saml.clone().map(|s| Arc::new(SamlProvider::new(s))),
        }
    }

    /// An OIDC provider by id.
    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.oidc.iter().find(|p| p.id() == id)
    }

    /// SAML, when it is the active protocol.
    pub fn saml(&self) -> Option<&Arc<SamlProvider>> {
        self.saml.as_ref()
    }

    /// What the identity headers say about provider `id`, whatever its protocol.
    pub fn identity(&self, id: &str) -> Option<&ProviderIdentity> {
        self.get(id).map(|p| &p.identity).or_else(|| {
            self.saml
                .as_ref()
                .filter(|s| s.id() == id)
                .map(|s| &s.identity)
        })
    }

    /// Every sign-in method as `(id, button label)`, in order.
    pub fn methods(&self) -> impl Iterator<Item = (&str, &str)> {
        self.oidc
            .iter()
            .map(|p| (p.id(), p.config.display_name.as_str()))
            .chain(self.saml.iter().map(|s| (s.id(), SAML_LABEL)))
    }

    /// Whether every provider's discovery document and keys (or SAML's metadata) are loaded.
    pub fn are_ready(&self) -> bool {
        self.oidc.iter().all(|p| p.is_ready()) && self.saml.iter().all(|s| s.is_ready())
    }
}

/// Entra ID's object id claim: the person under SCIM provisioning.
pub const OBJECT_ID_CLAIM: &str = "oid";

/// Button label of SAML sign-in.
pub const SAML_LABEL: &str = "SAML";

impl std::ops::Deref for Providers {
    type Target = [Arc<Provider>];

    fn deref(&self) -> &[Arc<Provider>] {
        &self.oidc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idp_error_codes_are_sanitized() {
        assert_eq!(sanitize_code("invalid_grant"), "invalid_grant");
        assert_eq!(
            sanitize_code("<script>alert(1)</script>"),
            "scriptalert1script"
        );
        assert_eq!(sanitize_code(""), "unknown");
        assert_eq!(sanitize_code(&"a".repeat(100)).len(), 40);
    }
}
