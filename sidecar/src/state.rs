//! What the request handlers share, built once from the configuration, as parts with one job
//! each: [`Providers`], [`Sessions`] (cookie keys and reading a session), [`SignIn`] (what only
//! sign-in uses), [`Site`] (the public origin), the identity issuer, the upstream, metrics and the
//! user directory. Handlers take the parts they need as axum state ([`FromRef`]).

use std::ops::Deref;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::FromRef;
use http::HeaderMap;

use crate::config::{Config, Secret, read_secret_file};
use crate::hook::ProvisionHook;
use crate::live::LiveSessions;
use crate::metrics::Metrics;
use crate::providers::Provider;
use crate::revalidation::Revalidator;
use crate::saml::SamlProvider;
use gatehouse_auth::collections::ExpiringSet;
use gatehouse_auth::cookie::{Binding, CookieNames, KeyRing, KeyRingError, Session, UnsealCache};
use gatehouse_auth::identity::{IdentityIssuer, IdentityKeyError, ProviderIdentity};
use gatehouse_auth::revalidation::Standing;
use gatehouse_directory::UserDirectory;
use gatehouse_directory::kubernetes::Refusal;
use gatehouse_proxy::Upstream;

/// Logged-out sessions remembered at once (per replica).
const LOGGED_OUT_CAPACITY: usize = 50_000;
/// Identity-provider sessions ended by back-channel logout, remembered at once (per replica).
const ENDED_IDP_SESSIONS_CAPACITY: usize = 50_000;
/// Used logout token ids (`jti`) remembered at once (per replica).
const USED_LOGOUT_TOKENS_CAPACITY: usize = 20_000;
/// Used `state` values remembered at once (per replica).
const USED_STATE_CAPACITY: usize = 20_000;
/// Unsealed session cookies cached at once.
const UNSEAL_CACHE_CAPACITY: usize = 4096;

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

/// The enabled sign-in methods: the OIDC providers in configuration order (what this derefs
/// to), or SAML.
#[derive(Debug)]
pub struct Providers {
    oidc: Vec<Arc<Provider>>,
    saml: Option<Arc<SamlProvider>>,
}

impl Providers {
    /// An OIDC provider by id.
    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.oidc.iter().find(|p| p.id() == id)
    }

    /// SAML, when it is the active protocol.
    pub fn saml(&self) -> Option<&Arc<SamlProvider>> {
        self.saml.as_ref()
    }

    /// What the identity headers say about provider `id`, whatever its protocol.
    pub fn identity(&self, id: &str) -> Option<&ProviderIdentity> {
        self.get(id).map(|p| &p.identity).or_else(|| {
            self.saml
                .as_ref()
                .filter(|s| s.id() == id)
                .map(|s| &s.identity)
        })
    }

    /// Every sign-in method as `(id, button label)`, in order.
    pub fn methods(&self) -> impl Iterator<Item = (&str, &str)> {
        self.oidc
            .iter()
            .map(|p| (p.id(), p.config.display_name.as_str()))
            .chain(self.saml.iter().map(|s| (s.id(), SAML_LABEL)))
    }

    /// Whether every provider's discovery document and keys (or SAML's metadata) are loaded.
    pub fn are_ready(&self) -> bool {
        self.oidc.iter().all(|p| p.is_ready()) && self.saml.iter().all(|s| s.is_ready())
    }
}

/// Button label of SAML sign-in.
pub const SAML_LABEL: &str = "SAML";

impl Deref for Providers {
    type Target = [Arc<Provider>];

    fn deref(&self) -> &[Arc<Provider>] {
        &self.oidc
    }
}

/// The cookie keys, and reading a session from a request: unsealing (cached), and the sessions
/// ended by logout.
#[derive(Debug)]
pub struct Sessions {
    keys: RwLock<Arc<KeyRing>>,
    unsealed: UnsealCache,
    /// What cookies are bound to.
    pub binding: Binding,
    /// Cookie names.
    pub cookies: CookieNames,
    /// Sessions ended by logout, until their expiry.
    pub logged_out: ExpiringSet,
    /// Identity-provider session ids (`sid`) ended by back-channel logout, until the sessions
    /// they could name expire. This replica's own record; other replicas learn it from the
    /// SsoUser.
    pub ended_idp_sessions: ExpiringSet,
    /// Logout token ids (`jti`) already used, by provider.
    pub used_logout_tokens: ExpiringSet,
}

