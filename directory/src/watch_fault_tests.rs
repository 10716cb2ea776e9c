//! The SsoUser watch as it runs ([`UserCacheFeeder::run`]: kube's watcher on the liveness-wrapped
//! client) against kube's tower-test mock of the API server, which answers each request as the
//! test decides: a list with an object that does not decode, a watch that stays open and silent,
//! a watch request that is never answered, 503s, and recovery with no object changing.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::BoxError;
use tower_test::mock::{self, Handle, SendResponse};

use crate::kubernetes::{SessionRefusal, UserCache};

type MockBody = UnsyncBoxBody<Bytes, BoxError>;
type Api = Handle<Request<kube::client::Body>, Response<MockBody>>;

const NS: &str = "team-a";
const CONFIG: &str = "portal";

fn user(name: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "SsoUser",
        "metadata": {"name": name, "namespace": NS, "uid": uid, "resourceVersion": "5",
                     "labels": {"gatehouse.dev/config": CONFIG}},
        "spec": {"config": CONFIG, "provider": "okta", "subject": name}
    })
}

fn full(value: &Value) -> MockBody {
    Full::new(Bytes::from(value.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn list(items: Vec<Value>) -> Response<MockBody> {
    Response::new(full(&json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "SsoUserList",
        "metadata": {"resourceVersion": "10"}, "items": items
    })))
}

/// A watch response that stays open; whatever the test sends on the returned channel arrives as
/// the next chunk.
fn open_watch() -> (Response<MockBody>, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, BoxError>(Frame::data(chunk)), rx))
    });
    (Response::new(StreamBody::new(frames).boxed_unsync()), tx)
}

fn unavailable() -> Response<MockBody> {
    let mut response = Response::new(full(&json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": "the server is currently unable to handle the request",
        "reason": "ServiceUnavailable", "code": 503
    })));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
}

fn is_watch(request: &Request<kube::client::Body>) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|q| q.contains("watch=true"))
}

async fn next(
    api: &mut Api,
    within: Duration,
) -> (
    Request<kube::client::Body>,
    SendResponse<Response<MockBody>>,
) {
    tokio::time::timeout(within, api.next_request())
        .await
        .expect("the watcher sends its next request in time")
        .expect("the client is alive")
}

/// A cache with `staleness`, fed by the real watch loop through the mock API.
fn start(staleness: Duration) -> (UserCache, Api, tokio::task::JoinHandle<()>) {
    let (service, handle) = mock::pair::<Request<kube::client::Body>, Response<MockBody>>();
    let client = kube::Client::new(service, NS);
    let (cache, feeder) = UserCache::new(NS, CONFIG, staleness);
    let task = tokio::spawn(feeder.run(client, NS.to_string()));
    (cache, handle, task)
}

fn started() -> jiff::Timestamp {
    jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60)
}

async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

#[tokio::test]
async fn an_undecodable_user_neither_stalls_the_watch_nor_hides_the_others() {
    let (cache, mut api, task) = start(Duration::from_secs(300));
    let (request, reply) = next(&mut api, Duration::from_secs(5)).await;
    assert!(!is_watch(&request), "the watcher lists first");
    let mut broken = user("okta-bad", "uid-bad");
    broken["spec"]["suspended"] = json!("not a boolean");
    reply.send_response(list(vec![user("okta-good", "uid-good"), broken]));
    let (request, reply) = next(&mut api, Duration::from_secs(5)).await;
    assert!(is_watch(&request), "then watches");
    let (response, _events) = open_watch();
    reply.send_response(response);

    assert!(
        eventually(Duration::from_secs(5), || cache.is_ready()).await,
        "one undecodable SsoUser must not leave the cache unsynced (every session refused)"
    );
    assert_eq!(cache.check("okta-good", "uid-good", started()), Ok(()));
    assert_eq!(
        cache.check("okta-bad", "uid-bad", started()),
        Err(SessionRefusal::Undecodable),
        "its suspension cannot be read: fail closed"
    );
    assert_eq!(cache.undecodable_count(), 1);
    assert_eq!(cache.user_count(), 1);
    task.abort();
}

