//! Self-repair against an in-memory Kubernetes API (kube-fake-client): a labelled pod that runs
//! without the sidecar is reported on its SsoConfig and, when the SsoConfig asks, its Deployment
//! is restarted, once.

use std::sync::Arc;

use gatehouse_crds::SsoConfig;
use gatehouse_operator::controllers::self_repair::{
    self as repair, RepairContext, SIDECAR_INJECTED,
};
use gatehouse_operator::controllers::{self, Context};
use gatehouse_operator::metrics::Metrics;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube_fake_client::ClientBuilder;
use serde_json::{Value, json};

fn config(restart: bool) -> SsoConfig {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha2", "kind": "SsoConfig",
        "metadata": {"name": "portal", "namespace": "demo", "uid": "c-1", "generation": 1, "resourceVersion": "1"},
        "spec": {"protocol": "oidc", "publicUrl": "https://portal.example.com",
                 "providers": {"okta": {"issuer": "https://acme.okta.com", "orgId": "acme",
                                        "clientSecretRef": {"name": "portal-okta"}}},
                 "sidecar": {"restartUninjected": restart}},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                                   "observedGeneration": 1, "lastTransitionTime": "2026-11-23T10:00:00Z"}]}
    }))
    .expect("config")
}

fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("fixture")
}

fn uninjected_pod(annotations: Value) -> Pod {
    object(json!({
        "metadata": {"name": "web-7d9f-abcde", "namespace": "demo", "annotations": annotations,
                     "labels": {"gatehouse.dev/inject": "portal", "app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "rs-1", "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        "status": {"phase": "Running"}
    }))
}

async fn setup(restart: bool, pod: Pod) -> (Arc<RepairContext>, kube::Client) {
    let deployment: Deployment = object(json!({
        "metadata": {"name": "web", "namespace": "demo", "uid": "d-1"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web", "gatehouse.dev/inject": "portal"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    }));
    let replica_set: ReplicaSet = object(json!({
        "metadata": {"name": "web-7d9f", "namespace": "demo", "uid": "rs-1",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-1", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}}}
    }));
    let client = ClientBuilder::new()
        .with_resource::<SsoConfig>()
        .with_status_subresource::<SsoConfig>()
        .with_object(config(restart))
        .with_object(deployment)
        .with_object(replica_set)
        .with_object(pod.clone())
        .build()
        .await
        .expect("fake client");
    let (pods, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitApply(pod));
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let ctx = Context::new(
        client.clone(),
        controllers::reporter(None),
        Arc::new(Metrics::default()),
    );
    (Arc::new(RepairContext { ctx, pods }), client)
}

async fn condition(client: &kube::Client) -> (String, String, String) {
    let config = Api::<SsoConfig>::namespaced(client.clone(), "demo")
        .get("portal")
        .await
        .expect("config");
    let conditions = config.status.expect("status").conditions;
    // Self-repair applies only the condition it owns. The in-memory API replaces a list on
    // apply, so what is left is exactly what was sent; a real API server merges the list by
    // `type` and keeps the SsoConfig controller's Ready (operator/tests/cluster.rs checks that).
    let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        [SIDECAR_INJECTED],
        "only its own condition is applied"
    );
    let c = conditions
        .into_iter()
        .find(|c| c.type_ == SIDECAR_INJECTED)
        .expect("condition written");
    (c.status, c.reason, c.message)
}

async fn restarted_at(client: &kube::Client) -> Option<String> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), "demo")
        .get("web")
        .await
        .expect("deployment");
    deployment
        .spec?
        .template
        .metadata?
        .annotations?
        .get("gatehouse.dev/restarted-at")
        .cloned()
}

#[tokio::test]
async fn uninjected_pods_are_reported_and_left_alone_by_default() {
    let (rctx, client) = setup(false, uninjected_pod(json!({}))).await;
    repair::reconcile(Arc::new(config(false)), rctx)
        .await
        .expect("reconciled");
    let (status, reason, message) = condition(&client).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PodsWithoutSidecar")
    );
    assert!(
        message.contains("web-7d9f-abcde") && message.contains("restartUninjected"),
        "{message}"
    );
    assert_eq!(
        restarted_at(&client).await,
        None,
        "nothing restarted without the opt-in"
    );
}

#[tokio::test]
async fn with_the_opt_in_the_deployment_is_restarted() {
    let (rctx, client) = setup(true, uninjected_pod(json!({}))).await;
    repair::reconcile(Arc::new(config(true)), rctx)
        .await
        .expect("reconciled");
    assert!(
        restarted_at(&client).await.is_some(),
        "the Deployment's template is annotated"
    );
    let (status, _, message) = condition(&client).await;
    assert_eq!(status, "False");
    assert!(
        message.contains("Restarted for injection: Deployment/web."),
        "{message}"
    );
}

#[tokio::test]
async fn a_pod_from_an_earlier_restart_is_not_restarted_again() {
    let pod = uninjected_pod(json!({"gatehouse.dev/restarted-at": "2026-11-23T10:00:00Z"}));
    let (rctx, client) = setup(true, pod).await;
    repair::reconcile(Arc::new(config(true)), rctx)
        .await
        .expect("reconciled");
    assert_eq!(restarted_at(&client).await, None, "no restart loop");
    let (_, _, message) = condition(&client).await;
    assert!(
        message.contains("MutatingWebhookConfiguration gatehouse-webhook"),
        "{message}"
    );
}