impl Sessions {
    fn new(keys: KeyRing, binding: Binding, cookies: CookieNames) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            unsealed: UnsealCache::new(UNSEAL_CACHE_CAPACITY),
            binding,
            cookies,
            logged_out: ExpiringSet::new(LOGGED_OUT_CAPACITY),
            ended_idp_sessions: ExpiringSet::new(ENDED_IDP_SESSIONS_CAPACITY),
            used_logout_tokens: ExpiringSet::new(USED_LOGOUT_TOKENS_CAPACITY),
        }
    }

    /// The current cookie key ring.
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the key ring (rotation from a mounted Secret).
    pub fn set_keys(&self, ring: KeyRing) {
        match self.keys.write() {
            Ok(mut k) => *k = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
        // A removed key must stop admitting the sessions it sealed.
        self.unsealed.clear();
    }

    /// The session cookie of a request, unsealed, unexpired and not logged out.
    pub fn read(&self, headers: &HeaderMap, now: i64) -> Option<Arc<Session>> {
        let keys = self.keys();
        let session = gatehouse_auth::cookie::cookies(headers)
            .filter(|(name, _)| *name == self.cookies.session)
            .find_map(|(_, value)| {
                self.unsealed
                    .get_or_unseal(&keys, &self.binding, value, now)
            })?;
        (!self.is_ended(&session, now)).then_some(session)
    }

    /// Whether this replica ended `session` (logout, back-channel logout naming its IdP session).
    pub fn is_ended(&self, session: &Session, now: i64) -> bool {
        self.logged_out.contains(&session.sid, now)
            || session
                .idp_sid
                .as_deref()
                .is_some_and(|sid| self.ended_idp_sessions.contains(sid, now))
    }
}

