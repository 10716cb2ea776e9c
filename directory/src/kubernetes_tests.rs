use super::*;

use std::collections::BTreeMap;

use gatehouse_crds::{Role, SsoUserSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;

const NS: &str = "team-a";
const CONFIG: &str = "portal";
const ISSUER: &str = "https://acme.okta.com";

fn sign_in(subject: &str, role: Role) -> SignedInUser {
    SignedInUser {
        user: sso_user_name(CONFIG, "okta", ISSUER, subject),
        provider: "okta".into(),
        issuer: ISSUER.into(),
        subject: subject.into(),
        email: Some(format!("{subject}@acme.example")),
        name: Some("Ada L.".into()),
        preferred_username: Some(subject.into()),
        role: role.as_str(),
        org: "acme-portal".into(),
        groups: vec!["sre".into(), "eng".into()],
        attributes: BTreeMap::from([("department".to_string(), "R&D".to_string())]),
        groups_unknown: false,
        occasion: Occasion::SignIn,
    }
}

async fn fake_client(objects: Vec<SsoUser>) -> kube::Client {
    let mut builder = kube_fake_client::ClientBuilder::new()
        .with_resource::<SsoUser>()
        .with_status_subresource::<SsoUser>();
    for object in objects {
        builder = builder.with_object(object);
    }
    builder.build().await.expect("fake client builds")
}

fn provisioner(client: kube::Client, mode: ProvisioningMode) -> (Provisioner, Api<SsoUser>) {
    let api: Api<SsoUser> = Api::namespaced(client, NS);
    let (cache, _feeder) = UserCache::new(NS, CONFIG, Duration::from_secs(300));
    (Provisioner::new(api.clone(), CONFIG, mode, cache), api)
}

/// A sign-in as the sidecar runs it: admission's read, then provisioning from that read.
async fn admit_then_provision(p: &Provisioner, user: &SignedInUser) -> ProvisionedUser {
    let admitted = p.admit(user).await.expect("admitted");
    p.provision_admitted(user, admitted)
        .await
        .expect("provisioned")
}

fn declared(name: &str, subject: &str, suspended: bool) -> SsoUser {
    SsoUser {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
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
async fn first_sign_in_creates_the_user_with_labels_and_status() {
    let (provisioner, api) = provisioner(fake_client(vec![]).await, ProvisioningMode::Jit);
    let got = provisioner
        .provision(&sign_in("00u1abcd", Role::Admin))
        .await
        .expect("provisioned");
    assert!(got.created);
    assert_eq!(got.name, sso_user_name(CONFIG, "okta", ISSUER, "00u1abcd"));

    let user = api.get(&got.name).await.expect("the SsoUser exists");
    assert_eq!(user.metadata.uid.as_deref(), Some(got.uid.as_str()));
    let labels = user.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(LABEL_SOURCE).map(String::as_str),
        Some(SOURCE_SSO)
    );
    assert_eq!(labels.get(LABEL_CONFIG).map(String::as_str), Some(CONFIG));
    assert_eq!(labels.get(LABEL_PROVIDER).map(String::as_str), Some("okta"));
    assert_eq!(user.spec.subject, "00u1abcd");
    assert_eq!(user.spec.config, CONFIG);
    let status = user.status.expect("status written");
    assert_eq!(status.email.as_deref(), Some("00u1abcd@acme.example"));
    assert_eq!(status.name.as_deref(), Some("Ada L."));
    assert_eq!(status.role.as_deref(), Some("admin"));
    assert_eq!(status.org.as_deref(), Some("acme-portal"));
    assert_eq!(
        status.attributes.get("department").map(String::as_str),
        Some("R&D")
    );
    assert_eq!(status.groups, ["sre", "eng"]);
    assert_eq!(status.login_count, Some(1));
    assert!(status.last_login.is_some());
}

#[tokio::test]
async fn every_sign_in_rewrites_the_status() {
    let (provisioner, api) = provisioner(fake_client(vec![]).await, ProvisioningMode::Jit);
    let first = provisioner
        .provision(&sign_in("00u1abcd", Role::Member))
        .await
        .expect("first");
    let mut changed = sign_in("00u1abcd", Role::Admin);
    changed.name = Some("Ada Lovelace".into());
    changed
        .attributes
        .insert("department".into(), "Engines".into());
    changed.groups = vec!["eng".into()];
    let second = provisioner.provision(&changed).await.expect("second");
    assert!(!second.created);
    assert!(second.role_changed, "member → admin is a role change");
    assert_eq!(first.uid, second.uid);
    let status = api
        .get(&second.name)
        .await
        .expect("exists")
        .status
        .expect("status");
    assert_eq!(status.role.as_deref(), Some("admin"));
    assert_eq!(status.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        status.attributes.get("department").map(String::as_str),
        Some("Engines")
    );
    assert_eq!(
        status.groups,
        ["eng"],
        "the IdP's groups of the latest sign-in"
    );
    assert_eq!(status.login_count, Some(2));
    let third = provisioner.provision(&changed).await.expect("third");
    assert!(!third.role_changed);

    // Groups that could not be read (Entra group overage, Graph down) keep the recorded ones.
    let unknown = SignedInUser {
        groups: Vec::new(),
        groups_unknown: true,
        ..changed.clone()
    };
    let fourth = provisioner.provision(&unknown).await.expect("fourth");
    let status = api
        .get(&fourth.name)
        .await
        .expect("exists")
        .status
        .expect("status");
    assert_eq!(status.groups, ["eng"], "the last known groups");
    assert_eq!(status.login_count, Some(4));
}

/// `deleteAfterInactive` counts from `status.lastVouched`: a sign-in and a re-validation both
/// move it, while `lastLogin` and `loginCount` count sign-ins only.
#[tokio::test]
async fn a_re_validation_moves_last_vouched_and_leaves_the_sign_in_record() {
    let (provisioner, api) = provisioner(fake_client(vec![]).await, ProvisioningMode::Jit);
    let ada = sign_in("00u1abcd", Role::Member);
    let done = admit_then_provision(&provisioner, &ada).await;
    let status = api.get(&done.name).await.expect("exists").status;
    let status = status.expect("status written");
    assert!(
        status.last_vouched.is_some(),
        "a sign-in is the IdP vouching"
    );
    assert_eq!(status.last_vouched, status.last_login);

    // The sign-in was two days ago; the session has been re-validated ever since.
    let two_days_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    // Whole seconds, as the API keeps them.
    let two_days_ago = Time(jiff::Timestamp::from_second(two_days_ago.as_second()).expect("t"));
    api.patch_status(
        &done.name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": {
            "lastLogin": two_days_ago, "lastVouched": two_days_ago,
        } })),
    )
    .await
    .expect("backdated");
    let mut revalidated = ada.clone();
    revalidated.occasion = Occasion::Revalidation;
    let before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    admit_then_provision(&provisioner, &revalidated).await;
    let status = api
        .get(&done.name)
        .await
        .expect("exists")
        .status
        .expect("status");
    assert_eq!(status.login_count, Some(1), "a re-validation is no sign-in");
    assert_eq!(status.last_login, Some(two_days_ago.clone()));
    let vouched = status.last_vouched.expect("lastVouched kept");
    assert!(
        vouched.0 >= before,
        "the re-validation moved lastVouched to now, got {}",
        vouched.0
    );

    // Within the hour, a re-validation leaves it be (no write for every session's refresh).
    admit_then_provision(&provisioner, &revalidated).await;
    let again = api.get(&done.name).await.expect("exists").status;
    assert_eq!(again.expect("status").last_vouched, Some(vouched));
}

