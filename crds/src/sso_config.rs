//! `SsoConfig`: single sign-on for one application, declared by its platform team.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;

/// CEL: the issuer in `field` is https, or plain http to a loopback host with
/// `allowInsecureHttp: true` (as [`rules::check_issuer`] and the operator's validation decide).
fn cel_issuer_scheme(field: &str) -> String {
    format!(
        "{field}.startsWith('https://') || (has(self.allowInsecureHttp) && self.allowInsecureHttp && {field}.matches('^http://(localhost|127[.]0[.]0[.]1|\\\\[::1\\\\])(:[0-9]+)?([/?#].*)?$'))"
    )
}

/// CEL: `self` is a path [`rules::is_route_path`] accepts.
fn cel_route_path_of_self() -> String {
    rules::CEL_ROUTE_PATH.replace("p.matches", "self.matches")
}

/// Single sign-on for one application: which identity provider(s) users sign in with, how their
/// claims become roles, and how the injected auth sidecar behaves. Pods labelled
/// `gatehouse.dev/inject: <name>` get the sidecar.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "gatehouse.dev",
    version = "v1alpha2",
    kind = "SsoConfig",
    plural = "ssoconfigs",
    shortname = "sso",
    namespaced,
    status = "SsoConfigStatus",
    derive = "Default",
    printcolumn = r#"{"name":"Protocol","type":"string","jsonPath":".spec.protocol"}"#,
    printcolumn = r#"{"name":"Public URL","type":"string","jsonPath":".spec.publicUrl"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Users","type":"integer","jsonPath":".status.users"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.protocol != 'oidc' || (has(self.providers) && (has(self.providers.okta) || has(self.providers.entra) || (has(self.providers.oidc) && size(self.providers.oidc) > 0)))")
        .message(rules::MSG_OIDC_NEEDS_PROVIDER),
    validation = Rule::new("self.protocol != 'saml' || has(self.saml)")
        .message("protocol saml needs spec.saml"),
    validation = Rule::new("!has(self.exclusiveProvider) || (self.protocol == 'oidc' && has(self.providers) && ((self.exclusiveProvider == 'okta' && has(self.providers.okta)) || (self.exclusiveProvider == 'entra' && has(self.providers.entra)) || (has(self.providers.oidc) && self.providers.oidc.exists(p, p.id == self.exclusiveProvider))))")
        .message(rules::MSG_EXCLUSIVE_PROVIDER),
    validation = Rule::new("self.publicUrl.startsWith('https://') || (has(self.allowInsecureHttp) && self.allowInsecureHttp && self.publicUrl.startsWith('http://'))")
        .message("publicUrl must use https; set allowInsecureHttp: true to use plain http for local development"),
    validation = Rule::new(format!(
        "!has(self.providers) || ((!has(self.providers.okta) || {okta}) && (!has(self.providers.entra) || !has(self.providers.entra.issuer) || {entra}) && (!has(self.providers.oidc) || self.providers.oidc.all(p, {oidc})))",
        okta = cel_issuer_scheme("self.providers.okta.issuer"),
        entra = cel_issuer_scheme("self.providers.entra.issuer"),
        oidc = cel_issuer_scheme("p.issuer"),
    ))
        .message(rules::MSG_ISSUER_HTTPS),
    validation = Rule::new(format!(
        "!has(self.machineAuth) || !has(self.machineAuth.issuers) || self.machineAuth.issuers.all(m, ({issuer}) && (!has(m.jwksUri) || ({jwks})))",
        issuer = cel_issuer_scheme("m.issuer"),
        jwks = cel_issuer_scheme("m.jwksUri"),
    ))
        .message(rules::MSG_ISSUER_HTTPS),
    validation = Rule::new("!has(self.upstream) || !has(self.upstream.port) || (self.upstream.port != 4180 && self.upstream.port != 9090)")
        .message("upstream.port must not be 4180 or 9090: the sidecar listens there"),
    // No fieldPath: the chart supports Kubernetes 1.27, whose CRD schema lacks it (the message
    // names the field).
    validation = Rule::new(rules::delete_after_inactive_ttl_cel())
        .message(rules::MSG_DELETE_AFTER_INACTIVE_TTL),
    validation = Rule::new(rules::scim_one_provider_cel())
        .message(rules::MSG_SCIM_ONE_PROVIDER)
)]
pub struct SsoConfigSpec {
    /// Sign-in protocol: `oidc` or `saml`. Exactly one is active; the block of the other may stay
    /// in the object but is never rendered ("enabling one disables the other").
    pub protocol: Protocol,

