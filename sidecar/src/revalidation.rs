//! When an OIDC session is due for re-validation at its IdP, and when it has gone too long
//! without one.
//!
//! A session that can be re-validated (its IdP gave a refresh token at sign-in) records when the
//! IdP last vouched for it ([`Session::validated_at`]). It is *fresh* for
//! `GATEHOUSE_REVALIDATE_INTERVAL` after that, then *due*: still served, while a refresh is
//! attempted. While the IdP cannot be reached it stays due for `GATEHOUSE_REVALIDATE_GRACE`;
//! after that it is *past grace* and refused (fail closed) until a refresh succeeds.
//!
//! Sessions without `validated_at` (SAML, no refresh token, or signed in while re-validation was
//! off) are never due: nothing could re-validate them.

use std::time::Duration;

use crate::config::Config;
use crate::session::Session;

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
    /// The settings of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            interval: config.revalidate_interval,
            grace: config.revalidate_grace,
        }
    }

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

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(validated_at: Option<i64>) -> Session {
        Session {
            sid: "s".into(),
            user: "u".into(),
            subject: "sub".into(),
            provider: "oidc".into(),
            email: None,
            name: None,
            username: None,
            role: crate::claims::Role::Member,
            issued_at: 0,
            expires_at: 1_000_000,
            user_uid: None,
            idp_sid: None,
            validated_at,
        }
    }

    const EVERY_15M: Revalidation = Revalidation {
        interval: Some(Duration::from_secs(900)),
        grace: Duration::from_secs(3600),
    };

    #[test]
    fn a_session_is_fresh_then_due_then_past_grace() {
        let s = session(Some(1000));
        assert_eq!(EVERY_15M.standing(&s, 1000), Standing::Fresh);
        assert_eq!(EVERY_15M.standing(&s, 1899), Standing::Fresh);
        assert_eq!(EVERY_15M.standing(&s, 1900), Standing::Due);
        assert_eq!(EVERY_15M.standing(&s, 1900 + 3599), Standing::Due);
        assert_eq!(EVERY_15M.standing(&s, 1900 + 3600), Standing::PastGrace);
    }

    #[test]
    fn sessions_nothing_can_revalidate_and_revalidation_off_are_always_fresh() {
        assert_eq!(
            EVERY_15M.standing(&session(None), i64::MAX),
            Standing::Fresh
        );
        let off = Revalidation {
            interval: None,
            ..EVERY_15M
        };
        assert_eq!(off.standing(&session(Some(0)), i64::MAX), Standing::Fresh);
    }

    #[test]
    fn far_future_values_do_not_overflow() {
        let s = session(Some(i64::MAX - 10));
        assert_eq!(EVERY_15M.standing(&s, i64::MAX - 10), Standing::Fresh);
        assert_eq!(EVERY_15M.standing(&s, i64::MAX), Standing::PastGrace);
    }
}
