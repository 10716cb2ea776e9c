//! The webhook server under real TLS, with a real HTTP client that trusts only the webhook's own
//! CA: answers, refusals with Events, dry runs, idempotence, certificate rotation, and the
//! protections of the listener. Latency is printed (`--nocapture`), not asserted.

mod webhook_common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use gatehouse_operator::inject::SidecarDefaults;
use gatehouse_operator::webhook::admission::Denial;
use gatehouse_operator::webhook::certs::{self, Lifetimes, Renewal, WebhookCerts};
use gatehouse_operator::webhook::tls::{self, ReloadableCert};
use gatehouse_operator::webhook::{self, ConfigCache, DenialEvents, WebhookState};
use kube::runtime::reflector;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use webhook_common::{configs, guarded_store, request};

const HOST: &str = "gatehouse-webhook.gatehouse-system.svc";

#[derive(Default)]
struct RecordedEvents(Mutex<Vec<Denial>>);

impl DenialEvents for RecordedEvents {
    fn record(&self, denial: Denial) {
        self.0.lock().expect("lock").push(denial);
    }
}

impl RecordedEvents {
    fn taken(&self) -> Vec<Denial> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

struct Webhook {
    addr: SocketAddr,
    cert: Arc<ReloadableCert>,
    events: Arc<RecordedEvents>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _writer: reflector::store::Writer<kube::core::DeserializeGuard<gatehouse_crds::SsoConfig>>,
}

fn issue() -> WebhookCerts {
    certs::issue(
        None,
        Renewal::All,
        &certs::dns_names("gatehouse-webhook", "gatehouse-system"),
        time::OffsetDateTime::now_utc(),
        &Lifetimes::default(),
    )
    .expect("certificates")
}

async fn start(certs: &WebhookCerts, synced: bool) -> Webhook {
    let (store, writer) = if synced {
        guarded_store(configs())
    } else {
        let (store, writer) = reflector::store();
        (store, writer)
    };
    let events = Arc::new(RecordedEvents::default());
    let state = WebhookState {
        configs: ConfigCache::new(store),
        defaults: Arc::new(SidecarDefaults::default()),
        events: events.clone(),
    };
    let cert = ReloadableCert::new(certs.serving()).expect("serving certificate");
    let config = tls::server_config(cert.clone()).expect("TLS config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(webhook::serve(
        listener,
        config,
        webhook::router(state),
        async move {
            let _ = stopped.await;
        },
    ));
    Webhook {
        addr,
        cert,
        events,
        _shutdown: shutdown,
        _writer: writer,
    }
}

fn client(ca_pem: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM")])
        .resolve(HOST, addr)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn url(addr: SocketAddr) -> String {
    format!("https://{HOST}:{}/mutate-pods", addr.port())
}

async fn post(client: &reqwest::Client, addr: SocketAddr, body: Vec<u8>) -> (u16, Value) {
    let response = client
        .post(url(addr))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request over TLS");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn patch_ops(review: &Value) -> Vec<Value> {
    let encoded = review["response"]["patch"].as_str().expect("base64 patch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("JSON patch")
}

#[tokio::test]
async fn labelled_pods_are_injected_over_tls() {
    let certs = issue();
    let hook = start(&certs, true).await;
    let client = client(&certs.ca_cert, hook.addr);

    let (status, review) = post(&client, hook.addr, request("plain-pod")).await;
    assert_eq!(status, 200);
    assert_eq!(
        review["response"]["uid"],
        "1f0e8c2a-0001-4000-8000-000000000001"
    );
    assert_eq!(review["response"]["allowed"], true);
    assert_eq!(review["response"]["patchType"], "JSONPatch");
    let ops = patch_ops(&review);
    assert!(
        ops.iter().any(|op| op["path"] == "/spec/initContainers" && op["value"][0]["name"] == "gatehouse"),
        "{ops:?}"
    );
    assert!(
        hook.events.taken().is_empty(),
        "no Event for an injected pod"
    );

    // Measured latency (printed, not asserted): sequential requests on one kept-alive connection.
    let mut timings = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let (status, _) = post(&client, hook.addr, request("deployment-pod")).await;
        timings.push(started.elapsed());
        assert_eq!(status, 200);
    }
    timings.sort();
    println!(
        "webhook latency over TLS (50 requests): p50 {:?}, p95 {:?}, max {:?} (timeoutSeconds is 5 s)",
        timings[25], timings[47], timings[49]
    );
}

#[tokio::test]
async fn missing_and_unready_configs_are_refused_with_an_event() {
    let certs = issue();
    let hook = start(&certs, true).await;
    let client = client(&certs.ca_cert, hook.addr);

    let (status, review) = post(&client, hook.addr, request("config-missing")).await;
    assert_eq!(status, 200, "a refusal is an answer, not an HTTP error");
    assert_eq!(review["response"]["allowed"], false);
    assert_eq!(review["response"]["status"]["code"], 403);
    let message = review["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("SsoConfig \"portl\" not found in namespace \"team-a\""),
        "{message}"
    );
    let events = hook.events.taken();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].refusal.reason(), "SsoConfigNotFound");
    assert_eq!(
        events[0].regarding.kind.as_deref(),
        Some("ReplicaSet"),
        "about the pod's controller"
    );

    let (_, review) = post(&client, hook.addr, request("config-not-ready")).await;
    assert_eq!(review["response"]["allowed"], false);
    let message = review["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("is not Ready") && message.contains("Secret broken-okta not found"),
        "{message}"
    );
    let events = hook.events.taken();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].regarding.kind.as_deref(), Some("SsoConfig"));
    assert_eq!(events[0].regarding.name.as_deref(), Some("broken"));
}

