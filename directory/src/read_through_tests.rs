//! Two replicas sharing one in-memory API (kube-fake-client): replica A provisions, replica B's
//! watch has not delivered the new SsoUser yet, and B settles its miss by a read.

use super::*;

use std::collections::BTreeMap;

use gatehouse_crds::names::sso_user_name;
use gatehouse_crds::{ProvisioningMode, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::watcher;

use crate::kubernetes::{Provisioner, UserCacheFeeder};
use gatehouse_auth::signin::{Occasion, SignedInUser};

const NS: &str = "team-a";
const CONFIG: &str = "portal";
const ISSUER: &str = "https://acme.okta.com";

fn ada() -> SignedInUser {
    SignedInUser {
        user: sso_user_name(CONFIG, "okta", ISSUER, "00u1ada"),
        provider: "okta".into(),
        issuer: ISSUER.into(),
        subject: "00u1ada".into(),
        email: Some("ada@acme.example".into()),
        name: None,
        preferred_username: None,
        role: Role::Member.as_str(),
        org: "acme".into(),
        groups: Vec::new(),
        attributes: BTreeMap::new(),
        groups_unknown: false,
        occasion: Occasion::SignIn,
    }
}

fn just_now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Replica A's provisioner and replica B's synced (empty) cache with its read-through, over one
/// in-memory API.
struct Replicas {
    a: Provisioner,
    b_cache: UserCache,
    b_feeder: UserCacheFeeder,
    b: ReadThrough,
    api: Api<SsoUser>,
}

async fn replicas() -> Replicas {
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<SsoUser>()
        .with_status_subresource::<SsoUser>()
        .build()
        .await
        .expect("fake client builds");
    let api: Api<SsoUser> = Api::namespaced(client, NS);
    let staleness = Duration::from_secs(300);
    let (a_cache, _a_feeder) = UserCache::new(NS, CONFIG, staleness);
    let a = Provisioner::new(api.clone(), CONFIG, ProvisioningMode::Jit, a_cache);
    let (b_cache, mut b_feeder) = UserCache::new(NS, CONFIG, staleness);
    b_feeder.apply(Ok(watcher::Event::Init));
    b_feeder.apply(Ok(watcher::Event::InitDone));
    let b = ReadThrough::new(api.clone(), b_cache.clone(), ReadLimits::default());
    Replicas {
        a,
        b_cache,
        b_feeder,
        b,
        api,
    }
}

/// Signs Ada in on replica A; her SsoUser's name and UID.
async fn provisioned_on_a(r: &Replicas) -> (String, String) {
    let done = r.a.provision(&ada()).await.expect("provisioned on A");
    (done.name, done.uid)
}

#[tokio::test]
async fn a_user_provisioned_on_another_replica_is_admitted_after_one_read() {
    let r = replicas().await;
    let (name, uid) = provisioned_on_a(&r).await;
    let started = just_now();
    assert_eq!(
        r.b_cache.check(&name, &uid, started),
        Err(SessionRefusal::Deleted),
        "B's watch does not hold the new user: a miss"
    );
    assert!(r.b.may_read(
        SessionRefusal::Deleted,
        started.as_second(),
        started.as_second()
    ));
    assert_eq!(
        r.b.confirm(&name, &uid, started, SessionIds::default())
            .await,
        Confirmation {
            verdict: Ok(()),
            read: Some(ReadOutcome::Found),
        }
    );
    // Kept: the next requests pass from the cache, without a read.
    assert_eq!(r.b_cache.check(&name, &uid, started), Ok(()));
}

#[tokio::test]
async fn a_deleted_user_is_refused_by_the_read() {
    let r = replicas().await;
    let (name, uid) = provisioned_on_a(&r).await;
    r.api
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleted");
    assert_eq!(
        r.b.confirm(&name, &uid, just_now(), SessionIds::default())
            .await,
        Confirmation {
            verdict: Err(SessionRefusal::Deleted),
            read: Some(ReadOutcome::NotFound),
        }
    );
    assert_eq!(
        r.b_cache.check(&name, &uid, just_now()),
        Err(SessionRefusal::Deleted),
        "nothing remembered"
    );
}

#[tokio::test]
async fn a_suspended_user_is_refused_by_the_read() {
    let r = replicas().await;
    let (name, uid) = provisioned_on_a(&r).await;
    r.api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "suspended": true } })),
        )
        .await
        .expect("suspended");
    let got =
        r.b.confirm(&name, &uid, just_now(), SessionIds::default())
            .await;
    assert_eq!(got.verdict, Err(SessionRefusal::Suspended));
    assert_eq!(
        r.b_cache.check(&name, &uid, just_now()),
        Err(SessionRefusal::Deleted),
        "a refused user is not remembered"
    );
}

#[tokio::test]
async fn sessions_before_sessions_not_before_are_refused_by_the_read() {
    let r = replicas().await;
    let (name, uid) = provisioned_on_a(&r).await;
    let started = just_now() - jiff::SignedDuration::from_secs(10);
    r.api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": {
                "sessionsNotBefore": Time(just_now())
            } })),
        )
        .await
        .expect("revoked");
    let got =
        r.b.confirm(&name, &uid, started, SessionIds::default())
            .await;
    assert_eq!(got.verdict, Err(SessionRefusal::SessionsRevoked));
}

