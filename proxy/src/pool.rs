//! Keep-alive HTTP/1.1 connections to the one upstream.
//!
//! A connection returns to the pool when its response body has been read to the end; a response
//! abandoned half-way (client gone) or failed closes its connection instead. The most recently used
//! connection is reused first; one idle longer than [`PoolSettings::idle_timeout`] is closed. A
//! request that a pooled connection turned out unable to take (closed by the app before the request
//! went out) is sent again, once, on a new connection; a request that was sent, even in part, is
//! never sent twice. No hashing, no per-request bookkeeping beyond one mutex push and pop.
//!
//! Each connection is driven by the request using it, inside that request's task: the request's
//! future writes the request and reads the response head, and the response body reads the rest.
//! No task per connection, no hand-off between tasks per request. A pooled connection is not
//! polled while it waits; an app that closed it is noticed when the next request tries it (and
//! that request is then sent again on a new connection, as above). Only an accepted `Upgrade`
//! hands its connection to a task of its own, which completes the switch.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum_core::body::Body;
use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response, StatusCode};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::TrySendError;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::error::ProxyError;

/// How the pool keeps connections.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Idle connections kept for reuse.
    pub max_idle: usize,
    /// An idle connection older than this is closed instead of reused.
    pub idle_timeout: Duration,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_idle: 256,
            idle_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Polls of a pooled connection allowed for it to become ready for the next request; a finished
/// exchange needs one. One that needs more is waiting for the app, and is closed instead.
const READY_POLLS: usize = 3;

/// hyper's state machine for one connection (with upgrades): polled to make the exchange
/// progress. (hyper does not name its type.)
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One connection to the app: the handle requests are sent with, and the state machine that
/// writes and reads them.
struct Conn {
    sender: SendRequest<Body>,
    /// `None` once the connection has ended: dropping hyper's state answers a request still
    /// queued on it (with the request, which was not sent).
    driver: Option<Driver>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// Polls the connection (reads and writes what it can); `true` once it has ended (closed by
    /// either side, failed, or upgraded).
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(driver) = self.driver.as_mut() else {
            return true;
        };
        match driver.as_mut().poll(cx) {
            Poll::Pending => return false,
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        }
        self.driver = None;
        true
    }

    /// Whether the connection can take a request now, polling it up to [`READY_POLLS`] times.
    fn poll_usable(&mut self, cx: &mut Context<'_>) -> bool {
        for _ in 0..READY_POLLS {
            if self.sender.is_ready() {
                return true;
            }
            if self.sender.is_closed() || self.drive(cx) {
                return false;
            }
            if let Poll::Ready(ready) = self.sender.poll_ready(cx) {
                return ready.is_ok();
            }
        }
        false
    }
}

/// A context whose wake-ups go nowhere, for polling a connection outside any task (a body
/// dropped after its end): the next request using the connection polls it with its own.
fn detached() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// The connections to one upstream.
#[derive(Debug)]
pub struct Pool {
    authority: Authority,
    settings: PoolSettings,
    idle: Mutex<Vec<(Instant, Conn)>>,
    resent: AtomicU64,
}

impl Pool {
    /// A pool for the app at `authority`; connects on first use.
    pub fn new(authority: Authority, settings: PoolSettings) -> Self {
        Self {
            authority,
            settings,
            idle: Mutex::new(Vec::new()),
            resent: AtomicU64::new(0),
        }
    }

