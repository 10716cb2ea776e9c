//! Self-managed webhook certificates against an in-memory Kubernetes API (kube-fake-client):
//! the Secret is created once and adopted by other replicas, renewed when due, and the CA is
//! written into the MutatingWebhookConfiguration's `caBundle`.

use gatehouse_operator::webhook::certs::{
    self, CaBundleSync, CertManager, Renewal, WebhookCerts, dns_names,
};
use gatehouse_operator::webhook::registration::{self, Registration};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube_fake_client::ClientBuilder;
use time::OffsetDateTime;

const NAMESPACE: &str = "gatehouse-system";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn manager(with_configuration: bool) -> CertManager {
    let mut builder = ClientBuilder::new();
    if with_configuration {
        // As the chart installs it: no caBundle.
        builder = builder.with_object(registration::mutating_webhook_configuration(
            &Registration::new(NAMESPACE),
        ));
    }
    let client = builder.build().await.expect("fake client");
    CertManager::new(client, Registration::new(NAMESPACE))
}

async fn stored(manager: &CertManager) -> WebhookCerts {
    let secret: Secret = manager
        .secrets
        .get(&manager.secret_name)
        .await
        .expect("Secret exists");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    WebhookCerts::from_secret(&secret).expect("complete Secret")
}

#[tokio::test]
async fn the_first_replica_creates_the_secret_and_the_next_adopts_it() {
    let first = manager(false).await;
    let created = first.ensure(now()).await.expect("created");
    assert_eq!(stored(&first).await, created);
    let dns = dns_names("gatehouse-webhook", NAMESPACE);
    assert_eq!(
        certs::renewal_needed(&created, &dns, now(), &first.lifetimes),
        Renewal::None
    );
    // Another replica (same API) finds it and changes nothing.
    let second = CertManager { ..first.clone() };
    let adopted = second.ensure(now()).await.expect("adopted");
    assert_eq!(adopted, created);
}

#[tokio::test]
async fn a_certificate_close_to_expiry_is_renewed_under_the_same_ca() {
    let manager = manager(false).await;
    let created = manager.ensure(now()).await.expect("created");
    let later = now() + time::Duration::days(300);
    let renewed = manager.ensure(later).await.expect("renewed");
    assert_eq!(renewed.ca_cert, created.ca_cert, "CA kept");
    assert_ne!(renewed.cert, created.cert, "new serving certificate");
    assert_eq!(stored(&manager).await, renewed);
}

#[tokio::test]
async fn a_damaged_secret_is_replaced() {
    let manager = manager(false).await;
    manager.ensure(now()).await.expect("created");
    let mut secret: Secret = manager
        .secrets
        .get(&manager.secret_name)
        .await
        .expect("get");
    secret.data.as_mut().expect("data").insert(
        "tls.key".into(),
        k8s_openapi::ByteString(b"garbage".to_vec()),
    );
    manager
        .secrets
        .replace(&manager.secret_name, &Default::default(), &secret)
        .await
        .expect("damage it");
    let repaired = manager.ensure(now()).await.expect("repaired");
    assert!(gatehouse_operator::webhook::tls::certified_key(&repaired.serving()).is_ok());
}

#[tokio::test]
async fn the_ca_bundle_is_written_into_the_registration_once() {
    let manager = manager(true).await;
    let certs = manager.ensure(now()).await.expect("created");
    let bundle = certs.ca_bundle(now());
    assert_eq!(
        manager.sync_ca_bundle(&bundle).await.expect("patched"),
        CaBundleSync::Updated
    );
    let webhooks: Api<MutatingWebhookConfiguration> = manager.webhooks.clone();
    let configuration = webhooks
        .get("gatehouse-webhook")
        .await
        .expect("configuration");
    let ca = configuration.webhooks.expect("webhooks")[0]
        .client_config
        .ca_bundle
        .clone()
        .expect("caBundle set");
    assert_eq!(ca.0, bundle.as_bytes());
    assert_eq!(
        manager.sync_ca_bundle(&bundle).await.expect("checked"),
        CaBundleSync::Unchanged
    );
}

