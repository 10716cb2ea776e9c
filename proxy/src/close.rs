//! A generic close signal for long-lived exchanges: a WebSocket tunnel or a streamed response is
//! cut when its signal fires. Whoever fires it (the sidecar, when a session ends) is not known
//! here: the signal is a `watch` flag, plus an optional guard the exchange keeps alive while it
//! lasts (the sidecar's registration of the open connection).

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::watch;

/// Resolves when the exchange must close. Cloning it shares the guard.
#[derive(Clone)]
pub struct CloseSignal {
    closed: watch::Receiver<bool>,
    _guard: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for CloseSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloseSignal")
            .field("closed", &*self.closed.borrow())
            .finish_non_exhaustive()
    }
}

impl CloseSignal {
    /// Fires once `closed` holds `true`; `guard` is dropped with the last clone of the signal.
    pub fn new(closed: watch::Receiver<bool>, guard: Option<Arc<dyn Any + Send + Sync>>) -> Self {
        Self {
            closed,
            _guard: guard,
        }
    }

    /// Waits until the signal fires (forever, if it never does while the exchange lasts).
    pub async fn closed(mut self) {
        if self.closed.wait_for(|closed| *closed).await.is_err() {
            // The sender is gone without firing: only at shutdown; the exchange lives as long as
            // it would.
            std::future::pending::<()>().await;
        }
    }

    /// Whether the signal has fired.
    pub fn has_fired(&self) -> bool {
        *self.closed.borrow()
    }
}

/// Why a streamed response was cut.
#[derive(Debug, thiserror::Error)]
#[error("the response was cut while streaming: its close signal fired")]
pub struct Cut;

/// A response body that fails (so the server closes the connection) once its signal fires.
pub struct CutOnClose<B> {
    inner: B,
    closed: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl<B> std::fmt::Debug for CutOnClose<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CutOnClose").finish_non_exhaustive()
    }
}

impl<B> CutOnClose<B> {
    /// `inner`, cut when `signal` fires.
    pub fn new(inner: B, signal: CloseSignal) -> Self {
        Self {
            inner,
            closed: Box::pin(signal.closed()),
        }
    }
}

impl<B> HttpBody for CutOnClose<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum_core::BoxError>,
{
    type Data = Bytes;
    type Error = axum_core::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.closed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(Cut))));
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