    /// The URL users reach the application at (scheme and host, optionally a port; no path).
    /// Callback URLs registered at the IdP derive from it.
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getEscapedPath() in ['', '/'] && url(self).getQuery().size() == 0")
        .message("publicUrl must be an absolute URL with no path or query, such as https://portal.example.com"))]
    #[schemars(length(max = 2048))]
    pub public_url: String,

    /// Allow plain `http` for `publicUrl` and issuers. For local development only: session
    /// cookies then lose the `Secure` flag and the `__Host-` prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,

    /// Offer only this provider (`okta`, `entra`, or the id of one of the generic providers);
    /// users go straight to it. `/login?providers=all` shows every method again (break-glass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_provider: Option<String>,

    /// `required`: every path needs a session (except `skipAuth`). `optional`: requests without a
    /// session still reach the app, identity headers stripped, so the app's own sign-in keeps
    /// working and SSO only adds a login option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<AuthMode>,

    /// OIDC identity providers. Used when `protocol` is `oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub providers: Option<Providers>,

    /// SAML identity provider. Used when `protocol` is `saml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlSpec>,

    /// ID-token claim (or SAML attribute) → key in the SsoUser's `status.attributes`, copied at
    /// every sign-in. Keys are claim names (dotted paths reach nested claims).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$') && self[k].matches('^[A-Za-z_][A-Za-z0-9_.-]{0,62}$') && self.exists_one(j, self[j] == self[k]))")
        .message(rules::MSG_ATTRIBUTE_MAPPINGS))]
    pub attribute_mappings: BTreeMap<String, String>,

    /// How users become SsoUsers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<ProvisioningSpec>,

    /// Session settings: lifetime, cookie keys, and how long sessions outlive a broken watch
    /// of SsoUsers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionSpec>,

    /// The application behind the sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamSpec>,

    /// Timeouts of the sidecar's HTTP exchanges with clients and with the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<TimeoutsSpec>,

    /// Path prefixes that pass without a session (health checks, public assets). Matched on the
    /// normalized path the sidecar forwards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 256)))]
    #[x_kube(validation = Rule::new(format!(
        "self.all(p, {} && p != '/' && p != '/api/auth' && !p.startsWith('{}'))",
        rules::CEL_ROUTE_PATH,
        rules::AUTH_ROUTES_PREFIX
    ))
    .message(rules::MSG_SKIP_AUTH))]
    pub skip_auth: Vec<String>,

    /// Path of the application's own login page. Linked from the login page (unless a provider is
    /// exclusive); with `authMode: optional` and an exclusive provider, requests for it go to that
    /// provider instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    #[x_kube(validation = Rule::new(format!(
        "{} && self != '{}' && self != '/api/auth' && !self.startsWith('{}')",
        cel_route_path_of_self(),
        crate::consts::LOGIN_PATH,
        rules::AUTH_ROUTES_PREFIX
    ))
    .message(rules::MSG_APP_LOGIN_PATH))]
    pub app_login_path: Option<String>,

    /// Overrides for the injected sidecar container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<SidecarSpec>,

    /// NetworkPolicy that admits traffic to injected pods only on the sidecar's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,

    /// Per-request authorization rules: which users reach which hosts, paths and methods.
    /// Unset: every user with a mapped role reaches every path. Set: each request is decided by
    /// the rules, default `Deny`. See `docs/access.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<crate::access::AccessSpec>,

    /// Machine clients: bearer tokens (`Authorization: Bearer`) from the issuers listed here
    /// admit requests as a machine principal. Unset: no bearer token is a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_auth: Option<crate::access::MachineAuthSpec>,
}

// Sign-in protocol (no doc comment: its text would replace the fields' in the CRD).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OpenID Connect (Okta, Entra ID, Auth0, Cognito, Google Workspace, Keycloak…).
    #[default]
    Oidc,
    /// SAML 2.0.
    Saml,
}

impl Protocol {
    /// Spelling used in manifests and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Oidc => "oidc",
            Protocol::Saml => "saml",
        }
    }
}

// Whether a request needs a session (no doc comment, as for `Protocol`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every path needs a session, except `skipAuth`.
    #[default]
    Required,
    /// A request without a session reaches the app with identity headers stripped.
    Optional,
}

impl AuthMode {
    /// Spelling used in manifests and in `GATEHOUSE_AUTH_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Required => "required",
            AuthMode::Optional => "optional",
        }
    }
}