#[tokio::test]
async fn a_silent_watch_goes_stale_on_time_and_a_re_opened_watch_is_fresh_without_any_change() {
    let staleness = Duration::from_secs(3);
    let (cache, mut api, task) = start(staleness);
    let timings = cache.timings();
    assert!(timings.idle_limit < staleness, "{timings:?}");

    let (_, reply) = next(&mut api, Duration::from_secs(5)).await;
    reply.send_response(list(vec![user("okta-1", "uid-1")]));
    let (request, reply) = next(&mut api, Duration::from_secs(5)).await;
    assert!(is_watch(&request));
    let query = request.uri().query().unwrap_or_default().to_string();
    assert!(
        query.contains(&format!(
            "timeoutSeconds={}",
            timings.watch_timeout.as_secs()
        )),
        "a quiet watch is re-opened well within the limit: {query}"
    );
    // The fault: the watch is accepted and then delivers nothing, without ending.
    let (response, _silent) = open_watch();
    reply.send_response(response);
    let last_sign_of_life = Instant::now();
    assert!(eventually(Duration::from_secs(2), || cache.is_ready()).await);
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));

    // The stalled connection is dropped and a new watch requested; the API never answers it.
    let (request, _unanswered) = next(&mut api, timings.idle_limit + Duration::from_secs(3)).await;
    assert!(is_watch(&request), "the stalled watch is re-opened");
    assert!(
        eventually(staleness + Duration::from_secs(1), || !cache.is_ready()).await,
        "not ready within the staleness limit of the last sign of life"
    );
    assert!(
        last_sign_of_life.elapsed() >= staleness - Duration::from_millis(100),
        "not before the limit either"
    );
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::Stale)
    );

    // The API answers again: the next watch request succeeds and delivers nothing (no SsoUser
    // changed). That alone makes the cache fresh.
    let (request, reply) = next(&mut api, Duration::from_secs(60)).await;
    assert!(is_watch(&request));
    let (response, _quiet) = open_watch();
    reply.send_response(response);
    assert!(
        eventually(Duration::from_secs(2), || cache.is_ready()).await,
        "ready again within seconds of the watch being re-established"
    );
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    task.abort();
}

#[tokio::test]
async fn after_an_outage_of_503s_the_first_successful_re_watch_restores_sessions() {
    let staleness = Duration::from_secs(2);
    let (cache, mut api, task) = start(staleness);
    let (_, reply) = next(&mut api, Duration::from_secs(5)).await;
    reply.send_response(list(vec![user("okta-1", "uid-1")]));
    // The watch ends at once, and then the API answers 503 until past the limit.
    let (_, reply) = next(&mut api, Duration::from_secs(5)).await;
    let (response, events) = open_watch();
    reply.send_response(response);
    drop(events);
    let outage = Instant::now();
    while outage.elapsed() < staleness + Duration::from_millis(500) {
        let (request, reply) = next(&mut api, Duration::from_secs(60)).await;
        assert!(
            is_watch(&request),
            "re-watch, no re-list: {:?}",
            request.uri()
        );
        reply.send_response(unavailable());
    }
    assert!(!cache.is_ready());
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::Stale)
    );
    let (_, reply) = next(&mut api, Duration::from_secs(60)).await;
    let (response, _quiet) = open_watch();
    reply.send_response(response);
    assert!(
        eventually(Duration::from_secs(2), || cache.is_ready()).await,
        "ready again without any SsoUser changing"
    );
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    task.abort();
}

/// Which users are the config's is decided once ([`crate::kubernetes::ConfigScope`]): the list
/// and the watch ask the API server for `gatehouse.dev/config=<config>`, the selector a read on a
/// miss applies too (`read_through`'s tests).
#[tokio::test]
async fn the_watch_asks_for_the_configs_label() {
    let (cache, mut api, task) = start(Duration::from_secs(300));
    let selector = "labelSelector=gatehouse.dev%2Fconfig%3Dportal";
    let (request, reply) = next(&mut api, Duration::from_secs(5)).await;
    let query = request.uri().query().unwrap_or_default().to_string();
    assert!(query.contains(selector), "the list: {query}");
    reply.send_response(list(vec![user("okta-1", "uid-1")]));
    let (request, reply) = next(&mut api, Duration::from_secs(5)).await;
    let query = request.uri().query().unwrap_or_default().to_string();
    assert!(
        is_watch(&request) && query.contains(selector),
        "the watch: {query}"
    );
    let (response, _events) = open_watch();
    reply.send_response(response);
    assert!(eventually(Duration::from_secs(5), || cache.is_ready()).await);
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    task.abort();
}
