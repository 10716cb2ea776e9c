//! Issue 4 end to end: just-in-time provisioning, attribute sync on every sign-in, and instant
//! deprovisioning — the sidecar in process on the in-memory Kubernetes API (kube-fake-client),
//! signing in through the real fixture OIDC provider.
//!
//! The in-memory API has no streaming watch: each test delivers the watch events itself
//! (`KubeStack::sync` for a full list, `deliver` for one event), which is the path a real watch
//! takes into the sidecar's cache.

use std::time::Duration;

use anyhow::Result;
use gatehouse_crds::consts::{LABEL_CONFIG, LABEL_PROVIDER, LABEL_SOURCE, SOURCE_SSO};
use gatehouse_crds::names::{legacy_sso_user_name, sso_user_name};
use gatehouse_crds::{SsoUser, SsoUserSpec};
use gatehouse_tests::ProviderKind;
use gatehouse_tests::kube_stack::{CONFIG, KubeOptions, KubeStack, NAMESPACE};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use reqwest::StatusCode;
use serde_json::json;

const OKTA_ADA_SUB: &str = "00u1ada0000000000001";
const OKTA_BOB_SUB: &str = "00u1bob0000000000002";

fn okta_user(stack: &KubeStack, subject: &str) -> String {
    sso_user_name(CONFIG, "okta", &stack.idp.okta_issuer, subject)
}

/// Polls until `check` holds (background work such as Events), for at most 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    for _ in 0..200 {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{what}: not within 10 s")
}

async fn event_reasons(stack: &KubeStack, user: &str) -> Result<Vec<String>> {
    Ok(stack
        .events()
        .await?
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(user))
        .filter_map(|e| e.reason)
        .collect())
}

