//! SsoUsers as the live user directory of one SsoConfig: just-in-time provisioning at sign-in,
//! and the watch cache every request's session is checked against.
//!
//! Provisioning creates the SsoUser with a plain create (exactly one creator wins; a concurrent
//! creator's `AlreadyExists` means "read it again"), never writes the spec of an object that
//! already exists (a user declared in Git keeps its spec), and writes the status by server-side
//! apply with a `resourceVersion` precondition so concurrent sign-ins count every login.
//!
//! Revocation reads a reflector store of the namespace's SsoUsers. A session is bound to the
//! SsoUser's UID, so a user deleted and re-created under the same name does not revive old
//! cookies. When the watch has been broken for longer than the staleness limit, every session is
//! refused: revocation must stay bounded even while the API server is unreachable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use gatehouse_crds::consts::{
    LABEL_CONFIG, LABEL_PROVIDER, LABEL_SOURCE, SIDECAR_FIELD_MANAGER, SOURCE_SSO,
};
use gatehouse_crds::names::sso_user_name;
use gatehouse_crds::{API_VERSION, ProvisioningMode, SsoUser};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource as _;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{DeserializeGuard, Expression, Selector, SelectorExt as _};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use gatehouse_auth::signin::{Occasion, SignedInUser};

use crate::error::ProvisionError;
use crate::liveness::Heartbeat;

/// How many times a sign-in re-reads and retries after losing a race with a concurrent writer.
/// Each retry waits a random time up to a ceiling that doubles per attempt (4 ms … 128 ms, "full
/// jitter"), so a burst of sign-ins of one user (many tabs, many replicas) spreads out instead of
/// colliding again; the worst case stays a few seconds.
const MAX_PROVISION_TRIES: u32 = 40;

