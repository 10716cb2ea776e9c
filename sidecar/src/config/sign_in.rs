//! Which sign-in methods are on: the OIDC providers (`okta`, `entra`, `oidc`) or SAML (`saml`),
//! never both, and the one offered alone (`AUTH_EXCLUSIVE_PROVIDER`).

use super::env::{ConfigError, Env};
use super::model::ProviderConfig;
use super::saml::{PROTOCOL_VARIABLES_SAML, SamlConfig};
use super::vars::{self, Variable};
use super::{entra, oidc, okta};

/// Variables that enable Okta or Entra ID (with [`oidc::enabling_variables`], any of them set
/// means OIDC is configured).
const PROTOCOL_VARIABLES_OKTA_ENTRA: [Variable; 9] = [
    vars::OKTA_CLIENT_ID,
    vars::OKTA_CLIENT_SECRET,
    vars::OKTA_ISSUER,
    vars::OKTA_ORG_ID,
    vars::ENTRA_CLIENT_ID,
    vars::ENTRA_CLIENT_SECRET,
    vars::ENTRA_TENANT_ID,
    vars::ENTRA_ORG_ID,
    vars::ENTRA_ISSUER,
];

/// One protocol at a time: a SAML variable and an OIDC one together are refused in one line
/// naming both. Checked before anything else.
pub(super) fn check_one_protocol(env: &Env<'_>) -> Result<(), ConfigError> {
    if let Some(saml_var) = PROTOCOL_VARIABLES_SAML
        .iter()
        .find(|v| env.get(v).is_some())
        && let Some(oidc_var) = PROTOCOL_VARIABLES_OKTA_ENTRA
            .into_iter()
            .chain(oidc::enabling_variables())
            .find(|v| env.is_set(v))
    {
        return Err(ConfigError::new(
            saml_var.name,
            format!(
                "SAML and OIDC cannot be active together ({oidc_var} is also set); configure one protocol: the SAML_* or the OKTA_*/ENTRA_*/OIDC_* variables"
            ),
        ));
    }
    Ok(())
}

/// The enabled sign-in methods.
#[derive(Debug)]
pub(super) struct SignIn {
    /// OIDC providers, in the order okta, entra, the generic ones.
    pub(super) providers: Vec<ProviderConfig>,
    /// SAML, when it is the active protocol.
    pub(super) saml: Option<SamlConfig>,
    /// The only method offered, if set.
    pub(super) exclusive_provider: Option<String>,
}

/// SAML (its service provider URLs under `public_url`), then Okta, Entra ID and the generic OIDC
/// provider; at least one method must be on. Then `AUTH_EXCLUSIVE_PROVIDER`, which must name one
/// of them.
pub(super) fn read_sign_in(env: &Env<'_>, public_url: &url::Url) -> Result<SignIn, ConfigError> {
    let origin = public_url.origin().ascii_serialization();
    let saml = SamlConfig::from_env(env, &origin)?;
    let mut providers = Vec::new();
    providers.extend(okta::from_env(env)?);
    providers.extend(entra::from_env(env)?);
    providers.extend(oidc::from_env(env)?);
    if providers.is_empty() && saml.is_none() {
        return Err(ConfigError::new(
            vars::OKTA_ISSUER.name,
            "no sign-in provider is configured: set the OKTA_*, ENTRA_* or OIDC_* variables, or the SAML_* variables",
        ));
    }
    let mut enabled: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
    if saml.is_some() {
        enabled.push(gatehouse_crds::consts::PROVIDER_SAML);
    }

    let exclusive_provider = env.get(&vars::AUTH_EXCLUSIVE_PROVIDER);
    if let Some(id) = &exclusive_provider
        && !enabled.contains(&id.as_str())
    {
        return Err(ConfigError::new(
            vars::AUTH_EXCLUSIVE_PROVIDER.name,
            format!("not an enabled provider (enabled: {})", enabled.join(", ")),
        ));
    }
    Ok(SignIn {
        providers,
        saml,
        exclusive_provider,
    })
}
