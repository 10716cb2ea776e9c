//! One generic OIDC provider (Auth0, Cognito, Google Workspace, Keycloak…): `OIDC_CLIENT_ID`,
//! `OIDC_CLIENT_SECRET`, `OIDC_ISSUER`, `OIDC_ORG_ID` enable it; `OIDC_PROVIDER_ID` (path segment,
//! default `oidc`), `OIDC_PROVIDER_NAME` (button label), and the role variables `OIDC_ROLE_CLAIM`,
//! `OIDC_ROLE_MAP`, `OIDC_DEFAULT_ROLE`.

use super::env::{ConfigError, Env, require_all};
use super::model::{ProviderConfig, ProviderKind};
use super::parse::{claim_role_policy, groups_claim, parse_issuer};
use super::vars::{self, Variable};

const VARS: [Variable; 4] = [
    vars::OIDC_CLIENT_ID,
    vars::OIDC_CLIENT_SECRET,
    vars::OIDC_ISSUER,
    vars::OIDC_ORG_ID,
];

pub(crate) fn from_env(env: &Env<'_>) -> Result<Option<ProviderConfig>, ConfigError> {
    if !require_all(env, "the generic OIDC provider", &VARS)? {
        return Ok(None);
    }
    let why = "the generic OIDC provider needs all four OIDC_* variables";
    let id = env.value_or_default(&vars::OIDC_PROVIDER_ID)?;
    // The operator applies the same rule (and reserved ids) at apply time.
    gatehouse_crds::rules::check_provider_id(&id)
        .map_err(|message| ConfigError::new(vars::OIDC_PROVIDER_ID.name, message))?;
    let display_name = env
        .get(&vars::OIDC_PROVIDER_NAME)
        .unwrap_or_else(|| id.clone());
    if display_name.chars().count() > 64 {
        return Err(ConfigError::new(
            vars::OIDC_PROVIDER_NAME.name,
            "must be at most 64 characters",
        ));
    }
    Ok(Some(ProviderConfig {
        kind: ProviderKind::Oidc,
        display_name,
        issuer: parse_issuer(&vars::OIDC_ISSUER, &env.required(&vars::OIDC_ISSUER, why)?)?,
        client_id: env.required(&vars::OIDC_CLIENT_ID, why)?,
        client_secret: env.required_secret(&vars::OIDC_CLIENT_SECRET, why)?,
        org_id: env.required(&vars::OIDC_ORG_ID, why)?,
        roles: claim_role_policy(env)?,
        groups_claim: groups_claim(env, &vars::OIDC_GROUPS_CLAIM)?,
        graph: None,
        id,
    }))
}
