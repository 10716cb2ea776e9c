//! The sidecar with `GATEHOUSE_PROVISIONING=kubernetes`, in process, against kube-fake-client's
//! in-memory API server, signing in through the real fixture IdP.
//!
//! The in-memory API has no streaming watch, so the test plays the watch: [`KubeStack::sync`]
//! delivers what a (re)started watch would (a full list), [`KubeStack::deliver`] one event. The
//! sidecar's own code path from a watch event to a refused request is the one production runs.
//! [`KubeStack::set_api_down`] makes every API call fail, as during an API server outage.
//!
//! The app behind the sidecar is a small HTTP server in the test process whose provisioning hook
//! (`POST /hooks/sso`) records each call and can be told to fail, and whose [`ECHO_PATH`] answers
//! with the request as it received it ([`SeenRequest`]).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::{Context, Result, bail};
use axum::{
    Json, Router,
    extract::ws::{Message, WebSocket, WebSocketUpgrade},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use gatehouse_crds::SsoUser;
use gatehouse_directory::kubernetes::UserCacheFeeder;
use k8s_openapi::api::events::v1::Event;
use kube::{Api, api::ListParams, runtime::watcher};
use kube_fake_client::{ClientBuilder, interceptor};
use serde_json::Value;

use crate::{
    flow::{Answer, Attempt, LoginFlow, Session},
    idp::{Idp, PASSWORD},
    process::{free_port, random_key_b64},
    sample::SeenRequest,
    stack::{ProviderKind, StackOptions, sidecar_env},
};

/// Namespace of the stack's SsoConfig.
pub const NAMESPACE: &str = "team-a";
/// Name of the stack's SsoConfig.
pub const CONFIG: &str = "portal";
/// Path of the app's provisioning hook.
pub const HOOK_PATH: &str = "/hooks/sso";
/// The test app's WebSocket echo.
pub const WS_PATH: &str = "/ws";
/// Header the test app sets on every answer.
pub const APP_MARKER: &str = "x-test-app";
/// Where the test app answers with the request it received, as JSON ([`SeenRequest`]).
pub const ECHO_PATH: &str = "/echo";
/// Path on which the test app takes a minute to answer (a slow report, a long poll).
pub const SLOW_PATH: &str = "/slow";
/// A download with a `Content-Length` (1 MiB) sent in 64 KiB pieces, one every 200 ms.
pub const DOWNLOAD_PATH: &str = "/download";

/// How to start a [`KubeStack`].
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// `GATEHOUSE_PROVISIONING_MODE`.
    pub mode: &'static str,
    /// SsoUsers that exist before the sidecar starts (declared in Git).
    pub users: Vec<SsoUser>,
    /// Set `GATEHOUSE_PROVISION_HOOK`.
    pub hook: bool,
    /// `GATEHOUSE_REVOCATION_STALENESS`.
    pub staleness: &'static str,
    /// `GATEHOUSE_ATTRIBUTE_MAPPINGS`.
    pub attribute_mappings: Option<&'static str>,
    /// `GATEHOUSE_REVALIDATE_INTERVAL` and `GATEHOUSE_REVALIDATE_GRACE` (e.g. `("1s", "3s")`);
    /// `None` leaves both unset (the sidecar's defaults).
    pub revalidate: Option<(&'static str, &'static str)>,
    /// `GATEHOUSE_ACCESS` (the access rules as JSON); with it, the generic (Auth0-shaped)
    /// provider, whose users carry `groups`, is enabled too.
    pub access: Option<String>,
    /// More sidecar environment, applied last (e.g. `ENTRA_GRAPH_URL`).
    pub extra_env: Vec<(&'static str, String)>,
    /// Enable three generic providers (the fixture's Auth0-shaped one and its two extra issuers,
    /// whose accounts have the same `sub`s) beside Okta and Entra ID.
    pub generic_providers: bool,
}

impl Default for KubeOptions {
    fn default() -> Self {
        Self {
            mode: "jit",
            users: Vec::new(),
            hook: false,
            staleness: "5m",
            attribute_mappings: Some("department=department"),
            revalidate: None,
            access: None,
            extra_env: Vec::new(),
            generic_providers: false,
        }
    }
}

/// The test app: answers everything with 200 and the marker header; records hook calls.
#[derive(Debug, Default)]
pub struct TestApp {
    /// Bodies POSTed to the hook, in order.
    pub hook_calls: Mutex<Vec<Value>>,
    /// Answer the hook with 500.
    pub hook_fails: AtomicBool,
}

/// IdP, test app, and an in-process sidecar on the in-memory API.
pub struct KubeStack {
    pub idp: Idp,
    pub app: Arc<TestApp>,
    pub sidecar: gatehouse_sidecar::Sidecar,
    pub client: kube::Client,
    /// SsoUsers of [`NAMESPACE`].
    pub users: Api<SsoUser>,
    feeder: UserCacheFeeder,
    api_down: Arc<AtomicBool>,
    url: String,
    /// One HTTP client for the test's own requests (building one per request costs more than the
    /// request).
    http: reqwest::Client,
    /// The sidecar's environment, for more replicas.
    env: BTreeMap<String, String>,
}

/// Another replica of the stack's sidecar: the same configuration and cookie keys, the same
/// in-memory API, its own SsoUser watch cache (fed by the test, like the stack's).
pub struct Replica {
    pub sidecar: gatehouse_sidecar::Sidecar,
    users: Api<SsoUser>,
    feeder: UserCacheFeeder,
    url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// URL on the replica's public port.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// What a (re)started watch delivers: the full list of the namespace's SsoUsers.
    pub async fn sync(&mut self) -> Result<()> {
        sync_feeder(&mut self.feeder, &self.users).await
    }

    /// Delivers SsoUser `name`, as the API holds it now, as a watch event.
    pub async fn deliver_current(&mut self, name: &str) -> Result<()> {
        deliver_current(&mut self.feeder, &self.users, name).await
    }

    /// Whether `session` reaches the app through this replica right now.
    pub async fn reaches_app(&self, session: &Session) -> Result<bool> {
        reaches_app(&self.http, &self.url("/dashboard"), session).await
    }

    /// GET `path` on this replica as an API client with `session`'s cookies.
    pub async fn get(&self, session: &Session, path: &str) -> Result<Answer> {
        get_with(
            &self.http,
            &self.url(path),
            &[
                ("accept", "application/json"),
                ("cookie", &session.cookie_header()),
            ],
        )
        .await
    }

    /// URL on the replica's admin port.
    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.sidecar.admin_addr())
    }

    /// The replica's admin port `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        metrics_text(&self.http, &self.admin("/metrics")).await
    }
}

