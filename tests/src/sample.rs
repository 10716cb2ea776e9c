//! What the sample app reports, shared by the app binary and the tests that read it.

use serde::{Deserialize, Serialize};

/// Marker header the sample app sets on every answer, so a test (or the benchmark) knows a
/// response really came from the app and not from the sidecar.
pub const MARKER_HEADER: &str = "x-sample-app";
/// Marker value on `/static`.
pub const MARKER_VALUE: &str = "static";
/// Body of `/static`.
pub const STATIC_BODY: &str = "gatehouse sample app: static body\n";

/// Identity headers of the brief, as the app receives them.
pub const IDENTITY_HEADERS: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-org",
    "x-forwarded-provider",
    "x-gatehouse-identity",
];

/// One request as the sample app saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query exactly as received.
    pub path: String,
    /// Every header, in order, duplicates kept; names lowercase.
    pub headers: Vec<(String, String)>,
    pub body_bytes: usize,
}

impl SeenRequest {
    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}
