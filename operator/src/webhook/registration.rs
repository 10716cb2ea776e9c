//! The MutatingWebhookConfiguration that sends pod creations to the webhook, built by one pure
//! function for the operator (which keeps its `caBundle` current) and the Helm chart.

use std::collections::BTreeMap;

use gatehouse_crds::consts::{
    LABEL_COMPONENT, LABEL_INJECT, LABEL_MANAGED_BY, MANAGED_BY, WEBHOOK_INJECT_PATH, WEBHOOK_NAME,
    WEBHOOK_PORT,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

/// Name of the one webhook in the configuration (a qualified name, as the API requires).
pub const INJECT_WEBHOOK: &str = "inject.gatehouse.dev";
/// Seconds the API server waits for an answer; the webhook answers from memory well within it.
pub const TIMEOUT_SECONDS: i32 = 5;
/// Namespaces whose pods are never sent to the webhook, besides the operator's own.
pub const EXCLUDED_NAMESPACES: &[&str] = &["kube-system", "kube-node-lease"];
/// Label every namespace carries with its own name (Kubernetes ≥ 1.22).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Where the webhook runs and how to trust it.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    /// Namespace of the operator and its webhook Service; excluded from injection, so the
    /// operator never depends on itself to start.
    pub namespace: String,
    /// Name of the webhook Service (and of the configuration object).
    pub service: String,
    /// Port of the Service.
    pub port: i32,
    /// PEM CA bundle the API server trusts; `None` when cert-manager's CA injector fills it in.
    pub ca_bundle: Option<String>,
}

impl Registration {
    /// The defaults: Service [`WEBHOOK_NAME`] on [`WEBHOOK_PORT`] in `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Registration {
            namespace: namespace.into(),
            service: WEBHOOK_NAME.to_string(),
            port: i32::from(WEBHOOK_PORT),
            ca_bundle: None,
        }
    }
}

/// The MutatingWebhookConfiguration [`WEBHOOK_NAME`].
///
/// - CREATE of pods only: injection happens once, at birth; updates are never intercepted.
/// - `objectSelector` on the [`LABEL_INJECT`] label: unlabelled pods never reach the webhook, so
///   an operator outage cannot block them.
/// - `failurePolicy: Fail`: a labelled pod is never started without its sidecar.
/// - `sideEffects: NoneOnDryRun`: a refused pod leaves an Event, except in dry runs.
/// - `namespaceSelector` excludes kube-system, kube-node-lease and the operator's namespace.
pub fn mutating_webhook_configuration(registration: &Registration) -> MutatingWebhookConfiguration {
    let mut excluded: Vec<String> = EXCLUDED_NAMESPACES.iter().map(|s| s.to_string()).collect();
    if !excluded.contains(&registration.namespace) {
        excluded.push(registration.namespace.clone());
    }
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(WEBHOOK_NAME.to_string()),
            labels: Some(BTreeMap::from([
                (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
                (LABEL_COMPONENT.to_string(), "webhook".to_string()),
            ])),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: INJECT_WEBHOOK.to_string(),
            admission_review_versions: vec!["v1".to_string()],
            client_config: WebhookClientConfig {
                ca_bundle: registration
                    .ca_bundle
                    .as_ref()
                    .map(|pem| ByteString(pem.as_bytes().to_vec())),
                service: Some(ServiceReference {
                    name: registration.service.clone(),
                    namespace: registration.namespace.clone(),
                    path: Some(WEBHOOK_INJECT_PATH.to_string()),
                    port: Some(registration.port),
                }),
                url: None,
            },
            rules: Some(vec![RuleWithOperations {
                operations: Some(vec!["CREATE".to_string()]),
                api_groups: Some(vec![String::new()]),
                api_versions: Some(vec!["v1".to_string()]),
                resources: Some(vec!["pods".to_string()]),
                scope: Some("Namespaced".to_string()),
            }]),
            failure_policy: Some("Fail".to_string()),
            match_policy: Some("Equivalent".to_string()),
            side_effects: "NoneOnDryRun".to_string(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            // Later webhooks cannot remove the sidecar in a way a second call would fix.
            reinvocation_policy: Some("Never".to_string()),
            object_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: LABEL_INJECT.to_string(),
                    operator: "Exists".to_string(),
                    values: None,
                }]),
                match_labels: None,
            }),
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: NAMESPACE_NAME_LABEL.to_string(),
                    operator: "NotIn".to_string(),
                    values: Some(excluded),
                }]),
                match_labels: None,
            }),
            match_conditions: None,
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registration_matches_only_labelled_pod_creations_outside_system_namespaces() {
        let mut registration = Registration::new("gatehouse-system");
        registration.ca_bundle = Some("-----BEGIN CERTIFICATE-----\n".into());
        let object =
            serde_json::to_value(mutating_webhook_configuration(&registration)).expect("json");
        let webhook = &object["webhooks"][0];
        assert_eq!(object["metadata"]["name"], WEBHOOK_NAME);
        assert_eq!(
            webhook["rules"],
            json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}])
        );
        assert_eq!(webhook["sideEffects"], "NoneOnDryRun");
        assert_eq!(webhook["failurePolicy"], "Fail");
        assert_eq!(webhook["matchPolicy"], "Equivalent");
        assert_eq!(webhook["timeoutSeconds"], 5);
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(
            webhook["objectSelector"],
            json!({"matchExpressions": [{"key": "gatehouse.dev/inject", "operator": "Exists"}]})
        );
        assert_eq!(
            webhook["namespaceSelector"],
            json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": ["kube-system", "kube-node-lease", "gatehouse-system"]}]})
        );
        assert_eq!(
            webhook["clientConfig"]["service"],
            json!({"name": "gatehouse-webhook", "namespace": "gatehouse-system", "path": "/mutate-pods", "port": 8443})
        );
        // ByteString serializes as base64, which is what the API expects for caBundle.
        assert_eq!(
            webhook["clientConfig"]["caBundle"],
            "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
        );
    }

    #[test]
    fn without_a_ca_bundle_the_field_is_left_to_cert_manager() {
        let object = serde_json::to_value(mutating_webhook_configuration(&Registration::new(
            "kube-system",
        )))
        .expect("json");
        assert!(
            object["webhooks"][0]["clientConfig"]
                .get("caBundle")
                .is_none()
        );
        // The operator's namespace is not listed twice.
        assert_eq!(
            object["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"],
            json!(["kube-system", "kube-node-lease"])
        );
    }
}
