//! Real-cluster suite: what the in-memory API cannot show. CEL and schema rejection by a real API
//! server, server-side apply field ownership (a key the operator stops rendering disappears), the
//! token controller filling the sidecar's token Secret, garbage collection through owner
//! references, the Secret watch re-rendering within seconds in a running operator, Lease
//! election between two candidates, the sidecar's SsoUser provisioning (status subresource)
//! and real watch refusing a deleted user, and a replica whose watch lags reading a new user
//! from the API server (admitted) and the same user once deleted (refused); SCIM's writes and
//! the watch following them.
//!
//! Every test carries an ignore attribute with its reason, so `cargo test` never pretends to have run it. Run against a
//! throwaway kind or k3d cluster (the tests install the CRDs and create one temporary namespace
//! each, deleted afterwards):
//!
//! ```sh
//! kind create cluster --name gatehouse        # or: k3d cluster create gatehouse
//! export KUBECONFIG="$(kind get kubeconfig-path --name gatehouse 2>/dev/null || echo ~/.kube/config)"
//! cargo test -p gatehouse-operator --test cluster -- --ignored --test-threads=2
//! ```
//!
//! (`cargo xtask test` runs it when `KUBECONFIG` is set.) Without `KUBECONFIG` each test fails
//! loudly instead of passing.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_crds::SsoConfig;
use gatehouse_operator::controllers::{self, Context, sso_config};
use gatehouse_operator::leader::{LeaderLease, Timings};
use gatehouse_operator::metrics::Metrics;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const NEEDS: &str = "needs a cluster: set KUBECONFIG (kind/k3d); cargo test -p gatehouse-operator --test cluster -- --ignored";

async fn cluster() -> Client {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("SKIPPED: real-cluster suite needs KUBECONFIG (kind/k3d)");
        panic!("{NEEDS}");
    }
    Client::try_default()
        .await
        .expect("a client from KUBECONFIG")
}

