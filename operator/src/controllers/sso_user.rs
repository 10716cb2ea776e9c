//! The SsoUser controller: keeps a `Ready` condition saying whether the user's SsoConfig exists,
//! and deletes users created at sign-in once they have been inactive longer than the config's
//! `provisioning.deleteAfterInactive`. It never adds a finalizer and does nothing on deletion, so
//! deleting an SsoUser (which ends the user's sessions) can never be wedged by the operator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gatehouse_crds::consts::{LABEL_SOURCE, SOURCE_SSO};
use gatehouse_crds::{SsoConfig, SsoUser};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::SignedDuration;
use k8s_openapi::jiff::Timestamp;
use kube::api::Preconditions;
use kube::api::{DeleteParams, Patch};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use super::{Context, apply_params};
use crate::conditions::{self, READY};
use crate::error::{Error, Result};

/// Metric label of this controller.
pub const CONTROLLER: &str = "ssouser";

/// Reconcile one SsoUser.
pub async fn reconcile(user: Arc<SsoUser>, ctx: Arc<Context>) -> Result<Action> {
    let span = info_span!(
        "reconcile",
        kind = "SsoUser",
        namespace = user.metadata.namespace.as_deref().unwrap_or_default(),
        name = user.metadata.name.as_deref().unwrap_or_default(),
    );
    let started = Instant::now();
    let result = reconcile_inner(&user, &ctx).instrument(span).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => e.metric_label(),
    };
    ctx.metrics
        .reconciled(CONTROLLER, label, started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(user: &SsoUser, ctx: &Context) -> Result<Action> {
    let name = user
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("metadata.name"))?;
    let ns = user
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    if user.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let configs: Api<SsoConfig> = Api::namespaced(ctx.client.clone(), &ns);
    let config = configs
        .get_opt(&user.spec.config)
        .await
        .map_err(Error::kube(format!(
            "reading SsoConfig {ns}/{}",
            user.spec.config
        )))?;
    let now = Timestamp::now();

    // Inactive SSO-created users go once `provisioning.deleteAfterInactive` has passed.
    let inactive_after = config.as_ref().and_then(inactivity_limit);
    let mut action = Action::await_change();
    if let Some(limit) = inactive_after {
        match inactivity(user, limit, now) {
            Inactivity::Expired => {
                delete_inactive(ctx, user, &ns, &name).await?;
                return Ok(Action::await_change());
            }
            Inactivity::ExpiresIn(left) => action = Action::requeue(left.min(MAX_REQUEUE)),
            Inactivity::NotApplicable => {}
        }
    }

    let previous = user
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let next = ready_condition(user, config.is_some(), &previous, now);
    let generation = user.metadata.generation;
    let observed = user.status.as_ref().and_then(|s| s.observed_generation);
    if next != previous || observed != generation {
        // Only the operator's fields: the sidecar owns the rest of the status.
        let patch = json!({
            "apiVersion": gatehouse_crds::API_VERSION,
            "kind": "SsoUser",
            "status": {"conditions": next, "observedGeneration": generation},
        });
        Api::<SsoUser>::namespaced(ctx.client.clone(), &ns)
            .patch_status(&name, &apply_params(), &Patch::Apply(&patch))
            .await
            .map_err(Error::kube(format!(
                "writing status of SsoUser {ns}/{name}"
            )))?;
    }
    ctx.succeeded(&object_key(&ns, &name));
    Ok(action)
}

/// Longest wait before re-checking a user's inactivity.
const MAX_REQUEUE: Duration = Duration::from_secs(24 * 3600);

/// The config's `deleteAfterInactive`, when valid. A limit shorter than an hour or than the
/// session lifetime (refused by the CRD; an object that got past an older CRD has a `Valid=False`
/// condition saying so) deletes nobody: it could delete a user whose session is still open.
fn inactivity_limit(config: &SsoConfig) -> Option<Duration> {
    let text = config
        .spec
        .provisioning
        .as_ref()?
        .delete_after_inactive
        .as_deref()?;
    let ttl = config.spec.session.as_ref().and_then(|s| s.ttl.as_deref());
    if gatehouse_crds::rules::check_delete_after_inactive_ttl(text, ttl).is_err() {
        return None;
    }
    crate::validate::parse_go_duration(text).filter(|d| *d >= Duration::from_secs(3600))
}

/// Where a user stands against `deleteAfterInactive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inactivity {
    /// Not an SSO-created user (declared in Git, for example): never deleted by the operator.
    NotApplicable,
    /// Inactive for longer than the limit.
    Expired,
    /// Expires after this long, unless the identity provider vouches for the user again.
    ExpiresIn(Duration),
}

