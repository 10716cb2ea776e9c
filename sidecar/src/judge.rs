//! The one judgement of a session, for every request and every open connection: unexpired, not
//! ended on this replica, from a provider still configured, not past its re-validation grace,
//! and accepted by the user directory (reading the API only on a watch-cache miss for a session
//! issued moments ago).

use std::sync::Arc;

use gatehouse_auth::cookie::Session;
use gatehouse_auth::revalidation::Standing;
use gatehouse_directory::UserDirectory;
use gatehouse_directory::kubernetes::SessionRefusal;
use http::HeaderMap;

use crate::metrics::Metrics;
use crate::providers::Providers;
use crate::revalidation::Revalidator;
use crate::sessions::Sessions;

/// Judges sessions: what the gate, the session extractor and the live-connection sweep ask.
#[derive(Debug, Clone)]
pub struct SessionJudge {
    /// Reading the cookie; sessions ended on this replica.
    pub sessions: Arc<Sessions>,
    /// Which providers are still configured.
    pub providers: Arc<Providers>,
    /// Re-validation standing (renewals this replica holds count).
    pub revalidation: Arc<Revalidator>,
    /// Revocation: the SsoUser watch cache, and reads on its misses.
    pub directory: Arc<UserDirectory>,
    /// Where refusals by the directory and API reads are counted.
    pub metrics: Arc<Metrics>,
}

impl SessionJudge {
    /// The valid session of a request, if any: unsealed, unexpired, not logged out, not revoked,
    /// from a provider still configured. Reads the API only on a watch-cache miss for a session
    /// issued moments ago ([`SessionJudge::session_from_cache`], [`SessionJudge::confirm_session`]).
    pub async fn session(&self, headers: &HeaderMap, now: i64) -> Option<Arc<Session>> {
        match self.session_from_cache(headers, now) {
            SessionLookup::Valid(session) => Some(session),
            SessionLookup::None => None,
            SessionLookup::Unconfirmed(session) => self.confirm_session(session).await,
        }
    }

    /// [`SessionJudge::session`] as far as it goes without IO: the cookie and the watch cache.
    pub fn session_from_cache(&self, headers: &HeaderMap, now: i64) -> SessionLookup {
        let Some(session) = self.sessions.read(headers, now) else {
            return SessionLookup::None;
        };
        match self.judge(&session, now) {
            Judgement::Valid => SessionLookup::Valid(session),
            Judgement::Unconfirmed(refusal)
                if self.directory.may_confirm(&session, refusal, now) =>
            {
                SessionLookup::Unconfirmed(session)
            }
            Judgement::Unconfirmed(refusal) => {
                self.refused(&session, Refusal::Directory(refusal));
                SessionLookup::None
            }
            Judgement::Overdue => {
                self.refused(&session, Refusal::RevalidationOverdue);
                SessionLookup::None
            }
            Judgement::Refused(reason) => {
                tracing::debug!(user = %session.user, reason, "session refused");
                SessionLookup::None
            }
        }
    }

    /// The one judgement of a session at `now`, for requests ([`SessionJudge::session_from_cache`]) and
    /// for open connections ([`SessionJudge::recheck`]): unexpired, not ended on this replica, from a
    /// provider still configured, not gone past its re-validation grace
    /// ([`crate::revalidation`]), and accepted by the user directory.
    pub fn judge(&self, session: &Session, now: i64) -> Judgement {
        if session.expires_at <= now {
            return Judgement::Refused("session_expired");
        }
        if self.sessions.is_ended(session, now) {
            return Judgement::Refused("session_ended");
        }
        if self.providers.identity(&session.provider).is_none() {
            return Judgement::Refused("provider_removed");
        }
        if self.revalidation.standing(session, now) == Standing::PastGrace {
            return Judgement::Overdue;
        }
        match self.directory.check(session) {
            Ok(()) => Judgement::Valid,
            Err(refusal) => Judgement::Unconfirmed(refusal),
        }
    }

    /// Settles a [`SessionLookup::Unconfirmed`] session by reading its SsoUser from the API.
    pub async fn confirm_session(&self, session: Arc<Session>) -> Option<Arc<Session>> {
        let confirmation = self.directory.confirm(&session).await;
        if let Some(read) = confirmation.read {
            self.metrics.user_read(read.label());
        }
        match confirmation.verdict {
            Ok(()) => Some(session),
            Err(refusal) => {
                self.refused(&session, Refusal::Directory(refusal));
                None
            }
        }
    }

    /// Counts a request's refused session in `gatehouse_sessions_refused_total{reason}`, and
    /// logs it: a re-validation refusal as an audit line (`event=revalidation
    /// outcome=refused`), a directory refusal at debug level (the SsoUser's change was the
    /// event worth a line, and a refused session may send many requests).
    pub fn refused(&self, session: &Session, refusal: Refusal) {
        self.metrics.session_refused(refusal);
        match refusal {
            Refusal::Directory(_) => {
                tracing::debug!(user = %session.user, reason = refusal.label(), "session refused by the user directory");
            }
            Refusal::RevalidationUnvouched | Refusal::RevalidationOverdue => {
                crate::audit::revalidation_refused(
                    &session.provider,
                    refusal.label(),
                    &session.user,
                    session.role.as_str(),
                );
            }
        }
    }
}

/// A request's session as far as the cookie and the watch cache tell.
#[derive(Debug)]
pub enum SessionLookup {
    /// A valid session.
    Valid(Arc<Session>),
    /// No valid session (none sent, expired, logged out, or refused by the user directory).
    None,
    /// A session the watch cache does not hold the user of, issued moments ago: another replica
    /// may have just created the user. [`SessionJudge::confirm_session`] reads it from the API.
    Unconfirmed(Arc<Session>),
}

impl SessionJudge {
    /// Whether a session that was valid still is at `now` ([`SessionJudge::judge`]; a directory refusal
    /// counts, an open connection is not worth a read of the API). The reason when not.
    pub fn recheck(&self, session: &Session, now: i64) -> Result<(), &'static str> {
        match self.judge(session, now) {
            Judgement::Valid => Ok(()),
            Judgement::Unconfirmed(refusal) => Err(refusal.reason()),
            Judgement::Overdue => Err(Refusal::RevalidationOverdue.label()),
            Judgement::Refused(reason) => Err(reason),
        }
    }
}

/// [`SessionJudge::judge`]'s verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The session may continue.
    Valid,
    /// Refused by the user directory's cache; a request may still read the API for a session
    /// issued moments ago ([`UserDirectory::may_confirm`]).
    Unconfirmed(SessionRefusal),
    /// Past its re-validation grace ([`crate::revalidation`]): refused, and counted
    /// ([`Refusal::RevalidationOverdue`]).
    Overdue,
    /// Refused, with the reason: expired, ended on this replica, or from a provider no longer
    /// configured (not counted: none of these is news to the operator).
    Refused(&'static str),
}

pub use crate::metrics::{OVERDUE, Refusal};
