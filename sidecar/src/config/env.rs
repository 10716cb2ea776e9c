//! Where values come from and how they are read: the variable source ([`EnvSource`], the process
//! environment or a map in tests), [`Env`] with the contract's conventions (every variable read
//! through its catalogue entry, empty means unset, secrets may come from `<VAR>_FILE`), the error
//! every reader returns ([`ConfigError`]), and secrets that never show their value ([`Secret`],
//! [`SecretSource`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::vars::{Bounds, Variable};

/// One line saying which variable is wrong and how. Never holds a secret value. Shown on one
/// line whatever the problem quotes of a value: control characters (a newline in a variable)
/// are written escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {}", one_line(problem))]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with it, in words (never its value when it is a secret).
    pub problem: String,
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`), so it stays one line.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
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

/// `value` when `rule` (one of the contract's [`gatehouse_crds::rules`], which the operator
/// applies too) accepts it; else the rule's message on `var`.
pub(crate) fn checked(
    var: &Variable,
    rule: fn(&str) -> Result<(), &'static str>,
    value: String,
) -> Result<String, ConfigError> {
    rule(&value)
        .map(|()| value)
        .map_err(|message| ConfigError::new(var.name, message))
}

/// Variable access with the contract's conventions: empty means unset; secrets may come from files.
/// Every variable is read through its entry in the catalogue ([`super::vars`]), whose default is
/// the one applied here.
pub(crate) struct Env<'a>(&'a dyn EnvSource);

impl<'a> Env<'a> {
    /// Reads from `source`.
    pub(crate) fn new(source: &'a dyn EnvSource) -> Self {
        Self(source)
    }
}

impl Env<'_> {
    /// A trimmed, non-empty value of the variable called `name`.
    fn get_named(&self, name: &str) -> Option<String> {
        self.0
            .var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A trimmed, non-empty value.
    pub(crate) fn get(&self, var: &Variable) -> Option<String> {
        self.get_named(var.name)
    }

    /// The value, else the variable's default text; an error naming the variable when it has
    /// neither.
    pub(crate) fn value_or_default(&self, var: &Variable) -> Result<String, ConfigError> {
        self.get(var)
            .or_else(|| var.default.text().map(str::to_owned))
            .ok_or_else(|| ConfigError::new(var.name, "missing"))
    }

    /// The trimmed, non-empty value of `<var>_FILE`.
    pub(crate) fn get_file_variable(&self, var: &Variable) -> Option<String> {
        self.get_named(&var.file_variable())
    }

    /// Whether `var` or `<var>_FILE` is set.
    pub(crate) fn is_set(&self, var: &Variable) -> bool {
        self.get(var).is_some() || self.get_named(&var.file_variable()).is_some()
    }

    /// A secret from the file named by `<var>_FILE`, else from `var`. The file wins when both are
    /// set: the operator's injection sets both (the environment from the env Secret, the file from
    /// the same Secret mounted as a volume), and only the file can change while the sidecar runs.
    pub(crate) fn secret(&self, var: &Variable) -> Result<Option<SecretSource>, ConfigError> {
        debug_assert!(var.secret, "{} is not catalogued as a secret", var.name);
        let name = var.name;
        let file_var = var.file_variable();
        match (
            self.0.var(name).filter(|v| !v.trim().is_empty()),
            self.get_named(&file_var),
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
        var: &Variable,
        why: &str,
    ) -> Result<SecretSource, ConfigError> {
        self.secret(var)?.ok_or_else(|| {
            ConfigError::new(
                var.name,
                format!("missing (or set {}); {why}", var.file_variable()),
            )
        })
    }

    /// A required plain value.
    pub(crate) fn required(&self, var: &Variable, why: &str) -> Result<String, ConfigError> {
        self.get(var)
            .ok_or_else(|| ConfigError::new(var.name, format!("missing; {why}")))
    }

    /// A socket address, the default when unset.
    pub(crate) fn socket_addr(&self, var: &Variable) -> Result<SocketAddr, ConfigError> {
        self.value_or_default(var)?.parse().map_err(|e| {
            ConfigError::new(
                var.name,
                format!("not a socket address like 0.0.0.0:4180 ({e})"),
            )
        })
    }

    /// A duration (humantime: `90s`, `30m`, `12h`), the default when unset.
    pub(crate) fn duration(&self, var: &Variable) -> Result<Duration, ConfigError> {
        let value = self.value_or_default(var)?;
        humantime::parse_duration(&value).map_err(|e| {
            ConfigError::new(
                var.name,
                format!("not a duration like 90s, 30m or 12h ({e})"),
            )
        })
    }

    /// [`Self::duration`] within the variable's bounds.
    pub(crate) fn duration_within(&self, var: &Variable) -> Result<Duration, ConfigError> {
        let value = self.duration(var)?;
        if let Bounds::Duration(bounds) = var.bounds
            && !bounds.contains(value)
        {
            return Err(ConfigError::new(
                var.name,
                format!("must be between {}", bounds.text()),
            ));
        }
        Ok(value)
    }

    /// A Kubernetes object name (DNS-1123 subdomain), the default when unset.
    pub(crate) fn name(&self, var: &Variable) -> Result<String, ConfigError> {
        let value = self.value_or_default(var)?;
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
                var.name,
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

/// Checks that all of a provider's variables are present once any of them is: `false` when none
/// is (the provider is off), `true` when all are, else an error naming the first missing one.
pub(crate) fn require_all(
    env: &Env<'_>,
    provider: &str,
    vars: &[Variable],
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
            .map(|(v, _)| v.name)
            .unwrap_or_default();
        let names: Vec<&str> = vars.iter().map(|v| v.name).collect();
        return Err(ConfigError::new(
            missing.name,
            format!(
                "missing ({present} is set; {provider} needs {})",
                names.join(", ")
            ),
        ));
    }
    Ok(true)
}