async fn backoff(attempt: u32) {
    let ceiling_ms = 2u64 << attempt.min(6);
    let wait = rand::random_range(1..=ceiling_ms);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// What admission read: the SsoUser as it was, or `None` when it does not exist yet.
#[derive(Clone, Debug, Default)]
pub struct Admitted(Option<SsoUser>);

/// The SsoUser a sign-in resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedUser {
    /// Object name.
    pub name: String,
    /// Object UID: sessions bind to it.
    pub uid: String,
    /// This sign-in created the object.
    pub created: bool,
    /// The role differs from the one recorded at the previous sign-in.
    pub role_changed: bool,
    /// The role recorded at the previous sign-in.
    pub previous_role: Option<String>,
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

/// How stale `status.lastVouched` may get before a re-validation moves it: every session's
/// re-validation (each `revalidateInterval`) would otherwise be a write, and a watch event on
/// every replica, though nothing else changed. `deleteAfterInactive` is at least an hour and at
/// least the session lifetime, so this costs it nothing; a sign-in always writes the time.
pub const LAST_VOUCHED_RESOLUTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// `status.lastVouched` after the IdP vouched for the user on `occasion` at `now`, when it was
/// `previous`: now, except for a re-validation within [`LAST_VOUCHED_RESOLUTION`] of `previous`.
fn last_vouched(occasion: Occasion, previous: Option<&Time>, now: jiff::Timestamp) -> Time {
    match (occasion, previous) {
        (Occasion::Revalidation, Some(previous))
            if now.duration_since(previous.0) < LAST_VOUCHED_RESOLUTION =>
        {
            previous.clone()
        }
        _ => Time(now),
    }
}

/// Just-in-time provisioning of one SsoConfig's users.
#[derive(Clone, Debug)]
pub struct Provisioner {
    api: Api<SsoUser>,
    config: String,
    mode: ProvisioningMode,
    cache: UserCache,
}

impl Provisioner {
    /// Provisioner writing SsoUsers of `config` through `api` (namespaced), recording freshly
    /// created users in `cache` so this replica does not refuse them before its watch sees them.
    pub fn new(
        api: Api<SsoUser>,
        config: impl Into<String>,
        mode: ProvisioningMode,
        cache: UserCache,
    ) -> Self {
        Provisioner {
            api,
            config: config.into(),
            mode,
            cache,
        }
    }

    /// Read-only: whether `sign_in` may proceed (its SsoUser, if any, is this identity's and not
    /// suspended; in `preDeclared` mode, it exists). Nothing is written.
    pub async fn admit(&self, sign_in: &SignedInUser) -> Result<Admitted, ProvisionError> {
        let name = sso_user_name(&sign_in.provider, &sign_in.issuer, &sign_in.subject);
        match self
            .api
            .get_opt(&name)
            .await
            .map_err(ProvisionError::Unavailable)?
        {
            Some(user) => self
                .usable(&user, sign_in, name)
                .map(|()| Admitted(Some(user))),
            // A refresh that was in the air when the user was deleted must not bring it back.
            None if sign_in.occasion == Occasion::Revalidation => Err(ProvisionError::Deleted),
            None if self.mode == ProvisioningMode::PreDeclared => Err(ProvisionError::NotDeclared),
            None => Ok(Admitted(None)),
        }
    }

    /// [`Provisioner::provision`] starting from what [`Provisioner::admit`] read, instead of
    /// reading the SsoUser again (one API round trip less per sign-in; a change in between only
    /// costs a retry, as the status write is conditional).
    pub async fn provision_admitted(
        &self,
        sign_in: &SignedInUser,
        admitted: Admitted,
    ) -> Result<ProvisionedUser, ProvisionError> {
        self.provision_from(sign_in, Some(admitted.0)).await
    }

    fn usable(
        &self,
        user: &SsoUser,
        sign_in: &SignedInUser,
        name: String,
    ) -> Result<(), ProvisionError> {
        if user.spec.config != self.config
            || user.spec.provider != sign_in.provider
            || user.spec.subject != sign_in.subject
        {
            return Err(ProvisionError::Collision { name });
        }
        if user.spec.is_suspended() {
            return Err(ProvisionError::Suspended);
        }
        Ok(())
    }

    /// Create or refresh the SsoUser of a permitted sign-in and return it.
    pub async fn provision(
        &self,
        sign_in: &SignedInUser,
    ) -> Result<ProvisionedUser, ProvisionError> {
        self.provision_from(sign_in, None).await
    }

    async fn provision_from(
        &self,
        sign_in: &SignedInUser,
        mut known: Option<Option<SsoUser>>,
    ) -> Result<ProvisionedUser, ProvisionError> {
        let name = sso_user_name(&sign_in.provider, &sign_in.issuer, &sign_in.subject);
        let mut created = false;
        for attempt in 0..MAX_PROVISION_TRIES {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let existing = match known.take() {
                Some(read) => read,
                None => self
                    .api
                    .get_opt(&name)
                    .await
                    .map_err(ProvisionError::Unavailable)?,
            };
            let user = match existing {
                Some(user) => user,
                // Deleted between the admission and this write (or a retry's read).
                None if sign_in.occasion == Occasion::Revalidation => {
                    return Err(ProvisionError::Deleted);
                }
                None if self.mode == ProvisioningMode::PreDeclared => {
                    return Err(ProvisionError::NotDeclared);
                }
                None => match self
                    .api
                    .create(&PostParams::default(), &self.new_user(&name, sign_in))
                    .await
                {
                    Ok(user) => {
                        created = true;
                        user
                    }
                    // Another replica or tab created it first: read theirs.
                    Err(err) if is_status(&err, 409) => continue,
                    Err(err) => return Err(ProvisionError::Unavailable(err)),
                },
            };
            self.usable(&user, sign_in, name.clone())?;
            if !created && self.lacks_labels(&user, sign_in) {
                // A user declared in Git without the labels: add them (metadata, never the spec)
                // so the label-selected watch of every replica sees it.
                let labels = json!({ "metadata": { "labels": {
                    LABEL_CONFIG: self.config,
                    LABEL_PROVIDER: sign_in.provider,
                } } });
                match self
                    .api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&labels))
                    .await
                {
                    Ok(_) => continue,
                    Err(err) if is_status(&err, 404) || is_status(&err, 409) => continue,
                    Err(err) => return Err(ProvisionError::Unavailable(err)),
                }
            }
            let previous = user.status.clone().unwrap_or_default();
            let uid = user.metadata.uid.clone().unwrap_or_default();
            // A sign-in counts; a re-validation keeps the count and time (an applied patch
            // that left them out would remove them). Both are the IdP vouching for the user.
            let now = jiff::Timestamp::now();
            let (last_login, login_count) = match sign_in.occasion {
                Occasion::SignIn => (Some(Time(now)), previous.login_count.unwrap_or(0) + 1),
                Occasion::Revalidation => (
                    previous.last_login.clone(),
                    previous.login_count.unwrap_or(0),
                ),
            };
            let last_vouched = last_vouched(sign_in.occasion, previous.last_vouched.as_ref(), now);
            let patch = json!({
                "apiVersion": API_VERSION,
                "kind": "SsoUser",
                "metadata": {
                    "name": name,
                    // Precondition: a concurrent sign-in makes this a 409 and we count again.
                    "resourceVersion": user.metadata.resource_version,
                },
                "status": {
                    "email": sign_in.email,
                    "name": sign_in.name,
                    "preferredUsername": sign_in.preferred_username,
                    "role": sign_in.role,
                    "org": sign_in.org,
                    "issuer": sign_in.issuer,
                    "attributes": sign_in.attributes,
                    "groups": sign_in.groups,
                    "lastLogin": last_login,
                    "loginCount": login_count,
                    "lastVouched": last_vouched,
                },
            });
            let params = PatchParams::apply(SIDECAR_FIELD_MANAGER).force();
            match self
                .api
                .patch_status(&name, &params, &Patch::Apply(&patch))
                .await
            {
                Ok(_) => {
                    self.cache.remember(&name, &uid);
                    return Ok(ProvisionedUser {
                        role_changed: !created && previous.role.as_deref() != Some(sign_in.role),
                        previous_role: previous.role,
                        name,
                        uid,
                        created,
                    });
                }
                Err(err) if is_status(&err, 409) => continue,
                // Deleted between our read and write: start over.
                Err(err) if is_status(&err, 404) => continue,
                Err(err) => return Err(ProvisionError::Unavailable(err)),
            }
        }
        Err(ProvisionError::Contended { name })
    }

    fn lacks_labels(&self, user: &SsoUser, sign_in: &SignedInUser) -> bool {
        let labels = user.metadata.labels.as_ref();
        let has = |key: &str, value: &str| {
            labels.and_then(|l| l.get(key)).map(String::as_str) == Some(value)
        };
        !has(LABEL_CONFIG, &self.config) || !has(LABEL_PROVIDER, &sign_in.provider)
    }

    fn new_user(&self, name: &str, sign_in: &SignedInUser) -> SsoUser {
        let mut user = SsoUser::new(
            name,
            gatehouse_crds::SsoUserSpec {
                config: self.config.clone(),
                provider: sign_in.provider.clone(),
                subject: sign_in.subject.clone(),
                suspended: None,
                sessions_not_before: None,
            },
        );
        user.metadata.labels = Some(
            [
                (LABEL_SOURCE, SOURCE_SSO),
                (LABEL_CONFIG, self.config.as_str()),
                (LABEL_PROVIDER, sign_in.provider.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        user
    }
}

/// Why a session was refused by the user directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRefusal {
    /// The SsoUser no longer exists.
    Deleted,
    /// An SsoUser of that name exists, but it is not the one the session was issued for.
    Replaced,
    /// The SsoUser is suspended.
    Suspended,
    /// `sessionsNotBefore` is after the session's start.
    SessionsRevoked,
    /// The session itself was ended (`status.revokedSessions`: logout, back-channel logout).
    SessionEnded,
    /// The watch has been broken longer than the staleness limit.
    Stale,
    /// The watch has not completed its first list yet.
    NotSynced,
    /// The SsoUser exists but cannot be decoded: whether it is suspended cannot be read, so its
    /// sessions fail closed (the watch and every other user go on).
    Undecodable,
    /// The watch does not hold the user of a session issued moments ago, and reading it from the
    /// API failed, timed out or was over the read rate limit ([`super::read_through`]).
    Unconfirmed,
}

impl SessionRefusal {
    /// Stable, low-cardinality label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            SessionRefusal::Deleted => "user_deleted",
            SessionRefusal::Replaced => "user_replaced",
            SessionRefusal::Suspended => "user_suspended",
            SessionRefusal::SessionsRevoked => "sessions_revoked",
            SessionRefusal::SessionEnded => "session_ended",
            SessionRefusal::Stale => "revocation_stale",
            SessionRefusal::NotSynced => "revocation_not_synced",
            SessionRefusal::Undecodable => "user_undecodable",
            SessionRefusal::Unconfirmed => "user_unconfirmed",
        }
    }
}

