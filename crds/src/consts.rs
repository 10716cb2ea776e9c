//! Labels, annotations, ports and paths, defined once for the operator and the sidecar.

/// Label on SsoUsers: who created the object. [`SOURCE_SSO`] for users created at sign-in.
pub const LABEL_SOURCE: &str = "gatehouse.dev/source";
/// Value of [`LABEL_SOURCE`] for users the sidecar created at sign-in (the RUN "source: sso" tag).
pub const SOURCE_SSO: &str = "sso";
/// Value of [`LABEL_SOURCE`] for users the identity provider pushed over SCIM
/// (`provisioning.mode: scim`): the only SsoUsers SCIM may change or delete.
pub const SOURCE_SCIM: &str = "scim";
/// Label on SCIM-pushed SsoUsers: 16 hex chars of sha256 of the lower-cased `userName`, so the
/// SCIM endpoint finds a user by name (case-insensitively) with one label-selected list.
pub const LABEL_SCIM_USER_NAME: &str = "gatehouse.dev/scim-user-name";
/// Path of the SCIM 2.0 service root the sidecar serves (`provisioning.mode: scim`).
pub const SCIM_PATH: &str = "/api/auth/scim/v2";
/// Label on SsoUsers and on objects the operator owns: the SsoConfig they belong to.
pub const LABEL_CONFIG: &str = "gatehouse.dev/config";
/// Label on SsoUsers: the provider id the user signed in with.
pub const LABEL_PROVIDER: &str = "gatehouse.dev/provider";
/// Label on SsoUsers: the person ([`crate::names::identity_label`]: issuer and subject), the same
/// on their SsoUser of every SsoConfig, so `kubectl delete ssousers -l gatehouse.dev/identity=…`
/// removes a person from every app of a namespace.
pub const LABEL_IDENTITY: &str = "gatehouse.dev/identity";
/// Pod label that opts a workload into injection; its value names the SsoConfig.
pub const LABEL_INJECT: &str = "gatehouse.dev/inject";
/// Standard label naming the tool that manages an object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`] on objects the operator creates.
pub const MANAGED_BY: &str = "gatehouse-operator";
/// Standard label naming the component of an object the operator creates.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";

/// Annotation on a generated Secret: hash of the rendered content, so pods can roll on change.
pub const ANNOTATION_CONFIG_HASH: &str = "gatehouse.dev/config-hash";
/// Annotation on injected pods: the Gatehouse version that injected the sidecar.
pub const ANNOTATION_INJECTED_VERSION: &str = "gatehouse.dev/injected-version";
/// Pod annotation: sidecar image for this pod. Honoured only when the SsoConfig sets
/// `spec.sidecar.allowPodOverrides: true`; otherwise the pod is refused.
pub const ANNOTATION_SIDECAR_IMAGE: &str = "gatehouse.dev/sidecar-image";
/// Pod annotation: port the sidecar serves users on (instead of [`SIDECAR_PORT`]), for apps that
/// already use it. Same opt-in as [`ANNOTATION_SIDECAR_IMAGE`].
pub const ANNOTATION_SIDECAR_PORT: &str = "gatehouse.dev/sidecar-port";
/// Pod annotation: port of the sidecar's admin listener (instead of [`ADMIN_PORT`]). Same opt-in
/// as [`ANNOTATION_SIDECAR_IMAGE`].
pub const ANNOTATION_SIDECAR_ADMIN_PORT: &str = "gatehouse.dev/sidecar-admin-port";
/// Pod-template annotation the operator sets to restart a workload whose pods run without the
/// sidecar (`spec.sidecar.restartUninjected`). Pods that carry it and still lack the sidecar are
/// not restarted again: the webhook is not injecting, and another restart would not help.
pub const ANNOTATION_RESTARTED_AT: &str = "gatehouse.dev/restarted-at";

/// Server-side apply field manager of the operator (one for every object it writes).
pub const OPERATOR_FIELD_MANAGER: &str = "gatehouse-operator";
/// Server-side apply field manager of the sidecar (SsoUser provisioning).
pub const SIDECAR_FIELD_MANAGER: &str = "gatehouse-sidecar";