#[tokio::test]
async fn dry_runs_get_the_same_answer_without_an_event() {
    let certs = issue();
    let hook = start(&certs, true).await;
    let client = client(&certs.ca_cert, hook.addr);
    let (_, real) = post(&client, hook.addr, request("config-missing")).await;
    hook.events.taken();
    let (_, dry) = post(&client, hook.addr, request("config-missing-dry-run")).await;
    assert_eq!(dry["response"]["allowed"], false);
    assert_eq!(dry["response"]["status"], real["response"]["status"]);
    assert!(hook.events.taken().is_empty(), "dry runs leave no Event");
}

#[tokio::test]
async fn injected_pods_are_not_patched_twice() {
    let certs = issue();
    let hook = start(&certs, true).await;
    let client = client(&certs.ca_cert, hook.addr);
    let (_, review) = post(&client, hook.addr, request("already-injected")).await;
    assert_eq!(review["response"]["allowed"], true);
    assert!(review["response"].get("patch").is_none(), "{review}");

    // The pod the first answer produces, sent again, gets no patch either.
    let (_, first) = post(&client, hook.addr, request("plain-pod")).await;
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(patch_ops(&first))).expect("patch");
    let mut again: Value = serde_json::from_slice(&request("plain-pod")).expect("json");
    json_patch::patch(&mut again["request"]["object"], &patch).expect("applies");
    let (_, second) = post(
        &client,
        hook.addr,
        serde_json::to_vec(&again).expect("json"),
    )
    .await;
    assert_eq!(second["response"]["allowed"], true);
    assert!(second["response"].get("patch").is_none(), "{second}");
}

#[tokio::test]
async fn clients_that_do_not_trust_the_ca_cannot_talk_to_it() {
    let certs = issue();
    let hook = start(&certs, true).await;
    let stranger = client(&issue().ca_cert, hook.addr);
    let error = stranger
        .post(url(hook.addr))
        .body(request("plain-pod"))
        .send()
        .await
        .expect_err("handshake must fail");
    assert!(error.is_connect() || error.is_request(), "{error:?}");
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let first = issue();
    let hook = start(&first, true).await;
    let (status, _) = post(
        &client(&first.ca_cert, hook.addr),
        hook.addr,
        request("plain-pod"),
    )
    .await;
    assert_eq!(status, 200);

    // Renewal under the same CA: clients keep working.
    let dns = certs::dns_names("gatehouse-webhook", "gatehouse-system");
    let renewed = certs::issue(
        Some(&first),
        Renewal::Serving,
        &dns,
        time::OffsetDateTime::now_utc(),
        &Lifetimes::default(),
    )
    .expect("renewed");
    assert!(hook.cert.replace(renewed.serving()).expect("valid pair"));
    let (status, _) = post(
        &client(&first.ca_cert, hook.addr),
        hook.addr,
        request("plain-pod"),
    )
    .await;
    assert_eq!(status, 200);

    // A certificate from another CA: new connections present it at once.
    let other = issue();
    assert!(hook.cert.replace(other.serving()).expect("valid pair"));
    let old_trust = client(&first.ca_cert, hook.addr);
    assert!(
        old_trust
            .post(url(hook.addr))
            .body(request("plain-pod"))
            .send()
            .await
            .is_err()
    );
    let (status, _) = post(
        &client(&other.ca_cert, hook.addr),
        hook.addr,
        request("plain-pod"),
    )
    .await;
    assert_eq!(status, 200);
    // Replacing with what is served is a no-op.
    assert!(!hook.cert.replace(other.serving()).expect("valid pair"));
}

