//! SsoUsers as the live user directory of one SsoConfig: just-in-time provisioning at sign-in,
//! and the watch cache every request's session is checked against.
//!
//! Provisioning creates the SsoUser with a plain create (exactly one creator wins; a concurrent
//! creator's `AlreadyExists` means "read it again"), never writes the spec of an object that
//! already exists (a user declared in Git keeps its spec), and writes the status by server-side
//! apply with a `resourceVersion` precondition so concurrent sign-ins count every login.
//!
//! Revocation reads a watch cache of the namespace's SsoUsers that keeps of each only what judging
//! its sessions reads ([`CachedUser`]), so thousands of users cost little memory. A session is
//! bound to the SsoUser's UID, so a user deleted and re-created under the same name does not
//! revive old cookies. When the watch has been broken for longer than the staleness limit, every
//! session is refused: revocation must stay bounded even while the API server is unreachable.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use gatehouse_crds::consts::{
    LABEL_CONFIG, LABEL_IDENTITY, LABEL_PROVIDER, LABEL_SOURCE, SIDECAR_FIELD_MANAGER, SOURCE_SCIM,
    SOURCE_SSO,
};
use gatehouse_crds::names::{identity_label, legacy_sso_user_name, sso_user_name};
use gatehouse_crds::{API_VERSION, ProvisioningMode, SessionRenewal, SsoUser};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource as _;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{DeserializeGuard, Expression, Selector, SelectorExt as _};
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

/// What admission read: the SsoUser as it was, or `None` when it does not exist yet, and its
/// name (the current one, or the legacy one of an SsoUser made before names included the config).
#[derive(Clone, Debug, Default)]
pub struct Admitted {
    user: Option<SsoUser>,
    name: String,
}

