//! Microsoft Entra ID: `ENTRA_CLIENT_ID`, `ENTRA_CLIENT_SECRET`, `ENTRA_TENANT_ID`, `ENTRA_ORG_ID`
//! (all four enable it). Issuer `https://login.microsoftonline.com/<tenant>/v2.0`, overridable by
//! `ENTRA_ISSUER` (sovereign clouds, tests). Role from `roles`.

use super::env::{ConfigError, Env, require_all};
use super::model::{ProviderConfig, ProviderKind};
use super::parse::parse_issuer;
use gatehouse_auth::claims::RolePolicy;

const VARS: [&str; 4] = [
    "ENTRA_CLIENT_ID",
    "ENTRA_CLIENT_SECRET",
    "ENTRA_TENANT_ID",
    "ENTRA_ORG_ID",
];

pub(crate) fn from_env(env: &Env<'_>) -> Result<Option<ProviderConfig>, ConfigError> {
    if !require_all(env, "Entra ID", &VARS)? {
        if env.get("ENTRA_ISSUER").is_some() {
            return Err(ConfigError {
                var: "ENTRA_TENANT_ID".to_owned(),
                problem: format!(
                    "missing (ENTRA_ISSUER is set; Entra ID needs {})",
                    VARS.join(", ")
                ),
            });
        }
        return Ok(None);
    }
    let why = "Entra ID needs all four ENTRA_* variables";
    let tenant = env.required("ENTRA_TENANT_ID", why)?;
    // The operator applies the same rule at apply time, with the same message.
    gatehouse_crds::rules::check_entra_tenant(&tenant).map_err(|message| ConfigError {
        var: "ENTRA_TENANT_ID".to_owned(),
        problem: message.to_owned(),
    })?;
    let issuer = match env.get("ENTRA_ISSUER") {
        Some(issuer) => parse_issuer("ENTRA_ISSUER", &issuer)?,
        None => format!("https://login.microsoftonline.com/{tenant}/v2.0"),
    };
    Ok(Some(ProviderConfig {
        id: "entra".to_owned(),
        kind: ProviderKind::Entra,
        display_name: "Microsoft".to_owned(),
        issuer,
        client_id: env.required("ENTRA_CLIENT_ID", why)?,
        client_secret: env.required_secret("ENTRA_CLIENT_SECRET", why)?,
        org_id: env.required("ENTRA_ORG_ID", why)?,
        roles: RolePolicy::Entra,
    }))
}
