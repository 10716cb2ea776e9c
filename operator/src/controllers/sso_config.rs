//! The SsoConfig controller: read the referenced Secrets, validate, build the owned objects,
//! apply them by server-side apply, and report what happened in status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gatehouse_crds::consts::{LABEL_MANAGED_BY, MANAGED_BY, OPERATOR_FIELD_MANAGER};
use gatehouse_crds::{SsoConfig, SsoConfigStatus, SsoUser};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PostParams};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use super::token_review;
use super::{Context, apply_params};
use crate::conditions::{
    self, INSECURE_ALGORITHMS_ALLOWED, READY, SECRETS_RESOLVED, TOKEN_REVIEW_BOUND, VALID,
};
use crate::desired::{self, ConfigRef, Desired};
use crate::error::{Error, Result};
use crate::names;
use crate::secrets::{self, CookieKeys, ResolvedSecrets, SecretMap};
use crate::sp_key;
use crate::validate::{self, Problem};

/// Metric label of this controller.
pub const CONTROLLER: &str = "ssoconfig";
/// `Ready` reason of an SsoConfig the operator cannot decode.
pub const UNDECODABLE: &str = "Undecodable";

/// Reconcile one SsoConfig.
pub async fn reconcile(config: Arc<SsoConfig>, ctx: Arc<Context>) -> Result<Action> {
    let span = info_span!(
        "reconcile",
        kind = "SsoConfig",
        namespace = config.metadata.namespace.as_deref().unwrap_or_default(),
        name = config.metadata.name.as_deref().unwrap_or_default(),
    );
    let started = Instant::now();
    let result = reconcile_inner(&config, &ctx).instrument(span).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => e.metric_label(),
    };
    ctx.metrics
        .reconciled(CONTROLLER, label, started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(config: &SsoConfig, ctx: &Context) -> Result<Action> {
    let name = config
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingObjectKey("metadata.name"))?;
    let ns = config
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    if config.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove what the config owned; the
        // cluster-scoped TokenReview binding has none, its finalizer is released here.
        token_review::release(ctx, config).await?;
        return Ok(Action::await_change());
    }
    let key = object_key(&ns, &name);
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);

    // 1. Dereference: only Secrets of the config's own namespace, by name.
    let found = fetch_secrets(&secrets_api, config, &name, &ns).await?;

    // 2. Validate (pure).
    let spec_problems = validate::validate(&name, &config.spec);
    let resolution = secrets::resolve(&name, &config.spec, &found, &format!("in namespace {ns}"));
    let secret_problems = resolution.as_ref().err().cloned().unwrap_or_default();

    // 3. Build (pure) and 4. apply, only when everything is in order; otherwise the objects
    // rendered last time stay, so running sidecars keep working.
    let mut applied = false;
    let mut bound = None;
    if spec_problems.is_empty()
        && let Ok(resolved) = resolution
    {
        let config_ref = ConfigRef::of(config).ok_or(Error::MissingObjectKey("metadata.uid"))?;
        let resolved = ensure_cookie_secret(&secrets_api, &config_ref, config, resolved).await?;
        let resolved =
            ensure_saml_sp_key(&secrets_api, &config_ref, config, &found, resolved).await?;
        let desired = desired::build(&config_ref, &config.spec, &resolved);
        apply_all(ctx, &ns, &desired).await?;
        bound =
            Some(token_review::ensure(ctx, config, desired.token_review_binding.as_ref()).await?);
        applied = true;
    }

    // 5. Status from what happened.
    let users = count_users(ctx, &ns, &name).await;
    let previous = config.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let mut status = desired_status(
        config,
        &spec_problems,
        &secret_problems,
        applied,
        users,
        now,
    );
    let token_review = match &bound {
        Some(bound) => token_review::condition(config, Some(bound)),
        None => conditions::find(&previous.conditions, TOKEN_REVIEW_BOUND).cloned(),
    };
    status.conditions.extend(conditions::merge(
        &previous.conditions,
        token_review.into_iter().collect(),
        now,
    ));
    if status != owned_view(&previous) {
        let api: Api<SsoConfig> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({
            "apiVersion": gatehouse_crds::SSO_CONFIG_API_VERSION,
            "kind": "SsoConfig",
            "status": status,
        });
        api.patch_status(&name, &apply_params(), &Patch::Apply(&patch))
            .await
            .map_err(Error::kube(format!(
                "writing status of SsoConfig {ns}/{name}"
            )))?;
    }
    publish_transition(ctx, config, &previous, &status).await;

    if !spec_problems.is_empty() {
        return Err(Error::InvalidSpec(validate::summarize(&spec_problems)));
    }
    if !secret_problems.is_empty() {
        return Err(Error::SecretsUnresolved(validate::summarize(
            &secret_problems,
        )));
    }
    ctx.succeeded(&key);
    info!(env_secret = %names::env_secret(&name), "reconciled");
    Ok(Action::requeue(ctx.resync))
}

