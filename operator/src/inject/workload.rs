//! Injection of workload manifests for `gatehouse-operator render`: the pod template of a Pod,
//! Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob goes through [`inject`], the
//! same function the webhook calls, and the manifest comes back with the injected template.

use gatehouse_crds::SsoConfig;
use json_patch::jsonptr::Pointer;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::{Injection, Readiness, Refusal, SidecarDefaults, inject};

/// Where a kind keeps its pod template (JSON pointer; `""` is the object itself).
pub fn pod_template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// What `render` shows for one workload.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkloadInjection {
    /// The manifest with the sidecar injected into its pod template.
    Injected { config: String, object: Value },
    /// No [`gatehouse_crds::consts::LABEL_INJECT`] label on the pod template.
    NotRequested,
    /// The template already has the sidecar.
    AlreadyInjected,
    /// The SsoConfig the label names is not among the rendered manifests, so what it would inject
    /// (image, resources, overrides) is unknown; in a cluster without it the pods are refused.
    ConfigNotInInput { config: String },
    /// The webhook would refuse these pods; `field` is where the template sits.
    Refused { field: String, refusal: Refusal },
    /// Not a workload kind, or no pod template where the kind keeps it.
    NoPodTemplate { field: String },
}

/// Inject `object` (a manifest of `kind` in `namespace`). `config_of` finds the SsoConfig a
/// label names among the rendered manifests.
pub fn inject_workload<'a>(
    kind: &str,
    namespace: &str,
    object: &Value,
    config_of: impl Fn(&str) -> Option<&'a SsoConfig>,
    defaults: &SidecarDefaults,
) -> WorkloadInjection {
    let Some(pointer) = pod_template_pointer(kind) else {
        return WorkloadInjection::NoPodTemplate {
            field: "kind".to_string(),
        };
    };
    let field = if pointer.is_empty() {
        "spec".to_string()
    } else {
        pointer.trim_start_matches('/').replace('/', ".")
    };
    let Some(template_value) = Pointer::parse(pointer)
        .ok()
        .and_then(|p| p.resolve(object).ok())
    else {
        return WorkloadInjection::NoPodTemplate { field };
    };
    let template: PodTemplateSpec = match serde_json::from_value(template_value.clone()) {
        Ok(template) => template,
        Err(_) => return WorkloadInjection::NoPodTemplate { field },
    };
    let metadata = template.metadata.clone().unwrap_or_default();
    let spec = template.spec.clone().unwrap_or_default();
    let Some(name) = super::requested_config(&metadata) else {
        return WorkloadInjection::NotRequested;
    };
    let config = config_of(name);
    if config.is_none()
        && !super::is_injected(&spec)
        && gatehouse_crds::names::is_dns1123_label(name)
    {
        return WorkloadInjection::ConfigNotInInput {
            config: name.to_string(),
        };
    }
    match inject(
        namespace,
        &metadata,
        &spec,
        config,
        defaults,
        Readiness::Ignored,
    ) {
        Ok(Injection::NotRequested) => WorkloadInjection::NotRequested,
        Ok(Injection::AlreadyInjected { .. }) => WorkloadInjection::AlreadyInjected,
        Ok(Injection::Patch(patch)) => {
            // The patch is relative to the pod; apply it where the template sits, to the
            // manifest as written (fields k8s-openapi does not know are kept).
            let mut template_value = template_value.clone();
            if patch.apply(&mut template_value).is_err() {
                return WorkloadInjection::NoPodTemplate { field };
            }
            let mut object = object.clone();
            match Pointer::parse(pointer)
                .ok()
                .and_then(|p| p.resolve_mut(&mut object).ok())
            {
                Some(slot) => *slot = template_value,
                None => return WorkloadInjection::NoPodTemplate { field },
            }
            WorkloadInjection::Injected {
                config: patch.config,
                object,
            }
        }
        Err(refusal) => WorkloadInjection::Refused { field, refusal },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> SsoConfig {
        serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha2", "kind": "SsoConfig",
            "metadata": {"name": "portal", "namespace": "demo"},
            "spec": {"protocol": "oidc", "publicUrl": "https://portal.example.com",
                     "providers": {"okta": {"issuer": "https://acme.okta.com", "orgId": "acme",
                                            "clientSecretRef": {"name": "portal-okta"}}}}
        }))
        .expect("config")
    }

    fn deployment(labels: Value, extra_spec: Value) -> Value {
        let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
            spec.extend(extra.clone());
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "portal", "namespace": "demo"},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": labels}, "spec": spec}}
        })
    }

    #[test]
    fn a_labelled_deployment_template_is_injected_and_the_rest_kept() {
        let config = config();
        let object = deployment(json!({"gatehouse.dev/inject": "portal"}), json!({}));
        let result = inject_workload(
            "Deployment",
            "demo",
            &object,
            |n| (n == "portal").then_some(&config),
            &SidecarDefaults::default(),
        );
        let WorkloadInjection::Injected {
            config: name,
            object: injected,
        } = result
        else {
            panic!("expected an injection, got {result:?}");
        };
        assert_eq!(name, "portal");
        assert_eq!(
            injected["spec"]["replicas"], 2,
            "the rest of the manifest is kept"
        );
        assert_eq!(
            injected["spec"]["template"]["spec"]["initContainers"][0]["name"],
            "gatehouse"
        );
        assert_eq!(
            injected["spec"]["template"]["spec"]["containers"][0]["name"],
            "app"
        );
        // Rendering the result again changes nothing.
        let again = inject_workload(
            "Deployment",
            "demo",
            &injected,
            |_| Some(&config),
            &SidecarDefaults::default(),
        );
        assert_eq!(again, WorkloadInjection::AlreadyInjected);
    }

    #[test]
    fn cronjobs_and_pods_are_found_where_they_keep_their_template() {
        let config = config();
        let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "r"},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {
                "metadata": {"labels": {"gatehouse.dev/inject": "portal"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "report"}]}}}}}});
        let result = inject_workload(
            "CronJob",
            "demo",
            &cronjob,
            |_| Some(&config),
            &SidecarDefaults::default(),
        );
        assert!(
            matches!(&result, WorkloadInjection::Injected { object, .. }
            if object["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]["restartPolicy"] == "Always"),
            "{result:?}"
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"gatehouse.dev/inject": "portal"}},
            "spec": {"containers": [{"name": "app"}]}});
        assert!(matches!(
            inject_workload(
                "Pod",
                "demo",
                &pod,
                |_| Some(&config),
                &SidecarDefaults::default()
            ),
            WorkloadInjection::Injected { .. }
        ));
    }

    #[test]
    fn unlabelled_missing_config_and_refusals_are_told_apart() {
        let config = config();
        let plain = deployment(json!({"app": "x"}), json!({}));
        assert_eq!(
            inject_workload(
                "Deployment",
                "demo",
                &plain,
                |_| Some(&config),
                &SidecarDefaults::default()
            ),
            WorkloadInjection::NotRequested
        );
        let labelled = deployment(json!({"gatehouse.dev/inject": "portal"}), json!({}));
        assert_eq!(
            inject_workload(
                "Deployment",
                "demo",
                &labelled,
                |_| None,
                &SidecarDefaults::default()
            ),
            WorkloadInjection::ConfigNotInInput {
                config: "portal".into()
            }
        );
        let host = deployment(
            json!({"gatehouse.dev/inject": "portal"}),
            json!({"hostNetwork": true}),
        );
        let refused = inject_workload(
            "Deployment",
            "demo",
            &host,
            |_| Some(&config),
            &SidecarDefaults::default(),
        );
        assert!(
            matches!(&refused, WorkloadInjection::Refused { field, refusal } if field == "spec.template" && refusal.reason() == "HostNetwork"),
            "{refused:?}"
        );
        assert_eq!(
            inject_workload(
                "Service",
                "demo",
                &json!({}),
                |_| Some(&config),
                &SidecarDefaults::default()
            ),
            WorkloadInjection::NoPodTemplate {
                field: "kind".into()
            }
        );
    }
}
