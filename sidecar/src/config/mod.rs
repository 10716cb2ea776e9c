//! Environment → typed configuration.
//!
//! The sidecar is configured only by environment variables (the contract the operator renders into
//! `<config>-gatehouse-env`, also usable by hand). Every error names the variable it is about and
//! never contains a secret value. Every secret is also accepted from a file named by `<VAR>_FILE`
//! (a mounted Secret), which wins when both are set; such files are re-read in the background so a
//! rotated Secret takes effect without a restart. Injected sidecars get both: the operator mounts
//! the env Secret at `/etc/gatehouse/env` and points each secret's `<VAR>_FILE` there.
//!
//! Every variable is in one catalogue, [`vars`]: name, default, bounds, whether it is a secret,
//! and what it means. The readers take its entries, not bare names, and the environment tables of
//! `docs/sidecar.md` are generated from it.
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
//! Dependencies point one way: this module reads variables into plain types; [`crate::providers`]
//! and [`crate::saml`] run what it describes. Inside it, each submodule has one job and names only
//! submodules listed before it here, never this one:
//!
//! - `vars`: the catalogue of variables (public, for the docs and their tests);
//! - `env`: where values come from ([`EnvSource`]), reading them with the contract's conventions,
//!   [`ConfigError`], secrets;
//! - `model`: the plain types ([`ProviderConfig`], the modes);
//! - `parse`: value parsers (URLs, issuers, role maps, attribute mappings, sizes);
//! - `sections`: readers for the sidecar's own sections (listeners, session, provisioning, the
//!   gate, session checks, limits, logging);
//! - `okta`, `entra`, `oidc`, `saml`: one per sign-in method; `sign_in`: which of them are on;
//! - `scim`: SCIM provisioning's tokens and the provider its users belong to.
//!
//! [`Config::from_source`] calls the section readers in order and assembles their parts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod entra;
mod env;
mod model;
mod oidc;
mod okta;
mod parse;
mod saml;
mod scim;
mod sections;
mod sign_in;
pub mod vars;

pub(crate) use env::read_secret_file;
pub use env::{ConfigError, EnvSource, ProcessEnv, Secret, SecretSource};
pub use model::{
    AuthMode, GraphConfig, KubernetesMachine, LogFormat, MachineConfig, MachineKeys,
    ProviderConfig, ProviderKind, ProvisioningMode,
};
pub(crate) use parse::check_https_or_loopback;
pub use saml::{MetadataSource, PROTOCOL_VARIABLES_SAML, SamlConfig};
pub use scim::ScimConfig;
pub use vars::{DEFAULT_MAX_REQUEST_BODY, Variable};

use env::Env;

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
    /// permitted role (`jit`), only users that already have an SsoUser (`preDeclared`), or only
    /// users the IdP pushed over SCIM or that are declared (`scim`).
    pub user_provisioning: gatehouse_crds::ProvisioningMode,
    /// SCIM 2.0 provisioning: present iff `user_provisioning` is `scim`.
    pub scim: Option<ScimConfig>,
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
    /// The access rules (`GATEHOUSE_ACCESS`); `None`: every signed-in user reaches every path.
    pub access: Option<std::sync::Arc<gatehouse_auth::access::Policy>>,
    /// Machine clients (`GATEHOUSE_MACHINE_AUTH`); `None`: no bearer token is a credential.
    pub machine: Option<MachineConfig>,
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
    /// Enabled OIDC providers, in the order okta, entra, the generic ones (none when SAML is active).
    pub providers: Vec<ProviderConfig>,
    /// SAML, when it is the active protocol.
    pub saml: Option<SamlConfig>,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    /// Reads the configuration from any variable source, section by section; the first error
    /// found is returned.
    pub fn from_source(source: &dyn EnvSource) -> Result<Self, ConfigError> {
        let env = Env::new(source);
        sign_in::check_one_protocol(&env)?;
        let public_url = parse::parse_public_url(&env)?;
        let listeners = sections::read_listeners(&env)?;
        let session = sections::read_session(&env)?;
        let provisioning = sections::read_provisioning(&env)?;
        let env_dir = sections::read_env_dir(&env)?;
        let gate = sections::read_gate(&env)?;
        let checks = sections::read_session_checks(&env)?;
        let limits = sections::read_limits(&env)?;
        let log_format = sections::read_log_format(&env)?;
        let sign_in = sign_in::read_sign_in(&env, &public_url)?;
        let enabled: Vec<&str> = sign_in
            .providers
            .iter()
            .map(|p| p.id.as_str())
            .chain(
                sign_in
                    .saml
                    .as_ref()
                    .map(|_| gatehouse_crds::consts::PROVIDER_SAML),
            )
            .collect();
        let scim = scim::read_scim(
            &env,
            provisioning.user_provisioning,
            &enabled,
            sign_in.exclusive_provider.as_deref(),
        )?;
        if gate
            .machine
            .as_ref()
            .is_some_and(|m| m.kubernetes.is_some())
            && provisioning.provisioning == ProvisioningMode::Off
        {
            return Err(ConfigError::new(
                vars::GATEHOUSE_MACHINE_AUTH.name,
                "kubernetes: ServiceAccount tokens need GATEHOUSE_PROVISIONING=kubernetes (the API server's keys are read with the sidecar's own ServiceAccount)",
            ));
        }
        Ok(Self {
            public_url,
            listen: listeners.listen,
            admin_listen: listeners.admin_listen,
            upstream: listeners.upstream,
            cookie_secret: session.cookie_secret,
            session_ttl: session.session_ttl,
            config_name: session.config_name,
            namespace: session.namespace,
            config_uid: session.config_uid,
            provisioning: provisioning.provisioning,
            user_provisioning: provisioning.user_provisioning,
            scim,
            attribute_mappings: provisioning.attribute_mappings,
            env_dir,
            auth_mode: gate.auth_mode,
            app_login_path: gate.app_login_path,
            skip_auth: gate.skip_auth,
            provision_hook: gate.provision_hook,
            access: gate.access,
            machine: gate.machine,
            revocation_staleness: checks.revocation_staleness,
            revalidate_interval: checks.revalidate_interval,
            revalidate_grace: checks.revalidate_grace,
            clock_skew: limits.clock_skew,
            max_request_body: limits.max_request_body,
            request_body_timeout: limits.request_body_timeout,
            send_timeout: limits.send_timeout,
            upstream_response_timeout: limits.upstream_response_timeout,
            log_format,
            exclusive_provider: sign_in.exclusive_provider,
            providers: sign_in.providers,
            saml: sign_in.saml,
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

#[cfg(test)]
mod tests;
