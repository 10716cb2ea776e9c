//! The sidecar at scale, for `cargo xtask bench` (run by `gatehouse-stack scale-bench`): its
//! memory and per-request cost with `users` SsoUsers in its watch cache.
//!
//! One process per measurement, so that its resident memory is the sidecar's: the real sidecar
//! (`gatehouse_sidecar::start_with`, Kubernetes provisioning on kube-fake-client's in-memory API)
//! whose SsoUser cache is filled through its watch path (the feeder the watcher drives: a full
//! list of `users` objects shaped as the API server returns them, managed fields included), a
//! small app in the same process, and a client that sends `requests` requests, one at a time,
//! with the session of one of those users. The driver runs it with ~10, 10,000 and 100,000 users
//! in the same run and compares.
//!
//! The list reaches the cache as the watcher delivers it: pages of [`PAGE`] objects, each page's
//! JSON decoded as kube decodes a list response (`DeserializeGuard<SsoUser>` items) and applied
//! item by item between `Init` and `InitDone`. Writing each page's JSON (the API server's part) is
//! outside the clock; decoding and applying it (the sidecar's part) is what "ready" measures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gatehouse_auth::cookie::Session;
use gatehouse_crds::names::sso_user_name;
use gatehouse_crds::{Role, SsoUser, SsoUserSpec, SsoUserStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta, Time};
use kube::core::{DeserializeGuard, ObjectList};
use kube::runtime::watcher;
use serde::Serialize;

use crate::kube_bench::Spread;

/// What `gatehouse-stack scale-bench` prints (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct ScaleFigures {
    /// SsoUsers in the watch cache.
    pub users: usize,
    /// Resident memory of the process once the sidecar has started, before the list, KiB.
    pub rss_started_kib: u64,
    /// Resident memory once the cache holds every user, KiB.
    pub rss_filled_kib: u64,
    /// Resident memory after the requests, KiB.
    pub rss_after_requests_kib: u64,
    /// From the list delivered to the cache holding every user, µs: the pages decoded as the
    /// watcher decodes them and applied (Init … InitDone).
    pub ready_us: f64,
    /// Of `ready_us`, the time spent applying the decoded objects to the cache, µs.
    pub apply_us: f64,
    /// Round trip of one proxied request with a session (client, sidecar and app in this process).
    pub request: Spread,
    /// CPU time of the whole process per request (client, sidecar and app), µs.
    pub cpu_us_per_request: f64,
}

const NAMESPACE: &str = "team-a";
const CONFIG: &str = "portal";
const ISSUER: &str = "https://acme.okta.com";
/// Objects per page of the list, as kube's watcher asks for them (`watcher::Config::page_size`).
const PAGE: usize = 500;

/// One SsoUser as the API server returns it after a few sign-ins.
fn user(i: usize) -> SsoUser {
    let subject = format!("00u{i:017}");
    let name = sso_user_name(CONFIG, "okta", ISSUER, &subject);
    let now = Time(jiff::Timestamp::now());
    let managed = |manager: &str, operation: &str, subresource: Option<&str>| ManagedFieldsEntry {
        api_version: Some("gatehouse.dev/v1alpha1".into()),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
            serde_json::json!({"f:status": {"f:email": {}, "f:name": {}, "f:role": {}, "f:org": {},
                "f:issuer": {}, "f:attributes": {"f:department": {}}, "f:lastLogin": {},
                "f:loginCount": {}, "f:preferredUsername": {}}}),
        )),
        manager: Some(manager.into()),
        operation: Some(operation.into()),
        subresource: subresource.map(Into::into),
        time: Some(now.clone()),
    };
    SsoUser {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(NAMESPACE.into()),
            uid: Some(format!("0b6c2f9e-{:04x}-4a7b-8c1d-{i:012x}", i % 65536)),
            resource_version: Some(format!("{}", 100_000 + i)),
            generation: Some(1),
            creation_timestamp: Some(now.clone()),
            labels: Some(BTreeMap::from([
                ("gatehouse.dev/source".into(), "sso".into()),
                ("gatehouse.dev/config".into(), CONFIG.into()),
                ("gatehouse.dev/provider".into(), "okta".into()),
            ])),
            managed_fields: Some(vec![
                managed("gatehouse-sidecar", "Update", None),
                managed("gatehouse-sidecar", "Apply", Some("status")),
            ]),
            ..ObjectMeta::default()
        },
        spec: SsoUserSpec {
            config: CONFIG.into(),
            provider: "okta".into(),
            subject: subject.clone(),
            suspended: None,
            sessions_not_before: None,
            scim: None,
        },
        status: Some(SsoUserStatus {
            email: Some(format!("user{i}@acme.example")),
            name: Some(format!("User {i}")),
            preferred_username: Some(format!("user{i}")),
            role: Some("member".into()),
            org: Some("acme-portal".into()),
            issuer: Some(ISSUER.into()),
            attributes: BTreeMap::from([("department".into(), "R&D".into())]),
            last_login: Some(now),
            login_count: Some(7),
            ..SsoUserStatus::default()
        }),
    }
}

