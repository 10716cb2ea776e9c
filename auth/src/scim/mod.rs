//! SCIM 2.0 (RFC 7643, RFC 7644): the protocol layer of the provisioning endpoint the sidecar
//! serves at `<publicUrl>/api/auth/scim/v2` for Okta and Entra ID. Pure: plain values in
//! (request bodies, query parameters, stored profiles), verdicts and JSON out. The sidecar
//! authenticates the request, reads and writes the SsoUsers, and sends what this module builds.
//!
//! | item | job |
//! | --- | --- |
//! | [`parse_user`] | a POST or PUT body → profile and `active` |
//! | [`apply_patch`] | a PATCH body applied to a profile and `active` |
//! | [`user_resource`], [`Projection`] | the User resource, trimmed by `attributes`/`excludedAttributes` |
//! | [`parse_filter`], [`Filter`] | `GET /Users?filter=…`: `eq` and `and` on the attributes IdPs query |
//! | [`page`], [`Page`], [`list_response`] | paging and the ListResponse |
//! | [`service_provider_config`], [`schemas`], [`schema`], [`resource_types`], [`resource_type`] | discovery |
//! | [`ScimError`] | error answers (RFC 7644 §3.12) |
//!
//! What is served is what [`gatehouse_crds::ScimProfile`] keeps, plus `active` (the SsoUser's
//! `!suspended`): the published `/Schemas` list exactly those attributes, with the CRD's bounds,
//! so every attribute published round-trips through POST, PUT, PATCH and GET. Attributes IdPs
//! send that are not kept (`password`, `groups`, `roles`, …) are dropped without an error.
//!
//! Filters and PATCH paths are parsed by a small recursive-descent parser of this module
//! (`path`): it covers what the IdPs send, including Entra ID's `emails[type eq "work"].value eq
//! "…"`, which RFC 7644's filter grammar (and the `scim_v2` crate) do not have.

mod consts;
mod error;
mod filter;
mod list;
mod patch;
mod path;
mod resource;
mod schema;
#[cfg(test)]
mod tests;

pub use consts::{
    ENTERPRISE_SCHEMA, ERROR_SCHEMA, LIST_RESPONSE, MAX_FILTER_LEN, MAX_OPERATIONS, MAX_RESULTS,
    PATCH_OP, USER_SCHEMA,
};
pub use error::{ScimError, ScimType};
pub use filter::{Filter, parse_filter};
pub use list::{Page, list_response, page};
pub use patch::apply_patch;
pub use resource::{Meta, Projection, ScimUser, parse_user, user_resource};
pub use schema::{resource_type, resource_types, schema, schemas, service_provider_config};
