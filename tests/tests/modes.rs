//! Sidecar modes and operations against real parts: login page, exclusive provider and its
//! break-glass, optional auth, skip-auth routes, anonymous requests, upstream down, readiness,
//! metrics, WebSocket upgrades and request bodies.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use gatehouse_tests::{
    ProviderKind, Stack, StackOptions, from_app, get_app, grown, http_client, metrics, raw,
};

async fn get_html(stack: &Stack, path: &str) -> reqwest::Response {
    http_client()
        .expect("client")
        .get(stack.url(path))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("request")
}

fn start_link(provider: &str) -> String {
    format!("/api/auth/oauth2/start/{provider}")
}

#[tokio::test]
async fn login_page_offers_every_enabled_provider_without_javascript() {
    let stack = Stack::start_default().await.expect("stack");
    let res = get_html(&stack, "/login").await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.expect("body");
    for p in ["okta", "entra", "auth0"] {
        assert!(
            body.contains(&start_link(p)),
            "login page lacks {p}: {body}"
        );
    }
    assert!(
        body.contains("Auth0"),
        "OIDC_PROVIDER_NAME should label the button"
    );
    // Works without JavaScript: the buttons are links or forms, not script handlers.
    assert!(body.contains("<a ") || body.contains("<form"), "{body}");
}

