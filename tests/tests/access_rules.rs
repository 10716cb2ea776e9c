//! Access rules end to end: users signed in through the real fixture OIDC provider (its
//! Auth0-shaped issuer sends `groups`, its Okta-shaped one none), the sidecar in process on the
//! in-memory Kubernetes API. The groups come from the ID token at sign-in, are recorded on the
//! SsoUser, and decide requests; the rule engine's own tables are in gatehouse-auth, the attacks on
//! the gate in sidecar/tests/access.rs.

use anyhow::Result;
use gatehouse_crds::names::sso_user_name;
use gatehouse_tests::ProviderKind;
use gatehouse_tests::kube_stack::{KubeOptions, KubeStack};
use reqwest::StatusCode;
use serde_json::json;

fn policy() -> String {
    json!({"rules": [
        {"name": "portal-admins", "action": "Allow",
         "from": [{"groups": ["portal-admins"]}], "to": [{"paths": ["/admin"]}]},
        {"name": "signed-in-read", "action": "Allow",
         "from": [{"authenticated": true}], "to": [{"paths": ["/docs"]}]}
    ]})
    .to_string()
}

#[tokio::test]
async fn groups_from_the_id_token_decide_requests_and_are_recorded_on_the_ssouser() -> Result<()> {
    let stack = KubeStack::start(KubeOptions {
        access: Some(policy()),
        ..KubeOptions::default()
    })
    .await?;
    // ada is in portal-admins at the IdP; sam is staff; the Okta-shaped ada is an admin by role
    // but in no group.
    let ada = stack.sign_in(ProviderKind::Oidc, "ada").await?;
    let sam = stack.sign_in(ProviderKind::Oidc, "sam").await?;
    let okta_ada = stack.sign_in(ProviderKind::Okta, "ada").await?;

    assert_eq!(
        stack.get(&ada, "/admin/users").await?.status,
        StatusCode::OK
    );
    assert_eq!(stack.get(&ada, "/docs").await?.status, StatusCode::OK);
    assert_eq!(
        stack.get(&ada, "/other").await?.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(stack.get(&sam, "/docs").await?.status, StatusCode::OK);
    assert_eq!(
        stack.get(&sam, "/admin").await?.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack.get(&okta_ada, "/admin").await?.status,
        StatusCode::FORBIDDEN,
        "an admin role is not a group the rule names"
    );

    // The SsoUser records every group the IdP sent (the identity JWT carries only those the rules
    // name: sidecar/tests/access.rs).
    let users = stack.all_users().await?;
    let name = sso_user_name(
        gatehouse_tests::kube_stack::CONFIG,
        &stack.idp.oidc_id,
        &stack.idp.oidc_issuer,
        "auth0|ada0001",
    );
    let user = users
        .iter()
        .find(|u| u.metadata.name.as_deref() == Some(name.as_str()))
        .expect("ada's SsoUser");
    let status = user.status.clone().expect("status");
    assert_eq!(status.groups, ["portal-admins", "everyone"]);
    Ok(())
}