#[tokio::test]
async fn a_user_re_created_under_the_same_name_does_not_admit_the_old_uid() {
    let r = replicas().await;
    let (name, old_uid) = provisioned_on_a(&r).await;
    r.api
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleted");
    let (again, new_uid) = provisioned_on_a(&r).await;
    assert_eq!(again, name);
    assert_ne!(new_uid, old_uid, "the in-memory API gives a new UID");
    let got =
        r.b.confirm(&name, &old_uid, just_now(), SessionIds::default())
            .await;
    assert_eq!(got.verdict, Err(SessionRefusal::Replaced));
    let got =
        r.b.confirm(&name, &new_uid, just_now(), SessionIds::default())
            .await;
    assert_eq!(got.verdict, Ok(()), "the new object's own sessions pass");
}

#[tokio::test]
async fn a_deletion_the_watch_delivered_wins_over_a_read_that_raced_it() {
    let mut r = replicas().await;
    let (name, uid) = provisioned_on_a(&r).await;
    // B's watch delivers the object and its deletion while the API (as the read saw it a moment
    // before) still returned it.
    let user = r.api.get(&name).await.expect("exists");
    r.b_feeder.apply(Ok(watcher::Event::Apply(user.clone())));
    r.b_feeder.apply(Ok(watcher::Event::Delete(user)));
    let got =
        r.b.confirm(&name, &uid, just_now(), SessionIds::default())
            .await;
    assert_eq!(got.read, Some(ReadOutcome::Found));
    assert_eq!(got.verdict, Err(SessionRefusal::Deleted));
    assert_eq!(
        r.b_cache.check(&name, &uid, just_now()),
        Err(SessionRefusal::Deleted)
    );
}

/// The watch selects `gatehouse.dev/config=<config>`, and removing the label ends the user's
/// sessions like a deletion. Once the watch's record of that deletion has expired (30 s), a miss
/// for a session under 2 minutes old is read; the read must judge by the same selector, or it
/// would admit the user again.
#[tokio::test]
async fn a_user_outside_the_configs_label_selector_is_refused_by_the_read_as_deleted() {
    let r = replicas().await;
    let (name, uid) = provisioned_on_a(&r).await;
    for label in [serde_json::Value::Null, serde_json::json!("other-app")] {
        let changed = r
            .api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "metadata": { "labels": {
                    gatehouse_crds::consts::LABEL_CONFIG: label
                } } })),
            )
            .await
            .expect("label changed");
        assert_eq!(changed.metadata.uid.as_deref(), Some(uid.as_str()));
        // B's watch holds no record of the user (it left the selection over 30 s ago).
        let got =
            r.b.confirm(&name, &uid, just_now(), SessionIds::default())
                .await;
        assert_eq!(
            got,
            Confirmation {
                verdict: Err(SessionRefusal::Deleted),
                read: Some(ReadOutcome::Found),
            },
            "label {label}: for this config, a user outside its selector is deleted"
        );
        assert_eq!(
            r.b_cache.check(&name, &uid, just_now()),
            Err(SessionRefusal::Deleted),
            "label {label}: nothing remembered"
        );
    }
}

#[tokio::test]
async fn a_user_of_another_config_is_not_admitted_by_the_read() {
    let r = replicas().await;
    let (name, uid) = provisioned_on_a(&r).await;
    let (other_cache, _feeder) = UserCache::new(NS, "other-app", Duration::from_secs(300));
    let other = ReadThrough::new(r.api.clone(), other_cache, ReadLimits::default());
    let got = other
        .confirm(&name, &uid, just_now(), SessionIds::default())
        .await;
    assert_eq!(got.verdict, Err(SessionRefusal::Replaced));
}

#[tokio::test]
async fn only_misses_of_new_sessions_are_read() {
    let (cache, _feeder) = UserCache::new(NS, CONFIG, Duration::from_secs(300));
    let client = kube::Client::new(
        tower::service_fn(|_: http::Request<kube::client::Body>| async {
            Err::<http::Response<kube::client::Body>, tower::BoxError>("no API in this test".into())
        }),
        NS,
    );
    let limits = ReadLimits::default();
    let reads = ReadThrough::new(Api::namespaced(client, NS), cache, limits);
    let now = 1_800_000_000;
    let window = i64::try_from(limits.fresh_session.as_secs()).expect("small");
    assert!(reads.may_read(SessionRefusal::Deleted, now, now));
    assert!(reads.may_read(SessionRefusal::NotSynced, now - window, now));
    assert!(
        !reads.may_read(SessionRefusal::Deleted, now - window - 1, now),
        "an old session: the watch is the authority"
    );
    assert!(
        !reads.may_read(SessionRefusal::Deleted, now + window + 1, now),
        "a session from the future"
    );
    for settled in [
        SessionRefusal::Replaced,
        SessionRefusal::Suspended,
        SessionRefusal::SessionsRevoked,
        SessionRefusal::Stale,
        SessionRefusal::Undecodable,
        SessionRefusal::Unconfirmed,
    ] {
        assert!(!reads.may_read(settled, now, now), "{settled:?} is no miss");
    }
}

#[test]
fn the_token_bucket_allows_its_burst_then_its_rate() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(3, 2, t0);
    assert!((0..3).all(|_| bucket.take(t0)), "the burst");
    assert!(!bucket.take(t0), "then nothing at once");
    let half = t0 + Duration::from_millis(500);
    assert!(bucket.take(half), "one more after half a second at 2/s");
    assert!(!bucket.take(half));
    let much_later = t0 + Duration::from_secs(3600);
    assert_eq!(
        (0..10).filter(|_| bucket.take(much_later)).count(),
        3,
        "refilled to the burst, no further"
    );
}
