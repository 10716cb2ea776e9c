use super::*;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

fn config(name: &str, ready: Option<&str>, sidecar: Value) -> SsoConfig {
    let mut value = json!({
        "apiVersion": "gatehouse.dev/v1alpha2",
        "kind": "SsoConfig",
        "metadata": {"name": name, "namespace": "team-a", "uid": "u-1", "generation": 2},
        "spec": {
            "protocol": "oidc",
            "publicUrl": "https://portal.example.com",
            "providers": {"okta": {
                "issuer": "https://acme.okta.com",
                "orgId": "acme",
                "clientSecretRef": {"name": "portal-okta"}
            }},
            "sidecar": sidecar,
        }
    });
    if let Some(status) = ready {
        value["status"] = json!({"conditions": [{
            "type": "Ready", "status": status, "reason": if status == "True" { "Reconciled" } else { "SecretMissing" },
            "message": if status == "True" { "" } else { "Secret portal-okta has no key client-secret" },
            "lastTransitionTime": "2026-11-23T10:00:00Z", "observedGeneration": 1
        }]});
    }
    serde_json::from_value(value).expect("fixture SsoConfig")
}

fn ready(name: &str) -> SsoConfig {
    config(name, Some("True"), json!({}))
}

fn pod(value: Value) -> Pod {
    serde_json::from_value(value).expect("fixture Pod")
}

fn plain_pod() -> Pod {
    pod(json!({
        "metadata": {"name": "web", "labels": {"gatehouse.dev/inject": "portal", "app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 8080}]}]}
    }))
}

fn run(
    pod: &Pod,
    config: Option<&SsoConfig>,
    defaults: &SidecarDefaults,
) -> Result<Injection, Refusal> {
    inject(
        "team-a",
        &pod.metadata,
        pod.spec.as_ref().expect("spec"),
        config,
        defaults,
        Readiness::Required,
    )
}

fn patch_of(result: Result<Injection, Refusal>) -> InjectionPatch {
    match result {
        Ok(Injection::Patch(patch)) => patch,
        other => panic!("expected a patch, got {other:?}"),
    }
}

fn injected(pod: &Pod, patch: &InjectionPatch) -> Pod {
    let mut value = serde_json::to_value(pod).expect("pod to json");
    patch.apply(&mut value).expect("patch applies");
    serde_json::from_value(value).expect("patched pod parses")
}

fn sidecar(pod: &Pod) -> &Container {
    let spec = pod.spec.as_ref().expect("spec");
    all_containers(spec)
        .find(|c| c.name == SIDECAR_CONTAINER_NAME)
        .expect("sidecar present")
}

#[test]
fn unlabelled_pods_are_not_touched() {
    let mut p = plain_pod();
    p.metadata.labels = Some(BTreeMap::from([("app".into(), "web".into())]));
    assert_eq!(
        run(&p, None, &SidecarDefaults::default()),
        Ok(Injection::NotRequested)
    );
}

#[test]
fn a_native_sidecar_is_inserted_first_with_its_env_token_and_annotation() {
    let p = plain_pod();
    let config = ready("portal");
    let patch = patch_of(run(&p, Some(&config), &SidecarDefaults::default()));
    let paths: Vec<String> = patch
        .patch
        .iter()
        .map(|op| match op {
            PatchOperation::Add(add) => add.path.to_string(),
            other => panic!("only add operations expected, got {other:?}"),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "/metadata/annotations",
            "/spec/volumes",
            "/spec/initContainers"
        ]
    );

    let out = injected(&p, &patch);
    let spec = out.spec.as_ref().expect("spec");
    let init = spec.init_containers.as_ref().expect("init containers");
    assert_eq!(init[0].name, SIDECAR_CONTAINER_NAME);
    assert_eq!(init[0].restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.containers.len(), 1, "app containers unchanged");
    let c = sidecar(&out);
    assert_eq!(c.image.as_deref(), Some(DEFAULT_SIDECAR_IMAGE));
    let env_from = c.env_from.as_ref().expect("envFrom");
    assert_eq!(
        env_from[0].secret_ref.as_ref().map(|s| s.name.as_str()),
        Some("portal-gatehouse-env")
    );
    let ports: Vec<(Option<&str>, i32)> = c
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        [(Some("gatehouse"), 4180), (Some("gatehouse-admin"), 9090)]
    );
    let probe_path = |p: &Option<Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .map(|g| (g.path.clone(), g.port.clone()))
    };
    assert_eq!(
        probe_path(&c.readiness_probe),
        Some((
            Some("/readyz".into()),
            IntOrString::String("gatehouse-admin".into())
        ))
    );
    assert_eq!(
        probe_path(&c.liveness_probe),
        Some((
            Some("/healthz".into()),
            IntOrString::String("gatehouse-admin".into())
        ))
    );
    assert_eq!(c.resources.as_ref(), Some(&default_resources()));
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == TOKEN_VOLUME_NAME)
        .expect("token volume");
    assert_eq!(
        volume
            .secret
            .as_ref()
            .and_then(|s| s.secret_name.as_deref()),
        Some("portal-gatehouse-token")
    );
    assert_eq!(
        out.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_INJECTED_VERSION))
            .map(String::as_str),
        Some(INJECTOR_VERSION)
    );
}

