//! The mutating admission webhook that injects the sidecar: HTTPS on [`WEBHOOK_PORT`], answers
//! from the SsoConfig cache within milliseconds, records refused pods as Events.
//!
//! - [`admission`]: one AdmissionReview in, one answer out (pure apart from the cache).
//! - [`conversion`]: SsoConfig `v1alpha1` ⇄ `v1alpha2` for the API server (`POST /convert`).
//! - [`registration`]: the MutatingWebhookConfiguration, built once for the operator and chart.
//! - [`certs`]: the self-managed CA and serving certificate, and the `caBundle`.
//! - [`tls`]: rustls with an explicit provider and a hot-swappable certificate.
//!
//! [`WEBHOOK_PORT`]: gatehouse_crds::consts::WEBHOOK_PORT

pub mod admission;
pub mod certs;
pub mod conversion;
pub mod registration;
pub mod tls;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt as _;
use gatehouse_crds::SsoConfig;
use gatehouse_crds::consts::{WEBHOOK_CONVERT_PATH, WEBHOOK_INJECT_PATH};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use kube::Api;
use kube::core::DeserializeGuard;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::inject::SidecarDefaults;
use crate::metrics::Metrics;
use admission::{ConfigLookup, Decision, Denial};
use certs::CertManager;
use registration::Registration;
use tls::ReloadableCert;

/// Largest AdmissionReview accepted (a Pod is at most ~1.5 MiB in etcd; the review wraps it).
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Time a client gets to send its request headers, and to send the body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Time a client gets to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for the SsoConfig cache's first sync (only right after start-up).
pub const CACHE_WAIT: Duration = Duration::from_secs(2);
/// Connections served at once; more wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 512;
/// Metric label of the webhook's SsoConfig watch.
pub const WATCH_NAME: &str = "webhook";
/// Time an Event write may take; it runs after the answer, never delaying it.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where refused pods are reported. The server calls it only for requests that are not dry runs.
pub trait DenialEvents: Send + Sync {
    /// Record `denial`; must return at once (publish in the background).
    fn record(&self, denial: Denial);
}

/// Publishes refusals as Kubernetes Events (`events.k8s.io/v1`) in the pod's namespace.
#[derive(Clone)]
pub struct KubeEvents {
    recorder: Recorder,
}

impl KubeEvents {
    pub fn new(recorder: Recorder) -> Self {
        KubeEvents { recorder }
    }
}

impl std::fmt::Debug for KubeEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeEvents").finish_non_exhaustive()
    }
}

impl DenialEvents for KubeEvents {
    fn record(&self, denial: Denial) {
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            let mut note = denial.refusal.to_string();
            // The API caps an Event's note at 1 kB.
            if note.len() > 1000 {
                let mut end = 1000;
                while !note.is_char_boundary(end) {
                    end -= 1;
                }
                note.truncate(end);
            }
            let event = Event {
                type_: EventType::Warning,
                reason: denial.refusal.reason().to_string(),
                note: Some(note),
                action: "InjectSidecar".to_string(),
                secondary: denial.related.clone(),
            };
            match tokio::time::timeout(EVENT_TIMEOUT, recorder.publish(&event, &denial.regarding))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    warn!(%error, namespace = %denial.namespace, "cannot record the refusal Event")
                }
                Err(_) => {
                    warn!(namespace = %denial.namespace, "recording the refusal Event timed out")
                }
            }
        });
    }
}

/// Where the webhook reads SsoConfigs: the operator's reflector store. An SsoConfig that fails
/// to decode is held as its error ([`DeserializeGuard`]), so it neither stalls the watch (which
/// would refuse every labelled pod in the cluster) nor hides the other SsoConfigs.
#[derive(Clone)]
pub struct ConfigCache {
    store: Store<DeserializeGuard<SsoConfig>>,
}

impl ConfigCache {
    pub fn new(store: Store<DeserializeGuard<SsoConfig>>) -> Self {
        ConfigCache { store }
    }

