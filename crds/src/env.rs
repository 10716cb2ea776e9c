//! The sidecar's environment contract: the variables the operator renders and the sidecar reads.
//!
//! Provider variables follow the published superglue names exactly, so an IdP setup made for it
//! carries over. Every secret may also be given as a file through `<NAME>_FILE`.

pub const OKTA_CLIENT_ID: &str = "OKTA_CLIENT_ID";
pub const OKTA_CLIENT_SECRET: &str = "OKTA_CLIENT_SECRET";
pub const OKTA_ISSUER: &str = "OKTA_ISSUER";
pub const OKTA_ORG_ID: &str = "OKTA_ORG_ID";
/// Claim holding the user's groups (`spec.providers.okta.groupsClaim`); unset: `groups`.
pub const OKTA_GROUPS_CLAIM: &str = "OKTA_GROUPS_CLAIM";

pub const ENTRA_CLIENT_ID: &str = "ENTRA_CLIENT_ID";
pub const ENTRA_CLIENT_SECRET: &str = "ENTRA_CLIENT_SECRET";
pub const ENTRA_TENANT_ID: &str = "ENTRA_TENANT_ID";
pub const ENTRA_ORG_ID: &str = "ENTRA_ORG_ID";
pub const ENTRA_ISSUER: &str = "ENTRA_ISSUER";
pub const ENTRA_GROUPS_CLAIM: &str = "ENTRA_GROUPS_CLAIM";
/// Microsoft Graph base URL, where a group overage's groups are read
/// (`spec.providers.entra.graphUrl`); unset: `https://graph.microsoft.com`.
pub const ENTRA_GRAPH_URL: &str = "ENTRA_GRAPH_URL";
/// Whose token reads a group overage's groups from Graph: `delegated` (the sign-in's access
/// token, the default) or `application` (the app's own, client credentials).
pub const ENTRA_GROUP_OVERAGE: &str = "ENTRA_GROUP_OVERAGE";

pub const OIDC_PROVIDER_ID: &str = "OIDC_PROVIDER_ID";
pub const OIDC_PROVIDER_NAME: &str = "OIDC_PROVIDER_NAME";
pub const OIDC_CLIENT_ID: &str = "OIDC_CLIENT_ID";
pub const OIDC_CLIENT_SECRET: &str = "OIDC_CLIENT_SECRET";
pub const OIDC_ISSUER: &str = "OIDC_ISSUER";
pub const OIDC_ORG_ID: &str = "OIDC_ORG_ID";
pub const OIDC_ROLE_CLAIM: &str = "OIDC_ROLE_CLAIM";
pub const OIDC_ROLE_MAP: &str = "OIDC_ROLE_MAP";
pub const OIDC_DEFAULT_ROLE: &str = "OIDC_DEFAULT_ROLE";
pub const OIDC_GROUPS_CLAIM: &str = "OIDC_GROUPS_CLAIM";

pub const SAML_IDP_METADATA_URL: &str = "SAML_IDP_METADATA_URL";
pub const SAML_IDP_METADATA: &str = "SAML_IDP_METADATA";
pub const SAML_SP_ENTITY_ID: &str = "SAML_SP_ENTITY_ID";
pub const SAML_ROLE_ATTRIBUTE: &str = "SAML_ROLE_ATTRIBUTE";
pub const SAML_ROLE_MAP: &str = "SAML_ROLE_MAP";
pub const SAML_ORG_ID: &str = "SAML_ORG_ID";
/// Attribute holding the user's groups (`spec.saml.groupsAttribute`); unset: `groups`.
pub const SAML_GROUPS_ATTRIBUTE: &str = "SAML_GROUPS_ATTRIBUTE";
/// Role of SAML users who match no `SAML_ROLE_MAP` rule (`spec.saml.defaultRole`); unset denies them.
pub const SAML_DEFAULT_ROLE: &str = "SAML_DEFAULT_ROLE";
/// `true`: also accept RSA-SHA1 signatures and SHA-1 digests (`spec.saml.allowSha1`); unset or
/// `false`: SHA-2 only. Rendered only when on.
pub const SAML_ALLOW_SHA1: &str = "SAML_ALLOW_SHA1";
/// The SP's own signing key (PEM, PKCS#8 RSA): signs its LogoutResponses to the IdP's single
/// logout. Generated and rotated by the operator.
pub const SAML_SP_SIGNING_KEY: &str = "SAML_SP_SIGNING_KEY";
/// The certificates of the SP's signing key (PEM): the key's own first, then the one it rotates
/// from or to; all published in the SP metadata.
pub const SAML_SP_SIGNING_CERT: &str = "SAML_SP_SIGNING_CERT";