/// OIDC identity providers; each one configured here gets a button on the login page.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct Providers {
    /// Okta. Role from the ID-token claim `userType` (or `user_type`): `admin` or `member`;
    /// anything else is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub okta: Option<OktaProvider>,
    /// Microsoft Entra ID. Role from the `roles` claim (app roles `admin`, `member`; admin wins);
    /// neither is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraProvider>,
    /// Generic OIDC providers (Auth0, AWS Cognito, Google Workspace, Keycloak…), at most 16, each
    /// with its own `id`; their buttons follow this order. (In `gatehouse.dev/v1alpha1` this was
    /// one provider object.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::env::MAX_OIDC_PROVIDERS))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.id == p.id))")
        .message(rules::MSG_DUPLICATE_PROVIDER_ID))]
    pub oidc: Vec<OidcProvider>,
}

/// Okta OIDC application.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct OktaProvider {
    /// Issuer URL of the Okta authorization server, such as `https://acme.okta.com`.
    #[x_kube(validation = Rule::new(rules::CEL_ISSUER).message(rules::MSG_ISSUER_URL))]
    #[schemars(length(max = 2048))]
    pub issuer: String,
    /// Organization id recorded on every user of this provider (`X-Forwarded-Org`).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(rules::CEL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub org_id: String,
    /// ID-token claim holding the user's groups (a claim name or dotted path; an array of
    /// strings, or one string). Default `groups`. Access rules match them, the SsoUser records
    /// them (`status.groups`), and the identity JWT carries those the rules name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(rules::CEL_CLAIM_NAME).message(rules::MSG_GROUPS_CLAIM))]
    pub groups_claim: Option<String>,
    /// Secret (in this namespace) holding the client id and client secret.
    pub client_secret_ref: ClientSecretRef,
}

/// Microsoft Entra ID app registration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct EntraProvider {
    /// Directory (tenant) id: a GUID or a verified domain. The multi-tenant aliases `common`,
    /// `organizations` and `consumers` are refused: they have no single issuer to check, and any
    /// tenant's administrators could grant their users Gatehouse roles.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(rules::CEL_TENANT_ID).message(rules::MSG_TENANT_ID))]
    pub tenant_id: String,
    /// Issuer override for sovereign clouds or tests. Default:
    /// `https://login.microsoftonline.com/<tenantId>/v2.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::CEL_ISSUER).message(rules::MSG_ISSUER_URL))]
    #[schemars(length(max = 2048))]
    pub issuer: Option<String>,
    /// Organization id recorded on every user of this provider.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(rules::CEL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub org_id: String,
    /// ID-token claim holding the user's groups (a claim name or dotted path; an array of
    /// strings, or one string). Default `groups`. Access rules match them, the SsoUser records
    /// them (`status.groups`), and the identity JWT carries those the rules name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(rules::CEL_CLAIM_NAME).message(rules::MSG_GROUPS_CLAIM))]
    pub groups_claim: Option<String>,
    /// Microsoft Graph, where the groups of a user in more groups than the ID token carries
    /// (group overage: no `groups` claim, `_claim_names.groups` instead) are read. Default
    /// `https://graph.microsoft.com`; national clouds `https://graph.microsoft.us`,
    /// `https://microsoftgraph.chinacloudapi.cn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::CEL_GRAPH_URL).message(rules::MSG_GRAPH_URL))]
    #[schemars(length(max = 2048))]
    pub graph_url: Option<String>,
    /// Whose token reads an overage user's groups from Graph. Default `Delegated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_overage: Option<GroupOverage>,
    /// Secret (in this namespace) holding the client id and client secret.
    pub client_secret_ref: ClientSecretRef,
}

// Whose token reads an Entra group overage's groups (no doc comment, as for `Protocol`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum GroupOverage {
    /// The sign-in's own access token, `/me/transitiveMemberOf` (delegated `User.Read` or
    /// `GroupMember.Read.All`).
    #[default]
    Delegated,
    /// The app's client-credentials token, `/users/{oid}/transitiveMemberOf` (application
    /// `GroupMember.Read.All`, admin consent).
    Application,
}

impl GroupOverage {
    /// Spelling in `ENTRA_GROUP_OVERAGE`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupOverage::Delegated => "delegated",
            GroupOverage::Application => "application",
        }
    }
}

/// A generic OIDC provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.roleMap) && size(self.roleMap) > 0) || has(self.defaultRole)")
    .message(rules::MSG_ROLE_MAP_OR_DEFAULT))]
