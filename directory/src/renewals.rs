//! Sharing a session's re-validation between the replicas of a sidecar, through its SsoUser
//! (`status.sessionRenewals`).
//!
//! An identity provider that rotates refresh tokens with no reuse interval (Auth0's default,
//! Okta after its grace) answers `invalid_grant` to the second use of a refresh token, and some
//! then revoke the whole grant. So a replica must never refresh a session with a token another
//! replica has already used. Two records on the SsoUser make sure of it:
//!
//! - a **lease** ([`Renewals::take_lease`]): before asking the IdP, a replica writes that it is
//!   asking, until a short deadline; another replica that finds a live lease does not ask. The
//!   write carries the `resourceVersion` it read, so of two replicas racing for the lease one
//!   gets a 409, reads again and finds the other's lease;
//! - the **renewal** ([`Renewals::record`]): after a refresh, the replica records the renewed
//!   session and the (possibly rotated) refresh grant, both sealed by the caller so only the
//!   sidecars of this SsoConfig can open them, and never as cookies. Every replica's watch
//!   brings it; a replica that sees a request with an older cookie goes on from the record.
//!
//! An entry goes once its session has expired; at most
//! [`MAX_SESSION_RENEWALS`] are kept (when full, the one expiring soonest goes).

use std::time::Duration;

use gatehouse_crds::consts::{MAX_SESSION_RENEWALS, SIDECAR_RENEWAL_FIELD_MANAGER};
use gatehouse_crds::{SessionRenewal, SsoUser};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// How many times a write re-reads after losing a race with a concurrent writer.
const MAX_RENEWAL_TRIES: u32 = 10;

/// Why a shared record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RenewalError {
    /// The API server refused or could not be reached.
    #[error("the Kubernetes API refused or could not be reached")]
    Unavailable(#[source] kube::Error),
    /// The API server did not answer within the budget.
    #[error("the Kubernetes API did not answer within {0:?}")]
    TimedOut(Duration),
    /// Concurrent writers won every attempt.
    #[error("SsoUser {name} kept changing; the re-validation record was not written")]
    Contended {
        /// The SsoUser.
        name: String,
    },
}

/// What [`Renewals::take_lease`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This replica holds the lease: it may ask the IdP.
    Taken,
    /// Another replica is asking the IdP about this session until then (Unix seconds).
    Busy {
        /// When its lease runs out.
        until: i64,
    },
    /// The session was re-validated after what the caller knows: it goes on from this record
    /// instead of asking the IdP.
    Superseded(SessionRenewal),
    /// There is no such SsoUser.
    NoSuchUser,
}

/// A renewal to share: the session's id, when the IdP vouched, and the sealed session and grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRenewal {
    /// The sidecar's session id.
    pub sid: String,
    /// When the IdP vouched (Unix seconds).
    pub validated_at: i64,
    /// The renewed session, sealed for the other replicas.
    pub session: String,
    /// The refresh grant to use next, sealed for the other replicas.
    pub grant: String,
    /// When the session expires (Unix seconds).
    pub until: i64,
}

/// What [`Renewals::update`] does with a record: leave it (and answer), or write this entry.
enum Change<T> {
    Keep(T),
    Write(SessionRenewal, T),
}

/// Reads and writes the shared re-validation records of one namespace's SsoUsers.
#[derive(Clone, Debug)]
pub struct Renewals {
    api: Api<SsoUser>,
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

fn time(unix: i64) -> Time {
    Time(jiff::Timestamp::from_second(unix).unwrap_or(jiff::Timestamp::MAX))
}

/// `entries` without those expired at `now`, with `entry` in place of the one of its id, and
/// at most [`MAX_SESSION_RENEWALS`] (the soonest to expire go first).
fn with_entry(entries: &[SessionRenewal], entry: SessionRenewal, now: i64) -> Vec<SessionRenewal> {
    let mut kept: Vec<SessionRenewal> = entries
        .iter()
        .filter(|e| e.id != entry.id && e.until.0.as_second() > now)
        .cloned()
        .collect();
    while kept.len() >= MAX_SESSION_RENEWALS {
        let Some(soonest) = kept
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.until.0)
            .map(|(i, _)| i)
        else {
            break;
        };
        kept.remove(soonest);
    }
    kept.push(entry);
    kept
}

impl Renewals {
    /// Records through `api` (namespaced).
    pub fn new(api: Api<SsoUser>) -> Self {
        Renewals { api }
    }

    /// The current record of session `sid` of SsoUser `user`, read from the API.
    pub async fn read(
        &self,
        user: &str,
        sid: &str,
    ) -> Result<Option<SessionRenewal>, RenewalError> {
        let current = self
            .api
            .get_opt(user)
            .await
            .map_err(RenewalError::Unavailable)?;
        Ok(current
            .and_then(|u| u.status)
            .and_then(|s| s.session_renewal(sid).cloned()))
    }

