//! SCIM 2.0 provisioning (`GATEHOUSE_PROVISIONING_MODE=scim`): the bearer tokens the identity
//! provider sends (`SCIM_TOKEN`, and during a rotation `SCIM_PREVIOUS_TOKEN`) and the provider
//! the users it pushes sign in with.

use std::fmt;
use std::path::{Path, PathBuf};

use gatehouse_crds::rules::check_scim_token;

use super::env::{ConfigError, Env, SecretSource, read_secret_file};
use super::vars;

/// SCIM provisioning, present iff `GATEHOUSE_PROVISIONING_MODE=scim`. Its `Debug` never shows a
/// token.
#[derive(Clone, PartialEq, Eq)]
pub struct ScimConfig {
    /// The bearer tokens accepted, as read at start-up: `SCIM_TOKEN` first, then
    /// `SCIM_PREVIOUS_TOKEN` when set. Never empty; each at least
    /// [`gatehouse_crds::rules::MIN_SCIM_TOKEN_LEN`] characters.
    pub tokens: Vec<String>,
    /// Id of the provider the pushed users belong to (sign in with): the only enabled provider,
    /// or `AUTH_EXCLUSIVE_PROVIDER` when there are several.
    pub provider: String,
    /// `SCIM_TOKEN_FILE`, when the token came from it: re-read by [`Self::reread_tokens`].
    pub token_file: Option<PathBuf>,
    /// `SCIM_PREVIOUS_TOKEN_FILE`, when set (the file may be missing: no previous token).
    pub previous_token_file: Option<PathBuf>,
}

impl fmt::Debug for ScimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimConfig")
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("provider", &self.provider)
            .field("token_file", &self.token_file)
            .field("previous_token_file", &self.previous_token_file)
            .finish()
    }
}

impl ScimConfig {
    /// The tokens as the files hold them now (a rotated Secret, without a restart): current
    /// first, then the previous one if its file exists. `None` when nothing comes from a file,
    /// or when the current token's file cannot be read or holds a token too short: keep the
    /// tokens in use. Blocking file reads; the reason never holds a token.
    pub fn reread_tokens(&self) -> Result<Option<Vec<String>>, String> {
        if self.token_file.is_none() && self.previous_token_file.is_none() {
            return Ok(None);
        }
        let current = match &self.token_file {
            Some(path) => read_token(path, vars::SCIM_TOKEN.name)?
                .ok_or_else(|| format!("{}_FILE: the file is missing", vars::SCIM_TOKEN.name))?,
            None => self.tokens[0].clone(),
        };
        let previous = match &self.previous_token_file {
            Some(path) => read_token(path, vars::SCIM_PREVIOUS_TOKEN.name)?,
            None => self.tokens.get(1).cloned(),
        };
        Ok(Some(std::iter::once(current).chain(previous).collect()))
    }
}

/// A token file: `None` when it does not exist, an error naming `<var>_FILE` when it cannot be
/// read or the token is too short.
fn read_token(path: &Path, var: &str) -> Result<Option<String>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let token = read_secret_file(path).map_err(|problem| format!("{var}_FILE: {problem}"))?;
    check_scim_token(token.expose()).map_err(|message| format!("{var}_FILE: {message}"))?;
    Ok(Some(token.expose().to_owned()))
}

/// `SCIM_TOKEN` and `SCIM_PREVIOUS_TOKEN` for `mode` (what `GATEHOUSE_PROVISIONING_MODE` said),
/// and the provider pushed users belong to among `enabled` (ids) and `exclusive`.
pub(super) fn read_scim(
    env: &Env<'_>,
    mode: gatehouse_crds::ProvisioningMode,
    enabled: &[&str],
    exclusive: Option<&str>,
) -> Result<Option<ScimConfig>, ConfigError> {
    let scim_mode = mode == gatehouse_crds::ProvisioningMode::Scim;
    if !scim_mode {
        for var in [vars::SCIM_TOKEN, vars::SCIM_PREVIOUS_TOKEN] {
            // A `_FILE` naming no file is a leftover of a pod injected while the config was in
            // scim mode (the operator no longer renders the key): not a token.
            let file = env_file(env, &var).is_some_and(|path| path.exists());
            if env.get(&var).is_some() || file {
                return Err(ConfigError::new(
                    var.name,
                    format!(
                        "set, but {} is `{}`: SCIM tokens are only read with GATEHOUSE_PROVISIONING_MODE=scim",
                        vars::GATEHOUSE_PROVISIONING_MODE.name,
                        mode.as_str()
                    ),
                ));
            }
        }
        return Ok(None);
    }
    let current = env.required_secret(
        &vars::SCIM_TOKEN,
        "GATEHOUSE_PROVISIONING_MODE=scim needs the bearer token the identity provider sends",
    )?;
    check(&current)?;
    let previous = optional_secret(env)?;
    if let Some(previous) = &previous {
        check(previous)?;
    }
    let provider = match (exclusive, enabled) {
        (Some(id), _) => id.to_owned(),
        (None, [only]) => (*only).to_owned(),
        (None, _) => {
            return Err(ConfigError::new(
                vars::AUTH_EXCLUSIVE_PROVIDER.name,
                format!(
                    "missing; GATEHOUSE_PROVISIONING_MODE=scim with several providers ({}) needs AUTH_EXCLUSIVE_PROVIDER: the provider the users pushed over SCIM sign in with",
                    enabled.join(", ")
                ),
            ));
        }
    };
    let previous_token_file = env_file(env, &vars::SCIM_PREVIOUS_TOKEN);
    Ok(Some(ScimConfig {
        tokens: std::iter::once(&current)
            .chain(previous.as_ref())
            .map(|s| s.value.expose().to_owned())
            .collect(),
        provider,
        token_file: current.file,
        previous_token_file,
    }))
}

/// A token at least 16 characters long; the error names the variable, never the value.
fn check(source: &SecretSource) -> Result<(), ConfigError> {
    check_scim_token(source.value.expose()).map_err(|message| ConfigError::new(source.var, message))
}

/// The path `<var>_FILE` names, if set.
fn env_file(env: &Env<'_>, var: &vars::Variable) -> Option<PathBuf> {
    env.get_file_variable(var).map(PathBuf::from)
}

/// `SCIM_PREVIOUS_TOKEN`: like any secret, except that a `SCIM_PREVIOUS_TOKEN_FILE` naming a
/// file that does not exist means no previous token (injection always points it into the env
/// Secret's mount, where the key exists only during a rotation).
fn optional_secret(env: &Env<'_>) -> Result<Option<SecretSource>, ConfigError> {
    let var = &vars::SCIM_PREVIOUS_TOKEN;
    if let Some(path) = env_file(env, var)
        && !path.exists()
    {
        return Ok(None);
    }
    env.secret(var)
}
