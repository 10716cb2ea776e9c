//! Self-repair: pods labelled for an SsoConfig that run without the sidecar (created before the
//! webhook was registered, or while it was bypassed) are reported on the SsoConfig (condition
//! [`SIDECAR_INJECTED`] and an Event) and, when `spec.sidecar.restartUninjected` is true, their
//! Deployment, StatefulSet or DaemonSet is restarted so its new pods come back injected.
//!
//! A restart sets [`ANNOTATION_RESTARTED_AT`] on the pod template. A pod that carries it and still
//! lacks the sidecar proves the webhook is not injecting; its workload is not restarted again
//! (no restart loops), and the condition says so.
//!
//! Self-repair is a controller of its own (its own watch, run loop and error policy) beside the
//! SsoConfig controller. Each writes `status.conditions` under its own field manager and applies
//! only the conditions it owns (the list is `x-kubernetes-list-type: map` keyed by `type`), so
//! neither can undo the other's: this one owns [`SIDECAR_INJECTED`] alone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use gatehouse_crds::SsoConfig;
use gatehouse_crds::consts::{ANNOTATION_RESTARTED_AT, LABEL_INJECT};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::{Api, Resource};
use serde_json::json;
use tracing::{Instrument as _, info, info_span, warn};

use super::{Context, Scope};
use crate::conditions;
use crate::inject::{is_injected, not_ready_detail, requested_config};

/// Condition type on the SsoConfig: whether every labelled pod runs the sidecar.
pub const SIDECAR_INJECTED: &str = "SidecarInjected";
/// Field manager of the status this controller writes (the condition above only).
pub const FIELD_MANAGER: &str = "gatehouse-operator-self-repair";
/// Pods named in a condition message; the rest are counted.
const NAMED_PODS: usize = 5;
/// Periodic re-check, on top of pod and SsoConfig events.
const RESYNC: Duration = Duration::from_secs(10 * 60);
/// Metric label of this controller.
pub const CONTROLLER: &str = "self_repair";

/// Errors of the self-repair controller.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no {0}")]
    MissingKey(&'static str),
    #[error("cannot decode SsoConfig {namespace}/{name}: {error}")]
    Undecodable {
        namespace: String,
        name: String,
        error: String,
    },
}

impl RepairError {
    /// Stable, low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            RepairError::Kube(_) => "kube_error",
            RepairError::MissingKey(_) => "missing_key",
            RepairError::Undecodable { .. } => "undecodable",
        }
    }
}

/// Labelled pods of `config` in `namespace` that run without the sidecar. Pods being deleted or
/// that have finished are left out: they will not serve traffic again.
pub fn uninjected_pods<'a>(
    config: &str,
    namespace: &str,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Vec<&'a Pod> {
    let mut found: Vec<&Pod> = pods
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| requested_config(&p.metadata) == Some(config))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .filter(|p| !p.spec.as_ref().is_some_and(is_injected))
        .collect();
    found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    found
}

/// The workload kinds whose pods come back when their template changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }
}

/// What restarting an uninjected pod takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartTarget {
    /// Patch this workload's template.
    Workload(WorkloadKind, String),
    /// The pod belongs to this ReplicaSet: its Deployment (if any) is the workload.
    ReplicaSet(String),
    /// The pod already comes from a restart for injection: the webhook is not injecting.
    AlreadyRestarted,
    /// A bare pod, a Job's pod, or another controller: only reported.
    NotRestartable,
}

/// How `pod` would be restarted.
pub fn restart_target(pod: &Pod) -> RestartTarget {
    if pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_RESTARTED_AT))
    {
        return RestartTarget::AlreadyRestarted;
    }
    let Some(owner) = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    else {
        return RestartTarget::NotRestartable;
    };
    match (owner.api_version.as_str(), owner.kind.as_str()) {
        ("apps/v1", "ReplicaSet") => RestartTarget::ReplicaSet(owner.name.clone()),
        ("apps/v1", "StatefulSet") => {
            RestartTarget::Workload(WorkloadKind::StatefulSet, owner.name.clone())
        }
        ("apps/v1", "DaemonSet") => {
            RestartTarget::Workload(WorkloadKind::DaemonSet, owner.name.clone())
        }
        _ => RestartTarget::NotRestartable,
    }
}

/// The merge patch that restarts a workload at `now`.
pub fn restart_patch(now: Timestamp) -> serde_json::Value {
    json!({"spec": {"template": {"metadata": {"annotations": {
        ANNOTATION_RESTARTED_AT: now.to_string()
    }}}}})
}

