//! Profile claims from the IdP's UserInfo endpoint, end to end with the fixture OIDC provider:
//! an account whose ID tokens leave claims out still gets its email, name and mapped attributes
//! (from UserInfo), and never its role (the role comes from the verified ID token only).

use gatehouse_tests::kube_stack::{KubeOptions, KubeStack};
use gatehouse_tests::stack::ProviderKind;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn profile_claims_missing_from_the_id_token_come_from_userinfo() {
    let mut stack = KubeStack::start(KubeOptions::default())
        .await
        .expect("stack");
    stack.sync().await.expect("sync");
    stack
        .idp
        .set_userinfo_only("okta", "bob", &["email", "name", "department"])
        .await
        .expect("fixture");
    let session = stack
        .sign_in(ProviderKind::Okta, "bob")
        .await
        .expect("sign in");

    let answer = stack
        .get(&session, "/api/auth/session")
        .await
        .expect("session");
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let me: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(me["user"]["email"], "bob@example.com", "{me}");
    assert_eq!(me["user"]["name"], "Bob Builder", "{me}");
    assert_eq!(me["user"]["role"], "member", "{me}");

    let users = stack.all_users().await.expect("list");
    let status = users
        .first()
        .and_then(|u| u.status.clone())
        .expect("status");
    assert_eq!(status.email.as_deref(), Some("bob@example.com"));
    assert_eq!(
        status.attributes.get("department").map(String::as_str),
        Some("Construction"),
        "a mapped attribute only UserInfo has"
    );
}

#[tokio::test]
async fn a_role_claim_found_only_in_userinfo_is_still_denied() {
    let mut stack = KubeStack::start(KubeOptions::default())
        .await
        .expect("stack");
    stack.sync().await.expect("sync");
    // bob's role claim (`user_type`) and his email are only at UserInfo, which the sidecar would
    // ask for the email: the role it answers must not count.
    stack
        .idp
        .set_userinfo_only("okta", "bob", &["user_type", "email"])
        .await
        .expect("fixture");
    let attempt = stack
        .attempt(ProviderKind::Okta, "bob")
        .await
        .expect("attempt");
    assert!(attempt.session.is_none(), "a session without a role claim");
    assert_eq!(attempt.callback.status, StatusCode::FORBIDDEN);
    assert!(
        stack.all_users().await.expect("list").is_empty(),
        "a denied user was provisioned"
    );
}
