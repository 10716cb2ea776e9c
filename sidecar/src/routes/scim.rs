//! `/api/auth/scim/v2`: the SCIM 2.0 service provider (RFC 7644) an identity provider pushes
//! users to (`provisioning.mode: scim`).
//!
//! | route | methods |
//! | --- | --- |
//! | `/Users` | GET (filter, startIndex, count, attributes), POST |
//! | `/Users/.search` | POST (a SearchRequest: the same as GET `/Users`) |
//! | `/.search` | POST: 501 (one resource type; search it at `/Users/.search`) |
//! | `/Users/{id}` | GET, PUT, PATCH, DELETE |
//! | `/Groups` | GET (always empty: group push is not taken) |
//! | `/ServiceProviderConfig`, `/Schemas[/{id}]`, `/ResourceTypes[/{id}]` | GET |
//!
//! Every answer, errors included, is `application/scim+json`. The bearer token is checked before
//! anything is read; a body over [`MAX_BODY`] is 413; a write the Kubernetes API could not take
//! is 503 with `Retry-After`, and so is a request that waited too long for a slot (429). Every
//! change writes an audit line: the caller (the SsoConfig whose token it holds), what
//! (`create`, `update`, `suspend`, `reactivate`, `delete`), and the SsoUser.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use gatehouse_auth::scim::{self, Projection, ScimError, ScimUser};
use gatehouse_crds::ScimProfile;
use gatehouse_directory::scim::{Narrow, ScimDirectory, ScimStoreError, StoredUser};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::extract::QueryParams;
use crate::audit;
use crate::scim::{RETRY_AFTER_SECONDS, ScimService, store_error};
use crate::state::App;

/// Largest request body taken (RFC 7644 leaves it to the service provider; an IdP's user is a
/// few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// The media type of every answer (RFC 7644 §8.1).
const SCIM_JSON: &str = "application/scim+json";

/// The SCIM routes, to nest under [`gatehouse_crds::consts::SCIM_PATH`].
pub fn router(app: App) -> Router<App> {
    Router::new()
        .route("/Users", scim_route(get(list_users).post(create_user)))
        .route(
            "/Users/.search",
            scim_route(axum::routing::post(search_users)),
        )
        .route(
            "/.search",
            scim_route(axum::routing::post(search_everything)),
        )
        .route(
            "/Users/{id}",
            scim_route(
                get(get_user)
                    .put(replace_user)
                    .patch(patch_user)
                    .delete(delete_user),
            ),
        )
        .route("/Groups", scim_route(get(list_groups)))
        .route("/Groups/{id}", scim_route(get(no_group)))
        .route(
            "/ServiceProviderConfig",
            scim_route(get(service_provider_config)),
        )
        .route("/Schemas", scim_route(get(schemas)))
        .route("/Schemas/{id}", scim_route(get(schema)))
        .route("/ResourceTypes", scim_route(get(resource_types)))
        .route("/ResourceTypes/{id}", scim_route(get(resource_type)))
        // A catch-all route rather than a fallback: a nested router's fallback does not take
        // the paths under the prefix (the reserved `/api/auth/scim/` route would answer HTML).
        .route("/", axum::routing::any(unknown_path))
        .route("/{*rest}", axum::routing::any(unknown_path))
        .layer(axum::middleware::from_fn_with_state(app, gatekeeper))
}

fn scim_route(route: MethodRouter<App>) -> MethodRouter<App> {
    route.fallback(method_not_allowed)
}

/// A SCIM answer.
fn answer(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A SCIM error answer; 401 with the bearer challenge, 429 and 503 with `Retry-After`.
fn failure(error: &ScimError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = answer(status, &error.body());
    match status {
        StatusCode::UNAUTHORIZED => {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gatehouse-scim\""),
            );
        }
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        _ => {}
    }
    r
}

/// A SCIM error as a handler's rejection.
#[derive(Debug)]
struct Failure(ScimError);

impl From<ScimError> for Failure {
    fn from(error: ScimError) -> Self {
        Failure(error)
    }
}

impl axum::response::IntoResponse for Failure {
    fn into_response(self) -> Response {
        failure(&self.0)
    }
}

type Answer = Result<Response, Failure>;

fn refuse(error: ScimError) -> Response {
    failure(&error)
}