pub struct OidcProvider {
    /// Provider id: the path segment of its callback URL and the `gatehouse.dev/provider` label.
    #[schemars(
        length(min = 1, max = 32),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new(format!("!(self in {:?})", rules::RESERVED_PROVIDER_IDS))
        .message(rules::MSG_RESERVED_ID))]
    pub id: String,
    /// Label of this provider's button on the login page.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new(rules::CEL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub display_name: String,
    /// Issuer URL; `<issuer>/.well-known/openid-configuration` must be reachable from the pod.
    #[x_kube(validation = Rule::new(rules::CEL_ISSUER).message(rules::MSG_ISSUER_URL))]
    #[schemars(length(max = 2048))]
    pub issuer: String,
    /// Organization id recorded on every user of this provider.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(rules::CEL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub org_id: String,
    /// ID-token claim holding the role source: a claim name or a dotted path; string or array.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new(rules::CEL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub role_claim: String,
    /// Claim value → role rules, tried in the order written: the first rule whose value the user
    /// has decides the role (list the admin rules first for admin to win). Matching is exact and
    /// case-sensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(o, o.value == r.value))")
        .message("roleMap values must be unique"))]
    #[schemars(length(max = 256))]
    pub role_map: Vec<RoleRule>,
    /// Role of users who match no rule. Unset: they are denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<Role>,
    /// ID-token claim holding the user's groups (a claim name or dotted path; an array of
    /// strings, or one string). Default `groups`. Access rules match them, the SsoUser records
    /// them (`status.groups`), and the identity JWT carries those the rules name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(rules::CEL_CLAIM_NAME).message(rules::MSG_GROUPS_CLAIM))]
    pub groups_claim: Option<String>,
    /// Secret (in this namespace) holding the client id and client secret.
    pub client_secret_ref: ClientSecretRef,
}

/// One claim-value → role rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct RoleRule {
    /// The claim value (exact, case-sensitive).
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new(rules::CEL_PLAIN_TEXT).message(rules::MSG_ROLE_VALUE))]
    pub value: String,
    /// The role it grants.
    pub role: Role,
}

// A Gatehouse role, sent to the app in `X-Forwarded-Groups` (no doc comment, as for `Protocol`).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full access.
    Admin,
    /// Regular access.
    Member,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 2] = [Role::Admin, Role::Member];

    /// Spelling used in manifests, role maps and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => crate::consts::ROLE_ADMIN,
            Role::Member => crate::consts::ROLE_MEMBER,
        }
    }

    /// Parse the exact, case-sensitive spelling.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Render role rules for `OIDC_ROLE_MAP` / `SAML_ROLE_MAP`: a JSON array of `{"value", "role"}`
/// objects, in order, so that any value survives (LDAP group DNs hold `,` and `=`).
pub fn role_map_env(rules: &[RoleRule]) -> String {
    // A Vec of plain strings and enums always serializes.
    serde_json::to_string(rules).unwrap_or_default()
}

/// Why a rendered role map could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleMapError {
    /// Not a JSON array of `{"value": …, "role": "admin"|"member"}`.
    Json(String),
    /// Entry `n` (1-based) of the `value=role,…` form has no `=`.
    NotAPair(usize),
    /// Entry `n` has an empty value.
    EmptyValue(usize),
    /// Entry `n` names a role other than `admin` or `member`.
    UnknownRole(usize),
    /// No rule at all.
    Empty,
}

impl std::fmt::Display for RoleMapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoleMapError::Json(e) => write!(
                f,
                "not a JSON array of {{\"value\": …, \"role\": \"admin\"|\"member\"}} ({e})"
            ),
            RoleMapError::NotAPair(n) => write!(f, "entry {n} is not `value=role`"),
            RoleMapError::EmptyValue(n) => write!(f, "entry {n} has an empty claim value"),
            RoleMapError::UnknownRole(n) => {
                write!(f, "entry {n}: role must be `admin` or `member`")
            }
            RoleMapError::Empty => f.write_str("has no rules"),
        }
    }
}

impl std::error::Error for RoleMapError {}

/// Read a role map as [`role_map_env`] renders it (a JSON array), or in the older
/// `value=role,…` form (values without `,`), which hand-written environments still use.
pub fn parse_role_map(text: &str) -> Result<Vec<RoleRule>, RoleMapError> {
    let text = text.trim();
    let rules = if text.starts_with('[') {
        let rules: Vec<RoleRule> =
            serde_json::from_str(text).map_err(|e| RoleMapError::Json(e.to_string()))?;
        if let Some(i) = rules.iter().position(|r| r.value.is_empty()) {
            return Err(RoleMapError::EmptyValue(i + 1));
        }
        rules
    } else {
        let mut rules = Vec::new();
        for (i, entry) in text.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (value, role) = entry
                .rsplit_once('=')
                .ok_or(RoleMapError::NotAPair(i + 1))?;
            let value = value.trim();
            if value.is_empty() {
                return Err(RoleMapError::EmptyValue(i + 1));
            }
            let role = Role::parse(role.trim()).ok_or(RoleMapError::UnknownRole(i + 1))?;
            rules.push(RoleRule {
                value: value.to_owned(),
                role,
            });
        }
        rules
    };
    if rules.is_empty() {
        return Err(RoleMapError::Empty);
    }
    Ok(rules)
}

