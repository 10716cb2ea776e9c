//! The re-validation policy: when a session is fresh, due for re-validation at its IdP, or past
//! the grace and refused.
//!
//! A session that can be re-validated (its IdP gave a refresh token at sign-in) records when the
//! IdP last vouched for it ([`Session::validated_at`]). It is *fresh* for the interval after
//! that, then *due*: still served, while a refresh is attempted. While the IdP cannot be reached
//! it stays due for the grace; after that it is *past grace* and refused (fail closed) until a
//! refresh succeeds. Sessions without `validated_at` are never due: nothing could re-validate
//! them. The flights that ask the IdP live in the sidecar.

use std::time::Duration;

use crate::cookie::Session;

/// The re-validation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revalidation {
    /// How long a validation holds; `None`: re-validation is off.
    pub interval: Option<Duration>,
    /// How long a due session is kept without a successful validation.
    pub grace: Duration,
}

/// Where a session stands towards re-validation at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Validated recently enough, or never re-validated.
    Fresh,
    /// Served, and a refresh should be attempted.
    Due,
    /// Due for longer than the grace: refused.
    PastGrace,
}

impl Revalidation {
    /// Where `session` stands at `now` (Unix seconds).
    pub fn standing(&self, session: &Session, now: i64) -> Standing {
        let (Some(interval), Some(validated_at)) = (self.interval, session.validated_at) else {
            return Standing::Fresh;
        };
        let due_at = validated_at.saturating_add(seconds(interval));
        if now < due_at {
            Standing::Fresh
        } else if now < due_at.saturating_add(seconds(self.grace)) {
            Standing::Due
        } else {
            Standing::PastGrace
        }
    }
}

/// Whole seconds of `duration`, saturating.
fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
