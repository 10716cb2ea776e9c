//! A watch-cache miss for a new session, through the [`App`] as the gate asks it: the
//! directory's read-through against kube's tower-test mock of the API server, with kube's own
//! retry policy, and the metrics the app counts for it.

use std::time::Duration;

use bytes::Bytes;
use gatehouse_auth::cookie::Session;
use gatehouse_crds::ProvisioningMode;
use gatehouse_directory::kubernetes::UserCacheFeeder;
use gatehouse_directory::{KubernetesDirectory, UserDirectory};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, combinators::UnsyncBoxBody};
use kube::client::retry::RetryPolicy;
use tower::BoxError;
use tower::retry::RetryLayer;
use tower_test::mock;

use crate::config::Config;
use crate::state::App;

type MockBody = UnsyncBoxBody<Bytes, BoxError>;

const BUDGET: Duration = Duration::from_secs(2);

fn status(code: StatusCode, retry_after: Option<&str>) -> Response<MockBody> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": "try again later", "code": code.as_u16(),
        "reason": if code == StatusCode::NOT_FOUND { "NotFound" } else { "ServiceUnavailable" }
    });
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = code;
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(seconds).expect("a valid header"),
        );
    }
    response
}

// ---- a watch-cache miss for a new session, through the App as the gate asks it ----

type MockHandle = mock::Handle<Request<kube::client::Body>, Response<MockBody>>;

const USER: &str = "okta-0123456789abcdef";
const UID: &str = "uid-ada";

/// The sidecar's state over a Kubernetes directory whose API is the returned handle; its
/// SsoUser watch has completed its first list, which held nobody.
fn app_over_mock_api() -> (App, MockHandle, UserCacheFeeder) {
    let (service, handle) = mock::pair::<Request<kube::client::Body>, Response<MockBody>>();
    let service = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(RetryPolicy::server_retry()))
        .service(service);
    let client = kube::Client::new(service, "team-a");
    let (directory, mut feeder) = KubernetesDirectory::assemble(
        client,
        "team-a",
        "portal",
        ProvisioningMode::Jit,
        Duration::from_secs(300),
        BUDGET,
    );
    feeder.apply(Ok(kube::runtime::watcher::Event::Init));
    feeder.apply(Ok(kube::runtime::watcher::Event::InitDone));
    let env = std::collections::HashMap::from([
        ("GATEHOUSE_PUBLIC_URL", "https://portal.example.com"),
        (
            "GATEHOUSE_COOKIE_SECRET",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ),
        ("GATEHOUSE_PROVISIONING", "kubernetes"),
        ("GATEHOUSE_NAMESPACE", "team-a"),
        ("GATEHOUSE_CONFIG", "portal"),
        ("OKTA_CLIENT_ID", "client"),
        ("OKTA_CLIENT_SECRET", "not-used-here"),
        ("OKTA_ISSUER", "https://acme.okta.com"),
        ("OKTA_ORG_ID", "acme"),
    ]);
    let lookup = |name: &str| env.get(name).map(|v| (*v).to_owned());
    let config = Config::from_source(&lookup).expect("a valid configuration");
    let app = App::with_directory(config, UserDirectory::Kubernetes(Box::new(directory)))
        .expect("the state builds");
    (app, handle, feeder)
}

/// The cookie header of a session of `user` bound to [`UID`], issued at `issued_at`.
fn cookie(app: &App, user: &str, issued_at: i64) -> http::HeaderMap {
    let session = Session {
        sid: format!("sid-{user}-{issued_at}"),
        user: user.to_owned(),
        subject: "00u1ada".into(),
        provider: "okta".into(),
        email: None,
        name: None,
        username: None,
        role: gatehouse_crds::Role::Member,
        issued_at,
        expires_at: issued_at + 3600,
        user_uid: Some(UID.into()),
        idp_sid: None,
        validated_at: None,
        groups: Vec::new(),
        claims: None,
        facts: None,
        groups_unknown: false,
    };
    let sealed = session.seal(&app.sessions.keys(), &app.sessions.binding);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("{}={sealed}", app.sessions.cookies.session))
            .expect("a cookie header"),
    );
    headers
}

fn sso_user_json(name: &str) -> Response<MockBody> {
    let body = serde_json::json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "SsoUser",
        "metadata": { "name": name, "namespace": "team-a", "uid": UID, "resourceVersion": "7",
                      "labels": { "gatehouse.dev/config": "portal" } },
        "spec": { "config": "portal", "provider": "okta", "subject": "00u1ada" }
    });
    Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    )
}

fn metric(app: &App, series: &str) -> u64 {
    let text = app.metrics.encode();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
}