impl Admitted {
    /// The SsoUser's name: the session's user.
    pub fn name(&self) -> &str {
        &self.name
    }
}

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
        let (name, found) = self.find(sign_in).await?;
        match found {
            Some(user) => self
                .usable(&user, sign_in, name.clone())
                .map(|()| Admitted {
                    user: Some(user),
                    name,
                }),
            // A refresh that was in the air when the user was deleted must not bring it back.
            None if sign_in.occasion == Occasion::Revalidation => Err(ProvisionError::Deleted),
            None if self.mode == ProvisioningMode::PreDeclared => Err(ProvisionError::NotDeclared),
            None if self.mode == ProvisioningMode::Scim => Err(ProvisionError::NotProvisioned),
            None => Ok(Admitted { user: None, name }),
        }
    }

    /// The name of `sign_in`'s SsoUser in this config: [`sso_user_name`].
    pub fn current_name(&self, sign_in: &SignedInUser) -> String {
        sso_user_name(
            &self.config,
            &sign_in.provider,
            &sign_in.issuer,
            &sign_in.subject,
        )
    }

    /// `sign_in`'s SsoUser and its name: the one of the current name; else one of the legacy
    /// name ([`legacy_sso_user_name`]) that serves this config (an SsoUser made before names
    /// included the config, which keeps serving it: nobody's session ends at an upgrade); else
    /// none, under the current name. A legacy-named SsoUser of another config is not this
    /// config's: the person gets their own SsoUser here (two apps of a namespace on one IdP).
    /// The watch cache tells, without a read, that a legacy name is the one to read.
    async fn find(
        &self,
        sign_in: &SignedInUser,
    ) -> Result<(String, Option<SsoUser>), ProvisionError> {
        let current = self.current_name(sign_in);
        let legacy = legacy_sso_user_name(&sign_in.provider, &sign_in.issuer, &sign_in.subject);
        let read = |name: String| async move {
            let found = self
                .api
                .get_opt(&name)
                .await
                .map_err(ProvisionError::Unavailable)?;
            Ok::<_, ProvisionError>((name, found))
        };
        let serves_us = |user: &SsoUser| user.spec.config == self.config;
        if self.cache.holds_own(&legacy) && !self.cache.holds_own(&current) {
            let (name, found) = read(legacy).await?;
            if found.as_ref().is_some_and(serves_us) {
                return Ok((name, found));
            }
            return read(current).await;
        }
        let (name, found) = read(current.clone()).await?;
        if self.mode == ProvisioningMode::Scim {
            if found.as_ref().is_some_and(|u| links(u, sign_in)) {
                return Ok((name, found));
            }
            return self.find_pushed(sign_in, current, found).await;
        }
        if found.is_some() {
            return Ok((name, found));
        }
        let (legacy, old) = read(legacy).await?;
        if old.as_ref().is_some_and(serves_us) {
            return Ok((legacy, old));
        }
        Ok((current, None))
    }

    /// In `scim` mode, when the current name holds no user of this sign-in: the user the IdP
    /// pushed with this person's id as `externalId` (labelled with it as identity), whatever its
    /// name; else what the current name holds (another identity: a collision), or nothing.
    async fn find_pushed(
        &self,
        sign_in: &SignedInUser,
        current: String,
        found: Option<SsoUser>,
    ) -> Result<(String, Option<SsoUser>), ProvisionError> {
        let selector = format!(
            "{LABEL_CONFIG}={},{LABEL_IDENTITY}={}",
            self.config,
            identity_label(&sign_in.issuer, &sign_in.subject)
        );
        let listed = self
            .api
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .map_err(ProvisionError::Unavailable)?;
        let pushed = listed
            .items
            .into_iter()
            .filter(|u| u.spec.config == self.config)
            .find(|u| links(u, sign_in));
        match pushed {
            Some(user) => Ok((user.metadata.name.clone().unwrap_or_default(), Some(user))),
            None => Ok((current, found)),
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
        self.provision_from(sign_in, Some(admitted)).await
    }

    fn usable(
        &self,
        user: &SsoUser,
        sign_in: &SignedInUser,
        name: String,
    ) -> Result<(), ProvisionError> {
        if user.spec.config != self.config
            || user.spec.provider != sign_in.provider
            || !links(user, sign_in)
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
        mut known: Option<Admitted>,
    ) -> Result<ProvisionedUser, ProvisionError> {
        let mut name = self.current_name(sign_in);
        let mut created = false;
        for attempt in 0..MAX_PROVISION_TRIES {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let existing = match known.take() {
                Some(read) => {
                    name = read.name;
                    read.user
                }
                None => {
                    let (found_name, found) = self.find(sign_in).await?;
                    name = found_name;
                    found
                }
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
                None if self.mode == ProvisioningMode::Scim => {
                    return Err(ProvisionError::NotProvisioned);
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
                    LABEL_IDENTITY: identity_label(&sign_in.issuer, &sign_in.subject),
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
                    // Groups that could not be read leave the last known ones.
                    "groups": if sign_in.groups_unknown {
                        &previous.groups
                    } else {
                        &sign_in.groups
                    },
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
        !has(LABEL_CONFIG, &self.config)
            || !has(LABEL_PROVIDER, &sign_in.provider)
            || !has(
                LABEL_IDENTITY,
                &identity_label(&sign_in.issuer, &sign_in.subject),
            )
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
                scim: None,
            },
        );
        user.metadata.labels = Some(
            [
                (LABEL_SOURCE, SOURCE_SSO),
                (LABEL_CONFIG, self.config.as_str()),
                (LABEL_PROVIDER, sign_in.provider.as_str()),
                (
                    LABEL_IDENTITY,
                    identity_label(&sign_in.issuer, &sign_in.subject).as_str(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        user
    }
}

/// Whether `user` is the SsoUser of `sign_in`'s person (config and provider aside): a user the
/// IdP pushed over SCIM by its `externalId` (which may have changed since the object was
/// named), any other by its subject.
fn links(user: &SsoUser, sign_in: &SignedInUser) -> bool {
    match &user.spec.scim {
        Some(profile) if is_pushed(user) => {
            profile.external_id.as_deref() == Some(sign_in.subject.as_str())
        }
        _ => user.spec.subject == sign_in.subject,
    }
}

/// Whether `user` was pushed over SCIM (`gatehouse.dev/source: scim`).
fn is_pushed(user: &SsoUser) -> bool {
    user.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SOURCE))
        .is_some_and(|s| s == SOURCE_SCIM)
}

/// How long the watch remembers a deleted user's place in the SCIM listing's order, so that an
/// IdP paging through the users while some are deleted skips none of the others.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(15 * 60);

/// Most deleted users remembered at once (the oldest go first).
const MAX_TOMBSTONES: usize = 10_000;

/// A deleted user's place in the SCIM listing's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tombstone {
    /// Creation time (Unix seconds) of the deleted user.
    pub created: i64,
    /// Its name.
    pub id: String,
}

/// Deleted users' places, fed by the watch (see [`crate::kubernetes::UserCacheFeeder`]).
#[derive(Clone, Debug, Default)]
pub struct Tombstones(Arc<Mutex<VecDeque<(std::time::Instant, Tombstone)>>>);

impl Tombstones {
    /// Records that `user` was deleted now.
    pub fn record(&self, user: &SsoUser) {
        let Some(id) = user.metadata.name.clone() else {
            return;
        };
        let created = user
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |t| t.0.as_second());
        let now = std::time::Instant::now();
        let mut list = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while list
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > TOMBSTONE_TTL)
            || list.len() >= MAX_TOMBSTONES
        {
            list.pop_front();
        }
        list.push_back((now, Tombstone { created, id }));
    }

    /// The users deleted within [`TOMBSTONE_TTL`].
    pub fn recent(&self) -> Vec<Tombstone> {
        let now = std::time::Instant::now();
        let list = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        list.iter()
            .filter(|(at, _)| now.duration_since(*at) <= TOMBSTONE_TTL)
            .map(|(_, t)| t.clone())
            .collect()
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
    ends_sessions_started_in(not_before.as_second(), started)
}

/// [`ends_sessions_started`] with the cut-off given as its whole second (as the cache keeps it).
fn ends_sessions_started_in(not_before_second: i64, started: jiff::Timestamp) -> bool {
    started.as_second() <= not_before_second
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
    // Judged on what the watch cache would keep of it: one verdict for both.
    session_verdict(&CachedUser::new(user, scope.config()), uid, started, ids)?;
    // Outside the watch's selection (its label removed or changed): deleted, as the watch
    // reported it.
    if !scope.selects(user) {
        return Err(SessionRefusal::Deleted);
    }
    Ok(())
}

/// Whether a session bound to `uid`, started at `started`, may continue as far as SsoUser `user`
/// says: what the watch cache of a config keeps of it, which the API server selected by the
/// config's label (an SsoUser read any other way: [`verdict_on_read`]).
pub(crate) fn session_verdict(
    user: &CachedUser,
    uid: &str,
    started: jiff::Timestamp,
    ids: SessionIds<'_>,
) -> Result<(), SessionRefusal> {
    if !user.has_uid(uid) || !user.of_config {
        return Err(SessionRefusal::Replaced);
    }
    if user.suspended {
        return Err(SessionRefusal::Suspended);
    }
    if let Some(not_before) = user.sessions_not_before()
        && ends_sessions_started_in(not_before, started)
    {
        return Err(SessionRefusal::SessionsRevoked);
    }
    if let (Some(rare), Some(own)) = (&user.rare, ids.own)
        && rare.is_revoked(own, ids.idp)
    {
        return Err(SessionRefusal::SessionEnded);
    }
    Ok(())
}

/// What the watch cache of one config keeps of an SsoUser: exactly what judging its sessions
/// ([`session_verdict`]) and following their shared re-validation
/// ([`UserCache::session_renewal`]) read, and nothing else (no labels, no status the IdP wrote, no
/// managed fields): with thousands of users, whole objects were most of the sidecar's memory.
/// 40 bytes for a user with a UUID and no per-session records, as nearly all are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CachedUser {
    /// `metadata.uid` as the 16 bytes of a UUID, when `uid_form` is [`UidForm::Uuid`].
    uid: [u8; 16],
    /// The cut-off that applies ([`sessions_not_before`]: the later of the spec's and the
    /// status's) as its whole second, the verdict comparing whole seconds
    /// ([`ends_sessions_started`]); [`NO_CUT_OFF`] when there is none.
    sessions_not_before: i64,
    /// `spec.suspended`.
    suspended: bool,
    /// Whether `spec.config` is the cache's config (a user of another config is not its).
    of_config: bool,
    /// How `metadata.uid` is kept.
    uid_form: UidForm,
    /// What few users have: a UID that is not a UUID in canonical form, `status.revokedSessions`,
    /// `status.sessionRenewals`. One pointer for the others.
    rare: Option<Box<RareFields>>,
}