/// What one reconcile found and did, for the condition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Names of labelled pods without the sidecar.
    pub uninjected: Vec<String>,
    /// Workloads restarted now (`Kind/name`).
    pub restarted: Vec<String>,
    /// Pods that came from an earlier restart and still lack the sidecar.
    pub still_uninjected_after_restart: usize,
}

/// The [`SIDECAR_INJECTED`] condition for `findings`.
pub fn sidecar_condition(
    config: &str,
    findings: &Findings,
    restart_enabled: bool,
    generation: Option<i64>,
) -> Condition {
    if findings.uninjected.is_empty() {
        return conditions::new(
            SIDECAR_INJECTED,
            true,
            "AllPodsInjected",
            format!("Every running pod labelled {LABEL_INJECT}={config} has the sidecar."),
            generation,
        );
    }
    let count = findings.uninjected.len();
    let mut names = findings.uninjected[..count.min(NAMED_PODS)].join(", ");
    if count > NAMED_PODS {
        names.push_str(&format!(" and {} more", count - NAMED_PODS));
    }
    let mut message = format!(
        "{count} running pod(s) labelled {LABEL_INJECT}={config} have no sidecar, so they serve without sign-in: {names}."
    );
    if findings.still_uninjected_after_restart > 0 {
        message.push_str(
            " Some were restarted for injection and still have none: check that the MutatingWebhookConfiguration gatehouse-webhook exists and the operator's webhook is ready.",
        );
    } else if !findings.restarted.is_empty() {
        message.push_str(&format!(
            " Restarted for injection: {}.",
            findings.restarted.join(", ")
        ));
    } else if restart_enabled {
        message.push_str(
            " They are restarted once the SsoConfig is Ready; bare pods and Job pods must be recreated by hand.",
        );
    } else {
        message.push_str(
            " Restart their workloads (kubectl rollout restart), or set spec.sidecar.restartUninjected: true to let the operator do it.",
        );
    }
    conditions::new(
        SIDECAR_INJECTED,
        false,
        "PodsWithoutSidecar",
        message,
        generation,
    )
}

/// The status patch this controller applies: [`SIDECAR_INJECTED`] alone (its transition time
/// carried from `previous`). The other conditions belong to the SsoConfig controller's field
/// manager and are never sent, so this apply cannot change them.
pub fn status_patch(
    previous: &[Condition],
    condition: Condition,
    now: Timestamp,
) -> serde_json::Value {
    json!({
        "apiVersion": gatehouse_crds::SSO_CONFIG_API_VERSION,
        "kind": "SsoConfig",
        "status": {"conditions": conditions::merge(previous, vec![condition], now)},
    })
}

/// Shared state of the self-repair controller.
#[derive(Clone)]
pub struct RepairContext {
    pub ctx: Context,
    /// Labelled pods, from a watch (never a list per reconcile).
    pub pods: Store<Pod>,
}

impl std::fmt::Debug for RepairContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepairContext").finish_non_exhaustive()
    }
}

/// [`reconcile`] for what the watch delivered: an SsoConfig that cannot be decoded is reported
/// (log, metric; the SsoConfig controller puts the condition on it) and waits for a change, and
/// the watch goes on with the others.
pub async fn reconcile_guarded(
    config: Arc<DeserializeGuard<SsoConfig>>,
    rctx: Arc<RepairContext>,
) -> Result<Action, RepairError> {
    match &config.0 {
        Ok(config) => {
            let key = format!(
                "{CONTROLLER}/{}/{}",
                config.metadata.namespace.as_deref().unwrap_or_default(),
                config.metadata.name.as_deref().unwrap_or_default()
            );
            let action = reconcile(Arc::new(config.clone()), rctx.clone()).await?;
            rctx.ctx.succeeded(&key);
            Ok(action)
        }
        Err(invalid) => {
            rctx.ctx.metrics.undecodable(CONTROLLER, "SsoConfig");
            rctx.ctx.metrics.reconciled(CONTROLLER, "undecodable", 0.0);
            Err(RepairError::Undecodable {
                namespace: invalid.metadata.namespace.clone().unwrap_or_default(),
                name: invalid.metadata.name.clone().unwrap_or_default(),
                error: invalid.error.clone(),
            })
        }
    }
}

