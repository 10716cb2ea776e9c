//! Environment → typed configuration.
//!
//! The sidecar is configured only by environment variables (the contract the operator renders into
//! `<config>-gatehouse-env`, also usable by hand). Every error names the variable it is about and
//! never contains a secret value. Every secret is also accepted from a file named by `<VAR>_FILE`
//! (a mounted Secret), which wins when both are set; such files are re-read in the background so a
//! rotated Secret takes effect without a restart. Injected sidecars get both: the operator mounts
//! the env Secret at `/etc/gatehouse/env` and points each secret's `<VAR>_FILE` there.
//!
//! Provider variables (all of a provider's required variables present enable it; some but not all is
//! an error):
//!
//! | variable | meaning |
//! | --- | --- |
//! | `OKTA_CLIENT_ID`, `OKTA_CLIENT_SECRET`, `OKTA_ISSUER`, `OKTA_ORG_ID` | Okta; role from `userType` / `user_type` |
//! | `ENTRA_CLIENT_ID`, `ENTRA_CLIENT_SECRET`, `ENTRA_TENANT_ID`, `ENTRA_ORG_ID` | Entra ID; role from `roles` |
//! | `ENTRA_ISSUER` | optional; default `https://login.microsoftonline.com/<tenant>/v2.0` |
//! | `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`, `OIDC_ISSUER`, `OIDC_ORG_ID` | generic OIDC provider |
//! | `OIDC_PROVIDER_ID` | its path segment (default `oidc`) |
//! | `OIDC_PROVIDER_NAME` | its button label (default: the id) |
//! | `OIDC_ROLE_CLAIM` | claim name or dotted path holding a string or an array of strings |
//! | `OIDC_ROLE_MAP` | rules as JSON, `[{"value":"portal-admins","role":"admin"},…]` (what the operator renders; any value, commas included), or `value=role,…`; roles `admin`, `member`; rules are tried in the order written |
//! | `OIDC_DEFAULT_ROLE` | role for users no rule matches; unset → they are denied |
//! | `AUTH_EXCLUSIVE_PROVIDER` | only this provider is offered; `/login?providers=all` is the break-glass |
//!
//! Gatehouse's own variables:
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `GATEHOUSE_PUBLIC_URL` | required | origin users reach the app at (`https://app.example.com`) |
//! | `GATEHOUSE_COOKIE_SECRET` | required | comma-separated base64 32-byte keys; the first seals, all unseal |
//! | `GATEHOUSE_UPSTREAM` | `http://127.0.0.1:8080` | the app (plain HTTP, same pod) |
//! | `GATEHOUSE_LISTEN` | `0.0.0.0:4180` | public listener |
//! | `GATEHOUSE_ADMIN_LISTEN` | `0.0.0.0:9090` | `/healthz`, `/readyz`, `/metrics` |
//! | `GATEHOUSE_SESSION_TTL` | `12h` | session lifetime (humantime: `30m`, `12h`, `7d`) |
//! | `GATEHOUSE_CONFIG` | `gatehouse` | the SsoConfig's name (sessions are bound to it) |
//! | `GATEHOUSE_NAMESPACE` | `default` | its namespace (sessions are bound to it) |
//! | `GATEHOUSE_CONFIG_UID` | unset | the SsoConfig's UID (sessions are bound to it when set) |
//! | `GATEHOUSE_PROVISIONING` | `off` | `off` (no Kubernetes at all) or `kubernetes` (SsoUsers: provisioning and revocation) |
//! | `GATEHOUSE_PROVISIONING_MODE` | `jit` | (kubernetes provisioning) `jit` or `preDeclared` (only users with an SsoUser may sign in) |
//! | `GATEHOUSE_ATTRIBUTE_MAPPINGS` | unset | `claim=attribute,…`: ID-token claims (SAML: attribute names) copied to the SsoUser's `status.attributes` |
//! | `GATEHOUSE_AUTH_MODE` | `required` | `required` or `optional` |
//! | `GATEHOUSE_APP_LOGIN_PATH` | unset | path of the app's own login page |
//! | `GATEHOUSE_SKIP_AUTH` | unset | comma-separated path prefixes that need no session |
//! | `GATEHOUSE_PROVISION_HOOK` | unset | app path that receives the user as JSON on each sign-in |
//! | `GATEHOUSE_REVOCATION_STALENESS` | `5m` | (kubernetes provisioning) how long the SsoUser watch may be broken before every session is refused (1s–24h; `spec.session.revocationStaleness`) |
//! | `GATEHOUSE_REVALIDATE_INTERVAL` | `15m` | (OIDC) how often a session is re-validated at the IdP with its refresh token (1s–24h, `0s`: never; `spec.session.revalidateInterval`): a due session's request is served at once and starts the refresh in the background; `invalid_grant` or a role the IdP no longer gives ends the session on every replica, a new role or attributes apply at once. Sign-in asks for `offline_access` where the provider offers it; sessions without a refresh token are not re-validated |
//! | `GATEHOUSE_REVALIDATE_GRACE` | `1h` | (OIDC) how long a session due for re-validation is kept while the IdP cannot be reached, counted from when it became due; after that the session is refused and its open connections are cut (1s–168h; `spec.session.revalidateGrace`) |
//! | `GATEHOUSE_ENV_DIR` | unset | (set by injection) the env Secret mounted as files: secrets are read from there, and a changed non-secret value restarts the sidecar to apply it |
//! | `GATEHOUSE_WORKER_THREADS` | unset | ours: unset runs one event-loop thread (cheapest per request on a small share of CPU); `N` (1–64) runs a multi-threaded runtime with `N` workers (read by `main` before the rest, see [`crate::runtime`]) |
//! | `GATEHOUSE_CLOCK_SKEW` | `60s` | ours: tolerated clock skew for ID token `exp`/`iat`/`nbf` and SAML `NotBefore`/`NotOnOrAfter` |
//! | `GATEHOUSE_MAX_REQUEST_BODY` | `64Mi` | largest request body sent on to the app (`spec.upstream.maxRequestBody`), in bytes or with a `Ki`, `Mi` or `Gi` suffix; a larger one is answered 413 |
//! | `GATEHOUSE_REQUEST_BODY_TIMEOUT` | `60s` | longest pause between two pieces of a request body (1s–1h; `spec.timeouts.requestBody`); a stalled upload is answered 408 |
//! | `GATEHOUSE_SEND_TIMEOUT` | `60s` | longest a response may wait for the client to read (1s–1h; `spec.timeouts.send`); a client that stops reading is disconnected |
//! | `GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT` | unset | longest wait for the app's response head once a request is sent (1s–1h; like nginx's `proxy_read_timeout`; `spec.timeouts.upstreamResponse`); unset waits as long as the client does (long polling); when it runs out the client gets 504 |
//! | `GATEHOUSE_LOG_FORMAT` | `text` | ours: `text` or `json` log lines on stderr |
//!
//! With `GATEHOUSE_PROVISIONING=kubernetes` the sidecar reaches the API server with kube's standard
//! configuration: in a pod, the ServiceAccount token the operator mounts into the sidecar; outside
//! a cluster, `KUBECONFIG` (or `~/.kube/config`).
//!
//! SAML (`SAML_*`, see [`crate::saml`]) replaces the OIDC providers: one protocol at a time, so
//! SAML and OIDC variables together stop start-up with one line naming both.
//!
//! Log verbosity follows `RUST_LOG` (default `info`).
//!
//! Dependencies point one way: this module reads variables into plain types (`okta`, `entra`,
//! `oidc`, `saml` submodules, one per sign-in method); [`crate::providers`] and [`crate::saml`]
//! run what it describes.

use gatehouse_crds::env as vars;
use gatehouse_crds::rules;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_auth::claims::{Role, RolePolicy, RoleRule};

mod entra;
mod oidc;
mod okta;
mod saml;

