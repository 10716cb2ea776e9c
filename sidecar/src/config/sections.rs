//! The sidecar's own settings (`GATEHOUSE_*`), one reader per section, each returning its part of
//! the configuration. `Config::from_source` calls them in the order they appear here, which is the
//! order their variables are checked: when several are wrong, the first one's error is reported.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_crds::access::KubernetesAuthMode;
use gatehouse_crds::rules;

use super::env::{ConfigError, Env, SecretSource, checked};
use super::model::{AuthMode, LogFormat, ProvisioningMode};
use super::parse::{parse_attribute_mappings, parse_byte_size, parse_upstream};
use super::vars::{self, DEFAULT_MAX_REQUEST_BODY};

/// Where the sidecar listens, and the app it forwards to.
#[derive(Debug)]
pub(super) struct Listeners {
    pub(super) listen: SocketAddr,
    pub(super) admin_listen: SocketAddr,
    pub(super) upstream: http::uri::Authority,
}

/// `GATEHOUSE_LISTEN`, `GATEHOUSE_ADMIN_LISTEN` (which must differ), `GATEHOUSE_UPSTREAM`.
pub(super) fn read_listeners(env: &Env<'_>) -> Result<Listeners, ConfigError> {
    let listen = env.socket_addr(&vars::GATEHOUSE_LISTEN)?;
    let admin_listen = env.socket_addr(&vars::GATEHOUSE_ADMIN_LISTEN)?;
    if listen == admin_listen {
        return Err(ConfigError::new(
            vars::GATEHOUSE_ADMIN_LISTEN.name,
            "must differ from GATEHOUSE_LISTEN",
        ));
    }
    let upstream = parse_upstream(env)?;
    Ok(Listeners {
        listen,
        admin_listen,
        upstream,
    })
}

/// What sessions are sealed with, how long they last, and the SsoConfig they are bound to.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) cookie_secret: SecretSource,
    pub(super) session_ttl: Duration,
    pub(super) config_name: String,
    pub(super) namespace: String,
    pub(super) config_uid: Option<String>,
}

/// `GATEHOUSE_COOKIE_SECRET` (required, and every key must parse), `GATEHOUSE_SESSION_TTL`,
/// `GATEHOUSE_CONFIG`, `GATEHOUSE_NAMESPACE`, `GATEHOUSE_CONFIG_UID`.
pub(super) fn read_session(env: &Env<'_>) -> Result<Session, ConfigError> {
    let cookie_secret = env.secret(&vars::GATEHOUSE_COOKIE_SECRET)?.ok_or_else(|| {
        ConfigError::new(
            vars::GATEHOUSE_COOKIE_SECRET.name,
            "missing (set it or GATEHOUSE_COOKIE_SECRET_FILE): comma-separated base64 32-byte keys",
        )
    })?;
    gatehouse_auth::cookie::KeyRing::parse(cookie_secret.value.expose())
        .map_err(|e| ConfigError::new(cookie_secret.var, e.to_string()))?;
    let session_ttl = env.duration_within(&vars::GATEHOUSE_SESSION_TTL)?;
    Ok(Session {
        cookie_secret,
        session_ttl,
        config_name: env.name(&vars::GATEHOUSE_CONFIG)?,
        namespace: env.name(&vars::GATEHOUSE_NAMESPACE)?,
        config_uid: env.get(&vars::GATEHOUSE_CONFIG_UID),
    })
}

/// Where users are recorded, which of them may sign in, and the claims copied onto their SsoUser.
#[derive(Debug)]
pub(super) struct Provisioning {
    pub(super) provisioning: ProvisioningMode,
    pub(super) user_provisioning: gatehouse_crds::ProvisioningMode,
    pub(super) attribute_mappings: Vec<(String, String)>,
}

