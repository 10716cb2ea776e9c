//! A real browser (Debian Chromium, driven by playwright-core) through the whole sign-in:
//! the app's URL → the login page → the Okta button → the IdP's form → back at the app.
//!
//! These tests FAIL when Chromium is missing (with the command to install it): a browser test
//! that silently passes would hide that it never ran.

use gatehouse_tests::{Stack, StackOptions, browser, idp::PASSWORD};

#[tokio::test]
async fn browser_okta_admin_lands_on_the_app_with_identity_headers() {
    browser::chromium_path().expect("Chromium is needed for this test");
    let stack = Stack::start_default().await.expect("stack");
    let url = stack.url("/dashboard");
    let outcome =
        tokio::task::spawn_blocking(move || browser::sign_in(&url, "okta", "ada", PASSWORD))
            .await
            .expect("join")
            .expect("browser sign-in");
    assert!(
        outcome.login_url.contains("/login"),
        "the app's URL should lead to the login page first: {outcome:?}"
    );
    assert!(
        outcome
            .buttons
            .iter()
            .any(|b| b.to_ascii_lowercase().contains("okta")),
        "login page should show an Okta button: {outcome:?}"
    );
    assert_eq!(outcome.final_url, stack.url("/dashboard"), "{outcome:?}");
    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    assert_eq!(
        outcome
            .identity
            .get("x-forwarded-email")
            .map(String::as_str),
        Some("ada@example.com"),
        "{outcome:?}"
    );
    assert_eq!(
        outcome
            .identity
            .get("x-forwarded-groups")
            .map(|s| s.to_ascii_lowercase()),
        Some("admin".to_owned()),
        "{outcome:?}"
    );
    assert_eq!(
        outcome
            .identity
            .get("x-forwarded-provider")
            .map(String::as_str),
        Some("okta")
    );
    assert!(
        outcome.text.contains("Signed in as ada@example.com"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn browser_okta_denied_user_sees_a_403_page() {
    browser::chromium_path().expect("Chromium is needed for this test");
    let stack = Stack::start_default().await.expect("stack");
    let url = stack.url("/dashboard");
    let outcome =
        tokio::task::spawn_blocking(move || browser::sign_in(&url, "okta", "eve", PASSWORD))
            .await
            .expect("join")
            .expect("browser sign-in");
    assert_eq!(outcome.status, Some(403), "{outcome:?}");
    assert!(
        outcome.final_url.starts_with(&stack.sidecar.url),
        "the denial is the sidecar's page: {outcome:?}"
    );
    assert!(
        outcome.identity.is_empty(),
        "a denied user reached the app: {outcome:?}"
    );
    assert!(!outcome.text.contains("Signed in as"), "{outcome:?}");
    assert!(
        !outcome.text.trim().is_empty(),
        "the 403 page should explain the denial"
    );
}

#[tokio::test]
async fn browser_upload_over_the_body_limit_shows_the_413_page() {
    browser::chromium_path().expect("Chromium is needed for this test");
    let stack = Stack::start(StackOptions {
        extra_env: vec![("GATEHOUSE_MAX_REQUEST_BODY".into(), "1Mi".into())],
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let upload = |bytes: usize| {
        let url = stack.url("/dashboard");
        async move {
            tokio::task::spawn_blocking(move || {
                browser::sign_in_and_upload(&url, "okta", "ada", PASSWORD, bytes)
            })
            .await
            .expect("join")
            .expect("browser sign-in and upload")
            .upload
            .expect("the browser reports the upload")
        }
    };

    // Under the limit the app answers (the form and the session work).
    let small = upload(100 * 1024).await;
    assert_eq!(small.status, Some(200), "{small:?}");

    // 8 MiB against 1 MiB: the browser shows the sidecar's page, not a reset connection.
    let large = upload(8 * 1024 * 1024).await;
    assert_eq!(large.error, None, "{large:?}");
    assert_eq!(large.status, Some(413), "{large:?}");
    assert!(large.text.contains("Upload too large"), "{large:?}");
}
