//! Extractors the sidecar's handlers share.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::response::Response;
use http::request::Parts;

use crate::state::App;
use gatehouse_auth::cookie::Session;
use gatehouse_auth::token::now_unix;

/// The query string, read parameter by parameter: the first occurrence of a name wins, and a
/// repeated or unknown parameter is no error (unlike a typed `Query`).
#[derive(Debug, Default)]
pub struct QueryParams(Option<String>);

impl QueryParams {
    /// The first value of `name`, decoded.
    pub fn get(&self, name: &str) -> Option<String> {
        let query = self.0.as_deref()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(parts.uri.query().map(str::to_owned)))
    }
}

/// The `{provider}` of the route: a provider id as written in the path. Not necessarily one that
/// is configured; a path that cannot be read is answered 404.
#[derive(Debug)]
pub struct ProviderId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ProviderId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| crate::pages::not_found_page())?;
        params
            .iter()
            .find(|(name, _)| *name == "provider")
            .map(|(_, id)| Self(id.to_owned()))
            .ok_or_else(crate::pages::not_found_page)
    }
}

/// The request's valid session, if any (see [`App::session`]).
#[derive(Debug)]
pub struct CurrentSession(pub Option<Arc<Session>>);

impl FromRequestParts<App> for CurrentSession {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Infallible> {
        Ok(Self(app.session(&parts.headers, now_unix()).await))
    }
}
