//! The controllers against an in-memory API server (kube-fake-client): what a reconcile creates,
//! that a second one changes nothing, Secret rotation, missing Secrets and keys, a 409 in the
//! middle, cross-namespace references, and the cookie key that is never overwritten.
//!
//! What the in-memory API cannot show (real server-side apply field ownership and removal of
//! fields, CEL admission, garbage collection by the real controller, Lease contention across
//! processes) is covered by `tests/cluster.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_crds::{SsoConfig, SsoUser};
use gatehouse_operator::conditions::{READY, SECRETS_RESOLVED, VALID};
use gatehouse_operator::controllers::{self, Context, sso_config, sso_user, token_review};
use gatehouse_operator::metrics::Metrics;
use gatehouse_operator::{Error, validate};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::{Api, Client, Resource};
use kube_fake_client::{ClientBuilder, interceptor};
use serde_json::{Value, json};

const NS: &str = "team-a";

fn config(yaml: &str) -> SsoConfig {
    serde_saphyr::from_str(yaml).expect("fixture parses")
}

const PORTAL: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal, namespace: team-a}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com
  providers:
    okta: {issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {name: portal-okta}}
"#;

fn secret(ns: &str, name: &str, pairs: &[(&str, &str)]) -> Secret {
    let mut s = Secret::default();
    s.metadata.name = Some(name.into());
    s.metadata.namespace = Some(ns.into());
    s.data = Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect(),
    );
    s
}

fn okta_secret(client_secret: &str) -> Secret {
    secret(
        NS,
        "portal-okta",
        &[("client-id", "okta-id"), ("client-secret", client_secret)],
    )
}

fn builder() -> ClientBuilder {
    ClientBuilder::new()
        .with_resource::<SsoConfig>()
        .with_resource::<SsoUser>()
        .with_status_subresource::<SsoConfig>()
        .with_status_subresource::<SsoUser>()
}

fn context(client: &Client) -> Arc<Context> {
    Arc::new(Context::new(
        client.clone(),
        controllers::reporter(Some("test".into())),
        Arc::new(Metrics::default()),
    ))
}

async fn get_config(client: &Client, name: &str) -> Arc<SsoConfig> {
    let api: Api<SsoConfig> = Api::namespaced(client.clone(), NS);
    Arc::new(api.get(name).await.expect("config exists"))
}

/// Reconcile the stored object, as the controller would after a watch event.
async fn reconcile(client: &Client, ctx: &Arc<Context>, name: &str) -> Result<Action, Error> {
    let config = get_config(client, name).await;
    tokio::time::timeout(
        Duration::from_secs(10),
        sso_config::reconcile(config, ctx.clone()),
    )
    .await
    .expect("reconcile finishes")
}

fn condition<'a>(config: &'a SsoConfig, type_: &str) -> &'a Condition {
    config
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .unwrap_or_else(|| panic!("condition {type_} missing"))
}

fn env_of(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).expect("utf-8")))
        .collect()
}

async fn get_secret(client: &Client, name: &str) -> Option<Secret> {
    Api::<Secret>::namespaced(client.clone(), NS)
        .get_opt(name)
        .await
        .expect("API answers")
}

async fn events(client: &Client) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("events list")
        .items
}

/// Every object the operator writes for `portal`, as JSON, without the fields the API server
/// changes on every write.
async fn snapshot(client: &Client) -> Vec<Value> {
    let strip = |mut v: Value| {
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
            meta.remove("generation");
        }
        v
    };
    let mut out = Vec::new();
    for name in [
        "portal-gatehouse-env",
        "portal-gatehouse-cookie",
        "portal-gatehouse-token",
    ] {
        out.push(strip(json!(get_secret(client, name).await)));
    }
    let sa = Api::<ServiceAccount>::namespaced(client.clone(), NS)
        .get("portal-gatehouse")
        .await
        .expect("sa");
    out.push(strip(json!(sa)));
    let role = Api::<Role>::namespaced(client.clone(), NS)
        .get("portal-gatehouse")
        .await
        .expect("role");
    out.push(strip(json!(role)));
    let rb = Api::<RoleBinding>::namespaced(client.clone(), NS)
        .get("portal-gatehouse")
        .await
        .expect("rb");
    out.push(strip(json!(rb)));
    let np = Api::<NetworkPolicy>::namespaced(client.clone(), NS)
        .get("portal-gatehouse")
        .await
        .expect("np");
    out.push(strip(json!(np)));
    let cfg = get_config(client, "portal").await;
    out.push(strip(json!(*cfg)));
    out
}