/// `sessions_not_before` of a [`CachedUser`] without a cut-off: before any second a
/// [`jiff::Timestamp`] can hold.
const NO_CUT_OFF: i64 = i64::MIN;

/// How a [`CachedUser`] keeps `metadata.uid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UidForm {
    /// No UID: no session is bound to it.
    Absent,
    /// A UUID in canonical form (as the API server writes every UID), as its 16 bytes.
    Uuid,
    /// Any other string, in [`RareFields::uid`].
    Text,
}

/// The fields of a [`CachedUser`] that few users have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RareFields {
    /// `metadata.uid` when it is not a UUID in canonical form.
    uid: Option<Box<str>>,
    /// The ids of `status.revokedSessions` (their `until` is for the writer, which reads the
    /// API: an entry's session has expired by then, so no verdict reads it).
    revoked: Box<[Box<str>]>,
    /// `status.sessionRenewals`, whole: handed out as they are ([`UserCache::session_renewal`]).
    renewals: Box<[SessionRenewal]>,
}

impl RareFields {
    /// [`gatehouse_crds::SsoUserStatus::is_session_revoked`] on the kept ids.
    fn is_revoked(&self, session_id: &str, idp_sid: Option<&str>) -> bool {
        self.revoked
            .iter()
            .any(|id| **id == *session_id || idp_sid.is_some_and(|sid| **id == *sid))
    }
}

