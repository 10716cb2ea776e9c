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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Method, Request, header};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde::Serialize;

use crate::config::Config;
use crate::directory::kubernetes::{Admitted, Provisioner, Refusal, UserCache, UserCacheFeeder};
use crate::proxy::Upstream;
use crate::session::Session;

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
            ProvisionError::Unavailable(_) => "directory_unavailable",
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
/// not read twice in one sign-in.
#[derive(Debug, Default)]
pub struct Admission(Option<Admitted>);

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
            UserDirectory::Kubernetes(k) => Ok(Admission(Some(k.provisioner.admit(user).await?))),
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
            UserDirectory::Kubernetes(k) => k.provision(user, admission).await,
        }
    }

    /// Checks a session on every request. Never blocks or does IO.
    pub fn check(&self, session: &Session) -> Result<(), Refusal> {
        match self {
            UserDirectory::Off => Ok(()),
            UserDirectory::Kubernetes(k) => {
                // A session without a UID was not issued by a Kubernetes-backed sidecar.
                let uid = session.user_uid.as_deref().ok_or(Refusal::Replaced)?;
                let started = jiff::Timestamp::from_second(session.issued_at)
                    .map_err(|_| Refusal::SessionsRevoked)?;
                k.cache.check(&session.user, uid, started)
            }
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

/// SsoUsers as the directory: the provisioner, the watch cache and an Event recorder.
pub struct KubernetesDirectory {
    provisioner: Provisioner,
    cache: UserCache,
    events: Arc<Recorder>,
    namespace: String,
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
        let api = kube::Api::namespaced(client.clone(), &config.namespace);
        let (cache, feeder) = UserCache::new(
            &config.namespace,
            &config.config_name,
            config.revocation_staleness,
        );
        let provisioner = Provisioner::new(
            api,
            &config.config_name,
            config.user_provisioning,
            cache.clone(),
        );
        let reporter = Reporter {
            controller: EVENT_REPORTER.to_owned(),
            instance: None,
        };
        let directory = KubernetesDirectory {
            provisioner,
            cache,
            events: Arc::new(Recorder::new(client, reporter)),
            namespace: config.namespace.clone(),
        };
        (directory, feeder)
    }

    async fn provision(
        &self,
        user: &SignedInUser,
        admission: Admission,
    ) -> Result<Provisioned, ProvisionError> {
        let done = match admission.0 {
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
                    "Role changed from {} to {} at sign-in through {}",
                    done.previous_role.as_deref().unwrap_or("none"),
                    user.role,
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
