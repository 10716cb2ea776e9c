//! Where signed-in users are recorded, and the per-request revocation check.
//!
//! [`UserDirectory`] is `Off` (`GATEHOUSE_PROVISIONING=off`: no record, nothing revoked beyond the
//! sidecar's own logout denylist) or `Kubernetes`: SsoUsers of the config's namespace, created or
//! refreshed at sign-in and watched for revocation (see [`crate::directory::kubernetes`]).
//!
//! A sign-in runs in three steps so that a failure leaves nothing half-done:
//! 1. [`UserDirectory::admit`]: read-only (suspended, not declared, API unreachable);
//! 2. the app's provisioning hook ([`ProvisionHook`], `GATEHOUSE_PROVISION_HOOK`), if any;
//! 3. [`UserDirectory::provision`]: the only write.
//!
//! Steps 1 and 3 share one deadline, [`SIGN_IN_API_BUDGET`], kube's own retries included: an API
//! server that answers 503 or 429, or accepts the connection and never answers, costs a sign-in
//! that long and then a 503 page, never a browser left waiting.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Method, Request, header};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde::Serialize;

use crate::config::Config;
use crate::directory::kubernetes::{
    Admitted, Provisioner, Refusal, SessionIds, UserCache, UserCacheFeeder,
};
use crate::directory::read_through::{Confirmation, ReadLimits, ReadThrough};
use crate::directory::revocation::{REVOCATION_BUDGET, RevocationError, Revoked, Revoker};
use crate::proxy::Upstream;
use crate::session::Session;

/// The longest one sign-in waits for the Kubernetes API, admission and provisioning together
/// (kube's retries of 429/503 answers included). When it runs out the sign-in fails with
/// `directory_unavailable` (a 503 page) and no session; existing sessions are unaffected.
pub const SIGN_IN_API_BUDGET: Duration = Duration::from_secs(5);

/// A user who just passed verification and role mapping.
#[derive(Debug, Clone, Serialize)]
pub struct SignedInUser {
    /// SsoUser name (stable user id).
    pub user: String,
    /// Provider id.
    pub provider: String,
    /// Issuer.
    pub issuer: String,
    /// IdP subject.
    pub subject: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Preferred username.
    pub preferred_username: Option<String>,
    /// Role.
    pub role: &'static str,
    /// Organisation id.
    pub org: String,
    /// Claims copied by `GATEHOUSE_ATTRIBUTE_MAPPINGS`.
    pub attributes: BTreeMap<String, String>,
    /// A sign-in, or a re-validation of a session at the IdP (not sent to the hook, which only
    /// sign-ins call).
    #[serde(skip)]
    pub occasion: Occasion,
}

/// Why the IdP vouched for a user just now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// The user signed in: counted in `status.loginCount` and `status.lastLogin`.
    SignIn,
    /// A session was re-validated with its refresh token: the profile, role and attributes are
    /// synced, the sign-in count and time are left as they were.
    Revalidation,
}

impl Occasion {
    /// `sign-in` or `re-validation`, for Event notes.
    pub fn as_str(self) -> &'static str {
        match self {
            Occasion::SignIn => "sign-in",
            Occasion::Revalidation => "re-validation",
        }
    }
}

/// Result of recording a sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// The SsoUser's UID, bound into the session.
    pub user_uid: Option<String>,
}

