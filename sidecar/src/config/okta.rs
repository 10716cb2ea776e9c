//! Okta, as superglue publishes it: `OKTA_CLIENT_ID`, `OKTA_CLIENT_SECRET`, `OKTA_ISSUER`,
//! `OKTA_ORG_ID` (all four enable it). Role from `userType` / `user_type`.

use super::env::{ConfigError, Env, require_all};
use super::model::{ProviderConfig, ProviderKind};
use super::parse::parse_issuer;
use gatehouse_auth::claims::RolePolicy;

const VARS: [&str; 4] = [
    "OKTA_CLIENT_ID",
    "OKTA_CLIENT_SECRET",
    "OKTA_ISSUER",
    "OKTA_ORG_ID",
];

pub(crate) fn from_env(env: &Env<'_>) -> Result<Option<ProviderConfig>, ConfigError> {
    if !require_all(env, "Okta", &VARS)? {
        return Ok(None);
    }
    let why = "Okta needs all four OKTA_* variables";
    Ok(Some(ProviderConfig {
        id: "okta".to_owned(),
        kind: ProviderKind::Okta,
        display_name: "Okta".to_owned(),
        issuer: parse_issuer("OKTA_ISSUER", &env.required("OKTA_ISSUER", why)?)?,
        client_id: env.required("OKTA_CLIENT_ID", why)?,
        client_secret: env.required_secret("OKTA_CLIENT_SECRET", why)?,
        org_id: env.required("OKTA_ORG_ID", why)?,
        roles: RolePolicy::Okta,
    }))
}
