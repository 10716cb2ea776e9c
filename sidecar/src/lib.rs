//! Gatehouse auth sidecar.
//!
//! One sidecar runs in each pod of a protected app. It serves the login page and the OIDC sign-in
//! flow (Okta, Entra ID, one generic OIDC provider), keeps users in sealed cookie sessions, and
//! reverse-proxies every other request to the app with identity headers. It is the top of four
//! crates: [`gatehouse_auth`] (pure decisions), [`gatehouse_directory`] (SsoUsers) and
//! [`gatehouse_proxy`] (the proxy) sit below it; see `docs/architecture.md`.
//!
//! # Running it
//!
//! The binary `gatehouse-sidecar` is configured only by environment variables (the contract is in
//! [`config`]); `gatehouse-sidecar --check-config` validates them, prints a one-line summary and
//! exits 0, or prints `error: <VARIABLE>: <what is wrong>` on stderr and exits 1. Logs go to stderr
//! (`GATEHOUSE_LOG_FORMAT=text|json`, verbosity by `RUST_LOG`). It runs on one thread unless
//! `GATEHOUSE_WORKER_THREADS` asks for more (see [`runtime`]). It listens on `GATEHOUSE_LISTEN`
//! (default `0.0.0.0:4180`) and `GATEHOUSE_ADMIN_LISTEN` (default `0.0.0.0:9090`), and stops
//! gracefully on SIGTERM or Ctrl-C.
//!
//! # Library API
//!
//! - [`Config::from_env`] / [`Config::from_source`]: the typed configuration.
//! - [`start`]: binds both listeners, starts discovery in the background and returns a [`Sidecar`]
//!   handle (bound addresses, [`Sidecar::shutdown`]); [`run`] = `start` + wait for a signal;
//!   [`start_with`] takes a given Kubernetes client (and can leave the SsoUser watch to the caller).
//! - [`session`]: sealing, so tests and tools can mint or inspect cookies with the configured keys.
//!
//! # HTTP surface (public listener)
//!
//! | route | |
//! | --- | --- |
//! | `GET /login?rd=/path[&providers=all]` | login page, one button (`<a href="/api/auth/oauth2/start/<id>?rd=…">`) per provider; with `AUTH_EXCLUSIVE_PROVIDER` a 302 straight to that provider unless `providers=all` |
//! | `GET /api/auth/oauth2/start/{provider}?rd=/path` | 302 to the IdP (code flow, PKCE S256, state, nonce) and an attempt cookie |
//! | `GET /api/auth/oauth2/callback/{provider}` | redirect URI to register at the IdP; 302 to `rd` with the session cookie, or a 4xx/5xx page |
//! | `GET /api/auth/saml/start?rd=/path` | SAML: 302 to the IdP's SingleSignOnService with an AuthnRequest (HTTP-Redirect) and an attempt cookie |
//! | `POST /api/auth/saml/acs` | SAML assertion consumer service: 302 to `rd` with the session cookie, or a 4xx/5xx page |
//! | `GET /api/auth/saml/metadata` | the SP's SAML metadata |
//! | `POST /api/auth/logout` (or `GET` from the app's own pages) | ends the session; 302/303 to the IdP's `end_session_endpoint` (back to `/login`) or to `/login?state=signed-out`; from another site (`Sec-Fetch-Site`/`Origin`) nothing ends and a page asks |
//! | `GET /api/auth/session` | `{"authenticated":true,"user":{"id","subject","email","name","preferred_username","role","org","provider"},"expires_at"}` or 401 `{"authenticated":false}` |
//! | `GET /.well-known/gatehouse/jwks.json` | public key of `X-Gatehouse-Identity` |
//! | anything else | the app, behind the gate (see below) |
//!
//! Without a session, in `required` mode: browsers (`Accept: text/html`) get a 302 to
//! `/login?rd=<path>`; API and WebSocket clients get 401 JSON; `GATEHOUSE_SKIP_AUTH` prefixes pass.
//! In `optional` mode the request reaches the app with identity headers stripped.
//!
//! Cookies: `__Host-gatehouse-session`, `__Host-gatehouse-attempt-<16 chars>` (≤ 3, 10 minutes),
//! `__Host-gatehouse-logout` — without `__Host-` when the public URL is plain http.
//!
//! Headers to the app: `X-Forwarded-User` (stable user id: the SsoUser name
//! `<provider>-<16 hex>`), `X-Forwarded-Email`, `X-Forwarded-Preferred-Username`,
//! `X-Forwarded-Groups` (the role: `admin` or `member`), `X-Forwarded-Org`, `X-Forwarded-Provider`,
//! `X-Gatehouse-Identity` (EdDSA JWT, see [`identity`]), `X-Forwarded-For`/`-Proto`/`-Host`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod config;
pub mod ending;
pub mod envwatch;
pub mod error;
pub mod graph;
pub mod hook;
pub mod judge;
pub mod live;
pub mod machine;
pub mod metrics;
pub mod pages;
pub mod pipeline;
pub mod providers;
pub mod revalidation;
pub mod routes;
pub mod runtime;
pub mod saml;
pub mod scim;
pub mod sessions;
pub mod state;
pub mod sweep;
pub mod userinfo;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, ConfigError};
pub use state::App;