/// Why a sign-in could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The SsoUser has `suspended: true`.
    #[error("this account is suspended")]
    Suspended,
    /// Provisioning mode is `preDeclared` and no SsoUser exists for the user.
    #[error(
        "no SsoUser is declared for this user and the SsoConfig only admits pre-declared users"
    )]
    NotDeclared,
    /// An SsoUser of this name exists for another config, provider or subject.
    #[error("SsoUser {name} belongs to another identity or SsoConfig")]
    Collision {
        /// The SsoUser.
        name: String,
    },
    /// The Kubernetes API could not be reached or refused the request.
    #[error("the Kubernetes API is unavailable: {0}")]
    Unavailable(#[source] kube::Error),
    /// The Kubernetes API did not answer within the sign-in's budget ([`SIGN_IN_API_BUDGET`]).
    #[error("the Kubernetes API did not answer within {0:?}")]
    TimedOut(Duration),
    /// Writers kept racing this sign-in.
    #[error("SsoUser {name} kept changing during sign-in")]
    Contended {
        /// The SsoUser.
        name: String,
    },
    /// The app's provisioning hook failed.
    #[error("provisioning hook failed ({0})")]
    Hook(String),
}

impl ProvisionError {
    /// Stable, low-cardinality reason code (metrics, audit lines, the page shown).
    pub fn reason(&self) -> &'static str {
        match self {
            ProvisionError::Suspended => "user_suspended",
            ProvisionError::NotDeclared => "user_not_declared",
            ProvisionError::Collision { .. } => "user_conflict",
            ProvisionError::Unavailable(_) | ProvisionError::TimedOut(_) => "directory_unavailable",
            ProvisionError::Contended { .. } => "directory_contended",
            ProvisionError::Hook(_) => "provision_hook_failed",
        }
    }

    /// Whether the user was refused (as opposed to the sign-in failing for a technical reason).
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            ProvisionError::Suspended
                | ProvisionError::NotDeclared
                | ProvisionError::Collision { .. }
        )
    }
}