/// Check one SsoConfig's pods; restart their workloads when it asks for that.
pub async fn reconcile(
    config: Arc<SsoConfig>,
    rctx: Arc<RepairContext>,
) -> Result<Action, RepairError> {
    let name = config
        .metadata
        .name
        .clone()
        .ok_or(RepairError::MissingKey("metadata.name"))?;
    let namespace = config
        .metadata
        .namespace
        .clone()
        .ok_or(RepairError::MissingKey("metadata.namespace"))?;
    if config.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let span = info_span!("self_repair", namespace = %namespace, name = %name);
    async move {
        let pods = rctx.pods.state();
        let uninjected = uninjected_pods(&name, &namespace, pods.iter().map(|p| p.as_ref()));
        let restart_enabled = config
            .spec
            .sidecar
            .as_ref()
            .and_then(|s| s.restart_uninjected)
            == Some(true);
        let mut findings = Findings {
            uninjected: uninjected
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect(),
            ..Findings::default()
        };
        findings.still_uninjected_after_restart = uninjected
            .iter()
            .filter(|p| restart_target(p) == RestartTarget::AlreadyRestarted)
            .count();

        // Restart only when the webhook would inject now: a config that is not Ready would get
        // the new pods refused and stall the rollout.
        if restart_enabled && not_ready_detail(&config).is_none() {
            let now = Timestamp::now();
            for (kind, workload) in workloads_to_restart(&rctx, &namespace, &uninjected).await? {
                restart(&rctx, &namespace, kind, &workload, now).await?;
                info!(kind = kind.as_str(), workload = %workload, "restarted for sidecar injection");
                findings.restarted.push(format!("{}/{workload}", kind.as_str()));
            }
        }

        let condition = sidecar_condition(&name, &findings, restart_enabled, config.metadata.generation);
        let previous = config.status.clone().unwrap_or_default().conditions;
        let before = conditions::find(&previous, SIDECAR_INJECTED);
        let unchanged = before.is_some_and(|b| {
            (b.status.as_str(), b.reason.as_str(), b.message.as_str(), b.observed_generation)
                == (
                    condition.status.as_str(),
                    condition.reason.as_str(),
                    condition.message.as_str(),
                    condition.observed_generation,
                )
        });
        if !unchanged {
            let became_false = condition.status == "False" && before.is_none_or(|b| b.status != "False");
            let api: Api<SsoConfig> = Api::namespaced(rctx.ctx.client.clone(), &namespace);
            let patch = status_patch(&previous, condition.clone(), Timestamp::now());
            api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
                .await?;
            if became_false || !findings.restarted.is_empty() {
                let (reason, type_) = if findings.restarted.is_empty() {
                    ("PodsWithoutSidecar", EventType::Warning)
                } else {
                    ("RestartedForInjection", EventType::Normal)
                };
                let event = Event {
                    type_,
                    reason: reason.to_string(),
                    note: Some(condition.message.chars().take(1000).collect()),
                    action: "CheckSidecars".to_string(),
                    secondary: None,
                };
                if let Err(error) = rctx.ctx.recorder.publish(&event, &config.object_ref(&())).await {
                    warn!(%error, "cannot record the self-repair Event");
                }
            }
        }
        Ok(Action::requeue(RESYNC))
    }
    .instrument(span)
    .await
}

/// The workloads to restart for `uninjected`, each once; ReplicaSets resolved to Deployments.
async fn workloads_to_restart(
    rctx: &RepairContext,
    namespace: &str,
    uninjected: &[&Pod],
) -> Result<BTreeSet<(WorkloadKind, String)>, RepairError> {
    let mut targets = BTreeSet::new();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(rctx.ctx.client.clone(), namespace);
    for pod in uninjected {
        match restart_target(pod) {
            RestartTarget::Workload(kind, name) => {
                targets.insert((kind, name));
            }
            RestartTarget::ReplicaSet(rs) => {
                let Some(rs) = replica_sets.get_opt(&rs).await? else {
                    continue;
                };
                let deployment = rs
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|o| o.controller == Some(true) && o.kind == "Deployment")
                    .map(|o| o.name.clone());
                if let Some(deployment) = deployment {
                    targets.insert((WorkloadKind::Deployment, deployment));
                }
            }
            RestartTarget::AlreadyRestarted | RestartTarget::NotRestartable => {}
        }
    }
    Ok(targets)
}