#[tokio::test]
async fn fifty_concurrent_first_sign_ins_make_one_user() {
    let (provisioner, api) = provisioner(fake_client(vec![]).await, ProvisioningMode::Jit);
    let attempts = (0..50).map(|_| {
        let provisioner = provisioner.clone();
        tokio::spawn(async move {
            provisioner
                .provision(&sign_in("00u1abcd", Role::Admin))
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let mut uids = std::collections::HashSet::new();
    let mut creators = 0;
    for result in results {
        let got = result
            .expect("task ran")
            .expect("every concurrent sign-in succeeds");
        creators += usize::from(got.created);
        uids.insert(got.uid);
    }
    assert_eq!(uids.len(), 1, "all sign-ins resolve to one object");
    assert_eq!(creators, 1, "exactly one sign-in created it");
    let users = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(users.items.len(), 1);
    let count = users.items[0].status.as_ref().and_then(|s| s.login_count);
    assert_eq!(count, Some(50), "every concurrent login is counted");
}

#[tokio::test]
async fn two_providers_or_two_subjects_are_two_users() {
    let (provisioner, api) = provisioner(fake_client(vec![]).await, ProvisioningMode::Jit);
    let okta = provisioner
        .provision(&sign_in("same-sub", Role::Admin))
        .await
        .expect("okta");
    let mut entra = sign_in("same-sub", Role::Admin);
    entra.provider = "entra".into();
    entra.issuer = "https://login.microsoftonline.com/t/v2.0".into();
    let entra = provisioner.provision(&entra).await.expect("entra");
    let other_subject = provisioner
        .provision(&sign_in("other-sub", Role::Admin))
        .await
        .expect("other");
    assert_ne!(okta.name, entra.name);
    assert_ne!(okta.name, other_subject.name);
    assert_eq!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        3
    );
}

#[tokio::test]
async fn a_declared_user_keeps_its_spec_and_a_suspended_one_is_refused() {
    let name = sso_user_name(CONFIG, "okta", ISSUER, "00u-declared");
    let suspended_name = sso_user_name(CONFIG, "okta", ISSUER, "00u-suspended");
    let client = fake_client(vec![
        declared(&name, "00u-declared", false),
        declared(&suspended_name, "00u-suspended", true),
    ])
    .await;
    let (provisioner, api) = provisioner(client, ProvisioningMode::PreDeclared);

    let got = provisioner
        .provision(&sign_in("00u-declared", Role::Member))
        .await
        .expect("declared user signs in");
    assert!(!got.created);
    let user = api.get(&name).await.expect("exists");
    assert_eq!(user.spec.suspended, Some(false), "spec from Git untouched");
    let labels = user.metadata.labels.clone().unwrap_or_default();
    assert!(
        !labels.contains_key(LABEL_SOURCE),
        "not re-labelled as sso-created"
    );
    assert_eq!(
        labels.get(LABEL_CONFIG).map(String::as_str),
        Some(CONFIG),
        "labelled for the label-selected watch"
    );
    assert_eq!(labels.get(LABEL_PROVIDER).map(String::as_str), Some("okta"));
    assert_eq!(user.status.and_then(|s| s.role).as_deref(), Some("member"));

    let err = provisioner
        .provision(&sign_in("00u-suspended", Role::Admin))
        .await
        .expect_err("suspended");
    assert!(matches!(err, ProvisionError::Suspended), "{err:?}");
    let suspended = api.get(&suspended_name).await.expect("exists");
    assert!(
        suspended.status.is_none(),
        "a refused sign-in writes nothing"
    );

    let err = provisioner
        .provision(&sign_in("00u-stranger", Role::Admin))
        .await
        .expect_err("not declared");
    assert!(matches!(err, ProvisionError::NotDeclared), "{err:?}");
    assert_eq!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        2,
        "no user created"
    );
}

#[tokio::test]
async fn an_unreachable_api_fails_the_sign_in() {
    // A real client against a closed port: connection refused, as when the API server is down.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("uri"));
    let client = kube::Client::try_from(config).expect("client");
    let (provisioner, _) = provisioner(client, ProvisioningMode::Jit);
    let err = provisioner
        .provision(&sign_in("00u1abcd", Role::Admin))
        .await
        .expect_err("API down");
    assert!(matches!(err, ProvisionError::Unavailable(_)), "{err:?}");
    assert_eq!(err.reason(), "directory_unavailable");
    let err = provisioner
        .admit(&sign_in("00u1abcd", Role::Admin))
        .await
        .expect_err("API down");
    assert!(matches!(err, ProvisionError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn admission_reads_and_never_writes() {
    let suspended_name = sso_user_name(CONFIG, "okta", ISSUER, "00u-suspended");
    let other_config = sso_user_name(CONFIG, "okta", ISSUER, "00u-elsewhere");
    let mut elsewhere = declared(&other_config, "00u-elsewhere", false);
    elsewhere.spec.config = "another-app".into();
    let client = fake_client(vec![
        declared(&suspended_name, "00u-suspended", true),
        elsewhere,
    ])
    .await;
    let (jit, api) = provisioner(client.clone(), ProvisioningMode::Jit);
    let (pre_declared, _) = provisioner(client, ProvisioningMode::PreDeclared);

    jit.admit(&sign_in("00u-new", Role::Member))
        .await
        .expect("a new user is admitted in jit mode");
    let err = pre_declared
        .admit(&sign_in("00u-new", Role::Member))
        .await
        .expect_err("not declared");
    assert!(matches!(err, ProvisionError::NotDeclared), "{err:?}");
    assert_eq!(err.reason(), "user_not_declared");
    let err = jit
        .admit(&sign_in("00u-suspended", Role::Admin))
        .await
        .expect_err("suspended");
    assert!(matches!(err, ProvisionError::Suspended), "{err:?}");
    let err = jit
        .admit(&sign_in("00u-elsewhere", Role::Admin))
        .await
        .expect_err("another config's user");
    assert!(matches!(err, ProvisionError::Collision { .. }), "{err:?}");

    let users = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(users.items.len(), 2, "admission created nothing");
    assert!(
        users.items.iter().all(|u| u.status.is_none()),
        "admission wrote no status"
    );

    // Provisioning goes on from what admission read.
    let done = admit_then_provision(&jit, &sign_in("00u-new", Role::Member)).await;
    assert!(done.created);
    let second = admit_then_provision(&jit, &sign_in("00u-new", Role::Admin)).await;
    assert!(!second.created && second.role_changed);
    assert_eq!(second.uid, done.uid);
    let stored = api.get(&done.name).await.expect("exists");
    assert_eq!(stored.status.and_then(|s| s.login_count), Some(2));
}

#[tokio::test]
async fn a_stale_admission_read_only_costs_a_retry() {
    let (provisioner, api) = provisioner(fake_client(vec![]).await, ProvisioningMode::Jit);
    // Admission saw no user; another replica creates it before this one writes.
    let admitted = provisioner
        .admit(&sign_in("00u-race", Role::Member))
        .await
        .expect("admitted");
    let other = provisioner
        .provision(&sign_in("00u-race", Role::Member))
        .await
        .expect("the other replica");
    let mine = provisioner
        .provision_admitted(&sign_in("00u-race", Role::Member), admitted)
        .await
        .expect("this replica");
    assert!(other.created && !mine.created, "exactly one creator");
    assert_eq!(mine.uid, other.uid);
    let stored = api.get(&mine.name).await.expect("exists");
    assert_eq!(stored.status.and_then(|s| s.login_count), Some(2));
}

// ---- revocation cache ----

fn cached_user(name: &str, uid: &str) -> SsoUser {
    let mut user = declared(name, "sub", false);
    user.metadata.uid = Some(uid.into());
    user.metadata.resource_version = Some("1".into());
    user
}

fn synced_cache(users: Vec<SsoUser>) -> (UserCache, UserCacheFeeder) {
    let (cache, mut feeder) = UserCache::new(NS, CONFIG, Duration::from_secs(300));
    feeder.apply(Ok(watcher::Event::Init));
    for user in users {
        feeder.apply(Ok(watcher::Event::InitApply(user)));
    }
    feeder.apply(Ok(watcher::Event::InitDone));
    (cache, feeder)
}

fn started() -> jiff::Timestamp {
    jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60)
}

#[test]
fn deleting_the_user_refuses_its_sessions_at_the_next_request() {
    let (cache, mut feeder) = synced_cache(vec![cached_user("okta-1", "uid-1")]);
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    feeder.apply(Ok(watcher::Event::Delete(cached_user("okta-1", "uid-1"))));
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::Deleted)
    );
}

#[test]
fn a_recreated_user_of_the_same_name_does_not_revive_old_sessions() {
    let (cache, mut feeder) = synced_cache(vec![cached_user("okta-1", "uid-1")]);
    feeder.apply(Ok(watcher::Event::Delete(cached_user("okta-1", "uid-1"))));
    feeder.apply(Ok(watcher::Event::Apply(cached_user("okta-1", "uid-2"))));
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::Replaced)
    );
    assert_eq!(cache.check("okta-1", "uid-2", started()), Ok(()));
}

