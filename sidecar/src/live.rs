//! Live connections of sessions: open WebSocket (upgrade) tunnels and streamed responses are
//! cut when their session ends, for whatever reason (SsoUser deleted or suspended,
//! `sessionsNotBefore`, logout, back-channel logout, expiry).
//!
//! The gate registers a connection under its session id and gets a [`CloseSignal`] that fires
//! when the session ends. The sweep ([`crate::sweep`]) re-checks every registered session; the
//! registry holds only sessions with an open connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gatehouse_proxy::close::CloseSignal;
use tokio::sync::{Notify, watch};

use gatehouse_auth::cookie::Session;

struct Entry {
    session: Arc<Session>,
    ended: watch::Sender<bool>,
    connections: usize,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<HashMap<String, Entry>>,
    wake: Notify,
}

/// The sessions with open connections on this replica.
#[derive(Clone, Default)]
pub struct LiveSessions {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSessions")
            .field("sessions", &self.len())
            .finish()
    }
}

impl LiveSessions {
    /// Registers one connection of `session`; it ends when the returned handle resolves.
    /// Dropping the signal's last clone ends the registration.
    pub fn register(&self, session: &Arc<Session>) -> CloseSignal {
        let mut entries = self.lock();
        let entry = entries.entry(session.sid.clone()).or_insert_with(|| Entry {
            session: session.clone(),
            ended: watch::channel(false).0,
            connections: 0,
        });
        entry.connections += 1;
        let registration = Registration {
            live: self.clone(),
            sid: session.sid.clone(),
        };
        CloseSignal::new(entry.ended.subscribe(), Some(Arc::new(registration)))
    }

    /// Ends the connections of session `sid` now (logout on this replica).
    pub fn end(&self, sid: &str) {
        if let Some(entry) = self.lock().remove(sid) {
            entry.ended.send_replace(true);
        }
    }

    /// Asks the sweep ([`crate::sweep`]) to re-check every live session now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Resolves at the next [`LiveSessions::wake`].
    pub async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Ends the connections of every session `still_valid` refuses.
    pub fn sweep(&self, still_valid: impl Fn(&Session) -> bool) {
        let mut entries = self.lock();
        entries.retain(|_, entry| {
            let keep = still_valid(&entry.session);
            if !keep {
                entry.ended.send_replace(true);
            }
            keep
        });
    }

    /// Number of sessions with open connections.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session has an open connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One connection's registration; the entry goes with the session's last connection.
struct Registration {
    live: LiveSessions,
    sid: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut entries = self.live.lock();
        if let Some(entry) = entries.get_mut(&self.sid) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                entries.remove(&self.sid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use gatehouse_auth::claims::Role;
    use gatehouse_proxy::close::CutOnClose;
    use hyper::body::Frame;
    use std::time::Duration;

    fn session(sid: &str) -> Arc<Session> {
        Arc::new(Session {
            sid: sid.into(),
            user: "okta-1".into(),
            subject: "00u1".into(),
            provider: "okta".into(),
            email: None,
            name: None,
            username: None,
            role: Role::Member,
            issued_at: 0,
            expires_at: i64::MAX,
            user_uid: None,
            idp_sid: None,
            validated_at: None,
            groups: Vec::new(),
            claims: None,
            facts: None,
            groups_unknown: false,
        })
    }

    #[tokio::test]
    async fn a_refused_session_ends_all_its_connections_and_only_its_own() {
        let live = LiveSessions::default();
        let a1 = live.register(&session("a"));
        let a2 = live.register(&session("a"));
        let b = live.register(&session("b"));
        assert_eq!(live.len(), 2);
        live.sweep(|s| s.sid != "a");
        tokio::time::timeout(Duration::from_secs(1), a1.clone().closed())
            .await
            .expect("first connection of a ended");
        tokio::time::timeout(Duration::from_secs(1), a2.closed())
            .await
            .expect("second connection of a ended");
        assert!(!b.has_fired());
        assert_eq!(live.len(), 1);
    }

    #[tokio::test]
    async fn the_registry_forgets_a_session_with_its_last_connection() {
        let live = LiveSessions::default();
        let one = live.register(&session("a"));
        let two = live.register(&session("a"));
        drop(one);
        assert_eq!(live.len(), 1);
        drop(two);
        assert!(live.is_empty());
    }

    #[tokio::test]
    async fn logout_ends_the_connections_at_once() {
        let live = LiveSessions::default();
        let c = live.register(&session("a"));
        live.end("a");
        assert!(c.has_fired());
    }

    #[tokio::test]
    async fn a_streamed_body_fails_once_its_session_ends() {
        use http_body_util::BodyExt as _;
        let live = LiveSessions::default();
        let end = live.register(&session("a"));
        // A body that never yields: only the session's end can finish it.
        let (_tx, body) = {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
            (tx, http_body_util::StreamBody::new(tokio_stream_of(rx)))
        };
        let mut cut = CutOnClose::new(body, end);
        let pending = tokio::time::timeout(Duration::from_millis(50), cut.frame()).await;
        assert!(pending.is_err(), "the body waits while the session lives");
        live.sweep(|_| false);
        let frame = tokio::time::timeout(Duration::from_secs(1), cut.frame())
            .await
            .expect("the body finishes once the session ended");
        assert!(
            matches!(frame, Some(Err(_))),
            "it fails, so the connection closes"
        );
    }

    fn tokio_stream_of<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Unpin {
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