impl CachedUser {
    /// What the cache of `config` keeps of `user`.
    pub(crate) fn new(user: &SsoUser, config: &str) -> Self {
        let mut rare = RareFields::default();
        let (uid, uid_form) = match user.metadata.uid.as_deref() {
            None => ([0; 16], UidForm::Absent),
            Some(text) => match canonical_uuid(text) {
                Some(bytes) => (bytes, UidForm::Uuid),
                None => {
                    rare.uid = Some(text.into());
                    ([0; 16], UidForm::Text)
                }
            },
        };
        if let Some(status) = &user.status {
            rare.revoked = status
                .revoked_sessions
                .iter()
                .map(|r| r.id.as_str().into())
                .collect();
            rare.renewals = status.session_renewals.clone().into_boxed_slice();
        }
        CachedUser {
            uid,
            sessions_not_before: sessions_not_before(user).map_or(NO_CUT_OFF, |t| t.as_second()),
            suspended: user.spec.is_suspended(),
            of_config: user.spec.config == config,
            uid_form,
            rare: (rare != RareFields::default()).then(|| Box::new(rare)),
        }
    }

    /// Whether `metadata.uid` is `uid`, as written.
    fn has_uid(&self, uid: &str) -> bool {
        match self.uid_form {
            UidForm::Absent => false,
            UidForm::Uuid => canonical_uuid(uid) == Some(self.uid),
            UidForm::Text => self.rare.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid),
        }
    }

    /// The cut-off that applies, as its whole second.
    fn sessions_not_before(&self) -> Option<i64> {
        (self.sessions_not_before != NO_CUT_OFF).then_some(self.sessions_not_before)
    }

    /// The shared re-validation record of session `sid`.
    fn session_renewal(&self, sid: &str) -> Option<&SessionRenewal> {
        self.rare.as_ref()?.renewals.iter().find(|r| r.id == sid)
    }
}

/// The bytes of `text` when it is a UUID in canonical form (36 characters: lowercase hex digits
/// with hyphens after the 8th, 12th, 16th and 20th); `None` for anything else, so that two
/// different strings never have the same bytes.
fn canonical_uuid(text: &str) -> Option<[u8; 16]> {
    let text = text.as_bytes();
    if text.len() != 36 || [8, 13, 18, 23].iter().any(|&i| text[i] != b'-') {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut digits = text.iter().filter(|&&c| c != b'-').copied();
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        let high = nibble(digits.next()?)?;
        let low = nibble(digits.next()?)?;
        *byte = (high << 4) | low;
    }
    Some(bytes)
}

/// One SsoUser in the watch cache.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cached {
    User(CachedUser),
    /// It exists but could not be decoded: its sessions are refused
    /// ([`SessionRefusal::Undecodable`]).
    Undecodable,
}