/// `GATEHOUSE_PROVISIONING`, `GATEHOUSE_PROVISIONING_MODE` (`preDeclared` and `scim` only with
/// kubernetes provisioning), `GATEHOUSE_ATTRIBUTE_MAPPINGS`.
pub(super) fn read_provisioning(env: &Env<'_>) -> Result<Provisioning, ConfigError> {
    let provisioning = match env
        .value_or_default(&vars::GATEHOUSE_PROVISIONING)?
        .as_str()
    {
        "off" => ProvisioningMode::Off,
        "kubernetes" => ProvisioningMode::Kubernetes,
        _ => {
            return Err(ConfigError::new(
                vars::GATEHOUSE_PROVISIONING.name,
                "must be `off` or `kubernetes`",
            ));
        }
    };
    let user_provisioning = match env
        .value_or_default(&vars::GATEHOUSE_PROVISIONING_MODE)?
        .as_str()
    {
        "jit" => gatehouse_crds::ProvisioningMode::Jit,
        "preDeclared" if provisioning == ProvisioningMode::Off => {
            return Err(ConfigError::new(
                vars::GATEHOUSE_PROVISIONING_MODE.name,
                "`preDeclared` needs GATEHOUSE_PROVISIONING=kubernetes (the declared SsoUsers live there)",
            ));
        }
        "preDeclared" => gatehouse_crds::ProvisioningMode::PreDeclared,
        "scim" if provisioning == ProvisioningMode::Off => {
            return Err(ConfigError::new(
                vars::GATEHOUSE_PROVISIONING_MODE.name,
                "`scim` needs GATEHOUSE_PROVISIONING=kubernetes (the pushed users are SsoUsers)",
            ));
        }
        "scim" => gatehouse_crds::ProvisioningMode::Scim,
        _ => {
            return Err(ConfigError::new(
                vars::GATEHOUSE_PROVISIONING_MODE.name,
                "must be `jit`, `preDeclared` or `scim`",
            ));
        }
    };
    let attribute_mappings = match env.get(&vars::GATEHOUSE_ATTRIBUTE_MAPPINGS) {
        None => Vec::new(),
        Some(list) => parse_attribute_mappings(&list)?,
    };
    Ok(Provisioning {
        provisioning,
        user_provisioning,
        attribute_mappings,
    })
}

/// `GATEHOUSE_ENV_DIR`: where the env Secret is mounted as files (an absolute path), if anywhere.
pub(super) fn read_env_dir(env: &Env<'_>) -> Result<Option<PathBuf>, ConfigError> {
    match env.get(&vars::GATEHOUSE_ENV_DIR) {
        None => Ok(None),
        Some(dir) if dir.starts_with('/') => Ok(Some(PathBuf::from(dir))),
        Some(_) => Err(ConfigError::new(
            vars::GATEHOUSE_ENV_DIR.name,
            "must be an absolute path (where the env Secret is mounted)",
        )),
    }
}

/// Which requests need a session, and the app paths the sidecar treats specially.
#[derive(Debug)]
pub(super) struct Gate {
    pub(super) auth_mode: AuthMode,
    pub(super) app_login_path: Option<String>,
    pub(super) skip_auth: Vec<String>,
    pub(super) provision_hook: Option<String>,
    pub(super) access: Option<std::sync::Arc<gatehouse_auth::access::Policy>>,
    pub(super) machine: Option<super::model::MachineConfig>,
}

/// `GATEHOUSE_AUTH_MODE`, `GATEHOUSE_APP_LOGIN_PATH`, `GATEHOUSE_SKIP_AUTH` (comma-separated),
/// `GATEHOUSE_PROVISION_HOOK`; the paths checked by the contract's rules.
pub(super) fn read_gate(env: &Env<'_>) -> Result<Gate, ConfigError> {
    let auth_mode = match env.value_or_default(&vars::GATEHOUSE_AUTH_MODE)?.as_str() {
        "required" => AuthMode::Required,
        "optional" => AuthMode::Optional,
        _ => {
            return Err(ConfigError::new(
                vars::GATEHOUSE_AUTH_MODE.name,
                "must be `required` or `optional`",
            ));
        }
    };
    let app_login_path = env
        .get(&vars::GATEHOUSE_APP_LOGIN_PATH)
        .map(|p| {
            checked(
                &vars::GATEHOUSE_APP_LOGIN_PATH,
                rules::check_app_login_path,
                p,
            )
        })
        .transpose()?;
    let skip_auth = match env.get(&vars::GATEHOUSE_SKIP_AUTH) {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                checked(
                    &vars::GATEHOUSE_SKIP_AUTH,
                    rules::check_skip_auth,
                    p.to_owned(),
                )
            })
            .collect::<Result<_, _>>()?,
    };
    let provision_hook = env
        .get(&vars::GATEHOUSE_PROVISION_HOOK)
        .map(|p| checked(&vars::GATEHOUSE_PROVISION_HOOK, rules::check_hook_path, p))
        .transpose()?;
    let access = env
        .get(&vars::GATEHOUSE_ACCESS)
        .map(|json| read_access(&json).map(std::sync::Arc::new))
        .transpose()?;
    let machine = env
        .get(&vars::GATEHOUSE_MACHINE_AUTH)
        .map(|json| read_machine_auth(&json))
        .transpose()?;
    Ok(Gate {
        auth_mode,
        app_login_path,
        skip_auth,
        provision_hook,
        access,
        machine,
    })
}

