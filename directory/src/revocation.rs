//! Ending sessions on every replica: what logout and OIDC back-channel logout write on the
//! SsoUser, so that the watch every replica already keeps carries it within a second.
//!
//! - One session ends: its id (the sidecar's own session id, or the identity provider's `sid`)
//!   is added to `status.revokedSessions` with the time the session would expire anyway; expired
//!   entries are dropped at each write, and the list is bounded ([`MAX_REVOKED_SESSIONS`]). A
//!   list full of live entries is never truncated (that would revive a session): every session
//!   of the user ends instead.
//! - Every session of a user started up to a time ends: `status.sessionsNotBefore` moves to that
//!   time's whole second (Kubernetes times have whole seconds; a session started in that second
//!   or before is refused, one started in a later second is not), and never back. The time is
//!   the caller's: now for a full list, the logout token's `iat` for a back-channel logout, so
//!   that the same logout applied again (a replay, a retry) writes the same value and ends no
//!   session started since.
//!
//! Both writes carry the `resourceVersion` they read (a concurrent writer makes them a 409 and
//! they read again) and use their own field manager, so the status a sign-in applies never
//! removes a revocation. Both go to the status: the spec of an existing SsoUser is its owner's
//! (a person, or a GitOps tool that would revert a write to it), and stays untouched.

use std::time::Duration;

use gatehouse_crds::consts::{MAX_REVOKED_SESSIONS, SIDECAR_REVOCATION_FIELD_MANAGER};
use gatehouse_crds::{RevokedSession, SsoUser};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::kubernetes::{sessions_not_before, sessions_not_before_ending};

/// How many times a revocation re-reads after losing a race with a concurrent writer.
const MAX_REVOCATION_TRIES: u32 = 10;

/// Why a revocation could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The API server refused or could not be reached.
    #[error("the Kubernetes API refused or could not be reached")]
    Unavailable(#[source] kube::Error),
    /// The API server did not answer within the budget.
    #[error("the Kubernetes API did not answer within {0:?}")]
    TimedOut(Duration),
    /// Concurrent writers won every attempt.
    #[error("SsoUser {name} kept changing; the revocation was not recorded")]
    Contended {
        /// The SsoUser.
        name: String,
    },
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// Recorded (or already recorded).
    Recorded,
    /// There is no such SsoUser: it has no session to end.
    NoSuchUser,
    /// The list of ended sessions was full: every session of the user was ended instead.
    AllSessions,
}

