//! One SsoConfig that the operator cannot decode (a field of a newer schema, a hand edit that got
//! past an older CRD) against the in-memory API (kube-fake-client): every watch that sees it goes
//! on with the other objects, and reports it (log, metric, and a condition on the object).

mod webhook_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_crds::SsoConfig;
use gatehouse_operator::controllers::self_repair::{self, SIDECAR_INJECTED};
use gatehouse_operator::controllers::{self, Context, Scope, sso_config};
use gatehouse_operator::inject::SidecarDefaults;
use gatehouse_operator::metrics::Metrics;
use gatehouse_operator::webhook::ConfigCache;
use gatehouse_operator::webhook::admission::{self, Outcome};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::core::{ApiResource, DeserializeGuard, DynamicObject};
use kube_fake_client::ClientBuilder;
use serde_json::{Value, json};
use webhook_common::{configs, request};

/// An SsoConfig in the API whose `spec.protocol` no version of this operator knows.
fn undecodable() -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha2", "kind": "SsoConfig",
        "metadata": {"name": "future", "namespace": "team-a", "uid": "f-1", "generation": 2},
        "spec": {"protocol": "kerberos", "publicUrl": "https://future.example.com"}
    })
}

fn portal() -> SsoConfig {
    configs()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("portal"))
        .expect("the golden configs have portal")
}

async fn client(pods: Vec<Pod>) -> kube::Client {
    let mut builder = ClientBuilder::new()
        .with_resource::<SsoConfig>()
        .with_status_subresource::<SsoConfig>()
        .with_object(portal())
        .with_runtime_objects(vec![undecodable()]);
    for pod in pods {
        builder = builder.with_object(pod);
    }
    builder.build().await.expect("fake client")
}

/// The golden `plain-pod` request, labelled for `config`.
fn pod_request(config: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&request("plain-pod")).expect("json");
    review["request"]["object"]["metadata"]["labels"]["gatehouse.dev/inject"] = json!(config);
    serde_json::to_vec(&review).expect("json")
}

#[tokio::test]
async fn the_webhook_cache_syncs_past_an_undecodable_ssoconfig_and_refuses_only_its_pods() {
    let client = client(vec![]).await;
    let metrics = Arc::new(Metrics::default());
    let (configs, watch) = ConfigCache::watch(
        Api::<DeserializeGuard<SsoConfig>>::namespaced(client, "team-a"),
        metrics.clone(),
    );
    let watch = tokio::spawn(watch);
    assert!(
        configs.synced(Duration::from_secs(10)).await,
        "one undecodable SsoConfig must not leave the cache unsynced (every labelled pod refused)"
    );
    let defaults = SidecarDefaults::default();

    let good = admission::review(&pod_request("portal"), &configs, &defaults);
    assert_eq!(good.outcome, Outcome::Injected, "{:?}", good.review);

    let bad = admission::review(&pod_request("future"), &configs, &defaults);
    assert_eq!(bad.outcome, Outcome::Denied);
    let denial = bad.denial.expect("an Event is recorded");
    assert_eq!(denial.refusal.reason(), "SsoConfigUndecodable");
    let message = denial.refusal.to_string();
    assert!(
        message.contains("\"future\"") && message.contains("kerberos"),
        "the refusal names the object and what is wrong: {message}"
    );

    let text = metrics.encode();
    assert!(
        text.contains(
            "gatehouse_operator_undecodable_objects_total{watch=\"webhook\",kind=\"SsoConfig\"} 1"
        ),
        "{text}"
    );
    watch.abort();
}

fn uninjected_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web-1", "namespace": "team-a",
                     "labels": {"gatehouse.dev/inject": "portal"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        "status": {"phase": "Running"}
    }))
    .expect("pod")
}

#[tokio::test]
async fn self_repair_goes_on_past_an_undecodable_ssoconfig() {
    let client = client(vec![uninjected_pod()]).await;
    let metrics = Arc::new(Metrics::default());
    let ctx = Context::new(client.clone(), controllers::reporter(None), metrics.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(self_repair::run(
        ctx,
        Scope(Some("team-a".into())),
        async move {
            let _ = stopped.await;
        },
    ));

    let api: Api<SsoConfig> = Api::namespaced(client, "team-a");
    let deadline = Instant::now() + Duration::from_secs(20);
    let reported = loop {
        let config = api.get("portal").await.expect("portal");
        let condition = config
            .status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .find(|c| c.type_ == SIDECAR_INJECTED && c.status == "False");
        if let Some(condition) = condition {
            break condition;
        }
        assert!(
            Instant::now() < deadline,
            "self-repair never checked portal: the undecodable SsoConfig stalled its watch"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(reported.message.contains("web-1"), "{}", reported.message);
    assert!(
        metrics.encode().contains(
            "gatehouse_operator_undecodable_objects_total{watch=\"self_repair\",kind=\"SsoConfig\"} 1"
        ),
        "{}",
        metrics.encode()
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), controller).await;
}

#[tokio::test]
async fn the_ssoconfig_controller_reports_an_undecodable_ssoconfig_on_it() {
    let client = client(vec![]).await;
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(
        client.clone(),
        controllers::reporter(None),
        metrics.clone(),
    ));
    let guard: DeserializeGuard<SsoConfig> =
        serde_json::from_value(undecodable()).expect("a guard always decodes");
    assert!(guard.0.is_err(), "the fixture must not decode");
    let error = sso_config::reconcile_guarded(Arc::new(guard), ctx)
        .await
        .expect_err("an undecodable SsoConfig is not reconciled");
    assert!(!error.is_transient(), "it waits for a change: {error}");

    let resource = ApiResource::erase::<SsoConfig>(&());
    let raw = Api::<DynamicObject>::namespaced_with(client, "team-a", &resource)
        .get("future")
        .await
        .expect("the object is still there");
    let ready = raw.data["status"]["conditions"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .expect("a Ready condition is written on the object");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!(sso_config::UNDECODABLE))
    );
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("kerberos"),
        "says what is wrong: {message}"
    );
    assert!(
        metrics.encode().contains(
            "gatehouse_operator_undecodable_objects_total{watch=\"ssoconfig\",kind=\"SsoConfig\"} 1"
        ),
        "{}",
        metrics.encode()
    );
}