fn declared(stack: &KubeStack, subject: &str, suspended: bool) -> SsoUser {
    SsoUser {
        metadata: ObjectMeta {
            name: Some(okta_user(stack, subject)),
            namespace: Some(NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        spec: SsoUserSpec {
            config: CONFIG.into(),
            provider: "okta".into(),
            subject: subject.into(),
            suspended: Some(suspended),
            sessions_not_before: None,
            scim: None,
        },
        status: None,
    }
}

#[tokio::test]
async fn first_sign_in_creates_the_user_with_every_label_and_status_field() -> Result<()> {
    let stack = KubeStack::start(KubeOptions::default()).await?;
    let session = stack.sign_in(ProviderKind::Okta, "ada").await?;

    // Not in this replica's watch cache yet (the watch has not even synced): read-your-write
    // admits the session this replica just created.
    assert!(
        stack.reaches_app(&session).await?,
        "a just-created user is not refused"
    );

    let users = stack.all_users().await?;
    assert_eq!(users.len(), 1);
    let user = &users[0];
    let name = okta_user(&stack, OKTA_ADA_SUB);
    assert_eq!(user.metadata.name.as_deref(), Some(name.as_str()));
    let labels = user.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(LABEL_SOURCE).map(String::as_str),
        Some(SOURCE_SSO)
    );
    assert_eq!(labels.get(LABEL_CONFIG).map(String::as_str), Some(CONFIG));
    assert_eq!(labels.get(LABEL_PROVIDER).map(String::as_str), Some("okta"));
    assert_eq!(user.spec.subject, OKTA_ADA_SUB);
    assert_eq!(user.spec.config, CONFIG);
    let status = user.status.clone().expect("status written at sign-in");
    assert_eq!(status.email.as_deref(), Some("ada@example.com"));
    assert_eq!(status.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(status.role.as_deref(), Some("admin"));
    assert_eq!(status.org.as_deref(), Some("e2e-org"));
    assert_eq!(
        status.issuer.as_deref(),
        Some(stack.idp.okta_issuer.as_str())
    );
    assert_eq!(
        status.attributes.get("department").map(String::as_str),
        Some("Analytical Engines")
    );
    assert_eq!(status.login_count, Some(1));
    let last_login = status.last_login.expect("lastLogin").0;
    assert!(
        (jiff::Timestamp::now() - last_login).get_seconds().abs() < 60,
        "lastLogin is this sign-in"
    );

    // The session is bound to this object's UID, and its identity is the SsoUser name.
    let me: serde_json::Value =
        serde_json::from_str(&stack.get(&session, "/api/auth/session").await?.body)?;
    assert_eq!(me["user"]["id"], json!(name));

    eventually("a Provisioned Event on the SsoUser", || async {
        Ok(event_reasons(&stack, &name)
            .await?
            .contains(&"Provisioned".to_owned()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn every_sign_in_rewrites_status_and_a_role_change_is_an_event() -> Result<()> {
    let stack = KubeStack::start(KubeOptions::default()).await?;
    stack.sign_in(ProviderKind::Okta, "bob").await?;
    let name = okta_user(&stack, OKTA_BOB_SUB);
    let first = stack.users.get(&name).await?;
    assert_eq!(
        first.status.as_ref().and_then(|s| s.role.as_deref()),
        Some("member")
    );

    // The IdP changes Bob's name, role and department.
    stack
        .idp
        .set_claims(
            "okta",
            "bob",
            &json!({ "name": "Robert Builder", "user_type": null, "userType": "admin", "department": "Bridges" }),
        )
        .await?;
    stack.sign_in(ProviderKind::Okta, "bob").await?;

    let second = stack.users.get(&name).await?;
    assert_eq!(second.metadata.uid, first.metadata.uid, "the same object");
    let status = second.status.expect("status");
    assert_eq!(status.name.as_deref(), Some("Robert Builder"));
    assert_eq!(status.role.as_deref(), Some("admin"));
    assert_eq!(
        status.attributes.get("department").map(String::as_str),
        Some("Bridges")
    );
    assert_eq!(status.login_count, Some(2));

    eventually("a RoleChanged Event", || async {
        Ok(event_reasons(&stack, &name)
            .await?
            .contains(&"RoleChanged".to_owned()))
    })
    .await?;
    // A third sign-in with no change records no further Event.
    stack.sign_in(ProviderKind::Okta, "bob").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reasons = event_reasons(&stack, &name).await?;
    assert_eq!(
        reasons.iter().filter(|r| *r == "RoleChanged").count(),
        1,
        "no Event on an ordinary sign-in: {reasons:?}"
    );
    Ok(())
}

#[tokio::test]
async fn fifty_concurrent_first_sign_ins_make_one_user() -> Result<()> {
    let stack = KubeStack::start(KubeOptions::default()).await?;
    // Fifty browsers authenticate at the IdP; then all fifty callbacks land at once.
    let mut flows = Vec::new();
    for _ in 0..50 {
        let flow = gatehouse_tests::flow::LoginFlow::start_at(
            &stack.url(""),
            ProviderKind::Okta,
            Some("/"),
        )
        .await?;
        let callback = flow
            .authenticate("ada", gatehouse_tests::idp::PASSWORD)
            .await?;
        flows.push((flow, callback));
    }
    let callbacks = flows.iter().map(|(flow, url)| flow.finish(url.clone()));
    let attempts = futures::future::join_all(callbacks).await;
    for attempt in attempts {
        let attempt = attempt?;
        assert!(
            attempt.session.is_some(),
            "every concurrent sign-in succeeds: {} {}",
            attempt.callback.status,
            attempt.callback.body.chars().take(300).collect::<String>()
        );
    }
    let users = stack.all_users().await?;
    assert_eq!(users.len(), 1, "exactly one SsoUser");
    assert_eq!(
        users[0].status.as_ref().and_then(|s| s.login_count),
        Some(50),
        "every login counted"
    );
    Ok(())
}

#[tokio::test]
async fn suspension_deletion_and_revocation_end_sessions_at_once() -> Result<()> {
    let mut stack = KubeStack::start(KubeOptions::default()).await?;
    let ada = stack.sign_in(ProviderKind::Okta, "ada").await?;
    let bob = stack.sign_in(ProviderKind::Okta, "bob").await?;
    stack.sync().await?;
    assert!(stack.reaches_app(&ada).await? && stack.reaches_app(&bob).await?);
    let ada_name = okta_user(&stack, OKTA_ADA_SUB);
    let bob_name = okta_user(&stack, OKTA_BOB_SUB);

    // Suspend Ada: the watch event alone refuses her session; Bob is unaffected.
    let suspended = stack
        .users
        .patch(
            &ada_name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "suspended": true } })),
        )
        .await?;
    stack.deliver(Ok(watcher::Event::Apply(suspended)));
    let refused = stack.get(&ada, "/dashboard").await?;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "suspended user's session refused"
    );
    assert!(stack.reaches_app(&bob).await?);
    // …and she cannot sign in again while suspended: a clear page, nothing issued.
    let attempt = stack.attempt(ProviderKind::Okta, "ada").await?;
    assert_eq!(attempt.callback.status, StatusCode::FORBIDDEN);
    assert!(
        attempt.callback.body.contains("suspended"),
        "{}",
        attempt.callback.body
    );
    assert!(attempt.session.is_none());

    // Delete Bob: refused on the next request after the event reaches the cache.
    let bob_object = stack.users.get(&bob_name).await?;
    stack
        .users
        .delete(&bob_name, &DeleteParams::default())
        .await?;
    stack.deliver(Ok(watcher::Event::Delete(bob_object.clone())));
    assert_eq!(
        stack.get(&bob, "/dashboard").await?.status,
        StatusCode::UNAUTHORIZED
    );

    // Bob signs in again: a new SsoUser under the same name, with a new UID. His old cookie
    // stays dead; the new one works.
    let bob_again = stack.sign_in(ProviderKind::Okta, "bob").await?;
    let recreated = stack.users.get(&bob_name).await?;
    assert_ne!(recreated.metadata.uid, bob_object.metadata.uid);
    stack.deliver(Ok(watcher::Event::Apply(recreated)));
    assert!(stack.reaches_app(&bob_again).await?);
    assert_eq!(
        stack.get(&bob, "/dashboard").await?.status,
        StatusCode::UNAUTHORIZED,
        "a re-created same-name user does not revive old cookies"
    );

    // sessionsNotBefore past a session's start refuses it; a later sign-in works.
    let cutoff = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let revoked = stack
        .users
        .patch(
            &bob_name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "sessionsNotBefore": cutoff.to_string() } })),
        )
        .await?;
    stack.deliver(Ok(watcher::Event::Apply(revoked)));
    assert_eq!(
        stack.get(&bob_again, "/dashboard").await?.status,
        StatusCode::UNAUTHORIZED
    );
    let fresh = stack.sign_in(ProviderKind::Okta, "bob").await?;
    assert!(
        stack.reaches_app(&fresh).await?,
        "a session started after the cutoff works"
    );

    let metrics = stack.metrics().await?;
    for reason in [
        "user_suspended",
        "user_deleted",
        "user_replaced",
        "sessions_revoked",
    ] {
        assert!(
            metrics.contains(&format!(
                "gatehouse_sessions_refused_total{{reason=\"{reason}\"}}"
            )),
            "refusals counted by reason ({reason}):\n{metrics}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn api_outage_fails_new_sign_ins_but_existing_sessions_continue() -> Result<()> {
    let mut stack = KubeStack::start(KubeOptions::default()).await?;
    let ada = stack.sign_in(ProviderKind::Okta, "ada").await?;
    stack.sync().await?;

    stack.set_api_down(true);
    stack.deliver(Err(watcher::Error::NoResourceVersion));
    assert!(
        stack.reaches_app(&ada).await?,
        "existing sessions keep working during an outage"
    );

    let attempt = stack.attempt(ProviderKind::Okta, "bob").await?;
    assert_eq!(attempt.callback.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        attempt.callback.body.contains("temporarily unavailable"),
        "{}",
        attempt.callback.body
    );
    assert!(attempt.session.is_none(), "no session without an SsoUser");

    stack.set_api_down(false);
    let users = stack.all_users().await?;
    assert_eq!(users.len(), 1, "Bob was not provisioned: {users:?}");
    let metrics = stack.metrics().await?;
    assert!(
        metrics.contains("gatehouse_sign_in_denials_total{reason=\"directory_unavailable\"} 1"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn a_watch_broken_past_the_staleness_limit_refuses_sessions_and_readiness() -> Result<()> {
    let mut stack = KubeStack::start(KubeOptions {
        staleness: "1s",
        ..KubeOptions::default()
    })
    .await?;
    let (status, body) = stack.readyz().await?;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready before the first list"
    );
    assert!(body.contains("not synced"), "{body}");

    let ada = stack.sign_in(ProviderKind::Okta, "ada").await?;
    stack.sync().await?;
    assert_eq!(stack.readyz().await?.0, StatusCode::OK);

    stack.deliver(Err(watcher::Error::NoResourceVersion));
    assert!(
        stack.reaches_app(&ada).await?,
        "within the limit the session still works"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        stack.get(&ada, "/dashboard").await?.status,
        StatusCode::UNAUTHORIZED,
        "past the limit every session is refused"
    );
    let (status, body) = stack.readyz().await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("GATEHOUSE_REVOCATION_STALENESS"), "{body}");
    let metrics = stack.metrics().await?;
    let broken: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_user_watch_broken_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .expect("staleness metric");
    assert!(broken >= 1.0, "{metrics}");
    assert!(metrics.contains("gatehouse_sessions_refused_total{reason=\"revocation_stale\"}"));

    // The watch recovers: sessions and readiness come back.
    stack.sync().await?;
    assert!(stack.reaches_app(&ada).await?);
    assert_eq!(stack.readyz().await?.0, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_failing_hook_fails_the_sign_in_and_leaves_nothing_behind() -> Result<()> {
    let stack = KubeStack::start(KubeOptions {
        hook: true,
        ..KubeOptions::default()
    })
    .await?;
    stack
        .app
        .hook_fails
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let attempt = stack.attempt(ProviderKind::Okta, "ada").await?;
    assert_eq!(attempt.callback.status, StatusCode::BAD_GATEWAY);
    assert!(
        attempt
            .callback
            .body
            .contains("could not set up your account"),
        "{}",
        attempt.callback.body
    );
    assert!(attempt.session.is_none());
    assert!(
        stack.all_users().await?.is_empty(),
        "no SsoUser after a failed hook"
    );
    assert_eq!(stack.app.hook_calls.lock().expect("lock").len(), 1);

    stack
        .app
        .hook_fails
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let session = stack.sign_in(ProviderKind::Okta, "ada").await?;
    assert!(stack.reaches_app(&session).await?);
    assert_eq!(stack.all_users().await?.len(), 1);
    let calls = stack.app.hook_calls.lock().expect("lock").clone();
    let last = calls.last().expect("hook called");
    assert_eq!(last["email"], json!("ada@example.com"));
    assert_eq!(last["role"], json!("admin"));
    assert_eq!(last["user"], json!(okta_user(&stack, OKTA_ADA_SUB)));
    assert_eq!(
        last["attributes"]["department"],
        json!("Analytical Engines")
    );
    Ok(())
}

#[tokio::test]
async fn pre_declared_mode_admits_declared_users_only_and_keeps_their_spec() -> Result<()> {
    // The names depend on the IdP's issuer URL, known once it runs: start, then declare.
    let stack = KubeStack::start(KubeOptions {
        mode: "preDeclared",
        hook: true,
        ..KubeOptions::default()
    })
    .await?;
    let ada = declared(&stack, OKTA_ADA_SUB, false);
    let bob = declared(&stack, OKTA_BOB_SUB, true);
    stack.users.create(&Default::default(), &ada).await?;
    stack.users.create(&Default::default(), &bob).await?;

    let session = stack.sign_in(ProviderKind::Okta, "ada").await?;
    assert!(stack.reaches_app(&session).await?);
    let stored = stack.users.get(&okta_user(&stack, OKTA_ADA_SUB)).await?;
    assert_eq!(
        stored.spec.suspended,
        Some(false),
        "the declared spec is untouched"
    );
    assert!(
        !stored
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(LABEL_SOURCE),
        "a declared user is not re-labelled as created at sign-in"
    );
    assert_eq!(stored.status.and_then(|s| s.role).as_deref(), Some("admin"));

    let calls_before = stack.app.hook_calls.lock().expect("lock").len();
    let suspended = stack.attempt(ProviderKind::Okta, "bob").await?;
    assert_eq!(suspended.callback.status, StatusCode::FORBIDDEN);
    assert!(suspended.callback.body.contains("suspended"));
    let stranger = stack.attempt(ProviderKind::Entra, "mel").await?;
    assert_eq!(stranger.callback.status, StatusCode::FORBIDDEN);
    assert!(
        stranger
            .callback
            .body
            .contains("given an account in advance"),
        "{}",
        stranger.callback.body
    );
    assert_eq!(
        stack.app.hook_calls.lock().expect("lock").len(),
        calls_before,
        "refused users never reach the app's hook"
    );
    assert_eq!(stack.all_users().await?.len(), 2, "nothing created");
    Ok(())
}

/// Issue 32, two apps in one namespace, and the upgrade it needs: SsoUsers made by Gatehouse 0.1
/// (names without the config) keep serving their own config, and one of another app of the
/// namespace no longer refuses the person here (`user_conflict` before).
#[tokio::test]
async fn users_named_by_0_1_keep_signing_in_and_another_apps_user_is_no_conflict() -> Result<()> {
    let mut stack = KubeStack::start(KubeOptions::default()).await?;
    let issuer = stack.idp.okta_issuer.clone();
    let legacy = |subject: &str| legacy_sso_user_name("okta", &issuer, subject);
    // Ada signed in to this app under 0.1: her SsoUser has the old name (and a UID her sessions
    // are bound to). Bob signed in to the admin UI, another app of the namespace, under 0.1.
    let mut ada_then = declared(&stack, OKTA_ADA_SUB, false);
    ada_then.metadata.name = Some(legacy(OKTA_ADA_SUB));
    ada_then.metadata.labels = Some(
        [(LABEL_CONFIG, CONFIG), (LABEL_PROVIDER, "okta")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let ada_uid = stack
        .users
        .create(&PostParams::default(), &ada_then)
        .await?
        .metadata
        .uid;
    let mut bob_elsewhere = declared(&stack, OKTA_BOB_SUB, false);
    bob_elsewhere.metadata.name = Some(legacy(OKTA_BOB_SUB));
    bob_elsewhere.spec.config = "admin-ui".into();
    stack
        .users
        .create(&PostParams::default(), &bob_elsewhere)
        .await?;
    stack.sync().await?;

    // Ada signs in as the SsoUser she has: same object, same name, no second one.
    let ada = stack.sign_in(ProviderKind::Okta, "ada").await?;
    assert!(stack.reaches_app(&ada).await?);
    let me: serde_json::Value =
        serde_json::from_str(&stack.get(&ada, "/api/auth/session").await?.body)?;
    assert_eq!(me["user"]["id"], json!(legacy(OKTA_ADA_SUB)));
    let ada_now = stack.users.get(&legacy(OKTA_ADA_SUB)).await?;
    assert_eq!(ada_now.metadata.uid, ada_uid);
    assert_eq!(
        ada_now.status.and_then(|s| s.login_count),
        Some(1),
        "this sign-in was recorded on it"
    );

    // Bob gets this app's own SsoUser; the admin UI's stays as it was.
    let bob = stack.sign_in(ProviderKind::Okta, "bob").await?;
    assert!(stack.reaches_app(&bob).await?);
    let me: serde_json::Value =
        serde_json::from_str(&stack.get(&bob, "/api/auth/session").await?.body)?;
    assert_eq!(me["user"]["id"], json!(okta_user(&stack, OKTA_BOB_SUB)));
    let theirs = stack.users.get(&legacy(OKTA_BOB_SUB)).await?;
    assert_eq!(theirs.spec.config, "admin-ui");
    assert!(
        theirs.status.is_none(),
        "another app's SsoUser is not written"
    );
    let users = stack.all_users().await?;
    assert_eq!(users.len(), 3, "{users:#?}");

    // Suspending the admin UI's SsoUser does not touch Bob's session here.
    stack
        .users
        .patch(
            &legacy(OKTA_BOB_SUB),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspended": true}})),
        )
        .await?;
    stack.deliver_current(&legacy(OKTA_BOB_SUB)).await?;
    assert!(stack.reaches_app(&bob).await?);
    Ok(())
}

/// Issue 32, several generic providers: one `sub` at three issuers of one SsoConfig is three
/// people (three SsoUsers, each with its provider's issuer, org and role map), and deleting one
/// of them ends only that one's session.
#[tokio::test]
async fn one_sub_at_three_generic_providers_is_three_users_kept_apart() -> Result<()> {
    const SUB: &str = "auth0|ada0001";
    let mut stack = KubeStack::start(KubeOptions {
        generic_providers: true,
        ..KubeOptions::default()
    })
    .await?;
    let kinds = [
        ProviderKind::Oidc,
        ProviderKind::ExtraOidc(0),
        ProviderKind::ExtraOidc(1),
    ];
    let mut sessions = Vec::new();
    for kind in kinds {
        sessions.push(stack.sign_in(kind, "ada").await?);
    }
    stack.sync().await?;
    let issuers = [
        stack.idp.oidc_issuer.clone(),
        stack.idp.extra_oidc[0].1.clone(),
        stack.idp.extra_oidc[1].1.clone(),
    ];
    let names: Vec<String> = kinds
        .iter()
        .zip(&issuers)
        .map(|(kind, issuer)| sso_user_name(CONFIG, kind.segment(), issuer, SUB))
        .collect();
    let users = stack.all_users().await?;
    assert_eq!(users.len(), 3, "{users:#?}");
    let expected = [
        ("auth0", gatehouse_tests::stack::ORG_ID, "admin"),
        ("partner", "partner", "admin"),
        // The contractors' own role map makes Ada a member there.
        ("contractors", "contractors", "member"),
    ];
    for ((name, issuer), (provider, org, role)) in names.iter().zip(&issuers).zip(expected) {
        let user = users
            .iter()
            .find(|u| u.metadata.name.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no SsoUser {name} for {provider}: {users:#?}"));
        assert_eq!(user.spec.provider, provider);
        assert_eq!(user.spec.subject, SUB);
        let status = user.status.clone().expect("status");
        assert_eq!(status.issuer.as_deref(), Some(issuer.as_str()));
        assert_eq!(status.org.as_deref(), Some(org), "{provider}");
        assert_eq!(status.role.as_deref(), Some(role), "{provider}");
    }

    // Deleting the partner's SsoUser ends that session only.
    let partner = stack.users.get(&names[1]).await?;
    stack
        .users
        .delete(&names[1], &DeleteParams::default())
        .await?;
    stack.deliver(Ok(watcher::Event::Delete(partner)));
    assert_eq!(
        stack.get(&sessions[1], "/dashboard").await?.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(stack.reaches_app(&sessions[0]).await?);
    assert!(stack.reaches_app(&sessions[2]).await?);
    Ok(())
}
