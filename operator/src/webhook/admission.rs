//! One AdmissionReview in, one answer out. Pure apart from reading the SsoConfig cache: the
//! server (and the golden tests) call [`review`]; the decision itself is [`crate::inject::inject`].

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::sync::Arc;

use gatehouse_crds::SsoConfig;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Resource;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DeserializeGuard, DynamicObject, Status};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::inject::{self, Injection, Readiness, Refusal, SidecarDefaults};

/// The SsoConfigs the webhook can see: the operator's reflector cache, never a GET per request.
pub trait ConfigLookup: Send + Sync {
    /// The SsoConfig `name` in `namespace`, if the cache holds it.
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<SsoConfig>>;

    /// Why the SsoConfig `name` in `namespace` exists but cannot be decoded, if that is so.
    fn undecodable(&self, _namespace: &str, _name: &str) -> Option<String> {
        None
    }
}

impl ConfigLookup for Store<SsoConfig> {
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<SsoConfig>> {
        Store::get(self, &ObjectRef::new(name).within(namespace))
    }
}

/// The webhook's own cache: an object that fails to decode is kept as its error, so one malformed
/// SsoConfig neither stalls the watch nor hides the others.
impl ConfigLookup for Store<DeserializeGuard<SsoConfig>> {
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<SsoConfig>> {
        let guard = Store::get(self, &ObjectRef::new(name).within(namespace))?;
        guard.0.as_ref().ok().cloned().map(Arc::new)
    }

    fn undecodable(&self, namespace: &str, name: &str) -> Option<String> {
        let guard = Store::get(self, &ObjectRef::new(name).within(namespace))?;
        guard.0.as_ref().err().map(|invalid| invalid.error.clone())
    }
}

/// What happened to one request: the answer for the API server, and what the server reports.
#[derive(Debug)]
pub struct Decision {
    /// The AdmissionReview to send back.
    pub review: AdmissionReview<DynamicObject>,
    /// Low-cardinality outcome for logs and metrics.
    pub outcome: Outcome,
    /// Set when the pod is refused and the request is not a dry run: the Event to record.
    pub denial: Option<Denial>,
}

/// Outcome label of a [`Decision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Injected,
    AlreadyInjected,
    NotRequested,
    Denied,
    Invalid,
}

impl Outcome {
    /// Metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::AlreadyInjected => "already_injected",
            Outcome::NotRequested => "not_requested",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
        }
    }
}

/// A refused pod, to be recorded as an Event in the pod's namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct Denial {
    /// Namespace of the pod (and of the Event).
    pub namespace: String,
    pub refusal: Refusal,
    /// What the Event is about: the SsoConfig when it exists (so `kubectl describe ssoconfig`
    /// shows the refused pods), otherwise the pod's controller (a ReplicaSet, a Job…) or the pod.
    pub regarding: ObjectReference,
    /// The pod's controller or the pod, when `regarding` is the SsoConfig.
    pub related: Option<ObjectReference>,
}

/// Answer one AdmissionReview (as JSON bytes).
pub fn review(body: &[u8], configs: &dyn ConfigLookup, defaults: &SidecarDefaults) -> Decision {
    let parsed: Result<AdmissionReview<Pod>, _> = serde_json::from_slice(body);
    let request: AdmissionRequest<Pod> = match parsed.map(TryInto::try_into) {
        Ok(Ok(request)) => request,
        Ok(Err(_)) => return invalid("the AdmissionReview has no request"),
        Err(error) => {
            return invalid(&format!(
                "the body is not an AdmissionReview v1 of a Pod: {error}"
            ));
        }
    };
    decide(&request, configs, defaults)
}

