//! The user directory: where signed-in users are recorded, and the per-request revocation check.
//!
//! [`UserDirectory`] is `Off` (`GATEHOUSE_PROVISIONING=off`: no record, nothing revoked beyond the
//! sidecar's own logout denylist) or `Kubernetes`: SsoUsers of the config's namespace, created or
//! refreshed at sign-in and watched for revocation (see [`crate::kubernetes`]).
//!
//! A sign-in runs in three steps so that a failure leaves nothing half-done:
//! 1. [`UserDirectory::admit`]: read-only (suspended, not declared, API unreachable);
//! 2. the app's provisioning hook, if any (the sidecar's);
//! 3. [`UserDirectory::provision`]: the only write.
//!
//! Steps 1 and 3 share one deadline, [`SIGN_IN_API_BUDGET`], kube's own retries included: an API
//! server that answers 503 or 429, or accepts the connection and never answers, costs a sign-in
//! that long and then a 503 page, never a browser left waiting.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_auth::cookie::Session;
use gatehouse_auth::signin::SignedInUser;
use gatehouse_crds::SessionRenewal;
use gatehouse_crds::names::legacy_sso_user_name;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::error::ProvisionError;
use crate::kubernetes::{
    Admitted, Provisioner, SessionIds, SessionRefusal, UserCache, UserCacheFeeder,
};
use crate::read_through::{Confirmation, ReadLimits, ReadThrough};
use crate::renewals::{Lease, RenewalError, Renewals, SharedRenewal};
use crate::revocation::{REVOCATION_BUDGET, RevocationError, Revoked, Revoker};

/// The longest one sign-in waits for the Kubernetes API, admission and provisioning together
/// (kube's retries of 429/503 answers included). When it runs out the sign-in fails with
/// `directory_unavailable` (a 503 page) and no session; existing sessions are unaffected.
pub const SIGN_IN_API_BUDGET: Duration = Duration::from_secs(5);

/// Result of recording a sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// The SsoUser's UID, bound into the session.
    pub user_uid: Option<String>,
}

/// What [`UserDirectory::admit`] read, handed to [`UserDirectory::provision`] so the SsoUser is
/// not read twice in one sign-in, and the sign-in's API deadline.
#[derive(Debug, Default)]
pub struct Admission {
    admitted: Option<Admitted>,
    deadline: Option<tokio::time::Instant>,
    /// Without a directory: the name the user goes by (see [`UserDirectory::admit`]).
    name: Option<String>,
}

impl Admission {
    /// The name of the user's SsoUser, when the directory keeps SsoUsers: the session's user
    /// (an SsoUser made before names included the config keeps its name).
    pub fn user_name(&self) -> Option<&str> {
        self.admitted
            .as_ref()
            .map(Admitted::name)
            .or(self.name.as_deref())
    }
}

/// The user directory.
#[derive(Debug)]
pub enum UserDirectory {
    /// `GATEHOUSE_PROVISIONING=off`: no Kubernetes at all.
    Off,
    /// `GATEHOUSE_PROVISIONING=kubernetes`: SsoUsers.
    Kubernetes(Box<KubernetesDirectory>),
}

impl UserDirectory {
    /// Read-only check before anything is written: may this user sign in?
    pub async fn admit(&self, user: &SignedInUser) -> Result<Admission, ProvisionError> {
        match self {
            // No SsoUsers, so no two apps' objects to keep apart: the user keeps the name that
            // does not depend on the config (`X-Forwarded-User` stays what it was).
            UserDirectory::Off => Ok(Admission {
                name: Some(legacy_sso_user_name(
                    &user.provider,
                    &user.issuer,
                    &user.subject,
                )),
                ..Admission::default()
            }),
            UserDirectory::Kubernetes(k) => {
                let deadline = tokio::time::Instant::now() + k.budget;
                let admitted = tokio::time::timeout_at(deadline, k.provisioner.admit(user))
                    .await
                    .map_err(|_| ProvisionError::TimedOut(k.budget))??;
                Ok(Admission {
                    admitted: Some(admitted),
                    deadline: Some(deadline),
                    name: None,
                })
            }
        }
    }

    /// Records a sign-in that [`UserDirectory::admit`] admitted.
    pub async fn provision(
        &self,
        user: &SignedInUser,
        admission: Admission,
    ) -> Result<Provisioned, ProvisionError> {
        match self {
            UserDirectory::Off => Ok(Provisioned::default()),
            UserDirectory::Kubernetes(k) => {
                let deadline = admission
                    .deadline
                    .unwrap_or_else(|| tokio::time::Instant::now() + k.budget);
                tokio::time::timeout_at(deadline, k.provision(user, admission.admitted))
                    .await
                    .map_err(|_| ProvisionError::TimedOut(k.budget))?
            }
        }
    }

