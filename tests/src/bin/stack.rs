//! Starts a whole Gatehouse stack (fixture IdP, sample app, sidecar) for people and tools:
//! `cargo xtask demo` and `cargo xtask bench` run this binary.
//!
//! - `gatehouse-stack demo`: all three providers, prints where to open and the accounts, runs
//!   until Ctrl-C.
//! - `gatehouse-stack bench`: signs in through the real IdP, prints one JSON line for the
//!   benchmark driver (URLs, process ids, and the session cookie — on stdout only, never
//!   logged), then runs until stdin closes or Ctrl-C. Beside the authenticated sidecar it starts
//!   one without a session to check (optional mode) and its twin with a 20-rule access policy
//!   (`gatehouse_tests::bench_access`); the sign-in is delivered to the twin, so the session
//!   carries what its rules name, and is valid at both. A further twin admits machine clients of
//!   a client-credentials issuer served here (`gatehouse_tests::bench_machine`), whose bearer
//!   token the JSON line carries too (on stdout only, never logged). With `GATEHOUSE_BENCH_APACHE` (the
//!   `apache2` binary), `GATEHOUSE_BENCH_APACHE_MODULES` (its modules' directory) and
//!   `GATEHOUSE_BENCH_APACHE_DIR` (a directory for its configuration) it
//!   also starts Apache with mod_auth_openidc before the same app, signs in through it and
//!   checks that it authenticates (see `gatehouse_tests::apache`).
//! - `gatehouse-stack provisioning-bench`: the sidecar in process with Kubernetes provisioning on
//!   the in-memory API; prints one JSON line of figures (deletion → refusal, callback handling).
//! - `gatehouse-stack scale-bench --users N`: the sidecar with N SsoUsers in its watch cache;
//!   prints one JSON line of figures (memory, per-request cost).
//! - `gatehouse-stack signin-bench`: sign-ins through the fixture OIDC and SAML IdPs in
//!   alternating rounds; prints one JSON line of figures (the sidecar's own handling of each).
//! - `gatehouse-stack startup-bench`: spawns the sidecar with an OIDC configuration again and
//!   again and times spawn → `/readyz` 200; prints one JSON line.
//! - `gatehouse-stack session-end-bench`: back-channel logout → refusal on another replica (two
//!   replicas in process on the in-memory API), and what a re-validation adds to the request that
//!   triggers it; prints one JSON line of figures.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gatehouse_tests::{
    ProviderKind, Session, Stack, StackOptions,
    apache::{Apache, ApacheConfig},
    flow::LoginFlow,
    http_client,
    idp::PASSWORD,
    stack::Sidecar,
};
use tokio::io::AsyncReadExt;