/// `GATEHOUSE_ACCESS`: the policy as the operator renders it (the CRD's JSON), compiled; what
/// the operator's validation refuses, refused with the same words.
fn read_access(json: &str) -> Result<gatehouse_auth::access::Policy, ConfigError> {
    let var = vars::GATEHOUSE_ACCESS.name;
    let spec: gatehouse_crds::access::AccessSpec = serde_json::from_str(json)
        .map_err(|e| ConfigError::new(var, format!("not an access policy as JSON: {e}")))?;
    gatehouse_auth::access::Policy::compile(&spec).map_err(|e| ConfigError::new(var, e.to_string()))
}

/// How a live session is checked again: against the user watch (revocation) and at the IdP
/// (re-validation).
#[derive(Debug)]
pub(super) struct SessionChecks {
    pub(super) revocation_staleness: Duration,
    pub(super) revalidate_interval: Option<Duration>,
    pub(super) revalidate_grace: Duration,
}

/// `GATEHOUSE_REVOCATION_STALENESS`, `GATEHOUSE_REVALIDATE_INTERVAL` (`0s`: never, read as
/// `None`), `GATEHOUSE_REVALIDATE_GRACE`, each within the contract's range.
pub(super) fn read_session_checks(env: &Env<'_>) -> Result<SessionChecks, ConfigError> {
    let revocation_staleness = env.duration_within(&vars::GATEHOUSE_REVOCATION_STALENESS)?;
    // `0s` is off; any other value is checked against the same bounds as the catalogue shows.
    let revalidate_interval = env.duration(&vars::GATEHOUSE_REVALIDATE_INTERVAL)?;
    if !(revalidate_interval.is_zero() || rules::REVALIDATE_INTERVAL.contains(revalidate_interval))
    {
        return Err(ConfigError::new(
            vars::GATEHOUSE_REVALIDATE_INTERVAL.name,
            format!(
                "must be {} (off) or between {}",
                rules::REVALIDATE_OFF,
                rules::REVALIDATE_INTERVAL.text()
            ),
        ));
    }
    let revalidate_interval = (!revalidate_interval.is_zero()).then_some(revalidate_interval);
    let revalidate_grace = env.duration_within(&vars::GATEHOUSE_REVALIDATE_GRACE)?;
    Ok(SessionChecks {
        revocation_staleness,
        revalidate_interval,
        revalidate_grace,
    })
}

/// Tolerated clock skew, the largest request body, and the I/O timeouts.
#[derive(Debug)]
pub(super) struct Limits {
    pub(super) clock_skew: Duration,
    pub(super) max_request_body: u64,
    pub(super) request_body_timeout: Duration,
    pub(super) send_timeout: Duration,
    pub(super) upstream_response_timeout: Option<Duration>,
}