#[test]
fn suspending_or_moving_sessions_not_before_refuses_sessions() {
    let (cache, mut feeder) = synced_cache(vec![cached_user("okta-1", "uid-1")]);
    let mut suspended = cached_user("okta-1", "uid-1");
    suspended.spec.suspended = Some(true);
    feeder.apply(Ok(watcher::Event::Apply(suspended)));
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::Suspended)
    );

    let mut revoked = cached_user("okta-1", "uid-1");
    revoked.spec.sessions_not_before = Some(Time(jiff::Timestamp::now()));
    feeder.apply(Ok(watcher::Event::Apply(revoked)));
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::SessionsRevoked)
    );
    // A session started after the cut-off is fine.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    assert_eq!(cache.check("okta-1", "uid-1", later), Ok(()));
}

/// "Log out everywhere": sessions record their start to the second, so a session started in the
/// cut-off's second may have started before it and ends; one started the next second survives.
#[test]
fn sessions_not_before_ends_sessions_of_its_own_second_and_spares_the_next() {
    let second = jiff::Timestamp::from_second(1_800_000_000).expect("time");
    // As written by hand (`date -u +%FT%TZ`), and with a fraction (the API keeps what was sent).
    for cut_off in [second, second + jiff::SignedDuration::from_millis(700)] {
        let mut user = cached_user("okta-1", "uid-1");
        user.spec.sessions_not_before = Some(Time(cut_off));
        let (cache, _feeder) = synced_cache(vec![user]);
        let started_at =
            |offset: i64| jiff::Timestamp::from_second(1_800_000_000 + offset).expect("time");
        for (offset, expected) in [
            (-1, Err(SessionRefusal::SessionsRevoked)),
            (0, Err(SessionRefusal::SessionsRevoked)),
            (1, Ok(())),
            (2, Ok(())),
        ] {
            assert_eq!(
                cache.check("okta-1", "uid-1", started_at(offset)),
                expected,
                "cut-off {cut_off}, session started at the cut-off's second {offset:+}"
            );
        }
    }
}