#[derive(Debug, Parser)]
#[command(about = "Run a local Gatehouse stack: fixture IdP, sample app, sidecar")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Interactive demo: open the printed URL in a browser.
    Demo {
        /// Sidecar public port.
        #[arg(long, default_value_t = 4180)]
        port: u16,
        /// Sidecar admin port (/healthz, /readyz, /metrics).
        #[arg(long, default_value_t = 9090)]
        admin_port: u16,
        /// Only offer this provider (AUTH_EXCLUSIVE_PROVIDER).
        #[arg(long)]
        exclusive: Option<String>,
        /// GATEHOUSE_AUTH_MODE: required or optional.
        #[arg(long)]
        auth_mode: Option<String>,
        /// Sign in through the fixture SAML IdP (pysaml2) instead of the OIDC providers.
        #[arg(long)]
        saml: bool,
    },
    /// Benchmark fixture: a signed-in session and the URLs to load.
    Bench,
    /// Provisioning and revocation figures (one JSON line).
    ProvisioningBench {
        /// Deletions measured.
        #[arg(long, default_value_t = 300)]
        trials: usize,
        /// Sign-in callbacks measured.
        #[arg(long, default_value_t = 30)]
        sign_ins: usize,
    },
    /// The sidecar's memory and request cost with many SsoUsers cached (one JSON line).
    ScaleBench {
        /// SsoUsers in the watch cache.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Requests measured.
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
    },
    /// SAML ACS handling against OIDC callback handling, in rounds (one JSON line).
    SigninBench {
        /// Rounds (each: OIDC sign-ins, then SAML sign-ins).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Sign-ins per protocol per round.
        #[arg(long, default_value_t = 20)]
        sign_ins: usize,
    },
    /// Spawn to `/readyz` 200 of the sidecar with an OIDC configuration, `starts` times (one
    /// JSON line).
    StartupBench {
        /// Starts measured.
        #[arg(long, default_value_t = 20)]
        starts: usize,
    },
    /// Back-channel logout → refusal on another replica, and the cost of a re-validation to
    /// the request that triggers it, in rounds (one JSON line).
    SessionEndBench {
        /// Rounds of each measurement.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Logouts per round.
        #[arg(long, default_value_t = 6)]
        trials: usize,
        /// Due sessions (and as many fresh ones) per round.
        #[arg(long, default_value_t = 20)]
        sessions: usize,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().command {
        Cmd::Demo {
            port,
            admin_port,
            exclusive,
            auth_mode,
            saml,
        } => {
            if saml {
                return demo_saml(
                    port_or_free(port, "public")?,
                    port_or_free(admin_port, "admin")?,
                )
                .await;
            }
            demo(StackOptions {
                port: port_or_free(port, "public")?,
                admin_port: port_or_free(admin_port, "admin")?,
                exclusive,
                auth_mode,
                ..StackOptions::default()
            })
            .await
        }
        Cmd::Bench => bench().await,
        Cmd::ScaleBench { users, requests } => {
            let figures = gatehouse_tests::scale_bench::run(users, requests).await?;
            println!("{}", serde_json::to_string(&figures)?);
            Ok(())
        }
        Cmd::StartupBench { starts } => {
            let figures = gatehouse_tests::startup_bench::run(starts).await?;
            println!("{}", serde_json::to_string(&figures)?);
            Ok(())
        }
        Cmd::SigninBench { rounds, sign_ins } => {
            let figures = gatehouse_tests::signin_bench::run(rounds, sign_ins).await?;
            println!("{}", serde_json::to_string(&figures)?);
            Ok(())
        }
        Cmd::SessionEndBench {
            rounds,
            trials,
            sessions,
        } => {
            let figures = gatehouse_tests::session_end_bench::run(rounds, trials, sessions).await?;
            println!("{}", serde_json::to_string(&figures)?);
            Ok(())
        }
        Cmd::ProvisioningBench { trials, sign_ins } => {
            let figures = gatehouse_tests::kube_bench::run(trials, sign_ins).await?;
            println!("{}", serde_json::to_string(&figures)?);
            Ok(())
        }
    }
}

/// `port` when it is free on 127.0.0.1, else any free port (with a notice).
fn port_or_free(port: u16, what: &str) -> Result<u16> {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return Ok(port);
    }
    let free = gatehouse_tests::process::free_port()?;
    eprintln!("note: {what} port {port} is busy; using {free} instead");
    Ok(free)
}

