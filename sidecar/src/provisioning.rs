//! Where signed-in users are recorded, and the per-request revocation check.
//!
//! [`UserDirectory`] is the seam for issue 4: `Off` (this build) keeps no record and revokes
//! nothing beyond the sidecar's own logout denylist; a `Kubernetes` variant will create or update
//! the `SsoUser` by server-side apply at sign-in (returning its UID, which the session then carries)
//! and answer [`UserDirectory::check`] from a watch cache (deleted, suspended, `sessionsNotBefore`,
//! UID mismatch, watch staler than `GATEHOUSE_REVOCATION_STALENESS`).
//!
//! The optional provisioning hook (`GATEHOUSE_PROVISION_HOOK`) POSTs the user as JSON to a path of the
//! app on every sign-in, so the app can create its own account; a failing hook fails the sign-in.

use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Method, Request, header};
use serde::Serialize;

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
}

/// Result of recording a sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// The SsoUser's UID, bound into the session.
    pub user_uid: Option<String>,
}

/// Why a sign-in could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// The user is suspended (pre-declared or by GitOps).
    #[error("user is suspended")]
    Suspended,
    /// The directory (Kubernetes API) cannot be reached.
    #[error("user directory unavailable")]
    Unavailable,
    /// The app's provisioning hook failed.
    #[error("provisioning hook failed ({0})")]
    Hook(String),
}

impl ProvisionError {
    /// Stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            ProvisionError::Suspended => "user_suspended",
            ProvisionError::Unavailable => "directory_unavailable",
            ProvisionError::Hook(_) => "provision_hook_failed",
        }
    }
}

/// Whether an existing session may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Admit it.
    Valid,
    /// Refuse it (deleted, suspended, re-created, or revocation data too stale).
    Revoked,
}

/// The user directory.
#[derive(Debug)]
pub enum UserDirectory {
    /// `GATEHOUSE_PROVISIONING=off`: no Kubernetes at all.
    Off,
}

impl UserDirectory {
    /// Records a sign-in.
    pub async fn provision(&self, _user: &SignedInUser) -> Result<Provisioned, ProvisionError> {
        match self {
            UserDirectory::Off => Ok(Provisioned::default()),
        }
    }

    /// Checks a session on every request. Must not block or do IO.
    pub fn check(&self, _session: &Session, _now: i64) -> SessionCheck {
        match self {
            UserDirectory::Off => SessionCheck::Valid,
        }
    }

    /// Whether the directory is usable (readiness).
    pub fn is_ready(&self) -> bool {
        match self {
            UserDirectory::Off => true,
        }
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