pub const AUTH_EXCLUSIVE_PROVIDER: &str = "AUTH_EXCLUSIVE_PROVIDER";

pub const GATEHOUSE_UPSTREAM: &str = "GATEHOUSE_UPSTREAM";
pub const GATEHOUSE_LISTEN: &str = "GATEHOUSE_LISTEN";
pub const GATEHOUSE_ADMIN_LISTEN: &str = "GATEHOUSE_ADMIN_LISTEN";
pub const GATEHOUSE_PUBLIC_URL: &str = "GATEHOUSE_PUBLIC_URL";
pub const GATEHOUSE_COOKIE_SECRET: &str = "GATEHOUSE_COOKIE_SECRET";
pub const GATEHOUSE_SESSION_TTL: &str = "GATEHOUSE_SESSION_TTL";
pub const GATEHOUSE_CONFIG: &str = "GATEHOUSE_CONFIG";
pub const GATEHOUSE_CONFIG_UID: &str = "GATEHOUSE_CONFIG_UID";
pub const GATEHOUSE_NAMESPACE: &str = "GATEHOUSE_NAMESPACE";
pub const GATEHOUSE_PROVISIONING: &str = "GATEHOUSE_PROVISIONING";
pub const GATEHOUSE_PROVISIONING_MODE: &str = "GATEHOUSE_PROVISIONING_MODE";
/// The bearer token the identity provider sends to the SCIM endpoint
/// (`provisioning.mode: scim`; key `token` of `provisioning.scim.tokenSecretRef`).
pub const SCIM_TOKEN: &str = "SCIM_TOKEN";
/// The token being rotated out, still accepted (key `previousToken`, when the Secret has it).
pub const SCIM_PREVIOUS_TOKEN: &str = "SCIM_PREVIOUS_TOKEN";
pub const GATEHOUSE_AUTH_MODE: &str = "GATEHOUSE_AUTH_MODE";
pub const GATEHOUSE_APP_LOGIN_PATH: &str = "GATEHOUSE_APP_LOGIN_PATH";
pub const GATEHOUSE_SKIP_AUTH: &str = "GATEHOUSE_SKIP_AUTH";
pub const GATEHOUSE_PROVISION_HOOK: &str = "GATEHOUSE_PROVISION_HOOK";
/// The access policy (`spec.access`) as JSON in the CRD's shape; unset: no per-request rules.
pub const GATEHOUSE_ACCESS: &str = "GATEHOUSE_ACCESS";
/// Machine clients' token issuers (`spec.machineAuth`) as JSON in the CRD's shape; unset: no
/// bearer token is a credential.
pub const GATEHOUSE_MACHINE_AUTH: &str = "GATEHOUSE_MACHINE_AUTH";
pub const GATEHOUSE_REVOCATION_STALENESS: &str = "GATEHOUSE_REVOCATION_STALENESS";
/// How often an OIDC session is re-validated at the IdP (`spec.session.revalidateInterval`);
/// unset: 15m; `0s`: never.
pub const GATEHOUSE_REVALIDATE_INTERVAL: &str = "GATEHOUSE_REVALIDATE_INTERVAL";
/// How long a due session is kept while the IdP cannot be reached
/// (`spec.session.revalidateGrace`); unset: 1h.
pub const GATEHOUSE_REVALIDATE_GRACE: &str = "GATEHOUSE_REVALIDATE_GRACE";
pub const GATEHOUSE_ATTRIBUTE_MAPPINGS: &str = "GATEHOUSE_ATTRIBUTE_MAPPINGS";
/// Largest request body sent on to the app (`spec.upstream.maxRequestBody`); unset: 64Mi.
pub const GATEHOUSE_MAX_REQUEST_BODY: &str = "GATEHOUSE_MAX_REQUEST_BODY";
/// Longest pause between two pieces of a request body (`spec.timeouts.requestBody`); unset: 60s.
pub const GATEHOUSE_REQUEST_BODY_TIMEOUT: &str = "GATEHOUSE_REQUEST_BODY_TIMEOUT";
/// Longest a response may wait for the client to read it (`spec.timeouts.send`); unset: 60s.
pub const GATEHOUSE_SEND_TIMEOUT: &str = "GATEHOUSE_SEND_TIMEOUT";
/// Longest wait for the app's response head (`spec.timeouts.upstreamResponse`); unset: no limit.
pub const GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT: &str = "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT";