#[tokio::test]
async fn first_reconcile_creates_everything_owned_and_ready() {
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("s3cret"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let action = reconcile(&client, &ctx, "portal")
        .await
        .expect("reconciles");
    assert_eq!(action, Action::requeue(Duration::from_secs(30 * 60)));

    let cfg = get_config(&client, "portal").await;
    let uid = cfg.metadata.uid.clone().expect("uid");
    let owned = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        let owner = &meta.owner_references.as_ref().expect("owner refs")[0];
        assert_eq!(owner.uid, uid, "{:?} is owned by the config", meta.name);
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            meta.labels.as_ref().expect("labels")["gatehouse.dev/config"],
            "portal"
        );
    };

    let env = get_secret(&client, "portal-gatehouse-env")
        .await
        .expect("env Secret");
    owned(&env.metadata);
    let vars = env_of(&env);
    assert_eq!(vars["OKTA_CLIENT_SECRET"], "s3cret");
    assert_eq!(vars["OKTA_CLIENT_ID"], "okta-id");
    assert_eq!(vars["GATEHOUSE_CONFIG_UID"], uid);
    assert_eq!(vars["GATEHOUSE_NAMESPACE"], NS);
    let cookie = get_secret(&client, "portal-gatehouse-cookie")
        .await
        .expect("cookie Secret");
    owned(&cookie.metadata);
    let key = env_of(&cookie)["cookie-secret"].clone();
    assert_eq!(vars["GATEHOUSE_COOKIE_SECRET"], key);
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .expect("base64 key");
    assert_eq!(raw.len(), 32);
    let token = get_secret(&client, "portal-gatehouse-token")
        .await
        .expect("token Secret");
    owned(&token.metadata);
    owned(
        &Api::<ServiceAccount>::namespaced(client.clone(), NS)
            .get("portal-gatehouse")
            .await
            .expect("sa")
            .metadata,
    );
    owned(
        &Api::<Role>::namespaced(client.clone(), NS)
            .get("portal-gatehouse")
            .await
            .expect("role")
            .metadata,
    );
    owned(
        &Api::<RoleBinding>::namespaced(client.clone(), NS)
            .get("portal-gatehouse")
            .await
            .expect("rb")
            .metadata,
    );
    owned(
        &Api::<NetworkPolicy>::namespaced(client.clone(), NS)
            .get("portal-gatehouse")
            .await
            .expect("np")
            .metadata,
    );

    let ready = condition(&cfg, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Reconciled")
    );
    assert_eq!(condition(&cfg, VALID).status, "True");
    assert_eq!(condition(&cfg, SECRETS_RESOLVED).status, "True");
    let status = cfg.status.as_ref().expect("status");
    assert_eq!(status.env_secret.as_deref(), Some("portal-gatehouse-env"));
    assert_eq!(status.observed_generation, cfg.metadata.generation);
    assert_eq!(
        status.callback_urls["okta"],
        "https://portal.example.com/api/auth/oauth2/callback/okta"
    );
    assert_eq!(status.users, Some(0));

    let published = events(&client).await;
    assert_eq!(published.len(), 1, "one Event for becoming ready");
    assert_eq!(published[0].reason.as_deref(), Some("Reconciled"));

    // Secret values never reach status or Events.
    let visible = format!("{:?}{:?}", cfg.status, published);
    assert!(!visible.contains("s3cret") && !visible.contains(&key));
}

#[tokio::test]
async fn second_reconcile_changes_nothing() {
    let status_writes = Arc::new(AtomicUsize::new(0));
    let counter = status_writes.clone();
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("s3cret"))
        .with_interceptor_funcs(interceptor::Funcs::new().patch_status(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    reconcile(&client, &ctx, "portal").await.expect("first");
    let before = snapshot(&client).await;
    let config_version = get_config(&client, "portal")
        .await
        .metadata
        .resource_version
        .clone();
    assert_eq!(status_writes.load(Ordering::SeqCst), 1);

    reconcile(&client, &ctx, "portal").await.expect("second");
    let after = snapshot(&client).await;
    assert_eq!(before, after, "a second reconcile changes no object");
    assert_eq!(
        get_config(&client, "portal")
            .await
            .metadata
            .resource_version,
        config_version,
        "status is not rewritten when nothing changed"
    );
    assert_eq!(status_writes.load(Ordering::SeqCst), 1);
    assert_eq!(
        events(&client).await.len(),
        1,
        "no Event without a transition"
    );
}

#[tokio::test]
async fn secret_rotation_re_renders_the_env_secret() {
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("old-secret"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    reconcile(&client, &ctx, "portal").await.expect("first");
    let before = get_secret(&client, "portal-gatehouse-env")
        .await
        .expect("env");
    let cookie_before = get_secret(&client, "portal-gatehouse-cookie")
        .await
        .expect("cookie");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .patch(
            "portal-okta",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"stringData": null, "data": {"client-secret": "bmV3LXNlY3JldA=="}}),
            ),
        )
        .await
        .expect("rotate");
    reconcile(&client, &ctx, "portal")
        .await
        .expect("after rotation");

    let after = get_secret(&client, "portal-gatehouse-env")
        .await
        .expect("env");
    assert_eq!(env_of(&after)["OKTA_CLIENT_SECRET"], "new-secret");
    let hash = |s: &Secret| {
        s.metadata.annotations.clone().unwrap_or_default()["gatehouse.dev/config-hash"].clone()
    };
    assert_ne!(
        hash(&before),
        hash(&after),
        "the content hash follows the values"
    );
    let cookie_after = get_secret(&client, "portal-gatehouse-cookie")
        .await
        .expect("cookie");
    assert_eq!(
        cookie_before.data, cookie_after.data,
        "rotation leaves the cookie key alone"
    );

    // The Secret watch maps the rotated Secret to this config.
    let configs = [get_config(&client, "portal").await];
    let rotated = secrets.get("portal-okta").await.expect("secret");
    let refs =
        sso_config::configs_for_secret(&rotated.metadata, configs.iter().map(|c| c.as_ref()));
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].name, "portal");
}

