//! A tiny upstream app for Gatehouse's tests, demo and benchmark.
//!
//! - `/static`: a fixed small body with the `x-sample-app: static` marker header (benchmark).
//! - `/ws`: WebSocket echo (upgrade test).
//! - every other path: the request as the app saw it (method, path, every header, body size),
//!   as JSON when the client accepts JSON, else as an HTML page showing the identity headers.
//!
//! Prints one JSON line `{"listen":"127.0.0.1:PORT"}` on stdout once listening.
#![forbid(unsafe_code)]

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{
        Request,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use clap::Parser;
use gatehouse_tests::sample::{
    IDENTITY_HEADERS, MARKER_HEADER, MARKER_VALUE, STATIC_BODY, SeenRequest,
};

#[derive(Debug, Parser)]
#[command(about = "Sample upstream app for Gatehouse tests and demo")]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "SAMPLE_APP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Exit when stdin closes (the test harness holds it open; if the harness is killed, the
    /// app does not linger).
    #[arg(long)]
    exit_on_stdin_close: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    println!("{}", serde_json::json!({ "listen": addr.to_string() }));
    if args.exit_on_stdin_close {
        tokio::spawn(async {
            use tokio::io::AsyncReadExt as _;
            let mut sink = [0u8; 64];
            let mut stdin = tokio::io::stdin();
            while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }
    let app = Router::new()
        .route("/static", get(static_body))
        .route("/stream", get(streamed_body))
        .route("/ws", get(ws_echo))
        .fallback(echo_request);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn static_body() -> Response {
    static_response(Body::from(STATIC_BODY))
}

/// The `/static` body and headers, sent as a stream of unknown length (chunked), as apps that
/// stream their responses do: the benchmark measures what such a response costs the proxy.
async fn streamed_body() -> Response {
    let chunk =
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(STATIC_BODY.as_bytes()));
    static_response(Body::from_stream(futures::stream::iter([chunk])))
}

/// `body` with the headers of `/static` (content type and the benchmark's marker).
fn static_response(body: Body) -> Response {
    let mut res = Response::new(body);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res.headers_mut()
        .insert(MARKER_HEADER, HeaderValue::from_static(MARKER_VALUE));
    res
}

async fn ws_echo(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(echo_socket)
}

async fn echo_socket(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Text(t) => Message::Text(format!("echo: {}", t.as_str()).into()),
            Message::Binary(b) => Message::Binary(b),
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

async fn echo_request(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body_bytes = match to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b.len(),
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    };
    let seen = SeenRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_bytes,
    };
    if wants_json(&parts.headers) {
        let mut res = axum::Json(seen).into_response();
        res.headers_mut()
            .insert(MARKER_HEADER, HeaderValue::from_static("echo"));
        return res;
    }
    let mut res = Html(render_html(&seen)).into_response();
    res.headers_mut()
        .insert(MARKER_HEADER, HeaderValue::from_static("echo"));
    res
}

fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

fn render_html(seen: &SeenRequest) -> String {
    let rows: String = IDENTITY_HEADERS
        .iter()
        .map(|name| {
            let value = seen.header(name).unwrap_or("(absent)");
            format!(
                "<tr><th scope=\"row\">{}</th><td data-header=\"{}\">{}</td></tr>",
                escape(name),
                escape(name),
                escape(value)
            )
        })
        .collect();
    let who = seen
        .header("x-forwarded-email")
        .map(|e| format!("Signed in as {}", escape(e)))
        .unwrap_or_else(|| "No identity headers: not signed in through Gatehouse".to_owned());
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sample app</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto}}\
         td,th{{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #ddd;word-break:break-all}}th{{white-space:nowrap;word-break:normal}}</style>\
         </head><body><h1>Sample app</h1><p id=\"who\">{who}</p>\
         <p>Path <code>{path}</code></p>\
         <table id=\"identity\"><caption>Identity headers received</caption>{rows}</table>\
         <form method=\"post\" action=\"/api/auth/logout\"><button type=\"submit\">Sign out</button></form>\
         </body></html>",
        path = escape(&seen.path),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
