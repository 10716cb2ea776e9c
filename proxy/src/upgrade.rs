//! HTTP/1.1 `Upgrade` (WebSocket and others): the app's `101 Switching Protocols` joins the
//! client's connection to the app's, byte for byte, until either side closes.

use http::header;
use http::{HeaderMap, HeaderValue, Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::close::CloseSignal;
use crate::headers::strip_hop_by_hop;

/// The `Upgrade` value of an HTTP/1.1 upgrade request (`Connection: upgrade` + `Upgrade: x`).
pub fn upgrade_protocol<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let connection_upgrade = req.headers().get_all(header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|t| {
            t.split(',')
                .any(|tok| tok.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    connection_upgrade
        .then(|| req.headers().get(header::UPGRADE).cloned())
        .flatten()
}

/// The client's side of an HTTP/1.1 upgrade, taken from its request before that is sent on, and
/// its close signal (the end of its session), if the request carried a [`CloseSignal`] extension.
#[derive(Debug)]
pub struct ClientUpgrade(OnUpgrade, Option<CloseSignal>);

impl ClientUpgrade {
    /// Takes the client's side of the connection from an upgrade request.
    pub fn take<B>(req: &mut Request<B>) -> Self {
        let end = req.extensions_mut().remove::<CloseSignal>();
        Self(hyper::upgrade::on(req), end)
    }

    /// Joins the client's connection to the app's, once both have switched, in a task of its own;
    /// both are closed when the session ends.
    pub fn join(self, upstream: OnUpgrade) {
        let ClientUpgrade(client, end) = self;
        tokio::spawn(async move {
            let (client, upstream) = tokio::join!(client, upstream);
            match (client, upstream) {
                (Ok(client), Ok(upstream)) => {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    let tunnel = tokio::io::copy_bidirectional(&mut client, &mut upstream);
                    match end {
                        None => {
                            let _ = tunnel.await;
                        }
                        Some(end) => tokio::select! {
                            _ = tunnel => {}
                            () = end.closed() => {
                                tracing::debug!("session ended: tunnel closed");
                            }
                        },
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                }
            }
        });
    }
}

/// The headers of the app's `101` as the client gets them: hop-by-hop headers removed, except the
/// `Connection: upgrade` and `Upgrade` the switch itself needs.
pub fn switching_headers(headers: &mut HeaderMap) {
    let protocol = headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(headers);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(p) = protocol {
        headers.insert(header::UPGRADE, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_detection() {
        let ws = Request::builder()
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::UPGRADE, "websocket")
            .body(())
            .expect("request");
        assert_eq!(
            upgrade_protocol(&ws),
            Some(HeaderValue::from_static("websocket"))
        );
        let plain = Request::builder()
            .header(header::UPGRADE, "websocket")
            .body(())
            .expect("request");
        assert_eq!(upgrade_protocol(&plain), None);
    }

    #[test]
    fn a_switch_keeps_only_the_upgrade_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Upgrade, x-hop"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("sec-websocket-accept", HeaderValue::from_static("abc"));
        switching_headers(&mut h);
        let mut names: Vec<&str> = h.keys().map(http::HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["connection", "sec-websocket-accept", "upgrade"]);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
    }
}