#[test]
fn a_user_of_another_config_is_not_ours() {
    let mut other = cached_user("okta-1", "uid-1");
    other.spec.config = "other-app".into();
    let (cache, _feeder) = synced_cache(vec![other]);
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::Replaced)
    );
    assert_eq!(cache.user_count(), 0);
}

#[test]
fn a_just_provisioned_user_is_admitted_before_the_watch_sees_it() {
    let (cache, _feeder) = synced_cache(vec![]);
    assert_eq!(
        cache.check("okta-new", "uid-9", started()),
        Err(SessionRefusal::Deleted)
    );
    cache.remember("okta-new", "uid-9");
    assert_eq!(cache.check("okta-new", "uid-9", started()), Ok(()));
    // Only for that exact object, and only for a bounded time.
    assert_eq!(
        cache.check("okta-new", "uid-other", started()),
        Err(SessionRefusal::Deleted)
    );
    let later = Instant::now() + READ_YOUR_WRITE_GRACE + Duration::from_secs(1);
    assert_eq!(
        cache.check_at("okta-new", "uid-9", started(), later),
        Err(SessionRefusal::Deleted)
    );
}

#[test]
fn a_deletion_seen_by_the_watch_overrides_read_your_write() {
    let (cache, mut feeder) = synced_cache(vec![]);
    cache.remember("okta-new", "uid-9");
    let user = cached_user("okta-new", "uid-9");
    feeder.apply(Ok(watcher::Event::Apply(user.clone())));
    assert_eq!(cache.check("okta-new", "uid-9", started()), Ok(()));
    feeder.apply(Ok(watcher::Event::Delete(user)));
    assert_eq!(
        cache.check("okta-new", "uid-9", started()),
        Err(SessionRefusal::Deleted),
        "deleted within the read-your-write grace: still refused"
    );
}

#[test]
fn sessions_are_refused_until_the_first_list_completes() {
    let (cache, mut feeder) = UserCache::new(NS, CONFIG, Duration::from_secs(300));
    feeder.apply(Ok(watcher::Event::Init));
    feeder.apply(Ok(watcher::Event::InitApply(cached_user(
        "okta-1", "uid-1",
    ))));
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::NotSynced)
    );
    assert!(!cache.is_ready());
    feeder.apply(Ok(watcher::Event::InitDone));
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    assert!(cache.is_ready());
}