/// SAML 2.0 identity provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.idpMetadataUrl) != has(self.idpMetadataSecretRef)")
    .message("set exactly one of idpMetadataUrl and idpMetadataSecretRef"))]
pub struct SamlSpec {
    /// URL of the IdP's SAML metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isURL(self) && self.startsWith('https://')").message("idpMetadataUrl must be an https URL"))]
    #[schemars(length(max = 2048))]
    pub idp_metadata_url: Option<String>,
    /// Secret (in this namespace) holding the IdP's metadata XML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_metadata_secret_ref: Option<SecretKeyRef>,
    /// Entity id of this service provider. Default: the SP metadata URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub sp_entity_id: Option<String>,
    /// Assertion attribute holding the role source (such as `memberOf`).
    #[schemars(length(min = 1, max = 256))]
    pub role_attribute: String,
    /// Attribute value → role rules, tried in the order written: the first rule whose value the user
    /// has decides the role (list the admin rules first for admin to win). Matching is exact and
    /// case-sensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(o, o.value == r.value))")
        .message("roleMap values must be unique"))]
    #[schemars(length(max = 256))]
    pub role_map: Vec<RoleRule>,
    /// Role of users who match no rule. Unset: they are denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<Role>,
    /// Organization id recorded on every user.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(rules::CEL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub org_id: String,
    /// Attribute (exact `Name`) holding the user's groups, one value per group. Default
    /// `groups`. Access rules match them and the SsoUser records them (`status.groups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new(rules::CEL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub groups_attribute: Option<String>,
    /// Also accept responses signed with RSA-SHA1 or carrying SHA-1 digests, for an identity
    /// provider that cannot sign with SHA-256. Insecure: SHA-1 is deprecated for XML signatures
    /// (collisions are practical). While true, the SsoConfig has the condition
    /// `InsecureAlgorithmsAllowed=True` and a Warning Event is recorded. Default false: such
    /// responses are refused (`saml_algorithm_refused`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_sha1: Option<bool>,
}

/// Reference to a Secret in the SsoConfig's own namespace holding an OAuth client's credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ClientSecretRef {
    /// Secret name (same namespace as the SsoConfig).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key holding the client id. Default `client-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub client_id_key: Option<String>,
    /// Key holding the client secret. Default `client-secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub client_secret_key: Option<String>,
    /// Not allowed: Secrets are always read from the SsoConfig's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("false").message("Secret references cannot name a namespace: the Secret must be in the SsoConfig's namespace"))]
    pub namespace: Option<String>,
}

impl ClientSecretRef {
    /// Key of the client id, with its default.
    pub fn client_id_key(&self) -> &str {
        self.client_id_key.as_deref().unwrap_or("client-id")
    }
    /// Key of the client secret, with its default.
    pub fn client_secret_key(&self) -> &str {
        self.client_secret_key.as_deref().unwrap_or("client-secret")
    }
}

/// Reference to one key of a Secret in the SsoConfig's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name (same namespace as the SsoConfig).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key within the Secret. Default: `cookie-secret` for `session.cookieSecretRef`,
    /// `metadata.xml` for `saml.idpMetadataSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
    /// Not allowed: Secrets are always read from the SsoConfig's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("false").message("Secret references cannot name a namespace: the Secret must be in the SsoConfig's namespace"))]
    pub namespace: Option<String>,
}

