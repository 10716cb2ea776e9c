//! Listeners: accept loops with the HTTP limits of the security model, and graceful shutdown.
//!
//! - HTTP/1.1: headers must arrive within [`HEADER_READ_TIMEOUT`] (slowloris), which also closes
//!   idle keep-alive connections; the request head may use at most [`MAX_HEAD_BYTES`] (431 above)
//!   and [`MAX_HEADERS`] fields.
//! - HTTP/2 (prior knowledge): header list ≤ [`MAX_HEAD_BYTES`], ≤ 250 concurrent streams, pings
//!   every 30 s close dead peers.
//! - A client that stops reading (slow read) is disconnected once a write has waited the send
//!   timeout (`GATEHOUSE_SEND_TIMEOUT`), so it cannot hold a connection to the app open by never
//!   taking the response; see [`SendTimeout`].
//! - At most [`MAX_CONNECTIONS`] connections at once; beyond that new ones are closed at accept.
//! - Shutdown: stop accepting, let in-flight requests finish for up to [`SHUTDOWN_GRACE`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_core::body::Body;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Sleep;

/// Time allowed for a request head, counted from when the connection is ready for the next request.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(65);
/// Largest request head.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 128;
/// Most concurrent connections per listener.
pub const MAX_CONNECTIONS: usize = 10_000;
/// How long in-flight requests may finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    // A closed channel also means stop.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        // One buffer and a plain `send` per response instead of a `writev` of head and body
        // pieces: fewer instructions for the small responses that dominate; larger bodies are
        // copied once into a buffer bounded by `max_buf_size`.
        .writev(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_concurrent_streams(250)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// A connection whose writes may wait at most `limit` for the peer to take data: a write still
/// blocked after that fails with `TimedOut`, which ends the connection. The timer is armed only
/// while a write waits, so a client that reads costs nothing extra.
#[derive(Debug)]
pub struct SendTimeout<T> {
    io: T,
    limit: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<T> SendTimeout<T> {
    /// Wraps `io`.
    pub fn new(io: T, limit: Duration) -> Self {
        Self {
            io,
            limit,
            waiting: None,
        }
    }

    /// What a write that returned `poll` becomes: ready resets the timer; pending arms it, and
    /// fails once it has run out.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.waiting = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

/// Serves `listener` with `handler(request, peer address)` until `shutdown` turns true; writes to
/// a client may wait at most `send_timeout` (see [`SendTimeout`]).
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    send_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, HeaderValue) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let builder = builder();
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop_requested(&mut shutdown) => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("connection limit reached; closing a new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let peer = HeaderValue::from_str(&peer.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let response = handler(req, peer.clone());
            async move { Ok::<_, Infallible>(response.await) }
        });
        let conn = builder
            .serve_connection_with_upgrades(
                TokioIo::new(SendTimeout::new(stream, send_timeout)),
                service,
            )
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
}