#[tokio::test]
async fn a_missing_registration_is_reported_not_created() {
    let manager = manager(false).await;
    let certs = manager.ensure(now()).await.expect("created");
    assert_eq!(
        manager
            .sync_ca_bundle(&certs.ca_bundle(now()))
            .await
            .expect("checked"),
        CaBundleSync::ConfigurationMissing
    );
}

/// The SsoConfig CRD's conversion webhook trusts the same CA: written once, then left alone;
/// refreshed with the MutatingWebhookConfiguration's.
#[tokio::test]
async fn the_ca_bundle_is_written_into_the_sso_config_conversion_webhook() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let client = ClientBuilder::new()
        .with_object(registration::mutating_webhook_configuration(
            &Registration::new(NAMESPACE),
        ))
        .with_object(gatehouse_crds::sso_config_crd())
        .build()
        .await
        .expect("fake client");
    let manager = CertManager::new(client, Registration::new(NAMESPACE));
    let crd_of = || async {
        let crds: Api<CustomResourceDefinition> = manager.crds.clone();
        crds.get("ssoconfigs.gatehouse.dev").await.expect("CRD")
    };
    let ca_of = |crd: &CustomResourceDefinition| {
        crd.spec
            .conversion
            .as_ref()
            .and_then(|c| c.webhook.as_ref())
            .and_then(|w| w.client_config.as_ref())
            .and_then(|c| c.ca_bundle.clone())
    };
    assert_eq!(
        ca_of(&crd_of().await),
        None,
        "the manifests carry no caBundle"
    );

    let certs = manager.ensure(now()).await.expect("created");
    let bundle = certs.ca_bundle(now());
    assert_eq!(
        manager
            .sync_conversion_ca_bundle(&bundle)
            .await
            .expect("patched"),
        CaBundleSync::Updated
    );
    let crd = crd_of().await;
    assert_eq!(ca_of(&crd).map(|b| b.0), Some(bundle.as_bytes().to_vec()));
    // Only the caBundle changed: the Service stays what the chart wrote.
    let service = crd
        .spec
        .conversion
        .as_ref()
        .and_then(|c| c.webhook.as_ref())
        .and_then(|w| w.client_config.as_ref())
        .and_then(|c| c.service.as_ref())
        .expect("service");
    assert_eq!(service.path.as_deref(), Some("/convert"));
    assert_eq!(
        manager
            .sync_conversion_ca_bundle(&bundle)
            .await
            .expect("checked"),
        CaBundleSync::Unchanged
    );

    // A renewed CA (rollover) reaches both registrations in one refresh.
    let cert =
        gatehouse_operator::webhook::tls::ReloadableCert::new(certs.serving()).expect("cert");
    let rolled_over = now() + time::Duration::days(365 * 9 + 200);
    manager
        .refresh(&cert, rolled_over)
        .await
        .expect("refreshed");
    let new_bundle = manager
        .ensure(rolled_over)
        .await
        .expect("current")
        .ca_bundle(rolled_over);
    assert_ne!(new_bundle, bundle, "the CA rolled over");
    assert_eq!(
        ca_of(&crd_of().await).map(|b| b.0),
        Some(new_bundle.as_bytes().to_vec())
    );
}

#[tokio::test]
async fn a_missing_or_webhookless_sso_config_crd_is_reported_not_created() {
    let manager = manager(true).await;
    let certs = manager.ensure(now()).await.expect("created");
    assert_eq!(
        manager
            .sync_conversion_ca_bundle(&certs.ca_bundle(now()))
            .await
            .expect("checked"),
        CaBundleSync::ConfigurationMissing
    );
    // A CRD without a conversion webhook (strategy None) is not patched.
    let mut crd = gatehouse_crds::sso_config_crd();
    crd.spec.conversion = None;
    let client = ClientBuilder::new()
        .with_object(crd)
        .build()
        .await
        .expect("fake client");
    let manager = CertManager::new(client, Registration::new(NAMESPACE));
    let certs = manager.ensure(now()).await.expect("created");
    assert_eq!(
        manager
            .sync_conversion_ca_bundle(&certs.ca_bundle(now()))
            .await
            .expect("checked"),
        CaBundleSync::ConfigurationMissing
    );
}
