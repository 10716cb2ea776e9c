//! SCIM errors (RFC 7644 §3.12): an HTTP status, an optional `scimType`, and a detail that names
//! what is wrong.

use serde_json::{Value, json};

use super::consts::ERROR_SCHEMA;

/// The `scimType` of a 400 (or 409, 412) answer (RFC 7644 §3.12, table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter syntax is invalid, or it uses an operator or attribute that is not supported.
    InvalidFilter,
    /// The request asks for too much (here: more than [`super::consts::MAX_OPERATIONS`] operations).
    TooMany,
    /// A value is not unique (409).
    Uniqueness,
    /// An attempt to change an attribute that cannot be changed (`id`, `meta`).
    Mutability,
    /// The request body is not a SCIM message of the expected kind.
    InvalidSyntax,
    /// A PATCH path is malformed or names no attribute.
    InvalidPath,
    /// A PATCH operation has nothing to act on.
    NoTarget,
    /// A value is missing, of the wrong type, or out of bounds.
    InvalidValue,
    /// The resource's version did not match (412).
    InvalidVers,
    /// The request cannot be completed because of sensitive information (e.g. in the URI).
    Sensitive,
}

impl ScimType {
    /// The keyword as RFC 7644 spells it (`invalidFilter`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// A SCIM error answer: [`ScimError::body`] is the JSON the endpoint sends with `status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}{}: {detail}", scim_type.map(|t| format!(" {}", t.as_str())).unwrap_or_default())]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// The `scimType`, for the statuses RFC 7644 gives one.
    pub scim_type: Option<ScimType>,
    /// A human-readable detail naming what is wrong.
    pub detail: String,
}

impl ScimError {
    /// An error with the given parts.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// The error response body (RFC 7644 §3.12): `schemas`, `status` (a string, as the RFC's
    /// examples write it), `scimType` when there is one, `detail`.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".to_owned(), Value::from(t.as_str()));
        }
        body
    }

    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidFilter), detail)
    }

    /// 400 `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidPath), detail)
    }

    /// 400 `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidValue), detail)
    }

    /// 400 `invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidSyntax), detail)
    }

    /// 400 `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::NoTarget), detail)
    }

    /// 400 `tooMany`.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::TooMany), detail)
    }

    /// 400 `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::Mutability), detail)
    }

    /// 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// 412 `invalidVers`: an `If-Match` that names another version.
    pub fn invalid_vers(detail: impl Into<String>) -> Self {
        Self::new(412, Some(ScimType::InvalidVers), detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }

    /// 413: the body is larger than the endpoint reads.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }

    /// 500.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }

    /// 501: a SCIM feature the endpoint does not offer (bulk, `/.search`, sorting).
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }

    /// 503: the store cannot be reached now.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail)
    }

    /// The same error with `context` before its detail (`Operations[2]: …`).
    pub(crate) fn within(mut self, context: &str) -> Self {
        self.detail = format!("{context}: {}", self.detail);
        self
    }
}
