//! `spec.saml.allowSha1` through the SsoConfig controller against an in-memory API server: the
//! opt-in reaches the sidecar as `SAML_ALLOW_SHA1=true`, and while it is on the SsoConfig says so
//! with the condition `InsecureAlgorithmsAllowed=True` (reason `Sha1Allowed`, a message telling how
//! to turn it off) and a Warning Event; turning it off flips the condition and records a Normal
//! Event. `Ready` is not affected either way.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_crds::env::SAML_ALLOW_SHA1;
use gatehouse_crds::{SsoConfig, SsoUser};
use gatehouse_operator::conditions::{INSECURE_ALGORITHMS_ALLOWED, READY};
use gatehouse_operator::controllers::{self, Context, sso_config};
use gatehouse_operator::metrics::Metrics;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use kube_fake_client::ClientBuilder;
use serde_json::json;

const NS: &str = "team-a";

const HR: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: hr, namespace: team-a}
spec:
  protocol: saml
  publicUrl: https://hr.example.com
  saml:
    idpMetadataUrl: https://idp.example.com/saml2/metadata
    roleAttribute: memberOf
    defaultRole: member
    orgId: acme-hr
    allowSha1: true
"#;

async fn start() -> (Client, Arc<Context>) {
    let config: SsoConfig = serde_saphyr::from_str(HR).expect("fixture parses");
    let client = ClientBuilder::new()
        .with_resource::<SsoConfig>()
        .with_resource::<SsoUser>()
        .with_status_subresource::<SsoConfig>()
        .with_status_subresource::<SsoUser>()
        .with_object(config)
        .build()
        .await
        .expect("fake client");
    let ctx = Arc::new(Context::new(
        client.clone(),
        controllers::reporter(Some("test".into())),
        Arc::new(Metrics::default()),
    ));
    (client, ctx)
}

async fn reconcile(client: &Client, ctx: &Arc<Context>) -> SsoConfig {
    let configs: Api<SsoConfig> = Api::namespaced(client.clone(), NS);
    let config = Arc::new(configs.get("hr").await.expect("config"));
    tokio::time::timeout(
        Duration::from_secs(10),
        sso_config::reconcile(config, ctx.clone()),
    )
    .await
    .expect("reconcile finishes")
    .expect("reconciles");
    configs.get("hr").await.expect("config")
}

fn condition<'a>(config: &'a SsoConfig, type_: &str) -> &'a Condition {
    config
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .unwrap_or_else(|| panic!("condition {type_} missing"))
}

/// Type and reason of every Event, oldest first.
async fn events(client: &Client) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn allowing_sha1_renders_the_variable_and_says_so_in_status_and_events() {
    let (client, ctx) = start().await;
    let config = reconcile(&client, &ctx).await;

    let env = Api::<Secret>::namespaced(client.clone(), NS)
        .get("hr-gatehouse-env")
        .await
        .expect("env Secret");
    let value = env
        .data
        .as_ref()
        .and_then(|d| d.get(SAML_ALLOW_SHA1))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned());
    assert_eq!(value.as_deref(), Some("true"));

    let insecure = condition(&config, INSECURE_ALGORITHMS_ALLOWED);
    assert_eq!(
        (insecure.status.as_str(), insecure.reason.as_str()),
        ("True", "Sha1Allowed")
    );
    assert!(
        insecure.message.contains("allowSha1"),
        "{}",
        insecure.message
    );
    assert_eq!(condition(&config, READY).status, "True");
    let published = events(&client).await;
    assert!(
        published.contains(&("Warning".into(), "Sha1Allowed".into())),
        "{published:?}"
    );

    // Nothing changed: no second Event.
    reconcile(&client, &ctx).await;
    let again = events(&client).await;
    assert_eq!(again.len(), published.len(), "{again:?}");

    // Turned off: the condition flips, a Normal Event says so, Ready stays.
    Api::<SsoConfig>::namespaced(client.clone(), NS)
        .patch(
            "hr",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"saml": {"allowSha1": false}}})),
        )
        .await
        .expect("turn off");
    let config = reconcile(&client, &ctx).await;
    let insecure = condition(&config, INSECURE_ALGORITHMS_ALLOWED);
    assert_eq!(
        (insecure.status.as_str(), insecure.reason.as_str()),
        ("False", "Sha1Refused")
    );
    assert_eq!(condition(&config, READY).status, "True");
    let after = events(&client).await;
    // Other Events of the same reconcile (`Reconciled`) come too, in no order the list keeps.
    let allowed = after
        .iter()
        .position(|e| *e == ("Warning".into(), "Sha1Allowed".into()));
    let refused = after
        .iter()
        .position(|e| *e == ("Normal".into(), "Sha1Refused".into()));
    assert!(
        allowed.is_some() && refused.is_some(),
        "the Warning when it was turned on, a Normal Sha1Refused Event now: {after:?}"
    );
}
