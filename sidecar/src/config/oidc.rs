//! The generic OIDC providers (Auth0, Cognito, Google Workspace, Keycloak…), up to
//! [`MAX_OIDC_PROVIDERS`]. The first: `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`, `OIDC_ISSUER`,
//! `OIDC_ORG_ID` enable it; `OIDC_PROVIDER_ID` (path segment, default `oidc`), `OIDC_PROVIDER_NAME`
//! (button label), and the role variables `OIDC_ROLE_CLAIM`, `OIDC_ROLE_MAP`, `OIDC_DEFAULT_ROLE`.
//! Provider n ≥ 2 reads the same variables numbered (`OIDC_2_CLIENT_ID`…), its id required: the
//! operator renders the n-th entry of `spec.providers.oidc` so.

use gatehouse_crds::env::MAX_OIDC_PROVIDERS;

use super::env::{ConfigError, Env, require_all};
use super::model::{ProviderConfig, ProviderKind};
use super::parse::{claim_role_policy, groups_claim, parse_issuer};
use super::vars::{self, Variable, for_oidc_slot};

/// The four variables that enable generic provider `slot`.
fn enabling(slot: usize) -> [Variable; 4] {
    [
        vars::OIDC_CLIENT_ID,
        vars::OIDC_CLIENT_SECRET,
        vars::OIDC_ISSUER,
        vars::OIDC_ORG_ID,
    ]
    .map(|var| for_oidc_slot(var, slot))
}

/// Every variable that enables a generic provider, in any slot (for the one-protocol check).
pub(super) fn enabling_variables() -> impl Iterator<Item = Variable> {
    (1..=MAX_OIDC_PROVIDERS).flat_map(enabling)
}

/// The enabled generic providers, in slot order (the order of `spec.providers.oidc`). Slots may
/// be left empty; two providers with one id are refused, naming the second.
pub(crate) fn from_env(env: &Env<'_>) -> Result<Vec<ProviderConfig>, ConfigError> {
    let mut providers: Vec<(Variable, ProviderConfig)> = Vec::new();
    for slot in 1..=MAX_OIDC_PROVIDERS {
        let Some(provider) = slot_from_env(env, slot)? else {
            continue;
        };
        let id_var = for_oidc_slot(vars::OIDC_PROVIDER_ID, slot);
        if let Some((first, _)) = providers.iter().find(|(_, p)| p.id == provider.id) {
            return Err(ConfigError::new(
                id_var.name,
                format!(
                    "`{}` is already the id of another generic provider ({first}); each provider needs its own id, the path segment of its callback URL",
                    provider.id
                ),
            ));
        }
        providers.push((id_var, provider));
    }
    Ok(providers.into_iter().map(|(_, p)| p).collect())
}

fn slot_from_env(env: &Env<'_>, slot: usize) -> Result<Option<ProviderConfig>, ConfigError> {
    let label = match slot {
        1 => "the generic OIDC provider".to_owned(),
        n => format!("generic OIDC provider {n}"),
    };
    if !require_all(env, &label, &enabling(slot))? {
        return Ok(None);
    }
    let var = |var: Variable| for_oidc_slot(var, slot);
    let why = format!("{label} needs all four of its OIDC_* variables");
    let id_var = var(vars::OIDC_PROVIDER_ID);
    let id = if slot == 1 {
        env.value_or_default(&id_var)?
    } else {
        env.required(
            &id_var,
            &format!("{label} needs an id (the path segment of its callback URL)"),
        )?
    };
    // The operator applies the same rule (and reserved ids) at apply time.
    gatehouse_crds::rules::check_provider_id(&id)
        .map_err(|message| ConfigError::new(id_var.name, message))?;
    let name_var = var(vars::OIDC_PROVIDER_NAME);
    let display_name = env.get(&name_var).unwrap_or_else(|| id.clone());
    if display_name.chars().count() > 64 {
        return Err(ConfigError::new(
            name_var.name,
            "must be at most 64 characters",
        ));
    }
    let issuer_var = var(vars::OIDC_ISSUER);
    Ok(Some(ProviderConfig {
        kind: ProviderKind::Oidc,
        display_name,
        issuer: parse_issuer(&issuer_var, &env.required(&issuer_var, &why)?)?,
        client_id: env.required(&var(vars::OIDC_CLIENT_ID), &why)?,
        client_secret: env.required_secret(&var(vars::OIDC_CLIENT_SECRET), &why)?,
        org_id: env.required(&var(vars::OIDC_ORG_ID), &why)?,
        roles: claim_role_policy(env, slot)?,
        groups_claim: groups_claim(env, &var(vars::OIDC_GROUPS_CLAIM))?,
        graph: None,
        id,
    }))
}