    /// A cache of the SsoConfigs `api` sees, and the watch that fills it (run it in a task).
    /// Undecodable objects are logged and counted in `metrics` as they arrive.
    pub fn watch(
        api: Api<DeserializeGuard<SsoConfig>>,
        metrics: Arc<Metrics>,
    ) -> (ConfigCache, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store();
        let watch = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .for_each(move |event| {
                match event {
                    Ok(watcher::Event::Apply(config) | watcher::Event::InitApply(config)) => {
                        if let Err(invalid) = &config.0 {
                            metrics.undecodable(WATCH_NAME, "SsoConfig");
                            warn!(
                                namespace = invalid.metadata.namespace.as_deref().unwrap_or_default(),
                                name = invalid.metadata.name.as_deref().unwrap_or_default(),
                                error = %invalid.error,
                                "cannot decode an SsoConfig; pods labelled for it are refused until it is fixed"
                            );
                        }
                    }
                    Ok(_) => {}
                    Err(error) => warn!(%error, "SsoConfig watch for the webhook failed; retrying"),
                }
                futures::future::ready(())
            });
        (ConfigCache::new(store), watch)
    }

    /// Whether the first list has completed, waiting up to `wait` for it.
    pub async fn synced(&self, wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.store.wait_until_ready()).await,
            Ok(Ok(()))
        )
    }
}

impl std::fmt::Debug for ConfigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigCache")
            .field("objects", &self.store.len())
            .finish()
    }
}

/// Everything a request needs.
#[derive(Clone)]
pub struct WebhookState {
    pub configs: ConfigCache,
    pub defaults: Arc<SidecarDefaults>,
    pub events: Arc<dyn DenialEvents>,
}

impl std::fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookState")
            .field("configs", &self.configs)
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

/// The webhook's routes: `POST` [`WEBHOOK_INJECT_PATH`] (pods) and `POST`
/// [`WEBHOOK_CONVERT_PATH`] (SsoConfig versions).
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route(WEBHOOK_INJECT_PATH, post(mutate_pods))
        .route(WEBHOOK_CONVERT_PATH, post(convert))
        .with_state(state)
}

/// `POST /convert`: answered at once, without the SsoConfig cache (whose own list may need this
/// very conversion).
async fn convert(request: Request<Body>) -> Response {
    let started = Instant::now();
    let body = match read_review(request, "ConversionReview").await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let review = conversion::review(&body);
    if let Some(response) = &review.response {
        let elapsed_us = started.elapsed().as_micros() as u64;
        if response
            .result
            .status
            .as_ref()
            .is_some_and(|s| *s == kube::core::response::StatusSummary::Failure)
        {
            warn!(uid = %response.uid, message = %response.result.message, elapsed_us, "conversion refused");
        } else {
            debug!(uid = %response.uid, objects = response.converted_objects.len(), elapsed_us, "conversion review answered");
        }
    }
    json_answer(&review)
}

/// The request body of a review (`what` names it in the refusal), within [`READ_TIMEOUT`] and
/// [`BODY_LIMIT`].
async fn read_review(request: Request<Body>, what: &str) -> Result<Bytes, Response> {
    match tokio::time::timeout(
        READ_TIMEOUT,
        axum::body::to_bytes(request.into_body(), BODY_LIMIT),
    )
    .await
    {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} too large or unreadable"),
        )
            .into_response()),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time",
        )
            .into_response()),
    }
}

/// A review's answer as JSON.
fn json_answer(answer: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(answer) {
        Ok(body) => (
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from(body),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the answer: {error}"),
        )
            .into_response(),
    }
}

async fn mutate_pods(State(state): State<WebhookState>, request: Request<Body>) -> Response {
    let started = Instant::now();
    let body = match read_review(request, "AdmissionReview").await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    if !state.configs.synced(CACHE_WAIT).await {
        // Without the cache the webhook cannot tell a missing SsoConfig from an unseen one;
        // the API server reports this error and the pod's controller retries.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the Gatehouse operator is starting and has not loaded SsoConfigs yet; retry",
        )
            .into_response();
    }
    let decision = admission::review(&body, &state.configs, &state.defaults);
    respond(&state, decision, started)
}

