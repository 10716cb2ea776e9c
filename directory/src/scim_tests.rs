use super::*;

use std::collections::BTreeMap;

use gatehouse_auth::signin::{Occasion, SignedInUser};
use gatehouse_crds::ProvisioningMode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher;

use crate::error::ProvisionError;
use crate::kubernetes::{Provisioner, UserCache};

const NS: &str = "team-a";
const CONFIG: &str = "portal";
const ISSUER: &str = "https://acme.okta.com";

async fn fake_client(objects: Vec<SsoUser>) -> kube::Client {
    let mut builder = kube_fake_client::ClientBuilder::new()
        .with_resource::<SsoUser>()
        .with_status_subresource::<SsoUser>();
    for object in objects {
        builder = builder.with_object(object);
    }
    builder.build().await.expect("fake client builds")
}

fn store(client: kube::Client) -> (ScimDirectory, Api<SsoUser>) {
    let api: Api<SsoUser> = Api::namespaced(client, NS);
    (
        ScimDirectory::new(
            api.clone(),
            CONFIG,
            "okta",
            ISSUER,
            Tombstones::default(),
            Duration::from_secs(5),
        ),
        api,
    )
}

fn profile(user_name: &str, external_id: Option<&str>) -> ScimProfile {
    ScimProfile {
        user_name: user_name.into(),
        external_id: external_id.map(Into::into),
        display_name: Some("Ada Lovelace".into()),
        ..ScimProfile::default()
    }
}

/// An SsoUser not pushed over SCIM: declared in Git (`source` None) or created at sign-in.
fn existing(name: &str, subject: &str, config: &str, source: Option<&str>) -> SsoUser {
    let mut labels = BTreeMap::from([
        (LABEL_CONFIG.to_owned(), config.to_owned()),
        (LABEL_IDENTITY.to_owned(), identity_label(ISSUER, subject)),
    ]);
    if let Some(source) = source {
        labels.insert(LABEL_SOURCE.to_owned(), source.to_owned());
    }
    SsoUser {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: SsoUserSpec {
            config: config.into(),
            provider: "okta".into(),
            subject: subject.into(),
            suspended: None,
            sessions_not_before: None,
            scim: None,
        },
        status: None,
    }
}

fn sign_in(subject: &str) -> SignedInUser {
    SignedInUser {
        user: sso_user_name(CONFIG, "okta", ISSUER, subject),
        provider: "okta".into(),
        issuer: ISSUER.into(),
        subject: subject.into(),
        email: None,
        name: None,
        preferred_username: None,
        role: "member",
        org: "acme".into(),
        groups: vec![],
        attributes: BTreeMap::new(),
        groups_unknown: false,
        occasion: Occasion::SignIn,
    }
}

fn scim_provisioner(client: kube::Client) -> Provisioner {
    let api: Api<SsoUser> = Api::namespaced(client, NS);
    let (cache, _feeder) = UserCache::new(NS, CONFIG, Duration::from_secs(300));
    Provisioner::new(api, CONFIG, ProvisioningMode::Scim, cache)
}

#[tokio::test]
async fn a_pushed_user_is_named_by_its_external_id_labelled_and_read_back() {
    let (store, api) = store(fake_client(vec![]).await);
    let created = store
        .create(profile("Ada@Acme.example", Some("00u1ada")), true)
        .await
        .expect("created");
    assert_eq!(created.id, sso_user_name(CONFIG, "okta", ISSUER, "00u1ada"));
    assert!(created.managed && created.active);
    let object = api.get(&created.id).await.expect("stored");
    let labels = object.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(LABEL_SOURCE).map(String::as_str),
        Some(SOURCE_SCIM)
    );
    assert_eq!(labels.get(LABEL_CONFIG).map(String::as_str), Some(CONFIG));
    assert_eq!(
        labels.get(LABEL_IDENTITY),
        Some(&identity_label(ISSUER, "00u1ada"))
    );
    assert_eq!(
        labels.get(LABEL_SCIM_USER_NAME),
        Some(&user_name_label("ada@acme.EXAMPLE")),
        "the user-name label ignores case"
    );
    assert_eq!(object.spec.subject, "00u1ada");
    assert_eq!(object.spec.suspended, None);
    let read = store.get(&created.id).await.expect("read");
    assert_eq!(read.profile, profile("Ada@Acme.example", Some("00u1ada")));
}

