//! Leader election against an in-memory API: one holder at a time, takeover only after the
//! holder stopped renewing for a whole lease duration, and a 409 never makes two leaders.
//! Contention between real processes on a real API server is in `tests/cluster.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gatehouse_operator::leader::{LeaderLease, Timings};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::{Api, Client};
use kube_fake_client::{ClientBuilder, interceptor};

const NS: &str = "gatehouse-system";

fn lease(client: &Client, identity: &str) -> LeaderLease {
    LeaderLease::new(
        Api::namespaced(client.clone(), NS),
        "gatehouse-operator",
        identity,
        Timings::default(),
    )
}

async fn holder(client: &Client) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NS);
    api.get("gatehouse-operator")
        .await
        .expect("lease")
        .spec
        .and_then(|s| s.holder_identity)
}

fn at(t0: Timestamp, secs: i64) -> Timestamp {
    t0 + SignedDuration::from_secs(secs)
}

#[tokio::test]
async fn one_holder_and_takeover_only_after_expiry() {
    let client = ClientBuilder::new().build().await.expect("fake client");
    let (a, b) = (lease(&client, "replica-a"), lease(&client, "replica-b"));
    let t0 = Timestamp::now();

    assert!(
        a.try_acquire_or_renew(t0).await.expect("a"),
        "a creates the Lease"
    );
    assert!(!b.try_acquire_or_renew(t0).await.expect("b"), "b waits");
    assert!(a.try_acquire_or_renew(at(t0, 2)).await.expect("a renews"));
    assert_eq!(holder(&client).await.as_deref(), Some("replica-a"));

    // b keeps seeing a's renewals: never expired.
    for s in [4, 8, 12, 16, 20] {
        assert!(a.try_acquire_or_renew(at(t0, s)).await.expect("a renews"));
        assert!(
            !b.try_acquire_or_renew(at(t0, s + 1)).await.expect("b"),
            "t+{s}"
        );
    }

    // a stops renewing (crashed): b waits a full lease duration from the last change it saw.
    assert!(
        !b.try_acquire_or_renew(at(t0, 30)).await.expect("b"),
        "9s after b last saw a renewal"
    );
    assert!(
        b.try_acquire_or_renew(at(t0, 37)).await.expect("b"),
        "16s after: takeover"
    );
    assert_eq!(holder(&client).await.as_deref(), Some("replica-b"));
    let api: Api<Lease> = Api::namespaced(client.clone(), NS);
    let spec = api
        .get("gatehouse-operator")
        .await
        .expect("lease")
        .spec
        .expect("spec");
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(15));

    // a comes back: it is no longer the leader.
    assert!(!a.try_acquire_or_renew(at(t0, 38)).await.expect("a"));

    // b releases on shutdown: a takes over at once.
    b.release().await.expect("release");
    assert_eq!(holder(&client).await, None);
    assert!(a.try_acquire_or_renew(at(t0, 39)).await.expect("a"));
    assert_eq!(holder(&client).await.as_deref(), Some("replica-a"));
}

#[tokio::test]
async fn a_conflicting_write_loses() {
    let conflict = Arc::new(AtomicBool::new(false));
    let flag = conflict.clone();
    let client = ClientBuilder::new()
        .with_interceptor_funcs(interceptor::Funcs::new().replace(move |_| {
            if flag.load(Ordering::SeqCst) {
                return Err(kube_fake_client::Error::Conflict("modified".into()));
            }
            Ok(None)
        }))
        .build()
        .await
        .expect("fake client");
    let (a, b) = (lease(&client, "replica-a"), lease(&client, "replica-b"));
    let t0 = Timestamp::now();
    assert!(a.try_acquire_or_renew(t0).await.expect("a"));
    assert!(!b.try_acquire_or_renew(t0).await.expect("b observes"));
    // The Lease expired for b, but another writer updates it first: b gets a 409 and does not lead.
    conflict.store(true, Ordering::SeqCst);
    assert!(!b.try_acquire_or_renew(at(t0, 20)).await.expect("b"));
    assert_eq!(holder(&client).await.as_deref(), Some("replica-a"));
}