/// Install (server-side apply) the CRDs and wait until they are served.
async fn ensure_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, yaml) in gatehouse_crds::crd_manifests() {
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&yaml).expect("CRD YAML");
        let name = crd.metadata.name.clone().expect("CRD name");
        crds.patch(
            &name,
            &PatchParams::apply("gatehouse-cluster-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
        eventually(Duration::from_secs(30), || {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                let crd = crds.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await
        .unwrap_or_else(|| panic!("CRD {name} not established"));
    }
}

/// Poll `check` until it returns `Some` or `within` passes.
async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Run `body` in a fresh namespace, deleted afterwards whatever happens.
async fn in_namespace<F, Fut>(tag: &str, body: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = cluster().await;
    ensure_crds(&client).await;
    let ns = format!("gatehouse-{tag}-{:08x}", rand::random::<u32>());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({
        "metadata": {"name": ns, "labels": {"gatehouse.dev/test": "cluster"}}
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    let outcome = tokio::spawn(body(client.clone(), ns.clone())).await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Stops the operator process when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn docs_of(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("example");
    serde_saphyr::from_multiple::<Value>(&text)
        .expect("YAML")
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn portal(ns: &str, protocol: &str) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha2",
        "kind": "SsoConfig",
        "metadata": {"name": "portal", "namespace": ns},
        "spec": {
            "protocol": protocol,
            "publicUrl": "https://portal.example.com",
            "providers": {"okta": {
                "issuer": "https://acme.okta.com",
                "orgId": "acme",
                "clientSecretRef": {"name": "portal-okta"}
            }},
            "saml": {
                "idpMetadataUrl": "https://idp.example.com/metadata",
                "roleAttribute": "memberOf",
                "orgId": "acme"
            }
        }
    })
}

fn okta_secret(ns: &str, client_secret: &str) -> Secret {
    let mut s = Secret::default();
    s.metadata.name = Some("portal-okta".into());
    s.metadata.namespace = Some(ns.into());
    s.data = Some(
        [("client-id", "okta-id"), ("client-secret", client_secret)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect(),
    );
    s
}

async fn apply_config(client: &Client, ns: &str, config: &Value) {
    let api: Api<SsoConfig> = Api::namespaced(client.clone(), ns);
    api.patch(
        "portal",
        &PatchParams::apply("gatehouse-cluster-tests"),
        &Patch::Apply(config),
    )
    .await
    .expect("apply SsoConfig");
}

fn env_keys(secret: &Secret) -> Vec<String> {
    secret
        .data
        .as_ref()
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

/// One reconcile of the SsoConfig `portal` as the API server holds it now.
async fn reconcile_portal(configs: &Api<SsoConfig>, ctx: Arc<Context>) {
    sso_config::reconcile(Arc::new(configs.get("portal").await.expect("config")), ctx)
        .await
        .expect("reconcile");
}

fn context(client: &Client) -> Arc<Context> {
    Arc::new(Context::new(
        client.clone(),
        controllers::reporter(Some("cluster-test".into())),
        Arc::new(Metrics::default()),
    ))
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn the_api_server_rejects_every_invalid_example_and_accepts_the_valid_ones() {
    in_namespace("cel", |client, ns| async move {
        let api: Api<SsoConfig> = Api::namespaced(client.clone(), &ns);
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let mut checked = 0;
        for (dir, valid) in [("examples", true), ("examples/invalid", false)] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
                .expect("examples")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file).expect("example");
                let expect = text
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# expect:"))
                    .map(|s| s.trim().to_string());
                for mut doc in docs_of(&file) {
                    if doc["kind"] != "SsoConfig" {
                        continue;
                    }
                    doc["metadata"]["namespace"] = json!(ns);
                    let config: SsoConfig = match serde_json::from_value(doc) {
                        Ok(c) => c,
                        Err(e) => panic!("{}: {e}", file.display()),
                    };
                    let result = api.create(&dry_run, &config).await;
                    checked += 1;
                    match (valid, result) {
                        (true, Ok(_)) => {}
                        (true, Err(e)) => panic!("{}: rejected: {e}", file.display()),
                        (false, Ok(_)) => panic!("{}: accepted by the API server", file.display()),
                        (false, Err(kube::Error::Api(status))) => {
                            let expect = expect.clone().expect("# expect line");
                            assert_eq!(status.code, 422, "{}: {status:?}", file.display());
                            assert!(
                                status.message.contains(&expect),
                                "{}: expected {expect:?} in {}",
                                file.display(),
                                status.message
                            );
                        }
                        (false, Err(e)) => panic!("{}: {e}", file.display()),
                    }
                }
            }
        }
        assert!(checked >= 15, "checked {checked} SsoConfigs");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn server_side_apply_owns_the_env_secret_and_drops_keys_no_longer_rendered() {
    in_namespace("ssa", |client, ns| async move {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        secrets
            .create(&PostParams::default(), &okta_secret(&ns, "s3cret"))
            .await
            .expect("Secret");
        apply_config(&client, &ns, &portal(&ns, "oidc")).await;
        let ctx = context(&client);
        let configs: Api<SsoConfig> = Api::namespaced(client.clone(), &ns);
        reconcile_portal(&configs, ctx.clone()).await;

        let env = secrets
            .get("portal-gatehouse-env")
            .await
            .expect("env Secret");
        assert!(env_keys(&env).contains(&"OKTA_CLIENT_SECRET".to_string()));
        let managers: Vec<(String, String)> = env
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .map(|m| {
                (
                    m.manager.clone().unwrap_or_default(),
                    m.operation.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            managers,
            [("gatehouse-operator".to_string(), "Apply".to_string())],
            "one field manager, by apply"
        );
        let status_managers: Vec<String> = configs
            .get("portal")
            .await
            .expect("config")
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|m| m.subresource.as_deref() == Some("status"))
            .filter_map(|m| m.manager.clone())
            .collect();
        assert_eq!(status_managers, ["gatehouse-operator"]);

        // A hand edit of an owned field is taken back on the next reconcile (force apply).
        secrets
            .patch(
                "portal-gatehouse-env",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"OKTA_ISSUER": "aHR0cHM6Ly9ldmlsLmV4YW1wbGU="}})),
            )
            .await
            .expect("hand edit");
        reconcile_portal(&configs, ctx.clone()).await;
        let env = secrets.get("portal-gatehouse-env").await.expect("env");
        assert_eq!(
            env.data.as_ref().expect("data")["OKTA_ISSUER"].0,
            b"https://acme.okta.com"
        );

        // Switching to SAML: real SSA removes every OIDC key the operator no longer applies.
        apply_config(&client, &ns, &portal(&ns, "saml")).await;
        reconcile_portal(&configs, ctx.clone()).await;
        let env = secrets.get("portal-gatehouse-env").await.expect("env");
        let keys = env_keys(&env);
        assert!(
            keys.contains(&"SAML_IDP_METADATA_URL".to_string()),
            "{keys:?}"
        );
        assert!(!keys.iter().any(|k| k.starts_with("OKTA_")), "{keys:?}");

        // The token controller fills the sidecar's token Secret.
        let token = eventually(Duration::from_secs(30), || {
            let secrets = secrets.clone();
            async move {
                let s = secrets.get("portal-gatehouse-token").await.ok()?;
                s.data?.get("token").map(|_| ())
            }
        })
        .await;
        assert!(token.is_some(), "the token Secret gets a token");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn deleting_the_config_garbage_collects_what_it_owned() {
    in_namespace("gc", |client, ns| async move {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        secrets
            .create(&PostParams::default(), &okta_secret(&ns, "s3cret"))
            .await
            .expect("Secret");
        apply_config(&client, &ns, &portal(&ns, "oidc")).await;
        let configs: Api<SsoConfig> = Api::namespaced(client.clone(), &ns);
        reconcile_portal(&configs, context(&client)).await;
        assert!(
            secrets
                .get_opt("portal-gatehouse-env")
                .await
                .expect("get")
                .is_some()
        );
        configs
            .delete("portal", &DeleteParams::background())
            .await
            .expect("delete");
        let gone = eventually(Duration::from_secs(60), || {
            let secrets = secrets.clone();
            async move {
                let env = secrets.get_opt("portal-gatehouse-env").await.ok()?;
                let cookie = secrets.get_opt("portal-gatehouse-cookie").await.ok()?;
                (env.is_none() && cookie.is_none()).then_some(())
            }
        })
        .await;
        assert!(
            gone.is_some(),
            "the garbage collector removed the owned Secrets"
        );
        assert!(
            secrets.get_opt("portal-okta").await.expect("get").is_some(),
            "the user's Secret stays"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn a_running_operator_re_renders_within_seconds_of_a_secret_rotation() {
    in_namespace("run", |client, ns| async move {
        let operator = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse-operator"))
            .args([
                "run",
                "--namespace",
                &ns,
                "--lease-namespace",
                &ns,
                "--admin-addr",
                "127.0.0.1:0",
                "--identity",
                "cluster-test",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the operator");
        let _operator = KillOnDrop(operator);

        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        secrets
            .create(&PostParams::default(), &okta_secret(&ns, "first"))
            .await
            .expect("Secret");
        apply_config(&client, &ns, &portal(&ns, "oidc")).await;
        let configs: Api<SsoConfig> = Api::namespaced(client.clone(), &ns);
        let ready = eventually(Duration::from_secs(60), || {
            let configs = configs.clone();
            async move {
                let c = configs.get("portal").await.ok()?;
                c.status?
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
        assert!(ready.is_some(), "the operator made the config Ready");

        secrets
            .replace(
                "portal-okta",
                &PostParams::default(),
                &okta_secret(&ns, "second"),
            )
            .await
            .expect("rotate");
        let rotated = eventually(Duration::from_secs(10), || {
            let secrets = secrets.clone();
            async move {
                let env = secrets.get("portal-gatehouse-env").await.ok()?;
                (env.data?.get("OKTA_CLIENT_SECRET")?.0 == b"second").then_some(())
            }
        })
        .await;
        assert!(rotated.is_some(), "rotation re-rendered within seconds");

        // The operator holds the Lease while it runs.
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(client.clone(), &ns);
        let lease = leases.get("gatehouse-operator").await.expect("Lease");
        assert_eq!(
            lease.spec.and_then(|s| s.holder_identity).as_deref(),
            Some("cluster-test")
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn two_candidates_elect_one_leader_and_fail_over() {
    in_namespace("lease", |client, ns| async move {
        let timings = Timings {
            lease_duration: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(1),
            retry_period: Duration::from_millis(250),
        };
        let api = Api::namespaced(client.clone(), &ns);
        let a = LeaderLease::new(api.clone(), "gatehouse-operator", "replica-a", timings);
        let b = LeaderLease::new(api, "gatehouse-operator", "replica-b", timings);
        assert!(a.try_acquire_or_renew(Timestamp::now()).await.expect("a"));
        // Both race for a while: exactly one leads at every step.
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let a_leads = a.try_acquire_or_renew(Timestamp::now()).await.expect("a");
            let b_leads = b.try_acquire_or_renew(Timestamp::now()).await.expect("b");
            assert!(a_leads && !b_leads, "a keeps renewing, so b never leads");
        }
        // a stops renewing: b takes over after the lease duration, not before.
        let started = tokio::time::Instant::now();
        let took_over = eventually(Duration::from_secs(10), || {
            let b = b.clone();
            async move {
                b.try_acquire_or_renew(Timestamp::now())
                    .await
                    .ok()?
                    .then_some(())
            }
        })
        .await;
        assert!(took_over.is_some(), "b takes over");
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "not before expiry"
        );
        assert!(!a.try_acquire_or_renew(Timestamp::now()).await.expect("a"));
    })
    .await;
}

/// What the sidecar's sign-in hands provisioning for Okta user `subject` with `role`.
fn okta_sign_in(subject: &str, role: &'static str) -> gatehouse_auth::signin::SignedInUser {
    gatehouse_auth::signin::SignedInUser {
        user: String::new(),
        provider: "okta".into(),
        issuer: "https://acme.okta.com".into(),
        subject: subject.into(),
        email: Some("ada@example.com".into()),
        name: Some("Ada".into()),
        preferred_username: None,
        role,
        org: "acme".into(),
        groups: Vec::new(),
        attributes: Default::default(),
        groups_unknown: false,
        occasion: gatehouse_auth::signin::Occasion::SignIn,
    }
}

#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn the_sidecar_provisions_through_a_real_api_server_and_its_watch_refuses_a_deleted_user() {
    use gatehouse_directory::kubernetes::{Provisioner, SessionRefusal, UserCache};

    in_namespace("sidecar-watch", |client, ns| async move {
        let api: Api<gatehouse_crds::SsoUser> = Api::namespaced(client.clone(), &ns);
        let (cache, feeder) = UserCache::new(&ns, "portal", Duration::from_secs(300));
        // The real watcher, as the sidecar runs it.
        let watch = tokio::spawn(feeder.run(client.clone(), ns.clone()));
        let provisioner = Provisioner::new(
            api.clone(),
            "portal",
            gatehouse_crds::ProvisioningMode::Jit,
            cache.clone(),
        );
        let user = okta_sign_in("00u-cluster", "admin");
        let done = provisioner.provision(&user).await.expect("provisioned");
        assert!(done.created);
        let started = Timestamp::now();
        let stored = api.get(&done.name).await.expect("the SsoUser exists");
        assert_eq!(
            stored.status.and_then(|s| s.login_count),
            Some(1),
            "status written through the status subresource"
        );
        // The watch syncs and holds the object: the session is admitted from the store.
        eventually(Duration::from_secs(30), || {
            let cache = cache.clone();
            async move { (cache.is_ready() && cache.user_count() == 1).then_some(()) }
        })
        .await
        .expect("the watch lists the user");
        assert_eq!(cache.check(&done.name, &done.uid, started), Ok(()));

        api.delete(&done.name, &DeleteParams::default())
            .await
            .expect("delete");
        let deleted_at = std::time::Instant::now();
        let refused = eventually(Duration::from_secs(30), || {
            let cache = cache.clone();
            let (name, uid) = (done.name.clone(), done.uid.clone());
            async move {
                (cache.check(&name, &uid, started) == Err(SessionRefusal::Deleted)).then_some(())
            }
        })
        .await;
        assert!(refused.is_some(), "the deletion reached the cache");
        eprintln!(
            "deletion → refusal through a real watch: {} ms (polled every 250 ms)",
            deleted_at.elapsed().as_millis()
        );
        watch.abort();
    })
    .await;
}

/// SCIM's writes through a real API server: the create with its labels, the label-selected
/// uniqueness reads, the conditional replace (suspension and `sessionsNotBefore`), a sign-in
/// finding the pushed user by its changed `externalId` (label lookup), the watch seeing the
/// suspension, and the delete with its UID precondition leaving a tombstone.
#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn scim_writes_go_through_a_real_api_server_and_the_watch_follows_them() {
    use gatehouse_directory::kubernetes::{Provisioner, SessionRefusal, UserCache};
    use gatehouse_directory::scim::{Narrow, ScimDirectory};

    in_namespace("scim", |client, ns| async move {
        let api: Api<gatehouse_crds::SsoUser> = Api::namespaced(client.clone(), &ns);
        let (cache, feeder) = UserCache::new(&ns, "portal", Duration::from_secs(300));
        let watch = tokio::spawn(feeder.run(client.clone(), ns.clone()));
        let store = ScimDirectory::new(
            api.clone(),
            "portal",
            "okta",
            "https://acme.okta.com",
            cache.tombstones(),
            gatehouse_directory::SIGN_IN_API_BUDGET,
        );
        let profile = gatehouse_crds::ScimProfile {
            user_name: "Ada@Example.com".into(),
            external_id: Some("00u-scim".into()),
            ..Default::default()
        };
        let user = store.create(profile.clone(), true).await.expect("created");
        let again = store.create(profile.clone(), true).await;
        assert!(again.is_err(), "a second push of the same user is refused");
        let by_name = store
            .list(Narrow {
                user_name: Some("ada@example.com"),
                external_id: None,
            })
            .await
            .expect("listed");
        assert_eq!(by_name.len(), 1);

        // The IdP changes the externalId: a sign-in with the new id finds the same user.
        store
            .update(&user.id, |u| {
                let mut p = u.profile.clone();
                p.external_id = Some("00u-scim-2".into());
                Ok::<_, ()>((p, true))
            })
            .await
            .expect("written")
            .expect("accepted");
        let provisioner = Provisioner::new(
            api.clone(),
            "portal",
            gatehouse_crds::ProvisioningMode::Scim,
            cache.clone(),
        );
        let done = provisioner
            .provision(&okta_sign_in("00u-scim-2", "admin"))
            .await
            .expect("the pushed user signs in");
        assert_eq!(done.name, user.id);
        assert!(!done.created);
        let started = Timestamp::now();

        // Deactivated: the real watch refuses the session.
        store
            .update(&user.id, |u| Ok::<_, ()>((u.profile.clone(), false)))
            .await
            .expect("written")
            .expect("accepted");
        let refused = eventually(Duration::from_secs(30), || {
            let cache = cache.clone();
            let (name, uid) = (done.name.clone(), done.uid.clone());
            async move {
                matches!(
                    cache.check(&name, &uid, started),
                    Err(SessionRefusal::Suspended | SessionRefusal::SessionsRevoked)
                )
                .then_some(())
            }
        })
        .await;
        assert!(refused.is_some(), "the suspension reached the cache");

        store.delete(&user.id).await.expect("deleted");
        assert!(api.get_opt(&user.id).await.expect("read").is_none());
        let tombstone = eventually(Duration::from_secs(30), || {
            let store = store.clone();
            let id = user.id.clone();
            async move { store.tombstones().iter().any(|t| t.id == id).then_some(()) }
        })
        .await;
        assert!(
            tombstone.is_some(),
            "the watch recorded the deleted user's place"
        );
        watch.abort();
    })
    .await;
}

/// A new user's first request on another replica, through a real API server: replica B, whose
/// own watch has not seen the user replica A just created, reads the SsoUser (real GET, real
/// UID) and admits the session; once the user is deleted, the same read refuses it.
#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn another_replica_reads_a_user_its_watch_has_not_seen_and_refuses_it_once_deleted() {
    use gatehouse_directory::kubernetes::{Provisioner, SessionIds, SessionRefusal, UserCache};
    use gatehouse_directory::read_through::{ReadLimits, ReadThrough};

    in_namespace("sidecar-read", |client, ns| async move {
        let api: Api<gatehouse_crds::SsoUser> = Api::namespaced(client.clone(), &ns);
        // Replica A provisions; replica B's watch never runs, as if it lagged behind.
        let (cache_a, _feeder_a) = UserCache::new(&ns, "portal", Duration::from_secs(300));
        let provisioner = Provisioner::new(
            api.clone(),
            "portal",
            gatehouse_crds::ProvisioningMode::Jit,
            cache_a,
        );
        let user = okta_sign_in("00u-replica", "member");
        let done = provisioner
            .provision(&user)
            .await
            .expect("provisioned by replica A");
        let started = Timestamp::now();
        let (cache_b, _feeder_b) = UserCache::new(&ns, "portal", Duration::from_secs(300));
        assert_eq!(
            cache_b.check(&done.name, &done.uid, started),
            Err(SessionRefusal::NotSynced),
            "replica B's own watch does not hold the user"
        );
        let reader = ReadThrough::new(api.clone(), cache_b.clone(), ReadLimits::default());
        let admitted = reader
            .confirm(&done.name, &done.uid, started, SessionIds::default())
            .await;
        assert_eq!(
            admitted.verdict,
            Ok(()),
            "replica B admits after reading the user"
        );

        api.delete(&done.name, &DeleteParams::default())
            .await
            .expect("delete");
        // A fresh replica (nothing remembered) reads again: the deletion is what it finds.
        let (cache_c, _feeder_c) = UserCache::new(&ns, "portal", Duration::from_secs(300));
        let reader = ReadThrough::new(api.clone(), cache_c, ReadLimits::default());
        let gone = eventually(Duration::from_secs(30), || {
            let reader = &reader;
            let (name, uid) = (done.name.clone(), done.uid.clone());
            async move {
                let verdict = reader
                    .confirm(&name, &uid, started, SessionIds::default())
                    .await
                    .verdict;
                (verdict == Err(SessionRefusal::Deleted)).then_some(())
            }
        })
        .await;
        assert!(gone.is_some(), "a deleted user is refused by the read");
    })
    .await;
}

/// What the in-memory API cannot show: it replaces a list on apply, while a real API server merges
/// `status.conditions` by `type` (`x-kubernetes-list-type: map`), so the SsoConfig controller and
/// self-repair each keep the conditions they own, whoever writes last.
#[tokio::test]
#[ignore = "needs a cluster: set KUBECONFIG"]
async fn each_field_manager_keeps_its_own_conditions() {
    use gatehouse_operator::controllers::self_repair::{
        self, FIELD_MANAGER, Findings, SIDECAR_INJECTED,
    };
    in_namespace("conditions", |client, ns| async move {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        secrets
            .create(&PostParams::default(), &okta_secret(&ns, "s3cret"))
            .await
            .expect("Secret");
        apply_config(&client, &ns, &portal(&ns, "oidc")).await;
        let configs: Api<SsoConfig> = Api::namespaced(client.clone(), &ns);
        let ctx = context(&client);
        reconcile_portal(&configs, ctx.clone()).await;
        let condition = self_repair::sidecar_condition(
            "portal",
            &Findings {
                uninjected: vec!["web-1".into()],
                ..Findings::default()
            },
            false,
            Some(1),
        );
        let patch = self_repair::status_patch(&[], condition, Timestamp::now());
        configs
            .patch_status(
                "portal",
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .expect("self-repair's apply");
        // The SsoConfig controller writes again (a spec change): SidecarInjected must survive.
        let mut changed = portal(&ns, "oidc");
        changed["spec"]["skipAuth"] = json!(["/healthz"]);
        apply_config(&client, &ns, &changed).await;
        reconcile_portal(&configs, ctx).await;
        let types: Vec<String> = configs
            .get("portal")
            .await
            .expect("config")
            .status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .map(|c| c.type_)
            .collect();
        for wanted in ["Ready", "SecretsResolved", "Valid", SIDECAR_INJECTED] {
            assert!(
                types.iter().any(|t| t == wanted),
                "{wanted} missing: {types:?}"
            );
        }
    })
    .await;
}
