//! Issue 32: single logout started by the SAML IdP. The pysaml2 fixture IdP sends the
//! LogoutRequest (HTTP-Redirect, signed with its metadata key) through the browser to the SP's
//! SingleLogoutService; the sidecar ends the named session on every replica and answers with a
//! LogoutResponse signed by its own key, which the IdP checks against the SP metadata. Forged,
//! unsigned, altered, replayed, expired and other-IdP requests end nothing.

use gatehouse_crds::names::sso_user_name;
use gatehouse_tests::flow::Session;
use gatehouse_tests::saml_idp::{
    ADMIN, KUBE_CONFIG, MEMBER, SamlFlow, SamlKubeStack, SamlStack, get_app, session_of,
};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// A browser client that does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The browser arrives at the SP's logout URL from the IdP's page, with `session`'s cookies.
async fn arrive(url: &str, session: &Session) -> reqwest::Response {
    arrive_with(url, Some(session)).await
}

/// As [`arrive`]; `None`: without the SP's cookies, as in an IdP's hidden iframe, where a
/// `SameSite=Lax` cookie is not sent.
async fn arrive_with(url: &str, session: Option<&Session>) -> reqwest::Response {
    let mut request = browser().get(url);
    if let Some(session) = session {
        request = request.header(COOKIE, session.cookie_header());
    }
    request
        .header("sec-fetch-site", "cross-site")
        .header("accept", "text/html")
        .send()
        .await
        .expect("request")
}

async fn reaches(base: &str, session: &Session) -> bool {
    get_app(base, Some(session), "/dashboard")
        .await
        .expect("request")
        .1
        .is_some()
}

async fn sign_in(base: &str, user: gatehouse_tests::saml_idp::FixtureUser) -> Session {
    let (_, _, answer) = SamlFlow::sign_in(base, user).await.expect("flow");
    session_of(&answer).unwrap_or_else(|| panic!("no session: {} {}", answer.status, answer.body))
}

#[tokio::test]
async fn signing_out_at_the_idp_ends_the_session_on_every_replica() {
    let mut stack = SamlKubeStack::start().await.expect("stack");
    let ada = sign_in(stack.url(), ADMIN).await;
    let max = sign_in(stack.url(), MEMBER).await;
    stack.sync().await.expect("sync");
    let mut replica = stack.start_replica().await.expect("replica");
    replica.sync().await.expect("replica sync");
    let other = replica.url("");
    assert!(reaches(stack.url(), &ada).await && reaches(&other, &ada).await);

    let logout = stack
        .idp
        .idp_logout(ADMIN.login, true, None)
        .await
        .expect("logout request");
    // Sent through an iframe of the IdP's: the SP's cookie does not come along, so only the
    // SessionIndex the request names can end the session.
    let res = arrive_with(&logout.url, None).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = res.headers()[LOCATION]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        back.starts_with(&stack.idp.slo_url) && back.contains("SAMLResponse="),
        "{back}"
    );
    // The browser goes back to the IdP, which checks the SP's signature.
    let at_idp = browser().get(&back).send().await.expect("idp");
    let status = at_idp.status();
    let body = at_idp.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = stack.idp.events().await.expect("events");
    let response = events
        .iter()
        .find(|e| e["kind"] == "logout_response")
        .unwrap_or_else(|| panic!("no logout_response at the IdP: {events:#?}"));
    assert_eq!(response["in_response_to"], logout.id.as_str());
    assert_eq!(
        response["status"],
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );
    assert_eq!(response["signed"], true);
    assert_eq!(
        response["sp_certs"], 1,
        "the SP metadata publishes its signing certificate"
    );
    assert_eq!(
        response["signature_valid"], true,
        "the SP's LogoutResponse verifies with its metadata certificate: {response}"
    );
    assert_eq!(response["relay_state"], "from-the-idp");

    // Ended here at once; recorded on the SsoUser for the other replicas.
    assert!(!reaches(stack.url(), &ada).await);
    let name = sso_user_name(KUBE_CONFIG, "saml", &stack.idp.entity_id, ADMIN.name_id);
    let user = stack.users.get(&name).await.expect("SsoUser");
    let revoked = user.status.map(|s| s.revoked_sessions).unwrap_or_default();
    assert!(
        revoked.iter().any(|r| r.id == logout.session_index),
        "the IdP session is revoked: {revoked:?}"
    );
    replica.deliver_current(&name).await.expect("watch event");
    assert!(
        !reaches(&other, &ada).await,
        "the other replica ends the session once its watch carries the SsoUser"
    );
    // Another user's session is untouched on both.
    assert!(reaches(stack.url(), &max).await && reaches(&other, &max).await);
}

#[tokio::test]
async fn forged_unsigned_altered_replayed_expired_and_other_idp_requests_end_nothing() {
    let stack = SamlStack::start_default().await.expect("stack");
    let ada = stack.sign_in(ADMIN).await.expect("sign-in");
    let base = stack.url("");
    let refused = |reason: &str| {
        let logs = stack.logs();
        logs.lines().any(|l| {
            l.contains("gatehouse::audit")
                && l.contains("saml_idp_logout")
                && l.contains(&format!("reason=\"{reason}\""))
        })
    };
    for (forge, reason) in [
        ("unsigned", "saml_logout_unsigned"),
        ("other-key", "saml_signature_invalid"),
        ("altered", "saml_signature_invalid"),
        ("expired", "saml_expired"),
        ("other-idp", "saml_signature_invalid"),
    ] {
        let logout = stack
            .idp()
            .idp_logout(ADMIN.login, true, Some(forge))
            .await
            .unwrap_or_else(|e| panic!("{forge}: {e:#}"));
        let res = arrive(&logout.url, &ada).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{forge}");
        assert!(
            res.headers().get(SET_COOKIE).is_none(),
            "{forge}: no cookie is touched"
        );
        let page = res.text().await.expect("page");
        assert!(page.contains("Sign-out request refused"), "{forge}: {page}");
        assert!(reaches(&base, &ada).await, "{forge} ended the session");
        let mut logged = false;
        for _ in 0..50 {
            logged = refused(reason);
            if logged {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(logged, "{forge}: no audit line with reason {reason}");
    }

    // The genuine request ends the session and deletes the browser's cookies; sent again, it
    // is refused.
    let logout = stack
        .idp()
        .idp_logout(ADMIN.login, true, None)
        .await
        .expect("logout");
    let res = arrive(&logout.url, &ada).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let deleted: Vec<String> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        deleted
            .iter()
            .any(|c| c.starts_with(&format!("{}=;", ada.cookie_name))),
        "the browser's session cookie is deleted: {deleted:?}"
    );
    assert!(!reaches(&base, &ada).await);
    let again = stack.sign_in(ADMIN).await.expect("sign in again");
    let replayed = arrive(&logout.url, &again).await;
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    assert!(reaches(&base, &again).await, "a replay ends nothing");
    let mut logged = false;
    for _ in 0..50 {
        logged = refused("saml_logout_replayed");
        if logged {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(logged, "no audit line for the replay");
}
