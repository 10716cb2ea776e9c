//! SsoUsers as a SCIM 2.0 user store (`provisioning.mode: scim`): what the sidecar's SCIM
//! endpoint reads and writes, scoped to one SsoConfig.
//!
//! - A SCIM user is an SsoUser of the config, its SCIM `id` the object's name. Users the
//!   identity provider pushed are labelled `gatehouse.dev/source: scim` and carry their profile in
//!   `spec.scim`; only they can be changed or deleted here. Users declared in Git (or created at
//!   sign-in before the config turned to SCIM) are listed, read-only.
//! - A pushed user's name is [`sso_user_name`] of its `externalId` (the IdP's id of the person,
//!   the link to sign-ins), so a sign-in finds it with one read; an `externalId` changed later
//!   moves the `gatehouse.dev/identity` label, which sign-ins look up when the name misses.
//! - `active: false` is `spec.suspended: true` and moves `spec.sessionsNotBefore` to now, so
//!   reactivating a user never revives a cookie issued before.
//! - Writes are conditional on the `resourceVersion` read and retried on a conflict; every call
//!   has the sign-in's API budget. `userName` is unique without case (a label of its digest),
//!   `externalId` with case (the identity label).

use std::time::Duration;

use gatehouse_crds::consts::{
    LABEL_CONFIG, LABEL_IDENTITY, LABEL_PROVIDER, LABEL_SCIM_USER_NAME, LABEL_SOURCE, SOURCE_SCIM,
    SOURCE_SSO,
};
use gatehouse_crds::names::{identity_label, sso_user_name};
use gatehouse_crds::{ScimProfile, ScimValue, SsoUser, SsoUserSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use sha2::{Digest as _, Sha256};

use crate::kubernetes::{Tombstone, Tombstones};

/// How many times a write re-reads and retries after a concurrent change.
const MAX_WRITE_TRIES: u32 = 8;

/// One user as the SCIM endpoint sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredUser {
    /// SCIM `id`: the SsoUser's name.
    pub id: String,
    /// The SsoUser's UID.
    pub uid: String,
    /// The profile: `spec.scim` of a pushed user; for any other, what its spec and status tell.
    pub profile: ScimProfile,
    /// SCIM `active`: not suspended.
    pub active: bool,
    /// `meta.created`.
    pub created: Option<jiff::Timestamp>,
    /// `meta.lastModified`: the latest write any field manager made.
    pub last_modified: Option<jiff::Timestamp>,
    /// `meta.version`: the `resourceVersion`.
    pub version: Option<String>,
    /// Pushed over SCIM (`source: scim`): the only users SCIM may change.
    pub managed: bool,
    /// Where a user SCIM may not change came from (`git`, or `sso` for one created at sign-in).
    pub source: &'static str,
}

impl StoredUser {
    /// The key the listing is ordered by: creation time, then name. Stable: a user keeps its
    /// place for as long as it exists.
    pub fn order_key(&self) -> (i64, &str) {
        (
            self.created.map_or(0, jiff::Timestamp::as_second),
            self.id.as_str(),
        )
    }
}

/// Why a SCIM operation on the directory failed.
#[derive(Debug, thiserror::Error)]
pub enum ScimStoreError {
    /// No SsoUser of this config has that id.
    #[error("no user {id} in this application")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The user was not pushed over SCIM: it is read-only here.
    #[error(
        "user {id} was {} and is read-only to SCIM: change it there, or delete the SsoUser so the identity provider can push the user",
        source_words(.origin)
    )]
    ReadOnly {
        /// The user.
        id: String,
        /// Where it came from: `git` or `sso`.
        origin: &'static str,
    },
    /// Another user of this config already has the value.
    #[error("{attribute} {value:?} is already used by user {holder}")]
    Taken {
        /// `userName` or `externalId`.
        attribute: &'static str,
        /// The value (never a secret: a user name or an IdP's user id).
        value: String,
        /// The SsoUser that has it.
        holder: String,
    },
    /// The API server refused the object (422): a value outside the SsoUser schema's bounds.
    #[error("the user was refused: {0}")]
    Invalid(String),
    /// The Kubernetes API could not be reached or refused the request.
    #[error("the Kubernetes API is unavailable: {0}")]
    Unavailable(#[source] kube::Error),
    /// The Kubernetes API did not answer within the budget.
    #[error("the Kubernetes API did not answer within {0:?}")]
    TimedOut(Duration),
    /// Writers kept racing this one.
    #[error("user {id} kept changing while it was written")]
    Contended {
        /// The user.
        id: String,
    },
}

