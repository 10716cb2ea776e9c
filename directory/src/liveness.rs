//! The SsoUser watch's proof of life, taken from the connection itself.
//!
//! kube's watcher hides what the revocation cache needs to know: a re-opened watch (after an
//! outage, or after the API server ended a quiet watch at its `timeoutSeconds`) and bookmarks
//! produce no event, and a connection that stays open but delivers nothing is no error at all.
//! So the client the watch runs on is wrapped: every watch request the API server answers
//! successfully, every chunk of a watch response and its clean end report to the cache's
//! [`Heartbeat`] (the cache's `WatchPulse`); a watch response silent for longer than the idle limit ends with an error, so
//! the watcher drops the stalled connection and opens a new one; and a request the API server
//! accepts but never answers fails after the same limit.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{Request, Response};
use http_body_util::{BodyExt as _, BodyStream, StreamBody};
use tower::BoxError;

/// What the wrapped client reports to: each sign of life of the watch connection.
pub trait Heartbeat: Clone + Send + Sync + 'static {
    /// The watch just showed it is alive.
    fn beat(&self);
}

/// Why a watch response was cut.
#[derive(Debug, thiserror::Error)]
#[error(
    "the SsoUser watch delivered nothing for {0:?} (no event, bookmark or end): dropping the stalled connection"
)]
pub struct Stalled(pub Duration);

/// Why a request of the watcher was given up.
#[derive(Debug, thiserror::Error)]
#[error("the Kubernetes API did not answer the SsoUser watcher's request within {0:?}")]
pub struct NoAnswer(pub Duration);

/// Whether `request` opens a watch (`?watch=true`, as kube's watcher sends it).
fn is_watch<B>(request: &Request<B>) -> bool {
    request.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    })
}

type WatchBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// `response`'s body, reporting each chunk and its clean end to `pulse`, and cut with
/// [`Stalled`] once nothing arrives for `idle_limit`.
fn watched<P: Heartbeat>(
    response: Response<kube::client::Body>,
    pulse: P,
    idle_limit: Duration,
) -> Response<WatchBody> {
    response.map(|body| {
        let frames = Box::pin(BodyStream::new(body));
        let stream = futures::stream::unfold(Some(frames), move |frames| {
            let pulse = pulse.clone();
            async move {
                let mut frames = frames?;
                match tokio::time::timeout(idle_limit, frames.next()).await {
                    Ok(Some(Ok(frame))) => {
                        pulse.beat();
                        Some((Ok(frame), Some(frames)))
                    }
                    Ok(Some(Err(error))) => Some((Err(BoxError::from(error)), None)),
                    Ok(None) => {
                        // The API server ended the watch (its timeoutSeconds): alive until now.
                        pulse.beat();
                        None
                    }
                    Err(_) => Some((Err(BoxError::from(Stalled(idle_limit))), None)),
                }
            }
        });
        StreamBody::new(stream).boxed_unsync()
    })
}

/// `client`, reporting the liveness of its watch requests to `pulse` and cutting watch
/// responses that stay silent for `idle_limit`. Other requests pass through unchanged.
pub fn client<P: Heartbeat>(client: kube::Client, pulse: P, idle_limit: Duration) -> kube::Client {
    let namespace = client.default_namespace().to_string();
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let (client, pulse) = (client.clone(), pulse.clone());
        async move {
            let watch = is_watch(&request);
            // An API server that accepts the request and never answers must not hold the
            // watcher forever: no answer within the idle limit is a failed request, retried.
            let response = tokio::time::timeout(idle_limit, client.send(request))
                .await
                .map_err(|_| BoxError::from(NoAnswer(idle_limit)))??;
            if watch && response.status().is_success() {
                // The API server accepted the watch: it is reachable and answering now.
                pulse.beat();
                Ok::<_, BoxError>(watched(response, pulse, idle_limit))
            } else {
                Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
            }
        }
    });
    kube::Client::new(service, namespace)
}

#[cfg(test)]
#[path = "watch_fault_tests.rs"]
mod watch_fault_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_watch_requests_are_watched() {
        let watch = Request::get("/apis/gatehouse.dev/v1alpha1/namespaces/a/ssousers?labelSelector=x&watch=true&timeoutSeconds=10")
            .body(())
            .expect("request");
        let list = Request::get(
            "/apis/gatehouse.dev/v1alpha1/namespaces/a/ssousers?labelSelector=watch%3Dtrue",
        )
        .body(())
        .expect("request");
        assert!(is_watch(&watch));
        assert!(!is_watch(&list));
    }
}
