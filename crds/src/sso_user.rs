//! `SsoUser`: one person who signed in (or may sign in) to one application.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube_derive::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user of one SsoConfig's application. Created by the sidecar at first sign-in (labelled
/// `gatehouse.dev/source: sso`) or declared in Git. Deleting it ends the user's sessions at once;
/// `suspended: true` refuses sign-in and ends sessions too.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(crates(kube_core = "::kube_core"))]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "SsoUser",
    plural = "ssousers",
    shortname = "ssou",
    namespaced,
    status = "SsoUserStatus",
    derive = "Default",
    printcolumn = r#"{"name":"Email","type":"string","jsonPath":".status.email"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".status.role"}"#,
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.provider"}"#,
    printcolumn = r#"{"name":"Suspended","type":"boolean","jsonPath":".spec.suspended"}"#,
    printcolumn = r#"{"name":"Last Login","type":"date","jsonPath":".status.lastLogin"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SsoUserSpec {
    /// Name of the SsoConfig (same namespace) this user belongs to. Immutable.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("config is immutable"))]
    pub config: String,
    /// Provider id the user signs in with (`okta`, `entra`, `saml`, or the generic id). Immutable.
    #[schemars(
        length(min = 1, max = 32),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("provider is immutable"))]
    pub provider: String,
    /// Subject (`sub` claim, or SAML NameID) at that provider. Immutable.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("subject is immutable"))]
    pub subject: String,
    /// Refuse sign-in and end every session of this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// Log the user out everywhere: sessions started at or before this time are refused. Sessions
    /// record their start in whole seconds, so one started in this time's second ends too; one
    /// started in a later second does not. Yours to write: the sidecar never writes the spec of
    /// an existing SsoUser (its own cut-off is `status.sessionsNotBefore`; the later one applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_not_before: Option<Time>,
    /// The profile the identity provider pushed over SCIM (`provisioning.mode: scim`), on users
    /// labelled `gatehouse.dev/source: scim` only. Written by the sidecar's SCIM endpoint; the
    /// SCIM `active` attribute is `suspended` above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim: Option<ScimProfile>,
}

/// A SCIM 2.0 User (RFC 7643 §4.1) as Gatehouse keeps it: the core attributes Okta and Entra ID
/// send, and the enterprise extension. Attribute names are SCIM's own.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimProfile {
    /// `userName`: unique within the SsoConfig, compared without case.
    #[schemars(length(min = 1, max = 256))]
    pub user_name: String,
    /// `externalId`: the IdP's id of the user, which links it to sign-ins (Okta: the user id,
    /// the ID token's `sub`; Entra ID: the object id, the `oid` claim). Compared with case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub external_id: Option<String>,
    /// `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ScimName>,
    /// `displayName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
    /// `nickName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub nick_name: Option<String>,
    /// `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub title: Option<String>,
    /// `userType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub user_type: Option<String>,
    /// `preferredLanguage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub preferred_language: Option<String>,
    /// `locale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub locale: Option<String>,
    /// `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub timezone: Option<String>,
    /// `emails`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub emails: Vec<ScimValue>,
    /// `phoneNumbers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub phone_numbers: Vec<ScimValue>,
    /// `addresses`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub addresses: Vec<ScimAddress>,
    /// The enterprise extension (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<ScimEnterprise>,
}

/// SCIM `name`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimName {
    /// `formatted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub formatted: Option<String>,
    /// `familyName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub family_name: Option<String>,
    /// `givenName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub given_name: Option<String>,
    /// `middleName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub middle_name: Option<String>,
    /// `honorificPrefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub honorific_prefix: Option<String>,
    /// `honorificSuffix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub honorific_suffix: Option<String>,
}

/// One value of a multi-valued SCIM attribute (`emails`, `phoneNumbers`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimValue {
    /// `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub value: Option<String>,
    /// `type` (`work`, `home`, `mobile`, …).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub kind: Option<String>,
    /// `primary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// `display`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub display: Option<String>,
}

/// One SCIM `addresses` value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimAddress {
    /// `formatted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub formatted: Option<String>,
    /// `streetAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub street_address: Option<String>,
    /// `locality`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub locality: Option<String>,
    /// `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub region: Option<String>,
    /// `postalCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub postal_code: Option<String>,
    /// `country`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub country: Option<String>,
    /// `type`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub kind: Option<String>,
    /// `primary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// The SCIM enterprise User extension (RFC 7643 §4.3).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimEnterprise {
    /// `employeeNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub employee_number: Option<String>,
    /// `costCenter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub cost_center: Option<String>,
    /// `organization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub organization: Option<String>,
    /// `division`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub division: Option<String>,
    /// `department`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub department: Option<String>,
    /// `manager`: the manager's SCIM id and display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<ScimManager>,
}