pub use saml::{MetadataSource, PROTOCOL_VARIABLES_SAML, SamlConfig};

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

/// One line saying which variable is wrong and how. Never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with it, in words (never its value when it is a secret).
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(var: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            problem: problem.into(),
        }
    }
}

/// A secret string. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only for the places that must send or use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// A secret and, when it came from `<VAR>_FILE`, the file to re-read on rotation.
#[derive(Debug, Clone)]
pub struct SecretSource {
    /// The variable it belongs to (for messages).
    pub var: &'static str,
    /// The value read at start-up.
    pub value: Secret,
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
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
}

/// The sidecar's whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Origin users reach the app at; no path, query or fragment.
    pub public_url: url::Url,
    /// Public listener.
    pub listen: SocketAddr,
    /// Admin listener (`/healthz`, `/readyz`, `/metrics`).
    pub admin_listen: SocketAddr,
    /// The app, `http://host:port`.
    pub upstream: http::uri::Authority,
    /// Cookie sealing keys (base64, comma-separated).
    pub cookie_secret: SecretSource,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// The SsoConfig's name.
    pub config_name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its UID, when the operator rendered it (sessions are bound to it).
    pub config_uid: Option<String>,
    /// Where users are recorded.
    pub provisioning: ProvisioningMode,
    /// Which users may sign in when provisioning to Kubernetes: everyone the IdP admits with a
    /// permitted role (`jit`), or only users that already have an SsoUser (`preDeclared`).
    pub user_provisioning: gatehouse_crds::ProvisioningMode,
    /// ID-token claim (exact name or dotted path) → SsoUser `status.attributes` key, in order.
    pub attribute_mappings: Vec<(String, String)>,
    /// Where the env Secret is mounted as files (injected sidecars): a changed non-secret value
    /// there restarts the sidecar to apply it (see [`crate::envwatch`]).
    pub env_dir: Option<PathBuf>,
    /// Whether requests without a session may reach the app.
    pub auth_mode: AuthMode,
    /// The app's own login page.
    pub app_login_path: Option<String>,
    /// Path prefixes that need no session.
    pub skip_auth: Vec<String>,
    /// App path that receives the user as JSON on each sign-in.
    pub provision_hook: Option<String>,
    /// Max age of the user watch before sessions stop being admitted (kubernetes provisioning).
    pub revocation_staleness: Duration,
    /// How often an OIDC session is re-validated at the IdP; `None`: never.
    pub revalidate_interval: Option<Duration>,
    /// How long a due session is kept while the IdP cannot be reached.
    pub revalidate_grace: Duration,
    /// Tolerated clock skew for ID token times.
    pub clock_skew: Duration,
    /// Largest request body sent on to the app, in bytes.
    pub max_request_body: u64,
    /// Longest pause between two pieces of a request body.
    pub request_body_timeout: Duration,
    /// Longest a write to a client may wait for it to read.
    pub send_timeout: Duration,
    /// Longest wait for the app's response head after a request is sent; `None`: no limit.
    pub upstream_response_timeout: Option<Duration>,
    /// Log format.
    pub log_format: LogFormat,
    /// The only provider offered, if set.
    pub exclusive_provider: Option<String>,
    /// Enabled OIDC providers, in the order okta, entra, generic (none when SAML is active).
    pub providers: Vec<ProviderConfig>,
    /// SAML, when it is the active protocol.
    pub saml: Option<SamlConfig>,
}

/// `GATEHOUSE_MAX_REQUEST_BODY` when unset: 64 MiB, room for ordinary uploads.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 64 << 20;

/// Longest pause between two pieces of a request body (`spec.timeouts.requestBody`).
pub const REQUEST_BODY_TIMEOUT: &str = vars::GATEHOUSE_REQUEST_BODY_TIMEOUT;

/// Longest a write to a client may wait for it to read (`spec.timeouts.send`).
pub const SEND_TIMEOUT: &str = vars::GATEHOUSE_SEND_TIMEOUT;

/// Longest wait for the app's response head once a request is sent (unset: no limit).
pub const UPSTREAM_RESPONSE_TIMEOUT: &str = vars::GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT;

/// A size in bytes: a whole number, optionally with a `Ki`, `Mi` or `Gi` suffix (as Kubernetes
/// writes quantities), at least 1 KiB.
fn parse_byte_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = if let Some(d) = text.strip_suffix("Gi") {
        (d, 30)
    } else if let Some(d) = text.strip_suffix("Mi") {
        (d, 20)
    } else if let Some(d) = text.strip_suffix("Ki") {
        (d, 10)
    } else {
        (text, 0)
    };
    let wrong =
        || format!("must be a size in bytes, like 1048576, 512Ki, 64Mi or 1Gi (got {text:?})");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(wrong());
    }
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(wrong)?;
    if bytes < 1024 {
        return Err(format!("must be at least 1Ki (got {text:?})"));
    }
    Ok(bytes)
}