/// How often `_FILE` secrets are re-read.
pub const SECRET_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("{var}: cannot listen on {addr} ({source})")]
    Bind {
        /// The variable naming the address.
        var: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state could not be assembled.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// `GATEHOUSE_PROVISIONING=kubernetes` but no Kubernetes configuration was found.
    #[error(
        "GATEHOUSE_PROVISIONING=kubernetes: no Kubernetes API configuration ({0}); in a pod the operator mounts the sidecar's ServiceAccount token, outside a cluster set KUBECONFIG"
    )]
    Kubernetes(String),
}

/// How [`start_with`] reaches Kubernetes when `GATEHOUSE_PROVISIONING=kubernetes`.
#[derive(Default)]
pub struct StartOptions {
    /// The API client. Default: kube's standard configuration (`KUBECONFIG`, `~/.kube/config`,
    /// then the in-cluster ServiceAccount).
    pub kube_client: Option<kube::Client>,
    /// Do not run the SsoUser watch: the caller feeds the revocation cache through
    /// [`Sidecar::take_user_feeder`] (tests against an in-memory API without watches).
    pub manual_user_watch: bool,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("kube_client", &self.kube_client.is_some())
            .field("manual_user_watch", &self.manual_user_watch)
            .finish()
    }
}

/// A running sidecar.
#[derive(Debug)]
pub struct Sidecar {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    user_feeder: Option<gatehouse_directory::kubernetes::UserCacheFeeder>,
    restart: Arc<tokio::sync::Notify>,
}

impl Sidecar {
    /// Address of the public listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address of the admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The shared state.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Resolves when the sidecar asks to be restarted (its mounted environment changed).
    pub async fn restart_requested(&self) {
        self.restart.notified().await;
    }

    /// The feeding half of the SsoUser cache, when started with
    /// [`StartOptions::manual_user_watch`] (once).
    pub fn take_user_feeder(&mut self) -> Option<gatehouse_directory::kubernetes::UserCacheFeeder> {
        self.user_feeder.take()
    }

    /// Stops accepting, lets in-flight requests finish (bounded), stops background tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.servers {
            let _ = task.await;
        }
        for task in self.background {
            task.abort();
        }
    }
}

/// Binds both listeners, starts serving, and starts provider discovery (and, with Kubernetes
/// provisioning, the SsoUser watch) in the background.
pub async fn start(config: Config) -> Result<Sidecar, StartError> {
    start_with(config, StartOptions::default()).await
}