/// `GATEHOUSE_CLOCK_SKEW` (at most 10m), `GATEHOUSE_MAX_REQUEST_BODY`, and the three timeouts
/// (`GATEHOUSE_REQUEST_BODY_TIMEOUT`, `GATEHOUSE_SEND_TIMEOUT`,
/// `GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT`, the last one off unless set), each between 1s and 1h.
pub(super) fn read_limits(env: &Env<'_>) -> Result<Limits, ConfigError> {
    let clock_skew = env.duration(&vars::GATEHOUSE_CLOCK_SKEW)?;
    if !vars::CLOCK_SKEW.contains(clock_skew) {
        return Err(ConfigError::new(
            vars::GATEHOUSE_CLOCK_SKEW.name,
            format!("must be at most {}", vars::CLOCK_SKEW.max_text),
        ));
    }
    let max_request_body = match env.get(&vars::GATEHOUSE_MAX_REQUEST_BODY) {
        None => DEFAULT_MAX_REQUEST_BODY,
        Some(text) => parse_byte_size(&text)
            .map_err(|e| ConfigError::new(vars::GATEHOUSE_MAX_REQUEST_BODY.name, e))?,
    };
    let request_body_timeout = env.duration_within(&vars::GATEHOUSE_REQUEST_BODY_TIMEOUT)?;
    let send_timeout = env.duration_within(&vars::GATEHOUSE_SEND_TIMEOUT)?;
    let upstream_response_timeout = match env.get(&vars::GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT) {
        None => None,
        Some(_) => Some(env.duration_within(&vars::GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT)?),
    };
    Ok(Limits {
        clock_skew,
        max_request_body,
        request_body_timeout,
        send_timeout,
        upstream_response_timeout,
    })
}

/// `GATEHOUSE_LOG_FORMAT`: `text` (the default) or `json`.
pub(super) fn read_log_format(env: &Env<'_>) -> Result<LogFormat, ConfigError> {
    match env.value_or_default(&vars::GATEHOUSE_LOG_FORMAT)?.as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(ConfigError::new(
            vars::GATEHOUSE_LOG_FORMAT.name,
            "must be `text` or `json`",
        )),
    }
}

/// `GATEHOUSE_MACHINE_AUTH`: the machine issuers as the operator renders them (the CRD's JSON),
/// checked with the operator's words, then by the verifier itself.
fn read_machine_auth(json: &str) -> Result<super::model::MachineConfig, ConfigError> {
    use gatehouse_auth::machine::{DEFAULT_ALGORITHMS, DEFAULT_SKEW, MachineAuth, MachineIssuer};
    use gatehouse_crds::access::JwtAlgorithm;
    let var = vars::GATEHOUSE_MACHINE_AUTH.name;
    let spec: gatehouse_crds::access::MachineAuthSpec = serde_json::from_str(json)
        .map_err(|e| ConfigError::new(var, format!("not a machineAuth block as JSON: {e}")))?;
    // Loopback http issuers pass here as the operator's allowInsecureHttp let them through.
    if let Some((field, message)) = rules::check_machine_auth(&spec, true).into_iter().next() {
        return Err(ConfigError::new(var, format!("{field}: {message}")));
    }
    let issuers = spec
        .issuers
        .iter()
        .map(|m| MachineIssuer {
            name: m.name.clone(),
            issuer: m.issuer.clone(),
            audiences: m.audiences.clone(),
            algorithms: if m.algorithms.is_empty() {
                DEFAULT_ALGORITHMS.to_vec()
            } else {
                m.algorithms
                    .iter()
                    .map(|a| match a {
                        JwtAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
                        JwtAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
                        JwtAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
                    })
                    .collect()
            },
            role_claim: m.role_claim.clone(),
            role_map: m.role_map.clone(),
        })
        .collect();
    let auth = MachineAuth::new(issuers, None, DEFAULT_SKEW)
        .map_err(|e| ConfigError::new(var, e.to_string()))?;
    Ok(super::model::MachineConfig {
        auth: std::sync::Arc::new(auth),
        keys: spec
            .issuers
            .iter()
            .map(|m| super::model::MachineKeys {
                name: m.name.clone(),
                issuer: m.issuer.clone(),
                jwks_uri: m.jwks_uri.clone(),
            })
            .collect(),
        forward_token: spec.forward_token == Some(true),
        kubernetes: spec.kubernetes.map(|k| super::model::KubernetesMachine {
            token_review: k.mode == Some(KubernetesAuthMode::TokenReview),
            audiences: k.audiences,
            service_accounts: k
                .service_accounts
                .into_iter()
                .map(|s| (s.name, s.role))
                .collect(),
        }),
    })
}
