//! SAML 2.0 sign-in: the IdP's metadata (loaded in the background, refreshed, last good copy
//! kept) and the replay guard. The SP's messages and response verification are
//! [`gatehouse_auth::saml`]'s.
//! Configuration (`SAML_*`) is read by [`crate::config`] (see `config::saml`).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use gatehouse_crds::consts::PROVIDER_SAML;
use gatehouse_crds::saml_metadata::{IdpMetadata, MAX_METADATA_BYTES, parse_idp_metadata};

pub use crate::config::{MetadataSource, SamlConfig};
use gatehouse_auth::collections::ExpiringSet;
use gatehouse_auth::identity::ProviderIdentity;

/// How often metadata from a URL is fetched again once loaded.
pub const METADATA_REFRESH: Duration = Duration::from_secs(3600);
/// Response and Assertion IDs remembered at once (per replica), against replay.
const USED_ID_CAPACITY: usize = 20_000;

/// What SP-initiated single logout needs to name the user's session at the IdP: kept sealed in
/// the logout hint cookie.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SamlLogoutHint {
    /// The NameID, as the IdP sent it.
    pub name_id: String,
    /// Its format.
    pub format: Option<String>,
    /// The IdP's session index.
    pub session_index: Option<String>,
}

/// Why metadata could not be loaded from its URL.
#[derive(Debug, thiserror::Error)]
pub enum MetadataFetchError {
    /// Transport failure or non-success status.
    #[error("fetching the IdP metadata failed")]
    Http(#[source] reqwest::Error),
    /// Larger than the metadata bound.
    #[error("the IdP metadata is larger than 1 MiB")]
    TooLarge,
    /// Not usable metadata.
    #[error(transparent)]
    Invalid(#[from] gatehouse_crds::saml_metadata::MetadataError),
}

/// SAML at run time: the configuration, the IdP's current metadata, and the IDs already used.
#[derive(Debug)]
pub struct SamlProvider {
    /// Configuration.
    pub config: SamlConfig,
    /// What the identity headers say about it.
    pub identity: ProviderIdentity,
    metadata: RwLock<Option<Arc<IdpMetadata>>>,
    /// Response and Assertion IDs already accepted, until they expire.
    pub used_ids: ExpiringSet,
}

impl SamlProvider {
    /// The provider; inline metadata makes it ready at once.
    pub fn new(config: SamlConfig) -> Self {
        let metadata = match &config.metadata {
            MetadataSource::Inline(m) => Some(Arc::new(m.clone())),
            MetadataSource::Url(_) => None,
        };
        Self {
            identity: ProviderIdentity::new(PROVIDER_SAML, &config.org_id)
                .with_groups_claim(&config.groups_attribute),
            config,
            metadata: RwLock::new(metadata),
            used_ids: ExpiringSet::new(USED_ID_CAPACITY),
        }
    }

    /// Provider id (`saml`).
    pub fn id(&self) -> &'static str {
        PROVIDER_SAML
    }

    /// The IdP's metadata, once loaded.
    pub fn metadata(&self) -> Option<Arc<IdpMetadata>> {
        match self.metadata.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the metadata is loaded.
    pub fn is_ready(&self) -> bool {
        self.metadata().is_some()
    }

    fn set_metadata(&self, metadata: IdpMetadata) {
        let metadata = Some(Arc::new(metadata));
        match self.metadata.write() {
            Ok(mut m) => *m = metadata,
            Err(poisoned) => *poisoned.into_inner() = metadata,
        }
    }

    /// Fetches and parses the metadata from its URL once.
    pub async fn fetch_metadata(
        &self,
        http: &reqwest::Client,
    ) -> Result<IdpMetadata, MetadataFetchError> {
        let MetadataSource::Url(url) = &self.config.metadata else {
            return self
                .metadata()
                .map(|m| (*m).clone())
                .ok_or(MetadataFetchError::TooLarge);
        };
        let mut response = http
            .get(url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(MetadataFetchError::Http)?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(MetadataFetchError::Http)? {
            if body.len() + chunk.len() > MAX_METADATA_BYTES {
                return Err(MetadataFetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        Ok(parse_idp_metadata(&text)?)
    }
}

/// Loads the metadata from its URL in the background: retried with backoff until it loads, then
/// refreshed every [`METADATA_REFRESH`]; a failed refresh keeps the last good copy.
pub async fn run_metadata(
    provider: Arc<SamlProvider>,
    http: reqwest::Client,
    on_ready: impl Fn(&str) + Send + 'static,
) {
    let MetadataSource::Url(url) = &provider.config.metadata else {
        on_ready(provider.id());
        return;
    };
    let mut backoff = Duration::from_millis(250);
    loop {
        match provider.fetch_metadata(&http).await {
            Ok(metadata) => {
                let first = !provider.is_ready();
                tracing::info!(
                    url = %url,
                    idp = %metadata.entity_id,
                    signing_certificates = metadata.signing_certs.len(),
                    "SAML IdP metadata loaded"
                );
                provider.set_metadata(metadata);
                if first {
                    on_ready(provider.id());
                }
                backoff = Duration::from_millis(250);
                tokio::time::sleep(METADATA_REFRESH).await;
            }
            Err(e) => {
                tracing::warn!(url = %url, error = %e, retry_in = ?backoff, kept_last_good = provider.is_ready(), "SAML IdP metadata could not be loaded");
                tokio::time::sleep(backoff).await;
                let ceiling = if provider.is_ready() {
                    METADATA_REFRESH
                } else {
                    Duration::from_secs(30)
                };
                backoff = (backoff * 2).min(ceiling);
            }
        }
    }
}
