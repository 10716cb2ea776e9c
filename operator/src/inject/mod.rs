//! The injected pod, defined once. The admission webhook, `render` and self-repair all call
//! [`inject`]: a pod (or a pod template) and its SsoConfig in, an RFC 6902 patch or a typed
//! [`Refusal`] out. No IO here.
//!
//! What the sidecar gets, and why:
//! - a native sidecar (an init container with `restartPolicy: Always`, placed first, so it runs
//!   for the pod's whole life and Job pods still complete), or a plain container appended to
//!   `containers` when the operator runs with `--native-sidecars=false`;
//! - `envFrom` the `<config>-gatehouse-env` Secret: IdP credentials and cookie keys reach this
//!   container only. The same Secret is also mounted as files, and the secret variables point at
//!   them (`<NAME>_FILE`, which the sidecar prefers and re-reads every 10 s), so a rotated client
//!   secret or cookie key reaches running pods without a restart; any other changed value makes
//!   the sidecar restart itself (`GATEHOUSE_ENV_DIR`), so a changed SsoConfig reaches running pods
//!   without touching the workload (no GitOps drift);
//! - the token Secret of its own ServiceAccount mounted into this container only, at the standard
//!   path. The pod's `automountServiceAccountToken` is left alone: the app keeps its own
//!   ServiceAccount's token (apps that call the API need it), and because the sidecar already has
//!   a mount at the standard path, Kubernetes' ServiceAccount admission never gives it the app's
//!   token either;
//! - a security context that passes Pod Security Standards "restricted", and no writable volume
//!   (the sidecar keeps everything in memory, so its root filesystem is read-only and nothing else
//!   is needed).

pub mod workload;

use std::collections::BTreeMap;

use gatehouse_crds::SsoConfig;
use gatehouse_crds::consts::{
    ADMIN_PORT, ADMIN_PORT_NAME, ANNOTATION_INJECTED_VERSION, ANNOTATION_SIDECAR_ADMIN_PORT,
    ANNOTATION_SIDECAR_IMAGE, ANNOTATION_SIDECAR_PORT, DEFAULT_SIDECAR_IMAGE,
    DEFAULT_UPSTREAM_PORT, HEALTHZ_PATH, LABEL_INJECT, READYZ_PATH, SIDECAR_CONTAINER_NAME,
    SIDECAR_PORT, SIDECAR_PORT_NAME, SIDECAR_UID,
};
use gatehouse_crds::env::{GATEHOUSE_ADMIN_LISTEN, GATEHOUSE_LISTEN};
use gatehouse_crds::names::is_dns1123_label;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvFromSource, EnvVar, HTTPGetAction, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretEnvSource,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::names;

/// Volume holding the sidecar's ServiceAccount token (`token`, `ca.crt`, `namespace`).
pub const TOKEN_VOLUME_NAME: &str = "gatehouse-token";
/// Volume holding the env Secret as files, so rotated secrets reach a running sidecar.
pub const ENV_VOLUME_NAME: &str = "gatehouse-env";
/// Where the env Secret's keys are mounted as files in the sidecar.
pub const ENV_MOUNT_PATH: &str = "/etc/gatehouse/env";
/// Where Kubernetes clients look for the in-cluster token; the sidecar's token is mounted there.
pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Version recorded in [`ANNOTATION_INJECTED_VERSION`] by this build.
pub const INJECTOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the operator injects when the SsoConfig does not say otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct SidecarDefaults {
    /// Sidecar image (`--sidecar-image`).
    pub image: String,
    /// Sidecar resources when `spec.sidecar.resources` is unset.
    pub resources: ResourceRequirements,
    /// Inject a native sidecar (Kubernetes ≥ 1.29). `false`: a plain container, for clusters
    /// that predate native sidecars.
    pub native_sidecars: bool,
    /// Written to [`ANNOTATION_INJECTED_VERSION`].
    pub version: String,
}

impl Default for SidecarDefaults {
    fn default() -> Self {
        SidecarDefaults {
            image: DEFAULT_SIDECAR_IMAGE.to_string(),
            resources: default_resources(),
            native_sidecars: true,
            version: INJECTOR_VERSION.to_string(),
        }
    }
}