/// Where configuration values come from: the process environment, or a map in tests.
pub trait EnvSource {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> EnvSource for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Variables that enable an OIDC provider (any of them set means OIDC is configured).
const PROTOCOL_VARIABLES_OIDC: [&str; 13] = [
    vars::OKTA_CLIENT_ID,
    vars::OKTA_CLIENT_SECRET,
    vars::OKTA_ISSUER,
    vars::OKTA_ORG_ID,
    vars::ENTRA_CLIENT_ID,
    vars::ENTRA_CLIENT_SECRET,
    vars::ENTRA_TENANT_ID,
    vars::ENTRA_ORG_ID,
    vars::ENTRA_ISSUER,
    vars::OIDC_CLIENT_ID,
    vars::OIDC_CLIENT_SECRET,
    vars::OIDC_ISSUER,
    vars::OIDC_ORG_ID,
];

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    /// Reads the configuration from any variable source.
    pub fn from_source(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env(env);

        // One protocol at a time.
        if let Some(saml_var) = PROTOCOL_VARIABLES_SAML
            .iter()
            .find(|v| env.get(v).is_some())
            && let Some(oidc_var) = PROTOCOL_VARIABLES_OIDC.iter().find(|v| env.is_set(v))
        {
            return Err(ConfigError::new(
                *saml_var,
                format!(
                    "SAML and OIDC cannot be active together ({oidc_var} is also set); configure one protocol: the SAML_* or the OKTA_*/ENTRA_*/OIDC_* variables"
                ),
            ));
        }

        let public_url = parse_public_url(&env)?;
        let listen = env.socket_addr(vars::GATEHOUSE_LISTEN, "0.0.0.0:4180")?;
        let admin_listen = env.socket_addr(vars::GATEHOUSE_ADMIN_LISTEN, "0.0.0.0:9090")?;
        if listen == admin_listen {
            return Err(ConfigError::new(
                vars::GATEHOUSE_ADMIN_LISTEN,
                "must differ from GATEHOUSE_LISTEN",
            ));
        }
        let upstream = parse_upstream(&env)?;

        let cookie_secret = env
            .secret(vars::GATEHOUSE_COOKIE_SECRET)?
            .ok_or_else(|| ConfigError::new(vars::GATEHOUSE_COOKIE_SECRET, "missing (set it or GATEHOUSE_COOKIE_SECRET_FILE): comma-separated base64 32-byte keys"))?;
        gatehouse_auth::cookie::KeyRing::parse(cookie_secret.value.expose())
            .map_err(|e| ConfigError::new(cookie_secret.var, e.to_string()))?;

        let session_ttl = env.duration_between(
            vars::GATEHOUSE_SESSION_TTL,
            "12h",
            Duration::from_secs(60)..=Duration::from_secs(90 * 86400),
            "1m and 90d",
        )?;
        let config_name = env.name(vars::GATEHOUSE_CONFIG, "gatehouse")?;
        let namespace = env.name(vars::GATEHOUSE_NAMESPACE, "default")?;

        let config_uid = env.get(vars::GATEHOUSE_CONFIG_UID);
        let provisioning = match env.get(vars::GATEHOUSE_PROVISIONING).as_deref() {
            None | Some("off") => ProvisioningMode::Off,
            Some("kubernetes") => ProvisioningMode::Kubernetes,
            Some(_) => {
                return Err(ConfigError::new(
                    vars::GATEHOUSE_PROVISIONING,
                    "must be `off` or `kubernetes`",
                ));
            }
        };
        let user_provisioning = match env.get(vars::GATEHOUSE_PROVISIONING_MODE).as_deref() {
            None | Some("jit") => gatehouse_crds::ProvisioningMode::Jit,
            Some("preDeclared") if provisioning == ProvisioningMode::Off => {
                return Err(ConfigError::new(
                    vars::GATEHOUSE_PROVISIONING_MODE,
                    "`preDeclared` needs GATEHOUSE_PROVISIONING=kubernetes (the declared SsoUsers live there)",
                ));
            }
            Some("preDeclared") => gatehouse_crds::ProvisioningMode::PreDeclared,
            Some(_) => {
                return Err(ConfigError::new(
                    vars::GATEHOUSE_PROVISIONING_MODE,
                    "must be `jit` or `preDeclared`",
                ));
            }
        };
        let attribute_mappings = match env.get(vars::GATEHOUSE_ATTRIBUTE_MAPPINGS) {
            None => Vec::new(),
            Some(list) => parse_attribute_mappings(&list)?,
        };
        let env_dir = match env.get(vars::GATEHOUSE_ENV_DIR) {
            None => None,
            Some(dir) if dir.starts_with('/') => Some(PathBuf::from(dir)),
            Some(_) => {
                return Err(ConfigError::new(
                    vars::GATEHOUSE_ENV_DIR,
                    "must be an absolute path (where the env Secret is mounted)",
                ));
            }
        };
        let auth_mode = match env.get(vars::GATEHOUSE_AUTH_MODE).as_deref() {
            None | Some("required") => AuthMode::Required,
            Some("optional") => AuthMode::Optional,
            Some(_) => {
                return Err(ConfigError::new(
                    vars::GATEHOUSE_AUTH_MODE,
                    "must be `required` or `optional`",
                ));
            }
        };
        let app_login_path = env
            .get(vars::GATEHOUSE_APP_LOGIN_PATH)
            .map(|p| {
                checked(
                    vars::GATEHOUSE_APP_LOGIN_PATH,
                    rules::check_app_login_path,
                    p,
                )
            })
            .transpose()?;
        let skip_auth = match env.get(vars::GATEHOUSE_SKIP_AUTH) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    checked(
                        vars::GATEHOUSE_SKIP_AUTH,
                        rules::check_skip_auth,
                        p.to_owned(),
                    )
                })
                .collect::<Result<_, _>>()?,
        };
        let provision_hook = env
            .get(vars::GATEHOUSE_PROVISION_HOOK)
            .map(|p| checked(vars::GATEHOUSE_PROVISION_HOOK, rules::check_hook_path, p))
            .transpose()?;
        let revocation_staleness = env.duration_between(
            vars::GATEHOUSE_REVOCATION_STALENESS,
            "5m",
            rules::REVOCATION_STALENESS.range(),
            &rules::REVOCATION_STALENESS.text(),
        )?;
        let revalidate_interval = env.duration(vars::GATEHOUSE_REVALIDATE_INTERVAL, "15m")?;
        if !(revalidate_interval.is_zero()
            || rules::REVALIDATE_INTERVAL.contains(revalidate_interval))
        {
            return Err(ConfigError::new(
                vars::GATEHOUSE_REVALIDATE_INTERVAL,
                format!(
                    "must be {} (off) or between {}",
                    rules::REVALIDATE_OFF,
                    rules::REVALIDATE_INTERVAL.text()
                ),
            ));
        }
        let revalidate_interval = (!revalidate_interval.is_zero()).then_some(revalidate_interval);
        let revalidate_grace = env.duration_between(
            vars::GATEHOUSE_REVALIDATE_GRACE,
            "1h",
            rules::REVALIDATE_GRACE.range(),
            &rules::REVALIDATE_GRACE.text(),
        )?;
        let clock_skew = env.duration("GATEHOUSE_CLOCK_SKEW", "60s")?;
        if clock_skew > Duration::from_secs(600) {
            return Err(ConfigError::new(
                "GATEHOUSE_CLOCK_SKEW",
                "must be at most 10m",
            ));
        }
        let max_request_body = match env.get(vars::GATEHOUSE_MAX_REQUEST_BODY) {
            None => DEFAULT_MAX_REQUEST_BODY,
            Some(text) => parse_byte_size(&text)
                .map_err(|e| ConfigError::new(vars::GATEHOUSE_MAX_REQUEST_BODY, e))?,
        };
        let (io_timeouts, io_text) = (rules::IO_TIMEOUT.range(), rules::IO_TIMEOUT.text());
        let request_body_timeout =
            env.duration_between(REQUEST_BODY_TIMEOUT, "60s", io_timeouts.clone(), &io_text)?;
        let send_timeout =
            env.duration_between(SEND_TIMEOUT, "60s", io_timeouts.clone(), &io_text)?;
        let upstream_response_timeout = match env.get(UPSTREAM_RESPONSE_TIMEOUT) {
            None => None,
            Some(_) => {
                Some(env.duration_between(UPSTREAM_RESPONSE_TIMEOUT, "", io_timeouts, &io_text)?)
            }
        };
        let log_format = match env.get("GATEHOUSE_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => {
                return Err(ConfigError::new(
                    "GATEHOUSE_LOG_FORMAT",
                    "must be `text` or `json`",
                ));
            }
        };

        let origin = public_url.origin().ascii_serialization();
        let saml = SamlConfig::from_env(&env, &origin)?;
        let mut providers = Vec::new();
        providers.extend(okta::from_env(&env)?);
        providers.extend(entra::from_env(&env)?);
        providers.extend(oidc::from_env(&env)?);
        if providers.is_empty() && saml.is_none() {
            return Err(ConfigError::new(
                vars::OKTA_ISSUER,
                "no sign-in provider is configured: set the OKTA_*, ENTRA_* or OIDC_* variables, or the SAML_* variables",
            ));
        }
        let mut enabled: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
        if saml.is_some() {
            enabled.push(gatehouse_crds::consts::PROVIDER_SAML);
        }

        let exclusive_provider = env.get(vars::AUTH_EXCLUSIVE_PROVIDER);
        if let Some(id) = &exclusive_provider
            && !enabled.contains(&id.as_str())
        {
            return Err(ConfigError::new(
                vars::AUTH_EXCLUSIVE_PROVIDER,
                format!("not an enabled provider (enabled: {})", enabled.join(", ")),
            ));
        }

        Ok(Self {
            public_url,
            listen,
            admin_listen,
            upstream,
            cookie_secret,
            session_ttl,
            config_name,
            namespace,
            config_uid,
            provisioning,
            user_provisioning,
            attribute_mappings,
            env_dir,
            auth_mode,
            app_login_path,
            skip_auth,
            provision_hook,
            revocation_staleness,
            revalidate_interval,
            revalidate_grace,
            clock_skew,
            max_request_body,
            request_body_timeout,
            send_timeout,
            upstream_response_timeout,
            log_format,
            exclusive_provider,
            providers,
            saml,
        })
    }

    /// Ids of the enabled sign-in methods: the OIDC providers, or `saml`.
    pub fn provider_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.providers.iter().map(|p| p.id.as_str()).collect();
        if self.saml.is_some() {
            ids.push(gatehouse_crds::consts::PROVIDER_SAML);
        }
        ids
    }

    /// What the user directory serves: this config's users in its namespace.
    pub fn directory_settings(&self) -> gatehouse_directory::DirectorySettings {
        gatehouse_directory::DirectorySettings {
            namespace: self.namespace.clone(),
            config_name: self.config_name.clone(),
            mode: self.user_provisioning,
            staleness: self.revocation_staleness,
        }
    }

    /// The re-validation settings.
    pub fn revalidation(&self) -> gatehouse_auth::revalidation::Revalidation {
        gatehouse_auth::revalidation::Revalidation {
            interval: self.revalidate_interval,
            grace: self.revalidate_grace,
        }
    }

    /// Whether cookies carry `Secure` and the `__Host-` prefix (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The public origin without a trailing slash, e.g. `https://app.example.com`.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// A one-line summary for `--check-config` (no secrets).
    pub fn summary(&self) -> String {
        let ids = self.provider_ids();
        format!(
            "config ok: providers {}{}; public URL {}; upstream http://{}; auth mode {}; provisioning {}",
            ids.join(", "),
            self.exclusive_provider
                .as_deref()
                .map(|e| format!(" (exclusive: {e})"))
                .unwrap_or_default(),
            self.public_origin(),
            self.upstream,
            match self.auth_mode {
                AuthMode::Required => "required",
                AuthMode::Optional => "optional",
            },
            match self.provisioning {
                ProvisioningMode::Off => "off".to_owned(),
                ProvisioningMode::Kubernetes => format!(
                    "kubernetes ({}, namespace {})",
                    self.user_provisioning.as_str(),
                    self.namespace
                ),
            }
        )
    }
}

