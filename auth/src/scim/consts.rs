//! The URNs and bounds of the SCIM layer, shared by its modules.

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