#[tokio::test]
async fn missing_secret_then_missing_key_are_named_and_retried() {
    let client = builder()
        .with_object(config(PORTAL))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let error = reconcile(&client, &ctx, "portal")
        .await
        .expect_err("Secret missing");
    assert!(matches!(error, Error::SecretsUnresolved(_)), "{error}");
    let guard = Arc::new(DeserializeGuard(Ok(
        (*get_config(&client, "portal").await).clone()
    )));
    assert_eq!(
        sso_config::error_policy(guard.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        sso_config::error_policy(guard, &error, ctx.clone()),
        Action::requeue(Duration::from_secs(10)),
        "backoff grows"
    );

    let cfg = get_config(&client, "portal").await;
    let ready = condition(&cfg, READY);
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "SecretsUnresolved")
    );
    assert!(
        ready
            .message
            .contains("Secret \"portal-okta\" not found in namespace team-a"),
        "{}",
        ready.message
    );
    let resolved = condition(&cfg, SECRETS_RESOLVED);
    assert_eq!(
        (resolved.status.as_str(), resolved.reason.as_str()),
        ("False", "SecretNotFound")
    );
    assert_eq!(condition(&cfg, VALID).status, "True");
    assert!(get_secret(&client, "portal-gatehouse-env").await.is_none());
    assert!(
        get_secret(&client, "portal-gatehouse-cookie")
            .await
            .is_none(),
        "nothing is generated for a config that cannot render"
    );
    let warning = events(&client).await;
    assert_eq!(warning.len(), 1);
    assert_eq!(warning[0].type_.as_deref(), Some("Warning"));

    // The Secret appears without the client-secret key.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &secret(NS, "portal-okta", &[("client-id", "okta-id")]),
        )
        .await
        .expect("create");
    let error = reconcile(&client, &ctx, "portal")
        .await
        .expect_err("key missing");
    assert!(matches!(error, Error::SecretsUnresolved(_)));
    let cfg = get_config(&client, "portal").await;
    let resolved = condition(&cfg, SECRETS_RESOLVED);
    assert_eq!(resolved.reason, "SecretKeyNotFound");
    assert!(
        resolved
            .message
            .contains("key \"client-secret\" not found in Secret \"portal-okta\""),
        "{}",
        resolved.message
    );

    // Fixed: Ready flips, with one more Event.
    secrets
        .replace(
            "portal-okta",
            &PostParams::default(),
            &okta_secret("s3cret"),
        )
        .await
        .expect("fix");
    reconcile(&client, &ctx, "portal").await.expect("fixed");
    let cfg = get_config(&client, "portal").await;
    assert_eq!(condition(&cfg, READY).status, "True");
    assert_eq!(events(&client).await.len(), 2, "not ready → ready");
}

#[tokio::test]
async fn invalid_spec_waits_for_a_change() {
    let bad = config(&PORTAL.replace("https://portal.example.com", "http://portal.example.com"));
    let client = builder()
        .with_object(bad)
        .with_object(okta_secret("s3cret"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let error = reconcile(&client, &ctx, "portal")
        .await
        .expect_err("invalid");
    assert!(matches!(error, Error::InvalidSpec(_)));
    let guard = Arc::new(DeserializeGuard(Ok(
        (*get_config(&client, "portal").await).clone()
    )));
    assert_eq!(
        sso_config::error_policy(guard, &error, ctx),
        Action::await_change()
    );
    let cfg = get_config(&client, "portal").await;
    let valid = condition(&cfg, VALID);
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(valid.message.contains(validate::MSG_PUBLIC_URL_HTTPS));
    assert_eq!(condition(&cfg, READY).reason, "InvalidSpec");
    assert!(get_secret(&client, "portal-gatehouse-env").await.is_none());
}

#[tokio::test]
async fn a_conflict_mid_apply_is_retried_without_corrupting_state() {
    let conflicts = Arc::new(AtomicUsize::new(0));
    let seen = conflicts.clone();
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("s3cret"))
        .with_interceptor_funcs(interceptor::Funcs::new().patch(move |ctx| {
            // The first apply of the env Secret meets a concurrent writer.
            if ctx.name == "portal-gatehouse-env" && seen.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(kube_fake_client::Error::Conflict(
                    "the object has been modified".into(),
                ));
            }
            Ok(None)
        }))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let error = reconcile(&client, &ctx, "portal").await.expect_err("409");
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.metric_label(), "kube_api");
    let guard = Arc::new(DeserializeGuard(Ok(
        (*get_config(&client, "portal").await).clone()
    )));
    assert_eq!(
        sso_config::error_policy(guard, &error, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    let cookie = get_secret(&client, "portal-gatehouse-cookie")
        .await
        .expect("cookie created");
    assert!(get_secret(&client, "portal-gatehouse-env").await.is_none());
    assert!(
        get_config(&client, "portal").await.status.is_none(),
        "no status is written from a half-done reconcile"
    );

    reconcile(&client, &ctx, "portal")
        .await
        .expect("retry succeeds");
    let env = get_secret(&client, "portal-gatehouse-env")
        .await
        .expect("env");
    assert_eq!(
        env_of(&env)["GATEHOUSE_COOKIE_SECRET"],
        env_of(&cookie)["cookie-secret"],
        "the retry reuses the key created by the failed attempt"
    );
    assert_eq!(
        get_secret(&client, "portal-gatehouse-cookie")
            .await
            .expect("cookie")
            .data,
        cookie.data
    );
    let cfg = get_config(&client, "portal").await;
    assert_eq!(condition(&cfg, READY).status, "True");
}

#[tokio::test]
async fn a_concurrently_created_cookie_secret_is_not_replaced() {
    let theirs = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let raced = Arc::new(AtomicUsize::new(0));
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("s3cret"))
        .with_interceptor_funcs(interceptor::Funcs::new().create(move |ctx| {
            // Another writer creates the cookie Secret between our read and our create.
            let name = ctx.object.pointer("/metadata/name").and_then(Value::as_str);
            if name == Some("portal-gatehouse-cookie") && raced.fetch_add(1, Ordering::SeqCst) == 0
            {
                ctx.client.create(
                    NS,
                    &secret(NS, "portal-gatehouse-cookie", &[("cookie-secret", theirs)]),
                    &PostParams::default(),
                )?;
                return Err(kube_fake_client::Error::AlreadyExists {
                    kind: "secrets".into(),
                    name: "portal-gatehouse-cookie".into(),
                    namespace: NS.into(),
                });
            }
            Ok(None)
        }))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let error = reconcile(&client, &ctx, "portal")
        .await
        .expect_err("409 on create");
    assert!(error.is_transient());
    assert!(get_secret(&client, "portal-gatehouse-env").await.is_none());

    reconcile(&client, &ctx, "portal")
        .await
        .expect("the retry reads the existing key");
    let cookie = get_secret(&client, "portal-gatehouse-cookie")
        .await
        .expect("cookie");
    assert_eq!(env_of(&cookie)["cookie-secret"], theirs);
    let env = get_secret(&client, "portal-gatehouse-env")
        .await
        .expect("env");
    assert_eq!(env_of(&env)["GATEHOUSE_COOKIE_SECRET"], theirs);
}