/// `claim=attribute,…` → pairs, in order. Claim names are exact names or dotted paths (as the
/// SsoConfig's CEL rule allows); attribute names are letters, digits, `_`, `.`, `-`.
fn parse_attribute_mappings(list: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let var = vars::GATEHOUSE_ATTRIBUTE_MAPPINGS;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((claim, attribute)) = item.split_once('=') else {
            return Err(ConfigError::new(
                var,
                format!("`{item}` is not `claim=attribute`"),
            ));
        };
        pairs.push((claim.trim().to_owned(), attribute.trim().to_owned()));
    }
    // The shared rule's message, and the first pair it stops at.
    for end in 1..=pairs.len() {
        let prefix = pairs[..end].iter().map(|(c, a)| (c.as_str(), a.as_str()));
        if let Err(message) = rules::check_attribute_mappings(prefix) {
            let (claim, attribute) = &pairs[end - 1];
            return Err(ConfigError::new(
                var,
                format!("{message} (at `{claim}={attribute}`)"),
            ));
        }
    }
    Ok(pairs)
}

/// `value` when `rule` (one of the contract's [`rules`], which the operator applies too) accepts
/// it; else the rule's message on `var`.
fn checked(
    var: &str,
    rule: fn(&str) -> Result<(), &'static str>,
    value: String,
) -> Result<String, ConfigError> {
    rule(&value)
        .map(|()| value)
        .map_err(|message| ConfigError::new(var, message))
}

/// Variable access with the contract's conventions: empty means unset; secrets may come from files.
pub(crate) struct Env<'a>(&'a dyn EnvSource);

