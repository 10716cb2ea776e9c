//! Why the app could not be reached, or did not answer.

use std::time::Duration;

use crate::body::{self, BodyFault};

/// Why the app could not be reached, or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Connecting to the app failed.
    #[error("cannot connect to the app")]
    Connect {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Connecting to the app took longer than allowed.
    #[error("connecting to the app timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The HTTP/1.1 handshake on a new connection failed.
    #[error("HTTP handshake with the app failed")]
    Handshake(#[source] hyper::Error),
    /// The exchange with the app failed (including the client's body failing on the way).
    #[error("request to the app failed")]
    Exchange(#[source] hyper::Error),
    /// The app sent no response head within `GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT`.
    #[error("the app sent no response within {0:?}")]
    ResponseTimeout(Duration),
    /// The request cannot be expressed to the app (no path).
    #[error("request has no path")]
    NoPath,
}

impl ProxyError {
    /// The client's request body, when that (not the app) is why the exchange failed.
    pub fn body_fault(&self) -> Option<BodyFault> {
        match self {
            Self::Exchange(e) => body::fault_in(e),
            _ => None,
        }
    }
}