/// The SsoUsers of one SsoConfig: those labelled `gatehouse.dev/config=<config>`. The watch asks
/// the API server for exactly these ([`UserCacheFeeder::run`]), and an SsoUser read any other way
/// is judged by the same selector ([`verdict_on_read`]): a user without the label is, for this
/// config, deleted, as the watch reports it.
#[derive(Clone, Debug)]
pub(crate) struct ConfigScope {
    config: String,
    selector: Selector,
}

impl ConfigScope {
    pub(crate) fn new(config: impl Into<String>) -> Self {
        let config = config.into();
        let selector = Selector::from(Expression::Equal(LABEL_CONFIG.to_owned(), config.clone()));
        ConfigScope { config, selector }
    }

    /// The SsoConfig's name.
    pub(crate) fn config(&self) -> &str {
        &self.config
    }

    /// The label selector of the watch.
    pub(crate) fn selector(&self) -> &Selector {
        &self.selector
    }

    /// Whether the watch selects `user`.
    pub(crate) fn selects(&self, user: &SsoUser) -> bool {
        self.selector
            .matches(user.metadata.labels.as_ref().unwrap_or(&Default::default()))
    }
}

/// Whether a session started at `started` is ended by `spec.sessionsNotBefore` = `not_before`.
///
/// Sessions record their start in whole seconds, so a session started in the cut-off's second
/// may have started before it: it ends. One started in a later second goes on. The sidecar's own
/// writes ([`sessions_not_before_ending`]) follow the same rule.
pub fn ends_sessions_started(not_before: jiff::Timestamp, started: jiff::Timestamp) -> bool {
    started.as_second() <= not_before.as_second()
}