    /// The config's SsoUsers as a SCIM user store, pushed users belonging to `provider` (with
    /// `issuer`); `None` without a Kubernetes directory.
    pub fn scim(&self, provider: &str, issuer: &str) -> Option<crate::scim::ScimDirectory> {
        match self {
            UserDirectory::Off => None,
            UserDirectory::Kubernetes(k) => Some(crate::scim::ScimDirectory::new(
                k.api.clone(),
                k.config.clone(),
                provider,
                issuer,
                k.cache.tombstones(),
                k.budget,
            )),
        }
    }

    /// Whether the watch holds SsoUser `name` as one of this config's users (no I/O); `false`
    /// without a directory.
    pub fn holds_own(&self, name: &str) -> bool {
        match self {
            UserDirectory::Off => false,
            UserDirectory::Kubernetes(k) => k.cache.holds_own(name),
        }
    }

    /// Checks a session on every request. Never blocks or does IO.
    pub fn check(&self, session: &Session) -> Result<(), SessionRefusal> {
        match self {
            UserDirectory::Off => Ok(()),
            UserDirectory::Kubernetes(k) => {
                let (uid, started) = bound_user(session)?;
                k.cache
                    .check_session(&session.user, uid, started, session_ids(session))
            }
        }
    }

    /// Whether [`UserDirectory::check`]'s `refusal` of `session` at `now` (Unix seconds) is a
    /// miss for a session issued moments ago, which [`UserDirectory::confirm`] settles by
    /// reading the SsoUser from the API (another replica may have just created it).
    pub fn may_confirm(&self, session: &Session, refusal: SessionRefusal, now: i64) -> bool {
        match self {
            UserDirectory::Off => false,
            UserDirectory::Kubernetes(k) => {
                session.user_uid.is_some()
                    && k.read_through.may_read(refusal, session.issued_at, now)
            }
        }
    }

    /// Settles a miss [`UserDirectory::may_confirm`] allowed: reads the SsoUser (bounded,
    /// rate-limited, shared by concurrent requests) and judges the session as the watch would.
    pub async fn confirm(&self, session: &Session) -> Confirmation {
        match self {
            UserDirectory::Off => Confirmation {
                verdict: Ok(()),
                read: None,
            },
            UserDirectory::Kubernetes(k) => match bound_user(session) {
                Ok((uid, started)) => {
                    k.read_through
                        .confirm(&session.user, uid, started, session_ids(session))
                        .await
                }
                Err(refusal) => Confirmation {
                    verdict: Err(refusal),
                    read: None,
                },
            },
        }
    }

    /// Ends one session of SsoUser `user` on every replica (see [`Revoker::end_session`]);
    /// `None` without a Kubernetes directory (nothing is shared between replicas).
    pub async fn end_session(
        &self,
        user: &str,
        session_id: &str,
        until: jiff::Timestamp,
    ) -> Option<Result<Revoked, RevocationError>> {
        match self {
            UserDirectory::Off => None,
            UserDirectory::Kubernetes(k) => Some(
                tokio::time::timeout(
                    REVOCATION_BUDGET,
                    k.revoker.end_session(user, session_id, until),
                )
                .await
                .unwrap_or(Err(RevocationError::TimedOut(REVOCATION_BUDGET))),
            ),
        }
    }

    /// Ends every session of SsoUser `user` started at or before `up_to` on every replica
    /// (`spec.sessionsNotBefore`, see [`Revoker::end_all_sessions`]); `None` without a
    /// Kubernetes directory.
    pub async fn end_all_sessions(
        &self,
        user: &str,
        up_to: jiff::Timestamp,
    ) -> Option<Result<Revoked, RevocationError>> {
        match self {
            UserDirectory::Off => None,
            UserDirectory::Kubernetes(k) => Some(
                tokio::time::timeout(REVOCATION_BUDGET, k.revoker.end_all_sessions(user, up_to))
                    .await
                    .unwrap_or(Err(RevocationError::TimedOut(REVOCATION_BUDGET))),
            ),
        }
    }

