//! A new user's first requests on a replica whose watch does not hold them yet.
//!
//! Replica A creates the SsoUser at sign-in and admits the user at once (read-your-write); the
//! user's next request may land on replica B before B's watch has delivered the new object.
//! Refusing there would send the user back to sign in, and maybe around again. So on a cache
//! miss for a session issued moments ago ([`ReadLimits::fresh_session`]), B reads the SsoUser
//! from the API instead:
//!
//! - bounded: a read waits at most [`ReadLimits::deadline`], kube's own retries included;
//! - rate-limited: concurrent misses for one user share one read, and all reads draw from one
//!   token bucket, so a flood of misses costs the API server a bounded number of reads;
//! - cached: a user found is admitted like one this replica provisioned, until its watch speaks
//!   about the object (at most the read-your-write grace);
//! - judged as the watch cache judges, by the watch's own label selector: deleted, suspended,
//!   revoked or re-created (another UID) users are refused, a user without the config's label
//!   (`gatehouse.dev/config`) is deleted as far as this config goes, and a deletion the watch
//!   delivers while the read is under way wins.
//!
//! A miss for an older session is refused without a read: the watch is the authority for users
//! it has had time to see. A stale watch refuses everything, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_crds::SsoUser;
use kube::Api;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::kubernetes::{SessionIds, SessionRefusal, UserCache, verdict_on_read};

/// How reads on a miss are bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// A miss for a session issued longer ago than this is refused without a read.
    pub fresh_session: Duration,
    /// The longest one read waits for the API (kube's retries included).
    pub deadline: Duration,
    /// Reads allowed at once before the rate applies.
    pub burst: u32,
    /// Reads allowed per second, sustained.
    pub per_second: u32,
}

impl Default for ReadLimits {
    /// Two minutes covers a watch that is a little behind, or a replica that started moments
    /// ago; a healthy watch delivers a new object within a second. Twenty reads at once and ten
    /// a second cover a crowd of first sign-ins; a flood of misses gets no more.
    fn default() -> Self {
        ReadLimits {
            fresh_session: Duration::from_secs(120),
            deadline: Duration::from_secs(2),
            burst: 20,
            per_second: 10,
        }
    }
}

/// What a read on a miss did, for the `gatehouse_user_reads_total` metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The API returned the SsoUser (whether or not the session passes).
    Found,
    /// The API has no such SsoUser.
    NotFound,
    /// The API call failed.
    Failed,
    /// The API did not answer within [`ReadLimits::deadline`].
    TimedOut,
    /// No read: over the rate limit.
    RateLimited,
}

impl ReadOutcome {
    /// Every outcome, for pre-created metric series.
    pub const ALL: [ReadOutcome; 5] = [
        ReadOutcome::Found,
        ReadOutcome::NotFound,
        ReadOutcome::Failed,
        ReadOutcome::TimedOut,
        ReadOutcome::RateLimited,
    ];

    /// Stable, low-cardinality label.
    pub fn label(self) -> &'static str {
        match self {
            ReadOutcome::Found => "found",
            ReadOutcome::NotFound => "not_found",
            ReadOutcome::Failed => "failed",
            ReadOutcome::TimedOut => "timed_out",
            ReadOutcome::RateLimited => "rate_limited",
        }
    }
}

/// What one read found, shared by every request that waited for it.
#[derive(Clone, Debug)]
enum Read {
    Found(Arc<SsoUser>),
    Missing,
    Failed(ReadOutcome),
}

impl Read {
    fn outcome(&self) -> ReadOutcome {
        match self {
            Read::Found(_) => ReadOutcome::Found,
            Read::Missing => ReadOutcome::NotFound,
            Read::Failed(outcome) => *outcome,
        }
    }
}

/// The verdict on a miss.
#[derive(Debug, PartialEq, Eq)]
pub struct Confirmation {
    /// Whether the session may continue.
    pub verdict: Result<(), SessionRefusal>,
    /// What this request's read did; `None` when it shared another request's read.
    pub read: Option<ReadOutcome>,
}