/// The cut-off that applies to `user`'s sessions: the later of `spec.sessionsNotBefore` (the
/// user's own) and `status.sessionsNotBefore` (the sidecar's, [`crate::revocation`]).
pub fn sessions_not_before(user: &SsoUser) -> Option<jiff::Timestamp> {
    let from_status = user
        .status
        .as_ref()
        .and_then(|s| s.sessions_not_before.as_ref());
    [user.spec.sessions_not_before.as_ref(), from_status]
        .into_iter()
        .flatten()
        .map(|t| t.0)
        .max()
}

/// The `sessionsNotBefore` that ends every session started at or before `up_to` (its whole
/// second included) and none started in a later second: `up_to`, to the second. A session
/// started after `up_to` in the same second ends too; whole seconds cannot tell it apart.
pub fn sessions_not_before_ending(up_to: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(up_to.as_second()).unwrap_or(up_to)
}

/// [`session_verdict`] on SsoUser `user` read from the API rather than delivered by the watch (a
/// read on a cache miss, [`super::read_through`]): the watch's label selector applies first, so
/// such a read never admits a user the watch would not hold. Every judgement of an SsoUser that
/// did not come through the watch goes through here.
pub(crate) fn verdict_on_read(
    user: &SsoUser,
    scope: &ConfigScope,
    uid: &str,
    started: jiff::Timestamp,
    ids: SessionIds<'_>,
) -> Result<(), SessionRefusal> {
    session_verdict(user, scope.config(), uid, started, ids)?;
    // Outside the watch's selection (its label removed or changed): deleted, as the watch
    // reported it.
    if !scope.selects(user) {
        return Err(SessionRefusal::Deleted);
    }
    Ok(())
}

/// Whether a session bound to `uid` of `config`, started at `started`, may continue as far as
/// SsoUser `user` says: the watch cache's copy, which the API server selected by the config's
/// label (an SsoUser read any other way: [`verdict_on_read`]).
pub(crate) fn session_verdict(
    user: &SsoUser,
    config: &str,
    uid: &str,
    started: jiff::Timestamp,
    ids: SessionIds<'_>,
) -> Result<(), SessionRefusal> {
    if user.metadata.uid.as_deref() != Some(uid) || user.spec.config != config {
        return Err(SessionRefusal::Replaced);
    }
    if user.spec.is_suspended() {
        return Err(SessionRefusal::Suspended);
    }
    if let Some(not_before) = sessions_not_before(user)
        && ends_sessions_started(not_before, started)
    {
        return Err(SessionRefusal::SessionsRevoked);
    }
    if let (Some(status), Some(own)) = (&user.status, ids.own)
        && status.is_session_revoked(own, ids.idp)
    {
        return Err(SessionRefusal::SessionEnded);
    }
    Ok(())
}