#[tokio::test]
async fn existing_cookie_secret_is_never_overwritten() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let writes = Arc::new(Mutex::new(Vec::<String>::new()));
    let (on_patch, on_create) = (writes.clone(), writes.clone());
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("s3cret"))
        .with_object(secret(
            NS,
            "portal-gatehouse-cookie",
            &[("cookie-secret", key)],
        ))
        .with_interceptor_funcs(
            interceptor::Funcs::new()
                .patch(move |ctx| {
                    on_patch.lock().expect("lock").push(ctx.name.to_string());
                    Ok(None)
                })
                .create(move |ctx| {
                    let name = ctx.object.pointer("/metadata/name").and_then(Value::as_str);
                    on_create
                        .lock()
                        .expect("lock")
                        .push(name.unwrap_or_default().to_string());
                    Ok(None)
                }),
        )
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    reconcile(&client, &ctx, "portal")
        .await
        .expect("reconciles");
    reconcile(&client, &ctx, "portal").await.expect("again");
    let cookie = get_secret(&client, "portal-gatehouse-cookie")
        .await
        .expect("cookie");
    assert_eq!(env_of(&cookie)["cookie-secret"], key);
    let env = get_secret(&client, "portal-gatehouse-env")
        .await
        .expect("env");
    assert_eq!(env_of(&env)["GATEHOUSE_COOKIE_SECRET"], key);
    assert!(
        !writes
            .lock()
            .expect("lock")
            .iter()
            .any(|n| n == "portal-gatehouse-cookie"),
        "no write ever targets the cookie Secret"
    );
}

#[tokio::test]
async fn secrets_of_other_namespaces_are_never_read() {
    // The Secret exists, but in another namespace: not found here.
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(secret(
            "team-b",
            "portal-okta",
            &[("client-id", "x"), ("client-secret", "other-team-secret")],
        ))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    reconcile(&client, &ctx, "portal")
        .await
        .expect_err("not found in team-a");
    let cfg = get_config(&client, "portal").await;
    assert!(
        condition(&cfg, READY)
            .message
            .contains("not found in namespace team-a")
    );

    // A reference naming a namespace is refused, not followed.
    let crossing = config(&PORTAL.replace(
        "clientSecretRef: {name: portal-okta}",
        "clientSecretRef: {name: portal-okta, namespace: team-b}",
    ));
    let client = builder()
        .with_object(crossing)
        .with_object(secret(
            "team-b",
            "portal-okta",
            &[("client-id", "x"), ("client-secret", "other-team-secret")],
        ))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let error = reconcile(&client, &ctx, "portal")
        .await
        .expect_err("refused");
    assert!(matches!(error, Error::InvalidSpec(_)));
    let cfg = get_config(&client, "portal").await;
    let valid = condition(&cfg, VALID);
    assert_eq!(valid.status, "False");
    assert!(
        valid.message.contains(validate::MSG_SECRET_NAMESPACE),
        "{}",
        valid.message
    );
    assert!(get_secret(&client, "portal-gatehouse-env").await.is_none());
    let all: Api<Secret> = Api::all(client.clone());
    let leaked = all.list(&ListParams::default()).await.expect("list");
    assert!(
        !format!("{:?}", cfg.status).contains("other-team-secret") && leaked.items.len() == 1,
        "nothing was rendered from team-b"
    );
}