/// The enterprise extension's `manager`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimManager {
    /// `value`: the manager's SCIM id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub value: Option<String>,
    /// `displayName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,
}

impl SsoUserSpec {
    /// Whether the user is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspended.unwrap_or(false)
    }
}

/// What the identity provider last said about the user, rewritten at every sign-in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SsoUserStatus {
    /// Email address from the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name from the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Preferred username from the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Role mapped from the token at the last sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Organization id of the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Issuer that vouched for the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Groups from the provider's groups claim (SAML: groups attribute) at the last sign-in, as
    /// the IdP sent them (at most 256 kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 256)))]
    pub groups: Vec<String>,
    /// Attributes copied from the token by the SsoConfig's `attributeMappings`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Time of the last successful sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Time>,
    /// Number of successful sign-ins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_count: Option<i64>,
    /// When the identity provider last vouched for the user: a sign-in, or a session re-validated
    /// with its refresh token (moved forward by a re-validation once it is an hour old).
    /// `provisioning.deleteAfterInactive` counts from it (from `lastLogin` when it is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_vouched: Option<Time>,
    /// Single sessions ended before their expiry (logout, OIDC back-channel logout), so every
    /// replica of the sidecar refuses them. Each entry is dropped once the session it names has
    /// expired. Written by the sidecar (field manager `gatehouse-sidecar-revocation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub revoked_sessions: Vec<RevokedSession>,
    /// Every session started at or before this time has ended: OIDC back-channel logout of all
    /// the user's sessions, or a `revokedSessions` list full of live entries. The sidecar's own
    /// cut-off (field manager `gatehouse-sidecar-revocation`), beside `spec.sessionsNotBefore`,
    /// which stays yours (a GitOps tool that owns the spec never reverts it); the later of the
    /// two applies. Moves only forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_not_before: Option<Time>,
    /// The latest re-validation of each session being re-validated at the identity provider,
    /// shared by every replica of the sidecar: a replica that refreshed a session (and got a
    /// rotated refresh token) records it here, so the others go on from it instead of
    /// refreshing again with a token the IdP has replaced; and a lease, so one replica at a time
    /// asks the IdP. The session and refresh grant are sealed with the SsoConfig's cookie keys
    /// (only its sidecars can open them, and never as cookies). Written by the sidecar (field
    /// manager `gatehouse-sidecar-renewal`); an entry goes once its session has expired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub session_renewals: Vec<SessionRenewal>,
    /// `Ready` is true when the user's SsoConfig exists.
    ///
    /// Keyed by `type`: each writer (field manager) applies only the conditions it owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One ended session of an SsoUser.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokedSession {
    /// The session's id: the identity provider's session id (`sid` of a back-channel logout
    /// token), or the sidecar's own session id (logout).
    #[schemars(length(min = 1, max = 256))]
    pub id: String,
    /// When the session would have expired anyway; the entry may be dropped after it.
    pub until: Time,
}

/// The latest re-validation of one session, shared by the sidecar's replicas.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionRenewal {
    /// The sidecar's session id.
    #[schemars(length(min = 1, max = 256))]
    pub id: String,
    /// When the identity provider last vouched for the session (Unix seconds).
    pub validated_at: i64,
    /// The session as renewed then, sealed (absent while only a lease is held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub session: Option<String>,
    /// The refresh grant to use next, sealed (absent while only a lease is held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub grant: Option<String>,
    /// The replica asking the identity provider about this session now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub lease_holder: Option<String>,
    /// Until when that replica may ask; after it another may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Time>,
    /// When the session expires; the entry may be dropped after it.
    pub until: Time,
}

impl SsoUserStatus {
    /// The shared re-validation record of session `session_id`, if any.
    pub fn session_renewal(&self, session_id: &str) -> Option<&SessionRenewal> {
        self.session_renewals.iter().find(|r| r.id == session_id)
    }

    /// Whether a session with own id `session_id` or IdP session id `idp_sid` was ended.
    pub fn is_session_revoked(&self, session_id: &str, idp_sid: Option<&str>) -> bool {
        self.revoked_sessions
            .iter()
            .any(|r| r.id == session_id || idp_sid.is_some_and(|sid| r.id == sid))
    }
}