/// State of the SsoUser watch, for readiness and metrics.
///
/// Freshness is positive evidence, not the absence of errors: the cache counts as fresh for
/// `staleness` after the watch last showed it is alive — an event, a completed list, a watch
/// request the API server answered, any bytes of an open watch (bookmarks included), or the
/// server ending a watch at its timeout. So recovery needs no object to change (a successful
/// re-watch is enough), and a watch that stays open but delivers nothing goes stale on time.
#[derive(Debug, Default)]
pub(crate) struct WatchHealth {
    synced: bool,
    last_alive: Option<Instant>,
    /// Objects in the cache that failed to decode.
    undecodable: usize,
}

impl WatchHealth {
    fn alive(&mut self, now: Instant) {
        if self.last_alive.is_none_or(|last| last < now) {
            self.last_alive = Some(now);
        }
    }

    fn silent_for(&self, now: Instant) -> Duration {
        self.last_alive
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last))
    }
}

/// A handle the transport uses to report that the watch connection is alive.
#[derive(Clone, Debug)]
pub struct WatchPulse(Arc<Mutex<WatchHealth>>);

impl Heartbeat for WatchPulse {
    fn beat(&self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .alive(Instant::now());
    }
}

/// How the SsoUser watch is paced so that a healthy but quiet watch shows it is alive well
/// within the staleness limit, and a stalled one is dropped and re-opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchTimings {
    /// `timeoutSeconds` of each watch request: the API server ends a quiet watch after this
    /// long and the watcher re-opens it (one request, no list), which proves the API reachable.
    pub watch_timeout: Duration,
    /// A watch response that delivers nothing (no event, no bookmark, no end) for this long is
    /// treated as stalled: the connection is dropped and the watch re-opened.
    pub idle_limit: Duration,
}

impl WatchTimings {
    /// Timings for `staleness`: a third of it per watch request (1 s … 290 s), and twice that
    /// before a silent connection counts as stalled, so a stall is noticed and retried before
    /// the limit, and sessions are refused at the limit at the latest.
    pub fn for_staleness(staleness: Duration) -> Self {
        let watch_timeout = (staleness / 3).clamp(Duration::from_secs(1), Duration::from_secs(290));
        let watch_timeout = Duration::from_secs(watch_timeout.as_secs().max(1));
        WatchTimings {
            watch_timeout,
            idle_limit: watch_timeout * 2,
        }
    }
}

/// The watch cache of one namespace's SsoUsers, read on every request.
#[derive(Clone, Debug)]
pub struct UserCache {
    store: Store<DeserializeGuard<SsoUser>>,
    namespace: String,
    scope: ConfigScope,
    staleness: Duration,
    timings: WatchTimings,
    health: Arc<Mutex<WatchHealth>>,
    /// Users this replica provisioned or read, until its watch is sure to have seen them.
    recent: RecentUsers,
    /// Signalled after every watch event, so live connections are re-checked at once.
    changes: Arc<tokio::sync::Notify>,
}

/// Which session a check is for, beyond its user: its own id and the identity provider's
/// session id, matched against `status.revokedSessions`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionIds<'a> {
    /// The sidecar's own session id.
    pub own: Option<&'a str>,
    /// The identity provider's session id (`sid`).
    pub idp: Option<&'a str>,
}

/// How long a user this replica just provisioned (or read from the API on a miss) is admitted
/// without being in the watch cache.
const READ_YOUR_WRITE_GRACE: Duration = Duration::from_secs(30);

/// What this replica knows of a user beside its watch: it provisioned the user, or read it from
/// the API on a miss ([`super::read_through`]); or its watch saw that user deleted, so that a
/// read which raced the deletion cannot admit it again.
#[derive(Debug)]
struct Recent {
    uid: String,
    at: Instant,
    deleted: bool,
}