#[test]
fn a_watch_silent_past_the_staleness_limit_refuses_everything_until_it_shows_life() {
    let staleness = Duration::from_secs(300);
    let (cache, mut feeder) = UserCache::new(NS, CONFIG, staleness);
    let t0 = Instant::now();
    feeder.apply_guarded_at(Ok(watcher::Event::Init), t0);
    feeder.apply_guarded_at(
        Ok(watcher::Event::InitApply(DeserializeGuard(Ok(
            cached_user("okta-1", "uid-1"),
        )))),
        t0,
    );
    feeder.apply_guarded_at(Ok(watcher::Event::InitDone), t0);
    // Errors are no sign of life: the clock runs from the last one.
    feeder.apply_guarded_at(
        Err(watcher::Error::NoResourceVersion),
        t0 + Duration::from_secs(200),
    );
    assert_eq!(
        cache.check_at("okta-1", "uid-1", started(), t0 + staleness),
        Ok(()),
        "silent within the limit: sessions keep working"
    );
    let past = t0 + staleness + Duration::from_secs(1);
    assert_eq!(
        cache.check_at("okta-1", "uid-1", started(), past),
        Err(SessionRefusal::Stale)
    );
    // A sign of life with no object changing (the transport saw a watch re-opened, a bookmark,
    // or the server ending a quiet watch): fresh again.
    feeder.pulse().beat();
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    assert!(cache.is_ready());
    assert_eq!(cache.broken_for(), Duration::ZERO);
}

#[test]
fn an_undecodable_user_is_refused_and_counted_and_the_others_are_served() {
    let (cache, mut feeder) = synced_cache(vec![cached_user("okta-1", "uid-1")]);
    let mut raw = serde_json::to_value(cached_user("okta-2", "uid-2")).expect("json");
    raw["spec"]["suspended"] = serde_json::json!("yes");
    let guard: DeserializeGuard<SsoUser> = serde_json::from_value(raw).expect("guard");
    assert!(guard.0.is_err());
    feeder.apply_guarded(Ok(watcher::Event::Apply(guard)));
    assert_eq!(
        cache.check("okta-2", "uid-2", started()),
        Err(SessionRefusal::Undecodable)
    );
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    assert_eq!(cache.undecodable_count(), 1);
    // Fixed: served again, no longer counted.
    feeder.apply(Ok(watcher::Event::Apply(cached_user("okta-2", "uid-2"))));
    assert_eq!(cache.check("okta-2", "uid-2", started()), Ok(()));
    assert_eq!(cache.undecodable_count(), 0);
}

/// An SsoUser as the API server returns it after sign-ins, logouts and a re-validation: every
/// field the cache keeps set, and much it does not keep.
fn full_user(name: &str, uid: &str) -> SsoUser {
    let at = |s: i64| Time(jiff::Timestamp::from_second(1_800_000_000 + s).expect("time"));
    let mut user = cached_user(name, uid);
    user.metadata.labels = Some(BTreeMap::from([
        (LABEL_CONFIG.to_string(), CONFIG.to_string()),
        (LABEL_PROVIDER.to_string(), "okta".to_string()),
    ]));
    user.metadata.managed_fields = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
            manager: Some("gatehouse-sidecar".into()),
            operation: Some("Apply".into()),
            ..Default::default()
        },
    ]);
    user.metadata.annotations = Some(BTreeMap::from([(
        "kubectl.kubernetes.io/last-applied-configuration".to_string(),
        "{\"a\": \"large copy\"}".to_string(),
    )]));
    user.spec.suspended = None;
    user.spec.sessions_not_before = Some(at(10));
    user.status = Some(gatehouse_crds::SsoUserStatus {
        email: Some("ada@acme.example".into()),
        name: Some("Ada L.".into()),
        role: Some("member".into()),
        groups: vec!["sre".into()],
        attributes: BTreeMap::from([("department".to_string(), "R&D".to_string())]),
        login_count: Some(7),
        last_login: Some(at(0)),
        sessions_not_before: Some(at(20)),
        revoked_sessions: vec![
            gatehouse_crds::RevokedSession {
                id: "sid-logged-out".into(),
                until: at(3600),
            },
            gatehouse_crds::RevokedSession {
                id: "idp-sid-ended".into(),
                until: at(3600),
            },
        ],
        session_renewals: vec![gatehouse_crds::SessionRenewal {
            id: "sid-renewed".into(),
            validated_at: 1_800_000_100,
            session: Some("sealed-session".into()),
            grant: Some("sealed-grant".into()),
            lease_holder: Some("replica-b".into()),
            lease_until: Some(at(130)),
            until: at(3600),
        }],
        ..Default::default()
    });
    user
}