fn respond(state: &WebhookState, decision: Decision, started: Instant) -> Response {
    let wire = decision.wire_json();
    let Decision {
        review,
        outcome,
        denial,
    } = decision;
    let uid = review
        .response
        .as_ref()
        .map(|r| r.uid.clone())
        .unwrap_or_default();
    match &denial {
        Some(d) => info!(
            uid,
            namespace = %d.namespace,
            reason = d.refusal.reason(),
            outcome = outcome.as_str(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "pod refused"
        ),
        None => debug!(
            uid,
            outcome = outcome.as_str(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "admission review answered"
        ),
    }
    if let Some(denial) = denial {
        state.events.record(denial);
    }
    json_answer(&wire)
}

impl ConfigLookup for ConfigCache {
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<SsoConfig>> {
        ConfigLookup::get(&self.store, namespace, name)
    }

    fn undecodable(&self, namespace: &str, name: &str) -> Option<String> {
        ConfigLookup::undecodable(&self.store, namespace, name)
    }
}

/// Serve `app` over TLS on `listener` until `shutdown` resolves. Each connection gets a bounded
/// handshake, header-read and body-read time; at most [`MAX_CONNECTIONS`] are served at once.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let addr = listener.local_addr()?;
    info!(%addr, "admission webhook listening (HTTPS)");
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(
            async move {
                let _permit = permit;
                let stream =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            debug!(%error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!("TLS handshake timed out");
                            return;
                        }
                    };
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(READ_TIMEOUT);
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(64)
                    .keep_alive_interval(Duration::from_secs(30));
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        app.clone().oneshot(request.map(Body::new))
                    });
                if let Err(error) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!(%error, "connection ended with an error");
                }
            }
            .instrument(info_span!("webhook_connection", %peer)),
        );
    }
    info!("admission webhook stopped");
    Ok(())
}

/// How the operator runs its webhook (`gatehouse-operator run` flags).
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    /// Port of the HTTPS listener.
    pub port: u16,
    /// Serve `tls.crt`/`tls.key` from this directory (cert-manager) instead of managing a CA.
    pub cert_dir: Option<PathBuf>,
    /// The operator's namespace: its webhook Service and certificate Secret live there.
    pub namespace: String,
    /// Only SsoConfigs of this namespace are watched (the operator's `--namespace`).
    pub watch_namespace: Option<String>,
    /// What is injected when an SsoConfig does not say otherwise.
    pub defaults: SidecarDefaults,
}

/// How often the self-managed certificate is checked, and cert-manager's files re-read.
pub const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(5 * 60);
const CERT_FILE_POLL: Duration = Duration::from_secs(30);

/// Why the webhook stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("listening on port {port}: {source}")]
    Listen {
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("serving: {0}")]
    Serve(#[source] io::Error),
}

/// Run the webhook until `shutdown`: load SsoConfigs into a cache, obtain the serving
/// certificate (self-managed, or cert-manager's files), keep it current, and serve. Every
/// replica runs this, leader or not. `ready` turns true once requests can be answered.
pub async fn run(
    client: kube::Client,
    options: WebhookOptions,
    events: Arc<dyn DenialEvents>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WebhookError> {
    let api: Api<DeserializeGuard<SsoConfig>> = match &options.watch_namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let (configs, watch) = ConfigCache::watch(api, metrics);
    tokio::spawn(watch);

    let cert = match &options.cert_dir {
        Some(dir) => {
            let pem = loop {
                match tls::read_cert_dir(dir) {
                    Ok(pem) => break pem,
                    Err(error) => {
                        warn!(%error, "waiting for the webhook certificate files");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            };
            let cert = ReloadableCert::new(pem)?;
            tokio::spawn(tls::watch_cert_dir(
                dir.clone(),
                cert.clone(),
                CERT_FILE_POLL,
            ));
            cert
        }
        None => {
            let mut registration = Registration::new(options.namespace.clone());
            registration.port = i32::from(options.port);
            let manager = CertManager::new(client.clone(), registration);
            let cert = ReloadableCert::new(manager.initial().await.serving())?;
            tokio::spawn(manager.run(cert.clone(), CERT_CHECK_INTERVAL));
            cert
        }
    };

    let listener = TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, options.port))
        .await
        .map_err(|source| WebhookError::Listen {
            port: options.port,
            source,
        })?;
    let store = configs.store.clone();
    let state = WebhookState {
        configs,
        defaults: Arc::new(options.defaults),
        events,
    };
    let readiness = ready.clone();
    tokio::spawn(async move {
        if store.wait_until_ready().await.is_ok() {
            readiness.store(true, Ordering::Release);
            info!("admission webhook ready: SsoConfigs loaded, certificate in place");
        }
    });
    let served = serve(listener, tls::server_config(cert)?, router(state), shutdown).await;
    ready.store(false, Ordering::Release);
    served.map_err(WebhookError::Serve)
}