    /// The shared re-validation record of `session`, as the watch last delivered it (`None`
    /// without a Kubernetes directory: nothing is shared between replicas).
    pub fn shared_renewal(&self, session: &Session) -> Option<SessionRenewal> {
        match self {
            UserDirectory::Off => None,
            UserDirectory::Kubernetes(k) => k.cache.session_renewal(&session.user, &session.sid),
        }
    }

    /// Takes the lease on asking the IdP about `session` for `holder` ([`Renewals::take_lease`]);
    /// always [`Lease::Taken`] without a Kubernetes directory (one replica).
    pub async fn take_renewal_lease(
        &self,
        session: &Session,
        holder: &str,
        known_validated_at: i64,
    ) -> Result<Lease, RenewalError> {
        match self {
            UserDirectory::Off => Ok(Lease::Taken),
            UserDirectory::Kubernetes(k) => tokio::time::timeout(
                REVOCATION_BUDGET,
                k.renewals.take_lease(
                    &session.user,
                    &session.sid,
                    holder,
                    known_validated_at,
                    RENEWAL_LEASE,
                    session.expires_at,
                ),
            )
            .await
            .unwrap_or(Err(RenewalError::TimedOut(REVOCATION_BUDGET))),
        }
    }

    /// Shares a renewal of SsoUser `user`'s session and gives up `holder`'s lease.
    pub async fn record_renewal(
        &self,
        user: &str,
        renewal: SharedRenewal,
        holder: &str,
    ) -> Result<(), RenewalError> {
        match self {
            UserDirectory::Off => Ok(()),
            UserDirectory::Kubernetes(k) => {
                tokio::time::timeout(REVOCATION_BUDGET, k.renewals.record(user, renewal, holder))
                    .await
                    .unwrap_or(Err(RenewalError::TimedOut(REVOCATION_BUDGET)))
            }
        }
    }

    /// Gives up `holder`'s lease on `session` (best effort: it runs out anyway).
    pub async fn release_renewal_lease(&self, session: &Session, holder: &str) {
        if let UserDirectory::Kubernetes(k) = self {
            let released = tokio::time::timeout(
                REVOCATION_BUDGET,
                k.renewals.release(&session.user, &session.sid, holder),
            )
            .await;
            if !matches!(released, Ok(Ok(()))) {
                tracing::debug!(user = %session.user, "re-validation lease not released; it runs out");
            }
        }
    }

    /// The shared re-validation record of `session`, read from the API now.
    pub async fn read_renewal(
        &self,
        session: &Session,
    ) -> Result<Option<SessionRenewal>, RenewalError> {
        match self {
            UserDirectory::Off => Ok(None),
            UserDirectory::Kubernetes(k) => tokio::time::timeout(
                REVOCATION_BUDGET,
                k.renewals.read(&session.user, &session.sid),
            )
            .await
            .unwrap_or(Err(RenewalError::TimedOut(REVOCATION_BUDGET))),
        }
    }

    /// Signalled whenever the directory's view of users changes (`None`: it never does).
    pub fn changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        match self {
            UserDirectory::Off => None,
            UserDirectory::Kubernetes(k) => Some(k.cache.changes()),
        }
    }

    /// Whether the directory is usable (readiness).
    pub fn is_ready(&self) -> bool {
        match self {
            UserDirectory::Off => true,
            UserDirectory::Kubernetes(k) => k.cache.is_ready(),
        }
    }

    /// The watch cache, when the directory is Kubernetes.
    pub fn cache(&self) -> Option<&UserCache> {
        match self {
            UserDirectory::Off => None,
            UserDirectory::Kubernetes(k) => Some(&k.cache),
        }
    }
}

/// The SsoUser UID a session is bound to, and when it started.
/// The ids [`UserCache::check_session`] matches against `status.revokedSessions`.
fn session_ids(session: &Session) -> SessionIds<'_> {
    SessionIds {
        own: Some(&session.sid),
        idp: session.idp_sid.as_deref(),
    }
}

fn bound_user(session: &Session) -> Result<(&str, jiff::Timestamp), SessionRefusal> {
    // A session without a UID was not issued by a Kubernetes-backed sidecar.
    let uid = session
        .user_uid
        .as_deref()
        .ok_or(SessionRefusal::Replaced)?;
    let started = jiff::Timestamp::from_second(session.issued_at)
        .map_err(|_| SessionRefusal::SessionsRevoked)?;
    Ok((uid, started))
}

