//! Live connections of sessions: open WebSocket (upgrade) tunnels and streamed responses are
//! cut when their session ends, for whatever reason (SsoUser deleted or suspended,
//! `sessionsNotBefore`, logout, back-channel logout, expiry).
//!
//! The gate registers a connection under its session id and gets a [`SessionEnd`] that resolves
//! when the session ends. [`run`] re-checks every registered session whenever the user
//! directory's watch delivers a change or a logout happens on this replica, and at least every
//! [`SWEEP_INTERVAL`] (expiry, a stale watch): a session that no longer passes ends all its
//! connections, and one due for re-validation at its IdP starts it ([`crate::revalidation`]),
//! since a connection may outlive every other request of its session. The registry holds only
//! sessions with an open connection.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{Notify, watch};

use crate::session::Session;
use crate::state::App;
use crate::token::now_unix;

/// Longest time between two re-checks of the live sessions when nothing signals a change.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

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
    pub fn register(&self, session: &Arc<Session>) -> SessionEnd {
        let mut entries = self.lock();
        let entry = entries.entry(session.sid.clone()).or_insert_with(|| Entry {
            session: session.clone(),
            ended: watch::channel(false).0,
            connections: 0,
        });
        entry.connections += 1;
        SessionEnd {
            ended: entry.ended.subscribe(),
            _registration: Arc::new(Registration {
                live: self.clone(),
                sid: session.sid.clone(),
            }),
        }
    }

    /// Ends the connections of session `sid` now (logout on this replica).
    pub fn end(&self, sid: &str) {
        if let Some(entry) = self.lock().remove(sid) {
            entry.ended.send_replace(true);
        }
    }

    /// Asks [`run`] to re-check every live session now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
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

/// Resolves when the session of a connection ends. Dropping it ends the registration.
#[derive(Clone)]
pub struct SessionEnd {
    ended: watch::Receiver<bool>,
    _registration: Arc<Registration>,
}

impl std::fmt::Debug for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEnd")
            .field("ended", &*self.ended.borrow())
            .finish()
    }
}

impl SessionEnd {
    /// Waits until the session ends (forever, if it never does while the connection lasts).
    pub async fn ended(mut self) {
        if self.ended.wait_for(|ended| *ended).await.is_err() {
            // The registry dropped the sender without ending the session: only possible once
            // the registry itself is gone (shutdown); the connection lives as long as it would.
            std::future::pending::<()>().await;
        }
    }

    /// Whether the session has ended.
    pub fn has_ended(&self) -> bool {
        *self.ended.borrow()
    }
}

/// Why a streamed response was cut.
#[derive(Debug, thiserror::Error)]
#[error("the session ended while the response was streaming")]
pub struct SessionEnded;

/// A response body that fails (so the server closes the connection) once its session ends.
pub struct CutOnSessionEnd<B> {
    inner: B,
    ended: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl<B> std::fmt::Debug for CutOnSessionEnd<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CutOnSessionEnd").finish_non_exhaustive()
    }
}

impl<B> CutOnSessionEnd<B> {
    /// `inner`, cut when `end` resolves.
    pub fn new(inner: B, end: SessionEnd) -> Self {
        Self {
            inner,
            ended: Box::pin(end.ended()),
        }
    }
}

impl<B> HttpBody for CutOnSessionEnd<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(SessionEnded))));
        }
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Re-checks the live sessions of `app` until the process ends: on every change of the user
/// directory, every logout on this replica, and every [`SWEEP_INTERVAL`].
pub async fn run(app: Arc<App>) {
    let changes = app.directory.changes();
    loop {
        let directory_changed = async {
            match &changes {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = directory_changed => {}
            () = app.live.inner.wake.notified() => {}
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        if app.live.is_empty() {
            continue;
        }
        let now = now_unix();
        app.live.sweep(|session| {
            let verdict = app.recheck(session, now);
            match verdict {
                // No request may come while a connection is open: it re-validates on its own.
                Ok(()) => app.revalidate_connection(session, now),
                Err(reason) => {
                    tracing::info!(user = %session.user, reason, "session ended: closing its open connections");
                }
            }
            verdict.is_ok()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Role;

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
        tokio::time::timeout(Duration::from_secs(1), a1.clone().ended())
            .await
            .expect("first connection of a ended");
        tokio::time::timeout(Duration::from_secs(1), a2.ended())
            .await
            .expect("second connection of a ended");
        assert!(!b.has_ended());
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
        assert!(c.has_ended());
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
        let mut cut = CutOnSessionEnd::new(body, end);
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