#[test]
fn the_cache_keeps_what_the_verdict_reads_and_nothing_else() {
    let user = full_user("okta-1", "0b6c2f9e-0001-4a7b-8c1d-000000000001");
    let (cache, mut feeder) = synced_cache(vec![user.clone()]);
    feeder.apply(Ok(watcher::Event::Apply(user.clone())));
    let stored = cache.store.read().get("okta-1").cloned();
    let Some(Cached::User(stored)) = stored else {
        panic!("cached: {stored:?}");
    };
    // Field by field: the UID (as its 16 bytes), suspension, the config, the later of the two
    // cut-offs to the second, the revoked ids and the renewals.
    assert_eq!(
        stored,
        CachedUser {
            uid: [
                0x0b, 0x6c, 0x2f, 0x9e, 0x00, 0x01, 0x4a, 0x7b, 0x8c, 0x1d, 0, 0, 0, 0, 0, 0x01
            ],
            sessions_not_before: 1_800_000_020,
            suspended: false,
            of_config: true,
            uid_form: UidForm::Uuid,
            rare: Some(Box::new(RareFields {
                uid: None,
                revoked: vec!["sid-logged-out".into(), "idp-sid-ended".into()].into(),
                renewals: user
                    .status
                    .as_ref()
                    .expect("status")
                    .session_renewals
                    .clone()
                    .into(),
            })),
        }
    );
    assert_eq!(
        CachedUser::new(&user, CONFIG),
        stored,
        "a read converts the same way"
    );
    // A user as nearly all are: nothing but the fixed part.
    let plain = CachedUser::new(
        &cached_user("okta-2", "0b6c2f9e-0001-4a7b-8c1d-000000000002"),
        CONFIG,
    );
    assert_eq!(
        (plain.sessions_not_before(), plain.uid_form, plain.rare),
        (None, UidForm::Uuid, None)
    );
    assert!(size_of::<Cached>() <= 40, "{} bytes", size_of::<Cached>());
    assert!(
        size_of::<UserName>() <= 24,
        "{} bytes",
        size_of::<UserName>()
    );
}

#[test]
fn every_field_the_verdict_reads_survives_the_cache() {
    let uid = "0b6c2f9e-0001-4a7b-8c1d-000000000001";
    let at = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).expect("time");
    let (cache, mut feeder) = synced_cache(vec![full_user("okta-1", uid)]);
    let check = |uid: &str, started: i64, own: &str, idp: Option<&str>| {
        let ids = SessionIds {
            own: Some(own),
            idp,
        };
        cache.check_session("okta-1", uid, at(started), ids)
    };
    assert_eq!(check(uid, 21, "sid-live", Some("idp-live")), Ok(()));
    // metadata.uid
    assert_eq!(
        check("0b6c2f9e-0001-4a7b-8c1d-000000000002", 21, "sid-live", None),
        Err(SessionRefusal::Replaced)
    );
    assert_eq!(
        check(&uid.to_uppercase(), 21, "sid-live", None),
        Err(SessionRefusal::Replaced),
        "UIDs compare as written"
    );
    // The later cut-off (status's, at +20) ends sessions of its second and before; the spec's
    // (+10) alone would not.
    assert_eq!(
        check(uid, 20, "sid-live", None),
        Err(SessionRefusal::SessionsRevoked)
    );
    assert_eq!(
        check(uid, 15, "sid-live", None),
        Err(SessionRefusal::SessionsRevoked)
    );
    // status.revokedSessions: the session's own id, and its IdP session id.
    assert_eq!(
        check(uid, 21, "sid-logged-out", None),
        Err(SessionRefusal::SessionEnded)
    );
    assert_eq!(
        check(uid, 21, "sid-live", Some("idp-sid-ended")),
        Err(SessionRefusal::SessionEnded)
    );
    // status.sessionRenewals
    let renewal = cache
        .session_renewal("okta-1", "sid-renewed")
        .expect("the shared renewal");
    assert_eq!(
        (
            renewal.validated_at,
            renewal.session.as_deref(),
            renewal.grant.as_deref(),
            renewal.lease_holder.as_deref(),
            renewal.lease_until.map(|t| t.0),
        ),
        (
            1_800_000_100,
            Some("sealed-session"),
            Some("sealed-grant"),
            Some("replica-b"),
            Some(at(130)),
        )
    );
    assert_eq!(cache.session_renewal("okta-1", "sid-live"), None);
    // spec.config
    let mut moved = full_user("okta-1", uid);
    moved.spec.config = "other-app".into();
    feeder.apply(Ok(watcher::Event::Apply(moved)));
    assert_eq!(
        check(uid, 21, "sid-live", None),
        Err(SessionRefusal::Replaced)
    );
    assert_eq!(cache.user_count(), 0);
    // spec.suspended
    let mut suspended = full_user("okta-1", uid);
    suspended.spec.suspended = Some(true);
    feeder.apply(Ok(watcher::Event::Apply(suspended)));
    assert_eq!(
        check(uid, 21, "sid-live", None),
        Err(SessionRefusal::Suspended)
    );
}

#[test]
fn uids_are_kept_as_uuid_bytes_only_in_canonical_form() {
    let with_uid = |uid: &str| CachedUser::new(&cached_user("okta-1", uid), CONFIG);
    let uuid = "0b6c2f9e-0001-4a7b-8c1d-00000000abcd";
    assert_eq!(with_uid(uuid).uid_form, UidForm::Uuid);
    assert!(with_uid(uuid).has_uid(uuid));
    for other in [
        "uid-1",
        "",
        "0B6C2F9E-0001-4A7B-8C1D-00000000ABCD",
        "0b6c2f9e00014a7b8c1d00000000abcd",
        "0b6c2f9e-0001-4a7b-8c1d-00000000abcg",
        "0b6c2f9e-0001-4a7b-8c1d+00000000abcd",
        "0b6c2f9e-0001-4a7b-8c1d-0000000-abcd",
    ] {
        assert!(!with_uid(uuid).has_uid(other), "{other:?}");
        assert_eq!(with_uid(other).uid_form, UidForm::Text, "{other:?}");
        assert!(with_uid(other).has_uid(other), "{other:?}");
        assert!(!with_uid(other).has_uid(uuid), "{other:?}");
    }
    let mut without = cached_user("okta-1", "uid-1");
    without.metadata.uid = None;
    let without = CachedUser::new(&without, CONFIG);
    assert_eq!(without.uid_form, UidForm::Absent);
    assert!(!without.has_uid("") && !without.has_uid(uuid));
}

