//! Paging (RFC 7644 §3.4.2.4) and the ListResponse (§3.4.2).

use std::ops::Range;

use serde_json::{Value, json};

use super::consts::{LIST_RESPONSE, MAX_RESULTS};
use super::error::ScimError;

/// One page of a list: 1-based `start_index`, and at most `count` resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The 1-based index of the first resource.
    pub start_index: usize,
    /// The most resources to return (at most [`MAX_RESULTS`]).
    pub count: usize,
}

/// An integer query parameter: `None` when absent; huge values saturate; anything else
/// `invalidValue` naming the parameter.
fn integer(name: &str, raw: Option<&str>) -> Result<Option<i64>, ScimError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScimError::invalid_value(format!(
            "{name} must be an integer, not {raw:?}"
        )));
    }
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    Ok(Some(if negative { -magnitude } else { magnitude }))
}

/// The page the `startIndex` and `count` query parameters ask for: `startIndex` defaults to 1
/// and values below 1 are 1; `count` defaults to [`MAX_RESULTS`], a negative count is 0, and a
/// larger one is [`MAX_RESULTS`] (never an error). Not an integer: 400 `invalidValue`.
pub fn page(start_index: Option<&str>, count: Option<&str>) -> Result<Page, ScimError> {
    let start = integer("startIndex", start_index)?.unwrap_or(1).max(1);
    let count = integer("count", count)?
        .unwrap_or(MAX_RESULTS as i64)
        .clamp(0, MAX_RESULTS as i64);
    Ok(Page {
        start_index: usize::try_from(start).unwrap_or(usize::MAX),
        count: usize::try_from(count).unwrap_or(0),
    })
}

impl Page {
    /// The indexes of this page in a list of `total` resources (empty past its end).
    pub fn window(&self, total: usize) -> Range<usize> {
        let start = self.start_index.saturating_sub(1).min(total);
        start..start.saturating_add(self.count).min(total)
    }
}

/// A ListResponse: `totalResults` (all matches), `startIndex`, `itemsPerPage` (the resources
/// on this page) and `Resources`.
pub fn list_response(total: usize, start_index: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