#[tokio::test]
async fn a_miss_for_a_new_session_reads_the_user_once_and_then_serves_from_the_cache() {
    let (app, mut handle, _feeder) = app_over_mock_api();
    let server = tokio::spawn(async move {
        let mut reads = Vec::new();
        while let Some((request, reply)) = handle.next_request().await {
            reads.push(request.uri().path().to_owned());
            reply.send_response(sso_user_json(USER));
        }
        reads
    });
    let now = gatehouse_auth::token::now_unix();
    let headers = cookie(&app, USER, now - 5);
    let session = app.session(&headers, now).await;
    assert_eq!(session.map(|s| s.user.clone()).as_deref(), Some(USER));
    assert!(app.session(&headers, now).await.is_some(), "served again");
    assert_eq!(
        metric(&app, "gatehouse_user_reads_total{outcome=\"found\"}"),
        1
    );
    drop(app);
    let reads = server.await.expect("the fake API ends");
    assert_eq!(
        reads,
        [format!(
            "/apis/gatehouse.dev/v1alpha1/namespaces/team-a/ssousers/{USER}"
        )],
        "one read of that one user; the second request was served from the cache"
    );
}

#[tokio::test]
async fn a_miss_for_an_old_session_is_refused_without_any_api_call() {
    let (app, mut handle, _feeder) = app_over_mock_api();
    let now = gatehouse_auth::token::now_unix();
    let headers = cookie(&app, USER, now - 600);
    assert!(app.session(&headers, now).await.is_none());
    assert_eq!(
        metric(
            &app,
            "gatehouse_sessions_refused_total{reason=\"user_deleted\"}"
        ),
        1
    );
    drop(app);
    assert!(
        handle.next_request().await.is_none(),
        "the API was called for a session the watch has had time to see"
    );
}

#[tokio::test]
async fn concurrent_misses_of_one_user_share_one_read() {
    let (app, mut handle, _feeder) = app_over_mock_api();
    let server = tokio::spawn(async move {
        let mut reads = 0;
        while let Some((_, reply)) = handle.next_request().await {
            reads += 1;
            // Slow enough for every request below to arrive while this read is under way.
            tokio::time::sleep(Duration::from_millis(300)).await;
            reply.send_response(sso_user_json(USER));
        }
        reads
    });
    let now = gatehouse_auth::token::now_unix();
    let headers = cookie(&app, USER, now);
    let sessions = futures::future::join_all((0..50).map(|_| app.session(&headers, now))).await;
    assert!(sessions.iter().all(Option::is_some), "all 50 admitted");
    assert_eq!(
        metric(&app, "gatehouse_user_reads_total{outcome=\"found\"}"),
        1
    );
    drop(app);
    assert_eq!(server.await.expect("the fake API ends"), 1, "one read");
}

#[tokio::test]
async fn a_flood_of_misses_costs_a_bounded_number_of_reads() {
    let (app, mut handle, _feeder) = app_over_mock_api();
    let server = tokio::spawn(async move {
        let mut reads = 0u64;
        while let Some((_, reply)) = handle.next_request().await {
            reads += 1;
            reply.send_response(status(StatusCode::NOT_FOUND, None));
        }
        reads
    });
    let limits = gatehouse_directory::read_through::ReadLimits::default();
    let started = std::time::Instant::now();
    let now = gatehouse_auth::token::now_unix();
    let flood = 500u64;
    for n in 0..flood {
        // Every request a session of another (deleted, or never existing) user.
        let headers = cookie(&app, &format!("okta-{n:016x}"), now);
        assert!(app.session(&headers, now).await.is_none());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let limited = metric(&app, "gatehouse_user_reads_total{outcome=\"rate_limited\"}");
    let not_found = metric(&app, "gatehouse_user_reads_total{outcome=\"not_found\"}");
    drop(app);
    let reads = server.await.expect("the fake API ends");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bound = u64::from(limits.burst) + (elapsed * f64::from(limits.per_second)).ceil() as u64;
    assert!(
        reads <= bound,
        "{flood} misses in {elapsed:.2} s made {reads} API reads, over the bucket's {bound}"
    );
    assert!(reads >= u64::from(limits.burst), "the burst was allowed");
    assert_eq!(not_found, reads);
    assert_eq!(limited, flood - reads, "the rest refused without a read");
}

#[tokio::test(start_paused = true)]
async fn a_read_the_api_never_answers_is_given_up_at_its_deadline() {
    let (app, mut handle, _feeder) = app_over_mock_api();
    let held = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(request) = handle.next_request().await {
            pending.push(request);
        }
    });
    let limits = gatehouse_directory::read_through::ReadLimits::default();
    let now = gatehouse_auth::token::now_unix();
    let headers = cookie(&app, USER, now);
    let started = tokio::time::Instant::now();
    assert!(app.session(&headers, now).await.is_none());
    assert!(
        started.elapsed() <= limits.deadline + Duration::from_millis(1),
        "the request waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        metric(&app, "gatehouse_user_reads_total{outcome=\"timed_out\"}"),
        1
    );
    assert_eq!(
        metric(
            &app,
            "gatehouse_sessions_refused_total{reason=\"user_unconfirmed\"}"
        ),
        1
    );
    held.abort();
}
