//! The plain types the configuration is made of: the modes read from single variables and one
//! enabled OIDC provider ([`ProviderConfig`]). They hold what was read; nothing here reads it.

use gatehouse_auth::claims::RolePolicy;

use super::env::SecretSource;

/// Which published contract an OIDC provider follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Okta (`OKTA_*`).
    Okta,
    /// Microsoft Entra ID (`ENTRA_*`).
    Entra,
    /// Any OIDC provider (`OIDC_*`).
    Oidc,
}

/// Whether a request without a session may reach the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every path needs a session, except the skip-auth prefixes.
    Required,
    /// Requests without a session reach the app with identity headers stripped.
    Optional,
}

/// Where users who sign in are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningMode {
    /// Nowhere: no Kubernetes access at all.
    Off,
    /// As `SsoUser` objects in the config's namespace, which also drive revocation.
    Kubernetes,
}

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Machine clients (`GATEHOUSE_MACHINE_AUTH`): the checked verifier, and where each issuer's keys
/// are.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    /// The issuers, checked; verifies bearer tokens.
    pub auth: std::sync::Arc<gatehouse_auth::machine::MachineAuth>,
    /// Per issuer name: its `iss`, and its JWKS URI when configured (else from discovery).
    pub keys: Vec<MachineKeys>,
    /// Whether the app receives the client's `Authorization` header.
    pub forward_token: bool,
    /// ServiceAccount tokens of the cluster, when admitted: their audiences and roles (the
    /// issuer is the API server's, read at the first such token).
    pub kubernetes: Option<KubernetesMachine>,
}

/// ServiceAccount tokens admitted (`machineAuth.kubernetes`).
#[derive(Debug, Clone)]
pub struct KubernetesMachine {
    /// `mode: TokenReview`: each token is checked by the API server's TokenReview API instead of
    /// against its published keys.
    pub token_review: bool,
    /// Audiences a projected token must name one of.
    pub audiences: Vec<String>,
    /// `namespace/name` → role.
    pub service_accounts: Vec<(String, gatehouse_auth::claims::Role)>,
}

/// Where one machine issuer's keys are.
#[derive(Debug, Clone)]
pub struct MachineKeys {
    /// The issuer's name.
    pub name: String,
    /// Its `iss` (discovery is `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// Its JWKS URI, when configured.
    pub jwks_uri: Option<String>,
}

/// Where and how an Entra ID group overage's groups are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    /// Microsoft Graph's base URL (`ENTRA_GRAPH_URL`).
    pub url: url::Url,
    /// `ENTRA_GROUP_OVERAGE=application`: with the app's own token (client credentials,
    /// `/users/{oid}/transitiveMemberOf`) instead of the sign-in's access token (`/me/…`).
    pub application: bool,
}

/// One enabled sign-in provider, as configured.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Path segment and metric label: `okta`, `entra`, or `OIDC_PROVIDER_ID`.
    pub id: String,
    /// Which contract it follows.
    pub kind: ProviderKind,
    /// Button label.
    pub display_name: String,
    /// Issuer URL, exactly as the provider writes it in `iss`.
    pub issuer: String,
    /// OAuth client id (also the expected ID token audience).
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: SecretSource,
    /// Organisation id forwarded as `X-Forwarded-Org`.
    pub org_id: String,
    /// How the role is read from the ID token.
    pub roles: RolePolicy,
    /// Microsoft Graph, where a group overage's groups are read (Entra ID only; other providers'
    /// tokens that leave the groups claim out have unknown groups).
    pub graph: Option<GraphConfig>,
    /// The claim (name or dotted path) holding the user's groups.
    pub groups_claim: String,
}
