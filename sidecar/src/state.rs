//! What the request handlers share, built once from the configuration in [`App::new`]: the
//! parts — [`Providers`], [`Sessions`] (cookie keys and reading a session), [`Site`] (the public
//! origin), the identity issuer, the upstream, metrics and the user directory — and the services
//! built on them, each holding only the parts it needs: the session judge ([`SessionJudge`]),
//! the session ender ([`SessionEnder`]), sign-in ([`SignIn`]) and re-validation flights
//! ([`Flights`]). Handlers take what they need as axum state ([`FromRef`]). Nothing below this
//! module names [`App`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use http::HeaderMap;

use crate::config::{Config, Secret, read_secret_file};
use crate::ending::SessionEnder;
use crate::hook::ProvisionHook;
use crate::judge::{Judgement, SessionJudge, SessionLookup};
use crate::live::LiveSessions;
use crate::metrics::Metrics;
use crate::pipeline::SignIn;
use crate::providers::{Provider, Providers};
use crate::revalidation::{Flights, Revalidator};
use crate::sessions::Sessions;
use crate::sweep::LiveSweep;
use gatehouse_auth::collections::ExpiringSet;
use gatehouse_auth::cookie::{Binding, CookieNames, KeyRing, KeyRingError, Session};
use gatehouse_auth::identity::{IdentityIssuer, IdentityKeyError};
use gatehouse_directory::UserDirectory;
use gatehouse_proxy::Upstream;

/// Used `state` values remembered at once (per replica).
const USED_STATE_CAPACITY: usize = 20_000;