/// The JSON of one page of the list of SsoUsers (users `range`), as the API server sends it;
/// written one user at a time, so that the bench's own part adds little to the process's memory.
fn list_page(range: std::ops::Range<usize>) -> Result<Vec<u8>> {
    let mut page = Vec::with_capacity(range.len() * 2048);
    page.extend_from_slice(
        br#"{"apiVersion":"gatehouse.dev/v1alpha1","kind":"SsoUserList","metadata":{"resourceVersion":"200000"},"items":["#,
    );
    for (n, i) in range.enumerate() {
        if n > 0 {
            page.push(b',');
        }
        serde_json::to_writer(&mut page, &user(i)).context("writing a page of the list")?;
    }
    page.extend_from_slice(b"]}");
    Ok(page)
}

/// Resident memory of this process, KiB.
fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS in /proc/self/status")
}

/// CPU time (user and system) of this process so far.
fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(") ").context("/proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .context("utime/stime in /proc/self/stat")
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let total = ticks(11)? + ticks(12)?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Ok(Duration::from_millis(total * 10))
}

/// The app: 200 and a short body to everything.
async fn serve_app() -> Result<std::net::SocketAddr> {
    let router = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        let _ = stream.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// Runs one measurement with `users` SsoUsers (at least 1) and `requests` requests.
pub async fn run(users: usize, requests: usize) -> Result<ScaleFigures> {
    let users = users.max(1);
    let app = serve_app().await?;
    let env: BTreeMap<&str, String> = BTreeMap::from([
        ("GATEHOUSE_PUBLIC_URL", "http://127.0.0.1".to_owned()),
        (
            "GATEHOUSE_LISTEN",
            format!("127.0.0.1:{}", crate::process::free_port()?),
        ),
        (
            "GATEHOUSE_ADMIN_LISTEN",
            format!("127.0.0.1:{}", crate::process::free_port()?),
        ),
        ("GATEHOUSE_UPSTREAM", format!("http://{app}")),
        ("GATEHOUSE_COOKIE_SECRET", crate::process::random_key_b64()?),
        ("GATEHOUSE_PROVISIONING", "kubernetes".to_owned()),
        ("GATEHOUSE_CONFIG", CONFIG.to_owned()),
        ("GATEHOUSE_NAMESPACE", NAMESPACE.to_owned()),
        ("OKTA_CLIENT_ID", "bench".to_owned()),
        ("OKTA_CLIENT_SECRET", "bench-secret-not-used".to_owned()),
        // Never reached: sessions are sealed here, no one signs in.
        ("OKTA_ISSUER", "http://127.0.0.1:9/".to_owned()),
        ("OKTA_ORG_ID", "acme-portal".to_owned()),
    ]);
    let config = gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned())
        .map_err(|e| anyhow::anyhow!("sidecar config: {e}"))?;
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<SsoUser>()
        .with_status_subresource::<SsoUser>()
        .build()
        .await
        .context("building the in-memory API")?;
    let mut sidecar = gatehouse_sidecar::start_with(
        config,
        gatehouse_sidecar::StartOptions {
            kube_client: Some(client),
            manual_user_watch: true,
        },
    )
    .await
    .context("starting the sidecar")?;
    let mut feeder = sidecar
        .take_user_feeder()
        .context("the sidecar's SsoUser cache feeder")?;
    let rss_started_kib = rss_kib()?;

    // The full list, page by page, as the watcher delivers it at start-up.
    let holder = user(users / 2);
    let mut ready = Duration::ZERO;
    let mut applying = Duration::ZERO;
    let started = Instant::now();
    feeder.apply_guarded(Ok(watcher::Event::Init));
    ready += started.elapsed();
    for first in (0..users).step_by(PAGE) {
        let page = list_page(first..users.min(first + PAGE))?;
        let delivered = Instant::now();
        let list: ObjectList<DeserializeGuard<SsoUser>> =
            serde_json::from_slice(&page).context("decoding a page of the list")?;
        let decoded = Instant::now();
        for item in list.items {
            feeder.apply_guarded(Ok(watcher::Event::InitApply(item)));
        }
        applying += decoded.elapsed();
        ready += delivered.elapsed();
    }
    let done = Instant::now();
    feeder.apply_guarded(Ok(watcher::Event::InitDone));
    applying += done.elapsed();
    ready += done.elapsed();
    let cache = sidecar
        .app()
        .directory
        .cache()
        .context("a Kubernetes directory")?;
    if cache.user_count() != users {
        bail!("the cache holds {} users, not {users}", cache.user_count());
    }
    let rss_filled_kib = rss_kib()?;

    // A session of one of them, sealed as sign-in seals it.
    let app_state = sidecar.app().clone();
    let now = gatehouse_auth::token::now_unix();
    let session = Session {
        sid: "scale-bench".into(),
        user: holder.metadata.name.clone().unwrap_or_default(),
        subject: holder.spec.subject.clone(),
        provider: "okta".into(),
        email: None,
        name: None,
        username: None,
        role: Role::Member,
        issued_at: now - 3600,
        expires_at: now + 3600,
        user_uid: holder.metadata.uid.clone(),
        idp_sid: None,
        validated_at: None,
        groups: Vec::new(),
        claims: None,
        facts: None,
        groups_unknown: false,
    };
    let cookie = format!(
        "{}={}",
        app_state.sessions.cookies.session,
        session.seal(&app_state.sessions.keys(), &app_state.sessions.binding)
    );
    let url = format!("http://{}/static", sidecar.addr());
    let http = crate::http_client()?;
    let get = || async {
        let res = http
            .get(&url)
            .header("cookie", &cookie)
            .header("accept", "application/json")
            .send()
            .await?;
        let status = res.status();
        let _ = res.bytes().await?;
        anyhow::Ok(status)
    };
    for _ in 0..requests / 10 + 1 {
        let status = get().await?;
        if status != reqwest::StatusCode::OK {
            bail!("the session was not admitted: {status}");
        }
    }
    let mut samples = Vec::with_capacity(requests);
    let cpu_before = cpu_time()?;
    for _ in 0..requests {
        let started = Instant::now();
        let status = get().await?;
        samples.push(started.elapsed());
        if status != reqwest::StatusCode::OK {
            bail!("a request was not admitted: {status}");
        }
    }
    let cpu = cpu_time()?.saturating_sub(cpu_before);
    let rss_after_requests_kib = rss_kib()?;
    sidecar.shutdown().await;
    Ok(ScaleFigures {
        users,
        rss_started_kib,
        rss_filled_kib,
        rss_after_requests_kib,
        ready_us: ready.as_secs_f64() * 1e6,
        apply_us: applying.as_secs_f64() * 1e6,
        request: Spread::of(samples),
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
    })
}