/// Before every SCIM route: SCIM is on, the token is the config's, and a slot is free.
async fn gatekeeper(State(app): State<App>, request: Request, next: Next) -> Response {
    let Some(service) = app.scim.clone() else {
        return refuse(ScimError::not_found(
            "SCIM provisioning is not enabled for this application (its SsoConfig's \
             provisioning.mode is not scim)",
        ));
    };
    if let Err(refusal) = service.authorize(request.headers().get(header::AUTHORIZATION)) {
        audit::scim_refused(service.config_name(), refusal.reason());
        return refuse(refusal.error());
    }
    let Some(_slot) = service.slot().await else {
        return refuse(ScimError::new(
            429,
            Some(scim::ScimType::TooMany),
            "too many SCIM requests at once; retry later",
        ));
    };
    next.run(request).await
}

fn service(app: &App) -> Result<&Arc<ScimService>, ScimError> {
    app.scim.as_ref().ok_or_else(|| {
        ScimError::not_found("SCIM provisioning is not enabled for this application")
    })
}

fn store(app: &App) -> Result<(Arc<ScimService>, ScimDirectory), ScimError> {
    let service = service(app)?.clone();
    let store = service.store()?;
    Ok((service, store))
}

fn projection(query: &QueryParams) -> Result<Projection, ScimError> {
    Projection::parse(
        query.get("attributes").as_deref(),
        query.get("excludedAttributes").as_deref(),
    )
}

