//! A whole Gatehouse stack on loopback: fixture IdP, sample app, and the sidecar in front.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::{
    idp::{Idp, PASSWORD},
    process::{ChildProcess, cargo_binary, free_port, random_key_b64},
};

/// Name of the sidecar binary.
pub const SIDECAR_BIN: &str = "gatehouse-sidecar";
/// Name of the sample app binary (this crate).
pub const SAMPLE_APP_BIN: &str = "gatehouse-sample-app";
/// Org id given to every provider.
pub const ORG_ID: &str = "e2e-org";
/// Session cookie name on a plain-http public URL.
pub const SESSION_COOKIE: &str = "gatehouse-session";
/// Session cookie name on an https public URL.
pub const SESSION_COOKIE_HOST: &str = "__Host-gatehouse-session";
/// Refresh cookie name (the IdP's sealed refresh token, for re-validation) on a plain-http public
/// URL.
pub const REFRESH_COOKIE: &str = "gatehouse-refresh";
/// Refresh cookie name on an https public URL.
pub const REFRESH_COOKIE_HOST: &str = "__Host-gatehouse-refresh";

/// Which providers the sidecar enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Okta,
    Entra,
    Oidc,
    /// A further generic provider: the fixture's extra issuer
    /// [`crate::idp::EXTRA_OIDC_IDS`]`[i]`, rendered as generic provider `i + 2` (`OIDC_2_*`…).
    ExtraOidc(usize),
}

impl ProviderKind {
    /// Path segment in the sidecar's start and callback routes.
    pub fn segment(self) -> &'static str {
        match self {
            Self::Okta => "okta",
            Self::Entra => "entra",
            Self::Oidc => crate::idp::OIDC_ID,
            Self::ExtraOidc(i) => crate::idp::EXTRA_OIDC_IDS[i],
        }
    }

    /// Name in the fixture's admin API.
    pub fn fixture_key(self) -> &'static str {
        match self {
            Self::Okta => "okta",
            Self::Entra => "entra",
            Self::Oidc => "oidc",
            Self::ExtraOidc(i) => crate::idp::EXTRA_OIDC_IDS[i],
        }
    }
}

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub providers: Vec<ProviderKind>,
    /// `AUTH_EXCLUSIVE_PROVIDER`.
    pub exclusive: Option<String>,
    /// `GATEHOUSE_AUTH_MODE`.
    pub auth_mode: Option<String>,
    /// `GATEHOUSE_SKIP_AUTH`.
    pub skip_auth: Option<String>,
    /// `GATEHOUSE_APP_LOGIN_PATH`.
    pub app_login_path: Option<String>,
    /// Point the sidecar at a port where nothing listens.
    pub upstream_down: bool,
    /// Start the sidecar before the IdP listens (the IdP is started later by
    /// [`Stack::start_delayed_idp`]).
    pub delay_idp: bool,
    /// Extra environment for the sidecar (applied last).
    pub extra_env: Vec<(String, String)>,
    /// Variables to leave out of the sidecar's environment.
    pub remove_env: Vec<String>,
    /// Fixed public port (0 = any free port).
    pub port: u16,
    /// Fixed admin port (0 = any free port).
    pub admin_port: u16,
    /// Wait this long for `/readyz`.
    pub ready_timeout: Duration,
    /// The sidecar's `RUST_LOG` (default: `$GATEHOUSE_TEST_LOG` or `info`).
    pub log_level: Option<String>,
    /// Give the sidecar an `https://` public URL (as behind a TLS-terminating proxy) while it
    /// still serves plain HTTP on loopback.
    pub https_public_url: bool,
    /// More relying parties' base URLs to register at the IdP (redirect URI
    /// `<url>/api/auth/oauth2/callback/<provider>`), e.g. the benchmark's Apache peer.
    pub extra_public_urls: Vec<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            providers: vec![ProviderKind::Okta, ProviderKind::Entra, ProviderKind::Oidc],
            exclusive: None,
            auth_mode: None,
            skip_auth: None,
            app_login_path: None,
            upstream_down: false,
            delay_idp: false,
            extra_env: Vec::new(),
            remove_env: Vec::new(),
            port: 0,
            admin_port: 0,
            ready_timeout: Duration::from_secs(30),
            log_level: None,
            https_public_url: false,
            extra_public_urls: Vec::new(),
        }
    }
}