/// What the test app received, when `answer` is the test app's answer to [`ECHO_PATH`].
pub fn seen_by_app(answer: &Answer) -> Option<SeenRequest> {
    if answer.status != StatusCode::OK || !answer.headers.contains_key(APP_MARKER) {
        return None;
    }
    serde_json::from_str(&answer.body).ok()
}

async fn get_with(http: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Result<Answer> {
    let mut req = http.get(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.with_context(|| format!("GET {url}"))?;
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap_or_default();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

async fn metrics_text(http: &reqwest::Client, url: &str) -> Result<String> {
    Ok(http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?
        .error_for_status()?
        .text()
        .await?)
}

async fn sync_feeder(feeder: &mut UserCacheFeeder, users: &Api<SsoUser>) -> Result<()> {
    let list = users
        .list(&ListParams::default())
        .await
        .context("listing SsoUsers for the watch")?;
    feeder.apply(Ok(watcher::Event::Init));
    for user in list.items {
        feeder.apply(Ok(watcher::Event::InitApply(user)));
    }
    feeder.apply(Ok(watcher::Event::InitDone));
    Ok(())
}

/// Starts a sidecar in process with `env` on the in-memory API `client`, its SsoUser watch fed
/// by the test (the feeder returned).
pub(crate) async fn start_in_process(
    env: &BTreeMap<String, String>,
    client: &kube::Client,
) -> Result<(gatehouse_sidecar::Sidecar, UserCacheFeeder)> {
    let lookup = |name: &str| env.get(name).cloned();
    let config = gatehouse_sidecar::Config::from_source(&lookup)
        .map_err(|e| anyhow::anyhow!("sidecar config: {e}"))?;
    let mut sidecar = gatehouse_sidecar::start_with(
        config,
        gatehouse_sidecar::StartOptions {
            kube_client: Some(client.clone()),
            manual_user_watch: true,
        },
    )
    .await
    .context("starting the sidecar")?;
    let feeder = sidecar
        .take_user_feeder()
        .context("a kubernetes sidecar started with a manual watch hands out its feeder")?;
    Ok((sidecar, feeder))
}

/// Starts another replica of a sidecar started in process with `env`, on the same API (its
/// watch not synced yet: call [`Replica::sync`]); waits for its providers (OIDC discovery, SAML
/// metadata).
pub(crate) async fn start_replica(
    env: &BTreeMap<String, String>,
    client: &kube::Client,
    users: &Api<SsoUser>,
    http: &reqwest::Client,
) -> Result<Replica> {
    let mut env = env.clone();
    env.insert("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("GATEHOUSE_ADMIN_LISTEN".into(), "127.0.0.2:0".into());
    let (sidecar, feeder) = start_in_process(&env, client)
        .await
        .context("starting another replica")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let ready = |sidecar: &gatehouse_sidecar::Sidecar| {
        let providers = &sidecar.app().providers;
        providers.iter().all(|p| p.is_ready())
            && providers
                .saml()
                .is_none_or(|saml| saml.metadata().is_some())
    };
    while !ready(&sidecar) {
        if std::time::Instant::now() > deadline {
            bail!("the replica's providers were not loaded within 30 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(Replica {
        url: format!("http://{}", sidecar.addr()),
        sidecar,
        users: users.clone(),
        feeder,
        http: http.clone(),
    })
}

async fn deliver_current(
    feeder: &mut UserCacheFeeder,
    users: &Api<SsoUser>,
    name: &str,
) -> Result<()> {
    match users.get_opt(name).await? {
        Some(user) => feeder.apply(Ok(watcher::Event::Apply(user))),
        None => bail!("SsoUser {name} does not exist"),
    }
    Ok(())
}

async fn reaches_app(http: &reqwest::Client, url: &str, session: &Session) -> Result<bool> {
    let res = http
        .get(url)
        .header("accept", "application/json")
        .header("cookie", session.cookie_header())
        .send()
        .await?;
    Ok(res.status() == StatusCode::OK && res.headers().contains_key(APP_MARKER))
}

impl std::fmt::Debug for KubeStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStack")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn down() -> kube_fake_client::Error {
    kube_fake_client::Error::Internal("the API server is unreachable (test outage)".into())
}

impl KubeStack {
    /// Starts everything. The SsoUser watch has not synced yet: call [`KubeStack::sync`].
    pub async fn start(options: KubeOptions) -> Result<Self> {
        let app = Arc::new(TestApp::default());
        let app_addr = serve_test_app(app.clone()).await?;

        let port = free_port()?;
        let public = format!("http://127.0.0.1:{port}");
        let client_secret = format!("fixture-{}", random_key_b64()?.replace(['+', '/', '='], ""));
        let idp = Idp::start(std::slice::from_ref(&public), &client_secret, 0)?;

        let mut extra = vec![
            ("GATEHOUSE_PROVISIONING", "kubernetes".to_owned()),
            ("GATEHOUSE_PROVISIONING_MODE", options.mode.to_owned()),
            (
                "GATEHOUSE_REVOCATION_STALENESS",
                options.staleness.to_owned(),
            ),
            ("GATEHOUSE_CONFIG", CONFIG.to_owned()),
            ("GATEHOUSE_NAMESPACE", NAMESPACE.to_owned()),
        ];
        if let Some(mappings) = options.attribute_mappings {
            extra.push(("GATEHOUSE_ATTRIBUTE_MAPPINGS", mappings.to_owned()));
        }
        if options.hook {
            extra.push(("GATEHOUSE_PROVISION_HOOK", HOOK_PATH.to_owned()));
        }
        if let Some((interval, grace)) = options.revalidate {
            extra.push(("GATEHOUSE_REVALIDATE_INTERVAL", interval.to_owned()));
            extra.push(("GATEHOUSE_REVALIDATE_GRACE", grace.to_owned()));
        }
        extra.extend(options.extra_env.iter().cloned());
        let mut providers = vec![ProviderKind::Okta, ProviderKind::Entra];
        if let Some(access) = &options.access {
            extra.push(("GATEHOUSE_ACCESS", access.clone()));
        }
        if options.access.is_some() || options.generic_providers {
            providers.push(ProviderKind::Oidc);
        }
        if options.generic_providers {
            providers.extend((0..crate::idp::EXTRA_OIDC_IDS.len()).map(ProviderKind::ExtraOidc));
        }
        let stack_options = StackOptions {
            providers,
            extra_env: extra.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ..StackOptions::default()
        };
        let env: BTreeMap<String, String> = sidecar_env(
            &stack_options,
            idp.port,
            &client_secret,
            &public,
            port,
            0,
            &format!("http://{app_addr}"),
        )?
        .into_iter()
        .collect();
        let api_down = Arc::new(AtomicBool::new(false));
        let client = fake_api(&options.users, api_down.clone()).await?;
        let (sidecar, feeder) = start_in_process(&env, &client).await?;
        let users = Api::namespaced(client.clone(), NAMESPACE);
        let stack = Self {
            idp,
            app,
            url: format!("http://{}", sidecar.addr()),
            sidecar,
            client,
            users,
            feeder,
            api_down,
            http: crate::http_client()?,
            env,
        };
        stack.wait_providers().await?;
        Ok(stack)
    }

    /// Starts another replica of the sidecar (its watch not synced yet: call [`Replica::sync`]).
    pub async fn start_replica(&self) -> Result<Replica> {
        start_replica(&self.env, &self.client, &self.users, &self.http).await
    }

    /// Delivers SsoUser `name`, as the API holds it now, as a watch event.
    pub async fn deliver_current(&mut self, name: &str) -> Result<()> {
        deliver_current(&mut self.feeder, &self.users, name).await
    }

    async fn wait_providers(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.sidecar.app().providers.iter().all(|p| p.is_ready()) {
            if std::time::Instant::now() > deadline {
                bail!("the sidecar's providers were not loaded within 30 s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// URL on the sidecar's public port.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// URL on the sidecar's admin port.
    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.sidecar.admin_addr())
    }

    /// What a (re)started watch delivers: the full list of the namespace's SsoUsers.
    pub async fn sync(&mut self) -> Result<()> {
        sync_feeder(&mut self.feeder, &self.users).await
    }

    /// Delivers one watch event (or a watch error) to the sidecar's cache.
    pub fn deliver(&mut self, item: Result<watcher::Event<SsoUser>, watcher::Error>) {
        self.feeder.apply(item);
    }

    /// Makes every API call fail (true) or work again (false).
    pub fn set_api_down(&self, down: bool) {
        self.api_down.store(down, Ordering::SeqCst);
    }

    /// A sign-in through the fixture IdP's form; the callback's answer and session, if any.
    pub async fn attempt(&self, provider: ProviderKind, login: &str) -> Result<Attempt> {
        LoginFlow::start_at(&self.url, provider, Some("/"))
            .await?
            .complete(login, PASSWORD)
            .await
    }

    /// A sign-in that must succeed.
    pub async fn sign_in(&self, provider: ProviderKind, login: &str) -> Result<Session> {
        let attempt = self.attempt(provider, login).await?;
        attempt.session.with_context(|| {
            format!(
                "sign-in of {login} gave no session: callback answered {} {}",
                attempt.callback.status,
                attempt.callback.body.chars().take(400).collect::<String>()
            )
        })
    }

    /// GET `path` as an API client with `session`'s cookies.
    pub async fn get(&self, session: &Session, path: &str) -> Result<Answer> {
        self.get_with(
            path,
            &[
                ("accept", "application/json"),
                ("cookie", &session.cookie_header()),
            ],
        )
        .await
    }

    /// GET `path` with exactly `headers` (name, value), e.g. a browser's `Accept` or a `Cookie`
    /// header of the test's own making.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        get_with(&self.http, &self.url(path), headers).await
    }

    /// Whether `session` reaches the app right now.
    pub async fn reaches_app(&self, session: &Session) -> Result<bool> {
        let answer = self.get(session, "/dashboard").await?;
        Ok(answer.status == StatusCode::OK && answer.headers.contains_key(APP_MARKER))
    }

    /// Every SsoUser of the namespace.
    pub async fn all_users(&self) -> Result<Vec<SsoUser>> {
        Ok(self.users.list(&ListParams::default()).await?.items)
    }

    /// Events recorded in the namespace (the sidecar publishes them in the background).
    pub async fn events(&self) -> Result<Vec<Event>> {
        Ok(Api::<Event>::namespaced(self.client.clone(), NAMESPACE)
            .list(&ListParams::default())
            .await?
            .items)
    }

    /// The admin port's `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        metrics_text(&self.http, &self.admin("/metrics")).await
    }

    /// The admin port's `/readyz` status and body.
    pub async fn readyz(&self) -> Result<(StatusCode, String)> {
        let res = self.http.get(self.admin("/readyz")).send().await?;
        Ok((res.status(), res.text().await?))
    }
}

async fn fake_api(users: &[SsoUser], api_down: Arc<AtomicBool>) -> Result<kube::Client> {
    // Every verb the sidecar uses fails while `api_down` is set, and passes through otherwise.
    let gate = |flag: &Arc<AtomicBool>| {
        let flag = flag.clone();
        move || {
            if flag.load(Ordering::SeqCst) {
                Err(down())
            } else {
                Ok(())
            }
        }
    };
    let (get, create, patch, status, list) = (
        gate(&api_down),
        gate(&api_down),
        gate(&api_down),
        gate(&api_down),
        gate(&api_down),
    );
    let outage = interceptor::Funcs::new()
        .get(move |_| get().map(|()| None))
        .create(move |_| create().map(|()| None))
        .patch(move |_| patch().map(|()| None))
        .patch_status(move |_| status().map(|()| None))
        .list(move |_| list().map(|()| None));
    let mut builder = ClientBuilder::new()
        .with_resource::<SsoUser>()
        .with_status_subresource::<SsoUser>()
        .with_interceptor_funcs(outage);
    for user in users {
        builder = builder.with_object(user.clone());
    }
    builder.build().await.context("building the in-memory API")
}

async fn ws_echo(ws: WebSocketUpgrade) -> axum::response::Response {
    ws.on_upgrade(|mut socket: WebSocket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            let reply = match msg {
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
                other => other,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}

/// [`ECHO_PATH`]: the request as the app received it.
async fn echo(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let seen = SeenRequest {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_bytes: 0,
    };
    ([(APP_MARKER, "1")], Json(seen)).into_response()
}

async fn serve_test_app(app: Arc<TestApp>) -> Result<SocketAddr> {
    let hook_state = app.clone();
    let router = Router::new()
        .route(
            HOOK_PATH,
            post(move |Json(body): Json<Value>| {
                let state = hook_state.clone();
                async move {
                    state
                        .hook_calls
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(body);
                    if state.hook_fails.load(Ordering::SeqCst) {
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "cannot create the account",
                        )
                            .into_response()
                    } else {
                        (StatusCode::OK, "account ready").into_response()
                    }
                }
            }),
        )
        .route(WS_PATH, get(ws_echo))
        .route(
            DOWNLOAD_PATH,
            get(|| async {
                let pieces = futures::stream::unfold(0usize, |sent| async move {
                    if sent == 16 {
                        return None;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    let piece = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
                    Some((Ok::<_, std::io::Error>(piece), sent + 1))
                });
                (
                    [
                        (APP_MARKER, "1".to_owned()),
                        ("content-length", (16 * 64 * 1024).to_string()),
                    ],
                    axum::body::Body::from_stream(pieces),
                )
                    .into_response()
            }),
        )
        .route(ECHO_PATH, get(echo))
        .route(
            SLOW_PATH,
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                ([(APP_MARKER, "1")], "late").into_response()
            }),
        )
        .fallback(|| async { ([(APP_MARKER, "1")], "the app").into_response() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // No Nagle delay on small answers (as a real app server would be configured).
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        let _ = stream.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}