async fn demo(options: StackOptions) -> Result<()> {
    let stack = Stack::start(options).await?;
    let idp = stack.idp();
    let accounts: serde_json::Value = http_client()?
        .get(format!("http://127.0.0.1:{}/_admin/accounts", idp.port))
        .send()
        .await?
        .json()
        .await?;
    let app = stack.app.as_ref().context("demo app")?;
    println!();
    println!("Gatehouse demo is running. Open:  {}/", stack.sidecar.url);
    println!();
    println!(
        "  sidecar   {}  (admin {}/metrics)",
        stack.sidecar.url, stack.sidecar.admin_url
    );
    println!(
        "  app       {}  (behind the sidecar; shows the identity headers it gets)",
        app.url
    );
    println!(
        "  IdP       http://127.0.0.1:{}/  (three fixture issuers)",
        idp.port
    );
    println!(
        "  break-glass login page: {}/login?providers=all",
        stack.sidecar.url
    );
    println!();
    println!("Accounts (password for all: {PASSWORD}):");
    for (provider, label) in [("okta", "Okta"), ("entra", "Entra ID"), ("oidc", "Auth0")] {
        let Some(users) = accounts["accounts"][provider].as_object() else {
            continue;
        };
        let list: Vec<String> = users
            .iter()
            .map(|(login, a)| format!("{login} ({})", a["note"].as_str().unwrap_or("")))
            .collect();
        println!("  {label:9} {}", list.join(", "));
    }
    println!();
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

/// The demo with SAML: the pysaml2 fixture IdP, the sample app, the sidecar with `SAML_*`.
async fn demo_saml(port: u16, admin_port: u16) -> Result<()> {
    use gatehouse_tests::saml_idp::{ADMIN, MEMBER, NOBODY, PASSWORD, SamlOptions, SamlStack};
    let stack = SamlStack::start(SamlOptions {
        port,
        admin_port,
        ..SamlOptions::default()
    })
    .await?;
    println!();
    println!(
        "Gatehouse SAML demo is running. Open:  {}/",
        stack.sidecar.url
    );
    println!();
    println!(
        "  sidecar   {}  (admin {}/metrics)",
        stack.sidecar.url, stack.sidecar.admin_url
    );
    println!("  SP metadata {}/api/auth/saml/metadata", stack.sidecar.url);
    println!("  app       {}  (behind the sidecar)", stack.app.url);
    println!(
        "  SAML IdP  {}  (pysaml2; metadata {})",
        stack.idp().base,
        stack.idp().metadata_url
    );
    println!();
    println!("Accounts (password for all: {PASSWORD}):");
    for user in [ADMIN, MEMBER, NOBODY] {
        println!(
            "  {:7} {}",
            user.login,
            user.role.unwrap_or("denied (role maps to nothing)")
        );
    }
    println!();
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

/// Where the driver's Apache is, and where it runs.
struct ApachePeer {
    binary: std::path::PathBuf,
    modules: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
}

/// Starts Apache with mod_auth_openidc in front of the stack's app, signs `ada` in through it at
/// the same IdP, and checks that it really authenticates; returns it and its session cookies.
async fn start_apache(stack: &Stack, peer: ApachePeer) -> Result<(Apache, String)> {
    let idp = stack.idp();
    let app = stack.app.as_ref().context("bench app")?;
    let config = ApacheConfig {
        dir: peer.dir,
        port: peer.port,
        issuer: idp.okta_issuer.clone(),
        client_id: idp.client_id.clone(),
        client_secret: idp.client_secret.clone(),
        passphrase: gatehouse_tests::process::random_key_b64()?,
        upstream: app.url.clone(),
        as_root: is_root(),
        modules: peer.modules,
    };
    let apache = Apache::start(&peer.binary, &config)?;
    let protected = format!("{}/", apache.url);
    let flow = LoginFlow::start_protected(&protected).await?;
    let callback = flow.authenticate("ada", PASSWORD).await?;
    let attempt = flow.finish(callback).await?;
    if !attempt.callback.status.is_redirection() {
        anyhow::bail!(
            "apache's callback answered {} {}; its output:\n{}",
            attempt.callback.status,
            attempt.callback.body.chars().take(300).collect::<String>(),
            apache.process.logs.text()
        );
    }
    // The session cookie (in chunks when large) as the browser would send it back.
    let cookie = flow.cookies_for(&protected.parse()?);
    if cookie.is_empty() {
        anyhow::bail!("apache set no session cookie at its callback");
    }
    apache
        .check_authenticates(&idp.okta_issuer, &cookie, "ada@example.com")
        .await
        .with_context(|| format!("apache's output:\n{}", apache.process.logs.text()))?;
    Ok((apache, cookie))
}

/// Signs the fixture Okta IdP's `ada` in at `twin` (the stack's sidecar's twin with access rules):
/// the IdP returns the browser to the stack's public URL, and the callback is delivered to the
/// twin, so that the session carries what its rules name (a session issued without them is asked
/// to sign in again there). Both sidecars share the public URL, config and keys, so the session
/// is valid at both.
async fn sign_in_at_twin(stack: &Stack, twin: &Sidecar) -> Result<Session> {
    let flow = LoginFlow::start_at(&twin.url, ProviderKind::Okta, Some("/"))
        .await?
        .returning_to(&stack.sidecar.url)?;
    let mut callback = flow.authenticate("ada", PASSWORD).await?;
    let port = reqwest::Url::parse(&twin.url)?.port();
    callback
        .set_port(port)
        .map_err(|()| anyhow::anyhow!("the callback {callback} takes no port"))?;
    let attempt = flow.finish(callback).await?;
    attempt.session.with_context(|| {
        format!(
            "the sign-in at the sidecar with rules gave no session: its callback answered {} {}",
            attempt.callback.status,
            attempt.callback.body.chars().take(300).collect::<String>()
        )
    })
}

/// Checks with `cookie` that the sidecar at `plain` and the sidecar with rules at `ruled` both
/// admit the benchmark's request (the app's answer), and that the one with rules refuses a path a
/// `Deny` rule names: the session is valid at both and the rules are in force.
async fn check_ruled(plain: &str, ruled: &str, cookie: &str) -> Result<()> {
    let client = http_client()?;
    let get = |url: &str, path: &str| {
        client
            .get(format!("{url}{path}"))
            .header(reqwest::header::ACCEPT, "text/plain")
            .header(reqwest::header::COOKIE, cookie)
            .send()
    };
    for url in [plain, ruled] {
        let admitted = get(url, "/static").await?;
        if admitted.status() != reqwest::StatusCode::OK
            || !admitted.headers().contains_key("x-sample-app")
        {
            anyhow::bail!(
                "GET {url}/static with the session answered {} without the app's marker",
                admitted.status()
            );
        }
    }
    let refused_path = gatehouse_tests::bench_access::REFUSED_PATH;
    let refused = get(ruled, refused_path).await?;
    if refused.status() != reqwest::StatusCode::FORBIDDEN {
        anyhow::bail!(
            "GET {refused_path} with the session answered {}, not 403: the rules are not in force",
            refused.status()
        );
    }
    Ok(())
}

/// Checks that the machine-client twin at `url` admits the benchmark's request with `bearer` (the
/// app's answer) and refuses it with the token altered: machine clients are checked there. The
/// issuer's keys are fetched at the first of these requests, so the run finds them cached.
async fn check_machine(url: &str, bearer: &str) -> Result<()> {
    let client = http_client()?;
    let get = |token: String| {
        client
            .get(format!("{url}/static"))
            .header(reqwest::header::ACCEPT, "text/plain")
            .header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"))
            .send()
    };
    let admitted = get(bearer.to_owned()).await?;
    if admitted.status() != reqwest::StatusCode::OK
        || !admitted.headers().contains_key("x-sample-app")
    {
        anyhow::bail!(
            "GET {url}/static with the bearer token answered {} without the app's marker",
            admitted.status()
        );
    }
    // Another signature (one character of it changed) is no token of the issuer.
    let at = bearer.rfind('.').context("a JWT")? + 5;
    let swapped = if bearer.as_bytes().get(at) == Some(&b'A') {
        "B"
    } else {
        "A"
    };
    let mut forged = bearer.to_owned();
    forged.replace_range(at..=at, swapped);
    let refused = get(forged).await?;
    if refused.status() != reqwest::StatusCode::UNAUTHORIZED {
        anyhow::bail!(
            "GET {url}/static with an altered bearer token answered {}, not 401: machine \
             clients are not checked",
            refused.status()
        );
    }
    Ok(())
}

/// Whether this process runs as root (then Apache is told which user its child runs as).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

async fn bench() -> Result<()> {
    // The authenticating peer, when the driver asks for it: Apache with mod_auth_openidc at a
    // port the IdP registers beside the sidecar's.
    let apache_peer = match (
        std::env::var_os("GATEHOUSE_BENCH_APACHE"),
        std::env::var_os("GATEHOUSE_BENCH_APACHE_MODULES"),
        std::env::var_os("GATEHOUSE_BENCH_APACHE_DIR"),
    ) {
        (Some(binary), Some(modules), Some(dir)) => Some(ApachePeer {
            binary: binary.into(),
            modules: modules.into(),
            dir: dir.into(),
            port: gatehouse_tests::process::free_port()?,
        }),
        _ => None,
    };
    let stack = Stack::start(StackOptions {
        providers: vec![ProviderKind::Okta],
        extra_public_urls: apache_peer
            .iter()
            .map(|peer| format!("http://127.0.0.1:{}", peer.port))
            .collect(),
        ..StackOptions::default()
    })
    .await?;
    let app = stack.app.as_ref().context("bench app")?;
    // The same binary in optional mode, sent no session: what the HTTP stack and the header rules
    // cost with no session to check and no identity to add.
    let anonymous = stack
        .start_another_sidecar(&StackOptions {
            providers: vec![ProviderKind::Okta],
            auth_mode: Some("optional".to_owned()),
            ..StackOptions::default()
        })
        .await?;
    // The authenticated sidecar's twin with a 20-rule access policy, sent the same cookie: what
    // the rules cost per request.
    let access = serde_json::to_string(&gatehouse_tests::bench_access::policy())?;
    let ruled = stack
        .start_twin_sidecar(&[("GATEHOUSE_ACCESS", &access)])
        .await?;
    let session = sign_in_at_twin(&stack, &ruled)
        .await
        .with_context(|| format!("the sidecar with rules:\n{}", ruled.process.logs.text()))?;
    let cookie = session.cookie_header();
    check_ruled(&stack.sidecar.url, &ruled.url, &cookie)
        .await
        .with_context(|| format!("the sidecar with rules:\n{}", ruled.process.logs.text()))?;
    // The authenticated sidecar's twin admitting machine clients, sent a client-credentials
    // token instead of the cookie: what a machine request costs with the issuer's key cached.
    let issuer = gatehouse_tests::bench_machine::Issuer::start().await?;
    let machine = stack
        .start_twin_sidecar(&[("GATEHOUSE_MACHINE_AUTH", &issuer.machine_auth())])
        .await?;
    let bearer = issuer.token()?;
    check_machine(&machine.url, &bearer)
        .await
        .with_context(|| {
            format!(
                "the machine-client sidecar:\n{}",
                machine.process.logs.text()
            )
        })?;
    let apache = match apache_peer {
        Some(peer) => Some(start_apache(&stack, peer).await?),
        None => None,
    };
    let line = serde_json::json!({
        "direct": format!("{}/static", app.url),
        "through": stack.url("/static"),
        "cookie": cookie,
        "sidecar_pid": stack.sidecar.process.pid(),
        "app_pid": app.process.pid(),
        "anonymous": format!("{}/static", anonymous.url),
        "anonymous_pid": anonymous.process.pid(),
        "ruled": format!("{}/static", ruled.url),
        "ruled_pid": ruled.process.pid(),
        "machine": format!("{}/static", machine.url),
        "machine_pid": machine.process.pid(),
        "bearer": bearer,
        "apache": apache.as_ref().map(|(a, _)| format!("{}/static", a.url)),
        "apache_pid": apache.as_ref().map(|(a, _)| a.pid()),
        "apache_cookie": apache.as_ref().map(|(_, cookie)| cookie),
    });
    println!("{line}");
    // Run until the driver closes our stdin (or Ctrl-C).
    let mut sink = Vec::new();
    let mut stdin = tokio::io::stdin();
    tokio::select! {
        _ = stdin.read_to_end(&mut sink) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
