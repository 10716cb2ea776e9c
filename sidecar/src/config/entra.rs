//! Microsoft Entra ID: `ENTRA_CLIENT_ID`, `ENTRA_CLIENT_SECRET`, `ENTRA_TENANT_ID`, `ENTRA_ORG_ID`
//! (all four enable it). Issuer `https://login.microsoftonline.com/<tenant>/v2.0`, overridable by
//! `ENTRA_ISSUER` (sovereign clouds, tests). Role from `roles`.

use super::env::{ConfigError, Env, require_all};
use super::model::{GraphConfig, ProviderConfig, ProviderKind};
use super::parse::{check_https_or_loopback, groups_claim, parse_issuer};
use super::vars::{self, DEFAULT_ENTRA_ISSUER, Variable};
use gatehouse_auth::claims::RolePolicy;

const VARS: [Variable; 4] = [
    vars::ENTRA_CLIENT_ID,
    vars::ENTRA_CLIENT_SECRET,
    vars::ENTRA_TENANT_ID,
    vars::ENTRA_ORG_ID,
];

pub(crate) fn from_env(env: &Env<'_>) -> Result<Option<ProviderConfig>, ConfigError> {
    if !require_all(env, "Entra ID", &VARS)? {
        if env.get(&vars::ENTRA_ISSUER).is_some() {
            let names: Vec<&str> = VARS.iter().map(|v| v.name).collect();
            return Err(ConfigError::new(
                vars::ENTRA_TENANT_ID.name,
                format!(
                    "missing (ENTRA_ISSUER is set; Entra ID needs {})",
                    names.join(", ")
                ),
            ));
        }
        return Ok(None);
    }
    let why = "Entra ID needs all four ENTRA_* variables";
    let tenant = env.required(&vars::ENTRA_TENANT_ID, why)?;
    // The operator applies the same rule at apply time, with the same message.
    gatehouse_crds::rules::check_entra_tenant(&tenant)
        .map_err(|message| ConfigError::new(vars::ENTRA_TENANT_ID.name, message))?;
    let issuer = match env.get(&vars::ENTRA_ISSUER) {
        Some(issuer) => parse_issuer(&vars::ENTRA_ISSUER, &issuer)?,
        None => DEFAULT_ENTRA_ISSUER.replace("<tenant>", &tenant),
    };
    let graph = env.value_or_default(&vars::ENTRA_GRAPH_URL)?;
    let graph = url::Url::parse(&graph)
        .ok()
        .filter(|u| u.query().is_none() && u.fragment().is_none() && u.username().is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                vars::ENTRA_GRAPH_URL.name,
                "not an absolute URL without query, fragment or credentials",
            )
        })?;
    check_https_or_loopback(vars::ENTRA_GRAPH_URL.name, &graph)?;
    let application = match env.value_or_default(&vars::ENTRA_GROUP_OVERAGE)?.as_str() {
        "delegated" => false,
        "application" => true,
        _ => {
            return Err(ConfigError::new(
                vars::ENTRA_GROUP_OVERAGE.name,
                "must be `delegated` or `application`",
            ));
        }
    };
    Ok(Some(ProviderConfig {
        id: "entra".to_owned(),
        kind: ProviderKind::Entra,
        display_name: "Microsoft".to_owned(),
        issuer,
        client_id: env.required(&vars::ENTRA_CLIENT_ID, why)?,
        client_secret: env.required_secret(&vars::ENTRA_CLIENT_SECRET, why)?,
        org_id: env.required(&vars::ENTRA_ORG_ID, why)?,
        roles: RolePolicy::Entra,
        groups_claim: groups_claim(env, &vars::ENTRA_GROUPS_CLAIM)?,
        graph: Some(GraphConfig {
            url: graph,
            application,
        }),
    }))
}