#[tokio::test]
async fn disabling_the_network_policy_removes_it() {
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("s3cret"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    reconcile(&client, &ctx, "portal").await.expect("first");
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), NS);
    assert!(
        policies
            .get_opt("portal-gatehouse")
            .await
            .expect("get")
            .is_some()
    );

    let configs: Api<SsoConfig> = Api::namespaced(client.clone(), NS);
    configs
        .patch(
            "portal",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"networkPolicy": {"enabled": false}}})),
        )
        .await
        .expect("disable");
    reconcile(&client, &ctx, "portal").await.expect("second");
    assert!(
        policies
            .get_opt("portal-gatehouse")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn deleting_the_config_takes_its_objects_along() {
    // The in-memory API cascades like the garbage collector, by owner reference.
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("s3cret"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    reconcile(&client, &ctx, "portal")
        .await
        .expect("reconciles");
    Api::<SsoConfig>::namespaced(client.clone(), NS)
        .delete("portal", &DeleteParams::default())
        .await
        .expect("delete");
    for name in [
        "portal-gatehouse-env",
        "portal-gatehouse-cookie",
        "portal-gatehouse-token",
    ] {
        assert!(get_secret(&client, name).await.is_none(), "{name} is gone");
    }
    assert!(
        get_secret(&client, "portal-okta").await.is_some(),
        "the user's Secret stays"
    );
}

#[tokio::test]
async fn users_are_counted_per_config() {
    let user = |name: &str, config: &str| -> SsoUser {
        serde_saphyr::from_str(&format!(
            "{{apiVersion: gatehouse.dev/v1alpha1, kind: SsoUser, metadata: {{name: {name}, namespace: team-a}}, spec: {{config: {config}, provider: okta, subject: {name}}}}}"
        ))
        .expect("user")
    };
    let client = builder()
        .with_object(config(PORTAL))
        .with_object(okta_secret("s3cret"))
        .with_object(user("okta-1", "portal"))
        .with_object(user("okta-2", "portal"))
        .with_object(user("okta-3", "other"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    reconcile(&client, &ctx, "portal")
        .await
        .expect("reconciles");
    let cfg = get_config(&client, "portal").await;
    assert_eq!(cfg.status.as_ref().and_then(|s| s.users), Some(2));
}

#[tokio::test]
async fn sso_user_ready_follows_its_config_and_never_gets_a_finalizer() {
    let user: SsoUser = serde_saphyr::from_str(
        "{apiVersion: gatehouse.dev/v1alpha1, kind: SsoUser, metadata: {name: okta-1, namespace: team-a}, spec: {config: portal, provider: okta, subject: '00u1'}}",
    )
    .expect("user");
    let client = builder()
        .with_object(user)
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let users: Api<SsoUser> = Api::namespaced(client.clone(), NS);

    let stored = Arc::new(users.get("okta-1").await.expect("user"));
    sso_user::reconcile(stored, ctx.clone())
        .await
        .expect("reconciles");
    let stored = users.get("okta-1").await.expect("user");
    let ready = &stored.status.as_ref().expect("status").conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ConfigNotFound")
    );
    assert!(
        ready
            .message
            .contains("SsoConfig \"portal\" not found in namespace team-a")
    );
    assert!(stored.meta().finalizers.is_none());

    Api::<SsoConfig>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &config(PORTAL))
        .await
        .expect("config");
    sso_user::reconcile(Arc::new(stored), ctx.clone())
        .await
        .expect("reconciles");
    let stored = users.get("okta-1").await.expect("user");
    let ready = &stored.status.as_ref().expect("status").conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "ConfigFound")
    );
    assert!(stored.meta().finalizers.is_none());

    // Deletion is immediate: nothing of the operator's holds it.
    users
        .delete("okta-1", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(users.get_opt("okta-1").await.expect("get").is_none());
}

#[tokio::test]
async fn inactive_sso_users_are_deleted_and_declared_ones_kept() {
    let cfg = config(&PORTAL.replace(
        "  providers:",
        "  provisioning: {deleteAfterInactive: 2160h}\n  providers:",
    ));
    let user = |name: &str, source: Option<&str>, last_login: &str| -> SsoUser {
        let labels = source.map_or(String::new(), |s| {
            format!("labels: {{gatehouse.dev/source: {s}}}, ")
        });
        serde_saphyr::from_str(&format!(
            "{{apiVersion: gatehouse.dev/v1alpha1, kind: SsoUser, metadata: {{name: {name}, namespace: team-a, {labels}}}, spec: {{config: portal, provider: okta, subject: {name}}}, status: {{lastLogin: '{last_login}'}}}}"
        ))
        .expect("user")
    };
    let client = builder()
        .with_object(cfg)
        .with_object(user("okta-stale", Some("sso"), "2020-01-01T00:00:00Z"))
        .with_object(user("okta-declared", None, "2020-01-01T00:00:00Z"))
        .with_object(user(
            "okta-active",
            Some("sso"),
            &k8s_openapi::jiff::Timestamp::now().to_string(),
        ))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let users: Api<SsoUser> = Api::namespaced(client.clone(), NS);
    for name in ["okta-stale", "okta-declared", "okta-active"] {
        let stored = Arc::new(users.get(name).await.expect("user"));
        let action = sso_user::reconcile(stored, ctx.clone())
            .await
            .expect("reconciles");
        if name == "okta-active" {
            assert_ne!(
                action,
                Action::await_change(),
                "re-checked when it would expire"
            );
        }
    }
    assert!(
        users.get_opt("okta-stale").await.expect("get").is_none(),
        "inactive SSO user deleted"
    );
    assert!(
        users.get_opt("okta-declared").await.expect("get").is_some(),
        "declared user kept"
    );
    assert!(
        users.get_opt("okta-active").await.expect("get").is_some(),
        "active user kept"
    );
}

/// A user who signed in long ago and whose session the IdP has vouched for since (re-validation)
/// is active: `deleteAfterInactive` counts from `status.lastVouched`.
#[tokio::test]
async fn a_user_the_idp_vouched_for_recently_is_kept_though_the_sign_in_is_old() {
    let cfg = config(&PORTAL.replace(
        "  providers:",
        "  provisioning: {deleteAfterInactive: 12h}\n  providers:",
    ));
    let now = k8s_openapi::jiff::Timestamp::now();
    let user = |name: &str, last_vouched: &str| -> SsoUser {
        serde_saphyr::from_str(&format!(
            "{{apiVersion: gatehouse.dev/v1alpha1, kind: SsoUser, metadata: {{name: {name}, namespace: team-a, labels: {{gatehouse.dev/source: sso}}}}, spec: {{config: portal, provider: okta, subject: {name}}}, status: {{lastLogin: '2020-01-01T00:00:00Z', lastVouched: '{last_vouched}'}}}}"
        ))
        .expect("user")
    };
    let client = builder()
        .with_object(cfg)
        .with_object(user("okta-working", &now.to_string()))
        .with_object(user("okta-gone", "2020-01-02T00:00:00Z"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let users: Api<SsoUser> = Api::namespaced(client.clone(), NS);
    for name in ["okta-working", "okta-gone"] {
        let stored = Arc::new(users.get(name).await.expect("user"));
        sso_user::reconcile(stored, ctx.clone())
            .await
            .expect("reconciles");
    }
    assert!(
        users.get_opt("okta-working").await.expect("get").is_some(),
        "re-validated an instant ago: active, whatever lastLogin says"
    );
    assert!(
        users.get_opt("okta-gone").await.expect("get").is_none(),
        "not vouched for since 2020: deleted"
    );
}

/// `deleteAfterInactive` shorter than the session lifetime is refused at apply time; an object
/// that got past that (an older CRD) is reported on the SsoConfig and deletes nobody.
#[tokio::test]
async fn delete_after_inactive_shorter_than_the_session_ttl_is_reported_and_deletes_nobody() {
    let cfg = config(&PORTAL.replace(
        "  providers:",
        "  provisioning: {deleteAfterInactive: 1h}\n  providers:",
    ));
    let two_hours_ago =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(2);
    let user: SsoUser = serde_saphyr::from_str(&format!(
        "{{apiVersion: gatehouse.dev/v1alpha1, kind: SsoUser, metadata: {{name: okta-1, namespace: team-a, labels: {{gatehouse.dev/source: sso}}}}, spec: {{config: portal, provider: okta, subject: '00u1'}}, status: {{lastLogin: '{two_hours_ago}', lastVouched: '{two_hours_ago}'}}}}"
    ))
    .expect("user");
    let client = builder()
        .with_object(cfg)
        .with_object(okta_secret("s3cret"))
        .with_object(user)
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let error = reconcile(&client, &ctx, "portal")
        .await
        .expect_err("invalid");
    assert!(matches!(error, Error::InvalidSpec(_)), "{error:?}");
    let cfg = get_config(&client, "portal").await;
    let valid = condition(&cfg, VALID);
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        valid
            .message
            .contains("spec.provisioning.deleteAfterInactive: "),
        "{}",
        valid.message
    );
    assert!(
        valid
            .message
            .contains(gatehouse_crds::rules::MSG_DELETE_AFTER_INACTIVE_TTL),
        "{}",
        valid.message
    );

    // Signed in two hours ago with a 12-hour session (the default): not deleted by the 1h limit.
    let users: Api<SsoUser> = Api::namespaced(client.clone(), NS);
    let stored = Arc::new(users.get("okta-1").await.expect("user"));
    sso_user::reconcile(stored, ctx.clone())
        .await
        .expect("reconciles");
    assert!(users.get_opt("okta-1").await.expect("get").is_some());
}

const TOKEN_REVIEW_BINDING: &str = "gatehouse-token-review.team-a.portal";

/// PORTAL admitting ServiceAccount tokens, checked by TokenReview.
fn token_review_portal() -> SsoConfig {
    let mut c = config(PORTAL);
    c.spec.machine_auth = Some(
        serde_json::from_value(json!({"kubernetes": {
            "mode": "TokenReview",
            "audiences": ["gatehouse.dev/team-a/portal"],
            "serviceAccounts": [{"name": "ci/deployer", "role": "admin"}]
        }}))
        .expect("machineAuth"),
    );
    c
}

fn has_finalizer(config: &SsoConfig) -> bool {
    config
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == token_review::FINALIZER)
}

/// The in-memory API holding [`token_review_portal`] and its Secret, reconciled once.
async fn reconciled_token_review_portal() -> (Client, Arc<Context>, Api<ClusterRoleBinding>) {
    let client = builder()
        .with_object(token_review_portal())
        .with_object(okta_secret("s3cret"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    reconcile(&client, &ctx, "portal").await.expect("first");
    (client, ctx, bindings)
}

#[tokio::test]
async fn token_review_mode_binds_the_sidecar_to_auth_delegator_until_the_config_goes() {
    let (client, ctx, bindings) = reconciled_token_review_portal().await;
    let binding = bindings
        .get(TOKEN_REVIEW_BINDING)
        .await
        .expect("binding made");
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.name, "system:auth-delegator");
    let subjects = binding.subjects.expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, "portal-gatehouse");
    assert_eq!(subjects[0].namespace.as_deref(), Some(NS));
    let cfg = get_config(&client, "portal").await;
    assert!(has_finalizer(&cfg), "the finalizer guards the binding");
    let bound = condition(&cfg, "TokenReviewBound");
    assert_eq!(
        (bound.status.as_str(), bound.reason.as_str()),
        ("True", "Bound")
    );
    assert!(
        bound.message.contains(TOKEN_REVIEW_BINDING),
        "{}",
        bound.message
    );

    // Again: the same binding, one finalizer.
    reconcile(&client, &ctx, "portal").await.expect("second");
    let cfg = get_config(&client, "portal").await;
    assert_eq!(cfg.metadata.finalizers.as_ref().map(Vec::len), Some(1));

    // Deleted: the API server keeps a config with a finalizer, terminating, and the controller
    // gets it with its deletionTimestamp set. (The in-memory API deletes at once whatever the
    // finalizers, so the terminating object is made here as the real one would deliver it.)
    let mut terminating = (*get_config(&client, "portal").await).clone();
    terminating.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    sso_config::reconcile(Arc::new(terminating), ctx.clone())
        .await
        .expect("deletion reconciled");
    assert!(
        bindings
            .get_opt(TOKEN_REVIEW_BINDING)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        !has_finalizer(&*get_config(&client, "portal").await),
        "the finalizer is released once the binding is gone"
    );
}

#[tokio::test]
async fn leaving_token_review_mode_removes_the_binding_and_the_finalizer() {
    let (client, ctx, bindings) = reconciled_token_review_portal().await;
    assert!(
        bindings
            .get_opt(TOKEN_REVIEW_BINDING)
            .await
            .expect("get")
            .is_some()
    );

    let configs: Api<SsoConfig> = Api::namespaced(client.clone(), NS);
    configs
        .patch(
            "portal",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"machineAuth": {"kubernetes": {"mode": "Jwks"}}}})),
        )
        .await
        .expect("switch to Jwks");
    reconcile(&client, &ctx, "portal").await.expect("second");
    assert!(
        bindings
            .get_opt(TOKEN_REVIEW_BINDING)
            .await
            .expect("get")
            .is_none()
    );
    let cfg = get_config(&client, "portal").await;
    assert!(!has_finalizer(&cfg));
    assert!(
        cfg.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().all(|c| c.type_ != "TokenReviewBound")),
        "the condition goes with the mode"
    );
}