/// How users become SsoUsers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.mode) || self.mode != 'scim' || has(self.scim)")
        .message(rules::MSG_SCIM_NEEDS_TOKEN),
    validation = Rule::new("!has(self.scim) || (has(self.mode) && self.mode == 'scim')")
        .message(rules::MSG_SCIM_NEEDS_MODE)
)]
pub struct ProvisioningSpec {
    /// `jit`: every user the IdP admits with a permitted role becomes an SsoUser at sign-in.
    /// `preDeclared`: only users that already have an SsoUser (for example from Git) may sign in.
    /// `scim`: the identity provider pushes users over SCIM 2.0 (`status.scimUrl`, with the
    /// bearer token of `scim.tokenSecretRef`); only users it pushed or that are declared (for
    /// example from Git) may sign in, anyone else gets the no-access page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ProvisioningMode>,
    /// SCIM 2.0 provisioning, required by (and only allowed with) `mode: scim`. The users the
    /// identity provider pushes belong to one provider: the only one configured, or
    /// `exclusiveProvider` when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim: Option<ScimSpec>,
    /// Path on the app that receives the user as JSON (POST) at every sign-in, so it can create
    /// its own account on first login. A failing hook fails the sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    #[x_kube(validation = Rule::new(cel_route_path_of_self()).message(rules::MSG_HOOK_PATH))]
    pub hook_path: Option<String>,
    /// Delete SSO-created users the identity provider has not vouched for in this long (no
    /// sign-in and no re-validation of a session; `status.lastVouched`), a duration such as
    /// `2160h`: at least 1h, and at least `session.ttl` (default 12h), so that no session outlives
    /// its user. Unset: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1h')").message("deleteAfterInactive must be a duration of at least 1h, such as 2160h"))]
    pub delete_after_inactive: Option<String>,
}

// Provisioning mode (no doc comment, as for `Protocol`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProvisioningMode {
    /// Create the SsoUser at first sign-in.
    #[default]
    Jit,
    /// Only pre-declared SsoUsers may sign in.
    PreDeclared,
    /// Only users pushed by the identity provider over SCIM 2.0, or declared in Git, may sign in;
    /// anyone else gets the no-access page.
    Scim,
}

impl ProvisioningMode {
    /// Spelling used in manifests and in `GATEHOUSE_PROVISIONING_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningMode::Jit => "jit",
            ProvisioningMode::PreDeclared => "preDeclared",
            ProvisioningMode::Scim => "scim",
        }
    }
}

/// Key of the SCIM bearer token in the Secret `provisioning.scim.tokenSecretRef` names.
pub const SCIM_TOKEN_KEY: &str = "token";
/// Key of the token being rotated out (still accepted) in the same Secret; optional.
pub const SCIM_PREVIOUS_TOKEN_KEY: &str = "previousToken";

/// SCIM 2.0 provisioning: the identity provider (Okta, Entra ID) creates, updates, suspends and
/// deletes this config's SsoUsers at `status.scimUrl`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ScimSpec {
    /// Secret (in this namespace) holding the bearer token the identity provider sends: key
    /// `token` (at least 16 characters; generate one with `openssl rand -base64 32`), and
    /// optionally `previousToken`, still accepted while the identity provider is switched to the
    /// new one (rotation without downtime: move `token` to `previousToken`, write the new
    /// `token`, update the identity provider, then remove `previousToken`). The keys are fixed,
    /// not configurable, so that every rotation is the same steps.
    pub token_secret_ref: SecretNameRef,
}

/// Reference to a Secret in the SsoConfig's own namespace whose keys are fixed by the field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct SecretNameRef {
    /// Secret name (same namespace as the SsoConfig).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Not allowed: Secrets are always read from the SsoConfig's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("false").message("Secret references cannot name a namespace: the Secret must be in the SsoConfig's namespace"))]
    pub namespace: Option<String>,
}

impl SsoConfigSpec {
    /// The provisioning mode, `jit` when unset.
    pub fn provisioning_mode(&self) -> ProvisioningMode {
        self.provisioning
            .as_ref()
            .and_then(|p| p.mode)
            .unwrap_or_default()
    }

