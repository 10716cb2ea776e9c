//! Command line: `run`, `render`, `crdgen`, `user-name`. `main.rs` parses and calls [`execute`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use gatehouse_crds::consts::{DEFAULT_SIDECAR_IMAGE, WEBHOOK_PORT};
use kube::runtime::events::Recorder;
use kube::{Api, Client};
use tracing::{info, warn};

use crate::controllers::{self, Context, Scope, sso_config, sso_user};
use crate::inject::SidecarDefaults;
use crate::leader::{self, LeaderLease, Timings};
use crate::metrics::Metrics;
use crate::telemetry::{self, LogFormat};
use crate::webhook::{self, KubeEvents, WebhookOptions};
use crate::{admin, render};

/// Gatehouse operator: reconciles SsoConfig and SsoUser objects.
#[derive(Debug, Parser)]
#[command(name = "gatehouse-operator", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "GATEHOUSE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controllers (only the replica holding the leader Lease reconciles).
    Run(RunArgs),
    /// Print, offline, the objects the operator would apply for the given manifests.
    Render(RenderArgs),
    /// Write the CustomResourceDefinitions as YAML files.
    Crdgen(CrdgenArgs),
    /// Print the name of the SsoUser a user signs in as, to declare (or suspend) them in Git.
    UserName(UserNameArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "GATEHOUSE_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "GATEHOUSE_LEASE_NAME",
        default_value = "gatehouse-operator"
    )]
    pub lease_name: String,
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "gatehouse-system")]
    pub lease_namespace: String,
    /// Identity in the Lease and in Events (default: the pod name, from HOSTNAME).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "GATEHOUSE_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,
    /// Reconcile without taking the Lease (a single replica, local development).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Watch Secrets (metadata only) so a rotated Secret re-renders within seconds. Needs
    /// list/watch on Secrets; default: on with --namespace, off cluster-wide (where the chart
    /// grants only `get` on Secrets).
    #[arg(long, env = "GATEHOUSE_WATCH_SECRETS")]
    pub watch_secrets: Option<bool>,
    /// Seconds between periodic re-checks of a reconciled SsoConfig (default: 1800 while Secrets
    /// are watched, 120 otherwise).
    #[arg(long, env = "GATEHOUSE_RESYNC_SECONDS")]
    pub resync_seconds: Option<u64>,
    /// Port of the sidecar-injection webhook's HTTPS listener.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_PORT", default_value_t = WEBHOOK_PORT)]
    pub webhook_port: u16,
    /// Serve the webhook certificate from this directory (`tls.crt`, `tls.key`: cert-manager)
    /// instead of managing a CA in the `gatehouse-webhook-tls` Secret.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_CERT_DIR")]
    pub webhook_cert_dir: Option<PathBuf>,
    /// Do not serve the injection webhook (local development).
    #[arg(long)]
    pub no_webhook: bool,
    /// Image of the injected sidecar; an SsoConfig's `spec.sidecar.image` overrides it.
    #[arg(long, env = "GATEHOUSE_SIDECAR_IMAGE", default_value = DEFAULT_SIDECAR_IMAGE)]
    pub sidecar_image: String,
    /// Inject a native sidecar (Kubernetes 1.29+); `--native-sidecars=false` for older clusters.
    #[arg(long, env = "GATEHOUSE_NATIVE_SIDECARS", default_value_t = true, action = clap::ArgAction::Set)]
    pub native_sidecars: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Manifest file, or directory of `*.yaml` files (not recursive). Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Print secret values instead of `<redacted>`.
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Debug, Args)]
pub struct UserNameArgs {
    /// The SsoConfig the user signs in to: each app of a namespace has its own SsoUser of a
    /// person (all of them labelled `gatehouse.dev/identity`, printed with `--identity`).
    #[arg(long, required_unless_present = "identity")]
    pub config: Option<String>,
    /// Print the person's `gatehouse.dev/identity` label value instead (the same for every app).
    #[arg(long)]
    pub identity: bool,
    /// Provider id: `okta`, `entra`, or the id of the SsoConfig's `spec.providers.oidc`.
    #[arg(long)]
    pub provider: String,
    /// The provider's issuer exactly as the sidecar uses it: the SsoConfig's `issuer`, byte for
    /// byte (a trailing `/` counts); for Entra ID without `issuer`,
    /// `https://login.microsoftonline.com/<tenantId>/v2.0`.
    #[arg(long)]
    pub issuer: String,
    /// The user's subject: the `sub` claim of their ID tokens at that issuer.
    #[arg(long)]
    pub subject: String,
}

#[derive(Debug, Args)]
pub struct CrdgenArgs {
    /// Directory to write the CRD files to.
    #[arg(long, default_value = "crds/manifests")]
    pub out: PathBuf,
}