#[test]
fn names_are_kept_in_place_when_short_and_every_name_is_found() {
    let names = [
        sso_user_name(CONFIG, "okta", ISSUER, "00u1"),
        "a".repeat(SHORT_NAME),
        "b".repeat(SHORT_NAME + 1),
        "déclaré-à-la-main".to_string(),
        "x".repeat(253),
    ];
    assert!(matches!(
        UserName::new(&names[0]),
        UserName::Short { len: 21, .. }
    ));
    assert!(matches!(UserName::new(&names[1]), UserName::Short { .. }));
    assert!(matches!(UserName::new(&names[2]), UserName::Long(_)));
    let users = names
        .iter()
        .enumerate()
        .map(|(i, name)| cached_user(name, &format!("uid-{i}")))
        .collect();
    let (cache, _feeder) = synced_cache(users);
    assert_eq!(cache.user_count(), names.len());
    for (i, name) in names.iter().enumerate() {
        assert_eq!(UserName::new(name).as_str(), name);
        assert_eq!(cache.check(name, &format!("uid-{i}"), started()), Ok(()));
    }
    assert_eq!(
        cache.check(&"a".repeat(SHORT_NAME - 1), "uid-1", started()),
        Err(SessionRefusal::Deleted)
    );
}

#[test]
fn a_relist_drops_users_deleted_while_the_watch_was_away() {
    let (cache, mut feeder) = synced_cache(vec![
        cached_user("okta-1", "uid-1"),
        cached_user("okta-2", "uid-2"),
    ]);
    assert_eq!(cache.user_count(), 2);
    // The watch broke; okta-2 was deleted meanwhile, okta-3 created, okta-1 suspended.
    let mut suspended = cached_user("okta-1", "uid-1");
    suspended.spec.suspended = Some(true);
    feeder.apply(Ok(watcher::Event::Init));
    feeder.apply(Ok(watcher::Event::InitApply(suspended)));
    feeder.apply(Ok(watcher::Event::InitApply(cached_user(
        "okta-3", "uid-3",
    ))));
    // Until the list completes, the cache answers from the previous one, whole.
    assert_eq!(cache.check("okta-2", "uid-2", started()), Ok(()));
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    assert_eq!(cache.user_count(), 2);
    feeder.apply(Ok(watcher::Event::InitDone));
    assert_eq!(
        cache.check("okta-2", "uid-2", started()),
        Err(SessionRefusal::Deleted)
    );
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::Suspended)
    );
    assert_eq!(cache.check("okta-3", "uid-3", started()), Ok(()));
    assert_eq!(cache.user_count(), 2);
}

#[test]
fn an_undecodable_object_in_the_list_is_kept_as_such_and_the_rest_goes_on() {
    let (cache, mut feeder) = UserCache::new(NS, CONFIG, Duration::from_secs(300));
    let mut raw = serde_json::to_value(cached_user("okta-2", "uid-2")).expect("json");
    raw["spec"]["suspended"] = serde_json::json!("yes");
    let undecodable: DeserializeGuard<SsoUser> = serde_json::from_value(raw).expect("guard");
    assert!(undecodable.0.is_err());
    feeder.apply_guarded(Ok(watcher::Event::Init));
    for object in [
        DeserializeGuard(Ok(cached_user("okta-1", "uid-1"))),
        undecodable,
        DeserializeGuard(Ok(cached_user("okta-3", "uid-3"))),
    ] {
        feeder.apply_guarded(Ok(watcher::Event::InitApply(object)));
    }
    feeder.apply_guarded(Ok(watcher::Event::InitDone));
    assert!(cache.is_ready());
    assert_eq!(cache.check("okta-1", "uid-1", started()), Ok(()));
    assert_eq!(cache.check("okta-3", "uid-3", started()), Ok(()));
    assert_eq!(
        cache.check("okta-2", "uid-2", started()),
        Err(SessionRefusal::Undecodable),
        "fails closed"
    );
    assert_eq!(cache.session_renewal("okta-2", "sid"), None);
    assert_eq!((cache.user_count(), cache.undecodable_count()), (2, 1));
    // Deleted: no longer counted.
    feeder.apply(Ok(watcher::Event::Delete(cached_user("okta-2", "uid-2"))));
    assert_eq!((cache.user_count(), cache.undecodable_count()), (2, 0));
}

#[test]
fn objects_of_another_namespace_are_not_kept() {
    let mut elsewhere = cached_user("okta-1", "uid-1");
    elsewhere.metadata.namespace = Some("team-b".into());
    let (cache, mut feeder) = synced_cache(vec![elsewhere.clone()]);
    assert_eq!(cache.user_count(), 0);
    feeder.apply(Ok(watcher::Event::Apply(elsewhere)));
    assert_eq!(
        cache.check("okta-1", "uid-1", started()),
        Err(SessionRefusal::Deleted)
    );
}

