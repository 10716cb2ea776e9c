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

/// ServiceAccount of the sidecar; also the name of its Role, RoleBinding and NetworkPolicy.
pub fn service_account(config: &str) -> String {
    format!("{config}-gatehouse")
}

/// `kubernetes.io/service-account-token` Secret of the sidecar's ServiceAccount.
pub fn token_secret(config: &str) -> String {
    format!("{config}-gatehouse-token")
}