async fn restart(
    rctx: &RepairContext,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
    now: Timestamp,
) -> Result<(), RepairError> {
    let client = rctx.ctx.client.clone();
    let patch = Patch::Merge(restart_patch(now));
    let params = PatchParams::default();
    match kind {
        WorkloadKind::Deployment => {
            Api::<Deployment>::namespaced(client, namespace)
                .patch(name, &params, &patch)
                .await?;
        }
        WorkloadKind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client, namespace)
                .patch(name, &params, &patch)
                .await?;
        }
        WorkloadKind::DaemonSet => {
            Api::<DaemonSet>::namespaced(client, namespace)
                .patch(name, &params, &patch)
                .await?;
        }
    }
    Ok(())
}

/// An undecodable SsoConfig waits for a change; a failed check is retried with growing delays
/// (5 s, 10 s, 20 s… up to 5 minutes).
pub fn error_policy(
    config: Arc<DeserializeGuard<SsoConfig>>,
    error: &RepairError,
    rctx: Arc<RepairContext>,
) -> Action {
    let meta = config.meta();
    let key = format!(
        "{CONTROLLER}/{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    );
    match error {
        RepairError::Undecodable { .. } | RepairError::MissingKey(_) => {
            warn!(%error, "self-repair waits for the SsoConfig to change");
            Action::await_change()
        }
        RepairError::Kube(_) => {
            warn!(%error, "self-repair check failed; retrying");
            rctx.ctx.backoff(&key)
        }
    }
}

/// Run the self-repair controller (leader only, next to the SsoConfig controller).
pub async fn run(
    ctx: Context,
    scope: Scope,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (pods, writer) = reflector::store();
    // Only labelled pods: the rest of the cluster is never watched.
    let pod_events = watcher(
        scope.api::<Pod>(client.clone()),
        watcher::Config::default().labels(LABEL_INJECT),
    )
    .default_backoff()
    .reflect(writer)
    .touched_objects();
    let rctx = Arc::new(RepairContext { ctx, pods });
    Controller::new(
        scope.api::<DeserializeGuard<SsoConfig>>(client),
        watcher::Config::default(),
    )
    .watches_stream(pod_events, |pod: Pod| {
        let namespace = pod.metadata.namespace.clone();
        requested_config(&pod.metadata)
            .zip(namespace)
            .map(|(config, ns)| ObjectRef::new(config).within(&ns))
    })
    .with_config(ControllerConfig::default().debounce(Duration::from_secs(2)))
    .graceful_shutdown_on(shutdown)
    .run(reconcile_guarded, error_policy, rctx)
    .for_each(|_| futures::future::ready(()))
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("pod")
    }

    fn labelled(name: &str, owner: Option<(&str, &str, &str)>) -> Pod {
        let mut value = json!({
            "metadata": {"name": name, "namespace": "team-a", "labels": {LABEL_INJECT: "portal"}},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"phase": "Running"}
        });
        if let Some((api_version, kind, owner)) = owner {
            value["metadata"]["ownerReferences"] = json!([{
                "apiVersion": api_version, "kind": kind, "name": owner, "uid": "u", "controller": true
            }]);
        }
        pod(value)
    }

    #[test]
    fn only_running_labelled_pods_without_the_sidecar_are_found() {
        let mut injected = labelled("injected", None);
        injected.spec.as_mut().expect("spec").init_containers =
            Some(vec![k8s_openapi::api::core::v1::Container {
                name: "gatehouse".into(),
                ..Default::default()
            }]);
        let mut done = labelled("done", None);
        done.status.as_mut().expect("status").phase = Some("Succeeded".into());
        let mut other_config = labelled("other", None);
        other_config.metadata.labels =
            Some([(LABEL_INJECT.to_string(), "billing".to_string())].into());
        let mut elsewhere = labelled("elsewhere", None);
        elsewhere.metadata.namespace = Some("team-b".into());
        let mut leaving = labelled("leaving", None);
        leaving.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        );
        let pods = [
            labelled("web-2", None),
            injected,
            done,
            other_config,
            elsewhere,
            leaving,
            labelled("web-1", None),
        ];
        let found: Vec<&str> = uninjected_pods("portal", "team-a", pods.iter())
            .iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        assert_eq!(found, ["web-1", "web-2"]);
    }

    #[test]
    fn restart_targets_follow_the_controller_and_never_loop() {
        assert_eq!(
            restart_target(&labelled("a", Some(("apps/v1", "ReplicaSet", "web-7d9f")))),
            RestartTarget::ReplicaSet("web-7d9f".into())
        );
        assert_eq!(
            restart_target(&labelled("a", Some(("apps/v1", "StatefulSet", "db")))),
            RestartTarget::Workload(WorkloadKind::StatefulSet, "db".into())
        );
        assert_eq!(
            restart_target(&labelled("a", Some(("apps/v1", "DaemonSet", "agent")))),
            RestartTarget::Workload(WorkloadKind::DaemonSet, "agent".into())
        );
        assert_eq!(
            restart_target(&labelled("a", Some(("batch/v1", "Job", "report")))),
            RestartTarget::NotRestartable
        );
        assert_eq!(
            restart_target(&labelled("a", None)),
            RestartTarget::NotRestartable
        );
        let mut again = labelled("a", Some(("apps/v1", "ReplicaSet", "web-8e0a")));
        again.metadata.annotations = Some(
            [(
                ANNOTATION_RESTARTED_AT.to_string(),
                "2026-11-23T10:00:00Z".to_string(),
            )]
            .into(),
        );
        assert_eq!(restart_target(&again), RestartTarget::AlreadyRestarted);
    }

    #[test]
    fn the_restart_patch_sets_the_template_annotation() {
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().expect("time");
        assert_eq!(
            restart_patch(now),
            json!({"spec": {"template": {"metadata": {"annotations": {"gatehouse.dev/restarted-at": "2026-11-23T10:00:00Z"}}}}})
        );
    }

    #[test]
    fn the_condition_says_what_to_do() {
        let ok = sidecar_condition("portal", &Findings::default(), false, Some(3));
        assert_eq!(
            (ok.type_.as_str(), ok.status.as_str(), ok.reason.as_str()),
            (SIDECAR_INJECTED, "True", "AllPodsInjected")
        );

        let findings = Findings {
            uninjected: (1..=7).map(|i| format!("web-{i}")).collect(),
            ..Findings::default()
        };
        let report = sidecar_condition("portal", &findings, false, Some(3));
        assert_eq!(
            (report.status.as_str(), report.reason.as_str()),
            ("False", "PodsWithoutSidecar")
        );
        assert!(
            report
                .message
                .starts_with("7 running pod(s) labelled gatehouse.dev/inject=portal"),
            "{}",
            report.message
        );
        assert!(
            report.message.contains("web-5 and 2 more"),
            "{}",
            report.message
        );
        assert!(
            report
                .message
                .contains("spec.sidecar.restartUninjected: true"),
            "{}",
            report.message
        );

        let restarted = Findings {
            restarted: vec!["Deployment/web".into()],
            ..findings.clone()
        };
        assert!(
            sidecar_condition("portal", &restarted, true, None)
                .message
                .contains("Restarted for injection: Deployment/web.")
        );
        let stuck = Findings {
            still_uninjected_after_restart: 1,
            ..findings
        };
        assert!(
            sidecar_condition("portal", &stuck, true, None)
                .message
                .contains("MutatingWebhookConfiguration gatehouse-webhook")
        );
    }

    #[test]
    fn each_controller_applies_only_its_own_conditions() {
        // The list is a map keyed by type: what a manager does not send, it leaves alone.
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().expect("time");
        let mut config: SsoConfig = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha2", "kind": "SsoConfig",
            "metadata": {"name": "portal", "namespace": "team-a", "uid": "u", "generation": 1},
            "spec": {"protocol": "oidc", "publicUrl": "https://portal.example.com",
                     "providers": {"okta": {"issuer": "https://acme.okta.com", "orgId": "acme",
                                            "clientSecretRef": {"name": "portal-okta"}}}}
        }))
        .expect("config");
        let ready = conditions::new("Ready", true, "Reconciled", "ok", Some(1));
        let old = conditions::new(SIDECAR_INJECTED, true, "AllPodsInjected", "ok", Some(1));
        config.status = Some(gatehouse_crds::SsoConfigStatus {
            conditions: vec![ready, old.clone()],
            ..Default::default()
        });
        let status =
            crate::controllers::sso_config::desired_status(&config, &[], &[], true, None, now);
        let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "SecretsResolved", "Valid"]);

        let new = sidecar_condition(
            "portal",
            &Findings {
                uninjected: vec!["web-1".into()],
                ..Findings::default()
            },
            false,
            Some(1),
        );
        let patch = status_patch(&[old], new, now);
        let sent = patch["status"]["conditions"].as_array().expect("list");
        assert_eq!(sent.len(), 1, "{patch}");
        assert_eq!(sent[0]["type"], SIDECAR_INJECTED);
        assert_eq!(sent[0]["status"], "False");
        assert_eq!(sent[0]["lastTransitionTime"], "2026-11-23T10:00:00Z");
        assert!(patch["status"].get("observedGeneration").is_none());
    }
}