/// Directory where the injected sidecar finds the env Secret mounted as files (set by injection,
/// not rendered into the Secret).
pub const GATEHOUSE_ENV_DIR: &str = "GATEHOUSE_ENV_DIR";

/// Every variable the operator may render into the env Secret.
pub const RENDERED_VARIABLES: &[&str] = &[
    OKTA_CLIENT_ID,
    OKTA_CLIENT_SECRET,
    OKTA_ISSUER,
    OKTA_ORG_ID,
    OKTA_GROUPS_CLAIM,
    ENTRA_CLIENT_ID,
    ENTRA_CLIENT_SECRET,
    ENTRA_TENANT_ID,
    ENTRA_ORG_ID,
    ENTRA_ISSUER,
    ENTRA_GROUPS_CLAIM,
    ENTRA_GRAPH_URL,
    ENTRA_GROUP_OVERAGE,
    OIDC_PROVIDER_ID,
    OIDC_PROVIDER_NAME,
    OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET,
    OIDC_ISSUER,
    OIDC_ORG_ID,
    OIDC_ROLE_CLAIM,
    OIDC_ROLE_MAP,
    OIDC_DEFAULT_ROLE,
    OIDC_GROUPS_CLAIM,
    SAML_IDP_METADATA_URL,
    SAML_IDP_METADATA,
    SAML_SP_ENTITY_ID,
    SAML_ROLE_ATTRIBUTE,
    SAML_ROLE_MAP,
    SAML_ORG_ID,
    SAML_DEFAULT_ROLE,
    SAML_ALLOW_SHA1,
    SAML_GROUPS_ATTRIBUTE,
    SAML_SP_SIGNING_KEY,
    SAML_SP_SIGNING_CERT,
    AUTH_EXCLUSIVE_PROVIDER,
    GATEHOUSE_UPSTREAM,
    GATEHOUSE_PUBLIC_URL,
    GATEHOUSE_COOKIE_SECRET,
    GATEHOUSE_SESSION_TTL,
    GATEHOUSE_CONFIG,
    GATEHOUSE_CONFIG_UID,
    GATEHOUSE_NAMESPACE,
    GATEHOUSE_PROVISIONING,
    GATEHOUSE_PROVISIONING_MODE,
    SCIM_TOKEN,
    SCIM_PREVIOUS_TOKEN,
    GATEHOUSE_AUTH_MODE,
    GATEHOUSE_APP_LOGIN_PATH,
    GATEHOUSE_SKIP_AUTH,
    GATEHOUSE_PROVISION_HOOK,
    GATEHOUSE_ACCESS,
    GATEHOUSE_MACHINE_AUTH,
    GATEHOUSE_REVOCATION_STALENESS,
    GATEHOUSE_REVALIDATE_INTERVAL,
    GATEHOUSE_REVALIDATE_GRACE,
    GATEHOUSE_ATTRIBUTE_MAPPINGS,
    GATEHOUSE_MAX_REQUEST_BODY,
    GATEHOUSE_REQUEST_BODY_TIMEOUT,
    GATEHOUSE_SEND_TIMEOUT,
    GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT,
];

