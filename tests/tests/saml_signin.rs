//! SAML sign-in over HTTP with real IdPs: the pysaml2 fixture (signs with xmlsec1) and samlify
//! (a second implementation), the sidecar binary configured by `SAML_*` variables only.

use std::time::Duration;

use gatehouse_tests::saml_idp::{
    ADMIN, ADMIN_DN, IdpKind, MEMBER, METADATA_PATH, NOBODY, NOROLE, SamlFlow, SamlOptions,
    SamlStack, audit_logged, get_app, session_of,
};

const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

#[tokio::test]
async fn saml_sp_metadata_is_read_by_the_idps_own_metadata_parser() {
    let stack = SamlStack::start_default().await.expect("stack");
    let summary = stack
        .idp()
        .load_sp()
        .await
        .expect("pysaml2 parses the SP metadata");
    assert_eq!(summary.entity_id, stack.url(METADATA_PATH), "{summary:?}");
    assert_eq!(
        summary.acs,
        vec![stack.url("/api/auth/saml/acs")],
        "{summary:?}"
    );
    assert_eq!(
        summary.acs_bindings,
        vec!["urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST".to_owned()]
    );
    assert!(
        summary.name_id_formats.iter().any(|f| f == PERSISTENT),
        "{summary:?}"
    );
    assert_eq!(summary.want_assertions_signed.as_deref(), Some("true"));
    assert_eq!(summary.slo, vec![stack.url("/api/auth/logout")]);
}

#[tokio::test]
async fn saml_admin_and_member_sign_in_and_reach_the_app_with_their_identity() {
    let stack = SamlStack::start_default().await.expect("stack");
    for user in [ADMIN, MEMBER] {
        let (flow, post, answer) = SamlFlow::sign_in(&stack.sidecar.url, user)
            .await
            .expect("flow");
        // The IdP answered the request this browser started, and posts to the ACS.
        assert_eq!(post.action.as_str(), stack.url("/api/auth/saml/acs"));
        let session = session_of(&answer).unwrap_or_else(|| {
            panic!(
                "{}: no session: {} {}",
                user.login, answer.status, answer.body
            )
        });
        assert!(answer.status.is_redirection(), "{answer:?}");
        assert_eq!(answer.location(), Some("/dashboard"), "{answer:?}");
        // The attempt cookie is spent: it is deleted with the answer.
        assert!(
            answer
                .set_cookies()
                .iter()
                .any(|c| c.contains("gatehouse-attempt-")
                    && c.to_ascii_lowercase().contains("max-age=0")),
            "{}: the attempt cookie was not deleted: {:?} (jar: {})",
            user.login,
            answer.set_cookies(),
            flow.cookies()
        );
        let (app, seen) = get_app(&stack.sidecar.url, Some(&session), "/dashboard")
            .await
            .expect("app");
        let seen = seen.unwrap_or_else(|| panic!("{}: not at the app: {app:?}", user.login));
        assert_eq!(
            seen.header("x-forwarded-email"),
            Some(user.email().as_str())
        );
        assert_eq!(seen.header("x-forwarded-groups"), user.role);
        assert_eq!(seen.header("x-forwarded-provider"), Some("saml"));
        assert_eq!(
            seen.header("x-forwarded-org"),
            Some(gatehouse_tests::stack::ORG_ID)
        );
        assert!(seen.header("x-gatehouse-identity").is_some());
    }
    let logs = stack.sidecar.process.logs.text();
    assert!(
        audit_logged(&logs, "success", "none"),
        "no success audit line"
    );
    // The admin's role came from an LDAP DN with commas: the JSON role map carried it whole.
    assert!(ADMIN_DN.contains(','));
}

#[tokio::test]
async fn saml_users_whose_roles_map_to_nothing_are_denied_with_a_403_page() {
    let stack = SamlStack::start_default().await.expect("stack");
    for (user, reason) in [(NOBODY, "role_not_mapped"), (NOROLE, "role_claim_missing")] {
        let answer = stack.attempt(user).await.expect("flow");
        assert_eq!(answer.status.as_u16(), 403, "{}: {answer:?}", user.login);
        assert!(session_of(&answer).is_none(), "{}", user.login);
        assert!(
            answer.body.contains("<h1>"),
            "{}: {}",
            user.login,
            answer.body
        );
        assert!(
            stack.wait_audit("denied", reason).await,
            "{}: no audit line with reason {reason}",
            user.login
        );
    }
    // And an admin still signs in (the denial is about the users, not the stack).
    stack.sign_in(ADMIN).await.expect("admin");
}

#[tokio::test]
async fn saml_transient_nameid_from_the_idp_is_refused_with_a_clear_page() {
    let stack = SamlStack::start_default().await.expect("stack");
    stack
        .sign_in(MEMBER)
        .await
        .expect("persistent NameID works");
    stack
        .idp()
        .settings(serde_json::json!({"name_id_format": "transient"}))
        .await
        .expect("settings");
    let answer = stack.attempt(MEMBER).await.expect("flow");
    assert_eq!(answer.status.as_u16(), 403, "{answer:?}");
    assert!(session_of(&answer).is_none());
    assert!(answer.body.contains("No stable account"), "{}", answer.body);
    assert!(stack.wait_audit("denied", "saml_nameid_transient").await);
}