/// Requests small enough for every node, a memory limit that catches a leak; no CPU limit, so
/// the proxy is never throttled on the request path.
pub fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("10m".into())),
            ("memory".to_string(), Quantity("32Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity("128Mi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// Whether the SsoConfig must be Ready for the pod to be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The webhook: a pod whose config is not Ready would start a sidecar without its
    /// environment, so it is refused.
    Required,
    /// `render`: offline manifests carry no status.
    Ignored,
}

/// The outcome of [`inject`] for a pod that is not refused.
#[derive(Clone, Debug, PartialEq)]
pub enum Injection {
    /// The pod does not carry [`LABEL_INJECT`]: not Gatehouse's business.
    NotRequested,
    /// The sidecar is already there: no patch (idempotence).
    AlreadyInjected {
        /// The SsoConfig the pod names.
        config: String,
    },
    /// The sidecar is to be added.
    Patch(InjectionPatch),
}

/// The RFC 6902 operations that inject the sidecar into a pod. Paths start at the pod's root
/// (`/metadata`, `/spec`), which is also the shape of a pod template, so the same patch serves the
/// webhook (a Pod) and `render` (a Deployment's template).
#[derive(Clone, Debug, PartialEq)]
pub struct InjectionPatch {
    /// The SsoConfig the sidecar serves.
    pub config: String,
    /// The operations, in order.
    pub patch: Patch,
}

impl InjectionPatch {
    /// Apply the patch to a pod or pod template as JSON.
    pub fn apply(&self, pod: &mut Value) -> Result<(), json_patch::PatchError> {
        json_patch::patch(pod, &self.patch)
    }

    /// The injected pod template.
    pub fn apply_to_template(
        &self,
        template: &PodTemplateSpec,
    ) -> Result<PodTemplateSpec, PatchFailed> {
        let mut value = serde_json::to_value(template).map_err(PatchFailed::Json)?;
        self.apply(&mut value).map_err(PatchFailed::Patch)?;
        serde_json::from_value(value).map_err(PatchFailed::Json)
    }
}

/// An injection patch that did not apply; a bug, never the user's input.
#[derive(Debug, thiserror::Error)]
pub enum PatchFailed {
    #[error("pod template does not round-trip through JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("injection patch does not apply: {0}")]
    Patch(#[source] json_patch::PatchError),
}

/// Why a labelled pod is not injected. The message is shown to whoever created the pod (and as
/// an Event): it names the SsoConfig, the namespace and what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the pod label {LABEL_INJECT} must name an SsoConfig in namespace {namespace:?} (a DNS-1123 name), got {value:?}: correct the label"
    )]
    InvalidLabel { namespace: String, value: String },

    #[error(
        "SsoConfig {config:?} not found in namespace {namespace:?} (named by the pod label {LABEL_INJECT}): create it in {namespace:?} or correct the label; pods are refused rather than started without sign-in"
    )]
    ConfigMissing { config: String, namespace: String },

    #[error(
        "SsoConfig {config:?} in namespace {namespace:?} cannot be read by the operator ({error}): fix the object (`kubectl get ssoconfig {config} -n {namespace} -o yaml`) or upgrade the operator to the version that wrote it; pods are refused rather than started without sign-in"
    )]
    ConfigUndecodable {
        config: String,
        namespace: String,
        error: String,
    },

    #[error(
        "SsoConfig {config:?} in namespace {namespace:?} is not Ready ({detail}): fix what `kubectl describe ssoconfig {config} -n {namespace}` reports; the pod is admitted once the SsoConfig is Ready"
    )]
    ConfigNotReady {
        config: String,
        namespace: String,
        detail: String,
    },

    #[error(
        "the pod uses hostNetwork, so the Gatehouse sidecar (SsoConfig {config:?}, namespace {namespace:?}) would listen on the node's ports and no NetworkPolicy could protect the app: remove hostNetwork or the {LABEL_INJECT} label"
    )]
    HostNetwork { config: String, namespace: String },

    #[error(
        "the pod annotation {annotation} is not allowed by SsoConfig {config:?} in namespace {namespace:?}: remove the annotation, or set spec.sidecar.allowPodOverrides: true on the SsoConfig"
    )]
    OverrideNotAllowed {
        annotation: &'static str,
        config: String,
        namespace: String,
    },

    #[error("the pod annotation {annotation}={value:?} is invalid: {problem}")]
    InvalidOverride {
        annotation: &'static str,
        value: String,
        problem: String,
    },

    #[error(
        "container {container:?} already uses port {port}, which the Gatehouse sidecar (SsoConfig {config:?}, namespace {namespace:?}) needs for {purpose}: move the app to another port{hint}"
    )]
    PortConflict {
        container: String,
        port: u16,
        purpose: &'static str,
        config: String,
        namespace: String,
        hint: &'static str,
    },

    #[error(
        "the pod already has a {what} named {name:?}, which the Gatehouse sidecar (SsoConfig {config:?}, namespace {namespace:?}) needs: rename it"
    )]
    NameConflict {
        what: &'static str,
        name: String,
        config: String,
        namespace: String,
    },

    #[error(
        "the pod's restartPolicy is {restart_policy}, and a plain sidecar container would keep it running forever (SsoConfig {config:?}, namespace {namespace:?}): run the operator with native sidecars (Kubernetes 1.29 or later), or remove the {LABEL_INJECT} label from run-to-completion pods"
    )]
    NeedsNativeSidecars {
        restart_policy: String,
        config: String,
        namespace: String,
    },
}