/// Why the sidecar could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Cookie keys unusable.
    #[error("GATEHOUSE_COOKIE_SECRET: {0}")]
    Keys(#[from] KeyRingError),
    /// Identity key generation failed.
    #[error(transparent)]
    Identity(#[from] IdentityKeyError),
    /// HTTP client for the IdPs could not be built.
    #[error("HTTP client for the identity providers")]
    Http(#[source] reqwest::Error),
}

/// Where users reach the app.
#[derive(Debug)]
pub struct Site {
    /// Host name shown on pages.
    pub name: String,
    /// `https://host`, no trailing slash.
    pub origin: String,
}

impl Site {
    /// The redirect URI registered at the IdP for `provider`.
    pub fn callback_url(&self, provider: &str) -> String {
        format!(
            "{}{}{provider}",
            self.origin,
            gatehouse_crds::consts::OIDC_CALLBACK_PREFIX
        )
    }
}

/// The sidecar's shared state: its parts, each behind an `Arc` so that a handler can take just
/// the one it needs (the router's state; cloning it clones the `Arc`s).
#[derive(Debug, Clone)]
pub struct App {
    /// Configuration.
    pub config: Arc<Config>,
    /// Enabled providers.
    pub providers: Arc<Providers>,
    /// Cookie keys and session reading.
    pub sessions: Arc<Sessions>,
    /// Sign-in's own state.
    pub sign_in: Arc<SignIn>,
    /// Where users reach the app.
    pub site: Arc<Site>,
    /// Identity JWT signer and header cache.
    pub identity: Arc<IdentityIssuer>,
    /// The app.
    pub upstream: Upstream,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// User directory (provisioning, revocation).
    pub directory: Arc<UserDirectory>,
    /// Sessions with open connections (WebSocket tunnels, streamed responses).
    pub live: LiveSessions,
    /// Re-validation records of sessions at their IdP (standing, renewals).
    pub revalidation: Arc<Revalidator>,
    /// The one judgement of a session.
    pub judge: Arc<SessionJudge>,
    /// Ends sessions on every replica.
    pub ender: SessionEnder,
    /// Re-validation flights.
    pub flights: Arc<Flights>,
    /// Last secret-file contents applied: the cookie keys, then each provider's client secret.
    applied_secrets: Arc<tokio::sync::Mutex<(Secret, Vec<Secret>)>>,
    /// Machine clients' bearer tokens (`GATEHOUSE_MACHINE_AUTH`), when configured.
    pub machine: Option<Arc<crate::machine::MachineClients>>,
    /// The SCIM endpoint (`provisioning.mode: scim`).
    pub scim: Option<Arc<crate::scim::ScimService>>,
}

macro_rules! part {
    ($field:ident: $ty:ty) => {
        impl FromRef<App> for Arc<$ty> {
            fn from_ref(app: &App) -> Self {
                app.$field.clone()
            }
        }
    };
}
part!(config: Config);
part!(providers: Providers);
part!(sessions: Sessions);
part!(sign_in: SignIn);
part!(site: Site);
part!(identity: IdentityIssuer);
part!(metrics: Metrics);

impl App {
    /// Builds the state with no user directory (`GATEHOUSE_PROVISIONING=off`). No network access.
    pub fn new(config: Config) -> Result<Self, StateError> {
        Self::with_directory(config, UserDirectory::Off)
    }

    /// Builds the state around `directory`. No network access.
    pub fn with_directory(config: Config, directory: UserDirectory) -> Result<Self, StateError> {
        let keys = KeyRing::parse(config.cookie_secret.value.expose())?;
        let origin = config.public_origin();
        let binding = Binding::new(
            &config.namespace,
            &config.config_name,
            &origin,
            config.config_uid.as_deref(),
        );
        let sessions = Sessions::new(keys, binding, CookieNames::new(config.secure_cookies()));
        let identity = IdentityIssuer::generate(&origin)?;
        let upstream = Upstream::new(config.upstream.clone(), config.public_url.scheme())
            .with_response_timeout(config.upstream_response_timeout);
        let hook = config
            .provision_hook
            .as_deref()
            .and_then(|path| ProvisionHook::new(upstream.clone(), path));
        let metrics = Metrics::new(&config.provider_ids());
        let providers = Providers::new(&config);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse-sidecar/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StateError::Http)?;
        let site = Site {
            name: config
                .public_url
                .host_str()
                .unwrap_or("the application")
                .to_owned(),
            origin,
        };
        let applied_secrets = Arc::new(tokio::sync::Mutex::new((
            config.cookie_secret.value.clone(),
            config
                .providers
                .iter()
                .map(|p| p.client_secret.value.clone())
                .collect(),
        )));
        let providers = Arc::new(providers);
        let sessions = Arc::new(sessions);
        let identity = Arc::new(identity);
        let metrics = Arc::new(metrics);
        let directory = Arc::new(directory);
        let live = LiveSessions::default();
        let revalidation = Arc::new(Revalidator::new(config.revalidation()));
        let ender = SessionEnder {
            sessions: sessions.clone(),
            live: live.clone(),
            identity: identity.clone(),
            directory: directory.clone(),
        };
        let judge = Arc::new(SessionJudge {
            sessions: sessions.clone(),
            providers: providers.clone(),
            revalidation: revalidation.clone(),
            directory: directory.clone(),
            metrics: metrics.clone(),
        });
        let flights = Arc::new(Flights {
            revalidator: revalidation.clone(),
            sessions: sessions.clone(),
            providers: providers.clone(),
            http: http.clone(),
            skew: config.clock_skew,
            config_name: config.config_name.clone(),
            attribute_mappings: config.attribute_mappings.clone(),
            access: config.access.clone(),
            directory: directory.clone(),
            metrics: metrics.clone(),
            ender: ender.clone(),
            replica: replica_name(),
        });
        let machine = config
            .machine
            .clone()
            .map(|m| Arc::new(crate::machine::MachineClients::new(m, http.clone())));
        let scim = config.scim.as_ref().map(|scim| {
            Arc::new(crate::scim::ScimService::new(
                scim,
                &config.config_name,
                &config.public_url,
                directory.clone(),
                providers.clone(),
            ))
        });
        let sign_in = Arc::new(SignIn {
            used_states: ExpiringSet::new(USED_STATE_CAPACITY),
            http,
            hook,
            directory: directory.clone(),
            identity: identity.clone(),
            sessions: sessions.clone(),
            metrics: metrics.clone(),
            session_ttl: config.session_ttl,
            config_name: config.config_name.clone(),
            attribute_mappings: config.attribute_mappings.clone(),
            access: config.access.clone(),
        });
        Ok(Self {
            providers,
            sessions,
            sign_in,
            site: Arc::new(site),
            identity,
            upstream,
            metrics,
            directory,
            live,
            revalidation,
            judge,
            ender,
            flights,
            applied_secrets,
            machine,
            scim,
            config: Arc::new(config),
        })
    }

    /// Whether any secret comes from a `_FILE`.
    pub fn has_secret_files(&self) -> bool {
        self.config.cookie_secret.file.is_some()
            || self
                .providers
                .iter()
                .any(|p| p.config.client_secret.file.is_some())
            || self
                .config
                .scim
                .as_ref()
                .is_some_and(|s| s.token_file.is_some() || s.previous_token_file.is_some())
    }

    /// Re-reads every `_FILE` secret now and applies those that changed. New cookie keys replace the
    /// ring (sessions sealed with a key still listed keep working); invalid new content is logged,
    /// without its value, and the old secret kept.
    pub async fn reload_secrets(&self) {
        let mut applied = self.applied_secrets.lock().await;
        if let Some(path) = self.config.cookie_secret.file.clone()
            && let Some(secret) = read_secret(path, "GATEHOUSE_COOKIE_SECRET_FILE").await
            && secret != applied.0
        {
            match KeyRing::parse(secret.expose()) {
                Ok(ring) => {
                    tracing::info!(
                        keys = ring.len(),
                        "cookie keys reloaded from GATEHOUSE_COOKIE_SECRET_FILE"
                    );
                    self.sessions.set_keys(ring);
                    applied.0 = secret;
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "GATEHOUSE_COOKIE_SECRET_FILE changed but is invalid; keeping the old keys"
                ),
            }
        }
        for (provider, last) in self.providers.iter().zip(applied.1.iter_mut()) {
            let source = &provider.config.client_secret;
            if let Some(path) = source.file.clone()
                && let Some(secret) = read_secret(path, source.var).await
                && &secret != last
            {
                tracing::info!(provider = %provider.id(), "client secret reloaded from {}_FILE", source.var);
                provider.set_client_secret(secret.clone());
                *last = secret;
            }
        }
        if let (Some(config), Some(service)) = (self.config.scim.clone(), self.scim.clone()) {
            match tokio::task::spawn_blocking(move || config.reread_tokens()).await {
                Ok(Ok(Some(tokens))) => {
                    if service.set_tokens(&tokens) {
                        tracing::info!(
                            tokens = tokens.len(),
                            "SCIM tokens reloaded from SCIM_TOKEN_FILE and SCIM_PREVIOUS_TOKEN_FILE"
                        );
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(reason)) => tracing::warn!(
                    %reason,
                    "the SCIM token files changed but are unusable; keeping the tokens in use"
                ),
                Err(e) => tracing::warn!(error = %e, "could not re-read the SCIM token files"),
            }
        }
    }

    /// A provider by id.
    pub fn provider(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.get(id)
    }

    /// Whether every provider is loaded and the directory is usable.
    pub fn is_ready(&self) -> bool {
        self.providers.are_ready() && self.directory.is_ready()
    }

    /// The valid session of a request, if any ([`SessionJudge::session`]).
    pub async fn session(&self, headers: &HeaderMap, now: i64) -> Option<Arc<Session>> {
        self.judge.session(headers, now).await
    }

    /// [`SessionJudge::session_from_cache`].
    pub fn session_from_cache(&self, headers: &HeaderMap, now: i64) -> SessionLookup {
        self.judge.session_from_cache(headers, now)
    }

    /// [`SessionJudge::judge`].
    pub fn judge(&self, session: &Session, now: i64) -> Judgement {
        self.judge.judge(session, now)
    }

    /// [`SessionJudge::confirm_session`].
    pub async fn confirm_session(&self, session: Arc<Session>) -> Option<Arc<Session>> {
        self.judge.confirm_session(session).await
    }

    /// [`SessionJudge::recheck`].
    pub fn recheck(&self, session: &Session, now: i64) -> Result<(), &'static str> {
        self.judge.recheck(session, now)
    }

    /// The sweep of this app's live connections ([`LiveSweep::run`] until the process ends).
    pub fn live_sweep(&self) -> LiveSweep {
        LiveSweep {
            live: self.live.clone(),
            judge: self.judge.clone(),
            flights: self.flights.clone(),
            changes: self.directory.changes(),
        }
    }
}

/// This process's name in shared leases: the pod's name (`HOSTNAME`) and a random suffix, so a
/// restarted container is a new holder.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    format!("{host}/{}", gatehouse_auth::cookie::random_token(6))
}