type RecentUsers = Arc<Mutex<HashMap<String, Recent>>>;

/// The writing half of a [`UserCache`]: feed it watch events.
#[derive(Debug)]
pub struct UserCacheFeeder {
    scope: ConfigScope,
    timings: WatchTimings,
    writer: reflector::store::Writer<DeserializeGuard<SsoUser>>,
    health: Arc<Mutex<WatchHealth>>,
    recent: RecentUsers,
    /// When deletion records in `recent` were last pruned.
    pruned: Instant,
    changes: Arc<tokio::sync::Notify>,
}

impl UserCache {
    /// A cache of `config`'s users in `namespace`, refusing all sessions once the watch has not
    /// shown it is alive for longer than `staleness`.
    pub fn new(
        namespace: impl Into<String>,
        config: impl Into<String>,
        staleness: Duration,
    ) -> (UserCache, UserCacheFeeder) {
        let (store, writer) = reflector::store::store();
        let health = Arc::new(Mutex::new(WatchHealth::default()));
        let timings = WatchTimings::for_staleness(staleness);
        let cache = UserCache {
            store,
            namespace: namespace.into(),
            scope: ConfigScope::new(config),
            staleness,
            timings,
            health: health.clone(),
            recent: Arc::default(),
            changes: Arc::default(),
        };
        let recent = cache.recent.clone();
        let scope = cache.scope.clone();
        let changes = cache.changes.clone();
        (
            cache,
            UserCacheFeeder {
                scope,
                timings,
                writer,
                health,
                recent,
                pruned: Instant::now(),
                changes,
            },
        )
    }

    /// Whether a session of SsoUser `name` (with `uid`), started at `started`, may continue.
    pub fn check(
        &self,
        name: &str,
        uid: &str,
        started: jiff::Timestamp,
    ) -> Result<(), SessionRefusal> {
        self.check_at(name, uid, started, Instant::now())
    }

    /// [`UserCache::check`] for one session: also refused when `status.revokedSessions` names
    /// its own id or its identity provider's session id.
    pub fn check_session(
        &self,
        name: &str,
        uid: &str,
        started: jiff::Timestamp,
        ids: SessionIds<'_>,
    ) -> Result<(), SessionRefusal> {
        self.check_ids_at(name, uid, started, ids, Instant::now())
    }

