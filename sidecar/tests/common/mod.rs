//! What the sidecar's integration tests share: pieces of the stand-in apps behind the sidecar.

pub mod harness;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper_util::rt::TokioIo;

/// An app route that accepts a WebSocket-style upgrade and echoes every byte back.
#[allow(dead_code)] // not every test binary that includes `common` has a WebSocket route
pub async fn echo_upgrade(mut req: Request) -> Response {
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on.await {
            let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
    });
    Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(Body::empty())
        .unwrap_or_default()
}