#[tokio::test]
async fn before_the_cache_is_loaded_requests_fail_instead_of_guessing() {
    let certs = issue();
    let hook = start(&certs, false).await;
    let started = Instant::now();
    let (status, body) = post(
        &client(&certs.ca_cert, hook.addr),
        hook.addr,
        request("plain-pod"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within the API server's timeout"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let certs = issue();
    let hook = start(&certs, true).await;
    let body = vec![b' '; webhook::BODY_LIMIT + 1];
    let (status, _) = post(&client(&certs.ca_cert, hook.addr), hook.addr, body).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let certs = issue();
    let hook = start(&certs, true).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(certs.ca_cert.as_bytes()) {
        roots.add(cert.expect("CA")).expect("root");
    }
    use rustls::pki_types::pem::PemObject as _;
    let config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(hook.addr)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from(HOST).expect("name");
    let mut stream = connector.connect(name, tcp).await.expect("TLS handshake");
    stream
        .write_all(b"POST /mutate-pods HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("partial headers");
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server closes the connection instead of waiting forever"
    );
    assert!(started.elapsed() >= webhook::READ_TIMEOUT - Duration::from_millis(500));
}

async fn convert(client: &reqwest::Client, addr: SocketAddr, review: &Value) -> (u16, Value) {
    let response = client
        .post(format!("https://{HOST}:{}/convert", addr.port()))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(review).expect("json"))
        .send()
        .await
        .expect("request over TLS");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

fn conversion_review(desired: &str, objects: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "8c0f1c5e-1111-4a2b-9c3d-000000000001", "desiredAPIVersion": desired, "objects": objects}
    })
}

/// The API server reads SsoConfigs stored as v1alpha1 through `/convert`, the operator's own
/// SsoConfig watch included: so it is answered over the same TLS listener before the cache has
/// loaded anything (the cache's list may be what needs the conversion).
#[tokio::test]
async fn conversion_reviews_are_answered_over_tls_without_the_cache() {
    let certs = issue();
    let hook = start(&certs, false).await;
    let client = client(&certs.ca_cert, hook.addr);
    let provider = |id: &str| {
        serde_json::json!({"id": id, "displayName": id, "issuer": format!("https://{id}.example/"), "orgId": "acme",
                           "roleClaim": "groups", "defaultRole": "member", "clientSecretRef": {"name": id}})
    };
    let stored = serde_json::json!({
        "apiVersion": "gatehouse.dev/v1alpha2", "kind": "SsoConfig",
        "metadata": {"name": "portal", "namespace": "team-a", "uid": "u-1", "resourceVersion": "42"},
        "spec": {"protocol": "oidc", "publicUrl": "https://portal.example.com",
                 "providers": {"oidc": [provider("auth0"), provider("google"), provider("keycloak")]}},
        "status": {"observedGeneration": 4}
    });

    // A v1alpha1 client reads it: the first provider as the object, every one in the annotation.
    let (status, answer) = convert(
        &client,
        hook.addr,
        &conversion_review("gatehouse.dev/v1alpha1", vec![stored.clone()]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "ConversionReview");
    let response = &answer["response"];
    assert_eq!(response["uid"], "8c0f1c5e-1111-4a2b-9c3d-000000000001");
    assert_eq!(response["result"]["status"], "Success", "{answer}");
    let old = response["convertedObjects"][0].clone();
    assert_eq!(old["apiVersion"], "gatehouse.dev/v1alpha1");
    assert_eq!(old["spec"]["providers"]["oidc"], provider("auth0"));
    assert_eq!(old["metadata"]["uid"], "u-1");
    assert_eq!(old["status"], stored["status"]);

    // It writes it back: the API server converts to v1alpha2 and nothing is lost.
    let (status, answer) = convert(
        &client,
        hook.addr,
        &conversion_review("gatehouse.dev/v1alpha2", vec![old]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["convertedObjects"][0], stored);

    // A version this operator does not know: a failed result that says which.
    let (status, answer) = convert(
        &client,
        hook.addr,
        &conversion_review("gatehouse.dev/v1beta1", vec![stored]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["result"]["status"], "Failure");
    let message = answer["response"]["result"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("\"gatehouse.dev/v1beta1\""), "{message}");

    // The admission route still waits for the cache (it cannot tell a missing config yet).
    let (status, _) = post(&client, hook.addr, request("plain-pod")).await;
    assert_eq!(status, 503);
}