/// Variables whose values are secret: rendered into a Secret, redacted by `render`, never logged.
pub const SECRET_VARIABLES: &[&str] = &[
    OKTA_CLIENT_SECRET,
    ENTRA_CLIENT_SECRET,
    OIDC_CLIENT_SECRET,
    SAML_SP_SIGNING_KEY,
    SCIM_TOKEN,
    SCIM_PREVIOUS_TOKEN,
    GATEHOUSE_COOKIE_SECRET,
];

/// Whether the value of `name` must be treated as a secret (`OIDC_2_CLIENT_SECRET` too).
pub fn is_secret(name: &str) -> bool {
    let plain = oidc_slot_of(name).map_or(std::borrow::Cow::Borrowed(name), |(plain, _)| {
        std::borrow::Cow::Owned(plain)
    });
    SECRET_VARIABLES.contains(&plain.as_ref())
}

/// Most generic OIDC providers one SsoConfig may list (`spec.providers.oidc`), beside Okta and
/// Entra ID: at most 18 sign-in buttons in all.
pub const MAX_OIDC_PROVIDERS: usize = 16;

/// The variables each generic OIDC provider has its own copy of.
pub const OIDC_PROVIDER_VARIABLES: &[&str] = &[
    OIDC_PROVIDER_ID,
    OIDC_PROVIDER_NAME,
    OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET,
    OIDC_ISSUER,
    OIDC_ORG_ID,
    OIDC_ROLE_CLAIM,
    OIDC_ROLE_MAP,
    OIDC_DEFAULT_ROLE,
    OIDC_GROUPS_CLAIM,
];

/// The name of an `OIDC_*` variable for the generic provider in `slot` (1-based, in the order
/// `spec.providers.oidc` lists them): the first keeps the plain name, so a config with one
/// provider renders what it always did; provider n ≥ 2 inserts its number after `OIDC_`
/// (`OIDC_2_CLIENT_ID`).
pub fn oidc_slot_var(name: &str, slot: usize) -> String {
    debug_assert!(
        OIDC_PROVIDER_VARIABLES.contains(&name),
        "{name} is per provider"
    );
    match (slot, name.strip_prefix("OIDC_")) {
        (0 | 1, _) | (_, None) => name.to_owned(),
        (n, Some(rest)) => format!("OIDC_{n}_{rest}"),
    }
}

/// The plain name and slot of a numbered provider variable (`OIDC_2_CLIENT_ID` →
/// `("OIDC_CLIENT_ID", 2)`); `None` for any other name, plain `OIDC_*` ones included.
pub fn oidc_slot_of(name: &str) -> Option<(String, usize)> {
    let rest = name.strip_prefix("OIDC_")?;
    let (number, tail) = rest.split_once('_')?;
    let slot: usize = number.parse().ok()?;
    let plain = format!("OIDC_{tail}");
    ((2..=MAX_OIDC_PROVIDERS).contains(&slot)
        && number == slot.to_string()
        && OIDC_PROVIDER_VARIABLES.contains(&plain.as_str()))
    .then_some((plain, slot))
}

/// [`RENDERED_VARIABLES`] and the numbered copies of [`OIDC_PROVIDER_VARIABLES`] for providers 2
/// to [`MAX_OIDC_PROVIDERS`]: every name the operator may render.
pub fn all_rendered_variables() -> &'static [&'static str] {
    static NUMBERED: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        (2..=MAX_OIDC_PROVIDERS)
            .flat_map(|slot| {
                OIDC_PROVIDER_VARIABLES
                    .iter()
                    .map(move |name| oidc_slot_var(name, slot))
            })
            .collect()
    });
    static ALL: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        RENDERED_VARIABLES
            .iter()
            .copied()
            .chain(NUMBERED.iter().map(String::as_str))
            .collect()
    });
    &ALL
}

// Tests in their own file: they spell names that are no variables, and the sidecar's docs test
// reads this file for the contract's names.
#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