/// What only sign-in uses: the `state` values already used, the HTTP client for the IdPs, and
/// the app's provisioning hook.
#[derive(Debug)]
pub struct SignIn {
    /// `state` values already used by a callback.
    pub used_states: ExpiringSet,
    /// HTTP client for IdPs (no redirects, timeouts).
    pub http: reqwest::Client,
    /// The app's provisioning hook.
    pub hook: Option<ProvisionHook>,
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
    /// Re-validation of sessions at their IdP.
    pub revalidation: Arc<Revalidator>,
    /// Last secret-file contents applied: the cookie keys, then each provider's client secret.
    applied_secrets: Arc<tokio::sync::Mutex<(Secret, Vec<Secret>)>>,
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
        let providers = Providers {
            oidc: config
                .providers
                .iter()
                .cloned()
                .map(|p| Arc::new(Provider::new(p)))
                .collect(),
            saml: config.saml.clone().map(|s| Arc::new(SamlProvider::new(s))),
        };
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
        Ok(Self {
            providers: Arc::new(providers),
            sessions: Arc::new(sessions),
            sign_in: Arc::new(SignIn {
                used_states: ExpiringSet::new(USED_STATE_CAPACITY),
                http,
                hook,
            }),
            site: Arc::new(site),
            identity: Arc::new(identity),
            upstream,
            metrics: Arc::new(metrics),
            directory: Arc::new(directory),
            live: LiveSessions::default(),
            revalidation: Arc::new(Revalidator::new(config.revalidation())),
            applied_secrets,
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
    }

    /// A provider by id.
    pub fn provider(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.get(id)
    }

    /// Whether every provider is loaded and the directory is usable.
    pub fn is_ready(&self) -> bool {
        self.providers.are_ready() && self.directory.is_ready()
    }

    /// The valid session of a request, if any: unsealed, unexpired, not logged out, not revoked,
    /// from a provider still configured. Reads the API only on a watch-cache miss for a session
    /// issued moments ago ([`App::session_from_cache`], [`App::confirm_session`]).
    pub async fn session(&self, headers: &HeaderMap, now: i64) -> Option<Arc<Session>> {
        match self.session_from_cache(headers, now) {
            SessionLookup::Valid(session) => Some(session),
            SessionLookup::None => None,
            SessionLookup::Unconfirmed(session) => self.confirm_session(session).await,
        }
    }

    /// [`App::session`] as far as it goes without IO: the cookie and the watch cache.
    pub fn session_from_cache(&self, headers: &HeaderMap, now: i64) -> SessionLookup {
        let Some(session) = self.sessions.read(headers, now) else {
            return SessionLookup::None;
        };
        match self.judge(&session, now) {
            Judgement::Valid => SessionLookup::Valid(session),
            Judgement::Unconfirmed(refusal)
                if self.directory.may_confirm(&session, refusal, now) =>
            {
                SessionLookup::Unconfirmed(session)
            }
            Judgement::Unconfirmed(refusal) => {
                self.session_refused(&session, refusal);
                SessionLookup::None
            }
            Judgement::Refused(reason) => {
                tracing::debug!(user = %session.user, reason, "session refused");
                SessionLookup::None
            }
        }
    }

    /// The one judgement of a session at `now`, for requests ([`App::session_from_cache`]) and
    /// for open connections ([`App::recheck`]): unexpired, not ended on this replica, from a
    /// provider still configured, not gone past its re-validation grace
    /// ([`crate::revalidation`]), and accepted by the user directory.
    pub fn judge(&self, session: &Session, now: i64) -> Judgement {
        if session.expires_at <= now {
            return Judgement::Refused("session_expired");
        }
        if self.sessions.is_ended(session, now) {
            return Judgement::Refused("session_ended");
        }
        if self.providers.identity(&session.provider).is_none() {
            return Judgement::Refused("provider_removed");
        }
        if self.revalidation.standing(session, now) == Standing::PastGrace {
            return Judgement::Refused("revalidation_overdue");
        }
        match self.directory.check(session) {
            Ok(()) => Judgement::Valid,
            Err(refusal) => Judgement::Unconfirmed(refusal),
        }
    }

    /// Settles a [`SessionLookup::Unconfirmed`] session by reading its SsoUser from the API.
    pub async fn confirm_session(&self, session: Arc<Session>) -> Option<Arc<Session>> {
        let confirmation = self.directory.confirm(&session).await;
        if let Some(read) = confirmation.read {
            self.metrics.user_read(read.label());
        }
        match confirmation.verdict {
            Ok(()) => Some(session),
            Err(refusal) => {
                self.session_refused(&session, refusal);
                None
            }
        }
    }

    fn session_refused(&self, session: &Session, refusal: Refusal) {
        self.metrics.session_refused(refusal.reason());
        tracing::debug!(user = %session.user, reason = refusal.reason(), "session refused by the user directory");
    }
}

/// A request's session as far as the cookie and the watch cache tell.
#[derive(Debug)]
pub enum SessionLookup {
    /// A valid session.
    Valid(Arc<Session>),
    /// No valid session (none sent, expired, logged out, or refused by the user directory).
    None,
    /// A session the watch cache does not hold the user of, issued moments ago: another replica
    /// may have just created the user. [`App::confirm_session`] reads it from the API.
    Unconfirmed(Arc<Session>),
}

impl App {
    /// Whether a session that was valid still is at `now` ([`App::judge`]; a directory refusal
    /// counts, an open connection is not worth a read of the API). The reason when not.
    pub fn recheck(&self, session: &Session, now: i64) -> Result<(), &'static str> {
        match self.judge(session, now) {
            Judgement::Valid => Ok(()),
            Judgement::Unconfirmed(refusal) => Err(refusal.reason()),
            Judgement::Refused(reason) => Err(reason),
        }
    }
}

/// [`App::judge`]'s verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The session may continue.
    Valid,
    /// Refused by the user directory's cache; a request may still read the API for a session
    /// issued moments ago ([`UserDirectory::may_confirm`]).
    Unconfirmed(Refusal),
    /// Refused, with the reason.
    Refused(&'static str),
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
        assert_eq!(
            app.judge(&overdue, NOW),
            Judgement::Refused("revalidation_overdue")
        );
        assert_eq!(app.recheck(&overdue, NOW), Err("revalidation_overdue"));
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
