//! A real browser (Debian Chromium, driven by playwright-core) through SAML sign-in: the app's
//! URL → the login page → the SAML button → the pysaml2 IdP's form → its auto-posting
//! HTTP-POST form → the sidecar's ACS → back at the app.
//!
//! These tests FAIL when Chromium is missing (with the command to install it): a browser test
//! that silently passes would hide that it never ran.

use gatehouse_tests::saml_idp::{
    ADMIN, FixtureUser, MEMBER, NOBODY, SamlBrowserOutcome, SamlStack, browser_sign_in,
};

async fn sign_in(stack: &SamlStack, user: FixtureUser, logout: bool) -> SamlBrowserOutcome {
    let url = stack.url("/dashboard");
    tokio::task::spawn_blocking(move || browser_sign_in(&url, user, logout))
        .await
        .expect("join")
        .expect("browser sign-in")
}

#[tokio::test]
async fn saml_browser_admin_and_member_land_on_the_app_with_their_role() {
    gatehouse_tests::browser::chromium_path().expect("Chromium is needed for this test");
    let stack = SamlStack::start_default().await.expect("stack");
    for (user, role) in [(ADMIN, "admin"), (MEMBER, "member")] {
        let outcome = sign_in(&stack, user, false).await;
        assert!(outcome.login_url.contains("/login"), "{outcome:?}");
        assert!(
            outcome.buttons.iter().any(|b| b.contains("SAML")),
            "the login page should show the SAML button: {outcome:?}"
        );
        assert!(
            outcome
                .navigations
                .iter()
                .any(|n| n.starts_with("POST ") && n.contains("/api/auth/saml/acs")),
            "the IdP's form should POST to the ACS: {outcome:?}"
        );
        assert_eq!(outcome.final_url, stack.url("/dashboard"), "{outcome:?}");
        assert_eq!(outcome.status, Some(200), "{outcome:?}");
        let id = |h: &str| outcome.identity.get(h).map(String::as_str);
        assert_eq!(
            id("x-forwarded-email"),
            Some(user.email().as_str()),
            "{outcome:?}"
        );
        assert_eq!(id("x-forwarded-groups"), Some(role), "{outcome:?}");
        assert_eq!(id("x-forwarded-provider"), Some("saml"), "{outcome:?}");
    }
}

#[tokio::test]
async fn saml_browser_denied_user_sees_a_403_page() {
    gatehouse_tests::browser::chromium_path().expect("Chromium is needed for this test");
    let stack = SamlStack::start_default().await.expect("stack");
    let outcome = sign_in(&stack, NOBODY, false).await;
    assert_eq!(outcome.status, Some(403), "{outcome:?}");
    assert!(
        outcome.final_url.starts_with(&stack.sidecar.url),
        "{outcome:?}"
    );
    assert!(
        outcome.identity.is_empty(),
        "a denied user reached the app: {outcome:?}"
    );
    assert!(outcome.text.contains("No access"), "{outcome:?}");
}

#[tokio::test]
async fn saml_browser_logout_passes_through_the_idps_single_logout_service() {
    gatehouse_tests::browser::chromium_path().expect("Chromium is needed for this test");
    let stack = SamlStack::start_default().await.expect("stack");
    let outcome = sign_in(&stack, ADMIN, true).await;
    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    let logout = outcome.logout.clone().expect("logout outcome");
    assert!(
        logout.urls.iter().any(|u| u.contains(&stack.idp().slo_url)),
        "logout should pass through the IdP's SingleLogoutService: {logout:?}"
    );
    assert!(
        logout.final_url.starts_with(&stack.sidecar.url),
        "{logout:?}"
    );
    assert!(!logout.text.contains("Signed in as"), "{logout:?}");
}