fn object_key(ns: &str, name: &str) -> String {
    format!("ssoconfig/{ns}/{name}")
}

/// Read every Secret the config needs, plus the generated cookie Secret when no
/// `cookieSecretRef` is set. A missing Secret is simply absent from the map.
async fn fetch_secrets(
    api: &Api<Secret>,
    config: &SsoConfig,
    name: &str,
    ns: &str,
) -> Result<SecretMap> {
    let mut wanted = secrets::referenced_secret_names(&config.spec);
    let has_cookie_ref = config
        .spec
        .session
        .as_ref()
        .is_some_and(|s| s.cookie_secret_ref.is_some());
    if !has_cookie_ref {
        wanted.insert(names::cookie_secret(name));
    }
    if config.spec.protocol == gatehouse_crds::Protocol::Saml {
        wanted.insert(names::saml_sp_secret(name));
    }
    let mut found = SecretMap::new();
    for secret_name in wanted {
        let secret = api
            .get_opt(&secret_name)
            .await
            .map_err(Error::kube(format!("reading Secret {ns}/{secret_name}")))?;
        if let Some(secret) = secret {
            found.insert(secret_name, secret);
        }
    }
    Ok(found)
}

/// Create the cookie-key Secret when it is needed and missing. It is created once and never
/// overwritten: rotating it would end every session.
async fn ensure_cookie_secret(
    api: &Api<Secret>,
    config_ref: &ConfigRef,
    config: &SsoConfig,
    mut resolved: ResolvedSecrets,
) -> Result<ResolvedSecrets> {
    if resolved.cookie_keys != CookieKeys::ToGenerate {
        return Ok(resolved);
    }
    resolved.cookie_keys = CookieKeys::Generated(secrets::generate_cookie_key());
    let cookie = desired::build(config_ref, &config.spec, &resolved)
        .cookie_secret
        .ok_or(Error::MissingObjectKey("cookie Secret"))?;
    let params = PostParams {
        field_manager: Some(OPERATOR_FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    // A create, not an apply: if another writer got there first, the create fails with 409 and
    // the next reconcile reads the existing key instead of replacing it.
    api.create(&params, &cookie)
        .await
        .map_err(Error::kube(format!(
            "creating cookie-key Secret {}/{}",
            config_ref.namespace,
            names::cookie_secret(&config_ref.name)
        )))?;
    info!(secret = %names::cookie_secret(&config_ref.name), "generated a cookie key");
    Ok(resolved)
}

/// SAML configs: create the SP's signing-key Secret when missing, and rotate its keys when
/// [`sp_key::plan`] says so. Writes carry the `resourceVersion` read (a create fails with 409
/// when another writer got there first): a concurrent writer's keys are never overwritten, and
/// the next reconcile reads them.
async fn ensure_saml_sp_key(
    api: &Api<Secret>,
    config_ref: &ConfigRef,
    config: &SsoConfig,
    found: &SecretMap,
    mut resolved: ResolvedSecrets,
) -> Result<ResolvedSecrets> {
    if config.spec.protocol != gatehouse_crds::Protocol::Saml {
        return Ok(resolved);
    }
    let name = names::saml_sp_secret(&config_ref.name);
    let subject = format!(
        "gatehouse SAML SP {}/{}",
        config_ref.namespace, config_ref.name
    );
    let planned = sp_key::plan(resolved.saml_sp.as_ref(), Timestamp::now(), || {
        sp_key::generate(&subject, Timestamp::now())
    })
    .map_err(|e| Error::KeyGeneration(format!("the SAML SP signing key: {e}")))?;
    let Some(keys) = planned else {
        return Ok(resolved);
    };
    let mut secret = desired::saml_sp_secret(config_ref, &keys);
    let params = PostParams {
        field_manager: Some(OPERATOR_FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    let what = format!("SAML SP key Secret {}/{name}", config_ref.namespace);
    match found.get(&name) {
        None => {
            api.create(&params, &secret)
                .await
                .map_err(Error::kube(format!("creating {what}")))?;
            info!(secret = %name, "generated the SAML SP signing key");
        }
        Some(existing) => {
            secret.metadata.resource_version = existing.metadata.resource_version.clone();
            api.replace(&name, &params, &secret)
                .await
                .map_err(Error::kube(format!("rotating {what}")))?;
            info!(
                secret = %name,
                next = keys.next.is_some(),
                previous = keys.previous_cert.is_some(),
                "rotated the SAML SP signing key"
            );
        }
    }
    resolved.saml_sp = Some(keys);
    Ok(resolved)
}

/// Server-side apply every owned object (except the cookie Secret, which is only created).
async fn apply_all(ctx: &Context, ns: &str, desired: &Desired) -> Result<()> {
    apply(ctx, ns, &desired.service_account).await?;
    apply(ctx, ns, &desired.role).await?;
    apply(ctx, ns, &desired.role_binding).await?;
    apply(ctx, ns, &desired.token_secret).await?;
    apply(ctx, ns, &desired.env_secret).await?;
    if let Some(policy) = &desired.network_policy {
        apply(ctx, ns, policy).await?;
    } else {
        delete_disabled_network_policy(ctx, ns, desired).await?;
    }
    Ok(())
}

async fn apply<K>(ctx: &Context, ns: &str, object: &K) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
        .map_err(Error::kube(format!(
            "applying {} {ns}/{name}",
            K::kind(&())
        )))?;
    Ok(())
}

/// `networkPolicy.enabled: false` removes the policy the operator wrote earlier (only one it
/// owns: labelled and controlled by this config).
async fn delete_disabled_network_policy(ctx: &Context, ns: &str, desired: &Desired) -> Result<()> {
    let name = desired
        .service_account
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    let api: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), ns);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading NetworkPolicy {ns}/{name}")))?;
    let owner_uid = desired
        .env_secret
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .map(|o| o.uid.clone());
    let ours = existing.is_some_and(|p| {
        p.owner_references()
            .iter()
            .any(|o| Some(&o.uid) == owner_uid.as_ref())
    });
    if ours {
        api.delete(&name, &Default::default())
            .await
            .map_err(Error::kube(format!("deleting NetworkPolicy {ns}/{name}")))?;
        info!(policy = %name, "removed the NetworkPolicy: networkPolicy.enabled is false");
    }
    Ok(())
}

/// Number of SsoUsers of the config, from the watch cache when running, else from the API.
/// `None` when it cannot be counted now; status keeps the last count.
async fn count_users(ctx: &Context, ns: &str, name: &str) -> Option<i64> {
    let belongs =
        |u: &SsoUser| u.metadata.namespace.as_deref() == Some(ns) && u.spec.config == name;
    if let Some(store) = &ctx.users {
        let n = store
            .state()
            .iter()
            .filter(|u| u.0.as_ref().is_ok_and(belongs))
            .count();
        return i64::try_from(n).ok();
    }
    let api: Api<SsoUser> = Api::namespaced(ctx.client.clone(), ns);
    match api.list(&ListParams::default()).await {
        Ok(list) => i64::try_from(list.items.iter().filter(|u| belongs(u)).count()).ok(),
        Err(error) => {
            warn!(%error, "cannot count SsoUsers; keeping the last count");
            None
        }
    }
}

/// `status` as far as this controller writes it: without the conditions other field managers own.
fn owned_view(status: &SsoConfigStatus) -> SsoConfigStatus {
    SsoConfigStatus {
        conditions: status
            .conditions
            .iter()
            .filter(|c| OWNED_CONDITIONS.contains(&c.type_.as_str()))
            .cloned()
            .collect(),
        ..status.clone()
    }
}

/// The condition types this controller writes, in the order it writes them
/// (`InsecureAlgorithmsAllowed` for SAML configs only, `TokenReviewBound` for configs in
/// TokenReview mode only).
pub const OWNED_CONDITIONS: [&str; 5] = [
    READY,
    SECRETS_RESOLVED,
    VALID,
    INSECURE_ALGORITHMS_ALLOWED,
    TOKEN_REVIEW_BOUND,
];

/// The status to write: conditions that say what to fix, the URLs to register at the IdP.
pub fn desired_status(
    config: &SsoConfig,
    spec_problems: &[Problem],
    secret_problems: &[Problem],
    applied: bool,
    users: Option<i64>,
    now: Timestamp,
) -> SsoConfigStatus {
    let previous = config.status.clone().unwrap_or_default();
    let generation = config.metadata.generation;
    let name = config.metadata.name.clone().unwrap_or_default();
    let env_secret = names::env_secret(&name);

    let valid = if spec_problems.is_empty() {
        conditions::new(VALID, true, "Valid", "The spec is valid.", generation)
    } else {
        conditions::new(
            VALID,
            false,
            "InvalidSpec",
            validate::summarize(spec_problems),
            generation,
        )
    };
    let resolved = if secret_problems.is_empty() {
        conditions::new(
            SECRETS_RESOLVED,
            true,
            "Resolved",
            "Every referenced Secret and key was found.",
            generation,
        )
    } else {
        let reason = secret_problems
            .iter()
            .map(|p| p.kind)
            .min()
            .map_or("SecretsUnresolved", |k| k.reason());
        conditions::new(
            SECRETS_RESOLVED,
            false,
            reason,
            validate::summarize(secret_problems),
            generation,
        )
    };
    let kept = if previous.env_secret.is_some() {
        format!(
            " Injected sidecars keep the environment rendered last time in Secret {env_secret}."
        )
    } else {
        String::new()
    };
    let ready = if !spec_problems.is_empty() {
        conditions::new(
            READY,
            false,
            "InvalidSpec",
            format!(
                "Fix the spec: {}.{kept}",
                validate::summarize(spec_problems)
            ),
            generation,
        )
    } else if !secret_problems.is_empty() {
        conditions::new(
            READY,
            false,
            "SecretsUnresolved",
            format!(
                "Create or fix the referenced Secrets: {}.{kept}",
                validate::summarize(secret_problems)
            ),
            generation,
        )
    } else {
        conditions::new(
            READY,
            true,
            "Reconciled",
            format!(
                "The sidecar environment is rendered in Secret {env_secret}; register the URLs in status at the identity provider."
            ),
            generation,
        )
    };

    let mut owned = vec![ready, resolved, valid];
    owned.extend(insecure_algorithms(config, generation));

    let spec_valid = spec_problems.is_empty();
    SsoConfigStatus {
        // Only the conditions this controller owns: the list is a map keyed by type, so the
        // apply leaves self-repair's `SidecarInjected` alone.
        conditions: conditions::merge(&previous.conditions, owned, now),
        observed_generation: generation,
        active_protocol: Some(config.spec.protocol),
        callback_urls: if spec_valid {
            desired::callback_urls(&config.spec)
        } else {
            previous.callback_urls.clone()
        },
        backchannel_logout_urls: if spec_valid {
            desired::backchannel_logout_urls(&config.spec)
        } else {
            previous.backchannel_logout_urls.clone()
        },
        saml: if spec_valid {
            desired::saml_urls(&config.spec)
        } else {
            previous.saml.clone()
        },
        scim_url: if spec_valid {
            config.spec.scim_url()
        } else {
            previous.scim_url.clone()
        },
        env_secret: if applied {
            Some(env_secret)
        } else {
            previous.env_secret.clone()
        },
        users: users.or(previous.users),
    }
}

/// `InsecureAlgorithmsAllowed` of a SAML config: `True` (reason `Sha1Allowed`, a message saying
/// what it means and how to turn it off) while `spec.saml.allowSha1` is true, `False` (reason
/// `Sha1Refused`) otherwise; `None` for an OIDC config, which has no SAML algorithms. It describes
/// the spec: the sidecars get it with the next rendering, as every other field.
fn insecure_algorithms(config: &SsoConfig, generation: Option<i64>) -> Option<Condition> {
    if config.spec.protocol != gatehouse_crds::Protocol::Saml {
        return None;
    }
    let saml = config.spec.saml.as_ref()?;
    let name = config.metadata.name.as_deref().unwrap_or_default();
    let ns = config.metadata.namespace.as_deref().unwrap_or_default();
    Some(if saml.allow_sha1 == Some(true) {
        conditions::new(
            INSECURE_ALGORITHMS_ALLOWED,
            true,
            "Sha1Allowed",
            format!(
                "spec.saml.allowSha1 is true: SAML responses signed with RSA-SHA1 or carrying \
                 SHA-1 digests are accepted. SHA-1 is deprecated for XML signatures (collisions \
                 are practical), so a forged response could pass. Have the identity provider \
                 sign with RSA-SHA256, then turn this off: kubectl -n {ns} patch ssoconfig \
                 {name} --type merge -p '{{\"spec\":{{\"saml\":{{\"allowSha1\":null}}}}}}'"
            ),
            generation,
        )
    } else {
        conditions::new(
            INSECURE_ALGORITHMS_ALLOWED,
            false,
            "Sha1Refused",
            "Only SHA-2 signature and digest algorithms are accepted in SAML responses.",
            generation,
        )
    })
}

/// Publish an Event when `Ready` changed status or reason, when `InsecureAlgorithmsAllowed`
/// turned `True` (Warning) or back (Normal), and when `TokenReviewBound` turned `False` (Warning)
/// or back (Normal); nothing otherwise.
async fn publish_transition(
    ctx: &Context,
    config: &SsoConfig,
    previous: &SsoConfigStatus,
    next: &SsoConfigStatus,
) {
    let changed = |type_: &str| {
        let before = conditions::find(&previous.conditions, type_);
        let after = conditions::find(&next.conditions, type_)?;
        let same = before.is_some_and(|b| b.status == after.status && b.reason == after.reason);
        (!same).then_some((before, after))
    };
    if let Some((_, after)) = changed(READY) {
        let ready = after.status == "True";
        publish(ctx, config, after, ready).await;
    }
    // A binding the operator may not make is a Warning; made after all, Normal.
    if let Some((before, after)) = changed(TOKEN_REVIEW_BOUND) {
        let ok = after.status == "True";
        if !ok || before.is_some_and(|b| b.status != "True") {
            publish(ctx, config, after, ok).await;
        }
    }
    // Only when it is (or was) on: a config that never allowed SHA-1 records nothing.
    if let Some((before, after)) = changed(INSECURE_ALGORITHMS_ALLOWED) {
        let on = after.status == "True";
        if on || before.is_some_and(|b| b.status == "True") {
            publish(ctx, config, after, !on).await;
        }
    }
}

/// Publish `condition`'s reason and message as an Event, `Normal` or `Warning`.
async fn publish(ctx: &Context, config: &SsoConfig, condition: &Condition, normal: bool) {
    let mut note = condition.message.clone();
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    let event = Event {
        type_: if normal {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: condition.reason.clone(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &config.object_ref(&())).await {
        warn!(%error, "cannot publish an Event");
    }
}

/// Decide what follows a failed reconcile: an invalid object waits for a change; a missing Secret
/// or a failed API call is retried with growing delays.
pub fn error_policy(
    config: Arc<DeserializeGuard<SsoConfig>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let ns = config.meta().namespace.clone().unwrap_or_default();
    let name = config.meta().name.clone().unwrap_or_default();
    if error.is_transient() {
        warn!(namespace = %ns, name = %name, %error, "reconcile failed; retrying");
        ctx.backoff(&object_key(&ns, &name))
    } else {
        warn!(namespace = %ns, name = %name, %error, "waiting for the SsoConfig to change");
        Action::await_change()
    }
}

pub async fn reconcile_guarded(
    config: Arc<DeserializeGuard<SsoConfig>>,
    ctx: Arc<Context>,
) -> Result<Action> {
    match &config.0 {
        Ok(config) => reconcile(Arc::new(config.clone()), ctx).await,
        Err(invalid) => {
            // A malformed object must not stall the others: it is reported on itself and waits
            // for a fix.
            ctx.metrics.reconciled(CONTROLLER, "invalid_spec", 0.0);
            ctx.metrics.undecodable(CONTROLLER, "SsoConfig");
            let ns = invalid.metadata.namespace.clone().unwrap_or_default();
            let name = invalid.metadata.name.clone().unwrap_or_default();
            let message = format!(
                "The operator cannot decode this SsoConfig ({}); fix the object, or run the operator version that wrote it. Injected sidecars keep the environment rendered last time.",
                invalid.error
            );
            let undecodable = conditions::new(
                READY,
                false,
                UNDECODABLE,
                message,
                invalid.metadata.generation,
            );
            let patch = json!({
                "apiVersion": gatehouse_crds::SSO_CONFIG_API_VERSION,
                "kind": "SsoConfig",
                "status": {"conditions": conditions::merge(&[], vec![undecodable], Timestamp::now())},
            });
            // The object itself cannot be decoded, so the answer is read as a guard too.
            let api: Api<DeserializeGuard<SsoConfig>> = Api::namespaced(ctx.client.clone(), &ns);
            if let Err(error) = api
                .patch_status(&name, &apply_params(), &Patch::Apply(&patch))
                .await
            {
                warn!(namespace = %ns, name = %name, %error, "cannot report the undecodable SsoConfig in its status");
            }
            Err(Error::InvalidSpec(format!(
                "cannot read SsoConfig {ns}/{name}: {}",
                invalid.error
            )))
        }
    }
}

/// SsoConfigs to reconcile when the Secret described by `secret` changes: the config that owns it
/// (the rendered or generated Secrets) and every config of its namespace that references it.
pub fn configs_for_secret<'a>(
    secret: &ObjectMeta,
    configs: impl IntoIterator<Item = &'a SsoConfig>,
) -> Vec<ObjectRef<DeserializeGuard<SsoConfig>>> {
    let (Some(ns), Some(name)) = (&secret.namespace, &secret.name) else {
        return Vec::new();
    };
    let mut refs: Vec<ObjectRef<DeserializeGuard<SsoConfig>>> = secret
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.kind == "SsoConfig" && o.api_version.starts_with(gatehouse_crds::GROUP))
        .map(|o| ObjectRef::new(&o.name).within(ns))
        .collect();
    for config in configs {
        if config.metadata.namespace.as_ref() == Some(ns)
            && secrets::references_secret(&config.spec, name)
            && let Some(config_name) = &config.metadata.name
        {
            let r = ObjectRef::new(config_name).within(ns);
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
    refs
}

/// Run the controller until `shutdown` resolves.
pub async fn run(
    ctx: Context,
    scope: super::Scope,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let configs: Api<DeserializeGuard<SsoConfig>> = scope.api(client.clone());
    let owned = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));

    // SsoUsers: counted from this cache, and a change re-counts its config.
    let (users, users_writer) = reflector::store::<DeserializeGuard<SsoUser>>();
    let user_events = reflector::reflector(
        users_writer,
        watcher(
            scope.api::<DeserializeGuard<SsoUser>>(client.clone()),
            watcher::Config::default(),
        ),
    )
    .touched_objects();
    let ctx = Arc::new(Context {
        users: Some(users),
        ..ctx
    });

    let controller = Controller::new(configs, watcher::Config::default().any_semantic());
    let store: Store<DeserializeGuard<SsoConfig>> = controller.store();

    // Owned objects and Secrets by metadata only: the operator never caches Secret values, it
    // reads the few it needs during a reconcile.
    let mut controller = controller
        .owns(
            scope.api::<PartialObjectMeta<ServiceAccount>>(client.clone()),
            owned.clone(),
        )
        .owns(
            scope.api::<PartialObjectMeta<Role>>(client.clone()),
            owned.clone(),
        )
        .owns(
            scope.api::<PartialObjectMeta<RoleBinding>>(client.clone()),
            owned.clone(),
        )
        .owns(
            scope.api::<PartialObjectMeta<NetworkPolicy>>(client.clone()),
            owned,
        );
    if ctx.watch_secrets {
        // A change to a referenced Secret, or to one the operator owns, re-renders its configs
        // within seconds. Needs list/watch on Secrets in the scope; without it (a cluster-wide
        // install that may only get Secrets by name) the periodic resync picks rotations up.
        controller = controller.watches(
            scope.api::<PartialObjectMeta<Secret>>(client.clone()),
            watcher::Config::default(),
            move |secret| {
                let state = store.state();
                configs_for_secret(
                    &secret.metadata,
                    state.iter().filter_map(|c| c.0.as_ref().ok()),
                )
            },
        );
    } else {
        info!(
            resync = ?ctx.resync,
            "not watching Secrets: rotated Secrets are picked up at the next periodic reconcile"
        );
    }
    controller
        .watches_stream(user_events, |user: DeserializeGuard<SsoUser>| {
            let user = user.0.ok()?;
            let ns = user.metadata.namespace.clone()?;
            Some(ObjectRef::new(&user.spec.config).within(&ns))
        })
        .with_config(ControllerConfig::default().debounce(Duration::from_millis(500)))
        .graceful_shutdown_on(shutdown)
        .run(reconcile_guarded, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::ProblemKind;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn config(yaml: &str) -> SsoConfig {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    const PORTAL: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal, namespace: team-a, generation: 3}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com
  providers:
    okta: {issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {name: portal-okta}}
  session: {cookieSecretRef: {name: portal-cookies}}
"#;

    #[test]
    fn secret_changes_map_to_referencing_and_owning_configs() {
        let portal = config(PORTAL);
        let other_ns = config(&PORTAL.replace("namespace: team-a", "namespace: team-b"));
        let unrelated = config(
            &PORTAL
                .replace("name: portal-okta", "name: other")
                .replace("name: portal,", "name: blog,"),
        );
        let meta = |name: &str| ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team-a".into()),
            ..ObjectMeta::default()
        };
        let configs = [&portal, &other_ns, &unrelated];
        let refs = configs_for_secret(&meta("portal-okta"), configs);
        assert_eq!(refs, vec![ObjectRef::new("portal").within("team-a")]);
        assert_eq!(
            configs_for_secret(&meta("portal-cookies"), configs).len(),
            2,
            "both team-a configs use the cookie Secret"
        );
        assert!(configs_for_secret(&meta("unused"), configs).is_empty());

        let mut owned = meta("portal-gatehouse-env");
        owned.owner_references = Some(vec![OwnerReference {
            api_version: "gatehouse.dev/v1alpha1".into(),
            kind: "SsoConfig".into(),
            name: "portal".into(),
            uid: "u".into(),
            ..OwnerReference::default()
        }]);
        assert_eq!(
            configs_for_secret(&owned, []),
            vec![ObjectRef::new("portal").within("team-a")]
        );
    }

    #[test]
    fn status_names_what_to_fix() {
        let portal = config(PORTAL);
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let missing = [Problem::of(
            ProblemKind::SecretNotFound,
            "spec.providers.okta.clientSecretRef",
            "Secret \"portal-okta\" not found in namespace team-a",
        )];
        let status = desired_status(&portal, &[], &missing, false, None, now);
        let ready = conditions::find(&status.conditions, READY).expect("ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "SecretsUnresolved")
        );
        assert!(ready.message.contains("portal-okta"), "{}", ready.message);
        let resolved = conditions::find(&status.conditions, SECRETS_RESOLVED).expect("cond");
        assert_eq!(resolved.reason, "SecretNotFound");
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.env_secret, None);
        assert_eq!(
            status.callback_urls.get("okta").map(String::as_str),
            Some("https://portal.example.com/api/auth/oauth2/callback/okta")
        );

        let ok = desired_status(&portal, &[], &[], true, Some(2), now);
        let ready = conditions::find(&ok.conditions, READY).expect("ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Reconciled")
        );
        assert_eq!(ok.env_secret.as_deref(), Some("portal-gatehouse-env"));
        assert_eq!(ok.users, Some(2));
        assert_eq!(ok.active_protocol, Some(gatehouse_crds::Protocol::Oidc));

        let invalid = [Problem::new(
            "spec.publicUrl",
            validate::MSG_PUBLIC_URL_HTTPS,
        )];
        let bad = desired_status(&portal, &invalid, &[], false, None, now);
        let valid = conditions::find(&bad.conditions, VALID).expect("valid");
        assert_eq!(
            (valid.status.as_str(), valid.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(
            valid
                .message
                .starts_with("spec.publicUrl: publicUrl must use https")
        );
    }

    const HR: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: hr, namespace: team-a, generation: 2}
spec:
  protocol: saml
  publicUrl: https://hr.example.com
  saml: {idpMetadataUrl: 'https://idp.example/m', roleAttribute: memberOf, orgId: acme}
"#;

    #[test]
    fn allowing_sha1_is_a_condition_that_says_how_to_turn_it_off() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let on = config(&HR.replace("orgId: acme}", "orgId: acme, allowSha1: true}"));
        let status = desired_status(&on, &[], &[], true, None, now);
        let insecure =
            conditions::find(&status.conditions, INSECURE_ALGORITHMS_ALLOWED).expect("condition");
        assert_eq!(
            (insecure.status.as_str(), insecure.reason.as_str()),
            ("True", "Sha1Allowed")
        );
        assert_eq!(insecure.observed_generation, Some(2));
        for words in [
            "SHA-1",
            "spec.saml.allowSha1",
            "kubectl -n team-a patch ssoconfig hr",
        ] {
            assert!(
                insecure.message.contains(words),
                "{words}: {}",
                insecure.message
            );
        }
        // Still Ready: the sidecars run, accepting SHA-1 as asked.
        let ready = conditions::find(&status.conditions, READY).expect("ready");
        assert_eq!(ready.status, "True");

        for off in [
            config(&HR.replace("orgId: acme}", "orgId: acme, allowSha1: false}")),
            config(HR),
        ] {
            let status = desired_status(&off, &[], &[], true, None, now);
            let insecure = conditions::find(&status.conditions, INSECURE_ALGORITHMS_ALLOWED)
                .expect("written for every SAML config");
            assert_eq!(
                (insecure.status.as_str(), insecure.reason.as_str()),
                ("False", "Sha1Refused")
            );
        }
        // OIDC configs have no SAML algorithms to speak of.
        let oidc = desired_status(&config(PORTAL), &[], &[], true, None, now);
        assert_eq!(
            conditions::find(&oidc.conditions, INSECURE_ALGORITHMS_ALLOWED),
            None
        );
        // This controller owns the condition (an unchanged status is not written again).
        assert_eq!(owned_view(&status), status);
    }
}