/// Writes revocations on the SsoUsers of one namespace.
#[derive(Clone, Debug)]
pub struct Revoker {
    api: Api<SsoUser>,
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(SIDECAR_REVOCATION_FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

impl Revoker {
    /// Revocations through `api` (namespaced).
    pub fn new(api: Api<SsoUser>) -> Self {
        Revoker { api }
    }

    /// Ends the session `session_id` of SsoUser `user`; the record is kept until `until` (when
    /// the session would expire anyway).
    pub async fn end_session(
        &self,
        user: &str,
        session_id: &str,
        until: jiff::Timestamp,
    ) -> Result<Revoked, RevocationError> {
        for _ in 0..MAX_REVOCATION_TRIES {
            let Some(current) = self
                .api
                .get_opt(user)
                .await
                .map_err(RevocationError::Unavailable)?
            else {
                return Ok(Revoked::NoSuchUser);
            };
            let now = jiff::Timestamp::now();
            let status = current.status.clone().unwrap_or_default();
            if status
                .revoked_sessions
                .iter()
                .any(|r| r.id == session_id && r.until.0 >= until)
            {
                return Ok(Revoked::Recorded);
            }
            let mut kept: Vec<RevokedSession> = status
                .revoked_sessions
                .into_iter()
                .filter(|r| r.until.0 > now && r.id != session_id)
                .collect();
            if kept.len() >= MAX_REVOKED_SESSIONS {
                // Forgetting a live entry would revive its session: end them all instead.
                return self
                    .end_all_sessions(user, jiff::Timestamp::now())
                    .await
                    .map(|r| match r {
                        Revoked::NoSuchUser => Revoked::NoSuchUser,
                        _ => Revoked::AllSessions,
                    });
            }
            kept.push(RevokedSession {
                id: session_id.to_owned(),
                until: Time(until),
            });
            let patch = json!({
                "metadata": { "resourceVersion": current.metadata.resource_version },
                "status": { "revokedSessions": kept },
            });
            match self
                .api
                .patch_status(user, &params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(Revoked::Recorded),
                Err(err) if is_status(&err, 409) => continue,
                Err(err) if is_status(&err, 404) => return Ok(Revoked::NoSuchUser),
                Err(err) => return Err(RevocationError::Unavailable(err)),
            }
        }
        Err(RevocationError::Contended {
            name: user.to_owned(),
        })
    }

    /// Ends every session of SsoUser `user` started at or before `up_to` (whole seconds):
    /// `status.sessionsNotBefore` becomes `up_to`'s second ([`sessions_not_before_ending`]),
    /// unless the cut-off in force (status or spec) is that or later already. Sessions started in a later second go on. The value depends
    /// on `up_to` alone, so ending the same sessions again writes nothing.
    pub async fn end_all_sessions(
        &self,
        user: &str,
        up_to: jiff::Timestamp,
    ) -> Result<Revoked, RevocationError> {
        let not_before = sessions_not_before_ending(up_to);
        for _ in 0..MAX_REVOCATION_TRIES {
            let Some(current) = self
                .api
                .get_opt(user)
                .await
                .map_err(RevocationError::Unavailable)?
            else {
                return Ok(Revoked::NoSuchUser);
            };
            if sessions_not_before(&current)
                .is_some_and(|t| t.as_second() >= not_before.as_second())
            {
                return Ok(Revoked::Recorded);
            }
            let patch = json!({
                "metadata": { "resourceVersion": current.metadata.resource_version },
                "status": { "sessionsNotBefore": Time(not_before) },
            });
            match self
                .api
                .patch_status(user, &params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(Revoked::Recorded),
                Err(err) if is_status(&err, 409) => continue,
                Err(err) if is_status(&err, 404) => return Ok(Revoked::NoSuchUser),
                Err(err) => return Err(RevocationError::Unavailable(err)),
            }
        }
        Err(RevocationError::Contended {
            name: user.to_owned(),
        })
    }
}

/// How long a revocation may take before the caller gives up waiting (it may still land).
pub const REVOCATION_BUDGET: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_crds::SsoUserSpec;
    use kube_fake_client::ClientBuilder;

    async fn api_with(user: &SsoUser) -> Api<SsoUser> {
        let client = ClientBuilder::new()
            .with_resource::<SsoUser>()
            .with_status_subresource::<SsoUser>()
            .with_object(user.clone())
            .build()
            .await
            .expect("in-memory API");
        Api::namespaced(client, "team-a")
    }

    fn user() -> SsoUser {
        let mut u = SsoUser::new(
            "okta-1",
            SsoUserSpec {
                config: "portal".into(),
                provider: "okta".into(),
                subject: "00u1".into(),
                suspended: None,
                sessions_not_before: None,
                scim: None,
            },
        );
        u.metadata.namespace = Some("team-a".into());
        u
    }

    fn hours(h: i64) -> jiff::Timestamp {
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(h)
    }

    #[tokio::test]
    async fn a_session_is_recorded_once_and_expired_entries_go() {
        let api = api_with(&user()).await;
        let revoker = Revoker::new(api.clone());
        assert_eq!(
            revoker
                .end_session("okta-1", "s1", hours(1))
                .await
                .expect("write"),
            Revoked::Recorded
        );
        // An entry whose session has expired is dropped at the next write.
        let mut stale = api.get_status("okta-1").await.expect("read");
        let status = stale.status.get_or_insert_default();
        status.revoked_sessions.push(RevokedSession {
            id: "old".into(),
            until: Time(hours(-1)),
        });
        api.patch_status(
            "okta-1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"revokedSessions": status.revoked_sessions}})),
        )
        .await
        .expect("seed an expired entry");
        revoker
            .end_session("okta-1", "s2", hours(1))
            .await
            .expect("write");
        revoker
            .end_session("okta-1", "s2", hours(1))
            .await
            .expect("again");
        let ids: Vec<String> = api
            .get_status("okta-1")
            .await
            .expect("read")
            .status
            .unwrap_or_default()
            .revoked_sessions
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["s1", "s2"]);
    }

    #[tokio::test]
    async fn a_full_list_ends_every_session_instead_of_forgetting_one() {
        let api = api_with(&user()).await;
        let revoker = Revoker::new(api.clone());
        for i in 0..MAX_REVOKED_SESSIONS {
            revoker
                .end_session("okta-1", &format!("s{i}"), hours(1))
                .await
                .expect("write");
        }
        assert_eq!(
            revoker
                .end_session("okta-1", "one-more", hours(1))
                .await
                .expect("write"),
            Revoked::AllSessions
        );
        let after = api.get_status("okta-1").await.expect("read");
        assert_eq!(
            after.spec,
            user().spec,
            "the spec is the owner's: never written"
        );
        let status = after.status.unwrap_or_default();
        let not_before = status
            .sessions_not_before
            .expect("status.sessionsNotBefore set");
        assert!(not_before.0 > jiff::Timestamp::now() - jiff::SignedDuration::from_secs(2));
        assert_eq!(
            status.revoked_sessions.len(),
            MAX_REVOKED_SESSIONS,
            "no live entry was forgotten"
        );
    }

    #[tokio::test]
    async fn an_unknown_user_has_nothing_to_end() {
        let api = api_with(&user()).await;
        let revoker = Revoker::new(api);
        assert_eq!(
            revoker
                .end_session("okta-2", "s1", hours(1))
                .await
                .expect("read"),
            Revoked::NoSuchUser
        );
        assert_eq!(
            revoker
                .end_all_sessions("okta-2", jiff::Timestamp::now())
                .await
                .expect("read"),
            Revoked::NoSuchUser
        );
    }

