//! Names of the objects the operator owns for one SsoConfig, defined once for the controller,
//! `render` and the webhook.

/// Secret holding the rendered sidecar environment.
pub fn env_secret(config: &str) -> String {
    format!("{config}-gatehouse-env")
}

/// Secret holding the generated cookie key (only when `session.cookieSecretRef` is unset).
pub fn cookie_secret(config: &str) -> String {
    format!("{config}-gatehouse-cookie")
}

/// Secret holding the SAML SP's signing key and certificates (SAML configs only).
pub fn saml_sp_secret(config: &str) -> String {
    format!("{config}-gatehouse-saml-sp")
}

/// ServiceAccount of the sidecar; also the name of its Role, RoleBinding and NetworkPolicy.
pub fn service_account(config: &str) -> String {
    format!("{config}-gatehouse")
}

/// `kubernetes.io/service-account-token` Secret of the sidecar's ServiceAccount.
pub fn token_secret(config: &str) -> String {
    format!("{config}-gatehouse-token")
}

/// ClusterRoleBinding of the sidecar's ServiceAccount to `system:auth-delegator` (TokenReview
/// mode): `gatehouse-token-review.<namespace>.<config>`, unambiguous because a namespace has no
/// dot; a hash of both when that would pass the 253 characters of a name.
pub fn token_review_binding(namespace: &str, config: &str) -> String {
    let name = format!("gatehouse-token-review.{namespace}.{config}");
    if name.len() <= 253 {
        return name;
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{namespace}/{config}"));
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("gatehouse-token-review.{hex}")
}