    /// Signalled after every watch event (one waiter: the live-connection sweep).
    pub fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.changes.clone()
    }

    /// The shared re-validation record of session `sid` of SsoUser `name`, as the watch last
    /// delivered it ([`crate::renewals`]). No I/O.
    pub fn session_renewal(&self, name: &str, sid: &str) -> Option<gatehouse_crds::SessionRenewal> {
        let guard = self
            .store
            .get(&ObjectRef::new(name).within(&self.namespace))?;
        let user = guard.0.as_ref().ok()?;
        user.status.as_ref()?.session_renewal(sid).cloned()
    }

    fn check_at(
        &self,
        name: &str,
        uid: &str,
        started: jiff::Timestamp,
        now: Instant,
    ) -> Result<(), SessionRefusal> {
        self.check_ids_at(name, uid, started, SessionIds::default(), now)
    }

    fn check_ids_at(
        &self,
        name: &str,
        uid: &str,
        started: jiff::Timestamp,
        ids: SessionIds<'_>,
        now: Instant,
    ) -> Result<(), SessionRefusal> {
        {
            let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
            if !health.synced {
                return self
                    .recently_provisioned(name, uid, now)
                    .then_some(())
                    .ok_or(SessionRefusal::NotSynced);
            }
            if health.silent_for(now) > self.staleness {
                return Err(SessionRefusal::Stale);
            }
        }
        let Some(guard) = self
            .store
            .get(&ObjectRef::new(name).within(&self.namespace))
        else {
            return self
                .recently_provisioned(name, uid, now)
                .then_some(())
                .ok_or(SessionRefusal::Deleted);
        };
        let Ok(user) = &guard.0 else {
            return Err(SessionRefusal::Undecodable);
        };
        session_verdict(user, self.scope.config(), uid, started, ids)
    }

    fn recently_provisioned(&self, name: &str, uid: &str, now: Instant) -> bool {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.get(name).is_some_and(|known| {
            !known.deleted
                && known.uid == uid
                && now.saturating_duration_since(known.at) < READ_YOUR_WRITE_GRACE
        })
    }

    /// Admits SsoUser `name` with `uid` for [`READ_YOUR_WRITE_GRACE`], or until the watch speaks
    /// about it: this replica just wrote or read it. Not when the watch has already seen that
    /// very object deleted (returns `false`).
    pub(crate) fn remember(&self, name: &str, uid: &str) -> bool {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|_, known| now.saturating_duration_since(known.at) < READ_YOUR_WRITE_GRACE);
        if recent
            .get(name)
            .is_some_and(|known| known.deleted && known.uid == uid)
        {
            return false;
        }
        recent.insert(
            name.to_string(),
            Recent {
                uid: uid.to_string(),
                at: now,
                deleted: false,
            },
        );
        true
    }

    /// Whether `refusal` is a miss: the watch does not hold that user (yet), or has not
    /// completed its first list.
    pub fn is_miss(refusal: SessionRefusal) -> bool {
        matches!(refusal, SessionRefusal::Deleted | SessionRefusal::NotSynced)
    }

    /// The configuration this cache serves, and how its users are selected.
    pub(crate) fn scope(&self) -> &ConfigScope {
        &self.scope
    }

    /// Ready when the first list completed and the watch showed it is alive within the
    /// staleness limit.
    pub fn is_ready(&self) -> bool {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.synced && health.silent_for(Instant::now()) <= self.staleness
    }

    /// Whether the first list has completed.
    pub fn is_synced(&self) -> bool {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).synced
    }

    /// How long the watch has been silent past what a healthy watch allows (the idle limit, or
    /// the staleness limit when that is shorter);
    /// zero when healthy. For the staleness metric: sessions are refused once the silence
    /// exceeds the staleness limit.
    pub fn broken_for(&self) -> Duration {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let silent = health.silent_for(Instant::now());
        if silent > self.timings.idle_limit.min(self.staleness) {
            silent
        } else {
            Duration::ZERO
        }
    }

    /// Number of SsoUsers of this config in the cache.
    pub fn user_count(&self) -> usize {
        self.store
            .state()
            .iter()
            .filter(|u| {
                u.0.as_ref()
                    .is_ok_and(|u| u.spec.config == self.scope.config())
            })
            .count()
    }

    /// Number of SsoUsers in the cache that could not be decoded (their sessions are refused).
    pub fn undecodable_count(&self) -> usize {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .undecodable
    }

    /// The pacing of the watch that feeds this cache.
    pub fn timings(&self) -> WatchTimings {
        self.timings
    }
}

/// The annotation `kubectl apply` leaves: a copy of the whole object as last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the cache keeps of an SsoUser: all but its managed fields and `kubectl apply`'s copy of
/// the object, which nothing here reads and which are most of a stored object's size (with
/// thousands of users, most of the cache's memory).
fn trim(event: &mut watcher::Event<DeserializeGuard<SsoUser>>) {
    if let watcher::Event::Apply(DeserializeGuard(Ok(user)))
    | watcher::Event::InitApply(DeserializeGuard(Ok(user))) = event
    {
        user.metadata.managed_fields = None;
        if let Some(annotations) = &mut user.metadata.annotations {
            annotations.remove(LAST_APPLIED);
            if annotations.is_empty() {
                user.metadata.annotations = None;
            }
        }
    }
}

