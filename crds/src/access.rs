//! `spec.access`: which principals may reach which requests of the app, decided by the sidecar
//! on every request.
//!
//! Rules are not ordered: a matching `Deny` rule wins over any matching `Allow`, then
//! `defaultAction` decides. Inside a rule, `from`, `to` and `when` must all match; the entries of
//! `from` (and of `to`) are alternatives, the fields inside one entry must all match. A rule with
//! no `from` matches every request, anonymous ones included (a public path). There are no negation
//! fields: a negation is a `Deny` rule.
//!
//! The types are the contract: the operator renders them as JSON into `GATEHOUSE_ACCESS`, the
//! sidecar reads them back with the same types and refuses what [`crate::rules::check_access`]
//! refuses, and the CRD's schema refuses the same at apply time.

use kube_derive::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::sso_config::Role;

/// Most rules of one SsoConfig.
pub const MAX_ACCESS_RULES: usize = 64;
/// Most `from` or `to` entries of one rule, and `when` conditions.
pub const MAX_RULE_ENTRIES: usize = 16;
/// Most values of one list field (`roles`, `groups`, `paths`, …).
pub const MAX_RULE_VALUES: usize = 64;

/// Who may reach which requests. Absent: every user with a mapped role reaches every path (and
/// `skipAuth` paths need no session). Present: each request is decided by the rules, and a
/// request no rule matches gets `defaultAction` (default `Deny`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.rules) || self.rules.all(r, self.rules.exists_one(o, o.name == r.name))")
        .message(rules::MSG_RULE_NAMES_UNIQUE)
)]
pub struct AccessSpec {
    /// `Allow` or `Deny`: the answer for a request no rule matches. Default `Deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
    /// The rules; their order never matters (a matching `Deny` wins over any `Allow`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub rules: Vec<AccessRule>,
}

impl AccessSpec {
    /// The answer when no rule matches.
    pub fn default_action(&self) -> Action {
        self.default_action.unwrap_or(Action::Deny)
    }
}

// What a rule does when it matches (no doc comment, as for `Protocol`: it would replace the
// fields' text in the CRD).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Action {
    /// The request may pass (unless a `Deny` rule matches too).
    Allow,
    /// The request is refused.
    Deny,
}

/// One rule: an action for the requests that match all of `from`, `to` and `when`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct AccessRule {
    /// Name of the rule, unique in the SsoConfig: audit lines and 403 answers name it.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    pub name: String,
    /// `Allow` or `Deny`.
    pub action: Action,
    /// Who: any entry may match (OR); inside an entry every field must (AND). Absent or empty:
    /// every request, anonymous ones included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub from: Vec<Principal>,
    /// Which requests: any entry may match (OR); inside an entry every field must (AND). Absent
    /// or empty: every request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub to: Vec<Operation>,
    /// Conditions on the ID token's claims (or a machine token's), all of which must hold (AND).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub when: Vec<ClaimCondition>,
}

/// One set of facts about who sent a request; every field set must hold. At least one field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.authenticated) || has(self.roles) || has(self.groups) || has(self.emails) || has(self.emailDomains) || has(self.users) || has(self.providers) || has(self.principalTypes) || has(self.serviceAccounts) || has(self.clients)")
        .message(rules::MSG_EMPTY_PRINCIPAL)
)]
pub struct Principal {
    /// `true`: any signed-in user or valid machine token. (`false` is refused: a rule with no
    /// `from` already matches anonymous requests.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == true").message(rules::MSG_AUTHENTICATED_TRUE))]
    pub authenticated: Option<bool>,
    /// Gatehouse roles (`admin`, `member`), any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 64))]
    pub roles: Vec<Role>,
    /// Groups from the provider's `groupsClaim` (SAML: `groupsAttribute`), any of them; exact and
    /// case-sensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(validation = Rule::new(rules::CEL_ALL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub groups: Vec<String>,
    /// Whole email addresses, any of them (the domain compared case-insensitively).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 64),
        inner(length(min = 3, max = 254), regex(pattern = r"^[^@\s]+@[^@\s]+$"))
    )]
    pub emails: Vec<String>,
    /// Email domains, any of them: the user's address has exactly one `@`, its domain is one of
    /// these as a whole (case-insensitive; `example.com` does not cover `sub.example.com`), and the
    /// IdP did not mark it unverified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 64),
        inner(
            length(min = 1, max = 253),
            regex(
                pattern = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
            )
        )
    )]
    pub email_domains: Vec<String>,
    /// SsoUser names (`okta-3f9c…`), any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 64),
        inner(
            length(min = 1, max = 253),
            regex(pattern = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
        )
    )]
    pub users: Vec<String>,
    /// Provider ids (`okta`, `entra`, a generic provider's id, `saml`), any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 64),
        inner(
            length(min = 1, max = 32),
            regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
        )
    )]
    pub providers: Vec<String>,
    /// `user` (signed in through the browser) or `machine` (a bearer token), any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 2))]
    pub principal_types: Vec<PrincipalType>,
    /// Kubernetes ServiceAccounts as `namespace/name`, any of them (machine clients).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 64),
        inner(
            length(min = 3, max = 317),
            regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?/[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
        )
    )]
    pub service_accounts: Vec<String>,
    /// Machine-token issuers by their `machineAuth.issuers[].name`, any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 64),
        inner(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
        )
    )]
    pub clients: Vec<String>,
}

