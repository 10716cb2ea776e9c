//! Okta, as superglue publishes it: `OKTA_CLIENT_ID`, `OKTA_CLIENT_SECRET`, `OKTA_ISSUER`,
//! `OKTA_ORG_ID` (all four enable it). Role from `userType` / `user_type`.

use super::env::{ConfigError, Env, require_all};
use super::model::{ProviderConfig, ProviderKind};
use super::parse::{groups_claim, parse_issuer};
use super::vars::{self, Variable};
use gatehouse_auth::claims::RolePolicy;

const VARS: [Variable; 4] = [
    vars::OKTA_CLIENT_ID,
    vars::OKTA_CLIENT_SECRET,
    vars::OKTA_ISSUER,
    vars::OKTA_ORG_ID,
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
        issuer: parse_issuer(&vars::OKTA_ISSUER, &env.required(&vars::OKTA_ISSUER, why)?)?,
        client_id: env.required(&vars::OKTA_CLIENT_ID, why)?,
        client_secret: env.required_secret(&vars::OKTA_CLIENT_SECRET, why)?,
        org_id: env.required(&vars::OKTA_ORG_ID, why)?,
        roles: RolePolicy::Okta,
        groups_claim: groups_claim(env, &vars::OKTA_GROUPS_CLAIM)?,
        graph: None,
    }))
}
