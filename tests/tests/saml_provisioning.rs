//! What SAML sign-ins provision: the sidecar in process with `GATEHOUSE_PROVISIONING=kubernetes`
//! on kube-fake-client's in-memory API, signing in at the pysaml2 fixture IdP.

use gatehouse_crds::consts::{LABEL_CONFIG, LABEL_PROVIDER, LABEL_SOURCE, SOURCE_SSO};
use gatehouse_crds::names::sso_user_name;
use gatehouse_tests::saml_idp::{
    ADMIN, KUBE_CONFIG, MEMBER, NOBODY, NOROLE, SamlFlow, SamlKubeStack, all_attack_cases,
    run_attack, session_of,
};

#[tokio::test]
async fn saml_sign_in_provisions_an_ssouser_with_provider_saml() {
    let stack = SamlKubeStack::start().await.expect("stack");
    let (_, _, answer) = SamlFlow::sign_in(stack.url(), ADMIN).await.expect("flow");
    assert!(
        session_of(&answer).is_some(),
        "no session: {} {}",
        answer.status,
        answer.body
    );
    let users = stack.all_users().await.expect("list");
    assert_eq!(users.len(), 1, "{users:#?}");
    let user = &users[0];
    assert_eq!(
        user.metadata.name.as_deref(),
        Some(sso_user_name(KUBE_CONFIG, "saml", &stack.idp.entity_id, ADMIN.name_id).as_str())
    );
    assert_eq!(user.spec.provider, "saml");
    assert_eq!(user.spec.subject, ADMIN.name_id);
    assert_eq!(user.spec.config, KUBE_CONFIG);
    let labels = user.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(LABEL_PROVIDER).map(String::as_str), Some("saml"));
    assert_eq!(
        labels.get(LABEL_SOURCE).map(String::as_str),
        Some(SOURCE_SSO)
    );
    assert_eq!(
        labels.get(LABEL_CONFIG).map(String::as_str),
        Some(KUBE_CONFIG)
    );
    let status = user.status.clone().expect("status written at sign-in");
    assert_eq!(status.email.as_deref(), Some("admin@example.com"));
    assert_eq!(status.name.as_deref(), Some("Ada Admin"));
    assert_eq!(status.role.as_deref(), Some("admin"));
    assert_eq!(
        status.attributes.get("department").map(String::as_str),
        Some("R&D"),
        "GATEHOUSE_ATTRIBUTE_MAPPINGS maps SAML attributes"
    );
    assert_eq!(status.login_count, Some(1));
}

#[tokio::test]
async fn saml_denied_users_and_refused_responses_provision_nothing() {
    let stack = SamlKubeStack::start().await.expect("stack");
    let mut accepted = Vec::new();
    for user in [NOBODY, NOROLE] {
        let (_, _, answer) = SamlFlow::sign_in(stack.url(), user).await.expect("flow");
        if session_of(&answer).is_some() || answer.status.as_u16() != 403 {
            accepted.push(format!("{}: {}", user.login, answer.status));
        }
    }
    // The replays sign in genuinely first; they are checked against the binary instead.
    for case in all_attack_cases()
        .into_iter()
        .filter(|c| !c.attack.starts_with("replay"))
    {
        let run = run_attack(stack.url(), &stack.idp, case.attack, case.user)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", case.attack));
        if session_of(&run.answer).is_some() || run.answer.status.as_u16() != case.status {
            accepted.push(format!("{}: {}", case.attack, run.answer.status));
        }
    }
    let users = stack.all_users().await.expect("list");
    assert!(
        users.is_empty(),
        "refused sign-ins provisioned SsoUsers: {:?}",
        users.iter().map(|u| &u.metadata.name).collect::<Vec<_>>()
    );
    assert!(
        accepted.is_empty(),
        "not refused as expected: {accepted:#?}"
    );

    // Control: the same stack provisions a genuine member.
    let (_, _, answer) = SamlFlow::sign_in(stack.url(), MEMBER).await.expect("flow");
    assert!(session_of(&answer).is_some(), "{answer:?}");
    let users = stack.all_users().await.expect("list");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].spec.subject, MEMBER.name_id);
}