// Who a principal is (no doc comment, as for `Action`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalType {
    /// A person signed in through the browser.
    User,
    /// A client presenting a bearer token.
    Machine,
}

/// One set of facts about the request; every field set must hold. At least one field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.hosts) || has(self.paths) || has(self.methods)")
        .message(rules::MSG_EMPTY_OPERATION)
)]
pub struct Operation {
    /// Hosts, any of them: compared with the request's `Host` (never `X-Forwarded-Host`),
    /// lower-cased, port and trailing dot removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = 64),
        inner(
            length(min = 1, max = 253),
            regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
        )
    )]
    pub hosts: Vec<String>,
    /// Path prefixes, any of them, on segment boundaries (`/admin` covers `/admin` and
    /// `/admin/x`, not `/administrator`), case-sensitive, on the normalized path the sidecar
    /// forwards. A request path that stays ambiguous after normalization (an encoded `/`, `\` or
    /// `.`, a `;`, a `..` or an empty segment) matches no path of an `Allow` rule and every path of
    /// a `Deny` rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(validation = Rule::new(format!("self.all(p, {})", rules::CEL_ROUTE_PATH)).message(rules::MSG_RULE_PATH))]
    pub paths: Vec<String>,
    /// HTTP methods, any of them (upper case); `GET` covers `HEAD` too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 16))]
    pub methods: Vec<Method>,
}

// An HTTP method a rule can name (no doc comment, as for `Action`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum Method {
    GET,
    HEAD,
    POST,
    PUT,
    PATCH,
    DELETE,
    OPTIONS,
}

impl Method {
    /// The method as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
        }
    }
}

/// A condition on one claim: `values` (the claim holds one of them) or `present`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.values) != has(self.present)")
        .message(rules::MSG_WHEN_VALUES_OR_PRESENT)
)]
pub struct ClaimCondition {
    /// Claim name; a dotted name reaches a nested claim (`realm_access.roles`).
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
    )]
    pub claim: String,
    /// The claim holds one of these: a string equal to one, any element of an array, or a word
    /// of a space-separated string (`scp: "read write"`). Exact and case-sensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 256)))]
    #[x_kube(validation = Rule::new(rules::CEL_ALL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub values: Vec<String>,
    /// `true`: the claim is present (any value); `false`: it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// Most machine-token issuers of one SsoConfig.
pub const MAX_MACHINE_ISSUERS: usize = 8;