/// A decoded watch event as the cache stores it.
fn guarded(event: watcher::Event<SsoUser>) -> watcher::Event<DeserializeGuard<SsoUser>> {
    match event {
        watcher::Event::Apply(u) => watcher::Event::Apply(DeserializeGuard(Ok(u))),
        watcher::Event::Delete(u) => watcher::Event::Delete(DeserializeGuard(Ok(u))),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(u) => watcher::Event::InitApply(DeserializeGuard(Ok(u))),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

impl UserCacheFeeder {
    /// Apply one item of a watch stream of decoded SsoUsers (tests, hand-fed caches).
    pub fn apply(&mut self, item: Result<watcher::Event<SsoUser>, watcher::Error>) {
        self.apply_guarded_at(item.map(guarded), Instant::now());
    }

    /// Apply one item of the watch stream: an event updates the store and shows the watch is
    /// alive; an error is logged (the watch is fresh again at its next sign of life). An object
    /// that fails to decode is stored as such (its sessions are refused), logged and counted.
    pub fn apply_guarded(
        &mut self,
        item: Result<watcher::Event<DeserializeGuard<SsoUser>>, watcher::Error>,
    ) {
        self.apply_guarded_at(item, Instant::now());
    }

    fn apply_guarded_at(
        &mut self,
        item: Result<watcher::Event<DeserializeGuard<SsoUser>>, watcher::Error>,
        now: Instant,
    ) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match item {
            Ok(mut event) => {
                trim(&mut event);
                // Once the watch speaks about an object this replica provisioned, the store is
                // authoritative for it: a deletion must not be overridden by read-your-write.
                if let watcher::Event::Apply(user)
                | watcher::Event::InitApply(user)
                | watcher::Event::Delete(user) = &event
                {
                    let meta = user.meta();
                    if let (Some(name), Some(uid)) = (&meta.name, &meta.uid) {
                        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
                        if matches!(event, watcher::Event::Delete(_)) {
                            // Kept for the grace period: an API read that raced this deletion
                            // must not admit the user again.
                            recent.insert(
                                name.clone(),
                                Recent {
                                    uid: uid.clone(),
                                    at: now,
                                    deleted: true,
                                },
                            );
                        } else if recent.get(name).is_some_and(|known| &known.uid == uid) {
                            recent.remove(name);
                        }
                        if now.saturating_duration_since(self.pruned) > READ_YOUR_WRITE_GRACE {
                            recent.retain(|_, known| {
                                now.saturating_duration_since(known.at) < READ_YOUR_WRITE_GRACE
                            });
                            self.pruned = now;
                        }
                    }
                }
                if let watcher::Event::Apply(DeserializeGuard(Err(invalid)))
                | watcher::Event::InitApply(DeserializeGuard(Err(invalid))) = &event
                {
                    tracing::warn!(
                        user = invalid.metadata.name.as_deref().unwrap_or_default(),
                        error = %invalid.error,
                        "cannot decode an SsoUser; its sessions are refused until it is fixed"
                    );
                }
                self.writer.apply_watcher_event(&event);
                if matches!(event, watcher::Event::InitDone) {
                    health.synced = true;
                }
                if matches!(
                    event,
                    watcher::Event::InitDone | watcher::Event::Apply(_) | watcher::Event::Delete(_)
                ) {
                    health.undecodable = self
                        .writer
                        .as_reader()
                        .state()
                        .iter()
                        .filter(|u| u.0.is_err())
                        .count();
                }
                health.alive(now);
                drop(health);
                self.changes.notify_one();
            }
            Err(err) => {
                tracing::warn!(error = %err, "SsoUser watch failed; retrying");
            }
        }
    }

    /// Feed the cache from `stream` until it ends.
    pub async fn feed(
        mut self,
        stream: impl Stream<Item = Result<watcher::Event<DeserializeGuard<SsoUser>>, watcher::Error>>,
    ) {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            self.apply_guarded(item);
        }
    }

    /// The handle the transport reports liveness through.
    pub fn pulse(&self) -> WatchPulse {
        WatchPulse(self.health.clone())
    }

    /// Watch the SsoUsers of `namespace` labelled `gatehouse.dev/config=<config>` (users created
    /// at sign-in carry the label; a user declared in Git without it gets it at its first
    /// sign-in) with kube's default backoff, through `client` wrapped so that the connection's
    /// liveness keeps the cache fresh ([`super::liveness`]). [`UserCache::check`] also compares
    /// `spec.config`; a read on a miss applies the same selector (`verdict_on_read`).
    pub async fn run(self, client: kube::Client, namespace: String) {
        let client = crate::liveness::client(client, self.pulse(), self.timings.idle_limit);
        let api: Api<DeserializeGuard<SsoUser>> = Api::namespaced(client, &namespace);
        let timeout = u32::try_from(self.timings.watch_timeout.as_secs()).unwrap_or(290);
        let config = watcher::Config::default()
            .labels_from(self.scope.selector())
            .timeout(timeout);
        self.feed(watcher(api, config).default_backoff()).await;
    }
}

#[cfg(test)]
#[path = "kubernetes_tests.rs"]
mod tests;