/// Answer one parsed request.
pub fn decide(
    request: &AdmissionRequest<Pod>,
    configs: &dyn ConfigLookup,
    defaults: &SidecarDefaults,
) -> Decision {
    let allow = |outcome| Decision {
        review: AdmissionResponse::from(request).into_review(),
        outcome,
        denial: None,
    };
    // The registration matches CREATE of pods only; anything else passes untouched.
    let is_pod = request.kind.group.is_empty() && request.kind.kind == "Pod";
    if request.operation != Operation::Create || !is_pod || request.sub_resource.is_some() {
        return allow(Outcome::NotRequested);
    }
    let Some(pod) = &request.object else {
        return invalid_for(request, "the request carries no Pod");
    };
    let Some(namespace) = request
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
    else {
        return invalid_for(request, "the request names no namespace");
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let config =
        inject::requested_config(&pod.metadata).and_then(|name| configs.get(&namespace, name));

    let injection = inject::inject(
        &namespace,
        &pod.metadata,
        &spec,
        config.as_deref(),
        defaults,
        Readiness::Required,
    )
    .map_err(|refusal| match refusal {
        Refusal::ConfigMissing { config, namespace } => {
            match configs.undecodable(&namespace, &config) {
                Some(error) => Refusal::ConfigUndecodable {
                    config,
                    namespace,
                    error,
                },
                None => Refusal::ConfigMissing { config, namespace },
            }
        }
        other => other,
    });
    match injection {
        Ok(Injection::NotRequested) => allow(Outcome::NotRequested),
        Ok(Injection::AlreadyInjected { .. }) => allow(Outcome::AlreadyInjected),
        Ok(Injection::Patch(patch)) => {
            let mut response = AdmissionResponse::from(request);
            response.audit_annotations =
                HashMap::from([("injected-config".to_string(), patch.config.clone())]);
            match response.with_patch(patch.patch) {
                Ok(response) => Decision {
                    review: response.into_review(),
                    outcome: Outcome::Injected,
                    denial: None,
                },
                Err(error) => invalid_for(request, &format!("cannot serialize the patch: {error}")),
            }
        }
        Err(refusal) => {
            let message = refusal.to_string();
            let mut response = AdmissionResponse::from(request).deny(&message);
            response.result = Status::failure(&message, "Forbidden").with_code(403);
            response.audit_annotations =
                HashMap::from([("refusal".to_string(), refusal.reason().to_string())]);
            // Dry runs get the same answer and leave no trace (sideEffects: NoneOnDryRun).
            let denial =
                (!request.dry_run).then(|| denial(&namespace, pod, config.as_deref(), refusal));
            Decision {
                review: response.into_review(),
                outcome: Outcome::Denied,
                denial,
            }
        }
    }
}

impl Decision {
    /// The answer as the API server expects it on the wire. `patch` is a `[]byte` in the Go API,
    /// so its JSON form is a base64 string; kube's type would serialize an array of numbers
    /// (kube-rs/kube#1781), which is re-encoded here.
    pub fn wire_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.review).unwrap_or_default();
        if let Some(patch) = value.get_mut("response").and_then(|r| r.get_mut("patch"))
            && let Ok(bytes) = serde_json::from_value::<Vec<u8>>(patch.clone())
        {
            *patch = serde_json::Value::String(BASE64.encode(bytes));
        }
        value
    }
}

fn denial(namespace: &str, pod: &Pod, config: Option<&SsoConfig>, refusal: Refusal) -> Denial {
    let workload = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|owner| ObjectReference {
            api_version: Some(owner.api_version.clone()),
            kind: Some(owner.kind.clone()),
            name: Some(owner.name.clone()),
            namespace: Some(namespace.to_string()),
            uid: Some(owner.uid.clone()),
            ..ObjectReference::default()
        })
        .unwrap_or_else(|| ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod
                .metadata
                .name
                .clone()
                .or_else(|| pod.metadata.generate_name.clone()),
            namespace: Some(namespace.to_string()),
            ..ObjectReference::default()
        });
    match config {
        Some(config) => Denial {
            namespace: namespace.to_string(),
            refusal,
            regarding: config.object_ref(&()),
            related: Some(workload),
        },
        None => Denial {
            namespace: namespace.to_string(),
            refusal,
            regarding: workload,
            related: None,
        },
    }
}

fn invalid(message: &str) -> Decision {
    Decision {
        review: AdmissionResponse::invalid(message).into_review(),
        outcome: Outcome::Invalid,
        denial: None,
    }
}

fn invalid_for(request: &AdmissionRequest<Pod>, message: &str) -> Decision {
    let mut response = AdmissionResponse::from(request).deny(message);
    response.result = Status::failure(message, "BadRequest").with_code(400);
    Decision {
        review: response.into_review(),
        outcome: Outcome::Invalid,
        denial: None,
    }
}