    #[tokio::test]
    async fn ending_the_sessions_up_to_a_time_again_writes_nothing_and_never_moves_back() {
        let api = api_with(&user()).await;
        let revoker = Revoker::new(api.clone());
        let logout = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 30)
            .expect("t")
            + jiff::SignedDuration::from_millis(400);
        let read = || async {
            let u = api.get_status("okta-1").await.expect("read");
            assert_eq!(
                u.spec,
                user().spec,
                "the spec is the owner's: never written"
            );
            (
                u.status
                    .and_then(|s| s.sessions_not_before)
                    .map(|t| t.0.as_second()),
                u.metadata.resource_version,
            )
        };
        assert_eq!(
            revoker
                .end_all_sessions("okta-1", logout)
                .await
                .expect("write"),
            Revoked::Recorded
        );
        let first = read().await;
        assert_eq!(first.0, Some(logout.as_second()));
        // The same logout again (a replay, a retry), later: nothing written.
        assert_eq!(
            revoker
                .end_all_sessions("okta-1", logout)
                .await
                .expect("again"),
            Revoked::Recorded
        );
        assert_eq!(read().await, first, "the SsoUser was written again");
        // An older logout arriving late does not revive what a newer one ended.
        revoker
            .end_all_sessions("okta-1", logout - jiff::SignedDuration::from_secs(10))
            .await
            .expect("older");
        assert_eq!(read().await, first);
    }

    #[tokio::test]
    async fn a_cut_off_the_owner_declared_later_already_ends_the_sessions_without_a_write() {
        let mut declared = user();
        let owners = jiff::Timestamp::now();
        declared.spec.sessions_not_before = Some(Time(sessions_not_before_ending(owners)));
        let api = api_with(&declared).await;
        let before = api
            .get("okta-1")
            .await
            .expect("read")
            .metadata
            .resource_version;
        Revoker::new(api.clone())
            .end_all_sessions("okta-1", owners - jiff::SignedDuration::from_secs(60))
            .await
            .expect("write");
        let after = api.get("okta-1").await.expect("read");
        assert_eq!(after.metadata.resource_version, before, "written anyway");
        assert_eq!(after.spec, declared.spec);
    }

    #[test]
    fn the_later_of_the_owners_and_the_sidecars_cut_off_applies() {
        use crate::kubernetes::{CachedUser, SessionIds, session_verdict};
        let at = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).expect("t");
        let verdict = |spec: Option<i64>, status: Option<i64>, started: i64| {
            let mut u = user();
            u.metadata.uid = Some("uid-1".into());
            u.spec.sessions_not_before = spec.map(|s| Time(at(s)));
            u.status = Some(gatehouse_crds::SsoUserStatus {
                sessions_not_before: status.map(|s| Time(at(s))),
                ..Default::default()
            });
            let cached = CachedUser::new(&u, "portal");
            session_verdict(&cached, "uid-1", at(started), SessionIds::default()).is_ok()
        };
        assert!(verdict(None, None, 0));
        assert!(!verdict(Some(10), None, 5), "the owner's cut-off");
        assert!(!verdict(None, Some(10), 5), "the sidecar's cut-off");
        assert!(!verdict(Some(0), Some(10), 5), "the later one: status");
        assert!(!verdict(Some(10), Some(0), 5), "the later one: spec");
        assert!(verdict(Some(0), Some(4), 5), "started after both");
    }

    #[test]
    fn the_written_time_ends_exactly_the_sessions_up_to_it() {
        // What `end_all_sessions` writes and what every replica's verdict reads must agree: the
        // sessions started in the logout's second or before end, one started in the next
        // second goes on. Moving either side alone (say, writing the second after the logout
        // while the verdict refuses a session started at `sessionsNotBefore`) fails here rather
        // than silently ending sessions started after a logout, or keeping sessions started
        // before it.
        use crate::kubernetes::{CachedUser, SessionIds, session_verdict};
        let logout = jiff::Timestamp::from_second(1_800_000_000).expect("t")
            + jiff::SignedDuration::from_millis(999);
        let mut u = user();
        u.metadata.uid = Some("uid-1".into());
        u.spec.sessions_not_before = Some(Time(sessions_not_before_ending(logout)));
        let cached = CachedUser::new(&u, "portal");
        let verdict = |started: i64| {
            session_verdict(
                &cached,
                "uid-1",
                jiff::Timestamp::from_second(started).expect("t"),
                SessionIds::default(),
            )
        };
        assert!(verdict(1_800_000_000 - 60).is_err(), "started before");
        assert!(
            verdict(1_800_000_000).is_err(),
            "started in the logout's second"
        );
        assert_eq!(verdict(1_800_000_001), Ok(()), "started in the next second");
    }

    #[test]
    fn not_before_is_the_whole_second_of_the_time_given() {
        let t =
            jiff::Timestamp::from_second(100).expect("t") + jiff::SignedDuration::from_millis(700);
        assert_eq!(
            sessions_not_before_ending(t),
            jiff::Timestamp::from_second(100).expect("t")
        );
    }
}