const HR_SAML: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: hr, namespace: team-a}
spec:
  protocol: saml
  publicUrl: https://hr.example.com
  saml:
    idpMetadataUrl: https://idp.example.com/metadata
    roleAttribute: memberOf
    defaultRole: member
    orgId: acme
"#;

/// Issue 32: a SAML config gets the SP's own signing key, generated once into
/// `<config>-gatehouse-saml-sp` and rendered as SAML_SP_SIGNING_KEY / SAML_SP_SIGNING_CERT (a key
/// the sidecar accepts); a key near its end gets a successor published beside it; an edited
/// Secret is reported, not replaced.
#[tokio::test]
async fn a_saml_config_gets_an_sp_signing_key_that_is_kept_rotated_and_checked() {
    use gatehouse_operator::sp_key::{self, SpKeys};
    let client = builder()
        .with_object(config(HR_SAML))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    reconcile(&client, &ctx, "hr").await.expect("reconciles");
    let stored = get_secret(&client, "hr-gatehouse-saml-sp")
        .await
        .expect("the SP key Secret is created");
    let data = env_of(&stored);
    let env = env_of(&get_secret(&client, "hr-gatehouse-env").await.expect("env"));
    assert_eq!(env["SAML_SP_SIGNING_KEY"], data[sp_key::KEY]);
    assert_eq!(env["SAML_SP_SIGNING_CERT"], data[sp_key::CERT]);
    let key = gatehouse_auth::saml::logout::SpSigningKey::from_pem(
        &env["SAML_SP_SIGNING_KEY"],
        &env["SAML_SP_SIGNING_CERT"],
    )
    .expect("the sidecar accepts the generated key");
    assert_eq!(key.certs().len(), 1);
    let cfg = get_config(&client, "hr").await;
    let owner = &stored.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!(Some(&owner.uid), cfg.metadata.uid.as_ref());

    // A second reconcile keeps the key.
    reconcile(&client, &ctx, "hr").await.expect("reconciles");
    let again = get_secret(&client, "hr-gatehouse-saml-sp")
        .await
        .expect("kept");
    assert_eq!(env_of(&again), data);

    // A key 340 days old: its successor is published beside it, and it still signs.
    let old = sp_key::generate(
        "old",
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(340 * 24),
    )
    .expect("key");
    let aged = SpKeys {
        signing: old.clone(),
        next: None,
        previous_cert: None,
    };
    let api = Api::<Secret>::namespaced(client.clone(), NS);
    let mut replaced = again.clone();
    replaced.data = Some(
        aged.to_data()
            .into_iter()
            .map(|(k, v)| (k, ByteString(v.into_bytes())))
            .collect(),
    );
    api.replace("hr-gatehouse-saml-sp", &PostParams::default(), &replaced)
        .await
        .expect("replace");
    reconcile(&client, &ctx, "hr").await.expect("reconciles");
    let rotated = env_of(
        &get_secret(&client, "hr-gatehouse-saml-sp")
            .await
            .expect("rotated"),
    );
    assert_eq!(rotated[sp_key::KEY], old.key.expose());
    assert!(
        rotated.contains_key(sp_key::NEXT_KEY),
        "{:?}",
        rotated.keys()
    );
    let env = env_of(&get_secret(&client, "hr-gatehouse-env").await.expect("env"));
    let key = gatehouse_auth::saml::logout::SpSigningKey::from_pem(
        &env["SAML_SP_SIGNING_KEY"],
        &env["SAML_SP_SIGNING_CERT"],
    )
    .expect("two certificates, the signing one first");
    assert_eq!(key.certs().len(), 2);

    // Edited by hand into something unusable: reported on the config, not overwritten.
    let mut broken = get_secret(&client, "hr-gatehouse-saml-sp")
        .await
        .expect("secret");
    broken
        .data
        .as_mut()
        .expect("data")
        .insert(sp_key::CERT.into(), ByteString(b"garbage".to_vec()));
    api.replace("hr-gatehouse-saml-sp", &PostParams::default(), &broken)
        .await
        .expect("replace");
    let err = reconcile(&client, &ctx, "hr")
        .await
        .expect_err("unresolved");
    assert!(matches!(err, Error::SecretsUnresolved(_)), "{err}");
    let cfg = get_config(&client, "hr").await;
    let resolved = condition(&cfg, SECRETS_RESOLVED);
    assert_eq!(resolved.status, "False");
    assert!(
        resolved.message.contains("hr-gatehouse-saml-sp") && resolved.message.contains("delete it"),
        "{}",
        resolved.message
    );
    assert_eq!(
        resolved.message.matches("was edited").count(),
        1,
        "one problem, said once: {}",
        resolved.message
    );
    let kept = get_secret(&client, "hr-gatehouse-saml-sp")
        .await
        .expect("kept");
    assert_eq!(env_of(&kept)[sp_key::CERT], "garbage");
}