/// What a Kubernetes directory serves: one SsoConfig's users in its namespace.
#[derive(Debug, Clone)]
pub struct DirectorySettings {
    /// The SsoConfig's namespace, where its SsoUsers live.
    pub namespace: String,
    /// The SsoConfig's name (`gatehouse.dev/config` label, `spec.config`).
    pub config_name: String,
    /// Who may sign in: anyone the IdP vouches for (`jit`) or declared users only.
    pub mode: gatehouse_crds::ProvisioningMode,
    /// How long the watch may be broken before sessions are refused.
    pub staleness: Duration,
}

/// SsoUsers as the directory: the provisioner, the watch cache, reads on its misses for new
/// sessions, and an Event recorder.
pub struct KubernetesDirectory {
    provisioner: Provisioner,
    cache: UserCache,
    read_through: ReadThrough,
    revoker: Revoker,
    renewals: Renewals,
    events: Arc<Recorder>,
    namespace: String,
    /// The SsoConfig's name.
    config: String,
    /// The namespace's SsoUsers.
    api: kube::Api<gatehouse_crds::SsoUser>,
    /// [`SIGN_IN_API_BUDGET`]; shorter in tests.
    budget: Duration,
}

impl std::fmt::Debug for KubernetesDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesDirectory")
            .field("provisioner", &self.provisioner)
            .field("cache", &self.cache)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// How long one replica may hold the lease on asking the IdP about a session: longer than a
/// refresh takes (IdP round trip, ID-token check, SsoUser write), short enough that a replica
/// that died holding it delays the session's re-validation by no more than this.
pub const RENEWAL_LEASE: Duration = Duration::from_secs(30);

/// `reportingController` of the sidecar's Events.
pub const EVENT_REPORTER: &str = "gatehouse.dev/sidecar";

impl KubernetesDirectory {
    /// The directory of `config`'s users through `client`; feed the returned half with the watch
    /// of the namespace's SsoUsers ([`UserCacheFeeder::run`]).
    pub fn new(client: kube::Client, settings: &DirectorySettings) -> (Self, UserCacheFeeder) {
        Self::assemble(
            client,
            &settings.namespace,
            &settings.config_name,
            settings.mode,
            settings.staleness,
            SIGN_IN_API_BUDGET,
        )
    }

    /// [`KubernetesDirectory::new`] with a sign-in `budget` other than [`SIGN_IN_API_BUDGET`]
    /// (tests shorten it).
    pub fn assemble(
        client: kube::Client,
        namespace: &str,
        config_name: &str,
        mode: gatehouse_crds::ProvisioningMode,
        staleness: Duration,
        budget: Duration,
    ) -> (Self, UserCacheFeeder) {
        let api = kube::Api::namespaced(client.clone(), namespace);
        let (cache, feeder) = UserCache::new(namespace, config_name, staleness);
        let revoker = Revoker::new(api.clone());
        let renewals = Renewals::new(api.clone());
        let provisioner = Provisioner::new(api.clone(), config_name, mode, cache.clone());
        let read_through = ReadThrough::new(api.clone(), cache.clone(), ReadLimits::default());
        let reporter = Reporter {
            controller: EVENT_REPORTER.to_owned(),
            instance: None,
        };
        let directory = KubernetesDirectory {
            provisioner,
            cache,
            read_through,
            revoker,
            renewals,
            events: Arc::new(Recorder::new(client, reporter)),
            namespace: namespace.to_owned(),
            config: config_name.to_owned(),
            api,
            budget,
        };
        (directory, feeder)
    }

    async fn provision(
        &self,
        user: &SignedInUser,
        admitted: Option<Admitted>,
    ) -> Result<Provisioned, ProvisionError> {
        let done = match admitted {
            Some(admitted) => self.provisioner.provision_admitted(user, admitted).await?,
            None => self.provisioner.provision(user).await?,
        };
        let note = if done.created {
            Some((
                "Provisioned",
                format!(
                    "Created at first sign-in through {} with role {}",
                    user.provider, user.role
                ),
            ))
        } else if done.role_changed {
            Some((
                "RoleChanged",
                format!(
                    "Role changed from {} to {} at {} through {}",
                    done.previous_role.as_deref().unwrap_or("none"),
                    user.role,
                    user.occasion.as_str(),
                    user.provider
                ),
            ))
        } else {
            None
        };
        if let Some((reason, note)) = note {
            // In the background: an Event must never delay or fail a sign-in.
            let recorder = self.events.clone();
            let reference = ObjectReference {
                api_version: Some(gatehouse_crds::API_VERSION.to_owned()),
                kind: Some("SsoUser".to_owned()),
                name: Some(done.name.clone()),
                namespace: Some(self.namespace.clone()),
                uid: Some(done.uid.clone()),
                ..ObjectReference::default()
            };
            tokio::spawn(async move {
                let event = Event {
                    type_: EventType::Normal,
                    reason: reason.to_owned(),
                    note: Some(note),
                    action: "SignIn".to_owned(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, &reference).await {
                    tracing::warn!(error = %e, reason, "could not record an Event on the SsoUser");
                }
            });
        }
        Ok(Provisioned {
            user_uid: Some(done.uid),
        })
    }
}

#[cfg(test)]
mod tests {
    //! A failing API server against the sign-in's API budget, through kube's own retry policy
    //! (the one a default client runs: 429/503 retried with backoff, `Retry-After` honoured).