/// Clients that are not browsers (CLIs, CI jobs, other services) reach the app with
/// `Authorization: Bearer <JWT>` from these issuers. Unset: no bearer token is a credential.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.issuers) || self.issuers.all(i, self.issuers.exists_one(o, o.name == i.name) && self.issuers.exists_one(o, o.issuer == i.issuer))")
        .message(rules::MSG_MACHINE_ISSUERS_UNIQUE)
)]
pub struct MachineAuthSpec {
    /// Token issuers (client-credentials access tokens: Okta, Entra ID app roles, Auth0…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub issuers: Vec<MachineIssuerSpec>,
    /// Kubernetes ServiceAccounts of the cluster: projected ServiceAccount tokens, checked
    /// against the API server's keys (its `/.well-known/openid-configuration` and
    /// `/openid/v1/jwks`, read with the sidecar's own ServiceAccount token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesMachineAuth>,
    /// `true`: the app receives the client's `Authorization` header unchanged. Default: removed
    /// (the app gets the identity headers and `X-Gatehouse-Identity` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_token: Option<bool>,
}

/// One issuer of machine tokens.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct MachineIssuerSpec {
    /// Name of the issuer: access rules name it in `clients`, and a client's user id is
    /// `<name>:<sub>`. `kubernetes` is reserved.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new("self != 'kubernetes'").message(rules::MSG_MACHINE_ISSUER_NAME))]
    pub name: String,
    /// The tokens' `iss`, exactly; https (plain http only to a loopback host with
    /// `allowInsecureHttp`). Its keys come from `<issuer>/.well-known/openid-configuration`
    /// unless `jwksUri` is set.
    #[x_kube(validation = Rule::new(rules::CEL_ISSUER).message(rules::MSG_ISSUER_URL))]
    #[schemars(length(max = 2048))]
    pub issuer: String,
    /// The audiences a token must name one of (`aud`); required. Never the browser sign-in's
    /// client id, unless its ID tokens are meant to be accepted as bearer tokens.
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 512)))]
    #[x_kube(validation = Rule::new(rules::CEL_ALL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    pub audiences: Vec<String>,
    /// Signature algorithms accepted. Default `RS256`, `ES256`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 3))]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Where the issuer's keys are, when its discovery document is not at the usual place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(rules::CEL_ISSUER).message(rules::MSG_ISSUER_URL))]
    #[schemars(length(max = 2048))]
    pub jwks_uri: Option<String>,
    /// Claim (name or dotted path) whose values map to a role: a string, an array, or a
    /// space-separated string (`scp: "read write"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
    )]
    pub role_claim: Option<String>,
    /// Claim value → role, first match in order. No default: a token whose claim maps to no role
    /// is refused (403).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub role_map: Vec<crate::sso_config::RoleRule>,
}

// A JWT signature algorithm accepted from a machine issuer (no doc comment, as for `Action`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum JwtAlgorithm {
    RS256,
    ES256,
    EdDSA,
}

/// ServiceAccount tokens a client pod mounts as a projected volume with one of `audiences`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct KubernetesMachineAuth {
    /// How tokens are checked. `Jwks` (the default): against the API server's issuer discovery
    /// and keys, which every ServiceAccount may read. `TokenReview`: each token is sent to the
    /// API server's TokenReview API with `audiences` (for clusters whose issuer keys are not
    /// published); the operator then binds the sidecar's ServiceAccount to
    /// `system:auth-delegator`, which the chart must allow (`tokenReview.enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<KubernetesAuthMode>,
    /// The audiences a projected token must name one of; required. Never the API server's own
    /// (`https://kubernetes.default.svc…`): the default `kube-api-access` token is refused always.
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 512)))]
    #[x_kube(validation = Rule::new(rules::CEL_ALL_PLAIN_TEXT).message(rules::MSG_PLAIN_TEXT))]
    #[x_kube(validation = Rule::new(format!("self.all(a, !(a in {:?}))", rules::API_SERVER_AUDIENCES)).message(rules::MSG_API_SERVER_AUDIENCE))]
    pub audiences: Vec<String>,
    /// ServiceAccounts and their roles; a token of any other ServiceAccount is refused (403).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub service_accounts: Vec<ServiceAccountRole>,
}

// How ServiceAccount tokens are checked (no doc comment, as for `Action`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum KubernetesAuthMode {
    /// Against the API server's published keys.
    Jwks,
    /// By the API server, one TokenReview per token (cached at most 60 s, never past `exp`).
    TokenReview,
}

/// One ServiceAccount admitted with a role.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRole {
    /// `namespace/name`.
    #[schemars(
        length(min = 3, max = 317),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?/[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The role it gets.
    pub role: Role,
}