/// The sample app process.
#[derive(Debug)]
pub struct SampleApp {
    pub process: ChildProcess,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

#[derive(Debug, Deserialize)]
struct AppAnnounce {
    listen: String,
}

impl SampleApp {
    /// Starts the sample app on a free port.
    pub fn start() -> Result<Self> {
        let bin = sample_app_binary()?;
        let mut cmd = Command::new(bin);
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--exit-on-stdin-close");
        let (process, line) = ChildProcess::spawn("app", cmd, Some(Duration::from_secs(20)))?;
        let a: AppAnnounce = serde_json::from_str(line.as_deref().unwrap_or(""))
            .context("parsing the sample app's announcement")?;
        Ok(Self {
            process,
            url: format!("http://{}", a.listen),
        })
    }
}

fn sample_app_binary() -> Result<std::path::PathBuf> {
    cargo_binary(SAMPLE_APP_BIN)
}

/// When set, the harness runs the sidecar as this container image under podman (network `host`,
/// read-only root filesystem, every capability dropped, the image's own user) instead of the
/// binary cargo built: the container suite of `cargo xtask test` points the end-to-end tests at
/// the image this way.
pub const SIDECAR_IMAGE_VAR: &str = "GATEHOUSE_TEST_SIDECAR_IMAGE";

/// The sidecar process.
#[derive(Debug)]
pub struct Sidecar {
    pub process: ChildProcess,
    /// Public URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Admin URL, `http://127.0.0.1:PORT`.
    pub admin_url: String,
    /// The environment it was started with (secrets included: never print it).
    env: Vec<(String, String)>,
    /// The podman container it runs in, when [`SIDECAR_IMAGE_VAR`] names an image.
    container: Option<String>,
}

impl Sidecar {
    /// Starts the sidecar binary with exactly `env` (plus PATH, HOME and RUST_LOG), or the
    /// container image [`SIDECAR_IMAGE_VAR`] names with exactly that environment.
    pub fn start(env: Vec<(String, String)>, url: String, admin_url: String) -> Result<Self> {
        let image = std::env::var(SIDECAR_IMAGE_VAR)
            .ok()
            .filter(|i| !i.is_empty());
        let mut env = env;
        if !env.iter().any(|(k, _)| k == "RUST_LOG") {
            env.insert(
                0,
                (
                    "RUST_LOG".to_owned(),
                    std::env::var("GATEHOUSE_TEST_LOG").unwrap_or_else(|_| "info".to_owned()),
                ),
            );
        }
        // (Replacing, not adding: a twin's environment is a copy of another sidecar's.)
        env.retain(|(k, _)| k != "NO_COLOR");
        env.push(("NO_COLOR".to_owned(), "1".to_owned()));
        // GATEHOUSE_WORKER_THREADS passes through so a benchmark can compare runtime sizes.
        if let Ok(v) = std::env::var("GATEHOUSE_WORKER_THREADS") {
            env.retain(|(k, _)| k != "GATEHOUSE_WORKER_THREADS");
            env.push(("GATEHOUSE_WORKER_THREADS".to_owned(), v));
        }
        let (mut cmd, container) = match &image {
            Some(image) => {
                let (cmd, name) = podman_run_sidecar(image, &env);
                (cmd, Some(name))
            }
            None => (Command::new(cargo_binary(SIDECAR_BIN)?), None),
        };
        cmd.env_clear();
        // podman reads its configuration (CONTAINERS_CONF) from its own environment.
        let passed: &[&str] = match container {
            Some(_) => &["PATH", "HOME", "CONTAINERS_CONF", "XDG_RUNTIME_DIR"],
            None => &["PATH", "HOME"],
        };
        for var in passed {
            if let Ok(v) = std::env::var(var) {
                cmd.env(var, v);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let (process, _) = ChildProcess::spawn("sidecar", cmd, None)?;
        Ok(Self {
            process,
            url,
            admin_url,
            env,
            container,
        })
    }

    /// The podman container the sidecar runs in, if any.
    pub fn container(&self) -> Option<&str> {
        self.container.as_deref()
    }

    /// The environment it was started with (secrets included: never print it).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Value of one variable the sidecar was started with.
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Polls `/readyz` until it answers 200.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let client = crate::http_client()?;
        let deadline = Instant::now() + timeout;
        let url = format!("{}/readyz", self.admin_url);
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            if let Some(status) = self.process.exited() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                bail!(
                    "the sidecar exited ({status}) before becoming ready; its output:\n{}",
                    self.process.logs.text()
                );
            }
            match client.get(&url).send().await {
                Ok(res) if res.status().is_success() => return Ok(()),
                Ok(res) => last = format!("HTTP {}", res.status()),
                Err(e) => last = format!("{e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "the sidecar was not ready within {timeout:?} (last /readyz: {last}); its output:\n{}",
            self.process.logs.text()
        )
    }
}

/// `podman run` of the sidecar image with `env`, and the container's name. The values travel in
/// podman's own environment (`--env NAME` copies one), never on its command line.
fn podman_run_sidecar(image: &str, env: &[(String, String)]) -> (Command, String) {
    let name = format!(
        "gatehouse-test-sidecar-{}-{}",
        std::process::id(),
        CONTAINERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut cmd = Command::new("podman");
    cmd.args(["run", "--rm", "--name", &name])
        // The harness's IdP and app listen on the host's loopback.
        .args(["--network=host", "--read-only", "--cap-drop=all"])
        .arg("--security-opt=no-new-privileges");
    for (k, _) in env {
        cmd.arg(format!("--env={k}"));
    }
    cmd.arg(image);
    (cmd, name)
}

/// Containers started by this process, for unique names.
static CONTAINERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for Sidecar {
    fn drop(&mut self) {
        // Killing `podman run` leaves its container running: remove it.
        if let Some(name) = &self.container {
            let _ = Command::new("podman")
                .args(["rm", "--force", "--time", "0", name])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// IdP, sample app and sidecar, torn down on drop (logs printed if a test is failing).
#[derive(Debug)]
pub struct Stack {
    pub sidecar: Sidecar,
    pub app: Option<SampleApp>,
    pub idp: Option<Idp>,
    pub options: StackOptions,
    /// Port reserved for a delayed IdP.
    idp_port: u16,
    client_secret: String,
}

impl Stack {
    /// Starts a stack with default options (all three providers, auth required).
    pub async fn start_default() -> Result<Self> {
        Self::start(StackOptions::default()).await
    }

    /// Starts IdP, app and sidecar as `options` say, and waits for the sidecar's `/readyz`
    /// (unless the IdP is delayed).
    pub async fn start(options: StackOptions) -> Result<Self> {
        let port = if options.port == 0 {
            free_port()?
        } else {
            options.port
        };
        let admin_port = if options.admin_port == 0 {
            free_port()?
        } else {
            options.admin_port
        };
        let url = format!("http://127.0.0.1:{port}");
        let public = if options.https_public_url {
            format!("https://127.0.0.1:{port}")
        } else {
            url.clone()
        };
        let admin = format!("http://127.0.0.1:{admin_port}");
        let client_secret = format!("fixture-{}", random_key_b64()?.replace(['+', '/', '='], ""));

        let app = if options.upstream_down {
            None
        } else {
            Some(SampleApp::start()?)
        };
        let upstream = match &app {
            Some(app) => app.url.clone(),
            None => format!("http://127.0.0.1:{}", free_port()?),
        };

        let (idp, idp_port) = if options.delay_idp {
            (None, free_port()?)
        } else {
            let mut public_urls = vec![public.clone()];
            public_urls.extend(options.extra_public_urls.iter().cloned());
            let idp = Idp::start(&public_urls, &client_secret, 0)?;
            let p = idp.port;
            (Some(idp), p)
        };

        let mut env = sidecar_env(
            &options,
            idp_port,
            &client_secret,
            &public,
            port,
            admin_port,
            &upstream,
        )?;
        if let Some(level) = &options.log_level {
            env.push(("RUST_LOG".to_owned(), level.clone()));
        }
        let sidecar = Sidecar::start(env, url, admin)?;
        let mut stack = Self {
            sidecar,
            app,
            idp,
            options,
            idp_port,
            client_secret,
        };
        if !stack.options.delay_idp {
            let timeout = stack.options.ready_timeout;
            stack.sidecar.wait_ready(timeout).await?;
        }
        Ok(stack)
    }

    /// Starts the IdP of a stack built with `delay_idp`, on the port the sidecar was given.
    pub fn start_delayed_idp(&mut self) -> Result<()> {
        let public = self
            .sidecar
            .env_value("GATEHOUSE_PUBLIC_URL")
            .unwrap_or(&self.sidecar.url)
            .to_owned();
        let idp = Idp::start(
            std::slice::from_ref(&public),
            &self.client_secret,
            self.idp_port,
        )?;
        self.idp = Some(idp);
        Ok(())
    }

    /// The IdP (panics with a clear message when the stack has none running).
    pub fn idp(&self) -> &Idp {
        self.idp.as_ref().expect("this stack's IdP is not running")
    }

    /// Starts one more sidecar in front of this stack's app, signing in at this stack's IdP, with
    /// `options` (providers, modes, extra environment; ports are picked here), and waits until it
    /// is ready. The benchmark uses one in optional mode to measure the proxy without a session.
    pub async fn start_another_sidecar(&self, options: &StackOptions) -> Result<Sidecar> {
        let app = self.app.as_ref().context("this stack has no app")?;
        let (port, admin_port) = (free_port()?, free_port()?);
        let url = format!("http://127.0.0.1:{port}");
        let admin = format!("http://127.0.0.1:{admin_port}");
        let env = sidecar_env(
            options,
            self.idp_port,
            &self.client_secret,
            &url,
            port,
            admin_port,
            &app.url,
        )?;
        let mut sidecar = Sidecar::start(env, url, admin)?;
        sidecar.wait_ready(options.ready_timeout).await?;
        Ok(sidecar)
    }

    /// Starts one more sidecar with exactly this stack's sidecar's environment (the same public
    /// URL, config name, namespace and cookie key, so that a session cookie either issues is
    /// valid at both) but its own listening ports, plus `extra` (replacing a variable of the same
    /// name), and waits until it is ready. The benchmark uses one with access rules to measure what
    /// they cost beside the same sidecar without them.
    pub async fn start_twin_sidecar(&self, extra: &[(&str, &str)]) -> Result<Sidecar> {
        let (port, admin_port) = (free_port()?, free_port()?);
        let url = format!("http://127.0.0.1:{port}");
        let admin = format!("http://127.0.0.1:{admin_port}");
        let mut env = self.sidecar.env.clone();
        let listen = format!("127.0.0.1:{port}");
        let admin_listen = format!("127.0.0.1:{admin_port}");
        let own = [
            ("GATEHOUSE_LISTEN", listen.as_str()),
            ("GATEHOUSE_ADMIN_LISTEN", admin_listen.as_str()),
        ];
        for (k, v) in own.iter().chain(extra) {
            env.retain(|(name, _)| name != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let mut sidecar = Sidecar::start(env, url, admin)?;
        sidecar.wait_ready(self.options.ready_timeout).await?;
        Ok(sidecar)
    }

    /// URL on the sidecar's public port.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sidecar.url)
    }

    /// URL on the sidecar's admin port.
    pub fn admin(&self, path: &str) -> String {
        format!("{}{path}", self.sidecar.admin_url)
    }

    /// Signs in through the real IdP form and returns the session (fails unless it worked).
    pub async fn sign_in(
        &self,
        provider: ProviderKind,
        user: &str,
    ) -> Result<crate::flow::Session> {
        let attempt = crate::flow::LoginFlow::start(self, provider, Some("/"))
            .await?
            .complete(user, PASSWORD)
            .await?;
        attempt.session.clone().with_context(|| {
            format!(
                "sign-in of {user} at {} gave no session: callback answered {} {}",
                provider.segment(),
                attempt.callback.status,
                attempt.callback.body.chars().take(500).collect::<String>()
            )
        })
    }

    /// Every process's logs, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Some(idp) = &self.idp {
            out.push_str(&idp.process.logs.text());
            out.push('\n');
        }
        if let Some(app) = &self.app {
            out.push_str(&app.process.logs.text());
            out.push('\n');
        }
        out.push_str(&self.sidecar.process.logs.text());
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- logs of the stack (sidecar {}) ----\n{}\n---- end of logs ----",
                self.sidecar.url,
                self.logs()
            );
        }
    }
}

/// The role map of the fixture's extra generic issuer `i` ([`ProviderKind::ExtraOidc`]): the
/// first maps the groups as the Auth0-shaped provider does; the second has its own map, under
/// which only `everyone` counts (as `member`), so one account holds another role there.
pub fn extra_oidc_role_map(i: usize) -> &'static str {
    match i {
        0 => "portal-admins=admin,portal-staff=member",
        _ => "everyone=member",
    }
}

/// The sidecar's environment for a stack: the brief's contract, nothing else.
pub fn sidecar_env(
    options: &StackOptions,
    idp_port: u16,
    client_secret: &str,
    public: &str,
    port: u16,
    admin_port: u16,
    upstream: &str,
) -> Result<Vec<(String, String)>> {
    let base = format!("http://127.0.0.1:{idp_port}");
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| env.push((k.to_owned(), v.to_owned()));
    for p in &options.providers {
        match p {
            ProviderKind::Okta => {
                set("OKTA_CLIENT_ID", crate::idp::CLIENT_ID);
                set("OKTA_CLIENT_SECRET", client_secret);
                set("OKTA_ISSUER", &format!("{base}/okta"));
                set("OKTA_ORG_ID", ORG_ID);
            }
            ProviderKind::Entra => {
                set("ENTRA_CLIENT_ID", crate::idp::CLIENT_ID);
                set("ENTRA_CLIENT_SECRET", client_secret);
                set("ENTRA_TENANT_ID", crate::idp::TENANT);
                set("ENTRA_ORG_ID", ORG_ID);
                set(
                    "ENTRA_ISSUER",
                    &format!("{base}/entra/{}/v2.0", crate::idp::TENANT),
                );
            }
            ProviderKind::Oidc => {
                set("OIDC_PROVIDER_ID", crate::idp::OIDC_ID);
                set("OIDC_PROVIDER_NAME", "Auth0");
                set("OIDC_CLIENT_ID", crate::idp::CLIENT_ID);
                set("OIDC_CLIENT_SECRET", client_secret);
                set("OIDC_ISSUER", &format!("{base}/{}", crate::idp::OIDC_ID));
                set("OIDC_ORG_ID", ORG_ID);
                set("OIDC_ROLE_CLAIM", "groups");
                set("OIDC_ROLE_MAP", "portal-admins=admin,portal-staff=member");
            }
            &ProviderKind::ExtraOidc(i) => {
                let id = crate::idp::EXTRA_OIDC_IDS[i];
                let slot = i + 2;
                let mut slotted = |name: &str, value: &str| {
                    set(&gatehouse_crds::env::oidc_slot_var(name, slot), value);
                };
                slotted("OIDC_PROVIDER_ID", id);
                slotted("OIDC_PROVIDER_NAME", &format!("{id} (fixture)"));
                slotted("OIDC_CLIENT_ID", crate::idp::CLIENT_ID);
                slotted("OIDC_CLIENT_SECRET", client_secret);
                slotted("OIDC_ISSUER", &format!("{base}/{id}"));
                slotted("OIDC_ORG_ID", id);
                slotted("OIDC_ROLE_CLAIM", "groups");
                slotted("OIDC_ROLE_MAP", extra_oidc_role_map(i));
            }
        }
    }
    set("GATEHOUSE_UPSTREAM", upstream);
    set("GATEHOUSE_LISTEN", &format!("127.0.0.1:{port}"));
    set("GATEHOUSE_ADMIN_LISTEN", &format!("127.0.0.1:{admin_port}"));
    set("GATEHOUSE_PUBLIC_URL", public);
    set("GATEHOUSE_COOKIE_SECRET", &random_key_b64()?);
    set("GATEHOUSE_CONFIG", "e2e");
    set("GATEHOUSE_NAMESPACE", "default");
    set("GATEHOUSE_PROVISIONING", "off");
    if let Some(v) = &options.exclusive {
        set("AUTH_EXCLUSIVE_PROVIDER", v);
    }
    if let Some(v) = &options.auth_mode {
        set("GATEHOUSE_AUTH_MODE", v);
    }
    if let Some(v) = &options.skip_auth {
        set("GATEHOUSE_SKIP_AUTH", v);
    }
    if let Some(v) = &options.app_login_path {
        set("GATEHOUSE_APP_LOGIN_PATH", v);
    }
    for (k, v) in &options.extra_env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    env.retain(|(name, _)| !options.remove_env.contains(name));
    Ok(env)
}
