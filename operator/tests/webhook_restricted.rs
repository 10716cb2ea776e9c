//! Every rule of Pod Security Standards "restricted" (Kubernetes 1.33), asserted field by field on
//! the sidecar of every injected golden pod, plus the isolation rules of the brief: the sidecar's
//! token and environment reach the sidecar container only.

mod webhook_common;

use gatehouse_crds::consts::SIDECAR_CONTAINER_NAME;
use gatehouse_operator::inject::{
    ENV_MOUNT_PATH, ENV_VOLUME_NAME, SERVICE_ACCOUNT_MOUNT_PATH, TOKEN_VOLUME_NAME,
};
use k8s_openapi::api::core::v1::{Container, Pod};
use webhook_common::injected_pods;

/// Volume types "restricted" allows.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn pods() -> Vec<(String, Pod)> {
    let pods: Vec<(String, Pod)> = injected_pods()
        .into_iter()
        .map(|(case, value)| (case, serde_json::from_value(value).expect("a Pod")))
        .collect();
    assert!(pods.len() >= 6, "golden injected pods present");
    pods
}

fn containers(pod: &Pod) -> Vec<&Container> {
    let spec = pod.spec.as_ref().expect("spec");
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect()
}

fn sidecar(pod: &Pod) -> &Container {
    let found: Vec<&Container> = containers(pod)
        .into_iter()
        .filter(|c| c.name == SIDECAR_CONTAINER_NAME)
        .collect();
    assert_eq!(found.len(), 1, "exactly one sidecar");
    found[0]
}

#[test]
fn the_sidecar_meets_every_restricted_rule() {
    for (case, pod) in pods() {
        let c = sidecar(&pod);
        let sc = c
            .security_context
            .as_ref()
            .unwrap_or_else(|| panic!("{case}: securityContext"));
        // Privileged containers: forbidden.
        assert_ne!(sc.privileged, Some(true), "{case}: privileged");
        // Privilege escalation: must be explicitly false.
        assert_eq!(
            sc.allow_privilege_escalation,
            Some(false),
            "{case}: allowPrivilegeEscalation"
        );
        // Capabilities: drop ALL; add nothing but NET_BIND_SERVICE.
        let caps = sc
            .capabilities
            .as_ref()
            .unwrap_or_else(|| panic!("{case}: capabilities"));
        assert!(
            caps.drop.iter().flatten().any(|d| d == "ALL"),
            "{case}: drop ALL"
        );
        assert!(
            caps.add.iter().flatten().all(|a| a == "NET_BIND_SERVICE"),
            "{case}: add"
        );
        // Running as non-root, and not as UID 0.
        assert_eq!(sc.run_as_non_root, Some(true), "{case}: runAsNonRoot");
        assert!(
            sc.run_as_user.is_some_and(|uid| uid != 0),
            "{case}: runAsUser non-zero"
        );
        // Seccomp: RuntimeDefault or Localhost, set on the container.
        let seccomp = sc.seccomp_profile.as_ref().map(|p| p.type_.as_str());
        assert!(
            matches!(seccomp, Some("RuntimeDefault" | "Localhost")),
            "{case}: seccomp {seccomp:?}"
        );
        // Baseline rules that restricted includes.
        assert!(
            sc.proc_mount.as_deref().is_none_or(|m| m == "Default"),
            "{case}: procMount"
        );
        assert!(
            sc.windows_options
                .as_ref()
                .and_then(|w| w.host_process)
                .is_none(),
            "{case}: hostProcess"
        );
        assert!(
            sc.app_armor_profile
                .as_ref()
                .is_none_or(|p| p.type_ != "Unconfined"),
            "{case}: AppArmor"
        );
        assert!(
            sc.se_linux_options
                .as_ref()
                .and_then(|o| o.type_.as_deref())
                .is_none_or(|t| {
                    [
                        "container_t",
                        "container_init_t",
                        "container_kvm_t",
                        "container_engine_t",
                    ]
                    .contains(&t)
                }),
            "{case}: SELinux type"
        );
        assert!(
            c.ports.iter().flatten().all(|p| p.host_port.is_none()),
            "{case}: hostPort"
        );
        // Beyond PSS, asked by the brief.
        assert_eq!(
            sc.read_only_root_filesystem,
            Some(true),
            "{case}: readOnlyRootFilesystem"
        );
    }
}

#[test]
fn the_injected_pod_stays_within_restricted_pod_rules() {
    for (case, pod) in pods() {
        let spec = pod.spec.as_ref().expect("spec");
        assert_ne!(spec.host_network, Some(true), "{case}: hostNetwork");
        assert_ne!(spec.host_pid, Some(true), "{case}: hostPID");
        assert_ne!(spec.host_ipc, Some(true), "{case}: hostIPC");
        for volume in spec.volumes.iter().flatten() {
            let value = serde_json::to_value(volume).expect("json");
            let kinds: Vec<&String> = value
                .as_object()
                .expect("object")
                .keys()
                .filter(|k| *k != "name")
                .collect();
            assert!(
                kinds.iter().all(|k| ALLOWED_VOLUMES.contains(&k.as_str())),
                "{case}: volume {} of type {kinds:?}",
                volume.name
            );
        }
        assert!(
            spec.security_context
                .as_ref()
                .and_then(|s| s.sysctls.as_ref())
                .is_none(),
            "{case}: sysctls"
        );
    }
}

#[test]
fn the_sidecar_token_and_environment_reach_the_sidecar_only() {
    for (case, pod) in pods() {
        let c = sidecar(&pod);
        let mounts: Vec<(&str, &str)> = c
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(
            mounts,
            [
                (TOKEN_VOLUME_NAME, SERVICE_ACCOUNT_MOUNT_PATH),
                (ENV_VOLUME_NAME, ENV_MOUNT_PATH)
            ],
            "{case}: sidecar mounts"
        );
        let env_secret = c
            .env_from
            .as_ref()
            .and_then(|e| e[0].secret_ref.as_ref())
            .map(|s| s.name.clone());
        let env_secret = env_secret.unwrap_or_else(|| panic!("{case}: envFrom"));
        for other in containers(&pod)
            .into_iter()
            .filter(|o| o.name != SIDECAR_CONTAINER_NAME)
        {
            assert!(
                other
                    .volume_mounts
                    .iter()
                    .flatten()
                    .all(|m| m.name != TOKEN_VOLUME_NAME && m.name != ENV_VOLUME_NAME),
                "{case}: container {} mounts the sidecar token",
                other.name
            );
            assert!(
                other
                    .env_from
                    .iter()
                    .flatten()
                    .all(|e| e.secret_ref.as_ref().is_none_or(|s| s.name != env_secret)),
                "{case}: container {} reads the sidecar environment",
                other.name
            );
        }
        // The app's own token mount (from ServiceAccount admission) is untouched.
        let app = &pod.spec.as_ref().expect("spec").containers[0];
        assert!(
            app.volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name.starts_with("kube-api-access-")),
            "{case}: the app keeps its own token"
        );
    }
}