fn timestamp(t: Option<jiff::Timestamp>) -> Option<String> {
    t.map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn scim_user(user: &StoredUser) -> ScimUser {
    ScimUser {
        id: user.id.clone(),
        profile: user.profile.clone(),
        active: user.active,
        meta: scim::Meta {
            created: timestamp(user.created),
            last_modified: timestamp(user.last_modified.or(user.created)),
            version: user.version.clone(),
        },
    }
}

/// One user as a resource, with `Location` and `ETag`.
fn resource(
    service: &ScimService,
    user: &StoredUser,
    status: StatusCode,
    projection: &Projection,
) -> Response {
    let body = scim::user_resource(&scim_user(user), service.base(), projection);
    let mut r = answer(status, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("{}/Users/{}", service.base(), user.id)) {
        r.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(etag) = user
        .version
        .as_deref()
        .and_then(|v| HeaderValue::from_str(&format!("W/\"{v}\"")).ok())
    {
        r.headers_mut().insert(header::ETAG, etag);
    }
    r
}

/// The body of a write, as JSON: a SCIM or JSON media type (or none), at most [`MAX_BODY`].
async fn json_body(headers: &HeaderMap, body: Body) -> Result<serde_json::Value, ScimError> {
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or_default();
        let essence = kind.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case(SCIM_JSON)
            && !essence.eq_ignore_ascii_case("application/json")
        {
            return Err(ScimError::new(
                415,
                None,
                format!("Content-Type must be {SCIM_JSON} (or application/json), not {essence:?}"),
            ));
        }
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ScimError::too_large(format!("the request body is larger than {MAX_BODY} bytes"))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not JSON: {e}")))
}

/// What a listing asks for, from the query string (GET) or a SearchRequest (POST `.search`).
#[derive(Debug, Default)]
struct Search {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

impl Search {
    fn from_query(query: &QueryParams) -> Self {
        Search {
            filter: query.get("filter"),
            start_index: query.get("startIndex"),
            count: query.get("count"),
            attributes: query.get("attributes"),
            excluded_attributes: query.get("excludedAttributes"),
        }
    }

    /// A SearchRequest body (RFC 7644 §3.4.3): numbers or strings, attribute lists as arrays.
    fn from_request(body: &serde_json::Value) -> Result<Self, ScimError> {
        let object = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
        let text = |key: &str| match object.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(serde_json::Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            Some(_) => Err(ScimError::invalid_value(format!(
                "SearchRequest `{key}` has the wrong type"
            ))),
        };
        Ok(Search {
            filter: text("filter")?,
            start_index: text("startIndex")?,
            count: text("count")?,
            attributes: text("attributes")?,
            excluded_attributes: text("excludedAttributes")?,
        })
    }
}

async fn list_users(State(app): State<App>, query: QueryParams) -> Answer {
    search(&app, Search::from_query(&query)).await
}

async fn search_users(State(app): State<App>, headers: HeaderMap, body: Body) -> Answer {
    let body = json_body(&headers, body).await?;
    search(&app, Search::from_request(&body)?).await
}

async fn search(app: &App, search: Search) -> Answer {
    let (service, store) = store(app)?;
    let projection = Projection::parse(
        search.attributes.as_deref(),
        search.excluded_attributes.as_deref(),
    )?;
    let filter = match &search.filter {
        Some(text) => Some(scim::parse_filter(text)?),
        None => None,
    };
    let page = scim::page(search.start_index.as_deref(), search.count.as_deref())?;
    let narrow = Narrow {
        user_name: filter.as_ref().and_then(scim::Filter::user_name),
        external_id: filter.as_ref().and_then(scim::Filter::external_id),
    };
    let users = store.list(narrow).await.map_err(|e| store_error(&e))?;
    let matching: Vec<ScimUser> = users
        .iter()
        .map(scim_user)
        .filter(|u| filter.as_ref().is_none_or(|f| f.matches(u)))
        .collect();
    // Paging on (startIndex > 1) an unfiltered listing counts the places of users deleted
    // lately, so that a deletion between two pages moves no user onto a page already read: a
    // user who existed throughout is never skipped (one may be listed twice).
    let slots: Vec<Option<&ScimUser>> = if filter.is_none() && page.start_index > 1 {
        let mut places: Vec<((i64, String), Option<&ScimUser>)> = users
            .iter()
            .zip(&matching)
            .map(|(stored, user)| {
                let (created, id) = stored.order_key();
                ((created, id.to_owned()), Some(user))
            })
            .collect();
        let live: std::collections::HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
        for gone in store.tombstones() {
            if !live.contains(gone.id.as_str()) {
                places.push(((gone.created, gone.id), None));
            }
        }
        places.sort_by(|a, b| a.0.cmp(&b.0));
        places.into_iter().map(|(_, user)| user).collect()
    } else {
        matching.iter().map(Some).collect()
    };
    let window = page.window(slots.len());
    let resources = slots[window]
        .iter()
        .flatten()
        .map(|u| scim::user_resource(u, service.base(), &projection))
        .collect();
    Ok(answer(
        StatusCode::OK,
        &scim::list_response(slots.len(), page.start_index, resources),
    ))
}

/// POST `/.search` at the root: a search across resource types, which this service provider
/// (one resource type) does not offer.
async fn search_everything() -> Response {
    refuse(ScimError::not_implemented(
        "searching across resource types is not supported: POST /Users/.search",
    ))
}

async fn get_user(State(app): State<App>, Path(id): Path<String>, query: QueryParams) -> Answer {
    let (service, store) = store(&app)?;
    let projection = projection(&query)?;
    let user = store.get(&id).await.map_err(|e| store_error(&e))?;
    Ok(resource(&service, &user, StatusCode::OK, &projection))
}

async fn create_user(
    State(app): State<App>,
    query: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let (service, store) = store(&app)?;
    let projection = projection(&query)?;
    let body = json_body(&headers, body).await?;
    let (profile, active) = scim::parse_user(&body)?;
    let user = store
        .create(profile, active.unwrap_or(true))
        .await
        .map_err(|e| {
            audit::scim_change(service.config_name(), "create", "refused", None, e.reason());
            store_error(&e)
        })?;
    let action = if user.active {
        "create"
    } else {
        "create_suspended"
    };
    audit::scim_change(
        service.config_name(),
        action,
        "done",
        Some(&user.id),
        "none",
    );
    Ok(resource(&service, &user, StatusCode::CREATED, &projection))
}

async fn replace_user(
    State(app): State<App>,
    Path(id): Path<String>,
    query: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    rewrite(&app, &id, &query, &headers, body, |body, current| {
        let (profile, active) = scim::parse_user(body)?;
        // An `active` left out of a PUT keeps the user's state: never a silent reactivation.
        Ok((profile, active.unwrap_or(current.active)))
    })
    .await
}

async fn patch_user(
    State(app): State<App>,
    Path(id): Path<String>,
    query: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    rewrite(&app, &id, &query, &headers, body, |body, current| {
        scim::apply_patch(&current.profile, current.active, body)
    })
    .await
}

/// A PUT or PATCH: the user as `change` makes it of the body and the user as read (again after
/// a concurrent write), its audit line, and the answer.
async fn rewrite(
    app: &App,
    id: &str,
    query: &QueryParams,
    headers: &HeaderMap,
    body: Body,
    change: impl Fn(&serde_json::Value, &StoredUser) -> Result<(ScimProfile, bool), ScimError>,
) -> Answer {
    let (service, store) = store(app)?;
    let projection = projection(query)?;
    let body = json_body(headers, body).await?;
    let before = WasActive::default();
    let written = store
        .update(id, |current| {
            before.record(current);
            change(&body, current)
        })
        .await;
    let user = changed(&service, id, &before, written)?;
    Ok(resource(&service, &user, StatusCode::OK, &projection))
}

/// Whether the user was active before a PUT or PATCH (as the write's last read saw it).
#[derive(Default)]
struct WasActive(std::sync::atomic::AtomicU8);

impl WasActive {
    fn record(&self, user: &StoredUser) {
        let value = if user.active { 1 } else { 2 };
        self.0.store(value, std::sync::atomic::Ordering::Relaxed);
    }

    /// What the write did, in the audit's words.
    fn action(&self, after: &StoredUser) -> &'static str {
        match (
            self.0.load(std::sync::atomic::Ordering::Relaxed),
            after.active,
        ) {
            (1, false) => "suspend",
            (2, true) => "reactivate",
            _ => "update",
        }
    }
}

/// The answer to a PUT or PATCH, and its audit line.
fn changed(
    service: &ScimService,
    id: &str,
    before: &WasActive,
    written: Result<Result<StoredUser, ScimError>, ScimStoreError>,
) -> Result<StoredUser, ScimError> {
    let config = service.config_name();
    match written {
        Ok(Ok(user)) => {
            audit::scim_change(config, before.action(&user), "done", Some(id), "none");
            Ok(user)
        }
        Ok(Err(refused)) => {
            let reason = refused.scim_type.map_or("invalid", |t| t.as_str());
            audit::scim_change(config, "update", "refused", Some(id), reason);
            Err(refused)
        }
        Err(e) => {
            audit::scim_change(config, "update", "refused", Some(id), e.reason());
            Err(store_error(&e))
        }
    }
}

async fn delete_user(State(app): State<App>, Path(id): Path<String>) -> Answer {
    let (service, store) = store(&app)?;
    match store.delete(&id).await {
        Ok(()) => {
            audit::scim_change(service.config_name(), "delete", "done", Some(&id), "none");
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            Ok(r)
        }
        Err(e) => {
            audit::scim_change(
                service.config_name(),
                "delete",
                "refused",
                Some(&id),
                e.reason(),
            );
            Err(store_error(&e).into())
        }
    }
}

async fn list_groups(query: QueryParams) -> Answer {
    let page = scim::page(
        query.get("startIndex").as_deref(),
        query.get("count").as_deref(),
    )?;
    Ok(answer(
        StatusCode::OK,
        &scim::list_response(0, page.start_index, Vec::new()),
    ))
}

async fn no_group(Path(id): Path<String>) -> Response {
    refuse(ScimError::not_found(format!(
        "no group {id}: this application does not take group push"
    )))
}

async fn service_provider_config(State(app): State<App>) -> Answer {
    let service = service(&app)?;
    Ok(answer(
        StatusCode::OK,
        &scim::service_provider_config(service.base()),
    ))
}

async fn schemas(State(app): State<App>) -> Answer {
    let service = service(&app)?;
    Ok(answer(StatusCode::OK, &scim::schemas(service.base())))
}

async fn schema(State(app): State<App>, Path(id): Path<String>) -> Answer {
    let service = service(&app)?;
    scim::schema(service.base(), &id)
        .map(|s| answer(StatusCode::OK, &s))
        .ok_or_else(|| ScimError::not_found(format!("no schema {id}")).into())
}

async fn resource_types(State(app): State<App>) -> Answer {
    let service = service(&app)?;
    Ok(answer(
        StatusCode::OK,
        &scim::resource_types(service.base()),
    ))
}

async fn resource_type(State(app): State<App>, Path(id): Path<String>) -> Answer {
    let service = service(&app)?;
    scim::resource_type(service.base(), &id)
        .map(|s| answer(StatusCode::OK, &s))
        .ok_or_else(|| ScimError::not_found(format!("no resource type {id}")).into())
}

async fn unknown_path() -> Response {
    refuse(ScimError::not_found(
        "no such SCIM endpoint: this service provider serves /Users, /Groups, \
         /ServiceProviderConfig, /Schemas and /ResourceTypes",
    ))
}

async fn method_not_allowed(method: Method) -> Response {
    refuse(ScimError::new(
        405,
        None,
        format!("{method} is not allowed here"),
    ))
}
