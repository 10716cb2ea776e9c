//! The fixtures themselves: the IdP serves three issuers of the right shapes, and the sample
//! app reports what it received. (If these fail, the end-to-end results mean nothing.)

use gatehouse_tests::{
    http_client,
    idp::{Idp, TENANT},
    sample::{MARKER_HEADER, MARKER_VALUE, STATIC_BODY, SeenRequest},
    stack::SampleApp,
};

#[tokio::test]
async fn idp_serves_okta_entra_and_generic_issuers() {
    let idp = Idp::start(&["http://127.0.0.1:1".to_owned()], "fixture-secret", 0).expect("idp");
    assert_eq!(
        idp.entra_issuer,
        format!("http://127.0.0.1:{}/entra/{TENANT}/v2.0", idp.port)
    );
    let client = http_client().expect("client");
    for issuer in [&idp.okta_issuer, &idp.entra_issuer, &idp.oidc_issuer] {
        let doc: serde_json::Value = client
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("JSON");
        assert_eq!(doc["issuer"].as_str(), Some(issuer.as_str()));
        let methods = doc["code_challenge_methods_supported"].to_string();
        assert!(methods.contains("S256"), "{doc}");
        let jwks_uri = doc["jwks_uri"].as_str().expect("jwks_uri");
        assert!(jwks_uri.starts_with(issuer.as_str()), "{jwks_uri}");
        let jwks: serde_json::Value = client
            .get(jwks_uri)
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("JSON");
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "{jwks}");
        assert!(doc["end_session_endpoint"].is_string(), "{doc}");
    }

    // Rotation publishes a new key and drops the old one.
    let before = jwks_kids(&client, &idp.okta_issuer).await;
    let kid = idp.rotate_key("okta").await.expect("rotate");
    let after = jwks_kids(&client, &idp.okta_issuer).await;
    assert_eq!(after, vec![kid.clone()]);
    assert!(!before.contains(&kid));

    // Tamper modes are validated.
    assert!(idp.tamper_next_token("okta", "no-such-mode").await.is_err());
    idp.tamper_next_token("entra", "alg-none")
        .await
        .expect("tamper");
}

async fn jwks_kids(client: &reqwest::Client, issuer: &str) -> Vec<String> {
    let jwks: serde_json::Value = client
        .get(format!("{issuer}/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn sample_app_reports_what_it_received() {
    let app = SampleApp::start().expect("app");
    let client = http_client().expect("client");

    let res = client
        .get(format!("{}/static", app.url))
        .send()
        .await
        .expect("static");
    assert_eq!(
        res.headers()[MARKER_HEADER].to_str().expect("marker"),
        MARKER_VALUE
    );
    assert_eq!(res.text().await.expect("body"), STATIC_BODY);

    let seen: SeenRequest = client
        .post(format!("{}/a/b?c=d", app.url))
        .header("accept", "application/json")
        .header("x-forwarded-email", "someone@example.com")
        .body("12345")
        .send()
        .await
        .expect("echo")
        .json()
        .await
        .expect("JSON");
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/a/b?c=d");
    assert_eq!(seen.body_bytes, 5);
    assert_eq!(
        seen.header("x-forwarded-email"),
        Some("someone@example.com")
    );

    let html = client
        .get(format!("{}/", app.url))
        .header("accept", "text/html")
        .header("x-forwarded-email", "<b>x</b>@example.com")
        .send()
        .await
        .expect("html")
        .text()
        .await
        .expect("body");
    assert!(
        html.contains("Signed in as &lt;b&gt;x&lt;/b&gt;@example.com"),
        "{html}"
    );
}
