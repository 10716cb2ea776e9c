//! The sidecar's own settings (`GATEHOUSE_*`), one reader per section, each returning its part of
//! the configuration. `Config::from_source` calls them in the order they appear here, which is the
//! order their variables are checked: when several are wrong, the first one's error is reported.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_crds::env as vars;
use gatehouse_crds::rules;

use super::env::{ConfigError, Env, SecretSource, checked};
use super::model::{AuthMode, LogFormat, ProvisioningMode};
use super::parse::{parse_attribute_mappings, parse_byte_size, parse_upstream};

/// `GATEHOUSE_MAX_REQUEST_BODY` when unset: 64 MiB, room for ordinary uploads.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 64 << 20;

/// Longest pause between two pieces of a request body (`spec.timeouts.requestBody`).
pub const REQUEST_BODY_TIMEOUT: &str = vars::GATEHOUSE_REQUEST_BODY_TIMEOUT;

/// Longest a write to a client may wait for it to read (`spec.timeouts.send`).
pub const SEND_TIMEOUT: &str = vars::GATEHOUSE_SEND_TIMEOUT;

/// Longest wait for the app's response head once a request is sent (unset: no limit).
pub const UPSTREAM_RESPONSE_TIMEOUT: &str = vars::GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT;

/// Where the sidecar listens, and the app it forwards to.
#[derive(Debug)]
pub(super) struct Listeners {
    pub(super) listen: SocketAddr,
    pub(super) admin_listen: SocketAddr,
    pub(super) upstream: http::uri::Authority,
}

/// `GATEHOUSE_LISTEN`, `GATEHOUSE_ADMIN_LISTEN` (which must differ), `GATEHOUSE_UPSTREAM`.
pub(super) fn read_listeners(env: &Env<'_>) -> Result<Listeners, ConfigError> {
    let listen = env.socket_addr(vars::GATEHOUSE_LISTEN, "0.0.0.0:4180")?;
    let admin_listen = env.socket_addr(vars::GATEHOUSE_ADMIN_LISTEN, "0.0.0.0:9090")?;
    if listen == admin_listen {
        return Err(ConfigError::new(
            vars::GATEHOUSE_ADMIN_LISTEN,
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
    let cookie_secret = env.secret(vars::GATEHOUSE_COOKIE_SECRET)?.ok_or_else(|| {
        ConfigError::new(
            vars::GATEHOUSE_COOKIE_SECRET,
            "missing (set it or GATEHOUSE_COOKIE_SECRET_FILE): comma-separated base64 32-byte keys",
        )
    })?;
    gatehouse_auth::cookie::KeyRing::parse(cookie_secret.value.expose())
        .map_err(|e| ConfigError::new(cookie_secret.var, e.to_string()))?;
    let session_ttl = env.duration_between(
        vars::GATEHOUSE_SESSION_TTL,
        "12h",
        Duration::from_secs(60)..=Duration::from_secs(90 * 86400),
        "1m and 90d",
    )?;
    Ok(Session {
        cookie_secret,
        session_ttl,
        config_name: env.name(vars::GATEHOUSE_CONFIG, "gatehouse")?,
        namespace: env.name(vars::GATEHOUSE_NAMESPACE, "default")?,
        config_uid: env.get(vars::GATEHOUSE_CONFIG_UID),
    })
}

/// Where users are recorded, which of them may sign in, and the claims copied onto their SsoUser.
#[derive(Debug)]
pub(super) struct Provisioning {
    pub(super) provisioning: ProvisioningMode,
    pub(super) user_provisioning: gatehouse_crds::ProvisioningMode,
    pub(super) attribute_mappings: Vec<(String, String)>,
}

/// `GATEHOUSE_PROVISIONING`, `GATEHOUSE_PROVISIONING_MODE` (`preDeclared` only with kubernetes
/// provisioning), `GATEHOUSE_ATTRIBUTE_MAPPINGS`.
pub(super) fn read_provisioning(env: &Env<'_>) -> Result<Provisioning, ConfigError> {
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
    Ok(Provisioning {
        provisioning,
        user_provisioning,
        attribute_mappings,
    })
}

/// `GATEHOUSE_ENV_DIR`: where the env Secret is mounted as files (an absolute path), if anywhere.
pub(super) fn read_env_dir(env: &Env<'_>) -> Result<Option<PathBuf>, ConfigError> {
    match env.get(vars::GATEHOUSE_ENV_DIR) {
        None => Ok(None),
        Some(dir) if dir.starts_with('/') => Ok(Some(PathBuf::from(dir))),
        Some(_) => Err(ConfigError::new(
            vars::GATEHOUSE_ENV_DIR,
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
}

/// `GATEHOUSE_AUTH_MODE`, `GATEHOUSE_APP_LOGIN_PATH`, `GATEHOUSE_SKIP_AUTH` (comma-separated),
/// `GATEHOUSE_PROVISION_HOOK`; the paths checked by the contract's rules.
pub(super) fn read_gate(env: &Env<'_>) -> Result<Gate, ConfigError> {
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
    Ok(Gate {
        auth_mode,
        app_login_path,
        skip_auth,
        provision_hook,
    })
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
    let revocation_staleness = env.duration_between(
        vars::GATEHOUSE_REVOCATION_STALENESS,
        "5m",
        rules::REVOCATION_STALENESS.range(),
        &rules::REVOCATION_STALENESS.text(),
    )?;
    let revalidate_interval = env.duration(vars::GATEHOUSE_REVALIDATE_INTERVAL, "15m")?;
    if !(revalidate_interval.is_zero() || rules::REVALIDATE_INTERVAL.contains(revalidate_interval))
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
/// ([`REQUEST_BODY_TIMEOUT`], [`SEND_TIMEOUT`], [`UPSTREAM_RESPONSE_TIMEOUT`], the last one off
/// unless set), each between 1s and 1h.
pub(super) fn read_limits(env: &Env<'_>) -> Result<Limits, ConfigError> {
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
    let send_timeout = env.duration_between(SEND_TIMEOUT, "60s", io_timeouts.clone(), &io_text)?;
    let upstream_response_timeout = match env.get(UPSTREAM_RESPONSE_TIMEOUT) {
        None => None,
        Some(_) => {
            Some(env.duration_between(UPSTREAM_RESPONSE_TIMEOUT, "", io_timeouts, &io_text)?)
        }
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
    match env.get("GATEHOUSE_LOG_FORMAT").as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(_) => Err(ConfigError::new(
            "GATEHOUSE_LOG_FORMAT",
            "must be `text` or `json`",
        )),
    }
}