/// Field manager of the sidecar's writes of ended sessions (`status.revokedSessions`,
/// `spec.sessionsNotBefore` after a back-channel logout): apart from [`SIDECAR_FIELD_MANAGER`], so
/// the status a sign-in applies never removes a revocation.
pub const SIDECAR_REVOCATION_FIELD_MANAGER: &str = "gatehouse-sidecar-revocation";
/// Most entries of an SsoUser's `status.revokedSessions`. When it is full of unexpired entries,
/// the sidecar ends every session of the user (`spec.sessionsNotBefore`) instead of forgetting one.
pub const MAX_REVOKED_SESSIONS: usize = 64;
/// Field manager of the sidecar's shared re-validation records (`status.sessionRenewals`).
pub const SIDECAR_RENEWAL_FIELD_MANAGER: &str = "gatehouse-sidecar-renewal";
/// Most shared re-validation records on one SsoUser (one per session being re-validated).
pub const MAX_SESSION_RENEWALS: usize = 16;

/// Port the sidecar serves users on.
pub const SIDECAR_PORT: u16 = 4180;
/// Port name of [`SIDECAR_PORT`]; Services target it.
pub const SIDECAR_PORT_NAME: &str = "gatehouse";
/// Port of the sidecar's admin listener (`/healthz`, `/readyz`, `/metrics`).
pub const ADMIN_PORT: u16 = 9090;
/// Port name of [`ADMIN_PORT`].
pub const ADMIN_PORT_NAME: &str = "gatehouse-admin";
/// Liveness path of the sidecar's admin listener.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness path of the sidecar's admin listener.
pub const READYZ_PATH: &str = "/readyz";
/// Default port of the application behind the sidecar.
pub const DEFAULT_UPSTREAM_PORT: u16 = 8080;
/// Default session lifetime, as written in `spec.session.ttl`.
pub const DEFAULT_SESSION_TTL: &str = "12h";

/// Provider id of Okta (path segment and `AUTH_EXCLUSIVE_PROVIDER` value).
pub const PROVIDER_OKTA: &str = "okta";
/// Provider id of Microsoft Entra ID.
pub const PROVIDER_ENTRA: &str = "entra";
/// Provider id of the SAML IdP.
pub const PROVIDER_SAML: &str = "saml";

/// OIDC callback path; the provider id follows.
pub const OIDC_CALLBACK_PREFIX: &str = "/api/auth/oauth2/callback/";
/// OIDC Back-Channel Logout 1.0 endpoint (the `backchannel_logout_uri` to register at the IdP);
/// the provider id follows.
pub const OIDC_BACKCHANNEL_LOGOUT_PREFIX: &str = "/api/auth/oauth2/backchannel-logout/";
/// OIDC sign-in start path; the provider id follows.
pub const OIDC_START_PREFIX: &str = "/api/auth/oauth2/start/";
/// SAML sign-in start path (SP-initiated, HTTP-Redirect binding).
pub const SAML_START_PATH: &str = "/api/auth/saml/start";
/// SAML assertion consumer service path.
pub const SAML_ACS_PATH: &str = "/api/auth/saml/acs";
/// SAML service-provider metadata path.
pub const SAML_METADATA_PATH: &str = "/api/auth/saml/metadata";
/// Login page path.
pub const LOGIN_PATH: &str = "/login";
/// Logout path (also the SP's SAML SingleLogoutService).
pub const LOGOUT_PATH: &str = "/api/auth/logout";

/// Role every mapping rule may produce: full access.
pub const ROLE_ADMIN: &str = "admin";
/// Role every mapping rule may produce: regular access.
pub const ROLE_MEMBER: &str = "member";

/// Default image of the injected sidecar; the operator's `--sidecar-image` and the chart's
/// `sidecar.image` override it, and an SsoConfig's `spec.sidecar.image` overrides both.
pub const DEFAULT_SIDECAR_IMAGE: &str = "ghcr.io/gatehouse-dev/gatehouse-sidecar:0.1.0";
/// Name of the injected sidecar container.
pub const SIDECAR_CONTAINER_NAME: &str = "gatehouse";
/// Port the operator's admission webhook serves HTTPS on.
pub const WEBHOOK_PORT: u16 = 8443;
/// Path of the mutating admission webhook that injects the sidecar.
pub const WEBHOOK_INJECT_PATH: &str = "/mutate-pods";
/// Path of the CRD conversion webhook (SsoConfig `v1alpha1` ⇄ `v1alpha2`).
pub const WEBHOOK_CONVERT_PATH: &str = "/convert";
/// Name of the operator's webhook Service and of the MutatingWebhookConfiguration.
pub const WEBHOOK_NAME: &str = "gatehouse-webhook";
/// Name of the Secret holding the webhook's CA and serving certificate.
pub const WEBHOOK_CERT_SECRET: &str = "gatehouse-webhook-tls";
/// Name of the operator's leader-election Lease.
pub const LEADER_LEASE_NAME: &str = "gatehouse-operator";
/// UID and GID the sidecar runs as (non-root, matches the image).
pub const SIDECAR_UID: i64 = 65532;