    /// Connections idle in the pool now.
    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    /// Requests sent again on a new connection because a pooled one could not take them.
    pub fn resent(&self) -> u64 {
        self.resent.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Instant, Conn)>> {
        match self.idle.lock() {
            Ok(i) => i,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.lock();
        while let Some((since, conn)) = idle.pop() {
            if since.elapsed() < self.settings.idle_timeout && !conn.sender.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a connection whose exchange is over back, after polling it once so that it settles
    /// into waiting for the next request.
    fn put_back(&self, mut conn: Conn, cx: &mut Context<'_>) {
        if conn.sender.is_closed() || conn.drive(cx) {
            return;
        }
        let mut idle = self.lock();
        // The bottom of the stack is the longest idle: let it go once stale.
        if idle
            .first()
            .is_some_and(|(since, _)| since.elapsed() >= self.settings.idle_timeout)
        {
            idle.remove(0);
        }
        if idle.len() < self.settings.max_idle {
            idle.push((Instant::now(), conn));
        }
    }

    async fn connect(&self) -> Result<Conn, ProxyError> {
        let stream = tokio::time::timeout(
            self.settings.connect_timeout,
            tokio::net::TcpStream::connect(self.authority.as_str()),
        )
        .await
        .map_err(|_| ProxyError::ConnectTimeout(self.settings.connect_timeout))?
        .map_err(|source| ProxyError::Connect { source })?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            // As on the server side: one flattened buffer per request head.
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(ProxyError::Handshake)?;
        Ok(Conn {
            sender,
            driver: Some(Box::pin(connection.with_upgrades())),
        })
    }

    /// A connection ready for a request: a pooled one if any is usable, else a new one.
    async fn checkout(&self) -> Result<Conn, ProxyError> {
        while let Some(mut conn) = self.take_idle() {
            if conn.sender.is_ready()
                || std::future::poll_fn(|cx| Poll::Ready(conn.poll_usable(cx))).await
            {
                return Ok(conn);
            }
        }
        // Boxed: opening a connection is rare, and its future would otherwise make every
        // request's future several hundred bytes larger.
        Box::pin(self.connect()).await
    }

    /// Sends a request (origin-form URI, headers final) and returns the response, whose body
    /// hands the connection back once read to the end.
    ///
    /// Only the exchange itself is awaited here; the rare paths (a new connection, a resend) are
    /// boxed, so the future every request moves around stays small.
    pub async fn send(self: &Arc<Self>, req: Request<Body>) -> Result<Response<Body>, ProxyError> {
        let mut conn = self.checkout().await?;
        let response = match exchange(&mut conn, req).await {
            Ok(response) => response,
            Err(e) => {
                let (fresh, response) = Box::pin(self.resend(e)).await?;
                conn = fresh;
                response
            }
        };
        Ok(self.pooled(response, conn))
    }

    /// Sends again, on a new connection, a request a pooled connection did not send; a request
    /// that went out (even in part) is not sent twice.
    async fn resend(
        &self,
        mut failed: TrySendError<Request<Body>>,
    ) -> Result<(Conn, Response<Incoming>), ProxyError> {
        let Some(req) = failed.take_message() else {
            return Err(ProxyError::Exchange(failed.into_error()));
        };
        self.resent.fetch_add(1, Ordering::Relaxed);
        let mut conn = self.connect().await?;
        let response = exchange(&mut conn, req)
            .await
            .map_err(|e| ProxyError::Exchange(e.into_error()))?;
        Ok((conn, response))
    }

    /// The app's response, with its connection going back to the pool once the body is read.
    fn pooled(self: &Arc<Self>, response: Response<Incoming>, conn: Conn) -> Response<Body> {
        let (parts, body) = response.into_parts();
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            // The connection now belongs to the upgraded stream: its own task completes the
            // switch (hands the socket to the `OnUpgrade` in the response) and then ends.
            let Conn { sender, driver } = conn;
            if let Some(driver) = driver {
                tokio::spawn(async move {
                    let _sender = sender;
                    if let Err(e) = driver.await {
                        tracing::debug!(error = %e, "upstream upgrade ended with an error");
                    }
                });
            }
            return Response::from_parts(parts, Body::new(body));
        }
        let body = PooledBody {
            inner: body,
            conn: Some(conn),
            pool: self.clone(),
        };
        Response::from_parts(parts, Body::new(body))
    }
}

/// Writes `req` on `conn` and reads the response head, driving the connection in this task.
async fn exchange(
    conn: &mut Conn,
    req: Request<Body>,
) -> Result<Response<Incoming>, TrySendError<Request<Body>>> {
    let mut response = std::pin::pin!(conn.sender.try_send_request(req));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = response.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        // Write what can be written, read what has arrived; then the head may be here. When the
        // connection has ended, hyper has answered the request (with the error, if any) by now.
        conn.drive(cx);
        response.as_mut().poll(cx)
    })
    .await
}

/// A response body from the app that drives its connection while it is read, and hands the
/// connection back to the pool once fully read.
struct PooledBody {
    inner: Incoming,
    conn: Option<Conn>,
    pool: Arc<Pool>,
}

