//! SAML, configured by the `SAML_*` variables (the catalogue lists them, [`super::vars`]).

use gatehouse_crds::SamlUrls;
use gatehouse_crds::consts::LOGOUT_PATH;
use gatehouse_crds::saml_metadata::{IdpMetadata, parse_idp_metadata};

use super::env::{ConfigError, Env};
use super::parse::{check_https_or_loopback, role_policy};
use super::vars::{self, Variable};
use std::sync::Arc;

use gatehouse_auth::claims::RolePolicy;
use gatehouse_auth::saml::logout::SpSigningKey;
use gatehouse_auth::saml::verify::Algorithms;

/// Every SAML variable: any of them set enables SAML.
pub const PROTOCOL_VARIABLES_SAML: [Variable; 8] = [
    vars::SAML_IDP_METADATA_URL,
    vars::SAML_IDP_METADATA,
    vars::SAML_SP_ENTITY_ID,
    vars::SAML_ROLE_ATTRIBUTE,
    vars::SAML_ROLE_MAP,
    vars::SAML_DEFAULT_ROLE,
    vars::SAML_ORG_ID,
    vars::SAML_ALLOW_SHA1,
];

/// Where the IdP's metadata comes from.
#[derive(Debug, Clone)]
pub enum MetadataSource {
    /// Fetched from this URL, and refreshed.
    Url(url::Url),
    /// Given inline (already parsed at start-up).
    Inline(IdpMetadata),
}

/// SAML as configured.
#[derive(Debug, Clone)]
pub struct SamlConfig {
    /// The IdP's metadata.
    pub metadata: MetadataSource,
    /// Our entity ID (the audience of assertions).
    pub sp_entity_id: String,
    /// Our assertion consumer service URL.
    pub acs_url: String,
    /// Our single logout URL (the logout route).
    pub slo_url: String,
    /// Organisation id forwarded as `X-Forwarded-Org`.
    pub org_id: String,
    /// How the role is read from the attributes.
    pub roles: RolePolicy,
    /// The attribute holding the user's groups.
    pub groups_attribute: String,
    /// Signature and digest algorithms accepted (`SAML_ALLOW_SHA1`): SHA-2, and SHA-1 when
    /// allowed.
    pub algorithms: Algorithms,
    /// The SP's signing key (`SAML_SP_SIGNING_KEY`, `SAML_SP_SIGNING_CERT`), if configured.
    pub signing: Option<Arc<SpSigningKey>>,
}

impl SamlConfig {
    /// Reads the `SAML_*` variables; `None` when none is set.
    pub(crate) fn from_env(env: &Env<'_>, origin: &str) -> Result<Option<Self>, ConfigError> {
        if !PROTOCOL_VARIABLES_SAML.iter().any(|v| env.get(v).is_some()) {
            return Ok(None);
        }
        let metadata = match (
            env.get(&vars::SAML_IDP_METADATA_URL),
            env.get(&vars::SAML_IDP_METADATA),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    vars::SAML_IDP_METADATA.name,
                    "set SAML_IDP_METADATA_URL or SAML_IDP_METADATA, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    vars::SAML_IDP_METADATA_URL.name,
                    "missing; SAML needs the IdP's metadata: set SAML_IDP_METADATA_URL or SAML_IDP_METADATA",
                ));
            }
            (Some(raw), None) => {
                let url = url::Url::parse(&raw).map_err(|_| {
                    ConfigError::new(vars::SAML_IDP_METADATA_URL.name, "not an absolute URL")
                })?;
                check_https_or_loopback(vars::SAML_IDP_METADATA_URL.name, &url)?;
                MetadataSource::Url(url)
            }
            (None, Some(xml)) => MetadataSource::Inline(
                parse_idp_metadata(&xml)
                    .map_err(|e| ConfigError::new(vars::SAML_IDP_METADATA.name, e.to_string()))?,
            ),
        };
        let urls = SamlUrls::for_origin(origin, env.get(&vars::SAML_SP_ENTITY_ID).as_deref());
        let sp_entity_id = urls.entity_id;
        if !gatehouse_crds::rules::is_plain_text(&sp_entity_id) || sp_entity_id.len() > 1024 {
            return Err(ConfigError::new(
                vars::SAML_SP_ENTITY_ID.name,
                "must be 1-1024 characters without control characters or surrounding whitespace",
            ));
        }
        let org_id = env.required(&vars::SAML_ORG_ID, "SAML needs the organisation id")?;
        let groups_attribute = env.value_or_default(&vars::SAML_GROUPS_ATTRIBUTE)?;
        if !gatehouse_crds::rules::is_plain_text(&groups_attribute) {
            return Err(ConfigError::new(
                vars::SAML_GROUPS_ATTRIBUTE.name,
                gatehouse_crds::rules::MSG_PLAIN_TEXT,
            ));
        }
        let roles = role_policy(
            env,
            &vars::SAML_ROLE_ATTRIBUTE,
            &vars::SAML_ROLE_MAP,
            &vars::SAML_DEFAULT_ROLE,
        )?;
        let allow_sha1 = match env.value_or_default(&vars::SAML_ALLOW_SHA1)?.as_str() {
            "false" => false,
            "true" => true,
            _ => {
                return Err(ConfigError::new(
                    vars::SAML_ALLOW_SHA1.name,
                    "must be true or false (unset: false)",
                ));
            }
        };
        let signing = match (
            env.secret(&vars::SAML_SP_SIGNING_KEY)?,
            env.get(&vars::SAML_SP_SIGNING_CERT),
        ) {
            (None, None) => None,
            (Some(key), Some(certs)) => Some(Arc::new(
                SpSigningKey::from_pem(key.value.expose(), &certs)
                    .map_err(|problem| ConfigError::new(vars::SAML_SP_SIGNING_KEY.name, problem))?,
            )),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    vars::SAML_SP_SIGNING_CERT.name,
                    "missing; SAML_SP_SIGNING_KEY needs its certificate",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    vars::SAML_SP_SIGNING_KEY.name,
                    "missing; SAML_SP_SIGNING_CERT is set, but not the key it certifies",
                ));
            }
        };
        Ok(Some(Self {
            metadata,
            sp_entity_id,
            acs_url: urls.acs_url,
            slo_url: format!("{origin}{LOGOUT_PATH}"),
            org_id,
            roles,
            groups_attribute,
            algorithms: Algorithms { allow_sha1 },
            signing,
        }))
    }
}