    /// Takes the lease of session `sid` of SsoUser `user` for `holder` for `lease_for`, unless
    /// another holder's lease is live, or the record is newer than `known_validated_at` (what
    /// the caller would refresh from). `until` (the session's expiry) in Unix seconds.
    pub async fn take_lease(
        &self,
        user: &str,
        sid: &str,
        holder: &str,
        known_validated_at: i64,
        lease_for: Duration,
        until: i64,
    ) -> Result<Lease, RenewalError> {
        self.update(user, sid, Lease::NoSuchUser, |existing, now| {
            if let Some(entry) = existing {
                if entry.validated_at > known_validated_at && entry.session.is_some() {
                    return Change::Keep(Lease::Superseded(entry.clone()));
                }
                if let (Some(other), Some(lease_until)) = (&entry.lease_holder, &entry.lease_until)
                    && other != holder
                    && lease_until.0.as_second() > now
                {
                    return Change::Keep(Lease::Busy {
                        until: lease_until.0.as_second(),
                    });
                }
            }
            let lease_until = now.saturating_add(i64::try_from(lease_for.as_secs()).unwrap_or(60));
            let entry = match existing {
                Some(entry) => SessionRenewal {
                    lease_holder: Some(holder.to_owned()),
                    lease_until: Some(time(lease_until)),
                    ..entry.clone()
                },
                None => SessionRenewal {
                    id: sid.to_owned(),
                    validated_at: known_validated_at,
                    session: None,
                    grant: None,
                    lease_holder: Some(holder.to_owned()),
                    lease_until: Some(time(lease_until)),
                    until: time(until),
                },
            };
            Change::Write(entry, Lease::Taken)
        })
        .await
    }

    /// Records a renewal of SsoUser `user`'s session and gives up `holder`'s lease; a record
    /// already newer is kept.
    pub async fn record(
        &self,
        user: &str,
        renewal: SharedRenewal,
        holder: &str,
    ) -> Result<(), RenewalError> {
        self.update(user, &renewal.sid, (), |existing, _| {
            if existing.is_some_and(|e| e.validated_at > renewal.validated_at) {
                return Change::Keep(());
            }
            // Another holder's live lease stays (it took the lease after ours ran out).
            let (lease_holder, lease_until) = match existing {
                Some(e) if e.lease_holder.as_deref() != Some(holder) => {
                    (e.lease_holder.clone(), e.lease_until.clone())
                }
                _ => (None, None),
            };
            let entry = SessionRenewal {
                id: renewal.sid.clone(),
                validated_at: renewal.validated_at,
                session: Some(renewal.session.clone()),
                grant: Some(renewal.grant.clone()),
                lease_holder,
                lease_until,
                until: time(renewal.until),
            };
            Change::Write(entry, ())
        })
        .await
    }

    /// Gives up `holder`'s lease of session `sid` (the IdP could not be asked): another replica
    /// may ask at once.
    pub async fn release(&self, user: &str, sid: &str, holder: &str) -> Result<(), RenewalError> {
        self.update(user, sid, (), |existing, _| match existing {
            Some(entry) if entry.lease_holder.as_deref() == Some(holder) => Change::Write(
                SessionRenewal {
                    lease_holder: None,
                    lease_until: None,
                    ..entry.clone()
                },
                (),
            ),
            _ => Change::Keep(()),
        })
        .await
    }

    /// Reads SsoUser `user`, asks `change` what to do with the record of session `sid` (given
    /// the current time, Unix seconds), and writes it if asked, on the version read; a
    /// concurrent writer (409) makes it read and ask again. `missing`: the answer when there is
    /// no such SsoUser.
    async fn update<T>(
        &self,
        user: &str,
        sid: &str,
        missing: T,
        change: impl Fn(Option<&SessionRenewal>, i64) -> Change<T>,
    ) -> Result<T, RenewalError> {
        for _ in 0..MAX_RENEWAL_TRIES {
            let Some(current) = self
                .api
                .get_opt(user)
                .await
                .map_err(RenewalError::Unavailable)?
            else {
                return Ok(missing);
            };
            let now = jiff::Timestamp::now().as_second();
            let status = current.status.clone().unwrap_or_default();
            let (entry, answer) = match change(status.session_renewal(sid), now) {
                Change::Keep(answer) => return Ok(answer),
                Change::Write(entry, answer) => (entry, answer),
            };
            match self
                .write(user, &current, &status.session_renewals, entry, now)
                .await
            {
                Ok(()) => return Ok(answer),
                Err(err) if is_status(&err, 409) => continue,
                Err(err) if is_status(&err, 404) => return Ok(missing),
                Err(err) => return Err(RenewalError::Unavailable(err)),
            }
        }
        Err(RenewalError::Contended {
            name: user.to_owned(),
        })
    }