impl PooledBody {
    fn release(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn, cx);
        }
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        loop {
            let polled = Pin::new(&mut self.inner).poll_frame(cx);
            match &polled {
                Poll::Ready(None) => self.release(cx),
                Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(cx),
                Poll::Ready(Some(Err(_))) => self.conn = None,
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Pending => {
                    // More of the body needs reading: drive the connection, then look again.
                    // Once the connection has ended, hyper ends the body (or fails it) at once.
                    let ended = match self.conn.as_mut() {
                        Some(conn) => conn.drive(cx),
                        None => return Poll::Pending,
                    };
                    if ended {
                        self.conn = None;
                        continue;
                    }
                    // Driving may have delivered more of the body.
                    let again = Pin::new(&mut self.inner).poll_frame(cx);
                    match &again {
                        Poll::Ready(None) => self.release(cx),
                        Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(cx),
                        Poll::Ready(Some(Err(_))) => self.conn = None,
                        _ => {}
                    }
                    return again;
                }
            }
            return polled;
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // Fully read (or empty, e.g. 204 or HEAD): reusable. Abandoned half-way: not.
        if self.inner.is_end_stream() {
            self.release(&mut detached());
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a scripted upstream on real sockets: each connection is served by its own thread,
    //! which reads request heads and writes the bytes a test chooses.

    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::AtomicUsize;

    use http_body_util::BodyExt as _;

    /// What the scripted upstream does after answering a request.
    enum After {
        /// Wait for the next request on this connection.
        KeepOpen,
        /// Close the connection.
        Close,
    }

    type Script = dyn Fn(usize, &str, &mut TcpStream) -> After + Send + Sync;

    struct Scripted {
        addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
        /// (connection number, request line) of every request read.
        requests: Arc<Mutex<Vec<(usize, String)>>>,
        /// A handle on each accepted connection, to close it from the test.
        conns: Arc<Mutex<Vec<TcpStream>>>,
    }

    impl Scripted {
        fn start(
            script: impl Fn(usize, &str, &mut TcpStream) -> After + Send + Sync + 'static,
        ) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let accepted = Arc::new(AtomicUsize::new(0));
            let requests = Arc::new(Mutex::new(Vec::new()));
            let conns = Arc::new(Mutex::new(Vec::new()));
            let script: Arc<Script> = Arc::new(script);
            let (a, r, c) = (accepted.clone(), requests.clone(), conns.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    let n = a.fetch_add(1, Ordering::SeqCst);
                    c.lock()
                        .expect("lock")
                        .push(stream.try_clone().expect("clone"));
                    let (script, requests) = (script.clone(), r.clone());
                    std::thread::spawn(move || {
                        while let Some(line) = read_head(&mut stream) {
                            requests.lock().expect("lock").push((n, line.clone()));
                            if let After::Close = script(n, &line, &mut stream) {
                                // The test keeps a clone: dropping this one would not close.
                                let _ = stream.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                        }
                    });
                }
            });
            Self {
                addr,
                accepted,
                requests,
                conns,
            }
        }

        fn pool(&self, settings: PoolSettings) -> Arc<Pool> {
            let authority = self.addr.to_string().parse().expect("authority");
            Arc::new(Pool::new(authority, settings))
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        fn requests(&self) -> Vec<(usize, String)> {
            self.requests.lock().expect("lock").clone()
        }

        /// Closes connection `n` from the upstream's side.
        fn close(&self, n: usize) {
            let conns = self.conns.lock().expect("lock");
            conns[n]
                .shutdown(std::net::Shutdown::Both)
                .expect("shutdown");
        }
    }

    /// The request line of the next request head, or `None` at the end of the connection.
    fn read_head(stream: &mut TcpStream) -> Option<String> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return None,
            }
        }
        let text = String::from_utf8_lossy(&head);
        text.lines().next().map(str::to_owned)
    }

    fn write(stream: &mut TcpStream, bytes: &[u8]) {
        let _ = stream.write_all(bytes);
        let _ = stream.flush();
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    /// Answers every request with 200 `ok`, keeping the connection open.
    fn keep_alive(_: usize, _: &str, stream: &mut TcpStream) -> After {
        write(stream, OK);
        After::KeepOpen
    }

    fn get(path: &str) -> Request<Body> {
        Request::builder()
            .uri(path)
            .header(http::header::HOST, "app")
            .body(Body::empty())
            .expect("request")
    }

    async fn text(response: Response<Body>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn a_fully_read_body_hands_its_connection_back() {
        let up = Scripted::start(keep_alive);
        let pool = up.pool(PoolSettings::default());
        for _ in 0..3 {
            let response = pool.send(get("/")).await.expect("send");
            assert_eq!(text(response).await, "ok");
        }
        assert_eq!(up.accepted(), 1, "three requests, one connection");
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn connections_are_driven_by_the_requests_using_them() {
        let up = Scripted::start(keep_alive);
        let pool = up.pool(PoolSettings::default());
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        for _ in 0..3 {
            let response = pool.send(get("/")).await.expect("send");
            assert_eq!(tasks(), 0, "no task of its own for the connection");
            assert_eq!(text(response).await, "ok");
        }
        assert_eq!(up.accepted(), 1);
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(
            tasks(),
            0,
            "nothing left running beside the pooled connection"
        );
    }

    #[tokio::test]
    async fn an_abandoned_body_closes_its_connection() {
        let up = Scripted::start(|_, line, stream| {
            if line.starts_with("GET /big") {
                write(
                    stream,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n",
                );
                write(stream, &[b'x'; 16 * 1024]);
                // The rest never comes; the connection stays open.
                return After::KeepOpen;
            }
            keep_alive(0, line, stream)
        });
        let pool = up.pool(PoolSettings::default());
        let response = pool.send(get("/big")).await.expect("send");
        let mut body = response.into_body();
        let first = body.frame().await.expect("a frame").expect("data");
        assert!(first.is_data());
        drop(body);
        assert_eq!(pool.idle_count(), 0, "a half-read connection is not pooled");
        let response = pool.send(get("/")).await.expect("send");
        assert_eq!(text(response).await, "ok");
        assert_eq!(up.accepted(), 2, "the next request needs a new connection");
    }

    #[tokio::test]
    async fn an_errored_body_closes_its_connection() {
        let up = Scripted::start(|_, line, stream| {
            if line.starts_with("GET /broken") {
                // A chunk size that is not hex: the body fails to parse.
                write(
                    stream,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n",
                );
                return After::KeepOpen;
            }
            keep_alive(0, line, stream)
        });
        let pool = up.pool(PoolSettings::default());
        let response = pool.send(get("/broken")).await.expect("send");
        assert!(response.into_body().collect().await.is_err());
        assert_eq!(pool.idle_count(), 0);
        let response = pool.send(get("/")).await.expect("send");
        assert_eq!(text(response).await, "ok");
        assert_eq!(up.accepted(), 2);
    }

    #[tokio::test]
    async fn idle_connections_are_evicted() {
        let up = Scripted::start(keep_alive);
        let pool = up.pool(PoolSettings {
            idle_timeout: Duration::from_millis(100),
            ..PoolSettings::default()
        });
        let response = pool.send(get("/")).await.expect("send");
        assert_eq!(text(response).await, "ok");
        assert_eq!(pool.idle_count(), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let response = pool.send(get("/")).await.expect("send");
        assert_eq!(text(response).await, "ok");
        assert_eq!(up.accepted(), 2, "the stale connection was not reused");
    }

    #[tokio::test]
    async fn an_upstream_connection_close_is_honoured() {
        let up = Scripted::start(|_, _, stream| {
            write(
                stream,
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            );
            After::Close
        });
        let pool = up.pool(PoolSettings::default());
        for _ in 0..3 {
            let response = pool.send(get("/")).await.expect("send");
            assert_eq!(text(response).await, "ok");
        }
        assert_eq!(up.accepted(), 3, "each connection carried one request");
        assert_eq!(
            pool.resent(),
            0,
            "no request was sent to a closing connection"
        );
    }

    #[tokio::test]
    async fn an_http_1_0_upstream_is_honoured() {
        // HTTP/1.0 without keep-alive: the body ends where the connection does.
        let up = Scripted::start(|_, _, stream| {
            write(
                stream,
                b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello",
            );
            After::Close
        });
        let pool = up.pool(PoolSettings::default());
        for _ in 0..2 {
            let response = pool.send(get("/")).await.expect("send");
            assert_eq!(text(response).await, "hello");
        }
        assert_eq!(up.accepted(), 2);
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn a_request_never_sent_is_resent_once_on_a_new_connection() {
        let up = Scripted::start(keep_alive);
        let pool = up.pool(PoolSettings::default());
        let response = pool.send(get("/first")).await.expect("send");
        assert_eq!(text(response).await, "ok");
        assert_eq!(pool.idle_count(), 1);

        // The app closes the idle connection; a datagram is sent at the same moment. Both
        // arrive while this (single) runtime thread is blocked, so one poll of the I/O driver
        // sees both, and this task runs before the connection's task learns it is closed: the
        // pooled connection still looks usable when the request is handed to it.
        let signal = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let signal_addr = signal.local_addr().expect("addr");
        up.close(0);
        std::net::UdpSocket::bind("127.0.0.1:0")
            .expect("udp")
            .send_to(b"!", signal_addr)
            .expect("send");
        std::thread::sleep(Duration::from_millis(50));
        signal.recv(&mut [0u8; 1]).await.expect("signal");

        let response = pool.send(get("/second")).await.expect("resent");
        assert_eq!(text(response).await, "ok");
        assert_eq!(pool.resent(), 1, "the request went out again, once");
        assert_eq!(up.accepted(), 2);
        assert_eq!(
            up.requests(),
            [
                (0, "GET /first HTTP/1.1".to_owned()),
                (1, "GET /second HTTP/1.1".to_owned())
            ],
            "the app saw each request once"
        );
    }

    #[tokio::test]
    async fn a_request_that_went_out_is_never_sent_twice() {
        let up = Scripted::start(|_, line, stream| {
            if line.starts_with("POST /order") {
                // Read the head, then vanish without an answer.
                return After::Close;
            }
            keep_alive(0, line, stream)
        });
        let pool = up.pool(PoolSettings::default());
        let response = pool.send(get("/")).await.expect("send");
        assert_eq!(text(response).await, "ok");
        let order = Request::post("/order")
            .header(http::header::HOST, "app")
            .body(Body::from("one order"))
            .expect("request");
        let error = pool.send(order).await.expect_err("no answer");
        assert!(matches!(error, ProxyError::Exchange(_)), "{error:?}");
        assert_eq!(pool.resent(), 0);
        assert_eq!(
            up.accepted(),
            1,
            "no second connection for the same request"
        );
        let orders = up
            .requests()
            .iter()
            .filter(|(_, line)| line.starts_with("POST /order"))
            .count();
        assert_eq!(orders, 1);
    }

    #[tokio::test]
    async fn informational_responses_are_passed_over() {
        let up = Scripted::start(|_, _, stream| {
            write(
                stream,
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n",
            );
            write(stream, OK);
            After::KeepOpen
        });
        let pool = up.pool(PoolSettings::default());
        for _ in 0..2 {
            let response = pool.send(get("/")).await.expect("send");
            assert_eq!(response.status(), StatusCode::OK);
            assert!(!response.headers().contains_key(http::header::LINK));
            assert_eq!(text(response).await, "ok");
        }
        assert_eq!(up.accepted(), 1, "the connection stays usable after 1xx");
    }

    #[tokio::test]
    async fn a_slow_upstream_does_not_hold_up_other_requests() {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Mutex::new(released);
        let up = Scripted::start(move |_, line, stream| {
            if line.starts_with("GET /slow") {
                let _ = released.lock().expect("lock").recv();
            }
            keep_alive(0, line, stream)
        });
        let pool = up.pool(PoolSettings::default());
        let slow = tokio::spawn({
            let pool = pool.clone();
            async move { text(pool.send(get("/slow")).await.expect("send")).await }
        });
        while up.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A guard against hanging, not a speed requirement.
        let fast = tokio::time::timeout(Duration::from_secs(10), pool.send(get("/fast")))
            .await
            .expect("the fast request is not held up by the slow one")
            .expect("send");
        assert_eq!(text(fast).await, "ok");
        assert!(!slow.is_finished());
        release.send(()).expect("release");
        assert_eq!(slow.await.expect("join"), "ok");
        assert_eq!(up.accepted(), 2);
    }
}