/// The cached SsoUsers of one namespace, by name.
type UserMap = HashMap<UserName, Cached>;

/// An SsoUser's name as a key of the cache: in place when short, as the names sign-in gives are
/// (`<provider>-<16 hex digits>`, 21 characters for `okta`), so that most users cost the cache
/// no allocation of their own; boxed otherwise.
#[derive(Clone)]
enum UserName {
    Short { len: u8, bytes: [u8; SHORT_NAME] },
    Long(Box<str>),
}

/// The longest name a [`UserName`] holds in place: as many bytes as fit beside its length in
/// the space a boxed name takes anyway (24 bytes in all).
const SHORT_NAME: usize = 22;

impl UserName {
    fn new(name: &str) -> Self {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= SHORT_NAME => {
                let mut bytes = [0; SHORT_NAME];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                UserName::Short { len, bytes }
            }
            _ => UserName::Long(name.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Always whole characters of a `str` ([`UserName::new`]).
            UserName::Short { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            UserName::Long(name) => name,
        }
    }
}

// Compared and hashed as the `str` it holds, so the map is looked up by `&str`.
impl std::borrow::Borrow<str> for UserName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for UserName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for UserName {}

impl std::hash::Hash for UserName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for UserName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// The watch cache's store: written by its feeder, read on every request.
#[derive(Clone, Default)]
struct UserStore(Arc<RwLock<UserMap>>);

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserStore")
            .field("users", &self.read().len())
            .finish()
    }
}

impl UserStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, UserMap> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, UserMap> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
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
    store: UserStore,
    scope: ConfigScope,
    staleness: Duration,
    timings: WatchTimings,
    health: Arc<Mutex<WatchHealth>>,
    /// Users this replica provisioned or read, until its watch is sure to have seen them.
    recent: RecentUsers,
    /// Signalled after every watch event, so live connections are re-checked at once.
    changes: Arc<tokio::sync::Notify>,
    /// The config's users the watch saw deleted lately, for SCIM paging.
    tombstones: Tombstones,
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
    namespace: String,
    scope: ConfigScope,
    timings: WatchTimings,
    store: UserStore,
    /// The list under way (`Init` … `InitDone`): it replaces the store once complete, so users
    /// deleted while the watch was away go, and the store stays whole meanwhile (as kube's
    /// reflector does).
    relist: UserMap,
    /// Undecodable objects in the store.
    undecodable: usize,
    health: Arc<Mutex<WatchHealth>>,
    recent: RecentUsers,
    /// When deletion records in `recent` were last pruned.
    pruned: Instant,
    changes: Arc<tokio::sync::Notify>,
    tombstones: Tombstones,
}