#[test]
fn the_sidecar_token_reaches_the_sidecar_only_and_the_app_token_is_left_alone() {
    // As the API server sends it: ServiceAccount admission already mounted the app's token.
    let p = pod(json!({
        "metadata": {"generateName": "web-", "labels": {"gatehouse.dev/inject": "portal"}},
        "spec": {
            "serviceAccountName": "web",
            "containers": [{"name": "app", "image": "nginx", "volumeMounts": [
                {"name": "kube-api-access-x1", "mountPath": SERVICE_ACCOUNT_MOUNT_PATH, "readOnly": true}
            ]}],
            "volumes": [{"name": "kube-api-access-x1", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
        }
    }));
    let out = injected(
        &p,
        &patch_of(run(&p, Some(&ready("portal")), &SidecarDefaults::default())),
    );
    let spec = out.spec.as_ref().expect("spec");
    assert_eq!(
        spec.automount_service_account_token, None,
        "the pod's own setting is kept"
    );
    let app = &spec.containers[0];
    let app_mounts: Vec<&str> = app
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        app_mounts,
        ["kube-api-access-x1"],
        "the app keeps its own token, never the sidecar's"
    );
    let mounts: Vec<(&str, &str, Option<bool>)> = sidecar(&out)
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str(), m.read_only))
        .collect();
    assert_eq!(
        mounts,
        [
            (TOKEN_VOLUME_NAME, SERVICE_ACCOUNT_MOUNT_PATH, Some(true)),
            (ENV_VOLUME_NAME, ENV_MOUNT_PATH, Some(true)),
        ]
    );
    // The existing volume list is appended to, not replaced.
    let volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        volumes,
        ["kube-api-access-x1", TOKEN_VOLUME_NAME, ENV_VOLUME_NAME]
    );
}