    /// In `scim` mode, the id of the provider the users pushed over SCIM sign in with: `saml`
    /// for the SAML protocol, else `exclusiveProvider`, else the only configured provider.
    /// `None` in any other mode, or when several providers leave it open (refused at apply time).
    pub fn scim_provider(&self) -> Option<String> {
        if self.provisioning_mode() != ProvisioningMode::Scim {
            return None;
        }
        match self.protocol {
            Protocol::Saml => Some(crate::consts::PROVIDER_SAML.to_owned()),
            Protocol::Oidc => {
                if let Some(exclusive) = &self.exclusive_provider {
                    return Some(exclusive.clone());
                }
                let p = self.providers.as_ref()?;
                let ids: Vec<String> = [
                    p.okta
                        .as_ref()
                        .map(|_| crate::consts::PROVIDER_OKTA.to_owned()),
                    p.entra
                        .as_ref()
                        .map(|_| crate::consts::PROVIDER_ENTRA.to_owned()),
                ]
                .into_iter()
                .flatten()
                .chain(p.oidc.iter().map(|o| o.id.clone()))
                .collect();
                match ids.as_slice() {
                    [only] => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }

    /// The SCIM service root `<publicUrl>/api/auth/scim/v2` in `scim` mode; `None` otherwise.
    pub fn scim_url(&self) -> Option<String> {
        (self.provisioning_mode() == ProvisioningMode::Scim).then(|| {
            format!(
                "{}{}",
                self.public_url.trim_end_matches('/'),
                crate::consts::SCIM_PATH
            )
        })
    }
}

/// Session settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct SessionSpec {
    /// Session lifetime, a duration such as `12h` (5m to 720h). Default `12h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5m') && duration(self) <= duration('720h')")
        .message("ttl must be a duration between 5m and 720h, such as 12h"))]
    pub ttl: Option<String>,
    /// Secret (in this namespace) holding the cookie keys: base64 32-byte keys, comma-separated;
    /// the first seals, all unseal. Unset: the operator generates one and never overwrites it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_secret_ref: Option<SecretKeyRef>,
    /// How long the sidecar's watch of SsoUsers may go without a sign of life (an event, a
    /// bookmark, an answered re-watch) before every session is refused and the sidecar reports
    /// not ready, a duration such as `5m` (1s to 24h). This bounds how long a deleted or
    /// suspended user keeps access while the API server is unreachable. Default `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new(rules::REVOCATION_STALENESS.cel()).message(rules::MSG_REVOCATION_STALENESS))]
    pub revocation_staleness: Option<String>,
    /// (OIDC) How often a session is re-validated at the IdP with the refresh token it gave at
    /// sign-in: a due session's next request is served at once and starts a refresh in the
    /// background; a refused refresh (user disabled, grant revoked) or a role the IdP no longer
    /// gives ends the session on every replica, a new role or attributes are applied. A
    /// duration such as `15m` (1s to 24h), or `0s` to never re-validate. Sessions whose IdP gave
    /// no refresh token, and SAML sessions, are not re-validated. When on, sign-in asks for
    /// `offline_access` where the provider offers it. Default `15m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new(rules::revalidate_interval_cel()).message(rules::MSG_REVALIDATE_INTERVAL))]
    pub revalidate_interval: Option<String>,
    /// (OIDC) How long a session due for re-validation is kept while the IdP cannot be reached
    /// (or answers with a server error), counted from the moment it became due; after that it is
    /// refused and the user signs in again. A duration such as `1h` (1s to 168h). Default `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new(rules::REVALIDATE_GRACE.cel()).message(rules::MSG_REVALIDATE_GRACE))]
    pub revalidate_grace: Option<String>,
}

/// Timeouts of the sidecar's HTTP exchanges, durations such as `60s` (1s to 1h each).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct TimeoutsSpec {
    /// Longest pause between two pieces of a request body; a stalled upload is answered 408 and
    /// its connection closed. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new(rules::IO_TIMEOUT.cel()).message(rules::MSG_REQUEST_BODY_TIMEOUT))]
    pub request_body: Option<String>,
    /// Longest a response may wait for the client to read it; a client that stops reading is
    /// disconnected. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new(rules::IO_TIMEOUT.cel()).message(rules::MSG_SEND_TIMEOUT))]
    pub send: Option<String>,
    /// Longest wait for the app's response head once a request is sent (as nginx's
    /// `proxy_read_timeout`); when it runs out the client gets 504. Unset (the default): no
    /// limit, so long polling and slow reports keep working; the client's own patience decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new(rules::IO_TIMEOUT.cel()).message(rules::MSG_UPSTREAM_RESPONSE_TIMEOUT))]
    pub upstream_response: Option<String>,
}

/// The application behind the sidecar.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSpec {
    /// Port the app listens on inside the pod (bind it to 127.0.0.1 where you can). Default 8080.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Largest request body the sidecar sends on to the app, a size such as `64Mi` (a whole
    /// number of `Ki`, `Mi` or `Gi`). A larger body is answered 413 and never reaches the app
    /// whole. Bodies are streamed, never buffered, whatever this is. Default `64Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[1-9][0-9]{0,5}(Ki|Mi|Gi)$')")
        .message("maxRequestBody must be a size such as 64Mi: a whole number of Ki, Mi or Gi"))]
    pub max_request_body: Option<String>,
}

/// Overrides for the injected sidecar container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    /// Sidecar image. Default: the operator's configured image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Compute resources of the sidecar container. Default: the operator's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Let pods choose their sidecar's image and ports with the annotations
    /// `gatehouse.dev/sidecar-image`, `gatehouse.dev/sidecar-port` and
    /// `gatehouse.dev/sidecar-admin-port`. Default false: a pod carrying one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_pod_overrides: Option<bool>,
    /// Restart the Deployments, StatefulSets and DaemonSets whose labelled pods run without the
    /// sidecar (created before the webhook was in place), so they come back injected. Default
    /// false: such pods are only reported (status condition and Event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_uninjected: Option<bool>,
}