/// [`start`] with a given Kubernetes client or a manually fed SsoUser cache.
pub async fn start_with(config: Config, options: StartOptions) -> Result<Sidecar, StartError> {
    // rustls has more than one crypto backend in this build; kube's client needs a default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut kube_for_machines = None;
    let (directory, feeder) = match config.provisioning {
        config::ProvisioningMode::Off => (gatehouse_directory::UserDirectory::Off, None),
        config::ProvisioningMode::Kubernetes => {
            let client = match options.kube_client {
                Some(client) => client,
                None => kube::Client::try_default()
                    .await
                    .map_err(|e| StartError::Kubernetes(e.to_string()))?,
            };
            kube_for_machines = Some(client.clone());
            let (directory, feeder) = gatehouse_directory::KubernetesDirectory::new(
                client.clone(),
                &config.directory_settings(),
            );
            let watch = if options.manual_user_watch {
                UserWatch::Manual(feeder)
            } else {
                UserWatch::Run(feeder, client, config.namespace.clone())
            };
            (
                gatehouse_directory::UserDirectory::Kubernetes(Box::new(directory)),
                Some(watch),
            )
        }
    };
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|source| StartError::Bind {
            var: "GATEHOUSE_ADMIN_LISTEN",
            addr: config.admin_listen,
            source,
        })?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            var: "GATEHOUSE_LISTEN",
            addr: config.listen,
            source,
        })?;
    let admin_addr = admin_listener.local_addr().unwrap_or(config.admin_listen);
    let addr = listener.local_addr().unwrap_or(config.listen);
    let app = Arc::new(App::with_directory(config, directory)?);
    if let (Some(machine), Some(client)) = (&app.machine, kube_for_machines) {
        machine.set_kube_client(client);
    }
    let (stop, stopped) = watch::channel(false);

    let admin_app = app.clone();
    let admin = tokio::spawn(gatehouse_proxy::listener::serve(
        admin_listener,
        move |req, _peer| admin::handle(admin_app.clone(), req),
        app.config.send_timeout,
        stopped.clone(),
    ));
    let router = routes::router(app.clone());
    let main = tokio::spawn(gatehouse_proxy::listener::serve(
        listener,
        move |req, peer| routes::handle(&router, req, peer),
        app.config.send_timeout,
        stopped,
    ));

    let mut background = Vec::new();
    for provider in app.providers.iter() {
        let on_ready_app = app.clone();
        background.push(tokio::spawn(providers::run_discovery(
            provider.clone(),
            app.sign_in.http.clone(),
            move |id| on_ready_app.metrics.provider_ready(id),
        )));
    }
    if let Some(saml) = app.providers.saml() {
        let on_ready_app = app.clone();
        background.push(tokio::spawn(saml::run_metadata(
            saml.clone(),
            app.sign_in.http.clone(),
            move |id| on_ready_app.metrics.provider_ready(id),
        )));
    }
    background.push(tokio::spawn(reload_secrets(app.clone())));
    background.push(tokio::spawn(app.live_sweep().run()));
    background.push(tokio::spawn(runtime::keep_timer_armed()));
    let restart = Arc::new(tokio::sync::Notify::new());
    if let Some(dir) = app.config.env_dir.clone() {
        background.push(tokio::spawn(envwatch::watch(
            dir,
            Arc::new(config::ProcessEnv),
            envwatch::Timing::default(),
            restart.clone(),
        )));
    }
    let user_feeder = match feeder {
        Some(UserWatch::Run(feeder, client, namespace)) => {
            background.push(tokio::spawn(feeder.run(client, namespace)));
            None
        }
        Some(UserWatch::Manual(feeder)) => Some(feeder),
        None => None,
    };

    tracing::info!(
        listen = %addr,
        admin = %admin_addr,
        upstream = %app.config.upstream,
        public_url = %app.site.origin,
        providers = %app.config.provider_ids().join(","),
        "gatehouse sidecar started"
    );
    Ok(Sidecar {
        addr,
        admin_addr,
        app,
        stop,
        servers: vec![main, admin],
        background,
        user_feeder,
        restart,
    })
}

enum UserWatch {
    Run(
        gatehouse_directory::kubernetes::UserCacheFeeder,
        kube::Client,
        String,
    ),
    Manual(gatehouse_directory::kubernetes::UserCacheFeeder),
}

/// Runs the sidecar until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run(config: Config) -> Result<(), StartError> {
    let sidecar = start(config).await?;
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down"),
        () = sidecar.restart_requested() => {
            tracing::info!("shutting down to restart with the changed environment");
        }
    }
    sidecar.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Re-reads `_FILE` secrets every [`SECRET_RELOAD_INTERVAL`] and on SIGHUP, so a rotated Secret
/// applies without a restart.
async fn reload_secrets(app: Arc<App>) {
    if !app.has_secret_files() {
        return;
    }
    let mut tick = tokio::time::interval(SECRET_RELOAD_INTERVAL);
    tick.tick().await;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        {
            let hup = async {
                match hangup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {}
                () = hup => tracing::info!("SIGHUP: re-reading secret files"),
            }
        }
        #[cfg(not(unix))]
        tick.tick().await;
        app.reload_secrets().await;
    }
}
