//! Leader election on a `coordination.k8s.io` Lease, so that only one operator replica
//! reconciles at a time.
//!
//! The holder renews `spec.renewTime` every few seconds. A candidate takes the Lease over only
//! after it has watched the record stay unchanged for a whole `leaseDurationSeconds`, measured on
//! its own clock (so clock skew between replicas does not matter), and every write carries the
//! `resourceVersion` it read, so two candidates can never both win: the loser gets a 409.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// Timings of the election, as in client-go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// The leader gives up (and the process stops) when it could not renew for this long.
    pub renew_deadline: Duration,
    /// Pause between attempts, by leader and candidates.
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What a candidate last saw of the Lease, and when (on its own clock).
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    resource_version: Option<String>,
    at: Timestamp,
}

/// One replica's handle on the Lease.
#[derive(Clone)]
pub struct LeaderLease {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
    observed: Arc<Mutex<Option<Observed>>>,
}

impl std::fmt::Debug for LeaderLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLease")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl LeaderLease {
    pub fn new(
        api: Api<Lease>,
        name: impl Into<String>,
        identity: impl Into<String>,
        timings: Timings,
    ) -> Self {
        LeaderLease {
            api,
            name: name.into(),
            identity: identity.into(),
            timings,
            observed: Arc::default(),
        }
    }

    /// Take the Lease if it is free or expired, or renew it if this replica holds it. Returns
    /// whether this replica leads after the call. `now` is this replica's clock.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<bool> {
        let lease = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(Error::kube(format!("reading Lease {}", self.name)))?;
        let Some(lease) = lease else {
            return self.create(now).await;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let renew_time = spec.renew_time.as_ref().map(|t| t.0);
        let seen = Observed {
            holder: holder.clone(),
            renew_time,
            resource_version: lease.metadata.resource_version.clone(),
            at: now,
        };
        let mut observed = self.observed.lock().await;
        // The record changed since we last looked: restart the expiry clock.
        let since = match observed.as_ref() {
            Some(o) if o.holder == seen.holder && o.renew_time == seen.renew_time => o.at,
            _ => now,
        };
        *observed = Some(Observed { at: since, ..seen });
        drop(observed);

        let ours = holder.as_deref() == Some(self.identity.as_str());
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(15).max(1)).unwrap_or(15),
        );
        let expired = now.duration_since(since).unsigned_abs() >= duration;
        if !(ours || holder.is_none() || expired) {
            return Ok(false);
        }

        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        let mut next = lease.clone();
        next.spec = Some(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: if ours {
                spec.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        });
        // `replace` sends the resourceVersion we read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => {
                if !ours {
                    info!(lease = %self.name, identity = %self.identity, previous = ?holder, "acquired the leader lease");
                }
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
            Err(e) => Err(Error::kube(format!("updating Lease {}", self.name))(e)),
        }
    }

    async fn create(&self, now: Timestamp) -> Result<bool> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => {
                info!(lease = %self.name, identity = %self.identity, "acquired the leader lease");
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() || status.is_conflict() => {
                Ok(false)
            }
            Err(e) => Err(Error::kube(format!("creating Lease {}", self.name))(e)),
        }
    }

    /// Give the Lease up (on shutdown) so another replica takes over at once.
    pub async fn release(&self) -> Result<()> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(Error::kube(format!("reading Lease {}", self.name)))?
        else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                info!(lease = %self.name, "released the leader lease");
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(()),
            Err(e) => Err(Error::kube(format!("releasing Lease {}", self.name))(e)),
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(15)
    }

    /// Wait until this replica leads (or `stop` resolves: then `Ok(false)`).
    pub async fn acquire(&self, stop: &mut (impl Future<Output = ()> + Unpin)) -> Result<bool> {
        loop {
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(error) => warn!(%error, "cannot reach the leader lease; retrying"),
            }
            tokio::select! {
                _ = &mut *stop => return Ok(false),
                _ = tokio::time::sleep(self.timings.retry_period) => {}
            }
        }
    }

    /// Renew until renewal fails for longer than the renew deadline; then returns the error
    /// that ends leadership.
    pub async fn hold(&self) -> Error {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.timings.retry_period).await;
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => return Error::LeadershipLost(self.name.clone()),
                Err(error) => warn!(%error, "cannot renew the leader lease"),
            }
            if last_renewal.elapsed() > self.timings.renew_deadline {
                return Error::LeadershipLost(self.name.clone());
            }
        }
    }
}

/// Run `work` only while this replica holds the Lease. `work` stops by itself on shutdown (the
/// controllers finish what they are doing); `shutdown` ends the wait for the Lease. Returns when
/// `work` ends (releasing the Lease), or with [`Error::LeadershipLost`] when the Lease is lost, so
/// the process exits and restarts as a candidate with no controller state left over.
pub async fn run_as_leader<W, F, S>(
    lease: LeaderLease,
    metrics: Arc<Metrics>,
    work: W,
    shutdown: S,
) -> Result<()>
where
    W: FnOnce() -> F,
    F: Future<Output = ()>,
    S: Future<Output = ()>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    info!(identity = %lease.identity, lease = %lease.name, "waiting for the leader lease");
    if !lease.acquire(&mut shutdown).await? {
        return Ok(());
    }
    metrics.set_leader(true);
    let outcome = tokio::select! {
        _ = work() => Ok(()),
        lost = lease.hold() => Err(lost),
    };
    metrics.set_leader(false);
    if outcome.is_ok()
        && let Err(error) = lease.release().await
    {
        warn!(%error, "cannot release the leader lease");
    }
    outcome
}