impl Refusal {
    /// Stable, low-cardinality reason: the Event's `reason` and a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidLabel { .. } => "InvalidInjectLabel",
            Refusal::ConfigMissing { .. } => "SsoConfigNotFound",
            Refusal::ConfigUndecodable { .. } => "SsoConfigUndecodable",
            Refusal::ConfigNotReady { .. } => "SsoConfigNotReady",
            Refusal::HostNetwork { .. } => "HostNetwork",
            Refusal::OverrideNotAllowed { .. } => "OverrideNotAllowed",
            Refusal::InvalidOverride { .. } => "InvalidOverride",
            Refusal::PortConflict { .. } => "PortConflict",
            Refusal::NameConflict { .. } => "NameConflict",
            Refusal::NeedsNativeSidecars { .. } => "NeedsNativeSidecars",
        }
    }
}

/// The SsoConfig a pod asks for, if it carries [`LABEL_INJECT`] (the value is not checked here).
pub fn requested_config(metadata: &ObjectMeta) -> Option<&str> {
    metadata
        .labels
        .as_ref()?
        .get(LABEL_INJECT)
        .map(String::as_str)
}

/// Whether the pod already runs the sidecar, as a native sidecar or a plain container.
pub fn is_injected(spec: &PodSpec) -> bool {
    all_containers(spec).any(|c| c.name == SIDECAR_CONTAINER_NAME)
}

/// Why `config` is not Ready, or `None` when its `Ready` condition is `True`. A Ready config
/// whose newest generation is still being reconciled counts as Ready: its previous environment
/// Secret is in place, and refusing pods during every SsoConfig edit would break rollouts.
pub fn not_ready_detail(config: &SsoConfig) -> Option<String> {
    let ready = config
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) if c.message.is_empty() => Some(format!("Ready={}, reason {}", c.status, c.reason)),
        Some(c) => Some(format!(
            "Ready={}, reason {}: {}",
            c.status,
            c.reason,
            c.message.trim_end_matches('.')
        )),
        None => Some("the operator has not reconciled it yet".to_string()),
    }
}

