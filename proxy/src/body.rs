//! Request body limits: how much of a client's body the app may get, and how long it may pause.

use std::error::Error as StdError;
use std::time::Duration;

use axum_core::body::Body;
use bytes::Bytes;
use http_body_util::{LengthLimitError, Limited};
use tower_http::timeout::{TimeoutBody, TimeoutError};

/// A request body the sidecar will not send on, whole, to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// More bytes than `GATEHOUSE_MAX_REQUEST_BODY` (declared up front, or counted on the way).
    TooLarge,
    /// A pause longer than `GATEHOUSE_REQUEST_BODY_TIMEOUT`.
    Stalled,
}

/// The request body as the app gets it, streamed: at most `max` bytes, and no pause longer than
/// `idle` (a client that stalls an upload loses the request instead of holding two connections).
/// A declared length over `max` is refused before anything is sent; a body without one is counted
/// as it passes and cut off at the limit. A request without a body (most of them) passes
/// untouched, with no timer.
pub fn bounded_body<B>(body: B, max: u64, idle: Duration) -> Result<Body, BodyFault>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum_core::BoxError>,
{
    if body.is_end_stream() {
        return Ok(Body::new(body));
    }
    if body.size_hint().lower() > max {
        return Err(BodyFault::TooLarge);
    }
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    Ok(Body::new(TimeoutBody::new(idle, Limited::new(body, max))))
}

/// The body fault somewhere in an error's chain of sources, if a body limit is why it failed.
pub fn fault_in(error: &(dyn StdError + 'static)) -> Option<BodyFault> {
    let mut cause = Some(error);
    while let Some(err) = cause {
        if err.is::<LengthLimitError>() {
            return Some(BodyFault::TooLarge);
        }
        if err.is::<TimeoutError>() {
            return Some(BodyFault::Stalled);
        }
        cause = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use http_body_util::{BodyExt as _, Full, StreamBody};
    use hyper::body::{Body as _, Frame};

    /// A body of `chunks` pieces of `size` bytes with no declared length.
    fn unsized_body(chunks: usize, size: usize) -> Body {
        let frames = futures::stream::iter(
            (0..chunks)
                .map(move |_| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![b'x'; size])))),
        );
        Body::new(StreamBody::new(frames))
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let body = Full::new(Bytes::from(vec![0u8; 11]));
        assert_eq!(
            bounded_body(body, 10, Duration::from_secs(1)).err(),
            Some(BodyFault::TooLarge)
        );
        let body = Full::new(Bytes::from(vec![0u8; 10]));
        assert!(bounded_body(body, 10, Duration::from_secs(1)).is_ok());
    }

    #[tokio::test]
    async fn a_body_without_a_length_is_cut_off_at_the_limit() {
        let limited = bounded_body(unsized_body(3, 4), 10, Duration::from_secs(5)).expect("body");
        let error = limited.collect().await.expect_err("over the limit");
        assert_eq!(fault_in(&error), Some(BodyFault::TooLarge));

        let within = bounded_body(unsized_body(2, 5), 10, Duration::from_secs(5)).expect("body");
        let bytes = within.collect().await.expect("within the limit").to_bytes();
        assert_eq!(bytes.len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_pauses_too_long_is_stalled() {
        let first = futures::stream::iter([Ok::<_, std::io::Error>(Frame::data(
            Bytes::from_static(b"abc"),
        ))]);
        let stalled = first.chain(futures::stream::pending());
        let body = bounded_body(
            Body::new(StreamBody::new(stalled)),
            1024,
            Duration::from_secs(2),
        )
        .expect("body");
        let error = body.collect().await.expect_err("stalled");
        assert_eq!(fault_in(&error), Some(BodyFault::Stalled));
    }

    #[test]
    fn an_empty_body_passes_untouched() {
        let body = bounded_body(Body::empty(), 0, Duration::from_secs(1)).expect("empty");
        assert!(body.is_end_stream());
    }

    #[test]
    fn other_errors_are_no_body_fault() {
        let error = std::io::Error::other("connection reset");
        assert_eq!(fault_in(&error), None);
    }
}