/// Judge `user` against `limit`: only users created at sign-in (`gatehouse.dev/source: sso`)
/// qualify; inactivity counts from the last time the identity provider vouched for the user: the
/// later of `status.lastVouched` (sign-in or re-validation) and `status.lastLogin` (all a user
/// written before `lastVouched` existed has), or from creation if there is neither.
pub fn inactivity(user: &SsoUser, limit: Duration, now: Timestamp) -> Inactivity {
    let from_sso = user
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SOURCE))
        .is_some_and(|v| v == SOURCE_SSO);
    if !from_sso {
        return Inactivity::NotApplicable;
    }
    let status = user.status.as_ref();
    let vouched = status.and_then(|s| s.last_vouched.as_ref());
    let signed_in = status.and_then(|s| s.last_login.as_ref());
    let last = vouched
        .into_iter()
        .chain(signed_in)
        .map(|t| t.0)
        .max()
        .or(user.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let Some(last) = last else {
        return Inactivity::NotApplicable;
    };
    let idle = now.duration_since(last);
    let limit = SignedDuration::try_from(limit).unwrap_or(SignedDuration::MAX);
    if idle >= limit {
        Inactivity::Expired
    } else {
        Inactivity::ExpiresIn((limit - idle).unsigned_abs())
    }
}

/// Delete an inactive user, only if it is still the object that was judged: a sign-in in the
/// meantime (or a re-validation that moved `lastVouched`) changes its resourceVersion and the
/// delete fails instead.
async fn delete_inactive(ctx: &Context, user: &SsoUser, ns: &str, name: &str) -> Result<()> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: user.metadata.uid.clone(),
            resource_version: user.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match Api::<SsoUser>::namespaced(ctx.client.clone(), ns)
        .delete(name, &params)
        .await
    {
        Ok(_) => {
            info!(namespace = %ns, user = %name, "deleted an SsoUser inactive for longer than provisioning.deleteAfterInactive");
            Ok(())
        }
        // Gone already, or changed since (signed in): nothing to do now; the change requeues.
        Err(kube::Error::Api(status)) if status.is_not_found() || status.is_conflict() => Ok(()),
        Err(e) => Err(Error::kube(format!(
            "deleting inactive SsoUser {ns}/{name}"
        ))(e)),
    }
}

/// The `Ready` condition: true when the SsoConfig the user names exists in its namespace.
pub fn ready_condition(
    user: &SsoUser,
    config_exists: bool,
    previous: &[Condition],
    now: Timestamp,
) -> Vec<Condition> {
    let ns = user.metadata.namespace.as_deref().unwrap_or_default();
    let generation = user.metadata.generation;
    let config = &user.spec.config;
    let ready = if config_exists {
        conditions::new(
            READY,
            true,
            "ConfigFound",
            format!("SsoConfig {config} exists."),
            generation,
        )
    } else {
        conditions::new(
            READY,
            false,
            "ConfigNotFound",
            format!(
                "SsoConfig \"{config}\" not found in namespace {ns}: create it, or delete this SsoUser (spec.config is immutable)."
            ),
            generation,
        )
    };
    // Conditions other than Ready (if another writer adds some) are kept.
    let mut next: Vec<Condition> = previous
        .iter()
        .filter(|c| c.type_ != READY)
        .cloned()
        .collect();
    next.insert(0, ready);
    conditions::merge(previous, next, now)
}

fn object_key(ns: &str, name: &str) -> String {
    format!("ssouser/{ns}/{name}")
}

/// A failed API call is retried with backoff; an unreadable object waits for a change.
pub fn error_policy(
    user: Arc<DeserializeGuard<SsoUser>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let ns = user.meta().namespace.clone().unwrap_or_default();
    let name = user.meta().name.clone().unwrap_or_default();
    if error.is_transient() {
        warn!(namespace = %ns, name = %name, %error, "reconcile failed; retrying");
        ctx.backoff(&object_key(&ns, &name))
    } else {
        warn!(namespace = %ns, name = %name, %error, "waiting for the SsoUser to change");
        Action::await_change()
    }
}

async fn reconcile_guarded(
    user: Arc<DeserializeGuard<SsoUser>>,
    ctx: Arc<Context>,
) -> Result<Action> {
    match &user.0 {
        Ok(user) => reconcile(Arc::new(user.clone()), ctx).await,
        Err(invalid) => Err(Error::InvalidSpec(format!(
            "cannot read SsoUser {}/{}: {}",
            invalid.metadata.namespace.as_deref().unwrap_or_default(),
            invalid.metadata.name.as_deref().unwrap_or_default(),
            invalid.error
        ))),
    }
}