/// Decide and build the injection of one pod (or pod template).
///
/// `namespace` is where the pod is created; `config` is the SsoConfig named by the pod's label,
/// looked up in that namespace (`None`: it does not exist).
pub fn inject(
    namespace: &str,
    metadata: &ObjectMeta,
    spec: &PodSpec,
    config: Option<&SsoConfig>,
    defaults: &SidecarDefaults,
    readiness: Readiness,
) -> Result<Injection, Refusal> {
    let Some(config_name) = requested_config(metadata) else {
        return Ok(Injection::NotRequested);
    };
    let config_name = config_name.to_string();
    let namespace = namespace.to_string();
    if !is_dns1123_label(&config_name) {
        return Err(Refusal::InvalidLabel {
            namespace,
            value: config_name,
        });
    }
    if is_injected(spec) {
        return Ok(Injection::AlreadyInjected {
            config: config_name,
        });
    }
    let Some(config) = config else {
        return Err(Refusal::ConfigMissing {
            config: config_name,
            namespace,
        });
    };
    if readiness == Readiness::Required
        && let Some(detail) = not_ready_detail(config)
    {
        return Err(Refusal::ConfigNotReady {
            config: config_name,
            namespace,
            detail,
        });
    }
    if spec.host_network == Some(true) {
        return Err(Refusal::HostNetwork {
            config: config_name,
            namespace,
        });
    }

    let settings = SidecarSettings::resolve(&config_name, &namespace, metadata, config, defaults)?;
    check_conflicts(spec, &settings, &config_name, &namespace)?;

    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if !defaults.native_sidecars && restart_policy != "Always" {
        return Err(Refusal::NeedsNativeSidecars {
            restart_policy: restart_policy.to_string(),
            config: config_name,
            namespace,
        });
    }

    let container = sidecar_container(
        &config_name,
        &settings,
        defaults.native_sidecars,
        &secret_variables(config),
    );
    let mut ops = Vec::new();

    let annotation = (
        ANNOTATION_INJECTED_VERSION,
        Value::String(defaults.version.clone()),
    );
    match &metadata.annotations {
        None => ops.push(add(
            &["metadata", "annotations"],
            Value::Object(
                [(annotation.0.to_string(), annotation.1)]
                    .into_iter()
                    .collect(),
            ),
        )),
        Some(_) => ops.push(add(
            &["metadata", "annotations", annotation.0],
            annotation.1,
        )),
    }

    let volumes = [
        to_value(&token_volume(&config_name)),
        to_value(&env_volume(&config_name)),
    ];
    match &spec.volumes {
        None => ops.push(add(&["spec", "volumes"], Value::Array(volumes.to_vec()))),
        Some(_) => {
            for volume in volumes {
                ops.push(add(&["spec", "volumes", "-"], volume));
            }
        }
    }

    let container = to_value(&container);
    if defaults.native_sidecars {
        // First, so the sidecar is up before (and while) any other init container runs.
        match &spec.init_containers {
            None => ops.push(add(
                &["spec", "initContainers"],
                Value::Array(vec![container]),
            )),
            Some(_) => ops.push(add(&["spec", "initContainers", "0"], container)),
        }
    } else {
        // Last, so `kubectl logs` and `kubectl exec` still default to the app's container.
        ops.push(add(&["spec", "containers", "-"], container));
    }

    Ok(Injection::Patch(InjectionPatch {
        config: config_name,
        patch: Patch(ops),
    }))
}

/// [`inject`] for a pod template (`render`, self-repair): the injected template, or `None` when
/// the template is not labelled or already injected.
pub fn inject_template(
    namespace: &str,
    template: &PodTemplateSpec,
    config: Option<&SsoConfig>,
    defaults: &SidecarDefaults,
    readiness: Readiness,
) -> Result<Option<PodTemplateSpec>, TemplateError> {
    let metadata = template.metadata.clone().unwrap_or_default();
    let spec = template.spec.clone().unwrap_or_default();
    match inject(namespace, &metadata, &spec, config, defaults, readiness)? {
        Injection::NotRequested | Injection::AlreadyInjected { .. } => Ok(None),
        Injection::Patch(patch) => Ok(Some(patch.apply_to_template(template)?)),
    }
}

/// Why [`inject_template`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Patch(#[from] PatchFailed),
}

/// The sidecar's image and ports for one pod, after annotations and the SsoConfig.
#[derive(Clone, Debug, PartialEq)]
pub struct SidecarSettings {
    pub image: String,
    pub port: u16,
    pub admin_port: u16,
    pub resources: ResourceRequirements,
}

