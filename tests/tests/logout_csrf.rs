//! Logout from another site (hardening #6): `/api/auth/logout` ends the session on every replica
//! and, through RP-initiated (OIDC) or SP-initiated (SAML) logout, at the identity provider too,
//! so another site must not be able to make a signed-in browser go there.
//!
//! A real browser (Debian Chromium, driven by playwright-core: fixtures/idp/browser-logout.mjs)
//! follows another site's link to the logout path and gets another site's form POSTed to it —
//! with the fetch metadata, `Origin` and `SameSite=Lax` cookies a browser really sends — then
//! signs out the ways an app offers: the sample app's button, and the button of the page the
//! sidecar asks with. SAML's SP-initiated logout, over HTTP: another site's link does not send
//! the browser to the IdP's single logout.
//!
//! The browser test FAILS when Chromium is missing (with the command to install it).

use gatehouse_tests::saml_idp::{ADMIN, SamlFlow, SamlStack, get_app, session_of};
use gatehouse_tests::{Stack, browser, idp::PASSWORD, process::idp_dir};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Landing {
    url: String,
    status: Option<u16>,
    text: String,
    confirm_form: bool,
    signed_in_after: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AfterButton {
    url: String,
    #[serde(default)]
    signed_in_before: Option<bool>,
    signed_in_after: bool,
    /// What went wrong on the way, when something did ("no page asked").
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogoutOutcome {
    signed_in: bool,
    cross_site_link: Landing,
    cross_site_form: Landing,
    confirm_button: AfterButton,
    app_button: AfterButton,
}

#[tokio::test]
async fn browser_another_site_cannot_sign_the_user_out_and_the_apps_button_can() {
    browser::chromium_path().expect("Chromium is needed for this test");
    let stack = Stack::start_default().await.expect("stack");
    let url = stack.url("/dashboard");
    let outcome: LogoutOutcome = tokio::task::spawn_blocking(move || {
        browser::run_driver(&idp_dir(), "browser-logout.mjs", "logout-csrf", |cmd| {
            cmd.args(["--url", &url, "--provider", "okta", "--user", "ada"])
                .args(["--password", PASSWORD]);
        })
    })
    .await
    .expect("join")
    .expect("browser run");
    assert!(outcome.signed_in, "{outcome:?}");

    // Another site's link: the Lax cookie goes along, the page asks, nothing ends.
    let link = &outcome.cross_site_link;
    assert!(
        link.signed_in_after,
        "following another site's link to /api/auth/logout signed the user out: {outcome:?}"
    );
    assert_eq!(link.status, Some(200), "{outcome:?}");
    assert!(link.url.starts_with(&stack.sidecar.url), "{outcome:?}");
    assert!(link.confirm_form, "the page asks: {outcome:?}");
    assert!(link.text.contains("Sign out"), "{outcome:?}");

    // Another site's form: refused, nothing ends (not even the cookie in this browser).
    let form = &outcome.cross_site_form;
    assert!(
        form.signed_in_after,
        "another site's form POST to /api/auth/logout signed the user out: {outcome:?}"
    );
    assert_eq!(form.status, Some(403), "{outcome:?}");

    // The user, asked, signs out: the form POSTs from the sidecar's own page.
    assert_eq!(outcome.confirm_button.error, None, "{outcome:?}");
    assert!(
        !outcome.confirm_button.signed_in_after,
        "the confirmation page's button did not sign out: {outcome:?}"
    );
    // The app's own sign-out button (a same-origin form POST).
    assert_eq!(
        outcome.app_button.signed_in_before,
        Some(true),
        "{outcome:?}"
    );
    assert!(
        !outcome.app_button.signed_in_after,
        "the app's sign-out button did not sign out: {outcome:?}"
    );
    assert!(
        !outcome.app_button.url.starts_with(&stack.url("/dashboard")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn saml_another_sites_link_does_not_start_single_logout_and_the_apps_link_does() {
    let stack = SamlStack::start_default().await.expect("stack");
    let (flow, _, answer) = SamlFlow::sign_in(&stack.sidecar.url, ADMIN)
        .await
        .expect("flow");
    let session = session_of(&answer).expect("admin signed in");
    let client = gatehouse_tests::http_client().expect("client");

    // A link on another site, as Chromium sends it; and as a browser without fetch metadata.
    for headers in [
        vec![
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
        ],
        vec![],
    ] {
        let mut req = client
            .get(stack.url("/api/auth/logout"))
            .header("cookie", flow.cookies())
            .header("accept", "text/html");
        for (name, value) in &headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.expect("logout");
        assert_eq!(res.status(), 200, "{headers:?}");
        assert!(res.headers().get("location").is_none(), "{headers:?}");
        assert!(res.headers().get("set-cookie").is_none(), "{headers:?}");
        let page = res.text().await.expect("page");
        assert!(
            page.contains("<form method=\"post\" action=\"/api/auth/logout\">"),
            "{page}"
        );
        let events = stack.idp().events().await.expect("events");
        assert!(
            !events.iter().any(|e| e["kind"] == "logout_request"),
            "{headers:?}: the IdP got a LogoutRequest: {events:?}"
        );
        let (answer, seen) = get_app(&stack.sidecar.url, Some(&session), "/dashboard")
            .await
            .expect("app");
        assert!(seen.is_some(), "{headers:?}: the session ended: {answer:?}");
    }

    // The app's sign-out button: a POST from its own origin goes on to the IdP's single logout.
    let res = client
        .post(stack.url("/api/auth/logout"))
        .header("cookie", flow.cookies())
        .header("origin", &stack.sidecar.url)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), 303);
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        location.starts_with(&stack.idp().slo_url) && location.contains("SAMLRequest="),
        "{location}"
    );
    let (answer, seen) = get_app(&stack.sidecar.url, Some(&session), "/dashboard")
        .await
        .expect("app");
    assert!(
        seen.is_none(),
        "the session outlived its logout: {answer:?}"
    );
}
