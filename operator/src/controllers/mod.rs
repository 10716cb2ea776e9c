//! Controllers, one module per kind: `reconcile`, `error_policy`, `run`.

pub mod self_repair;
pub mod sso_config;
pub mod sso_user;
pub mod token_review;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_crds::SsoUser;
use k8s_openapi::NamespaceResourceScope;
use kube::api::PatchParams;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};

use crate::metrics::Metrics;

pub use gatehouse_crds::consts::OPERATOR_FIELD_MANAGER;

/// Shared state of the controllers.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// Publishes Events on meaningful transitions only.
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive transient failures per object (`kind/namespace/name`), for backoff.
    failures: Arc<Mutex<HashMap<String, u32>>>,
    /// Watch cache of SsoUsers, when running (tests and one-off calls list them instead).
    users: Option<Store<DeserializeGuard<SsoUser>>>,
    /// Requeue of a config that reconciled cleanly: the periodic re-check (drift, user count, and
    /// Secret rotation when Secrets are not watched).
    pub resync: Duration,
    /// Watch Secrets (metadata only) so rotation re-renders within seconds. Needs list/watch on
    /// Secrets in the watched scope.
    pub watch_secrets: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(client: Client, reporter: Reporter, metrics: Arc<Metrics>) -> Self {
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            failures: Arc::default(),
            users: None,
            resync: DEFAULT_RESYNC,
            watch_secrets: true,
        }
    }

    /// Requeue after a transient failure of `key`: 5s, 10s, 20s… up to 5 minutes.
    pub fn backoff(&self, key: &str) -> Action {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Action::requeue(backoff_delay(*n))
    }

    /// Forget the failures of `key` after a success.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Periodic re-check of a reconciled SsoConfig while Secrets are watched.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(30 * 60);
/// Periodic re-check while Secrets are not watched: how late a rotation may be picked up.
pub const UNWATCHED_SECRETS_RESYNC: Duration = Duration::from_secs(2 * 60);

/// Where the controllers watch: every namespace, or one.
#[derive(Clone, Debug, Default)]
pub struct Scope(pub Option<String>);

impl Scope {
    /// An `Api` of a namespaced kind in this scope.
    pub fn api<K>(&self, client: Client) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.0 {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }
}

/// Delay before retry number `attempt` (1-based).
pub fn backoff_delay(attempt: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    Duration::from_secs(secs.min(300))
}

/// Server-side apply parameters: one field manager for everything the operator writes; `force`
/// takes fields back from anyone who edited the operator's objects by hand.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(OPERATOR_FIELD_MANAGER).force()
}

/// Reporter of Events, named after the operator and, when known, its pod.
pub fn reporter(instance: Option<String>) -> Reporter {
    Reporter {
        controller: gatehouse_crds::consts::MANAGED_BY.to_string(),
        instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_delay(1), Duration::from_secs(5));
        assert_eq!(backoff_delay(2), Duration::from_secs(10));
        assert_eq!(backoff_delay(4), Duration::from_secs(40));
        assert_eq!(backoff_delay(30), Duration::from_secs(300));
    }
}