impl SidecarSettings {
    /// Pod annotation (when the SsoConfig allows it) > `spec.sidecar` > operator defaults.
    fn resolve(
        config_name: &str,
        namespace: &str,
        metadata: &ObjectMeta,
        config: &SsoConfig,
        defaults: &SidecarDefaults,
    ) -> Result<SidecarSettings, Refusal> {
        let sidecar = config.spec.sidecar.clone().unwrap_or_default();
        let allowed = sidecar.allow_pod_overrides == Some(true);
        let annotations = metadata.annotations.clone().unwrap_or_default();
        let overridden = |annotation: &'static str| -> Result<Option<String>, Refusal> {
            match annotations.get(annotation) {
                None => Ok(None),
                Some(_) if !allowed => Err(Refusal::OverrideNotAllowed {
                    annotation,
                    config: config_name.to_string(),
                    namespace: namespace.to_string(),
                }),
                Some(value) => Ok(Some(value.clone())),
            }
        };
        let port_override = |annotation: &'static str| -> Result<Option<u16>, Refusal> {
            let Some(value) = overridden(annotation)? else {
                return Ok(None);
            };
            match value.parse::<u16>() {
                Ok(port) if port > 0 => Ok(Some(port)),
                _ => Err(Refusal::InvalidOverride {
                    annotation,
                    value,
                    problem: "expected a port number from 1 to 65535".into(),
                }),
            }
        };

        let image = match overridden(ANNOTATION_SIDECAR_IMAGE)? {
            Some(image) if image.trim().is_empty() || image.chars().any(char::is_whitespace) => {
                return Err(Refusal::InvalidOverride {
                    annotation: ANNOTATION_SIDECAR_IMAGE,
                    value: image,
                    problem: "expected an image reference without spaces".into(),
                });
            }
            Some(image) => image,
            None => sidecar.image.unwrap_or_else(|| defaults.image.clone()),
        };
        let port = port_override(ANNOTATION_SIDECAR_PORT)?.unwrap_or(SIDECAR_PORT);
        let admin_port = port_override(ANNOTATION_SIDECAR_ADMIN_PORT)?.unwrap_or(ADMIN_PORT);
        let upstream = config
            .spec
            .upstream
            .as_ref()
            .and_then(|u| u.port)
            .unwrap_or(DEFAULT_UPSTREAM_PORT);
        if port == admin_port {
            return Err(Refusal::InvalidOverride {
                annotation: ANNOTATION_SIDECAR_ADMIN_PORT,
                value: admin_port.to_string(),
                problem: "the admin port must differ from the sidecar's port".into(),
            });
        }
        for (annotation, value) in [
            (ANNOTATION_SIDECAR_PORT, port),
            (ANNOTATION_SIDECAR_ADMIN_PORT, admin_port),
        ] {
            if value == upstream {
                return Err(Refusal::InvalidOverride {
                    annotation,
                    value: value.to_string(),
                    problem: format!(
                        "port {upstream} is the app's port (spec.upstream.port of SsoConfig {config_name:?})"
                    ),
                });
            }
        }
        Ok(SidecarSettings {
            image,
            port,
            admin_port,
            resources: sidecar
                .resources
                .unwrap_or_else(|| defaults.resources.clone()),
        })
    }
}

/// App containers may not take the sidecar's ports, port names or volume: the containers of a
/// pod share one network namespace, and Kubernetes rejects duplicate names.
fn check_conflicts(
    spec: &PodSpec,
    settings: &SidecarSettings,
    config: &str,
    namespace: &str,
) -> Result<(), Refusal> {
    let name_conflict = |what, name: &str| Refusal::NameConflict {
        what,
        name: name.to_string(),
        config: config.to_string(),
        namespace: namespace.to_string(),
    };
    for container in all_containers(spec) {
        for port in container.ports.iter().flatten() {
            for (ours, purpose, hint) in [
                (
                    settings.port,
                    "the sign-in proxy",
                    " (or, if the SsoConfig allows pod overrides, move the sidecar with the annotation gatehouse.dev/sidecar-port)",
                ),
                (
                    settings.admin_port,
                    "its health checks",
                    " (or, if the SsoConfig allows pod overrides, move the sidecar with the annotation gatehouse.dev/sidecar-admin-port)",
                ),
            ] {
                if port.container_port == i32::from(ours) {
                    return Err(Refusal::PortConflict {
                        container: container.name.clone(),
                        port: ours,
                        purpose,
                        config: config.to_string(),
                        namespace: namespace.to_string(),
                        hint,
                    });
                }
            }
            if let Some(name) = &port.name
                && (name == SIDECAR_PORT_NAME || name == ADMIN_PORT_NAME)
            {
                return Err(name_conflict("port", name));
            }
        }
    }
    if let Some(volume) = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == TOKEN_VOLUME_NAME || v.name == ENV_VOLUME_NAME)
    {
        return Err(name_conflict("volume", &volume.name));
    }
    Ok(())
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

/// The secret variables the env Secret of `config` holds: the cookie keys, the client secret of
/// each configured OIDC provider or the SAML SP's signing key, and the SCIM tokens in scim mode.
pub fn secret_variables(config: &SsoConfig) -> Vec<&'static str> {
    use gatehouse_crds::env as vars;
    let mut names = vec![vars::GATEHOUSE_COOKIE_SECRET];
    if config.spec.protocol == gatehouse_crds::Protocol::Oidc
        && let Some(p) = &config.spec.providers
    {
        if p.okta.is_some() {
            names.push(vars::OKTA_CLIENT_SECRET);
        }
        if p.entra.is_some() {
            names.push(vars::ENTRA_CLIENT_SECRET);
        }
        for slot in 1..=p.oidc.len().min(vars::MAX_OIDC_PROVIDERS) {
            let name = vars::oidc_slot_var(vars::OIDC_CLIENT_SECRET, slot);
            // The static spelling of `OIDC_<n>_CLIENT_SECRET`.
            if let Some(name) = vars::all_rendered_variables()
                .iter()
                .find(|known| **known == name)
            {
                names.push(name);
            }
        }
    }
    if config.spec.protocol == gatehouse_crds::Protocol::Saml {
        names.push(vars::SAML_SP_SIGNING_KEY);
    }
    // Both SCIM tokens, the previous one too when the Secret has none now: it comes and goes with
    // rotations, and the sidecar reads a `SCIM_PREVIOUS_TOKEN_FILE` that is not there as no
    // previous token.
    if config.spec.provisioning_mode() == gatehouse_crds::ProvisioningMode::Scim {
        names.push(vars::SCIM_TOKEN);
        names.push(vars::SCIM_PREVIOUS_TOKEN);
    }
    names
}