/// Reads allowed: `burst` at once, refilled at `per_second`.
#[derive(Debug)]
struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(burst: u32, per_second: u32, now: Instant) -> Self {
        TokenBucket {
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            tokens: f64::from(burst),
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

type Flights = Mutex<HashMap<String, Arc<OnceCell<Read>>>>;

/// One user's read in flight; the last request holding it takes it off the table.
struct Flight<'a> {
    flights: &'a Flights,
    name: &'a str,
    cell: Arc<OnceCell<Read>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights
            .get(self.name)
            .is_some_and(|cell| Arc::ptr_eq(cell, &self.cell))
        {
            flights.remove(self.name);
        }
    }
}

/// Confirms cache misses of new sessions by reading the SsoUser from the API (see the module).
#[derive(Debug)]
pub struct ReadThrough {
    api: Api<SsoUser>,
    cache: UserCache,
    limits: ReadLimits,
    bucket: Mutex<TokenBucket>,
    flights: Flights,
}

impl ReadThrough {
    /// Reads through `api` (namespaced) for misses of `cache`, within `limits`.
    pub fn new(api: Api<SsoUser>, cache: UserCache, limits: ReadLimits) -> Self {
        ReadThrough {
            api,
            cache,
            bucket: Mutex::new(TokenBucket::new(
                limits.burst,
                limits.per_second,
                Instant::now(),
            )),
            limits,
            flights: Mutex::default(),
        }
    }

    /// Whether the cache's `refusal` of a session issued at `issued_at` is a miss worth a read
    /// at `now` (both Unix seconds): the watch does not hold the user, and the session is new.
    pub fn may_read(&self, refusal: SessionRefusal, issued_at: i64, now: i64) -> bool {
        UserCache::is_miss(refusal)
            && now.abs_diff(issued_at) <= self.limits.fresh_session.as_secs()
    }

    /// Reads SsoUser `name` (or waits for the read of it already under way) and judges a
    /// session bound to `uid`, started at `started`. A user found and passing is remembered
    /// until the watch speaks about it.
    pub async fn confirm(
        &self,
        name: &str,
        uid: &str,
        started: jiff::Timestamp,
        ids: SessionIds<'_>,
    ) -> Confirmation {
        let flight = self.join(name);
        let mut led = false;
        let read = flight
            .cell
            .get_or_init(|| {
                led = true;
                self.read(name)
            })
            .await
            .clone();
        drop(flight);
        let verdict = match &read {
            Read::Found(user) => {
                verdict_on_read(user, self.cache.scope(), uid, started, ids).and_then(|()| {
                    // `false`: the watch delivered this very object's deletion meanwhile.
                    self.cache
                        .remember(name, uid)
                        .then_some(())
                        .ok_or(SessionRefusal::Deleted)
                })
            }
            Read::Missing => Err(SessionRefusal::Deleted),
            Read::Failed(_) => Err(SessionRefusal::Unconfirmed),
        };
        Confirmation {
            verdict,
            read: led.then(|| read.outcome()),
        }
    }

    fn join<'a>(&'a self, name: &'a str) -> Flight<'a> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        let cell = flights.entry(name.to_owned()).or_default().clone();
        Flight {
            flights: &self.flights,
            name,
            cell,
        }
    }

    async fn read(&self, name: &str) -> Read {
        let allowed = self
            .bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(Instant::now());
        if !allowed {
            tracing::debug!(
                user = name,
                "SsoUser read on a cache miss over the rate limit"
            );
            return Read::Failed(ReadOutcome::RateLimited);
        }
        match tokio::time::timeout(self.limits.deadline, self.api.get_opt(name)).await {
            Ok(Ok(Some(user))) => Read::Found(Arc::new(user)),
            Ok(Ok(None)) => Read::Missing,
            Ok(Err(error)) => {
                tracing::warn!(user = name, error = %error, "could not read an SsoUser the watch does not hold yet");
                Read::Failed(ReadOutcome::Failed)
            }
            Err(_) => {
                tracing::warn!(user = name, deadline = ?self.limits.deadline, "the Kubernetes API did not answer a read of an SsoUser the watch does not hold yet");
                Read::Failed(ReadOutcome::TimedOut)
            }
        }
    }
}

#[cfg(test)]
#[path = "read_through_tests.rs"]
mod tests;