#[tokio::test]
async fn saml_responses_signed_only_on_the_response_or_only_on_the_assertion_are_accepted() {
    let stack = SamlStack::start_default().await.expect("stack");
    for (sign_response, sign_assertion) in [(true, false), (false, true), (true, true)] {
        stack
            .idp()
            .settings(serde_json::json!({
                "sign_response": sign_response, "sign_assertion": sign_assertion
            }))
            .await
            .expect("settings");
        stack.sign_in(ADMIN).await.unwrap_or_else(|e| {
            panic!("response signed {sign_response}, assertion signed {sign_assertion}: {e:#}")
        });
    }
    // Neither signed: refused.
    stack
        .idp()
        .settings(serde_json::json!({"sign_response": false, "sign_assertion": false}))
        .await
        .expect("settings");
    let answer = stack.attempt(ADMIN).await.expect("flow");
    assert!(
        session_of(&answer).is_none(),
        "an unsigned response was accepted"
    );
    assert_eq!(answer.status.as_u16(), 400, "{answer:?}");
    assert!(stack.wait_audit("failed", "saml_signature_invalid").await);
}

#[tokio::test]
async fn saml_sign_in_at_a_second_idp_implementation_samlify_works() {
    let stack = SamlStack::start(SamlOptions {
        idp: IdpKind::Samlify,
        ..SamlOptions::default()
    })
    .await
    .expect("stack with the samlify IdP");
    let session = stack.sign_in(ADMIN).await.expect("admin at samlify");
    let (_, seen) = get_app(&stack.sidecar.url, Some(&session), "/")
        .await
        .expect("app");
    let seen = seen.expect("at the app");
    assert_eq!(seen.header("x-forwarded-groups"), Some("admin"));
    assert_eq!(seen.header("x-forwarded-email"), Some("admin@example.com"));
    // A denied user at samlify is denied as at pysaml2.
    let answer = stack.attempt(NOBODY).await.expect("flow");
    assert_eq!(answer.status.as_u16(), 403, "{answer:?}");
}

#[tokio::test]
async fn saml_logout_ends_the_session_and_sends_the_browser_to_the_idps_single_logout() {
    let stack = SamlStack::start_default().await.expect("stack");
    let (flow, _, answer) = SamlFlow::sign_in(&stack.sidecar.url, ADMIN)
        .await
        .expect("flow");
    let session = session_of(&answer).expect("admin signed in");
    let client = gatehouse_tests::http_client().expect("client");
    // The browser sends every cookie the sidecar set for it (following the app's own link).
    let res = client
        .get(stack.url("/api/auth/logout"))
        .header("sec-fetch-site", "same-origin")
        .header("cookie", flow.cookies())
        .header("accept", "text/html")
        .send()
        .await
        .expect("logout");
    assert!(res.status().is_redirection(), "{}", res.status());
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_owned();
    assert!(
        location.starts_with(&stack.idp().slo_url) && location.contains("SAMLRequest="),
        "logout should go to the IdP's SingleLogoutService: {location}"
    );
    // The browser follows: the IdP receives a LogoutRequest naming the admin's NameID.
    let at_idp = client.get(&location).send().await.expect("IdP SLO");
    assert!(
        at_idp.status().is_redirection() || at_idp.status().is_success(),
        "{}",
        at_idp.status()
    );
    let events = stack.idp().events().await.expect("events");
    let logout = events
        .iter()
        .find(|e| e["kind"] == "logout_request")
        .unwrap_or_else(|| panic!("the IdP got no LogoutRequest: {events:?}"));
    assert_eq!(logout["name_id"], ADMIN.name_id, "{logout}");
    assert_eq!(logout["issuer"], stack.url(METADATA_PATH), "{logout}");
    // The old cookie no longer reaches the app.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (answer, seen) = get_app(&stack.sidecar.url, Some(&session), "/dashboard")
        .await
        .expect("app");
    assert!(
        seen.is_none(),
        "the cookie still works after logout: {answer:?}"
    );
}

#[tokio::test]
async fn saml_readyz_is_false_until_the_idp_metadata_is_loaded() {
    use gatehouse_tests::{
        process::free_port,
        saml_idp::{SamlIdp, saml_env},
        stack::{SampleApp, Sidecar, StackOptions, sidecar_env},
    };
    // The sidecar starts while nothing listens at the metadata URL.
    let (port, admin_port, idp_port) = (
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let admin = format!("http://127.0.0.1:{admin_port}");
    let app = SampleApp::start().expect("app");
    let options = StackOptions {
        providers: Vec::new(),
        extra_env: saml_env(&format!("http://127.0.0.1:{idp_port}/metadata")).expect("env"),
        ..StackOptions::default()
    };
    let env = sidecar_env(&options, 0, "", &url, port, admin_port, &app.url).expect("env");
    let sidecar = Sidecar::start(env, url.clone(), admin.clone()).expect("sidecar");
    let http = gatehouse_tests::http_client().expect("client");
    let readyz = || {
        let http = http.clone();
        let admin = admin.clone();
        async move {
            http.get(format!("{admin}/readyz"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    // Give it time to listen and to try (and fail) to load the metadata.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while readyz().await == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        readyz().await,
        503,
        "/readyz must be false while the IdP metadata is not loaded; sidecar logs:\n{}",
        sidecar.process.logs.text()
    );
    // The IdP comes up: the sidecar loads its metadata (retrying) and becomes ready.
    let _idp = SamlIdp::start_on(&format!("{url}{METADATA_PATH}"), idp_port).expect("idp");
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while readyz().await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz did not become true once the metadata was served; logs:\n{}",
            sidecar.process.logs.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
