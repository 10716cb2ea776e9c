//! TokenReview mode (`spec.machineAuth.kubernetes.mode: TokenReview`): the sidecar asks the API
//! server to review each ServiceAccount token, which it may only do when its ServiceAccount is
//! bound to `system:auth-delegator`. That binding is cluster-scoped, so it cannot be owned by the
//! (namespaced) SsoConfig: a finalizer on the config, present only while the binding may exist,
//! removes it when the config stops asking for it or is deleted.
//!
//! Order of the steps, so that nothing is left behind: the finalizer is added before the binding
//! is applied, and removed only after the binding is gone. An operator that may not write
//! ClusterRoleBindings (the chart's `tokenReview.enabled` off) reports it in the condition
//! `TokenReviewBound` and keeps no finalizer, so the config stays deletable.

use gatehouse_crds::SsoConfig;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::{Context, apply_params};
use crate::conditions::{self, TOKEN_REVIEW_BOUND};
use crate::desired::AUTH_DELEGATOR;
use crate::error::{Error, Result};
use crate::names;

/// Finalizer of an SsoConfig whose sidecar's ServiceAccount is (or may be) bound to
/// `system:auth-delegator`.
pub const FINALIZER: &str = "gatehouse.dev/token-review-binding";

/// What became of the binding at this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// The config does not use TokenReview mode; no binding and no finalizer remain.
    NotWanted,
    /// The binding is applied.
    Bound,
    /// The API server refused the operator the binding (its message): the chart does not allow it.
    Forbidden(String),
}

/// `TokenReviewBound` after this reconcile: from `bound`, or, when nothing was applied (an invalid
/// spec), as it was; `None` when the config does not use TokenReview mode.
pub fn condition(config: &SsoConfig, bound: Option<&Bound>) -> Option<Condition> {
    let generation = config.metadata.generation;
    let ns = config.namespace().unwrap_or_default();
    let name = config.name_any();
    let binding = names::token_review_binding(&ns, &name);
    let sa = names::service_account(&name);
    match bound? {
        Bound::NotWanted => None,
        Bound::Bound => Some(conditions::new(
            TOKEN_REVIEW_BOUND,
            true,
            "Bound",
            format!(
                "ServiceAccount {ns}/{sa} is bound to {AUTH_DELEGATOR} (ClusterRoleBinding \
                 {binding}): the sidecar may have the API server review ServiceAccount tokens."
            ),
            generation,
        )),
        Bound::Forbidden(message) => Some(conditions::new(
            TOKEN_REVIEW_BOUND,
            false,
            "BindingForbidden",
            format!(
                "spec.machineAuth.kubernetes.mode is TokenReview, but the operator may not bind \
                 ServiceAccount {ns}/{sa} to {AUTH_DELEGATOR} ({message}). Install the chart with \
                 tokenReview.enabled=true, or use mode Jwks; until then requests with a \
                 ServiceAccount token are answered 503."
            ),
            generation,
        )),
    }
}

/// Make the binding `wanted` (from the desired objects) exist, or make sure none is left.
pub async fn ensure(
    ctx: &Context,
    config: &SsoConfig,
    wanted: Option<&ClusterRoleBinding>,
) -> Result<Bound> {
    let Some(binding) = wanted else {
        release(ctx, config).await?;
        return Ok(Bound::NotWanted);
    };
    let config = add_finalizer(ctx, config).await?;
    let name = binding.metadata.name.clone().unwrap_or_default();
    let api: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    match api
        .patch(&name, &apply_params(), &Patch::Apply(binding))
        .await
    {
        Ok(_) => Ok(Bound::Bound),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            warn!(binding = %name, message = %status.message, "may not bind the sidecar's ServiceAccount to system:auth-delegator");
            // Nothing was made: no finalizer is needed to remove it.
            remove_finalizer(ctx, &config).await?;
            Ok(Bound::Forbidden(status.message))
        }
        Err(e) => Err(Error::kube(format!("applying ClusterRoleBinding {name}"))(
            e,
        )),
    }
}

/// Remove the binding, then the finalizer (when the config has it): at deletion, or when the
/// config no longer uses TokenReview mode.
pub async fn release(ctx: &Context, config: &SsoConfig) -> Result<()> {
    if !config.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let ns = config.namespace().unwrap_or_default();
    let name = names::token_review_binding(&ns, &config.name_any());
    let api: Api<ClusterRoleBinding> = Api::all(ctx.client.clone());
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => info!(binding = %name, "removed the TokenReview binding"),
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => {
            return Err(Error::kube(format!("deleting ClusterRoleBinding {name}"))(
                e,
            ));
        }
    }
    remove_finalizer(ctx, config).await?;
    Ok(())
}