async fn read_secret(path: std::path::PathBuf, var: &str) -> Option<Secret> {
    match tokio::task::spawn_blocking(move || read_secret_file(&path)).await {
        Ok(Ok(secret)) => Some(secret),
        Ok(Err(problem)) => {
            tracing::warn!(variable = var, problem = %problem, "could not re-read a secret file; keeping the old value");
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod confirm_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_auth::claims::Role;

    const NOW: i64 = 1_800_000_000;

    fn app() -> App {
        let vars = [
            ("GATEHOUSE_PUBLIC_URL", "https://app.example.com"),
            (
                "GATEHOUSE_COOKIE_SECRET",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
            ("OKTA_CLIENT_ID", "client"),
            ("OKTA_CLIENT_SECRET", "secret"),
            ("OKTA_ISSUER", "https://acme.okta.com"),
            ("OKTA_ORG_ID", "acme"),
            ("GATEHOUSE_PROVISIONING", "off"),
            ("GATEHOUSE_REVALIDATE_INTERVAL", "15m"),
            ("GATEHOUSE_REVALIDATE_GRACE", "1h"),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        App::new(Config::from_source(&lookup).expect("config")).expect("app")
    }

    fn session(validated_at: Option<i64>) -> Session {
        Session {
            sid: "sid-1".into(),
            user: "okta-1".into(),
            subject: "00u1".into(),
            provider: "okta".into(),
            email: None,
            name: None,
            username: None,
            role: Role::Member,
            issued_at: NOW - 10,
            expires_at: NOW + 3600,
            user_uid: None,
            idp_sid: None,
            validated_at,
            groups: Vec::new(),
            claims: None,
            facts: None,
            groups_unknown: false,
        }
    }

    #[tokio::test]
    async fn one_judgement_refuses_a_session_past_its_revalidation_grace_for_requests_and_connections()
     {
        let app = app();
        // Validated 15m ago: due, still served while a refresh is attempted.
        let due = session(Some(NOW - 900));
        assert_eq!(app.judge(&due, NOW), Judgement::Valid);
        assert_eq!(app.recheck(&due, NOW), Ok(()));
        // Never re-validated (no refresh token): never overdue.
        assert_eq!(app.judge(&session(None), NOW), Judgement::Valid);
        // Due for longer than the grace: refused, so the sweep cuts its connections too.
        let overdue = session(Some(NOW - 900 - 3600));
        assert_eq!(app.judge(&overdue, NOW), Judgement::Overdue);
        assert_eq!(app.recheck(&overdue, NOW), Err("revalidation_overdue"));
    }

    /// Collects what the subscriber writes, for asserting on log lines.
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_request_with_a_session_past_its_grace_is_refused_counted_and_audited() {
        let app = app();
        let overdue = session(Some(NOW - 900 - 3600));
        let sealed = overdue.seal(&app.sessions.keys(), &app.sessions.binding);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_str(&format!("{}={sealed}", app.sessions.cookies.session))
                .expect("a cookie header"),
        );
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let lookup =
            tracing::subscriber::with_default(subscriber, || app.session_from_cache(&headers, NOW));
        assert!(matches!(lookup, SessionLookup::None), "{lookup:?}");
        let text = app.metrics.encode();
        assert!(
            text.contains("gatehouse_sessions_refused_total{reason=\"revalidation_overdue\"} 1"),
            "{text}"
        );
        let logged = String::from_utf8(lines.0.lock().expect("the lines").clone()).expect("UTF-8");
        assert!(
            logged.contains("WARN")
                && logged.contains("gatehouse::audit")
                && logged.contains("event=\"revalidation\"")
                && logged.contains("outcome=\"refused\"")
                && logged.contains("reason=\"revalidation_overdue\""),
            "an audit line: {logged}"
        );
    }

    #[tokio::test]
    async fn one_judgement_covers_expiry_logout_and_removed_providers() {
        let app = app();
        let valid = session(None);
        assert_eq!(
            app.judge(&valid, valid.expires_at),
            Judgement::Refused("session_expired")
        );
        let gone = Session {
            provider: "entra".into(),
            ..session(None)
        };
        assert_eq!(
            app.judge(&gone, NOW),
            Judgement::Refused("provider_removed")
        );
        app.sessions
            .logged_out
            .insert(&valid.sid, valid.expires_at, NOW);
        assert_eq!(app.recheck(&valid, NOW), Err("session_ended"));
    }
}