/// What [`UserDirectory::admit`] read, handed to [`UserDirectory::provision`] so the SsoUser is
/// not read twice in one sign-in, and the sign-in's API deadline.
#[derive(Debug, Default)]
pub struct Admission {
    admitted: Option<Admitted>,
    deadline: Option<tokio::time::Instant>,
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
            UserDirectory::Off => Ok(Admission::default()),
            UserDirectory::Kubernetes(k) => {
                let deadline = tokio::time::Instant::now() + k.budget;
                let admitted = tokio::time::timeout_at(deadline, k.provisioner.admit(user))
                    .await
                    .map_err(|_| ProvisionError::TimedOut(k.budget))??;
                Ok(Admission {
                    admitted: Some(admitted),
                    deadline: Some(deadline),
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

    /// Checks a session on every request. Never blocks or does IO.
    pub fn check(&self, session: &Session) -> Result<(), Refusal> {
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
    pub fn may_confirm(&self, session: &Session, refusal: Refusal, now: i64) -> bool {
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

    /// Ends every session of SsoUser `user` on every replica (`spec.sessionsNotBefore`);
    /// `None` without a Kubernetes directory.
    pub async fn end_all_sessions(&self, user: &str) -> Option<Result<Revoked, RevocationError>> {
        match self {
            UserDirectory::Off => None,
            UserDirectory::Kubernetes(k) => Some(
                tokio::time::timeout(REVOCATION_BUDGET, k.revoker.end_all_sessions(user))
                    .await
                    .unwrap_or(Err(RevocationError::TimedOut(REVOCATION_BUDGET))),
            ),
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

fn bound_user(session: &Session) -> Result<(&str, jiff::Timestamp), Refusal> {
    // A session without a UID was not issued by a Kubernetes-backed sidecar.
    let uid = session.user_uid.as_deref().ok_or(Refusal::Replaced)?;
    let started =
        jiff::Timestamp::from_second(session.issued_at).map_err(|_| Refusal::SessionsRevoked)?;
    Ok((uid, started))
}

/// SsoUsers as the directory: the provisioner, the watch cache, reads on its misses for new
/// sessions, and an Event recorder.
pub struct KubernetesDirectory {
    provisioner: Provisioner,
    cache: UserCache,
    read_through: ReadThrough,
    revoker: Revoker,
    events: Arc<Recorder>,
    namespace: String,
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

/// `reportingController` of the sidecar's Events.
pub const EVENT_REPORTER: &str = "gatehouse.dev/sidecar";

impl KubernetesDirectory {
    /// The directory of `config`'s users through `client`; feed the returned half with the watch
    /// of the namespace's SsoUsers ([`UserCacheFeeder::run`]).
    pub fn new(client: kube::Client, config: &Config) -> (Self, UserCacheFeeder) {
        Self::assemble(
            client,
            &config.namespace,
            &config.config_name,
            config.user_provisioning,
            config.revocation_staleness,
            SIGN_IN_API_BUDGET,
        )
    }

    /// [`KubernetesDirectory::new`] from its settings; tests shorten `budget`.
    fn assemble(
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
        let provisioner = Provisioner::new(api.clone(), config_name, mode, cache.clone());
        let read_through = ReadThrough::new(api, cache.clone(), ReadLimits::default());
        let reporter = Reporter {
            controller: EVENT_REPORTER.to_owned(),
            instance: None,
        };
        let directory = KubernetesDirectory {
            provisioner,
            cache,
            read_through,
            revoker,
            events: Arc::new(Recorder::new(client, reporter)),
            namespace: namespace.to_owned(),
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

/// Calls the app's provisioning hook.
#[derive(Debug, Clone)]
pub struct ProvisionHook {
    upstream: Upstream,
    uri: http::Uri,
}

impl ProvisionHook {
    /// A hook POSTing to `<path>` on the app.
    pub fn new(upstream: Upstream, path: &str) -> Option<Self> {
        let uri = path.parse().ok()?;
        Some(Self { upstream, uri })
    }

    /// POSTs `user` as JSON with its identity headers; any non-2xx answer, error or 5 s timeout fails.
    pub async fn call(
        &self,
        user: &SignedInUser,
        identity: &[(header::HeaderName, HeaderValue)],
    ) -> Result<(), ProvisionError> {
        let body = serde_json::to_vec(user).map_err(|_| ProvisionError::Hook("encode".into()))?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(headers) = request.headers_mut() {
            for (name, value) in identity {
                headers.insert(name.clone(), value.clone());
            }
        }
        let request = request
            .body(Body::from(body))
            .map_err(|_| ProvisionError::Hook("request".into()))?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.upstream.send(request))
            .await
            .map_err(|_| ProvisionError::Hook("timeout".into()))?
            .map_err(|_| ProvisionError::Hook("unreachable".into()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(ProvisionError::Hook(format!(
                "HTTP {}",
                response.status().as_u16()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    //! A failing API server against the sign-in's API budget, through kube's own retry policy
    //! (the one a default client runs: 429/503 retried with backoff, `Retry-After` honoured).

    use super::*;

    use bytes::Bytes;
    use gatehouse_crds::ProvisioningMode;
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
            attributes: BTreeMap::new(),
            occasion: Occasion::SignIn,
        }
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

    // ---- a watch-cache miss for a new session, through the App as the gate asks it ----

    type MockHandle = mock::Handle<Request<kube::client::Body>, Response<MockBody>>;

    const USER: &str = "okta-0123456789abcdef";
    const UID: &str = "uid-ada";

    /// The sidecar's state over a Kubernetes directory whose API is the returned handle; its
    /// SsoUser watch has completed its first list, which held nobody.
    fn app_over_mock_api() -> (crate::state::App, MockHandle, UserCacheFeeder) {
        let (service, handle) = mock::pair::<Request<kube::client::Body>, Response<MockBody>>();
        let service = tower::ServiceBuilder::new()
            .layer(RetryLayer::new(RetryPolicy::server_retry()))
            .service(service);
        let client = kube::Client::new(service, "team-a");
        let (directory, mut feeder) = KubernetesDirectory::assemble(
            client,
            "team-a",
            "portal",
            ProvisioningMode::Jit,
            Duration::from_secs(300),
            BUDGET,
        );
        feeder.apply(Ok(kube::runtime::watcher::Event::Init));
        feeder.apply(Ok(kube::runtime::watcher::Event::InitDone));
        let env = std::collections::HashMap::from([
            ("GATEHOUSE_PUBLIC_URL", "https://portal.example.com"),
            (
                "GATEHOUSE_COOKIE_SECRET",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
            ("GATEHOUSE_PROVISIONING", "kubernetes"),
            ("GATEHOUSE_NAMESPACE", "team-a"),
            ("GATEHOUSE_CONFIG", "portal"),
            ("OKTA_CLIENT_ID", "client"),
            ("OKTA_CLIENT_SECRET", "not-used-here"),
            ("OKTA_ISSUER", "https://acme.okta.com"),
            ("OKTA_ORG_ID", "acme"),
        ]);
        let lookup = |name: &str| env.get(name).map(|v| (*v).to_owned());
        let config = Config::from_source(&lookup).expect("a valid configuration");
        let app = crate::state::App::with_directory(
            config,
            UserDirectory::Kubernetes(Box::new(directory)),
        )
        .expect("the state builds");
        (app, handle, feeder)
    }

    /// The cookie header of a session of `user` bound to [`UID`], issued at `issued_at`.
    fn cookie(app: &crate::state::App, user: &str, issued_at: i64) -> http::HeaderMap {
        let session = Session {
            sid: format!("sid-{user}-{issued_at}"),
            user: user.to_owned(),
            subject: "00u1ada".into(),
            provider: "okta".into(),
            email: None,
            name: None,
            username: None,
            role: gatehouse_crds::Role::Member,
            issued_at,
            expires_at: issued_at + 3600,
            user_uid: Some(UID.into()),
            idp_sid: None,
            validated_at: None,
        };
        let sealed = session.seal(&app.sessions.keys(), &app.sessions.binding);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{}={sealed}", app.sessions.cookies.session))
                .expect("a cookie header"),
        );
        headers
    }

    fn sso_user_json(name: &str) -> Response<MockBody> {
        let body = serde_json::json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "SsoUser",
            "metadata": { "name": name, "namespace": "team-a", "uid": UID, "resourceVersion": "7" },
            "spec": { "config": "portal", "provider": "okta", "subject": "00u1ada" }
        });
        Response::new(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
    }

    fn metric(app: &crate::state::App, series: &str) -> u64 {
        let text = app.metrics.encode();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
    }

    #[tokio::test]
    async fn a_miss_for_a_new_session_reads_the_user_once_and_then_serves_from_the_cache() {
        let (app, mut handle, _feeder) = app_over_mock_api();
        let server = tokio::spawn(async move {
            let mut reads = Vec::new();
            while let Some((request, reply)) = handle.next_request().await {
                reads.push(request.uri().path().to_owned());
                reply.send_response(sso_user_json(USER));
            }
            reads
        });
        let now = crate::token::now_unix();
        let headers = cookie(&app, USER, now - 5);
        let session = app.session(&headers, now).await;
        assert_eq!(session.map(|s| s.user.clone()).as_deref(), Some(USER));
        assert!(app.session(&headers, now).await.is_some(), "served again");
        assert_eq!(
            metric(&app, "gatehouse_user_reads_total{outcome=\"found\"}"),
            1
        );
        drop(app);
        let reads = server.await.expect("the fake API ends");
        assert_eq!(
            reads,
            [format!(
                "/apis/gatehouse.dev/v1alpha1/namespaces/team-a/ssousers/{USER}"
            )],
            "one read of that one user; the second request was served from the cache"
        );
    }

    #[tokio::test]
    async fn a_miss_for_an_old_session_is_refused_without_any_api_call() {
        let (app, mut handle, _feeder) = app_over_mock_api();
        let now = crate::token::now_unix();
        let headers = cookie(&app, USER, now - 600);
        assert!(app.session(&headers, now).await.is_none());
        assert_eq!(
            metric(
                &app,
                "gatehouse_sessions_refused_total{reason=\"user_deleted\"}"
            ),
            1
        );
        drop(app);
        assert!(
            handle.next_request().await.is_none(),
            "the API was called for a session the watch has had time to see"
        );
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_user_share_one_read() {
        let (app, mut handle, _feeder) = app_over_mock_api();
        let server = tokio::spawn(async move {
            let mut reads = 0;
            while let Some((_, reply)) = handle.next_request().await {
                reads += 1;
                // Slow enough for every request below to arrive while this read is under way.
                tokio::time::sleep(Duration::from_millis(300)).await;
                reply.send_response(sso_user_json(USER));
            }
            reads
        });
        let now = crate::token::now_unix();
        let headers = cookie(&app, USER, now);
        let sessions = futures::future::join_all((0..50).map(|_| app.session(&headers, now))).await;
        assert!(sessions.iter().all(Option::is_some), "all 50 admitted");
        assert_eq!(
            metric(&app, "gatehouse_user_reads_total{outcome=\"found\"}"),
            1
        );
        drop(app);
        assert_eq!(server.await.expect("the fake API ends"), 1, "one read");
    }

    #[tokio::test]
    async fn a_flood_of_misses_costs_a_bounded_number_of_reads() {
        let (app, mut handle, _feeder) = app_over_mock_api();
        let server = tokio::spawn(async move {
            let mut reads = 0u64;
            while let Some((_, reply)) = handle.next_request().await {
                reads += 1;
                reply.send_response(status(StatusCode::NOT_FOUND, None));
            }
            reads
        });
        let limits = crate::directory::read_through::ReadLimits::default();
        let started = std::time::Instant::now();
        let now = crate::token::now_unix();
        let flood = 500u64;
        for n in 0..flood {
            // Every request a session of another (deleted, or never existing) user.
            let headers = cookie(&app, &format!("okta-{n:016x}"), now);
            assert!(app.session(&headers, now).await.is_none());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let limited = metric(&app, "gatehouse_user_reads_total{outcome=\"rate_limited\"}");
        let not_found = metric(&app, "gatehouse_user_reads_total{outcome=\"not_found\"}");
        drop(app);
        let reads = server.await.expect("the fake API ends");
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bound =
            u64::from(limits.burst) + (elapsed * f64::from(limits.per_second)).ceil() as u64;
        assert!(
            reads <= bound,
            "{flood} misses in {elapsed:.2} s made {reads} API reads, over the bucket's {bound}"
        );
        assert!(reads >= u64::from(limits.burst), "the burst was allowed");
        assert_eq!(not_found, reads);
        assert_eq!(limited, flood - reads, "the rest refused without a read");
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_the_api_never_answers_is_given_up_at_its_deadline() {
        let (app, mut handle, _feeder) = app_over_mock_api();
        let held = tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Some(request) = handle.next_request().await {
                pending.push(request);
            }
        });
        let limits = crate::directory::read_through::ReadLimits::default();
        let now = crate::token::now_unix();
        let headers = cookie(&app, USER, now);
        let started = tokio::time::Instant::now();
        assert!(app.session(&headers, now).await.is_none());
        assert!(
            started.elapsed() <= limits.deadline + Duration::from_millis(1),
            "the request waited {:?}",
            started.elapsed()
        );
        assert_eq!(
            metric(&app, "gatehouse_user_reads_total{outcome=\"timed_out\"}"),
            1
        );
        assert_eq!(
            metric(
                &app,
                "gatehouse_sessions_refused_total{reason=\"user_unconfirmed\"}"
            ),
            1
        );
        held.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn provisioning_gets_only_what_admission_left_of_the_budget() {
        let (directory, mut handle) = directory();
        // Admission's read: 404 after 1.5 s (the user is new), then the create is never answered.
        let server = tokio::spawn(async move {
            let (_, reply) = handle.next_request().await.expect("admission's read");
            tokio::time::sleep(Duration::from_millis(1500)).await;
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