/// The config with the finalizer (as written, when it had to be added).
async fn add_finalizer(ctx: &Context, config: &SsoConfig) -> Result<SsoConfig> {
    if config.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(config.clone());
    }
    let mut finalizers = config.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    write_finalizers(ctx, config, finalizers).await
}

async fn remove_finalizer(ctx: &Context, config: &SsoConfig) -> Result<SsoConfig> {
    if !config.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(config.clone());
    }
    let finalizers = config
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    write_finalizers(ctx, config, finalizers).await
}

/// A merge patch of the whole list, guarded by the resourceVersion it was computed from: another
/// writer's finalizer is never lost (a conflict is retried with the fresh object).
async fn write_finalizers(
    ctx: &Context,
    config: &SsoConfig,
    finalizers: Vec<String>,
) -> Result<SsoConfig> {
    let ns = config.namespace().unwrap_or_default();
    let name = config.name_any();
    let api: Api<SsoConfig> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({
        "metadata": {
            "resourceVersion": config.resource_version(),
            "finalizers": finalizers,
        }
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::kube(format!(
            "writing the finalizers of SsoConfig {ns}/{name}"
        )))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::desired::{self, ConfigRef};
    use crate::metrics::Metrics;

    fn config() -> SsoConfig {
        let mut c: SsoConfig = serde_saphyr::from_str(
            r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal, namespace: team-a, uid: 6a1f7c2e-0000-4000-8000-000000000001, resourceVersion: "7", generation: 3}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com
  providers:
    okta: {issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {name: portal-okta}}
  machineAuth:
    kubernetes: {mode: TokenReview, audiences: [gatehouse.dev/team-a/portal]}
"#,
        )
        .expect("fixture parses");
        c.metadata.finalizers = None;
        c
    }

    /// An API server that refuses the operator ClusterRoleBindings (as RBAC does without the
    /// chart's `tokenReview.enabled`) and applies merge patches of the config's finalizers,
    /// recording each list written.
    fn forbidding_api(written: Arc<Mutex<Vec<Vec<String>>>>) -> kube::Client {
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let written = written.clone();
            async move {
                let path = req.uri().path().to_owned();
                let body = req.into_body().collect_bytes().await.unwrap_or_default();
                let (status, answer) = if path
                    .starts_with("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/")
                {
                    (
                        403,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden",
                               "message": "clusterrolebindings.rbac.authorization.k8s.io is forbidden"}),
                    )
                } else if path == "/apis/gatehouse.dev/v1alpha2/namespaces/team-a/ssoconfigs/portal"
                {
                    let patch: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or_default();
                    let finalizers: Vec<String> =
                        serde_json::from_value(patch["metadata"]["finalizers"].clone())
                            .unwrap_or_default();
                    written.lock().expect("written").push(finalizers.clone());
                    let mut c = config();
                    c.metadata.finalizers = Some(finalizers);
                    (200, serde_json::to_value(&c).expect("json"))
                } else {
                    (404, json!({"kind": "Status", "code": 404}))
                };
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(kube::client::Body::from(answer.to_string().into_bytes()))
                        .expect("response"),
                )
            }
        });
        kube::Client::new(service, "team-a")
    }

    #[tokio::test]
    async fn a_binding_the_operator_may_not_make_is_reported_and_leaves_no_finalizer() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let client = forbidding_api(written.clone());
        let ctx = Context::new(
            client,
            super::super::reporter(None),
            Arc::new(Metrics::default()),
        );
        let config = config();
        let config_ref = ConfigRef::of(&config).expect("ref");
        let resolved = crate::secrets::ResolvedSecrets {
            okta: None,
            entra: None,
            oidc: Vec::new(),
            saml_metadata: None,
            cookie_keys: crate::secrets::CookieKeys::ToGenerate,
            saml_sp: None,
            scim: None,
        };
        let binding = desired::build(&config_ref, &config.spec, &resolved).token_review_binding;
        let bound = ensure(&ctx, &config, binding.as_ref())
            .await
            .expect("not an error: a condition");
        let Bound::Forbidden(message) = &bound else {
            panic!("{bound:?}");
        };
        assert!(message.contains("forbidden"), "{message}");
        // The finalizer was added before the attempt and removed after it: the config stays
        // deletable.
        assert_eq!(
            *written.lock().expect("written"),
            [vec![FINALIZER.to_owned()], Vec::<String>::new()]
        );
        let c = condition(&config, Some(&bound)).expect("condition");
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            (TOKEN_REVIEW_BOUND, "False", "BindingForbidden")
        );
        assert!(
            c.message.contains("tokenReview.enabled=true"),
            "{}",
            c.message
        );
        assert_eq!(c.observed_generation, Some(3));
        assert!(condition(&config, Some(&Bound::NotWanted)).is_none());
        assert!(condition(&config, None).is_none());
    }
}