impl Env<'_> {
    /// A trimmed, non-empty value.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.0
            .var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` or `name_FILE` is set.
    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some() || self.get(&format!("{name}_FILE")).is_some()
    }

    /// A secret from the file named by `name_FILE`, else from `name`. The file wins when both are
    /// set: the operator's injection sets both (the environment from the env Secret, the file from
    /// the same Secret mounted as a volume), and only the file can change while the sidecar runs.
    pub(crate) fn secret(&self, name: &'static str) -> Result<Option<SecretSource>, ConfigError> {
        let file_var = format!("{name}_FILE");
        match (
            self.0.var(name).filter(|v| !v.trim().is_empty()),
            self.get(&file_var),
        ) {
            (Some(value), None) => Ok(Some(SecretSource {
                var: name,
                value: Secret::new(value.trim()),
                file: None,
            })),
            (_, Some(path)) => {
                let path = PathBuf::from(path);
                let value = read_secret_file(&path)
                    .map_err(|problem| ConfigError::new(file_var, problem))?;
                Ok(Some(SecretSource {
                    var: name,
                    value,
                    file: Some(path),
                }))
            }
            (None, None) => Ok(None),
        }
    }

    /// A required secret.
    pub(crate) fn required_secret(
        &self,
        name: &'static str,
        why: &str,
    ) -> Result<SecretSource, ConfigError> {
        self.secret(name)?
            .ok_or_else(|| ConfigError::new(name, format!("missing (or set {name}_FILE); {why}")))
    }

    /// A required plain value.
    pub(crate) fn required(&self, name: &str, why: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, format!("missing; {why}")))
    }

    fn socket_addr(&self, name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        value.parse().map_err(|e| {
            ConfigError::new(
                name,
                format!("not a socket address like 0.0.0.0:4180 ({e})"),
            )
        })
    }

    fn duration(&self, name: &str, default: &str) -> Result<Duration, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        humantime::parse_duration(&value).map_err(|e| {
            ConfigError::new(name, format!("not a duration like 90s, 30m or 12h ({e})"))
        })
    }

    /// [`Self::duration`] within `range`; `range_text` names it in the error ("1s and 1h").
    fn duration_between(
        &self,
        name: &str,
        default: &str,
        range: std::ops::RangeInclusive<Duration>,
        range_text: &str,
    ) -> Result<Duration, ConfigError> {
        let value = self.duration(name, default)?;
        if !range.contains(&value) {
            return Err(ConfigError::new(
                name,
                format!("must be between {range_text}"),
            ));
        }
        Ok(value)
    }

    /// A Kubernetes object name (DNS-1123 subdomain).
    fn name(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        let ok = value.len() <= 253
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !value.starts_with(['-', '.'])
            && !value.ends_with(['-', '.']);
        if ok {
            Ok(value)
        } else {
            Err(ConfigError::new(
                name,
                "not a Kubernetes name (lowercase letters, digits, `-` and `.`)",
            ))
        }
    }
}

/// Reads a secret file: trailing newlines dropped, must not be empty. Errors never hold contents.
pub(crate) fn read_secret_file(path: &std::path::Path) -> Result<Secret, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read the file ({})", e.kind()))?;
    if raw.len() > 64 * 1024 {
        return Err("the file is larger than 64 KiB".to_owned());
    }
    let text = String::from_utf8(raw).map_err(|_| "the file is not UTF-8 text".to_owned())?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the file is empty".to_owned());
    }
    Ok(Secret::new(trimmed))
}

/// Parses an issuer URL: https, or http on a loopback host (local tests, the demo), as
/// [`rules::check_issuer`] decides for the operator too.
pub(crate) fn parse_issuer(var: &str, value: &str) -> Result<String, ConfigError> {
    rules::check_issuer(value).map_err(|message| ConfigError::new(var, message))?;
    // Issuers are compared byte for byte with `iss`; keep what the user wrote.
    Ok(value.to_owned())
}

/// https anywhere; http only for loopback hosts.
pub(crate) fn check_https_or_loopback(var: &str, url: &url::Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(url) => Ok(()),
        "http" => Err(ConfigError::new(
            var,
            "must be https (plain http is accepted only for localhost)",
        )),
        _ => Err(ConfigError::new(var, "must be an https URL")),
    }
}

pub(crate) use rules::is_loopback_host;

fn parse_public_url(env: &Env<'_>) -> Result<url::Url, ConfigError> {
    const VAR: &str = vars::GATEHOUSE_PUBLIC_URL;
    let value = env.required(VAR, "the URL users open, like https://app.example.com")?;
    let url =
        url::Url::parse(&value).map_err(|e| ConfigError::new(VAR, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ConfigError::new(VAR, "must be an http or https URL"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            VAR,
            "must be an origin like https://app.example.com (no path, query or fragment)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(VAR, "must not contain credentials"));
    }
    Ok(url)
}

fn parse_upstream(env: &Env<'_>) -> Result<http::uri::Authority, ConfigError> {
    const VAR: &str = vars::GATEHOUSE_UPSTREAM;
    let value = env
        .get(VAR)
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let uri: http::Uri = value
        .parse()
        .map_err(|e| ConfigError::new(VAR, format!("not a URL ({e})")))?;
    if uri.scheme_str() != Some("http") {
        return Err(ConfigError::new(
            VAR,
            "must be a plain http:// URL (the app runs in the same pod)",
        ));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(ConfigError::new(VAR, "must not have a path or query"));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| ConfigError::new(VAR, "has no host"))?;
    if authority.as_str().contains('@') {
        return Err(ConfigError::new(VAR, "must not contain credentials"));
    }
    Ok(authority)
}

/// Parses a role map (`OIDC_ROLE_MAP`, `SAML_ROLE_MAP`): the JSON array the operator renders, or
/// the older `value=role,…` form.
pub(crate) fn parse_role_map(var: &str, value: &str) -> Result<Vec<RoleRule>, ConfigError> {
    gatehouse_crds::parse_role_map(value).map_err(|e| ConfigError::new(var, e.to_string()))
}

/// Checks that all of a provider's variables are present once any of them is.
pub(crate) fn require_all(
    env: &Env<'_>,
    provider: &str,
    vars: &[&'static str],
) -> Result<bool, ConfigError> {
    let set: Vec<bool> = vars.iter().map(|v| env.is_set(v)).collect();
    if set.iter().all(|s| !s) {
        return Ok(false);
    }
    if let Some(missing) = vars.iter().zip(&set).find(|(_, s)| !**s).map(|(v, _)| v) {
        let present = vars
            .iter()
            .zip(&set)
            .find(|(_, s)| **s)
            .map(|(v, _)| *v)
            .unwrap_or_default();
        return Err(ConfigError::new(
            *missing,
            format!(
                "missing ({present} is set; {provider} needs {})",
                vars.join(", ")
            ),
        ));
    }
    Ok(true)
}

/// Builds the generic role policy from `OIDC_ROLE_CLAIM`, `OIDC_ROLE_MAP`, `OIDC_DEFAULT_ROLE`.
pub(crate) fn claim_role_policy(env: &Env<'_>) -> Result<RolePolicy, ConfigError> {
    role_policy(
        env,
        vars::OIDC_ROLE_CLAIM,
        vars::OIDC_ROLE_MAP,
        vars::OIDC_DEFAULT_ROLE,
    )
}

/// A rule-based role policy from its three variables (the claim or attribute read, the ordered
/// rules, the default role): OIDC's and SAML's are the same rules.
pub(crate) fn role_policy(
    env: &Env<'_>,
    claim_var: &str,
    map_var: &str,
    default_var: &str,
) -> Result<RolePolicy, ConfigError> {
    let claim = env.get(claim_var);
    let rules = env
        .get(map_var)
        .map(|m| parse_role_map(map_var, &m))
        .transpose()?;
    let default = env
        .get(default_var)
        .map(|r| {
            Role::parse(&r)
                .ok_or_else(|| ConfigError::new(default_var, "must be `admin` or `member`"))
        })
        .transpose()?;
    match (&claim, &rules, default) {
        (None, Some(_), _) => Err(ConfigError::new(
            claim_var,
            format!("missing; {map_var} needs the claim it reads"),
        )),
        (Some(_), None, None) => Err(ConfigError::new(
            map_var,
            format!("missing; {claim_var} is set but no rules map it (and no {default_var})"),
        )),
        (None, None, None) => Err(ConfigError::new(
            claim_var,
            format!(
                "missing; set {claim_var} and {map_var}, or {default_var}, or every user is denied"
            ),
        )),
        _ => Ok(RolePolicy::Claim {
            claim,
            rules: rules.unwrap_or_default(),
            default,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const SECRET: &str = "s3cr3t-client-value";

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("GATEHOUSE_PUBLIC_URL", "https://app.example.com".to_owned()),
            ("GATEHOUSE_COOKIE_SECRET", KEY.to_owned()),
            ("OKTA_CLIENT_ID", "client".to_owned()),
            ("OKTA_CLIENT_SECRET", SECRET.to_owned()),
            ("OKTA_ISSUER", "https://acme.okta.com".to_owned()),
            ("OKTA_ORG_ID", "acme".to_owned()),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        let lookup = |k: &str| vars.get(k).cloned();
        Config::from_source(&lookup)
    }

    fn err(vars: &HashMap<&'static str, String>) -> ConfigError {
        match load(vars) {
            Ok(_) => panic!("config unexpectedly valid"),
            Err(e) => e,
        }
    }

    #[test]
    fn revalidation_defaults_to_every_15m_with_an_hour_of_grace_and_0s_turns_it_off() {
        let config = load(&base()).expect("valid");
        assert_eq!(config.revalidate_interval, Some(Duration::from_secs(900)));
        assert_eq!(config.revalidate_grace, Duration::from_secs(3600));
        let mut vars = base();
        vars.insert("GATEHOUSE_REVALIDATE_INTERVAL", "0s".to_owned());
        vars.insert("GATEHOUSE_REVALIDATE_GRACE", "2m".to_owned());
        let config = load(&vars).expect("valid");
        assert_eq!(config.revalidate_interval, None);
        assert_eq!(config.revalidate_grace, Duration::from_secs(120));
        for bad in ["500ms", "25h", "soon"] {
            vars.insert("GATEHOUSE_REVALIDATE_INTERVAL", bad.to_owned());
            assert_eq!(err(&vars).var, "GATEHOUSE_REVALIDATE_INTERVAL", "{bad}");
        }
        vars.insert("GATEHOUSE_REVALIDATE_INTERVAL", "1s".to_owned());
        vars.insert("GATEHOUSE_REVALIDATE_GRACE", "169h".to_owned());
        assert_eq!(err(&vars).var, "GATEHOUSE_REVALIDATE_GRACE");
    }

    fn saml_base() -> HashMap<&'static str, String> {
        let mut vars = base();
        for k in [
            "OKTA_CLIENT_ID",
            "OKTA_CLIENT_SECRET",
            "OKTA_ISSUER",
            "OKTA_ORG_ID",
        ] {
            vars.remove(k);
        }
        vars.insert(
            "SAML_IDP_METADATA_URL",
            "http://127.0.0.1:9000/metadata".to_owned(),
        );
        vars.insert("SAML_ROLE_ATTRIBUTE", "memberOf".to_owned());
        vars.insert(
            "SAML_ROLE_MAP",
            r#"[{"value":"cn=hr-admins,ou=groups,dc=example,dc=com","role":"admin"},{"value":"staff","role":"member"}]"#.to_owned(),
        );
        vars.insert("SAML_ORG_ID", "acme".to_owned());
        vars
    }

    #[test]
    fn saml_config_reads_its_variables_with_defaults() {
        let c = load(&saml_base()).expect("valid");
        assert!(c.providers.is_empty());
        assert_eq!(c.provider_ids(), ["saml"]);
        let saml = c.saml.as_ref().expect("saml");
        assert_eq!(
            saml.sp_entity_id,
            "https://app.example.com/api/auth/saml/metadata"
        );
        assert_eq!(saml.acs_url, "https://app.example.com/api/auth/saml/acs");
        assert_eq!(saml.slo_url, "https://app.example.com/api/auth/logout");
        assert_eq!(saml.org_id, "acme");
        match &saml.roles {
            RolePolicy::Claim {
                claim,
                rules,
                default,
            } => {
                assert_eq!(claim.as_deref(), Some("memberOf"));
                assert_eq!(rules[0].value, "cn=hr-admins,ou=groups,dc=example,dc=com");
                assert_eq!(rules[1].role, Role::Member);
                assert_eq!(*default, None);
            }
            other => panic!("{other:?}"),
        }
        let mut vars = saml_base();
        vars.insert("SAML_SP_ENTITY_ID", "urn:acme:portal".to_owned());
        vars.insert("AUTH_EXCLUSIVE_PROVIDER", "saml".to_owned());
        let c = load(&vars).expect("valid");
        assert_eq!(
            c.saml.as_ref().map(|s| s.sp_entity_id.as_str()),
            Some("urn:acme:portal")
        );
        assert_eq!(c.exclusive_provider.as_deref(), Some("saml"));
        assert!(
            c.summary().contains("providers saml (exclusive: saml)"),
            "{}",
            c.summary()
        );
    }

    #[test]
    fn saml_and_oidc_together_are_refused_in_one_line_naming_both() {
        let mut vars = saml_base();
        vars.insert("OIDC_ISSUER", "https://idp.example".to_owned());
        let e = err(&vars);
        let line = e.to_string();
        assert!(line.starts_with("SAML_"), "{line}");
        assert!(line.contains("OIDC_ISSUER"), "{line}");
        assert!(
            line.contains("SAML and OIDC cannot be active together"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn saml_config_errors_name_the_variable() {
        let inline = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:IDPSSODescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#;
        let cases: [(&str, Option<&str>, &str); 7] = [
            (
                "SAML_IDP_METADATA_URL",
                Some("http://idp.example/metadata"),
                "SAML_IDP_METADATA_URL: must be https",
            ),
            (
                "SAML_IDP_METADATA_URL",
                None,
                "SAML_IDP_METADATA_URL: missing",
            ),
            (
                "SAML_IDP_METADATA",
                Some("<x/>"),
                "SAML_IDP_METADATA: set SAML_IDP_METADATA_URL or SAML_IDP_METADATA, not both",
            ),
            ("SAML_ORG_ID", None, "SAML_ORG_ID: missing"),
            (
                "SAML_ROLE_MAP",
                Some("a=owner"),
                "SAML_ROLE_MAP: entry 1: role must be",
            ),
            (
                "SAML_DEFAULT_ROLE",
                Some("root"),
                "SAML_DEFAULT_ROLE: must be",
            ),
            (
                "AUTH_EXCLUSIVE_PROVIDER",
                Some("okta"),
                "AUTH_EXCLUSIVE_PROVIDER: not an enabled provider (enabled: saml)",
            ),
        ];
        for (var, value, expected) in cases {
            let mut vars = saml_base();
            match value {
                Some(v) => vars.insert(var, v.to_owned()),
                None => vars.remove(var),
            };
            let line = err(&vars).to_string();
            assert!(line.starts_with(expected), "{var}={value:?}: got `{line}`");
        }
        // Inline metadata is parsed at start-up, with the shared parser's words.
        let mut vars = saml_base();
        vars.remove("SAML_IDP_METADATA_URL");
        vars.insert("SAML_IDP_METADATA", inline.to_owned());
        assert_eq!(
            err(&vars).to_string(),
            format!(
                "SAML_IDP_METADATA: {}",
                gatehouse_crds::saml_metadata::MetadataError::NoSigningCert
            )
        );
        // A default role alone, or with the attribute and no rules, is enough.
        let mut vars = saml_base();
        vars.remove("SAML_ROLE_MAP");
        vars.insert("SAML_DEFAULT_ROLE", "member".to_owned());
        assert!(load(&vars).is_ok());
    }

    #[test]
    fn minimal_okta_config_has_the_documented_defaults() {
        let c = load(&base()).expect("valid");
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.providers[0].id, "okta");
        assert_eq!(c.listen.to_string(), "0.0.0.0:4180");
        assert_eq!(c.admin_listen.to_string(), "0.0.0.0:9090");
        assert_eq!(c.upstream.as_str(), "127.0.0.1:8080");
        assert_eq!(c.session_ttl, Duration::from_secs(12 * 3600));
        assert_eq!(c.clock_skew, Duration::from_secs(60));
        assert_eq!(c.max_request_body, 64 * 1024 * 1024);
        assert_eq!(c.request_body_timeout, Duration::from_secs(60));
        assert_eq!(c.send_timeout, Duration::from_secs(60));
        assert_eq!(c.upstream_response_timeout, None, "off unless set");
        assert_eq!(c.auth_mode, AuthMode::Required);
        assert_eq!(c.provisioning, ProvisioningMode::Off);
        assert!(c.secure_cookies());
        assert_eq!(c.public_origin(), "https://app.example.com");
    }

    #[test]
    fn request_body_limit_takes_bytes_or_binary_suffixes() {
        for (text, bytes) in [
            ("4096", 4096),
            ("512Ki", 512 << 10),
            ("10Mi", 10 << 20),
            ("2Gi", 2 << 30),
        ] {
            let mut vars = base();
            vars.insert("GATEHOUSE_MAX_REQUEST_BODY", text.to_owned());
            assert_eq!(load(&vars).expect(text).max_request_body, bytes, "{text}");
        }
    }

    #[test]
    fn kubernetes_provisioning_reads_mode_mappings_and_config_uid() {
        let mut vars = base();
        vars.insert("GATEHOUSE_PROVISIONING", "kubernetes".to_owned());
        vars.insert("GATEHOUSE_PROVISIONING_MODE", "preDeclared".to_owned());
        vars.insert("GATEHOUSE_CONFIG_UID", "0f4c-uid".to_owned());
        vars.insert(
            "GATEHOUSE_ATTRIBUTE_MAPPINGS",
            "department=department, https://acme.example/cost_center=costCenter,address.country=country".to_owned(),
        );
        let err_line = load(&vars)
            .map(|_| ())
            .expect_err("a URL is not a claim name")
            .to_string();
        assert!(
            err_line.starts_with(&format!(
                "GATEHOUSE_ATTRIBUTE_MAPPINGS: {}",
                rules::MSG_ATTRIBUTE_MAPPINGS
            )) && err_line.ends_with("(at `https://acme.example/cost_center=costCenter`)"),
            "{err_line}"
        );
        vars.insert(
            "GATEHOUSE_ATTRIBUTE_MAPPINGS",
            "department=department, acme:cost_center=costCenter,address.country=country".to_owned(),
        );
        let c = load(&vars).expect("valid");
        assert_eq!(c.provisioning, ProvisioningMode::Kubernetes);
        assert_eq!(
            c.user_provisioning,
            gatehouse_crds::ProvisioningMode::PreDeclared
        );
        assert_eq!(c.config_uid.as_deref(), Some("0f4c-uid"));
        assert_eq!(
            c.attribute_mappings,
            [
                ("department".to_owned(), "department".to_owned()),
                ("acme:cost_center".to_owned(), "costCenter".to_owned()),
                ("address.country".to_owned(), "country".to_owned()),
            ]
        );
        assert!(
            c.summary()
                .ends_with("provisioning kubernetes (preDeclared, namespace default)"),
            "{}",
            c.summary()
        );

        let defaults = load(&base()).expect("valid");
        assert_eq!(
            defaults.user_provisioning,
            gatehouse_crds::ProvisioningMode::Jit
        );
        assert!(defaults.attribute_mappings.is_empty());
        assert_eq!(defaults.config_uid, None);
        assert!(defaults.summary().ends_with("provisioning off"));
    }

    #[test]
    fn every_error_names_its_variable() {
        let cases: Vec<(&str, Option<&str>, &str)> = vec![
            (
                "OKTA_ISSUER",
                Some("not a url"),
                "OKTA_ISSUER: issuer must be an absolute",
            ),
            (
                "OKTA_ISSUER",
                Some("http://acme.okta.com"),
                "OKTA_ISSUER: provider issuers must use https",
            ),
            ("OKTA_ORG_ID", None, "OKTA_ORG_ID: missing"),
            ("OKTA_CLIENT_SECRET", None, "OKTA_CLIENT_SECRET: missing"),
            (
                "GATEHOUSE_PUBLIC_URL",
                None,
                "GATEHOUSE_PUBLIC_URL: missing",
            ),
            (
                "GATEHOUSE_PUBLIC_URL",
                Some("https://a.example/app"),
                "GATEHOUSE_PUBLIC_URL: must be an origin",
            ),
            (
                "GATEHOUSE_COOKIE_SECRET",
                None,
                "GATEHOUSE_COOKIE_SECRET: missing",
            ),
            (
                "GATEHOUSE_COOKIE_SECRET",
                Some("c2hvcnQ="),
                "GATEHOUSE_COOKIE_SECRET: key 1",
            ),
            (
                "GATEHOUSE_SESSION_TTL",
                Some("forever"),
                "GATEHOUSE_SESSION_TTL: not a duration",
            ),
            (
                "GATEHOUSE_SESSION_TTL",
                Some("10s"),
                "GATEHOUSE_SESSION_TTL: must be between",
            ),
            (
                "GATEHOUSE_LISTEN",
                Some("4180"),
                "GATEHOUSE_LISTEN: not a socket address",
            ),
            (
                "GATEHOUSE_UPSTREAM",
                Some("https://127.0.0.1:8443"),
                "GATEHOUSE_UPSTREAM: must be a plain http",
            ),
            (
                "GATEHOUSE_AUTH_MODE",
                Some("sometimes"),
                "GATEHOUSE_AUTH_MODE: must be",
            ),
            (
                "GATEHOUSE_PROVISIONING",
                Some("k8s"),
                "GATEHOUSE_PROVISIONING: must be `off` or `kubernetes`",
            ),
            (
                "GATEHOUSE_PROVISIONING_MODE",
                Some("predeclared"),
                "GATEHOUSE_PROVISIONING_MODE: must be `jit` or `preDeclared`",
            ),
            (
                "GATEHOUSE_PROVISIONING_MODE",
                Some("preDeclared"),
                "GATEHOUSE_PROVISIONING_MODE: `preDeclared` needs GATEHOUSE_PROVISIONING=kubernetes",
            ),
            (
                "GATEHOUSE_ATTRIBUTE_MAPPINGS",
                Some("department"),
                "GATEHOUSE_ATTRIBUTE_MAPPINGS: `department` is not `claim=attribute`",
            ),
            (
                "GATEHOUSE_ATTRIBUTE_MAPPINGS",
                Some("department=dept ok"),
                "GATEHOUSE_ATTRIBUTE_MAPPINGS: attributeMappings keys must be claim names",
            ),
            (
                "GATEHOUSE_ATTRIBUTE_MAPPINGS",
                Some("1claim=dept"),
                "GATEHOUSE_ATTRIBUTE_MAPPINGS: attributeMappings keys must be claim names",
            ),
            (
                "GATEHOUSE_ATTRIBUTE_MAPPINGS",
                Some("department=dept,division=dept"),
                "GATEHOUSE_ATTRIBUTE_MAPPINGS: attributeMappings keys must be claim names and values attribute names (letters, digits, '_', '.', '-'), each attribute name used once (at `division=dept`)",
            ),
            (
                "GATEHOUSE_SKIP_AUTH",
                Some("/ok,/a/../b"),
                "GATEHOUSE_SKIP_AUTH: skipAuth entries must be paths",
            ),
            (
                "GATEHOUSE_SKIP_AUTH",
                Some("/"),
                "GATEHOUSE_SKIP_AUTH: skipAuth entries must be paths",
            ),
            (
                "GATEHOUSE_APP_LOGIN_PATH",
                Some("/login"),
                "GATEHOUSE_APP_LOGIN_PATH: appLoginPath must be a path",
            ),
            (
                "GATEHOUSE_APP_LOGIN_PATH",
                Some("login"),
                "GATEHOUSE_APP_LOGIN_PATH: appLoginPath must be a path",
            ),
            (
                "GATEHOUSE_CLOCK_SKEW",
                Some("1h"),
                "GATEHOUSE_CLOCK_SKEW: must be at most",
            ),
            (
                "GATEHOUSE_MAX_REQUEST_BODY",
                Some("10MB"),
                "GATEHOUSE_MAX_REQUEST_BODY: must be a size in bytes",
            ),
            (
                "GATEHOUSE_MAX_REQUEST_BODY",
                Some("-1"),
                "GATEHOUSE_MAX_REQUEST_BODY: must be a size in bytes",
            ),
            (
                "GATEHOUSE_MAX_REQUEST_BODY",
                Some("99999999999999999999Gi"),
                "GATEHOUSE_MAX_REQUEST_BODY: must be a size in bytes",
            ),
            (
                "GATEHOUSE_MAX_REQUEST_BODY",
                Some("100"),
                "GATEHOUSE_MAX_REQUEST_BODY: must be at least 1Ki",
            ),
            (
                "GATEHOUSE_REQUEST_BODY_TIMEOUT",
                Some("0s"),
                "GATEHOUSE_REQUEST_BODY_TIMEOUT: must be between 1s and 1h",
            ),
            (
                "GATEHOUSE_SEND_TIMEOUT",
                Some("2h"),
                "GATEHOUSE_SEND_TIMEOUT: must be between 1s and 1h",
            ),
            (
                "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT",
                Some("500ms"),
                "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT: must be between 1s and 1h",
            ),
            (
                "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT",
                Some("a while"),
                "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT: not a duration",
            ),
            (
                "GATEHOUSE_REQUEST_BODY_TIMEOUT",
                Some("soon"),
                "GATEHOUSE_REQUEST_BODY_TIMEOUT: not a duration",
            ),
            (
                "GATEHOUSE_LOG_FORMAT",
                Some("xml"),
                "GATEHOUSE_LOG_FORMAT: must be",
            ),
            (
                "GATEHOUSE_CONFIG",
                Some("Portal"),
                "GATEHOUSE_CONFIG: not a Kubernetes name",
            ),
            (
                "AUTH_EXCLUSIVE_PROVIDER",
                Some("entra"),
                "AUTH_EXCLUSIVE_PROVIDER: not an enabled provider (enabled: okta)",
            ),
            (
                "SAML_IDP_METADATA_URL",
                Some("https://idp/metadata"),
                "SAML_IDP_METADATA_URL: SAML",
            ),
        ];
        for (var, value, expected) in cases {
            let mut vars = base();
            match value {
                Some(v) => vars.insert(var, v.to_owned()),
                None => vars.remove(var),
            };
            let e = err(&vars);
            let line = e.to_string();
            assert!(line.starts_with(expected), "{var}={value:?}: got `{line}`");
            assert!(!line.contains('\n'), "one line: {line}");
            assert!(!line.contains(SECRET), "no secret in: {line}");
        }
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        let mut vars = base();
        vars.insert("OKTA_CLIENT_SECRET_FILE", "/nonexistent".to_owned());
        let e = err(&vars);
        assert_eq!(e.var, "OKTA_CLIENT_SECRET_FILE");
        assert!(!e.to_string().contains(SECRET));

        let mut vars = base();
        let bad_key = "bm90LWEtdmFsaWQta2V5LXRoYXQtaXMtc2VjcmV0";
        vars.insert("GATEHOUSE_COOKIE_SECRET", format!("{KEY},{bad_key}"));
        let e = err(&vars);
        assert!(e.to_string().contains("key 2"), "{e}");
        assert!(!e.to_string().contains(bad_key), "{e}");

        let config = load(&base()).expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(!debug.contains(KEY), "{debug}");
        assert!(!config.summary().contains(SECRET));
    }

    #[test]
    fn secrets_are_read_from_files() {
        let dir = std::env::temp_dir().join(format!("gatehouse-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("okta-secret");
        std::fs::write(&file, format!("{SECRET}\n")).expect("write");
        let mut vars = base();
        vars.remove("OKTA_CLIENT_SECRET");
        vars.insert("OKTA_CLIENT_SECRET_FILE", file.display().to_string());
        let c = load(&vars).expect("valid");
        assert_eq!(c.providers[0].client_secret.value.expose(), SECRET);
        assert_eq!(
            c.providers[0].client_secret.file.as_deref(),
            Some(file.as_path())
        );

        std::fs::write(&file, "\n").expect("write");
        let e = err(&vars);
        assert_eq!(e.to_string(), "OKTA_CLIENT_SECRET_FILE: the file is empty");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_file_wins_over_the_value() {
        let dir = std::env::temp_dir().join(format!("gatehouse-both-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("OKTA_CLIENT_SECRET");
        std::fs::write(&file, "rotated-secret\n").expect("write");
        let mut vars = base();
        vars.insert("OKTA_CLIENT_SECRET_FILE", file.display().to_string());
        let c = load(&vars).expect("valid");
        let secret = &c.providers[0].client_secret;
        assert_eq!(secret.value.expose(), "rotated-secret");
        assert_eq!(secret.file.as_deref(), Some(file.as_path()));
        // A file that cannot be read is an error even when the value is set: never fall back
        // silently to a value that may have been rotated away.
        vars.insert(
            "OKTA_CLIENT_SECRET_FILE",
            "/nonexistent/OKTA_CLIENT_SECRET".to_owned(),
        );
        assert_eq!(err(&vars).var, "OKTA_CLIENT_SECRET_FILE");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn http_issuer_is_only_for_loopback() {
        let mut vars = base();
        vars.insert("OKTA_ISSUER", "http://127.0.0.1:9000/okta".to_owned());
        assert!(load(&vars).is_ok());
        vars.insert("OKTA_ISSUER", "http://localhost:9000/okta".to_owned());
        assert!(load(&vars).is_ok());
    }

    #[test]
    fn entra_and_generic_providers() {
        let mut vars = base();
        vars.insert("ENTRA_CLIENT_ID", "e-client".to_owned());
        vars.insert("ENTRA_CLIENT_SECRET", "e-secret".to_owned());
        vars.insert(
            "ENTRA_TENANT_ID",
            "0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90".to_owned(),
        );
        vars.insert("ENTRA_ORG_ID", "acme".to_owned());
        vars.insert("OIDC_PROVIDER_ID", "auth0".to_owned());
        vars.insert("OIDC_PROVIDER_NAME", "Auth0".to_owned());
        vars.insert("OIDC_CLIENT_ID", "a-client".to_owned());
        vars.insert("OIDC_CLIENT_SECRET", "a-secret".to_owned());
        vars.insert("OIDC_ISSUER", "https://acme.us.auth0.com/".to_owned());
        vars.insert("OIDC_ORG_ID", "acme".to_owned());
        vars.insert("OIDC_ROLE_CLAIM", "groups".to_owned());
        vars.insert(
            "OIDC_ROLE_MAP",
            "portal-admins=admin, portal-staff=member".to_owned(),
        );
        vars.insert("AUTH_EXCLUSIVE_PROVIDER", "auth0".to_owned());
        let c = load(&vars).expect("valid");
        let ids: Vec<&str> = c.providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["okta", "entra", "auth0"]);
        assert_eq!(
            c.providers[1].issuer,
            "https://login.microsoftonline.com/0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90/v2.0"
        );
        assert_eq!(c.providers[2].issuer, "https://acme.us.auth0.com/");
        assert_eq!(c.providers[2].display_name, "Auth0");
        assert_eq!(c.exclusive_provider.as_deref(), Some("auth0"));
        match &c.providers[2].roles {
            RolePolicy::Claim {
                claim,
                rules,
                default,
            } => {
                assert_eq!(claim.as_deref(), Some("groups"));
                assert_eq!(rules.len(), 2);
                assert_eq!(rules[0].value, "portal-admins");
                assert_eq!(rules[1].role, Role::Member);
                assert_eq!(*default, None);
            }
            other => panic!("unexpected policy {other:?}"),
        }

        vars.insert(
            "ENTRA_ISSUER",
            "http://127.0.0.1:9000/entra/t/v2.0".to_owned(),
        );
        let c = load(&vars).expect("valid");
        assert_eq!(c.providers[1].issuer, "http://127.0.0.1:9000/entra/t/v2.0");
    }

    #[test]
    fn generic_provider_errors() {
        let generic = |extra: &[(&'static str, &str)]| {
            let mut vars = base();
            vars.insert("OIDC_CLIENT_ID", "a".to_owned());
            vars.insert("OIDC_CLIENT_SECRET", "b".to_owned());
            vars.insert("OIDC_ISSUER", "https://idp.example".to_owned());
            vars.insert("OIDC_ORG_ID", "o".to_owned());
            for (k, v) in extra {
                vars.insert(k, (*v).to_owned());
            }
            load(&vars).err().map(|e| e.to_string()).unwrap_or_default()
        };
        assert!(generic(&[]).starts_with("OIDC_ROLE_CLAIM: missing"));
        assert!(generic(&[("OIDC_ROLE_CLAIM", "groups")]).starts_with("OIDC_ROLE_MAP: missing"));
        assert!(
            generic(&[("OIDC_ROLE_CLAIM", "groups"), ("OIDC_ROLE_MAP", "a=owner")])
                .starts_with("OIDC_ROLE_MAP: entry 1: role must be")
        );
        assert!(
            generic(&[
                ("OIDC_ROLE_CLAIM", "groups"),
                ("OIDC_ROLE_MAP", "a=admin,oops")
            ])
            .starts_with("OIDC_ROLE_MAP: entry 2 is not")
        );
        assert!(
            generic(&[("OIDC_DEFAULT_ROLE", "root")]).starts_with("OIDC_DEFAULT_ROLE: must be")
        );
        assert!(generic(&[("OIDC_DEFAULT_ROLE", "member")]).is_empty());
        assert!(
            generic(&[
                ("OIDC_DEFAULT_ROLE", "member"),
                ("OIDC_PROVIDER_ID", "Bad_Id")
            ])
            .starts_with("OIDC_PROVIDER_ID:")
        );
        assert!(
            generic(&[
                ("OIDC_DEFAULT_ROLE", "member"),
                ("OIDC_PROVIDER_ID", "okta")
            ])
            .starts_with("OIDC_PROVIDER_ID:")
        );
    }

    #[test]
    fn no_provider_is_an_error() {
        let mut vars = base();
        for k in [
            "OKTA_CLIENT_ID",
            "OKTA_CLIENT_SECRET",
            "OKTA_ISSUER",
            "OKTA_ORG_ID",
        ] {
            vars.remove(k);
        }
        assert!(err(&vars).problem.contains("no sign-in provider"));
    }

    #[test]
    fn skip_auth_list_is_parsed() {
        let mut vars = base();
        vars.insert(
            "GATEHOUSE_SKIP_AUTH",
            "/healthz, /public/ ,/static".to_owned(),
        );
        let c = load(&vars).expect("valid");
        assert_eq!(c.skip_auth, ["/healthz", "/public/", "/static"]);
        vars.insert("GATEHOUSE_SKIP_AUTH", "/healthz,/@vite/client".to_owned());
        assert_eq!(
            load(&vars).expect("valid").skip_auth,
            ["/healthz", "/@vite/client"]
        );
        vars.insert("GATEHOUSE_SKIP_AUTH", "/".to_owned());
        assert_eq!(err(&vars).problem, rules::MSG_SKIP_AUTH);
    }
}