#[test]
fn rotatable_secrets_are_read_from_the_mounted_env_secret() {
    let p = plain_pod();
    let out = injected(
        &p,
        &patch_of(run(&p, Some(&ready("portal")), &SidecarDefaults::default())),
    );
    let spec = out.spec.as_ref().expect("spec");
    let env_volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == ENV_VOLUME_NAME)
        .and_then(|v| v.secret.as_ref())
        .expect("the env Secret as a volume");
    assert_eq!(
        env_volume.secret_name.as_deref(),
        Some("portal-gatehouse-env")
    );
    let files: Vec<(String, String)> = sidecar(&out)
        .env
        .iter()
        .flatten()
        .filter(|e| e.name.ends_with("_FILE"))
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    // The config has Okta only: the cookie keys and Okta's client secret.
    let want: Vec<(String, String)> = [
        (
            "GATEHOUSE_COOKIE_SECRET_FILE",
            "/etc/gatehouse/env/GATEHOUSE_COOKIE_SECRET",
        ),
        (
            "OKTA_CLIENT_SECRET_FILE",
            "/etc/gatehouse/env/OKTA_CLIENT_SECRET",
        ),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(files, want);
    let env_dir = sidecar(&out)
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "GATEHOUSE_ENV_DIR")
        .and_then(|e| e.value.clone());
    assert_eq!(
        env_dir.as_deref(),
        Some("/etc/gatehouse/env"),
        "the sidecar compares its environment with the mounted one"
    );
    // Only the sidecar mounts it; the app container does not.
    assert!(
        spec.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .all(|m| m.name != ENV_VOLUME_NAME)
    );
}

#[test]
fn injection_is_idempotent() {
    let p = plain_pod();
    let config = ready("portal");
    let once = injected(
        &p,
        &patch_of(run(&p, Some(&config), &SidecarDefaults::default())),
    );
    assert_eq!(
        run(&once, Some(&config), &SidecarDefaults::default()),
        Ok(Injection::AlreadyInjected {
            config: "portal".into()
        })
    );
    // Also when the SsoConfig has since gone: the pod is not touched again.
    assert!(matches!(
        run(&once, None, &SidecarDefaults::default()),
        Ok(Injection::AlreadyInjected { .. })
    ));
}

#[test]
fn existing_init_containers_run_after_the_sidecar() {
    let mut p = plain_pod();
    p.spec.as_mut().expect("spec").init_containers = Some(vec![Container {
        name: "migrate".into(),
        ..Container::default()
    }]);
    let patch = patch_of(run(&p, Some(&ready("portal")), &SidecarDefaults::default()));
    let out = injected(&p, &patch);
    let names: Vec<&str> = out
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .expect("init")
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["gatehouse", "migrate"]);
}

#[test]
fn annotation_keys_are_escaped_in_patch_paths() {
    let mut p = plain_pod();
    p.metadata.annotations = Some(BTreeMap::from([("team".into(), "a".into())]));
    let patch = patch_of(run(&p, Some(&ready("portal")), &SidecarDefaults::default()));
    let text = serde_json::to_string(&patch.patch).expect("json");
    assert!(
        text.contains("/metadata/annotations/gatehouse.dev~1injected-version"),
        "{text}"
    );
    let out = injected(&p, &patch);
    assert_eq!(
        out.metadata.annotations.as_ref().map(BTreeMap::len),
        Some(2)
    );
}

#[test]
fn a_missing_or_unready_config_is_refused_with_what_to_fix() {
    let p = plain_pod();
    let missing = run(&p, None, &SidecarDefaults::default()).expect_err("refused");
    assert_eq!(missing.reason(), "SsoConfigNotFound");
    let text = missing.to_string();
    assert!(
        text.contains("\"portal\"") && text.contains("\"team-a\"") && text.contains("create it"),
        "{text}"
    );

    let broken = config("portal", Some("False"), json!({}));
    let refused = run(&p, Some(&broken), &SidecarDefaults::default()).expect_err("refused");
    assert_eq!(refused.reason(), "SsoConfigNotReady");
    let text = refused.to_string();
    assert!(
        text.contains("Secret portal-okta has no key client-secret"),
        "{text}"
    );
    assert!(
        text.contains("kubectl describe ssoconfig portal -n team-a"),
        "{text}"
    );

    let fresh = config("portal", None, json!({}));
    let refused = run(&p, Some(&fresh), &SidecarDefaults::default()).expect_err("refused");
    assert!(
        refused.to_string().contains("not reconciled it yet"),
        "{refused}"
    );

    // render ignores status: offline manifests have none.
    let offline = inject(
        "team-a",
        &p.metadata,
        p.spec.as_ref().expect("spec"),
        Some(&fresh),
        &SidecarDefaults::default(),
        Readiness::Ignored,
    );
    assert!(matches!(offline, Ok(Injection::Patch(_))));
}