const SCIM_PORTAL: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal, namespace: team-a}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com
  providers:
    okta: {issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {name: portal-okta}}
  provisioning:
    mode: scim
    scim: {tokenSecretRef: {name: portal-scim}}
"#;

#[tokio::test]
async fn scim_mode_names_its_missing_token_secret_then_renders_the_tokens_and_the_url() {
    let client = builder()
        .with_object(config(SCIM_PORTAL))
        .with_object(okta_secret("s3cret"))
        .build()
        .await
        .expect("fake client");
    let ctx = context(&client);
    let error = reconcile(&client, &ctx, "portal")
        .await
        .expect_err("token Secret missing");
    assert!(matches!(error, Error::SecretsUnresolved(_)), "{error}");
    let cfg = get_config(&client, "portal").await;
    let resolved = condition(&cfg, SECRETS_RESOLVED);
    assert_eq!(
        (resolved.status.as_str(), resolved.reason.as_str()),
        ("False", "SecretNotFound")
    );
    assert!(
        resolved.message.contains(
            "spec.provisioning.scim.tokenSecretRef: Secret \"portal-scim\" not found in namespace team-a"
        ),
        "{}",
        resolved.message
    );
    let warning = events(&client).await;
    assert_eq!(warning.len(), 1);
    let note = warning[0].note.clone().unwrap_or_default();
    assert!(note.contains("portal-scim"), "{note}");
    assert!(get_secret(&client, "portal-gatehouse-env").await.is_none());

    // Only the previous token: the current one is named as missing, no value anywhere.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let previous = "scim-previous-token-0123456789";
    secrets
        .create(
            &PostParams::default(),
            &secret(NS, "portal-scim", &[("previousToken", previous)]),
        )
        .await
        .expect("create");
    reconcile(&client, &ctx, "portal")
        .await
        .expect_err("key missing");
    let cfg = get_config(&client, "portal").await;
    let resolved = condition(&cfg, SECRETS_RESOLVED);
    assert_eq!(resolved.reason, "SecretKeyNotFound");
    assert!(
        resolved
            .message
            .contains("key \"token\" not found in Secret \"portal-scim\""),
        "{}",
        resolved.message
    );
    for event in events(&client).await {
        assert!(!event.note.unwrap_or_default().contains(previous));
    }
    assert!(
        !serde_json::to_string(&cfg.status)
            .expect("json")
            .contains(previous)
    );

    // Fixed: both tokens rendered, the URL in status, and the sidecar may delete SsoUsers.
    let token = "scim-current-token-0123456789";
    secrets
        .replace(
            "portal-scim",
            &PostParams::default(),
            &secret(
                NS,
                "portal-scim",
                &[("token", token), ("previousToken", previous)],
            ),
        )
        .await
        .expect("fix");
    reconcile(&client, &ctx, "portal").await.expect("fixed");
    let cfg = get_config(&client, "portal").await;
    assert_eq!(condition(&cfg, READY).status, "True");
    assert_eq!(
        cfg.status.as_ref().and_then(|s| s.scim_url.as_deref()),
        Some("https://portal.example.com/api/auth/scim/v2")
    );
    let env = env_of(
        &get_secret(&client, "portal-gatehouse-env")
            .await
            .expect("env"),
    );
    assert_eq!(env["GATEHOUSE_PROVISIONING_MODE"], "scim");
    assert_eq!(env["SCIM_TOKEN"], token);
    assert_eq!(env["SCIM_PREVIOUS_TOKEN"], previous);
    let role = Api::<Role>::namespaced(client.clone(), NS)
        .get("portal-gatehouse")
        .await
        .expect("role");
    let deletes: Vec<_> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.verbs.contains(&"delete".to_owned()))
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].resources.as_deref(),
        Some(&["ssousers".to_owned()][..])
    );
    // The end of a rotation (previousToken removed) drops SCIM_PREVIOUS_TOKEN: server-side
    // apply removes the field, which the in-memory API does not show (desired.rs's unit test
    // renders it without).
}
