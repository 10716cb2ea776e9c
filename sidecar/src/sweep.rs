//! The sweep of live connections: WebSocket tunnels and streamed responses are cut when their
//! session ends, for whatever reason (SsoUser deleted or suspended, `sessionsNotBefore`, logout,
//! back-channel logout, expiry, re-validation refused).
//!
//! [`LiveSweep::run`] re-checks every session with an open connection ([`LiveSessions`])
//! whenever the user directory's watch delivers a change or a logout happens on this replica,
//! and at least every [`SWEEP_INTERVAL`] (expiry, a stale watch): a session that no longer
//! passes ([`SessionJudge::recheck`]) ends all its connections, and one due for re-validation
//! at its IdP starts it ([`Flights::revalidate_connection`]), since a connection may outlive
//! every other request of its session.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_auth::token::now_unix;
use tokio::sync::Notify;

use crate::judge::SessionJudge;
use crate::live::LiveSessions;
use crate::revalidation::Flights;

/// Longest time between two re-checks of the live sessions when nothing signals a change.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// What the sweep needs: the registry, the judge, the flights, and the directory's change signal.
#[derive(Debug)]
pub struct LiveSweep {
    /// Sessions with open connections.
    pub live: LiveSessions,
    /// The one judgement of a session.
    pub judge: Arc<SessionJudge>,
    /// Re-validation of a connection's session.
    pub flights: Arc<Flights>,
    /// Signalled when the directory's view of users changes (`None`: it never does).
    pub changes: Option<Arc<Notify>>,
}

impl LiveSweep {
    /// Sweeps until the process ends.
    pub async fn run(self) {
        loop {
            let directory_changed = async {
                match &self.changes {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = directory_changed => {}
                () = self.live.woken() => {}
                () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
            if self.live.is_empty() {
                continue;
            }
            let now = now_unix();
            self.live.sweep(|session| {
                // No request may come while a connection is open: it re-validates on its own.
                let verdict = self
                    .judge
                    .recheck(session, now)
                    .and_then(|()| self.flights.revalidate_connection(session, now));
                if let Err(reason) = verdict {
                    tracing::info!(user = %session.user, reason, "session ended: closing its open connections");
                }
                verdict.is_ok()
            });
        }
    }
}