/// Run the controller until `shutdown` resolves.
pub async fn run(
    ctx: Context,
    scope: super::Scope,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let users: Api<DeserializeGuard<SsoUser>> = scope.api(client.clone());
    let controller = Controller::new(users, watcher::Config::default().any_semantic());
    let store: Store<DeserializeGuard<SsoUser>> = controller.store();
    // A config created or deleted flips the Ready condition of its users.
    controller
        .watches(
            scope.api::<PartialObjectMeta<SsoConfig>>(client.clone()),
            watcher::Config::default(),
            move |config| {
                let (Some(ns), Some(name)) = (config.metadata.namespace, config.metadata.name)
                else {
                    return Vec::new();
                };
                store
                    .state()
                    .iter()
                    .filter_map(|u| u.0.as_ref().ok())
                    .filter(|u| u.metadata.namespace.as_ref() == Some(&ns) && u.spec.config == name)
                    .filter_map(|u| Some(ObjectRef::new(u.metadata.name.as_ref()?).within(&ns)))
                    .collect::<Vec<_>>()
            },
        )
        .with_config(ControllerConfig::default().debounce(Duration::from_millis(500)))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_guarded, error_policy, Arc::new(ctx))
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> SsoUser {
        serde_saphyr::from_str(
            "{apiVersion: gatehouse.dev/v1alpha1, kind: SsoUser, metadata: {name: okta-1, namespace: team-a, generation: 2}, spec: {config: portal, provider: okta, subject: '00u1'}}",
        )
        .expect("fixture parses")
    }

    #[test]
    fn ready_names_the_missing_config() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let missing = ready_condition(&user(), false, &[], now);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].status, "False");
        assert_eq!(missing[0].reason, "ConfigNotFound");
        assert!(
            missing[0]
                .message
                .contains("SsoConfig \"portal\" not found in namespace team-a")
        );
        let found = ready_condition(&user(), true, &missing, now);
        assert_eq!(
            (found[0].status.as_str(), found[0].reason.as_str()),
            ("True", "ConfigFound")
        );
        assert_eq!(found[0].observed_generation, Some(2));
    }

    #[test]
    fn only_sso_created_users_expire_after_the_limit() {
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().expect("time");
        let limit = Duration::from_secs(90 * 24 * 3600);
        let mut u = user();
        u.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().expect("time"),
        ));
        assert_eq!(
            inactivity(&u, limit, now),
            Inactivity::NotApplicable,
            "declared in Git"
        );
        u.metadata.labels = Some([(LABEL_SOURCE.to_string(), SOURCE_SSO.to_string())].into());
        assert_eq!(
            inactivity(&u, limit, now),
            Inactivity::Expired,
            "created 151 days ago"
        );
        u.status = Some(gatehouse_crds::SsoUserStatus {
            last_login: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-05-31T00:00:00Z".parse().expect("time"),
            )),
            ..Default::default()
        });
        assert_eq!(
            inactivity(&u, limit, now),
            Inactivity::ExpiresIn(Duration::from_secs(89 * 24 * 3600)),
            "signed in yesterday"
        );
    }

    /// A user signed in long ago whose session the IdP keeps vouching for (re-validation) is
    /// active: inactivity counts from `lastVouched`, and from `lastLogin` for users written
    /// before that field existed (or by an older sidecar), whichever is later.
    #[test]
    fn inactivity_counts_from_the_last_time_the_idp_vouched() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let at = |t: &str| Some(Time(t.parse().expect("time")));
        let now: Timestamp = "2026-06-01T12:00:00Z".parse().expect("time");
        let limit = Duration::from_secs(3600);
        let mut u = user();
        u.metadata.labels = Some([(LABEL_SOURCE.to_string(), SOURCE_SSO.to_string())].into());
        u.metadata.creation_timestamp = at("2026-01-01T00:00:00Z");
        let status = |last_login, last_vouched| gatehouse_crds::SsoUserStatus {
            last_login,
            last_vouched,
            ..Default::default()
        };

        // Signed in at 08:00 (12h session), re-validated at 11:30: half an hour left.
        u.status = Some(status(
            at("2026-06-01T08:00:00Z"),
            at("2026-06-01T11:30:00Z"),
        ));
        assert_eq!(
            inactivity(&u, limit, now),
            Inactivity::ExpiresIn(Duration::from_secs(1800))
        );
        // Written before `lastVouched` existed: `lastLogin` still counts.
        u.status = Some(status(at("2026-06-01T11:00:00Z"), None));
        assert_eq!(inactivity(&u, limit, now), Inactivity::Expired);
        u.status = Some(status(at("2026-06-01T11:15:00Z"), None));
        assert_eq!(
            inactivity(&u, limit, now),
            Inactivity::ExpiresIn(Duration::from_secs(900))
        );
        // An older sidecar's sign-in moved `lastLogin` past `lastVouched`: the later one counts.
        u.status = Some(status(
            at("2026-06-01T11:45:00Z"),
            at("2026-06-01T08:00:00Z"),
        ));
        assert_eq!(
            inactivity(&u, limit, now),
            Inactivity::ExpiresIn(Duration::from_secs(2700))
        );
        // Neither: from creation.
        u.status = Some(status(None, None));
        assert_eq!(inactivity(&u, limit, now), Inactivity::Expired);
    }
}
