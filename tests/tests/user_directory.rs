//! The user directory end to end (hardening #7 and #13): the sidecar in process on the in-memory
//! Kubernetes API (kube-fake-client), signing in through the real fixture OIDC provider.
//!
//! - A user whose `gatehouse.dev/config` label was removed is, for that config, deleted: a
//!   replica whose watch does not hold the user (its deletion record long gone) reads it on the
//!   miss and must refuse it by the watch's own selector.
//! - A re-validation at the IdP moves the SsoUser's `status.lastVouched`, which
//!   `deleteAfterInactive` counts from, and leaves the sign-in record alone.

use std::time::{Duration, Instant};

use gatehouse_crds::SsoUser;
use gatehouse_crds::consts::LABEL_CONFIG;
use gatehouse_tests::kube_stack::{KubeOptions, KubeStack};
use gatehouse_tests::parse_metrics;
use gatehouse_tests::stack::ProviderKind;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use serde_json::json;

/// How long a poll waits for something the sidecar does in the background.
const POLL_LIMIT: Duration = Duration::from_secs(10);

async fn only_user(stack: &KubeStack) -> SsoUser {
    let users = stack.all_users().await.expect("list");
    assert_eq!(users.len(), 1, "one SsoUser: {users:?}");
    users.into_iter().next().expect("one")
}

#[tokio::test]
async fn a_user_without_the_configs_label_is_refused_by_the_read_on_another_replica() {
    let mut stack = KubeStack::start(KubeOptions::default())
        .await
        .expect("stack");
    stack.sync().await.expect("sync");
    // Replica 2's watch has delivered nothing about the user (or delivered its leaving the
    // selection more than 30 s ago: the same state).
    let mut replica = stack.start_replica().await.expect("replica");
    replica.sync().await.expect("sync");

    let session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    let name = only_user(&stack)
        .await
        .metadata
        .name
        .expect("the SsoUser has a name");
    assert!(stack.reaches_app(&session).await.expect("request"));

    // Someone takes the user out of the config: the label goes.
    stack
        .users
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { LABEL_CONFIG: null } } })),
        )
        .await
        .expect("label removed");
    // The session is a few seconds old: replica 2 reads the SsoUser on its miss. It exists, but
    // the watch would never select it: refused, as a deletion.
    assert!(
        !replica.reaches_app(&session).await.expect("request"),
        "a user outside the config's label selector was admitted by the read on a miss"
    );
    let metrics = parse_metrics(&replica.metrics().await.expect("metrics"));
    assert_eq!(
        metrics
            .get("gatehouse_user_reads_total{outcome=\"found\"}")
            .copied(),
        Some(1.0),
        "the refusal came from a read that found the object: {metrics:?}"
    );
    assert!(
        metrics
            .get("gatehouse_sessions_refused_total{reason=\"user_deleted\"}")
            .is_some_and(|n| *n >= 1.0),
        "refused as deleted: {metrics:?}"
    );
}

#[tokio::test]
async fn a_revalidation_moves_last_vouched_and_leaves_the_sign_in_record() {
    let mut stack = KubeStack::start(KubeOptions {
        revalidate: Some(("1s", "1h")),
        ..KubeOptions::default()
    })
    .await
    .expect("stack");
    stack.sync().await.expect("sync");
    let mut session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    let user = only_user(&stack).await;
    let name = user.metadata.name.clone().expect("name");
    let status = user.status.expect("status");
    assert!(
        status.last_vouched.is_some() && status.last_vouched == status.last_login,
        "a sign-in is the IdP vouching: {status:?}"
    );

    // The sign-in was two days ago, as far as the SsoUser says.
    let two_days_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    let two_days_ago = Time(jiff::Timestamp::from_second(two_days_ago.as_second()).expect("t"));
    stack
        .users
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "lastLogin": two_days_ago, "lastVouched": two_days_ago,
            } })),
        )
        .await
        .expect("backdated");
    stack.deliver_current(&name).await.expect("deliver");

    // Due after a second; the next requests start the re-validation, and the IdP vouches.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let deadline = Instant::now() + POLL_LIMIT;
    let status = loop {
        let answer = stack.get(&session, "/dashboard").await.expect("request");
        session.apply_set_cookies(&answer.headers);
        let status = stack
            .users
            .get(&name)
            .await
            .expect("read")
            .status
            .unwrap_or_default();
        if status.last_vouched != Some(two_days_ago.clone()) {
            break status;
        }
        if Instant::now() >= deadline {
            let metrics = stack.metrics().await.unwrap_or_default();
            panic!("lastVouched did not move within {POLL_LIMIT:?}; metrics:\n{metrics}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let vouched = status.last_vouched.expect("lastVouched");
    assert!(
        jiff::Timestamp::now().duration_since(vouched.0) < jiff::SignedDuration::from_secs(60),
        "moved to the re-validation's time: {}",
        vouched.0
    );
    assert_eq!(
        status.last_login,
        Some(two_days_ago),
        "a re-validation is no sign-in"
    );
    assert_eq!(status.login_count, Some(1));
}