    /// Writes `entries` with `entry` as `current`'s records, if `current` is still the latest
    /// version (else 409).
    async fn write(
        &self,
        user: &str,
        current: &SsoUser,
        entries: &[SessionRenewal],
        entry: SessionRenewal,
        now: i64,
    ) -> Result<(), kube::Error> {
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "status": { "sessionRenewals": with_entry(entries, entry, now) },
        });
        let params = PatchParams {
            field_manager: Some(SIDECAR_RENEWAL_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        self.api
            .patch_status(user, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_crds::{SsoUserSpec, SsoUserStatus};
    use kube_fake_client::ClientBuilder;

    const NS: &str = "team-a";
    const USER: &str = "okta-0123456789abcdef";

    async fn api_with_user() -> Api<SsoUser> {
        let mut user = SsoUser::new(
            USER,
            SsoUserSpec {
                config: "portal".into(),
                provider: "okta".into(),
                subject: "00u1".into(),
                suspended: None,
                sessions_not_before: None,
                scim: None,
            },
        );
        user.metadata.namespace = Some(NS.into());
        user.status = Some(SsoUserStatus::default());
        let client = ClientBuilder::new()
            .with_resource::<SsoUser>()
            .with_status_subresource::<SsoUser>()
            .with_object(user)
            .build()
            .await
            .expect("a fake API");
        Api::namespaced(client, NS)
    }

    fn far() -> i64 {
        jiff::Timestamp::now().as_second() + 3600
    }

    fn renewal(validated_at: i64) -> SharedRenewal {
        SharedRenewal {
            sid: "s1".into(),
            validated_at,
            session: format!("sealed-session-{validated_at}"),
            grant: format!("sealed-grant-{validated_at}"),
            until: far(),
        }
    }

    #[tokio::test]
    async fn one_replica_at_a_time_holds_the_lease() {
        let renewals = Renewals::new(api_with_user().await);
        let lease = Duration::from_secs(60);
        assert_eq!(
            renewals
                .take_lease(USER, "s1", "a", 100, lease, far())
                .await
                .expect("API"),
            Lease::Taken
        );
        // The same holder again: still its lease.
        assert_eq!(
            renewals
                .take_lease(USER, "s1", "a", 100, lease, far())
                .await
                .expect("API"),
            Lease::Taken
        );
        assert!(matches!(
            renewals
                .take_lease(USER, "s1", "b", 100, lease, far())
                .await
                .expect("API"),
            Lease::Busy { .. }
        ));
        // Another session of the same user is free.
        assert_eq!(
            renewals
                .take_lease(USER, "s2", "b", 100, lease, far())
                .await
                .expect("API"),
            Lease::Taken
        );
        // Released, another replica may take it.
        renewals.release(USER, "s1", "a").await.expect("API");
        assert_eq!(
            renewals
                .take_lease(USER, "s1", "b", 100, lease, far())
                .await
                .expect("API"),
            Lease::Taken
        );
    }

    #[tokio::test]
    async fn a_recorded_renewal_supersedes_an_older_cookie_and_frees_the_lease() {
        let renewals = Renewals::new(api_with_user().await);
        let lease = Duration::from_secs(60);
        assert_eq!(
            renewals
                .take_lease(USER, "s1", "a", 100, lease, far())
                .await
                .expect("API"),
            Lease::Taken
        );
        renewals.record(USER, renewal(200), "a").await.expect("API");
        let stored = renewals
            .read(USER, "s1")
            .await
            .expect("API")
            .expect("a record");
        assert_eq!(stored.validated_at, 200);
        assert_eq!(stored.session.as_deref(), Some("sealed-session-200"));
        assert_eq!(stored.lease_holder, None, "the lease went with the record");
        // A replica that still flies from the cookie of time 100 goes on from the record.
        assert_eq!(
            renewals
                .take_lease(USER, "s1", "b", 100, lease, far())
                .await
                .expect("API"),
            Lease::Superseded(stored.clone())
        );
        // One that knows the record takes the lease for the next refresh.
        assert_eq!(
            renewals
                .take_lease(USER, "s1", "b", 200, lease, far())
                .await
                .expect("API"),
            Lease::Taken
        );
        // An older renewal landing late never replaces a newer one.
        renewals.record(USER, renewal(150), "c").await.expect("API");
        let kept = renewals
            .read(USER, "s1")
            .await
            .expect("API")
            .expect("a record");
        assert_eq!(kept.validated_at, 200);
        assert_eq!(kept.lease_holder.as_deref(), Some("b"), "b's lease stays");
    }

    #[test]
    fn records_are_bounded_and_expired_ones_go() {
        let now = 1_000;
        let entry = |id: &str, until: i64| SessionRenewal {
            id: id.into(),
            validated_at: 0,
            session: None,
            grant: None,
            lease_holder: None,
            lease_until: None,
            until: time(until),
        };
        let mut entries: Vec<SessionRenewal> = (0..MAX_SESSION_RENEWALS)
            .map(|i| entry(&format!("s{i}"), now + 10 + i as i64))
            .collect();
        entries.push(entry("expired", now - 1));
        let kept = with_entry(&entries, entry("new", now + 500), now);
        assert_eq!(kept.len(), MAX_SESSION_RENEWALS);
        assert!(kept.iter().all(|e| e.id != "expired" && e.id != "s0"));
        assert!(kept.iter().any(|e| e.id == "new"));
    }
}
