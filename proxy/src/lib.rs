//! Gatehouse's reverse proxy to the app, split by job:
//!
//! - [`headers`]: the header rules of the security model (pure);
//! - [`body`]: request body limits (size, pauses);
//! - [`pool`]: the keep-alive HTTP/1.1 connections to the app;
//! - [`upgrade`]: WebSocket (and any HTTP/1.1 `Upgrade`) pass-through;
//! - [`close`]: the generic signal that cuts a tunnel or a streamed response;
//! - [`upstream`]: [`Upstream`] puts them together for one request;
//! - [`listener`]: the accept loops with the HTTP limits, and graceful shutdown.
//!
//! Nothing here knows sessions or users: the sidecar decides, the proxy carries.
#![forbid(unsafe_code)]

pub mod body;
pub mod close;
pub mod error;
pub mod headers;
pub mod listener;
pub mod pool;
pub mod upgrade;
pub mod upstream;

pub use error::ProxyError;
pub use upstream::Upstream;