#[test]
fn watch_timings_fit_inside_the_staleness_limit() {
    let t = WatchTimings::for_staleness(Duration::from_secs(300));
    assert_eq!(t.watch_timeout, Duration::from_secs(100));
    assert_eq!(t.idle_limit, Duration::from_secs(200));
    let t = WatchTimings::for_staleness(Duration::from_secs(3600));
    assert_eq!(t.watch_timeout, Duration::from_secs(290), "kube's cap");
    let t = WatchTimings::for_staleness(Duration::from_secs(2));
    assert_eq!(t.watch_timeout, Duration::from_secs(1), "at least a second");
}

/// Hardening issue ("also seen"): a re-validation that was in the air when the user was deleted
/// must not re-create the SsoUser (with a new uid) — only a sign-in creates users.
#[tokio::test]
async fn a_re_validation_never_re_creates_a_deleted_user() {
    let (p, api) = provisioner(fake_client(vec![]).await, ProvisioningMode::Jit);
    let refreshed = SignedInUser {
        occasion: Occasion::Revalidation,
        ..sign_in("00u1", Role::Member)
    };
    assert!(matches!(
        p.admit(&refreshed).await,
        Err(ProvisionError::Deleted)
    ));
    // Deleted between an admission and the write: the write does not create it either.
    assert!(matches!(
        p.provision_admitted(
            &refreshed,
            Admitted {
                user: None,
                name: refreshed.user.clone()
            }
        )
        .await,
        Err(ProvisionError::Deleted)
    ));
    assert!(matches!(
        p.provision(&refreshed).await,
        Err(ProvisionError::Deleted)
    ));
    assert!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty(),
        "nothing was created"
    );
    assert!(ProvisionError::Deleted.is_denial(), "the session ends");
}

#[tokio::test]
async fn an_ssouser_named_before_names_included_the_config_keeps_serving_it() {
    // Made by Gatehouse 0.1 (name without the config), with a UID sessions are bound to.
    let legacy = legacy_sso_user_name("okta", ISSUER, "00u-veteran");
    let mut old = declared(&legacy, "00u-veteran", false);
    old.metadata.labels = Some(BTreeMap::from([
        (LABEL_CONFIG.to_string(), CONFIG.to_string()),
        (LABEL_PROVIDER.to_string(), "okta".to_string()),
    ]));
    let (p, api) = provisioner(fake_client(vec![old]).await, ProvisioningMode::Jit);
    let uid = api.get(&legacy).await.expect("legacy").metadata.uid;
    let veteran = sign_in("00u-veteran", Role::Admin);
    assert_ne!(veteran.user, legacy, "the current name is another");

    let admitted = p.admit(&veteran).await.expect("admitted");
    assert_eq!(admitted.name(), legacy);
    let done = p
        .provision_admitted(&veteran, admitted)
        .await
        .expect("provisioned");
    assert_eq!((done.name.as_str(), done.created), (legacy.as_str(), false));
    assert_eq!(
        Some(done.uid),
        uid,
        "the same object: sessions bound to it go on"
    );
    let users = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(users.items.len(), 1, "no second SsoUser");
    let labels = users.items[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(LABEL_IDENTITY),
        Some(&identity_label(ISSUER, "00u-veteran")),
        "it gains the identity label"
    );
    // Later sign-ins (and provisioning without a prior admission) find it too.
    assert_eq!(p.provision(&veteran).await.expect("again").name, legacy);
}

#[tokio::test]
async fn a_person_gets_an_ssouser_in_each_app_of_the_namespace() {
    // The person first signed in to the admin UI under Gatehouse 0.1 (legacy name, its config).
    let legacy = legacy_sso_user_name("okta", ISSUER, "00u-both");
    let mut admin_ui = declared(&legacy, "00u-both", false);
    admin_ui.spec.config = "admin-ui".into();
    let client = fake_client(vec![admin_ui]).await;
    let (portal, api) = provisioner(client.clone(), ProvisioningMode::Jit);
    let person = sign_in("00u-both", Role::Member);

    // Not refused with user_conflict: the portal's own SsoUser, under the current name.
    let done = admit_then_provision(&portal, &person).await;
    assert!(done.created);
    assert_eq!(done.name, sso_user_name(CONFIG, "okta", ISSUER, "00u-both"));
    assert_eq!(
        api.get(&legacy).await.expect("kept").spec.config,
        "admin-ui"
    );

    // A third app of the namespace, on current names from the start.
    let api_other: Api<SsoUser> = Api::namespaced(client, NS);
    let (cache, _feeder) = UserCache::new(NS, "reports", Duration::from_secs(300));
    let reports = Provisioner::new(api_other, "reports", ProvisioningMode::Jit, cache);
    let mine = admit_then_provision(&reports, &person).await;
    assert!(mine.created);
    assert_eq!(
        mine.name,
        sso_user_name("reports", "okta", ISSUER, "00u-both")
    );
    assert_ne!(mine.name, done.name);

    // Three SsoUsers, one person: one label finds them all.
    let all = api
        .list(&ListParams::default().labels(&format!(
            "{LABEL_IDENTITY}={}",
            identity_label(ISSUER, "00u-both")
        )))
        .await
        .expect("list");
    let mut configs: Vec<String> = all.items.iter().map(|u| u.spec.config.clone()).collect();
    configs.sort();
    // The legacy object has no identity label until it signs in to its own app again.
    assert_eq!(configs, ["portal", "reports"]);
    // Each app's role is its own.
    assert_eq!(
        api.get(&done.name).await.expect("portal's").spec.config,
        CONFIG
    );
}