#[tokio::test]
async fn user_name_is_unique_without_case_and_external_id_with_case() {
    let (store, _) = store(fake_client(vec![]).await);
    store
        .create(profile("ada@acme.example", Some("00u1ada")), true)
        .await
        .expect("created");
    let err = store
        .create(profile("ADA@acme.example", Some("00u2other")), true)
        .await
        .expect_err("same user name in other case");
    assert!(
        matches!(
            &err,
            ScimStoreError::Taken {
                attribute: "userName",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .create(profile("grace@acme.example", Some("00u1ada")), true)
        .await
        .expect_err("same externalId");
    assert!(
        matches!(
            &err,
            ScimStoreError::Taken {
                attribute: "externalId",
                ..
            }
        ),
        "{err}"
    );
    store
        .create(profile("grace@acme.example", Some("00U1ADA")), true)
        .await
        .expect("externalId compared with case: another person");
}

#[tokio::test]
async fn deactivation_suspends_and_cuts_sessions_and_reactivation_keeps_the_cut() {
    let (store, api) = store(fake_client(vec![]).await);
    let user = store
        .create(profile("ada@acme.example", Some("00u1ada")), true)
        .await
        .expect("created");
    let before = jiff::Timestamp::now();
    let off = store
        .update(&user.id, |u| Ok::<_, ()>((u.profile.clone(), false)))
        .await
        .expect("written")
        .expect("accepted");
    assert!(!off.active);
    let object = api.get(&user.id).await.expect("stored");
    assert_eq!(object.spec.suspended, Some(true));
    let cut = object.spec.sessions_not_before.clone().expect("cut").0;
    assert!(cut.as_second() >= before.as_second());

    let on = store
        .update(&user.id, |u| Ok::<_, ()>((u.profile.clone(), true)))
        .await
        .expect("written")
        .expect("accepted");
    assert!(on.active);
    let object = api.get(&user.id).await.expect("stored");
    assert_eq!(object.spec.suspended, None);
    assert_eq!(
        object.spec.sessions_not_before.map(|t| t.0),
        Some(cut),
        "reactivation never revives a session from before the deactivation"
    );
}

#[tokio::test]
async fn a_refused_change_writes_nothing() {
    let (store, api) = store(fake_client(vec![]).await);
    let user = store
        .create(profile("ada@acme.example", Some("00u1ada")), true)
        .await
        .expect("created");
    let version = api
        .get(&user.id)
        .await
        .expect("stored")
        .metadata
        .resource_version;
    let refused = store
        .update(&user.id, |_| Err::<(ScimProfile, bool), _>("no"))
        .await
        .expect("read");
    assert_eq!(refused, Err("no"));
    assert_eq!(
        api.get(&user.id)
            .await
            .expect("stored")
            .metadata
            .resource_version,
        version
    );
}

#[tokio::test]
async fn users_declared_in_git_are_listed_but_read_only() {
    let git = existing("ada-in-git", "00u1ada", CONFIG, None);
    let (store, api) = store(fake_client(vec![git.clone()]).await);
    let listed = store.list(Narrow::default()).await.expect("listed");
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].managed);
    assert_eq!(listed[0].source, "git");

    let err = store
        .update("ada-in-git", |u| Ok::<_, ()>((u.profile.clone(), false)))
        .await
        .expect_err("read-only");
    assert!(
        matches!(err, ScimStoreError::ReadOnly { origin: "git", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("declared in Git"), "{err}");
    let err = store.delete("ada-in-git").await.expect_err("read-only");
    assert!(matches!(err, ScimStoreError::ReadOnly { .. }), "{err}");
    let err = store
        .create(profile("ada@acme.example", Some("00u1ada")), true)
        .await
        .expect_err("a POST naming a declared user's subject creates nothing");
    assert!(
        matches!(
            err,
            ScimStoreError::Taken {
                attribute: "externalId",
                ..
            }
        ),
        "{err}"
    );
    let all = api.list(&ListParams::default()).await.expect("listed");
    assert_eq!(all.items.len(), 1, "nothing created");
    let after = api.get("ada-in-git").await.expect("still there");
    assert_eq!(after.spec, git.spec, "unchanged");
}

#[tokio::test]
async fn a_post_takes_over_the_user_a_sign_in_created_before() {
    let name = sso_user_name(CONFIG, "okta", ISSUER, "00u1ada");
    let jit = existing(&name, "00u1ada", CONFIG, Some(SOURCE_SSO));
    let (store, api) = store(fake_client(vec![jit]).await);
    let adopted = store
        .create(profile("ada@acme.example", Some("00u1ada")), true)
        .await
        .expect("adopted");
    assert_eq!(adopted.id, name);
    assert!(adopted.managed);
    let object = api.get(&name).await.expect("stored");
    assert_eq!(
        object
            .metadata
            .labels
            .unwrap_or_default()
            .get(LABEL_SOURCE)
            .map(String::as_str),
        Some(SOURCE_SCIM)
    );
}

#[tokio::test]
async fn another_configs_users_are_not_found() {
    let other = existing("theirs", "00u9", "billing", Some(SOURCE_SCIM));
    let (store, api) = store(fake_client(vec![other]).await);
    assert!(matches!(
        store.get("theirs").await,
        Err(ScimStoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete("theirs").await,
        Err(ScimStoreError::NotFound { .. })
    ));
    assert!(
        store
            .list(Narrow::default())
            .await
            .expect("listed")
            .is_empty()
    );
    api.get("theirs").await.expect("untouched");
}

#[tokio::test]
async fn a_deleted_user_is_gone_and_a_second_delete_is_not_found() {
    let (store, api) = store(fake_client(vec![]).await);
    let user = store
        .create(profile("ada@acme.example", Some("00u1ada")), true)
        .await
        .expect("created");
    store.delete(&user.id).await.expect("deleted");
    assert!(api.get_opt(&user.id).await.expect("read").is_none());
    assert!(matches!(
        store.delete(&user.id).await,
        Err(ScimStoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get(&user.id).await,
        Err(ScimStoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn listing_is_ordered_and_narrowed_by_user_name_without_case() {
    let (store, _) = store(fake_client(vec![]).await);
    for (name, id) in [("b@x", "2"), ("a@x", "1"), ("c@x", "3")] {
        store
            .create(profile(name, Some(id)), true)
            .await
            .expect("created");
    }
    let listed = store.list(Narrow::default()).await.expect("listed");
    let keys: Vec<_> = listed.iter().map(|u| u.order_key()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let narrowed = store
        .list(Narrow {
            user_name: Some("B@X"),
            external_id: None,
        })
        .await
        .expect("listed");
    assert_eq!(narrowed.len(), 1);
    assert_eq!(narrowed[0].profile.user_name, "b@x");
    let by_id = store
        .list(Narrow {
            user_name: None,
            external_id: Some("3"),
        })
        .await
        .expect("listed");
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].profile.user_name, "c@x");
}

#[tokio::test]
async fn sign_ins_in_scim_mode_find_only_pushed_users_by_their_external_id() {
    let client = fake_client(vec![]).await;
    let (store, _) = store(client.clone());
    let provisioner = scim_provisioner(client);
    let err = provisioner
        .admit(&sign_in("00u1ada"))
        .await
        .expect_err("not pushed yet");
    assert!(matches!(err, ProvisionError::NotProvisioned), "{err}");

    let user = store
        .create(profile("ada@acme.example", Some("00u1ada")), true)
        .await
        .expect("pushed");
    let admitted = provisioner
        .admit(&sign_in("00u1ada"))
        .await
        .expect("admitted");
    assert_eq!(admitted.name(), user.id);

    // The IdP changes the person's externalId: the old id no longer signs in, the new one
    // finds the same SsoUser (by its identity label).
    store
        .update(&user.id, |u| {
            let mut p = u.profile.clone();
            p.external_id = Some("00u1ada-new".into());
            Ok::<_, ()>((p, true))
        })
        .await
        .expect("written")
        .expect("accepted");
    let err = provisioner
        .admit(&sign_in("00u1ada"))
        .await
        .expect_err("the old id is no longer this user's");
    assert!(
        matches!(
            err,
            ProvisionError::NotProvisioned | ProvisionError::Collision { .. }
        ),
        "{err}"
    );
    let admitted = provisioner
        .admit(&sign_in("00u1ada-new"))
        .await
        .expect("admitted by the new id");
    assert_eq!(admitted.name(), user.id);
    let done = provisioner
        .provision(&sign_in("00u1ada-new"))
        .await
        .expect("provisioned");
    assert_eq!(done.name, user.id);
    assert!(!done.created, "a sign-in never creates a second user");

    // Deactivated: refused.
    store
        .update(&user.id, |u| Ok::<_, ()>((u.profile.clone(), false)))
        .await
        .expect("written")
        .expect("accepted");
    let err = provisioner
        .admit(&sign_in("00u1ada-new"))
        .await
        .expect_err("suspended");
    assert!(matches!(err, ProvisionError::Suspended), "{err}");
}

#[tokio::test]
async fn the_watch_remembers_deleted_users_places_for_paging() {
    let (cache, mut feeder) = UserCache::new(NS, CONFIG, Duration::from_secs(300));
    let mut mine = existing("mine", "1", CONFIG, Some(SOURCE_SCIM));
    mine.metadata.creation_timestamp = Some(Time("2026-01-02T03:04:05Z".parse().expect("time")));
    let theirs = existing("theirs", "2", "billing", Some(SOURCE_SCIM));
    feeder.apply(Ok(watcher::Event::Delete(mine)));
    feeder.apply(Ok(watcher::Event::Delete(theirs)));
    let tombstones = cache.tombstones().recent();
    assert_eq!(
        tombstones,
        vec![Tombstone {
            created: "2026-01-02T03:04:05Z"
                .parse::<jiff::Timestamp>()
                .expect("time")
                .as_second(),
            id: "mine".into()
        }],
        "only this config's users"
    );
}