    use super::*;

    use bytes::Bytes;
    use gatehouse_auth::signin::Occasion;
    use gatehouse_crds::ProvisioningMode;
    use std::collections::BTreeMap;

    use http::{HeaderValue, Method, Request};
    use http::{Response, StatusCode};
    use http_body_util::{BodyExt as _, Full, combinators::UnsyncBoxBody};
    use kube::client::retry::RetryPolicy;
    use tower::BoxError;
    use tower::retry::RetryLayer;
    use tower_test::mock;

    type MockBody = UnsyncBoxBody<Bytes, BoxError>;

    const BUDGET: Duration = Duration::from_secs(2);

    /// A Kubernetes directory whose API is the returned handle, behind kube's server retry
    /// policy, with a sign-in budget of [`BUDGET`].
    fn directory() -> (
        UserDirectory,
        mock::Handle<Request<kube::client::Body>, Response<MockBody>>,
    ) {
        let (service, handle) = mock::pair::<Request<kube::client::Body>, Response<MockBody>>();
        let service = tower::ServiceBuilder::new()
            .layer(RetryLayer::new(RetryPolicy::server_retry()))
            .service(service);
        let client = kube::Client::new(service, "team-a");
        let (directory, _feeder) = KubernetesDirectory::assemble(
            client,
            "team-a",
            "portal",
            ProvisioningMode::Jit,
            Duration::from_secs(300),
            BUDGET,
        );
        (UserDirectory::Kubernetes(Box::new(directory)), handle)
    }

    #[tokio::test(start_paused = true)]
    async fn scim_writes_get_the_sign_ins_api_budget_when_the_api_never_answers() {
        let (directory, handle) = directory();
        // The handle is held and never answers: every request hangs.
        let store = directory
            .scim("okta", "https://acme.okta.com")
            .expect("kubernetes");
        let started = tokio::time::Instant::now();
        let err = store
            .create(
                gatehouse_crds::ScimProfile {
                    user_name: "ada@example.com".into(),
                    external_id: Some("00u1ada".into()),
                    ..Default::default()
                },
                true,
            )
            .await
            .expect_err("nothing is created while the API hangs");
        assert!(
            matches!(err, crate::scim::ScimStoreError::TimedOut(budget) if budget == BUDGET),
            "{err}"
        );
        assert!(err.is_transient(), "the IdP is told to retry");
        assert!(started.elapsed() <= BUDGET + Duration::from_millis(1));
        drop(handle);
    }

    fn ada() -> SignedInUser {
        SignedInUser {
            user: "okta-0123456789abcdef".into(),
            provider: "okta".into(),
            issuer: "https://acme.okta.com".into(),
            subject: "00u1ada".into(),
            email: None,
            name: None,
            preferred_username: None,
            role: "member",
            org: "acme".into(),
            groups: Vec::new(),
            attributes: BTreeMap::new(),
            groups_unknown: false,
            occasion: Occasion::SignIn,
        }
    }

    #[tokio::test]
    async fn without_a_directory_a_user_keeps_the_name_that_does_not_depend_on_the_config() {
        // No SsoUsers, so nothing of two apps to keep apart: `X-Forwarded-User` stays what
        // Gatehouse 0.1 sent, whatever `map_user` named the user.
        let admission = UserDirectory::Off.admit(&ada()).await.expect("admitted");
        assert_eq!(
            admission.user_name(),
            Some(legacy_sso_user_name("okta", "https://acme.okta.com", "00u1ada").as_str())
        );
        assert_eq!(
            UserDirectory::Off
                .provision(&ada(), admission)
                .await
                .expect("nothing to write"),
            Provisioned::default()
        );
    }

