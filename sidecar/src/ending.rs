//! Ending a session as a logout does: at once on this replica (its requests, its open
//! connections, its cached identity headers), and on every other replica through its SsoUser.
//! Logout, back-channel logout and re-validation all end sessions this one way.

use std::sync::Arc;

use gatehouse_auth::cookie::Session;
use gatehouse_auth::identity::IdentityIssuer;
use gatehouse_directory::UserDirectory;

use crate::live::LiveSessions;
use crate::sessions::Sessions;

/// Ends sessions: a narrow handle to what ending one touches.
#[derive(Debug, Clone)]
pub struct SessionEnder {
    /// This replica's logged-out sessions.
    pub sessions: Arc<Sessions>,
    /// Open connections, cut when their session ends.
    pub live: LiveSessions,
    /// Identity headers cached per session.
    pub identity: Arc<IdentityIssuer>,
    /// The SsoUsers, where the end is recorded for the other replicas.
    pub directory: Arc<UserDirectory>,
}

impl SessionEnder {
    /// Ends `session` as a logout does: at once on this replica (its requests and open
    /// connections), and on the others through its SsoUser.
    pub async fn end(&self, session: &Session, now: i64) {
        self.sessions
            .logged_out
            .insert(&session.sid, session.expires_at, now);
        self.live.end(&session.sid);
        self.identity.forget(&session.sid);
        if session.user_uid.is_none() {
            return;
        }
        let until =
            jiff::Timestamp::from_second(session.expires_at).unwrap_or(jiff::Timestamp::MAX);
        match self
            .directory
            .end_session(&session.user, &session.sid, until)
            .await
        {
            None | Some(Ok(_)) => {}
            Some(Err(e)) => tracing::warn!(
                user = %session.user,
                error = %e,
                "ended session not recorded on the SsoUser: other replicas accept it until it expires"
            ),
        }
    }
}
