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

mod error;
mod filter;
mod list;
mod patch;
mod path;
mod resource;
mod schema;
#[cfg(test)]
mod tests;

pub use error::{ScimError, ScimType};
pub use filter::{Filter, parse_filter};
pub use list::{Page, list_response, page};
pub use patch::apply_patch;
pub use resource::{Meta, Projection, ScimUser, parse_user, user_resource};
pub use schema::{resource_type, resource_types, schema, schemas, service_provider_config};

/// The core User schema (RFC 7643 §4.1).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// A list answer (RFC 7644 §3.4.2).
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// A PATCH request (RFC 7644 §3.5.2).
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// An error answer (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Most resources on one page (`filter.maxResults` in the ServiceProviderConfig); a larger
/// `count` is cut to it.
pub const MAX_RESULTS: usize = 200;
/// Longest `filter` (and PATCH path, and attribute list) read, in bytes; a longer one is 400
/// `invalidFilter` (`invalidPath`, `invalidValue`).
pub const MAX_FILTER_LEN: usize = 1024;
/// Most operations in one PATCH; more is 400 `tooMany`.
pub const MAX_OPERATIONS: usize = 64;