    fn status(code: StatusCode, retry_after: Option<&str>) -> Response<MockBody> {
        let body = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "try again later", "code": code.as_u16(),
            "reason": if code == StatusCode::NOT_FOUND { "NotFound" } else { "ServiceUnavailable" }
        });
        let mut response = Response::new(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *response.status_mut() = code;
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                "retry-after",
                HeaderValue::from_str(seconds).expect("a valid header"),
            );
        }
        response
    }

    /// Answers every request with `code`, counting the requests and the writes among them.
    fn answer_every_request(
        mut handle: mock::Handle<Request<kube::client::Body>, Response<MockBody>>,
        code: StatusCode,
        retry_after: Option<&'static str>,
    ) -> tokio::task::JoinHandle<(usize, usize)> {
        tokio::spawn(async move {
            let (mut requests, mut writes) = (0, 0);
            while let Some((request, reply)) = handle.next_request().await {
                requests += 1;
                if request.method() != Method::GET {
                    writes += 1;
                }
                reply.send_response(status(code, retry_after));
                if requests > 1000 {
                    break;
                }
            }
            (requests, writes)
        })
    }

    async fn admit_within_budget(directory: &UserDirectory) -> ProvisionError {
        let started = tokio::time::Instant::now();
        let err = directory
            .admit(&ada())
            .await
            .expect_err("no admission while the API fails");
        // Virtual time (the runtime's clock is paused): exact, whatever the machine's load.
        assert!(
            started.elapsed() <= BUDGET + Duration::from_millis(1),
            "the sign-in waited {:?}, over its budget of {BUDGET:?}",
            started.elapsed()
        );
        err
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_that_never_answers_fails_the_sign_in_at_the_budget() {
        let (directory, mut handle) = directory();
        // Accept each request and never answer it.
        let held = tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Some(request) = handle.next_request().await {
                pending.push(request);
            }
        });
        let err = admit_within_budget(&directory).await;
        assert!(
            matches!(err, ProvisionError::TimedOut(b) if b == BUDGET),
            "{err:?}"
        );
        assert_eq!(err.reason(), "directory_unavailable", "the 503 page");
        held.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_answering_503_is_retried_only_within_the_budget() {
        let (directory, handle) = directory();
        let server = answer_every_request(handle, StatusCode::SERVICE_UNAVAILABLE, None);
        let err = admit_within_budget(&directory).await;
        assert_eq!(err.reason(), "directory_unavailable", "{err:?}");
        drop(directory);
        let (requests, writes) = server.await.expect("the fake API ends");
        assert!(requests > 1, "kube's retries ran ({requests} requests)");
        assert_eq!(writes, 0, "nothing written when admission failed");
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_answering_429_with_a_long_retry_after_fails_at_the_budget() {
        let (directory, handle) = directory();
        let server = answer_every_request(handle, StatusCode::TOO_MANY_REQUESTS, Some("60"));
        let err = admit_within_budget(&directory).await;
        assert!(matches!(err, ProvisionError::TimedOut(_)), "{err:?}");
        drop(directory);
        let (_, writes) = server.await.expect("the fake API ends");
        assert_eq!(writes, 0, "nothing written when admission failed");
    }

    #[tokio::test(start_paused = true)]
    async fn provisioning_gets_only_what_admission_left_of_the_budget() {
        let (directory, mut handle) = directory();
        // Admission's reads: 404 after 1.5 s (the user is new), 404 for the name of Gatehouse
        // 0.1 at once, then the create is never answered.
        let server = tokio::spawn(async move {
            let (_, reply) = handle.next_request().await.expect("admission's read");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            reply.send_response(status(StatusCode::NOT_FOUND, None));
            let (_, reply) = handle.next_request().await.expect("the legacy name's read");
            reply.send_response(status(StatusCode::NOT_FOUND, None));
            let mut pending = Vec::new();
            while let Some(request) = handle.next_request().await {
                pending.push(request);
            }
        });
        let started = tokio::time::Instant::now();
        let admission = directory
            .admit(&ada())
            .await
            .expect("a new user is admitted");
        let err = directory
            .provision(&ada(), admission)
            .await
            .expect_err("the create is never answered");
        assert!(matches!(err, ProvisionError::TimedOut(_)), "{err:?}");
        assert!(
            started.elapsed() <= BUDGET + Duration::from_millis(1),
            "admission and provisioning together took {:?}, over {BUDGET:?}",
            started.elapsed()
        );
        server.abort();
    }
}