#[test]
fn invalid_labels_and_host_network_are_refused() {
    let mut p = plain_pod();
    p.metadata.labels = Some(BTreeMap::from([(LABEL_INJECT.into(), "Not_A_Name".into())]));
    assert_eq!(
        run(&p, None, &SidecarDefaults::default()).map_err(|r| r.reason()),
        Err("InvalidInjectLabel")
    );

    let mut p = plain_pod();
    p.spec.as_mut().expect("spec").host_network = Some(true);
    let refused =
        run(&p, Some(&ready("portal")), &SidecarDefaults::default()).expect_err("refused");
    assert_eq!(refused.reason(), "HostNetwork");
    assert!(
        refused.to_string().contains("remove hostNetwork"),
        "{refused}"
    );
}

#[test]
fn pod_overrides_need_the_config_opt_in() {
    let mut p = plain_pod();
    p.metadata.annotations = Some(BTreeMap::from([
        (
            ANNOTATION_SIDECAR_IMAGE.into(),
            "registry.local/gatehouse:dev".into(),
        ),
        (ANNOTATION_SIDECAR_PORT.into(), "4181".into()),
    ]));
    let refused =
        run(&p, Some(&ready("portal")), &SidecarDefaults::default()).expect_err("refused");
    assert_eq!(refused.reason(), "OverrideNotAllowed");
    assert!(
        refused.to_string().contains("allowPodOverrides: true"),
        "{refused}"
    );

    let open = config(
        "portal",
        Some("True"),
        json!({"allowPodOverrides": true, "image": "ignored:1"}),
    );
    let out = injected(
        &p,
        &patch_of(run(&p, Some(&open), &SidecarDefaults::default())),
    );
    let c = sidecar(&out);
    assert_eq!(c.image.as_deref(), Some("registry.local/gatehouse:dev"));
    assert_eq!(c.ports.as_ref().map(|p| p[0].container_port), Some(4181));
    let listen = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == GATEHOUSE_LISTEN)
        .and_then(|e| e.value.as_deref());
    assert_eq!(
        listen,
        Some("0.0.0.0:4181"),
        "the listener follows the declared port"
    );

    for (value, reason) in [
        ("0", "InvalidOverride"),
        ("http", "InvalidOverride"),
        ("9090", "InvalidOverride"),
        ("8080", "InvalidOverride"),
    ] {
        let mut q = plain_pod();
        q.metadata.annotations = Some(BTreeMap::from([(
            ANNOTATION_SIDECAR_PORT.into(),
            value.into(),
        )]));
        // 8080 is the app's container port: that is caught as the upstream port first.
        assert_eq!(
            run(&q, Some(&open), &SidecarDefaults::default()).map_err(|r| r.reason()),
            Err(reason),
            "{value}"
        );
    }
}

#[test]
fn config_image_and_resources_win_over_operator_defaults() {
    let p = plain_pod();
    let custom = config(
        "portal",
        Some("True"),
        json!({"image": "mirror.local/gatehouse:0.1.0", "resources": {"requests": {"cpu": "50m"}}}),
    );
    let out = injected(
        &p,
        &patch_of(run(&p, Some(&custom), &SidecarDefaults::default())),
    );
    let c = sidecar(&out);
    assert_eq!(c.image.as_deref(), Some("mirror.local/gatehouse:0.1.0"));
    assert_eq!(
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("cpu")),
        Some(&Quantity("50m".into()))
    );
    assert_eq!(c.resources.as_ref().and_then(|r| r.limits.as_ref()), None);
}