/// The sidecar container for `config`; each of `secret_files` is also given as `<NAME>_FILE`
/// pointing into the mounted env Secret.
pub fn sidecar_container(
    config: &str,
    settings: &SidecarSettings,
    native: bool,
    secret_files: &[&str],
) -> Container {
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(ADMIN_PORT_NAME.to_string()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let port = |name: &str, number: u16| ContainerPort {
        name: Some(name.to_string()),
        container_port: i32::from(number),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    };
    let env = |name: &str, value: String| EnvVar {
        name: name.to_string(),
        value: Some(value),
        ..EnvVar::default()
    };
    Container {
        name: SIDECAR_CONTAINER_NAME.to_string(),
        image: Some(settings.image.clone()),
        restart_policy: native.then(|| "Always".to_string()),
        ports: Some(vec![
            port(SIDECAR_PORT_NAME, settings.port),
            port(ADMIN_PORT_NAME, settings.admin_port),
        ]),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: names::env_secret(config),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        // Set here rather than in the Secret: the listen addresses must agree with the ports
        // declared above, which may come from pod annotations.
        env: Some(
            [
                env(GATEHOUSE_LISTEN, format!("0.0.0.0:{}", settings.port)),
                env(
                    GATEHOUSE_ADMIN_LISTEN,
                    format!("0.0.0.0:{}", settings.admin_port),
                ),
            ]
            .into_iter()
            .chain(std::iter::once(env(
                gatehouse_crds::env::GATEHOUSE_ENV_DIR,
                ENV_MOUNT_PATH.to_string(),
            )))
            .chain(
                secret_files
                    .iter()
                    .map(|name| env(&format!("{name}_FILE"), format!("{ENV_MOUNT_PATH}/{name}"))),
            )
            .collect(),
        ),
        readiness_probe: Some(probe(READYZ_PATH, 5)),
        liveness_probe: Some(probe(HEALTHZ_PATH, 10)),
        resources: Some(settings.resources.clone()),
        security_context: Some(restricted_security_context()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: TOKEN_VOLUME_NAME.to_string(),
                mount_path: SERVICE_ACCOUNT_MOUNT_PATH.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: ENV_VOLUME_NAME.to_string(),
                mount_path: ENV_MOUNT_PATH.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    }
}

/// Every container-level field Pod Security Standards "restricted" checks, set explicitly so the
/// sidecar passes whatever the pod-level context says.
pub fn restricted_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        run_as_non_root: Some(true),
        run_as_user: Some(SIDECAR_UID),
        run_as_group: Some(SIDECAR_UID),
        read_only_root_filesystem: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

/// The sidecar's ServiceAccount token, from the `kubernetes.io/service-account-token` Secret the
/// operator creates. Readable by the non-root sidecar whatever the pod's fsGroup.
fn token_volume(config: &str) -> Volume {
    Volume {
        name: TOKEN_VOLUME_NAME.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(names::token_secret(config)),
            default_mode: Some(0o444),
            optional: Some(false),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The env Secret as files (read by the sidecar through `<NAME>_FILE`). Readable by the non-root
/// sidecar whatever the pod's fsGroup.
fn env_volume(config: &str) -> Volume {
    Volume {
        name: ENV_VOLUME_NAME.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(names::env_secret(config)),
            default_mode: Some(0o444),
            optional: Some(false),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn add(tokens: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens.iter().copied()),
        value,
    })
}

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    // k8s-openapi types are plain data: serializing them cannot fail.
    serde_json::to_value(object).expect("k8s-openapi objects serialize to JSON")
}

#[cfg(test)]
mod tests;