/// Run the parsed command.
pub async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Render(args) => Ok(run_render(&args)),
        Command::Crdgen(args) => {
            crdgen(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::UserName(args) => {
            println!("{}", user_name(&args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            telemetry::init(cli.log_format);
            run_controllers(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_render(args: &RenderArgs) -> ExitCode {
    let rendered = render::read_inputs(&args.files).and_then(|input| {
        // Notes go to stderr: stdout stays exactly the objects the operator would apply.
        for note in &input.notes {
            eprintln!("note: {note}");
        }
        for warning in &input.warnings {
            eprintln!("warning: {warning}");
        }
        render::render_input(&input, args.show_secrets)
    });
    match rendered {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(lines) => {
            for line in lines {
                eprintln!("{line}");
            }
            ExitCode::from(1)
        }
    }
}

/// The SsoUser name for `args`, computed by the function the sidecar names users with.
pub fn user_name(args: &UserNameArgs) -> anyhow::Result<String> {
    use gatehouse_crds::consts::{PROVIDER_ENTRA, PROVIDER_OKTA};
    use gatehouse_crds::rules;
    let provider = args.provider.as_str();
    if provider != PROVIDER_OKTA && provider != PROVIDER_ENTRA {
        rules::check_provider_id(provider)
            .map_err(|message| anyhow::anyhow!("--provider: {message}"))?;
    }
    rules::check_issuer(&args.issuer).map_err(|message| anyhow::anyhow!("--issuer: {message}"))?;
    if args.subject.is_empty() {
        anyhow::bail!("--subject: must not be empty");
    }
    if args.identity {
        return Ok(gatehouse_crds::names::identity_label(
            &args.issuer,
            &args.subject,
        ));
    }
    let config = args.config.as_deref().unwrap_or_default();
    if !gatehouse_crds::names::is_dns1123_subdomain(config) {
        anyhow::bail!("--config: must be the name of an SsoConfig (a DNS subdomain)");
    }
    Ok(gatehouse_crds::names::sso_user_name(
        config,
        provider,
        &args.issuer,
        &args.subject,
    ))
}

fn crdgen(args: &CrdgenArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for (file, yaml) in gatehouse_crds::crd_manifests() {
        let path = args.out.join(file);
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C; clones resolve together.
fn shutdown_signal() -> Shared<BoxFuture<'static, ()>> {
    async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(error) => {
                        warn!(%error, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        info!("shutting down");
    }
    .boxed()
    .shared()
}

async fn run_controllers(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let scope = Scope(args.namespace.clone());
    // Fail early, with a hint, when the CRDs are missing or older than this operator. Discovery,
    // not a list of SsoConfigs: reading an object stored as gatehouse.dev/v1alpha1 needs the
    // conversion webhook, which this very process serves and has not started yet.
    let served = client
        .list_api_group_resources(gatehouse_crds::SSO_CONFIG_API_VERSION)
        .await
        .context("looking up gatehouse.dev/v1alpha2; are the CRDs installed? (`gatehouse-operator crdgen`, or the Helm chart)")?;
    if !served.resources.iter().any(|r| r.name == "ssoconfigs") {
        anyhow::bail!(
            "{} has no ssoconfigs: install the CRDs of this version (Helm chart, or crds/manifests/)",
            gatehouse_crds::SSO_CONFIG_API_VERSION
        );
    }

    let identity = args
        .identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("gatehouse-operator-{}", rand::random::<u32>()));
    let metrics = Arc::new(Metrics::default());
    let admin_metrics = metrics.clone();
    let admin_addr = args.admin_addr;
    // Ready once the webhook answers (every replica serves it, leader or not).
    let ready = Arc::new(AtomicBool::new(args.no_webhook));
    let admin_ready = ready.clone();
    tokio::spawn(async move {
        if let Err(error) = admin::serve(admin_addr, admin_metrics, admin_ready).await {
            warn!(%error, addr = %admin_addr, "admin listener failed");
        }
    });

    let mut ctx = Context::new(
        client.clone(),
        controllers::reporter(Some(identity.clone())),
        metrics.clone(),
    );
    ctx.watch_secrets = args.watch_secrets.unwrap_or(args.namespace.is_some());
    ctx.resync = match args.resync_seconds {
        Some(secs) => std::time::Duration::from_secs(secs.max(10)),
        None if ctx.watch_secrets => controllers::DEFAULT_RESYNC,
        None => controllers::UNWATCHED_SECRETS_RESYNC,
    };
    let shutdown = shutdown_signal();
    if !args.no_webhook {
        let options = WebhookOptions {
            port: args.webhook_port,
            cert_dir: args.webhook_cert_dir.clone(),
            namespace: args.lease_namespace.clone(),
            watch_namespace: args.namespace.clone(),
            defaults: SidecarDefaults {
                image: args.sidecar_image.clone(),
                native_sidecars: args.native_sidecars,
                ..SidecarDefaults::default()
            },
        };
        let events = Arc::new(KubeEvents::new(Recorder::new(
            client.clone(),
            controllers::reporter(Some(identity.clone())),
        )));
        let (client, shutdown, metrics) = (client.clone(), shutdown.clone(), metrics.clone());
        tokio::spawn(async move {
            if let Err(error) =
                webhook::run(client, options, events, metrics, ready, shutdown).await
            {
                warn!(%error, "admission webhook stopped; this replica reports not ready");
            }
        });
    }
    let work = {
        let shutdown = shutdown.clone();
        move || async move {
            info!(
                namespace = scope.0.as_deref().unwrap_or("*"),
                "starting controllers"
            );
            tokio::join!(
                sso_config::run(ctx.clone(), scope.clone(), shutdown.clone()),
                sso_user::run(ctx.clone(), scope.clone(), shutdown.clone()),
                // Labelled pods running without the sidecar: reported, restarted on request.
                controllers::self_repair::run(ctx, scope, shutdown),
            );
        }
    };
    if args.no_leader_election {
        metrics.set_leader(true);
        work().await;
        return Ok(());
    }
    let lease = LeaderLease::new(
        Api::namespaced(client, &args.lease_namespace),
        args.lease_name,
        identity,
        Timings::default(),
    );
    leader::run_as_leader(lease, metrics, work, shutdown).await?;
    Ok(())
}