/// NetworkPolicy settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Write a NetworkPolicy that admits traffic to injected pods only on the sidecar's port.
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Sources admitted to the sidecar's admin port (`gatehouse-admin`: `/metrics`, `/healthz`,
    /// `/readyz`), as NetworkPolicy `from` peers, such as the monitoring stack's namespace:
    /// `[{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]`.
    /// Empty (the default): no other pod reaches the admin port. Traffic from the pod's own node,
    /// such as the kubelet's probes, is always allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub admin_from: Vec<NetworkPolicyPeer>,
}

/// Observed state of an SsoConfig.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SsoConfigStatus {
    /// `Ready` summarizes; `SecretsResolved` and `Valid` say what is wrong and how to fix it.
    ///
    /// Keyed by `type`: each writer (field manager) applies only the conditions it owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The protocol the sidecar is rendered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_protocol: Option<Protocol>,
    /// Redirect (callback) URL to register at each OIDC provider, by provider id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub callback_urls: BTreeMap<String, String>,
    /// OIDC Back-Channel Logout URL (`backchannel_logout_uri`) to register at each OIDC
    /// provider, by provider id: a logout at the provider then ends the user's sessions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backchannel_logout_urls: BTreeMap<String, String>,
    /// SAML URLs to register at the IdP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlUrls>,
    /// SCIM 2.0 base URL to register at the identity provider (`provisioning.mode: scim` only),
    /// with the bearer token of `provisioning.scim.tokenSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_url: Option<String>,
    /// Name of the Secret holding the rendered sidecar environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_secret: Option<String>,
    /// Number of SsoUsers of this config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<i64>,
}

/// SAML URLs to register at the IdP.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SamlUrls {
    /// Assertion consumer service URL.
    pub acs_url: String,
    /// Service-provider metadata URL.
    pub metadata_url: String,
    /// Service-provider entity id.
    pub entity_id: String,
}

impl SamlUrls {
    /// The SP's URLs under `origin` (no trailing `/`); the entity ID defaults to the metadata
    /// URL. The operator publishes these in status and the sidecar serves and checks them.
    pub fn for_origin(origin: &str, sp_entity_id: Option<&str>) -> Self {
        let metadata_url = format!("{origin}{}", crate::consts::SAML_METADATA_PATH);
        Self {
            acs_url: format!("{origin}{}", crate::consts::SAML_ACS_PATH),
            entity_id: sp_entity_id.map_or_else(|| metadata_url.clone(), str::to_owned),
            metadata_url,
        }
    }
}

#[cfg(test)]
mod role_map_tests {
    use super::*;

    fn rule(value: &str, role: Role) -> RoleRule {
        RoleRule {
            value: value.to_owned(),
            role,
        }
    }

    #[test]
    fn any_value_survives_the_rendered_role_map() {
        let rules = vec![
            rule("cn=hr-admins,ou=groups,dc=example,dc=com", Role::Admin),
            rule("a=b", Role::Member),
            rule("x\"y\\z ü", Role::Member),
        ];
        let rendered = role_map_env(&rules);
        assert_eq!(parse_role_map(&rendered), Ok(rules));
    }

    #[test]
    fn the_older_form_is_still_read() {
        assert_eq!(
            parse_role_map("portal-admins=admin, portal-staff = member,"),
            Ok(vec![
                rule("portal-admins", Role::Admin),
                rule("portal-staff", Role::Member)
            ])
        );
        // `=` inside a value: the last one separates the role.
        assert_eq!(
            parse_role_map("cn=admins=admin"),
            Ok(vec![rule("cn=admins", Role::Admin)])
        );
    }

    #[test]
    fn malformed_role_maps_say_which_entry() {
        assert_eq!(
            parse_role_map("a=admin,oops"),
            Err(RoleMapError::NotAPair(2))
        );
        assert_eq!(parse_role_map("a=owner"), Err(RoleMapError::UnknownRole(1)));
        assert_eq!(parse_role_map("=admin"), Err(RoleMapError::EmptyValue(1)));
        assert_eq!(parse_role_map(" , "), Err(RoleMapError::Empty));
        assert_eq!(parse_role_map("[]"), Err(RoleMapError::Empty));
        assert!(matches!(
            parse_role_map(r#"[{"value":"a","role":"owner"}]"#),
            Err(RoleMapError::Json(_))
        ));
        assert_eq!(
            parse_role_map(r#"[{"value":"","role":"admin"}]"#),
            Err(RoleMapError::EmptyValue(1))
        );
    }
}