impl UserCache {
    /// A cache of `config`'s users in `namespace`, refusing all sessions once the watch has not
    /// shown it is alive for longer than `staleness`.
    pub fn new(
        namespace: impl Into<String>,
        config: impl Into<String>,
        staleness: Duration,
    ) -> (UserCache, UserCacheFeeder) {
        let store = UserStore::default();
        let health = Arc::new(Mutex::new(WatchHealth::default()));
        let timings = WatchTimings::for_staleness(staleness);
        let cache = UserCache {
            store: store.clone(),
            scope: ConfigScope::new(config),
            staleness,
            timings,
            health: health.clone(),
            recent: Arc::default(),
            changes: Arc::default(),
            tombstones: Tombstones::default(),
        };
        let recent = cache.recent.clone();
        let scope = cache.scope.clone();
        let tombstones = cache.tombstones.clone();
        let changes = cache.changes.clone();
        (
            cache,
            UserCacheFeeder {
                namespace: namespace.into(),
                scope,
                timings,
                store,
                relist: UserMap::new(),
                undecodable: 0,
                health,
                recent,
                pruned: Instant::now(),
                changes,
                tombstones,
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

    /// The config's users the watch saw deleted lately ([`TOMBSTONE_TTL`]).
    pub fn tombstones(&self) -> Tombstones {
        self.tombstones.clone()
    }

    /// Whether the watch holds SsoUser `name` as one of this config's users. No I/O.
    pub fn holds_own(&self, name: &str) -> bool {
        matches!(self.store.read().get(name), Some(Cached::User(user)) if user.of_config)
    }

    /// Signalled after every watch event (one waiter: the live-connection sweep).
    pub fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.changes.clone()
    }

    /// The shared re-validation record of session `sid` of SsoUser `name`, as the watch last
    /// delivered it ([`crate::renewals`]). No I/O.
    pub fn session_renewal(&self, name: &str, sid: &str) -> Option<SessionRenewal> {
        match self.store.read().get(name)? {
            Cached::User(user) => user.session_renewal(sid).cloned(),
            Cached::Undecodable => None,
        }
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
        let store = self.store.read();
        match store.get(name) {
            Some(Cached::User(user)) => session_verdict(user, uid, started, ids),
            Some(Cached::Undecodable) => Err(SessionRefusal::Undecodable),
            None => {
                drop(store);
                self.recently_provisioned(name, uid, now)
                    .then_some(())
                    .ok_or(SessionRefusal::Deleted)
            }
        }
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
            .read()
            .values()
            .filter(|u| matches!(u, Cached::User(u) if u.of_config))
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
        let health = self.health.clone();
        let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
        match item {
            Ok(event) => {
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
                let list_done = matches!(event, watcher::Event::InitDone);
                let counted = list_done
                    || matches!(event, watcher::Event::Apply(_) | watcher::Event::Delete(_));
                self.store_event(event);
                if list_done {
                    health.synced = true;
                }
                if counted {
                    health.undecodable = self.undecodable;
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

    /// Applies `event` to the store, as kube's reflector applies it to its own: `Apply` and
    /// `Delete` at once; a list (`Init`, `InitApply` …) into a new map that replaces the store
    /// at `InitDone`. Objects of another namespace than the cache's are not kept (its watch is
    /// of one namespace; nothing would ever look them up).
    fn store_event(&mut self, event: watcher::Event<DeserializeGuard<SsoUser>>) {
        match event {
            watcher::Event::Apply(object) => {
                if let Some((name, cached)) = self.cached(&object) {
                    let undecodable = cached == Cached::Undecodable;
                    let previous = self.store.write().insert(name, cached);
                    self.recount(previous.as_ref(), undecodable);
                }
            }
            watcher::Event::Delete(object) => {
                if let Ok(user) = &object.0
                    && self.name_of(object.meta()).is_some()
                    && self.scope.selects(user)
                {
                    self.tombstones.record(user);
                }
                if let Some(name) = self.name_of(object.meta()) {
                    let previous = self.store.write().remove(name);
                    self.recount(previous.as_ref(), false);
                }
            }
            watcher::Event::Init => self.relist = UserMap::new(),
            watcher::Event::InitApply(object) => {
                if let Some((name, cached)) = self.cached(&object) {
                    self.relist.insert(name, cached);
                }
            }
            watcher::Event::InitDone => {
                let listed = std::mem::take(&mut self.relist);
                self.undecodable = listed
                    .values()
                    .filter(|u| **u == Cached::Undecodable)
                    .count();
                let replaced = std::mem::replace(&mut *self.store.write(), listed);
                // Freed outside the lock.
                drop(replaced);
            }
        }
    }

    /// Keeps [`UserCacheFeeder::undecodable`] in step with one store change: `previous` was
    /// replaced or removed; the new object, if any, is undecodable.
    fn recount(&mut self, previous: Option<&Cached>, undecodable: bool) {
        if previous == Some(&Cached::Undecodable) {
            self.undecodable = self.undecodable.saturating_sub(1);
        }
        if undecodable {
            self.undecodable += 1;
        }
    }

    /// The name `meta` is cached under; `None` for an object of another namespace.
    fn name_of<'a>(
        &self,
        meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> Option<&'a str> {
        (meta.namespace.as_deref() == Some(self.namespace.as_str()))
            .then_some(meta.name.as_deref())
            .flatten()
    }

    /// What the cache keeps of `object`, and its name.
    fn cached(&self, object: &DeserializeGuard<SsoUser>) -> Option<(UserName, Cached)> {
        let name = UserName::new(self.name_of(object.meta())?);
        let cached = match &object.0 {
            Ok(user) => Cached::User(CachedUser::new(user, self.scope.config())),
            Err(_) => Cached::Undecodable,
        };
        Some((name, cached))
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
