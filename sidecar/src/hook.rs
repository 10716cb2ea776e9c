//! The app's provisioning hook (`GATEHOUSE_PROVISION_HOOK`): on each sign-in, the user is POSTed
//! as JSON to a path of the app, between the directory's admission and its write, so the app can
//! create its own account at first sign-in. A failing hook fails the sign-in.

use std::time::Duration;

use axum::body::Body;
use gatehouse_auth::signin::SignedInUser;
use gatehouse_proxy::Upstream;
use http::{HeaderValue, Method, Request, header};

/// Why the hook failed: `timeout`, `unreachable`, `HTTP <status>`, or the request could not be
/// built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provisioning hook failed ({0})")]
pub struct HookError(pub String);

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
    ) -> Result<(), HookError> {
        let body = serde_json::to_vec(user).map_err(|_| HookError("encode".into()))?;
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
            .map_err(|_| HookError("request".into()))?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.upstream.send(request))
            .await
            .map_err(|_| HookError("timeout".into()))?
            .map_err(|_| HookError("unreachable".into()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(HookError(format!("HTTP {}", response.status().as_u16())))
        }
    }
}