#[test]
fn app_ports_and_names_that_collide_with_the_sidecar_are_refused() {
    let mut p = plain_pod();
    p.spec.as_mut().expect("spec").containers[0].ports = Some(vec![ContainerPort {
        container_port: 9090,
        ..ContainerPort::default()
    }]);
    let refused =
        run(&p, Some(&ready("portal")), &SidecarDefaults::default()).expect_err("refused");
    assert_eq!(refused.reason(), "PortConflict");
    assert!(
        refused
            .to_string()
            .contains("container \"app\" already uses port 9090"),
        "{refused}"
    );

    let mut p = plain_pod();
    p.spec.as_mut().expect("spec").volumes = Some(vec![Volume {
        name: TOKEN_VOLUME_NAME.into(),
        ..Volume::default()
    }]);
    assert_eq!(
        run(&p, Some(&ready("portal")), &SidecarDefaults::default()).map_err(|r| r.reason()),
        Err("NameConflict")
    );
}

#[test]
fn without_native_sidecars_the_sidecar_is_a_last_container_and_jobs_are_refused() {
    let legacy = SidecarDefaults {
        native_sidecars: false,
        ..SidecarDefaults::default()
    };
    let p = plain_pod();
    let patch = patch_of(run(&p, Some(&ready("portal")), &legacy));
    let out = injected(&p, &patch);
    let spec = out.spec.as_ref().expect("spec");
    assert_eq!(spec.init_containers, None);
    let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "gatehouse"]);
    assert_eq!(spec.containers[1].restart_policy, None);

    let mut job = plain_pod();
    job.spec.as_mut().expect("spec").restart_policy = Some("Never".into());
    let refused = run(&job, Some(&ready("portal")), &legacy).expect_err("refused");
    assert_eq!(refused.reason(), "NeedsNativeSidecars");
    // With native sidecars, a Job's pod is injected and still completes.
    assert!(matches!(
        run(&job, Some(&ready("portal")), &SidecarDefaults::default()),
        Ok(Injection::Patch(_))
    ));
}

#[test]
fn pod_templates_are_injected_with_the_same_patch() {
    let template: PodTemplateSpec = serde_json::from_value(json!({
        "metadata": {"labels": {"gatehouse.dev/inject": "portal"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}
    }))
    .expect("template");
    let out = inject_template(
        "team-a",
        &template,
        Some(&ready("portal")),
        &SidecarDefaults::default(),
        Readiness::Ignored,
    )
    .expect("injected")
    .expect("changed");
    assert!(out.spec.as_ref().is_some_and(is_injected));
    assert_eq!(
        inject_template(
            "team-a",
            &out,
            Some(&ready("portal")),
            &SidecarDefaults::default(),
            Readiness::Ignored
        )
        .expect("ok"),
        None,
        "an injected template is left as it is"
    );
}

/// Each generic provider's client secret is also given as a file (`OIDC_2_CLIENT_SECRET_FILE`…),
/// as the first one's always was.
#[test]
fn every_generic_providers_client_secret_is_a_secret_file() {
    let mut config = ready("portal");
    let generic = |id: &str| {
        serde_json::from_value::<gatehouse_crds::OidcProvider>(json!({
            "id": id, "displayName": id, "issuer": "https://idp.example/", "orgId": "acme",
            "roleClaim": "groups", "defaultRole": "member", "clientSecretRef": {"name": id}
        }))
        .expect("provider")
    };
    let providers = config.spec.providers.as_mut().expect("providers");
    providers.oidc = vec![generic("auth0"), generic("google"), generic("keycloak")];
    assert_eq!(
        secret_variables(&config),
        [
            "GATEHOUSE_COOKIE_SECRET",
            "OKTA_CLIENT_SECRET",
            "OIDC_CLIENT_SECRET",
            "OIDC_2_CLIENT_SECRET",
            "OIDC_3_CLIENT_SECRET"
        ]
    );
    assert!(
        secret_variables(&config)
            .iter()
            .all(|name| gatehouse_crds::env::is_secret(name))
    );
}