fn source_words(source: &str) -> &'static str {
    match source {
        SOURCE_SSO => "created at sign-in",
        _ => "declared in Git",
    }
}

impl ScimStoreError {
    /// Stable, low-cardinality reason code (audit lines).
    pub fn reason(&self) -> &'static str {
        match self {
            ScimStoreError::NotFound { .. } => "user_not_found",
            ScimStoreError::ReadOnly { .. } => "user_read_only",
            ScimStoreError::Taken { .. } => "uniqueness",
            ScimStoreError::Invalid(_) => "user_invalid",
            ScimStoreError::Unavailable(_) | ScimStoreError::TimedOut(_) => "directory_unavailable",
            ScimStoreError::Contended { .. } => "directory_contended",
        }
    }

    /// Whether the IdP should retry later (the API is down or busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ScimStoreError::Unavailable(_)
                | ScimStoreError::TimedOut(_)
                | ScimStoreError::Contended { .. }
        )
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

fn api_error(err: kube::Error) -> ScimStoreError {
    match err {
        kube::Error::Api(status) if status.code == 422 => ScimStoreError::Invalid(status.message),
        err => ScimStoreError::Unavailable(err),
    }
}

/// The value of [`LABEL_SCIM_USER_NAME`] for `user_name`: 16 hex chars of sha256 of it in lower
/// case (SCIM compares user names without case).
pub fn user_name_label(user_name: &str) -> String {
    let digest = Sha256::digest(user_name.to_lowercase().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What narrows a listing to one user, when the filter pins it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Narrow<'a> {
    /// `userName eq …`.
    pub user_name: Option<&'a str>,
    /// `externalId eq …`.
    pub external_id: Option<&'a str>,
}

/// The SCIM view of one SsoConfig's SsoUsers.
#[derive(Clone, Debug)]
pub struct ScimDirectory {
    api: Api<SsoUser>,
    config: String,
    provider: String,
    issuer: String,
    budget: Duration,
    tombstones: Tombstones,
}

impl ScimDirectory {
    /// The SCIM users of `config` through `api` (namespaced): pushed users belong to `provider`,
    /// whose issuer is `issuer` (names and identity labels are made of both). Each call waits
    /// for the API at most `budget` (the sign-in's, `SIGN_IN_API_BUDGET`, in the sidecar).
    pub fn new(
        api: Api<SsoUser>,
        config: impl Into<String>,
        provider: impl Into<String>,
        issuer: impl Into<String>,
        tombstones: Tombstones,
        budget: Duration,
    ) -> Self {
        ScimDirectory {
            api,
            config: config.into(),
            provider: provider.into(),
            issuer: issuer.into(),
            budget,
            tombstones,
        }
    }

    /// Deleted users' places, for paging (see [`TOMBSTONE_TTL`]).
    pub fn tombstones(&self) -> Vec<Tombstone> {
        self.tombstones.recent()
    }

    async fn within<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, ScimStoreError>>,
    ) -> Result<T, ScimStoreError> {
        tokio::time::timeout(self.budget, work)
            .await
            .unwrap_or(Err(ScimStoreError::TimedOut(self.budget)))
    }

    fn selector(&self, extra: &[(&str, &str)]) -> String {
        let mut selector = format!("{LABEL_CONFIG}={}", self.config);
        for (key, value) in extra {
            selector.push_str(&format!(",{key}={value}"));
        }
        selector
    }

    async fn list_raw(&self, extra: &[(&str, &str)]) -> Result<Vec<SsoUser>, ScimStoreError> {
        let params = ListParams::default().labels(&self.selector(extra));
        let list = self.api.list(&params).await.map_err(api_error)?;
        Ok(list
            .items
            .into_iter()
            .filter(|u| u.spec.config == self.config)
            .collect())
    }

    /// The config's users, in a stable order ([`StoredUser::order_key`]); only those `narrow`
    /// allows, when it pins a `userName` or `externalId` (the caller still applies its filter).
    pub async fn list(&self, narrow: Narrow<'_>) -> Result<Vec<StoredUser>, ScimStoreError> {
        self.within(async {
            let mut users: Vec<StoredUser> = if let Some(external_id) = narrow.external_id {
                let label = identity_label(&self.issuer, external_id);
                self.list_raw(&[(LABEL_IDENTITY, &label)])
                    .await?
                    .iter()
                    .map(|u| self.stored(u))
                    .collect()
            } else {
                self.list_raw(&[])
                    .await?
                    .iter()
                    .map(|u| self.stored(u))
                    .collect()
            };
            if let Some(user_name) = narrow.user_name {
                users.retain(|u| u.profile.user_name.eq_ignore_ascii_case(user_name));
            }
            users.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
            Ok(users)
        })
        .await
    }

    async fn read(&self, id: &str) -> Result<SsoUser, ScimStoreError> {
        let found = self.api.get_opt(id).await.map_err(api_error)?;
        match found {
            Some(user) if self.is_ours(&user) => Ok(user),
            _ => Err(ScimStoreError::NotFound { id: id.to_owned() }),
        }
    }

    fn is_ours(&self, user: &SsoUser) -> bool {
        user.spec.config == self.config
            && user
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_CONFIG))
                .is_some_and(|c| c == &self.config)
    }

    /// User `id` of this config.
    pub async fn get(&self, id: &str) -> Result<StoredUser, ScimStoreError> {
        self.within(async { Ok(self.stored(&self.read(id).await?)) })
            .await
    }

    /// Creates a pushed user (SCIM POST). A user created at sign-in for the same person before
    /// the config turned to SCIM is taken over; one declared in Git is not.
    pub async fn create(
        &self,
        profile: ScimProfile,
        active: bool,
    ) -> Result<StoredUser, ScimStoreError> {
        self.within(async {
            self.check_unique(&profile, None).await?;
            let link = link_subject(&profile);
            let name = sso_user_name(&self.config, &self.provider, &self.issuer, &link);
            let now = jiff::Timestamp::now();
            let mut user = SsoUser::new(
                &name,
                SsoUserSpec {
                    config: self.config.clone(),
                    provider: self.provider.clone(),
                    subject: link,
                    suspended: (!active).then_some(true),
                    sessions_not_before: (!active).then_some(Time(now)),
                    scim: None,
                },
            );
            self.dress(&mut user, profile.clone());
            match self.api.create(&PostParams::default(), &user).await {
                Ok(created) => Ok(self.stored(&created)),
                Err(err) if is_status(&err, 409) => {
                    // The name is taken: the person's SsoUser exists already, or a pushed user
                    // created under this name has since had its externalId changed.
                    let existing = self.read(&name).await?;
                    let stored = self.stored(&existing);
                    if stored.managed {
                        if stored.profile.external_id == profile.external_id {
                            return Err(ScimStoreError::Taken {
                                attribute: "externalId",
                                value: profile.external_id.clone().unwrap_or_default(),
                                holder: name,
                            });
                        }
                        let spare = format!("{}#{:016x}", user.spec.subject, rand::random::<u64>());
                        user.metadata.name = Some(sso_user_name(
                            &self.config,
                            &self.provider,
                            &self.issuer,
                            &spare,
                        ));
                        let created = self
                            .api
                            .create(&PostParams::default(), &user)
                            .await
                            .map_err(api_error)?;
                        return Ok(self.stored(&created));
                    }
                    if stored.source != SOURCE_SSO {
                        return Err(ScimStoreError::ReadOnly {
                            id: name,
                            origin: stored.source,
                        });
                    }
                    self.write(&name, |_| {
                        Ok::<_, ScimStoreError>((profile.clone(), active))
                    })
                    .await?
                }
                Err(err) => Err(api_error(err)),
            }
        })
        .await
    }

    /// Rewrites pushed user `id` with what `change` makes of it (SCIM PUT and PATCH): read,
    /// change, write conditionally, again on a conflict. `change`'s own refusal is returned as
    /// `Ok(Err(..))`, with nothing written.
    pub async fn update<E>(
        &self,
        id: &str,
        change: impl Fn(&StoredUser) -> Result<(ScimProfile, bool), E>,
    ) -> Result<Result<StoredUser, E>, ScimStoreError> {
        self.within(self.write(id, change)).await
    }

    async fn write<E>(
        &self,
        id: &str,
        change: impl Fn(&StoredUser) -> Result<(ScimProfile, bool), E>,
    ) -> Result<Result<StoredUser, E>, ScimStoreError> {
        for _ in 0..MAX_WRITE_TRIES {
            let mut user = self.read(id).await?;
            let stored = self.stored(&user);
            if !stored.managed && stored.source != SOURCE_SSO {
                return Err(ScimStoreError::ReadOnly {
                    id: id.to_owned(),
                    origin: stored.source,
                });
            }
            let (profile, active) = match change(&stored) {
                Ok(changed) => changed,
                Err(refused) => return Ok(Err(refused)),
            };
            self.check_unique(&profile, Some(id)).await?;
            let now = jiff::Timestamp::now();
            if stored.active && !active {
                // Deactivation ends every session for good: a later reactivation admits new
                // sign-ins only.
                user.spec.sessions_not_before = Some(Time(now));
            }
            user.spec.suspended = (!active).then_some(true);
            self.dress(&mut user, profile);
            match self.api.replace(id, &PostParams::default(), &user).await {
                Ok(written) => return Ok(Ok(self.stored(&written))),
                Err(err) if is_status(&err, 409) => continue,
                Err(err) if is_status(&err, 404) => {
                    return Err(ScimStoreError::NotFound { id: id.to_owned() });
                }
                Err(err) => return Err(api_error(err)),
            }
        }
        Err(ScimStoreError::Contended { id: id.to_owned() })
    }

    /// Deletes pushed user `id` (SCIM DELETE): its sessions end on every replica.
    pub async fn delete(&self, id: &str) -> Result<(), ScimStoreError> {
        self.within(async {
            let user = self.read(id).await?;
            let stored = self.stored(&user);
            if !stored.managed {
                return Err(ScimStoreError::ReadOnly {
                    id: id.to_owned(),
                    origin: stored.source,
                });
            }
            // Only the object read: a user re-created under the name meanwhile stays.
            let params = DeleteParams {
                preconditions: Some(kube::api::Preconditions {
                    uid: user.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match self.api.delete(id, &params).await {
                Ok(_) => Ok(()),
                Err(err) if is_status(&err, 404) || is_status(&err, 409) => {
                    Err(ScimStoreError::NotFound { id: id.to_owned() })
                }
                Err(err) => Err(api_error(err)),
            }
        })
        .await
    }

    /// Refuses `profile` when another user of the config (not `except`) has its `userName`
    /// (without case) or `externalId`.
    async fn check_unique(
        &self,
        profile: &ScimProfile,
        except: Option<&str>,
    ) -> Result<(), ScimStoreError> {
        let other = |u: &SsoUser| u.metadata.name.as_deref() != except;
        let label = user_name_label(&profile.user_name);
        let same_name = self.list_raw(&[(LABEL_SCIM_USER_NAME, &label)]).await?;
        if let Some(holder) = same_name.iter().filter(|u| other(u)).find(|u| {
            u.spec
                .scim
                .as_ref()
                .is_some_and(|s| s.user_name.eq_ignore_ascii_case(&profile.user_name))
        }) {
            return Err(ScimStoreError::Taken {
                attribute: "userName",
                value: profile.user_name.clone(),
                holder: holder.metadata.name.clone().unwrap_or_default(),
            });
        }
        if let Some(external_id) = &profile.external_id {
            let label = identity_label(&self.issuer, external_id);
            let same_id = self.list_raw(&[(LABEL_IDENTITY, &label)]).await?;
            if let Some(holder) = same_id
                .iter()
                .filter(|u| other(u))
                .find(|u| self.stored(u).profile.external_id.as_deref() == Some(external_id))
            {
                let stored = self.stored(holder);
                // A user created at sign-in for this person is taken over by a POST.
                if except.is_none() && !stored.managed && stored.source == SOURCE_SSO {
                    return Ok(());
                }
                return Err(ScimStoreError::Taken {
                    attribute: "externalId",
                    value: external_id.clone(),
                    holder: stored.id,
                });
            }
        }
        Ok(())
    }

    /// Puts `profile` and the SCIM labels on `user`.
    fn dress(&self, user: &mut SsoUser, profile: ScimProfile) {
        let labels = user.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(LABEL_SOURCE.to_owned(), SOURCE_SCIM.to_owned());
        labels.insert(LABEL_CONFIG.to_owned(), self.config.clone());
        labels.insert(LABEL_PROVIDER.to_owned(), user.spec.provider.clone());
        labels.insert(
            LABEL_SCIM_USER_NAME.to_owned(),
            user_name_label(&profile.user_name),
        );
        match &profile.external_id {
            Some(external_id) => {
                labels.insert(
                    LABEL_IDENTITY.to_owned(),
                    identity_label(&self.issuer, external_id),
                );
            }
            None => {
                labels.remove(LABEL_IDENTITY);
            }
        }
        user.spec.scim = Some(profile);
    }

    /// The SCIM view of `user`.
    pub fn stored(&self, user: &SsoUser) -> StoredUser {
        let labels = user.metadata.labels.as_ref();
        let source = labels.and_then(|l| l.get(LABEL_SOURCE)).map(String::as_str);
        let managed = source == Some(SOURCE_SCIM) && user.spec.scim.is_some();
        let profile = match (&user.spec.scim, managed) {
            (Some(profile), true) => profile.clone(),
            _ => derived_profile(user),
        };
        let last_modified = user
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter_map(|f| f.time.as_ref().map(|t| t.0))
            .max()
            .or_else(|| user.metadata.creation_timestamp.as_ref().map(|t| t.0));
        StoredUser {
            id: user.metadata.name.clone().unwrap_or_default(),
            uid: user.metadata.uid.clone().unwrap_or_default(),
            profile,
            active: !user.spec.is_suspended(),
            created: user.metadata.creation_timestamp.as_ref().map(|t| t.0),
            last_modified,
            version: user.metadata.resource_version.clone(),
            managed,
            source: match source {
                Some(SOURCE_SCIM) => SOURCE_SCIM,
                Some(SOURCE_SSO) => SOURCE_SSO,
                _ => "git",
            },
        }
    }
}

/// The subject a pushed user is created with: its `externalId` (the IdP's id of the person,
/// which its sign-ins carry), or, without one, a subject no sign-in carries, made of the user
/// name (such a user signs in once an `externalId` is pushed: sign-ins look it up by label).
fn link_subject(profile: &ScimProfile) -> String {
    match &profile.external_id {
        Some(external_id) => external_id.clone(),
        None => format!("scim-unlinked:{}", profile.user_name.to_lowercase()),
    }
}

/// The SCIM profile of an SsoUser not pushed over SCIM: what sign-in recorded.
fn derived_profile(user: &SsoUser) -> ScimProfile {
    let status = user.status.clone().unwrap_or_default();
    let user_name = status
        .preferred_username
        .clone()
        .or_else(|| status.email.clone())
        .unwrap_or_else(|| user.spec.subject.clone());
    ScimProfile {
        user_name,
        external_id: Some(user.spec.subject.clone()),
        display_name: status.name.clone(),
        emails: status
            .email
            .iter()
            .map(|email| ScimValue {
                value: Some(email.clone()),
                kind: Some("work".to_owned()),
                primary: Some(true),
                display: None,
            })
            .collect(),
        ..ScimProfile::default()
    }
}

#[cfg(test)]
#[path = "scim_tests.rs"]
mod tests;