/// Issue 32: a config with three generic providers lists each on the login page under its own
/// label, signs users in through each (with that provider's org), and `AUTH_EXCLUSIVE_PROVIDER`
/// may name any of them, `?providers=all` still offering every one.
#[tokio::test]
async fn three_generic_providers_each_sign_in_and_any_may_be_the_exclusive_one() {
    let generic = vec![
        ProviderKind::Oidc,
        ProviderKind::ExtraOidc(0),
        ProviderKind::ExtraOidc(1),
    ];
    let stack = Stack::start(StackOptions {
        providers: generic.clone(),
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let body = get_html(&stack, "/login").await.text().await.expect("body");
    for (id, label) in [
        ("auth0", "Auth0"),
        ("partner", "partner (fixture)"),
        ("contractors", "contractors (fixture)"),
    ] {
        assert!(
            body.contains(&start_link(id)),
            "login page lacks {id}: {body}"
        );
        assert!(body.contains(label), "login page lacks the label {label}");
    }
    let mut users = Vec::new();
    for (kind, org) in
        generic
            .iter()
            .zip([gatehouse_tests::stack::ORG_ID, "partner", "contractors"])
    {
        let session = stack.sign_in(*kind, "ada").await.expect("sign-in");
        let (answer, seen) = get_app(&stack, Some(&session), "/", &[])
            .await
            .expect("request");
        let seen =
            seen.unwrap_or_else(|| panic!("{}: {} {}", kind.segment(), answer.status, answer.body));
        assert_eq!(seen.header("x-forwarded-provider"), Some(kind.segment()));
        assert_eq!(seen.header("x-forwarded-org"), Some(org));
        users.push(seen.header("x-forwarded-user").expect("user").to_owned());
    }
    // The same `sub` at three issuers is three people.
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 3, "{users:?}");

    let stack = Stack::start(StackOptions {
        providers: generic,
        exclusive: Some("contractors".into()),
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let res = get_html(&stack, "/login").await;
    if res.status().is_redirection() {
        let location = res.headers()["location"].to_str().unwrap_or("").to_owned();
        assert!(
            location.contains(&start_link("contractors"))
                || location.starts_with(&stack.idp().extra_oidc[1].1),
            "exclusive login should go to the contractors' IdP: {location}"
        );
    } else {
        let body = res.text().await.expect("body");
        assert!(body.contains(&start_link("contractors")), "{body}");
        for other in ["auth0", "partner"] {
            assert!(
                !body.contains(&start_link(other)),
                "exclusive page offers {other}"
            );
        }
    }
    let body = get_html(&stack, "/login?providers=all")
        .await
        .text()
        .await
        .expect("body");
    for id in ["auth0", "partner", "contractors"] {
        assert!(body.contains(&start_link(id)), "break-glass lacks {id}");
    }
    stack
        .sign_in(ProviderKind::ExtraOidc(0), "sam")
        .await
        .expect("break-glass sign-in through the partner");
}

#[tokio::test]
async fn anonymous_browsers_go_to_login_and_api_clients_get_401() {
    let stack = Stack::start_default().await.expect("stack");
    let res = get_html(&stack, "/reports/2026?x=1").await;
    assert!(
        res.status().is_redirection(),
        "browser got {}",
        res.status()
    );
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.contains("/login"), "{location}");
    let target = url::Url::parse(&stack.url("/"))
        .expect("base")
        .join(&location)
        .expect("url");
    let rd: Option<String> = target
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        rd.as_deref(),
        Some("/reports/2026?x=1"),
        "rd should carry the original path"
    );

    let (answer, _) = get_app(&stack, None, "/reports", &[]).await.expect("api");
    assert_eq!(answer.status, 401);
    assert!(!from_app(&answer));
    let json: serde_json::Value = serde_json::from_str(&answer.body).expect("401 body is JSON");
    assert!(json.is_object(), "{json}");
}

#[tokio::test]
async fn exclusive_provider_offers_only_it_and_providers_all_breaks_glass() {
    let stack = Stack::start(StackOptions {
        exclusive: Some("okta".into()),
        app_login_path: Some("/app-login".into()),
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let res = get_html(&stack, "/login").await;
    let status = res.status();
    if status.is_redirection() {
        let location = res.headers()["location"].to_str().unwrap_or("").to_owned();
        assert!(
            location.contains(&start_link("okta"))
                || location.starts_with(&stack.idp().okta_issuer),
            "exclusive login should go to Okta: {location}"
        );
    } else {
        assert_eq!(status, 200);
        let body = res.text().await.expect("body");
        assert!(body.contains(&start_link("okta")), "{body}");
        for other in ["entra", "auth0"] {
            assert!(
                !body.contains(&start_link(other)),
                "exclusive page offers {other}"
            );
        }
        assert!(
            !body.contains("/app-login"),
            "app login shown in exclusive mode"
        );
    }
    let res = get_html(&stack, "/login?providers=all").await;
    assert_eq!(res.status(), 200, "break-glass page");
    let body = res.text().await.expect("body");
    for p in ["okta", "entra", "auth0"] {
        assert!(body.contains(&start_link(p)), "break-glass lacks {p}");
    }
    assert!(
        body.contains("/app-login"),
        "break-glass should link the app's own login"
    );
    // And the break-glass path really signs in with another provider.
    stack
        .sign_in(ProviderKind::Entra, "mel")
        .await
        .expect("break-glass sign-in");
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_without_identity() {
    let stack = Stack::start(StackOptions {
        auth_mode: Some("optional".into()),
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let (answer, seen) = get_app(
        &stack,
        None,
        "/home",
        &[
            ("X-Forwarded-User", "attacker"),
            ("X-Forwarded-Email", "attacker@evil.example"),
        ],
    )
    .await
    .expect("anonymous");
    let seen =
        seen.unwrap_or_else(|| panic!("anonymous request should reach the app: {}", answer.status));
    for name in gatehouse_tests::sample::IDENTITY_HEADERS {
        assert!(
            seen.header(name).is_none(),
            "{name} present on an anonymous request: {seen:?}"
        );
    }
    // Underscore and case variants too, over raw HTTP.
    let head = "GET /home HTTP/1.1\r\nAccept: application/json\r\nX_Forwarded_User: attacker\r\nX-AUTH-REQUEST-EMAIL: attacker@evil.example";
    let raw_answer = raw::send(stack.sidecar.url.trim_start_matches("http://"), head)
        .await
        .expect("raw");
    assert_eq!(raw_answer.status, 200);
    assert!(!raw_answer.body.contains("attacker"), "{}", raw_answer.body);

    // Signed in, the identity is added.
    let session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    let (_, seen) = get_app(&stack, Some(&session), "/home", &[])
        .await
        .expect("signed in");
    assert_eq!(
        seen.expect("reached the app").header("x-forwarded-email"),
        Some("ada@example.com")
    );
}

#[tokio::test]
async fn optional_exclusive_mode_sends_the_apps_login_page_to_the_provider() {
    let stack = Stack::start(StackOptions {
        auth_mode: Some("optional".into()),
        exclusive: Some("okta".into()),
        app_login_path: Some("/app-login".into()),
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let res = get_html(&stack, "/app-login").await;
    assert!(
        res.status().is_redirection(),
        "app login should redirect, got {}",
        res.status()
    );
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        location.contains(&start_link("okta")) || location.starts_with(&stack.idp().okta_issuer),
        "the app's login page should go to Okta: {location}"
    );
    // Break-glass: the app's own login page is reachable.
    let res = get_html(&stack, "/app-login?providers=all").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().contains_key("x-sample-app"),
        "break-glass should reach the app's login"
    );
    // Other anonymous pages still reach the app in optional mode.
    let res = get_html(&stack, "/about").await;
    assert!(res.headers().contains_key("x-sample-app"));
}

#[tokio::test]
async fn skip_auth_prefixes_pass_without_session_and_ambiguous_paths_do_not() {
    let stack = Stack::start(StackOptions {
        skip_auth: Some("/public".into()),
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let (answer, seen) = get_app(
        &stack,
        None,
        "/public/health",
        &[("X-Forwarded-User", "attacker")],
    )
    .await
    .expect("public");
    let seen =
        seen.unwrap_or_else(|| panic!("skip-auth path should reach the app: {}", answer.status));
    assert_eq!(seen.path, "/public/health");
    assert!(seen.header("x-forwarded-user").is_none(), "{seen:?}");

    let (answer, _) = get_app(&stack, None, "/private", &[])
        .await
        .expect("private");
    assert!(
        !from_app(&answer),
        "non-skip path reached the app without a session"
    );

    let addr = stack.sidecar.url.trim_start_matches("http://").to_owned();
    let mut leaks = Vec::new();
    for path in [
        "/public/../private",
        "/public/%2e%2e/private",
        "/public/%2E%2E/private",
        "/public%2f..%2fprivate",
        "/public/..%2fprivate",
        "/public/.%2e/private",
        "//public/../private",
    ] {
        let head = format!("GET {path} HTTP/1.1\r\nAccept: application/json");
        let answer = raw::send(&addr, &head).await.expect("raw");
        if answer.header("x-sample-app").is_some() {
            leaks.push(format!("{path} → {} (app saw it)", answer.status));
        }
    }
    assert!(
        leaks.is_empty(),
        "ambiguous paths passed skip-auth: {leaks:#?}"
    );
}

#[tokio::test]
async fn upstream_down_gives_a_clean_502() {
    let stack = Stack::start(StackOptions {
        upstream_down: true,
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    let res = http_client()
        .expect("client")
        .get(stack.url("/"))
        .header("accept", "text/html")
        .header("cookie", session.cookie_header())
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 502);
    let body = res.text().await.unwrap_or_default().to_ascii_lowercase();
    let upstream = stack
        .sidecar
        .env_value("GATEHOUSE_UPSTREAM")
        .unwrap_or("")
        .to_owned();
    let port = upstream.rsplit(':').next().unwrap_or("");
    for leak in [
        "127.0.0.1",
        "refused",
        "tcp connect",
        "hyper",
        "os error",
        port,
    ] {
        assert!(
            !body.contains(leak),
            "502 page leaks internal detail {leak:?}: {body}"
        );
    }
}

#[tokio::test]
async fn readyz_waits_for_every_provider_and_healthz_answers_meanwhile() {
    let mut stack = Stack::start(StackOptions {
        delay_idp: true,
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let client = http_client().expect("client");
    // The admin port comes up although the IdP is unreachable.
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Ok(res) = client.get(stack.admin("/healthz")).send().await {
            break res.status();
        }
        assert!(
            Instant::now() < deadline,
            "admin port never answered:\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready = client
        .get(stack.admin("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_ne!(ready.status(), 200, "ready before any provider was loaded");

    stack.start_delayed_idp().expect("idp");
    let timeout = Duration::from_secs(60);
    stack
        .sidecar
        .wait_ready(timeout)
        .await
        .expect("ready once the IdP is up");
    stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
}

#[tokio::test]
async fn metrics_count_sign_ins_denials_and_requests_without_user_names() {
    let stack = Stack::start_default().await.expect("stack");
    let (_, before) = metrics(&stack).await.expect("metrics");
    let session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    for _ in 0..3 {
        let (_, seen) = get_app(&stack, Some(&session), "/", &[])
            .await
            .expect("app");
        assert!(seen.is_some());
    }
    let denied = gatehouse_tests::flow::LoginFlow::start(&stack, ProviderKind::Okta, Some("/"))
        .await
        .expect("start")
        .complete("eve", gatehouse_tests::idp::PASSWORD)
        .await
        .expect("flow");
    assert_eq!(denied.callback.status, 403);
    let (text, after) = metrics(&stack).await.expect("metrics");
    let moved = grown(&before, &after);
    let okta: Vec<&String> = moved.iter().filter(|k| k.contains("okta")).collect();
    assert!(
        okta.len() >= 2,
        "sign-in and denial counters by provider should move: {moved:#?}"
    );
    assert!(
        moved.iter().any(|k| k.contains("deni")
            || k.contains("outcome=\"denied\"")
            || k.contains("reason")),
        "a denial counter should move: {moved:#?}"
    );
    assert!(
        moved
            .iter()
            .any(|k| k.contains("request") || k.contains("proxy")),
        "request counters should move: {moved:#?}"
    );
    for secret in [
        "ada@example.com",
        "eve@example.com",
        "00u1ada",
        "00u1eve",
        &session.cookie_value,
    ] {
        assert!(!text.contains(secret), "metrics expose {secret}");
    }
}

#[tokio::test]
async fn websocket_upgrades_are_proxied_for_sessions_and_refused_without() {
    let stack = Stack::start_default().await.expect("stack");
    let session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    let ws_url = stack.url("/ws").replacen("http://", "ws://", 1);

    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let mut req = ws_url.as_str().into_client_request().expect("request");
    req.headers_mut()
        .insert("cookie", session.cookie_header().parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("WebSocket through the sidecar");
    socket.send(Message::text("hello")).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("reply in time")
        .expect("a message")
        .expect("ok");
    assert_eq!(reply.into_text().expect("text").as_str(), "echo: hello");
    let _ = socket.close(None).await;

    let anonymous = ws_url.as_str().into_client_request().expect("request");
    match tokio_tungstenite::connect_async(anonymous).await {
        Ok(_) => panic!("anonymous WebSocket upgrade was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 401, "anonymous upgrade should get 401");
        }
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

#[tokio::test]
async fn request_bodies_stream_through_to_the_app() {
    let stack = Stack::start_default().await.expect("stack");
    let session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    let body = vec![b'x'; 3 * 1024 * 1024 + 17];
    let res = http_client()
        .expect("client")
        .post(stack.url("/upload?kind=blob"))
        .header("accept", "application/json")
        .header("cookie", session.cookie_header())
        .body(body.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 200);
    let seen: gatehouse_tests::SeenRequest = res.json().await.expect("app JSON");
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body_bytes, body.len());
    assert_eq!(seen.path, "/upload?kind=blob");
    assert!(
        seen.header("x-forwarded-for").is_some(),
        "X-Forwarded-For missing: {seen:?}"
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"), "{seen:?}");
}

#[tokio::test]
async fn an_idp_outage_never_breaks_existing_sessions() {
    let mut stack = Stack::start_default().await.expect("stack");
    let session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    if let Some(idp) = stack.idp.as_mut() {
        idp.process.kill();
    }
    for path in ["/", "/after-outage"] {
        let (answer, seen) = get_app(&stack, Some(&session), path, &[])
            .await
            .expect("app");
        assert!(
            seen.is_some(),
            "existing session broken by the IdP outage: {} {}",
            answer.status,
            answer.body
        );
    }
}
