//! Access rules (`GATEHOUSE_ACCESS`) enforced by the sidecar in process, in front of an echoing
//! app: the example policy decided request by request, and every attack on it performed
//! after the honest request is shown to pass. Sessions are minted with the sidecar's key ring, as
//! a signed-in browser holds them (the rule engine's own tables and properties are in
//! `gatehouse-auth`).

mod common;

use common::harness::*;
use gatehouse_auth::claims::Role;
use gatehouse_auth::cookie::Session;
use gatehouse_sidecar::Sidecar;
use serde_json::{Value, json};

/// The policy of the example (browser side), plus a public path and a host-bound rule.
fn policy() -> String {
    json!({
        "defaultAction": "Deny",
        "rules": [
            {"name": "contractors-no-admin", "action": "Deny",
             "from": [{"emailDomains": ["contractor.example"]}],
             "to": [{"paths": ["/admin", "/api/admin"]}]},
            {"name": "admins", "action": "Allow",
             "from": [{"roles": ["admin"]}, {"groups": ["sre"]}],
             "to": [{"paths": ["/admin"]}]},
            {"name": "members-read", "action": "Allow",
             "from": [{"roles": ["member", "admin"]}],
             "to": [{"methods": ["GET"]}],
             "when": [{"claim": "acr", "values": ["mfa"]}]},
            {"name": "public", "action": "Allow", "to": [{"paths": ["/public"]}]},
            {"name": "reports-host", "action": "Allow",
             "from": [{"authenticated": true}],
             "to": [{"hosts": ["reports.example.com"], "methods": ["POST"]}]}
        ]
    })
    .to_string()
}

async fn protected() -> Sidecar {
    let policy = policy();
    sidecar(
        serve_app(axum::Router::new().fallback(echo)).await,
        &[
            ("GATEHOUSE_ACCESS", &policy),
            ("GATEHOUSE_SKIP_AUTH", "/healthz"),
        ],
    )
    .await
}

/// The fingerprint of the groups and claims [`policy`] names, as a sign-in under it records.
fn facts() -> Option<String> {
    let spec: gatehouse_crds::access::AccessSpec =
        serde_json::from_str(&policy()).expect("policy JSON");
    gatehouse_auth::access::Policy::compile(&spec)
        .expect("valid policy")
        .facts_fingerprint()
        .map(str::to_owned)
}

/// A signed-in user: `role`, `email`, the groups the rules name, and `acr`, signed in under
/// [`policy`].
fn user(role: Role, email: &str, groups: &[&str], acr: Option<&str>) -> String {
    let mut s: Session = session("okta", 3600);
    s.facts = facts();
    s.role = role;
    s.email = Some(email.to_owned());
    s.groups = groups.iter().map(|g| (*g).to_owned()).collect();
    s.claims = acr.map(|acr| {
        let mut claims = serde_json::Map::new();
        claims.insert("acr".into(), Value::from(acr));
        claims
    });
    cookie_for(&s)
}

fn ada() -> String {
    user(Role::Admin, "ada@example.com", &[], Some("mfa"))
}
fn bob_member() -> String {
    user(Role::Member, "bob@example.com", &[], Some("mfa"))
}
fn carol_contractor_admin() -> String {
    user(Role::Admin, "carol@contractor.example", &[], Some("mfa"))
}

/// Status of `method path` with `cookie` (and JSON accepted).
async fn status(sc: &Sidecar, method: &str, path: &str, cookie: Option<&str>) -> u16 {
    let mut r = client()
        .request(method.parse().expect("method"), url(sc, path))
        .header("accept", "application/json");
    if let Some(cookie) = cookie {
        r = r.header("cookie", cookie);
    }
    r.send().await.expect("send").status().as_u16()
}

/// Status of a raw request line `target` (sent byte for byte) with `cookie` and extra headers.
async fn raw_status(sc: &Sidecar, method: &str, target: &str, cookie: &str, extra: &str) -> u16 {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: app.test\r\nAccept: application/json\r\nCookie: {cookie}\r\n{extra}Connection: close\r\n\r\n"
    );
    raw(sc.addr(), &request).await.0
}

#[tokio::test]
async fn the_example_policy_decides_each_request_by_who_what_and_claims() {
    let sc = protected().await;
    // Admins, by role or by group, reach /admin; a member does not.
    assert_eq!(status(&sc, "GET", "/admin/users", Some(&ada())).await, 200);
    let sre = user(Role::Member, "sam@example.com", &["sre"], None);
    assert_eq!(status(&sc, "POST", "/admin/users", Some(&sre)).await, 200);
    // (A member reads everything with MFA, /admin included, but only admins write there.)
    assert_eq!(
        status(&sc, "POST", "/admin", Some(&bob_member())).await,
        403
    );
    // The Deny on contractors wins over the Allow their admin role matches.
    let carol = carol_contractor_admin();
    assert_eq!(status(&sc, "GET", "/admin", Some(&carol)).await, 403);
    assert_eq!(status(&sc, "GET", "/api/admin/x", Some(&carol)).await, 403);
    assert_eq!(status(&sc, "GET", "/reports", Some(&carol)).await, 200);
    // Members read with MFA only, and only read.
    assert_eq!(
        status(&sc, "GET", "/reports", Some(&bob_member())).await,
        200
    );
    assert_eq!(
        status(&sc, "HEAD", "/reports", Some(&bob_member())).await,
        200
    );
    assert_eq!(
        status(&sc, "POST", "/reports", Some(&bob_member())).await,
        403
    );
    let no_mfa = user(Role::Member, "bob@example.com", &[], Some("pwd"));
    assert_eq!(status(&sc, "GET", "/reports", Some(&no_mfa)).await, 403);
    let no_acr = user(Role::Member, "bob@example.com", &[], None);
    assert_eq!(status(&sc, "GET", "/reports", Some(&no_acr)).await, 403);
    // A public path needs nobody; skipAuth stays public.
    assert_eq!(status(&sc, "GET", "/public/logo.png", None).await, 200);
    assert_eq!(status(&sc, "GET", "/healthz", None).await, 200);
    // Each refusal is counted by its rule.
    assert_eq!(status(&sc, "GET", "/admin", None).await, 401);
    let metrics = client()
        .get(format!("http://{}/metrics", sc.admin_addr()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "gatehouse_access_refused_total{answer=\"forbidden\",rule=\"contractors-no-admin\"} 2",
        "gatehouse_access_refused_total{answer=\"forbidden\",rule=\"default\"} 4",
        "gatehouse_access_refused_total{answer=\"sign_in\",rule=\"default\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn anonymous_requests_are_asked_to_sign_in_where_that_could_help_and_never_redirected_with_a_bearer()
 {
    let sc = protected().await;
    let c = client();
    // A browser navigation goes to the login page.
    let r = c
        .get(url(&sc, "/admin"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/login?rd=%2Fadmin");
    let r = c
        .get(url(&sc, "/admin"))
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 302);
    // An API client gets 401 with a Bearer challenge.
    let r = c
        .get(url(&sc, "/admin"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"gatehouse\""
    );
    // A request that brings a bearer token is never redirected, even from a browser.
    let r = c
        .get(url(&sc, "/admin"))
        .header("accept", "text/html")
        .header("authorization", "Bearer abc.def.ghi")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    // A token in the query string is no credential: the same as without.
    let r = c
        .get(url(&sc, "/admin?access_token=abc.def.ghi"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn path_spellings_that_could_dodge_a_rule_fail_closed_both_ways() {
    let sc = protected().await;
    let carol = carol_contractor_admin();
    let ada = ada();
    // Honest: the contractor reads elsewhere, the admin reaches /admin.
    assert_eq!(raw_status(&sc, "GET", "/reports", &carol, "").await, 200);
    assert_eq!(raw_status(&sc, "GET", "/admin", &ada, "").await, 200);
    // `/administrator` is not under `/admin`: the contractor's Deny does not cover it (and the
    // admins' Allow does not either: a member cannot reach it with an admin path rule).
    assert_eq!(
        raw_status(&sc, "GET", "/administrator", &carol, "").await,
        200
    );
    let bob = bob_member();
    assert_eq!(
        raw_status(&sc, "POST", "/administrator", &ada, "").await,
        403
    );
    // An encoded unreserved character is the same path, for the Deny and the Allow alike.
    assert_eq!(raw_status(&sc, "GET", "/%61dmin", &carol, "").await, 403);
    assert_eq!(raw_status(&sc, "POST", "/%61dmin", &ada, "").await, 200);
    // Ambiguous spellings: every Deny path matches them, no Allow path does.
    for target in [
        "/admin/../admin",
        "/reports/../admin",
        "/%2e%2e/admin",
        "/admin%2fx",
        "/admin;x",
        "//admin",
        "/x/..%2fadmin",
    ] {
        assert_eq!(
            raw_status(&sc, "GET", target, &carol, "").await,
            403,
            "{target}: the contractor's Deny must hold"
        );
        assert_eq!(
            raw_status(&sc, "POST", target, &ada, "").await,
            403,
            "{target}: the admins' path Allow must not admit a POST"
        );
    }
    // A member's GET of an ambiguous path outside /admin is still theirs to read (no path rule).
    assert_eq!(raw_status(&sc, "GET", "/docs;v=1", &bob, "").await, 200);
}

#[tokio::test]
async fn the_method_decides_as_sent_and_override_headers_never_reach_the_app() {
    let sc = protected().await;
    let bob = bob_member();
    // Honest: a member's GET passes, and the app sees it as a GET.
    let seen: Value = client()
        .get(url(&sc, "/reports"))
        .header("cookie", &bob)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("echo");
    assert_eq!(seen["method"], "GET");
    // A POST dressed as a GET is a POST.
    for header in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let r = client()
            .post(url(&sc, "/reports"))
            .header("cookie", &bob)
            .header(header, "GET")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 403, "{header}");
    }
    // A GET admitted with an override header: the app never learns another method.
    let seen: Value = client()
        .get(url(&sc, "/reports"))
        .header("cookie", &bob)
        .header("x-http-method-override", "DELETE")
        .header("x-method-override", "DELETE")
        .header("x-http-method", "DELETE")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("echo");
    for name in [
        "x-http-method-override",
        "x-method-override",
        "x-http-method",
    ] {
        assert!(
            header_values(&seen, name).is_empty(),
            "{name} reached the app"
        );
    }
    // A lower-case method spelling of a GET is no GET.
    assert_eq!(raw_status(&sc, "get", "/reports", &bob, "").await, 403);
}

#[tokio::test]
async fn hosts_come_from_the_host_header_only() {
    let sc = protected().await;
    let bob = user(Role::Member, "bob@example.com", &[], None);
    let post = |host: &str, extra: &str| {
        format!(
            "POST /submit HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nCookie: {bob}\r\nContent-Length: 0\r\n{extra}Connection: close\r\n\r\n"
        )
    };
    // Honest: the rule's host, in any case, with a port and a trailing dot.
    assert_eq!(
        raw(sc.addr(), &post("reports.example.com", "")).await.0,
        200
    );
    assert_eq!(
        raw(sc.addr(), &post("Reports.Example.COM.:443", ""))
            .await
            .0,
        200
    );
    // Another host is refused, whatever X-Forwarded-Host claims.
    assert_eq!(raw(sc.addr(), &post("app.test", "")).await.0, 403);
    let forged = post("app.test", "X-Forwarded-Host: reports.example.com\r\n");
    assert_eq!(raw(sc.addr(), &forged).await.0, 403);
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let sc = protected().await;
    assert_eq!(status(&sc, "GET", "/public/x", None).await, 200);
    let r = client()
        .get(url(&sc, "/public/x"))
        .header("authorization", "Bearer a")
        .header("authorization", "Bearer b")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_deny_rule_wins_over_skip_auth_and_denied_browsers_get_a_page() {
    let policy = json!({"rules": [
        {"name": "no-debug", "action": "Deny", "to": [{"paths": ["/healthz/debug"]}]},
        {"name": "everyone-signed-in", "action": "Allow", "from": [{"authenticated": true}]}
    ]})
    .to_string();
    let sc = sidecar(
        serve_app(axum::Router::new().fallback(echo)).await,
        &[
            ("GATEHOUSE_ACCESS", &policy),
            ("GATEHOUSE_SKIP_AUTH", "/healthz"),
        ],
    )
    .await;
    // These rules name no group or claim: any session is decided on what it holds.
    let signed_in = cookie_for(&session("okta", 3600));
    assert_eq!(status(&sc, "GET", "/healthz", None).await, 200);
    assert_eq!(status(&sc, "GET", "/healthz/debug", None).await, 403);
    assert_eq!(status(&sc, "GET", "/anything", Some(&signed_in)).await, 200);
    let r = client()
        .get(url(&sc, "/healthz/debug"))
        .header("accept", "text/html")
        .header("cookie", &signed_in)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    let page = r.text().await.expect("page");
    assert!(page.contains("No access"), "{page}");
    assert!(!page.contains("no-debug"), "the page names no rule: {page}");
}

#[tokio::test]
async fn the_identity_jwt_carries_the_groups_the_rules_name_and_the_principal_type() {
    let sc = protected().await;
    let sre = user(Role::Member, "sam@example.com", &["sre"], None);
    let seen: Value = client()
        .post(url(&sc, "/admin/x"))
        .header("cookie", &sre)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("echo");
    let jwt = header_values(&seen, "x-gatehouse-identity")[0];
    let payload = jwt.split('.').nth(1).expect("payload");
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(claims["groups"], json!(["sre"]));
    assert_eq!(claims["principal_type"], "user");
}

#[tokio::test]
async fn a_session_kept_for_other_rules_signs_in_again_rather_than_missing_a_deny() {
    let sc = protected().await;
    // Honest: signed in under these rules, the contractor reads /reports.
    let carol = carol_contractor_admin();
    assert_eq!(status(&sc, "GET", "/reports", Some(&carol)).await, 200);
    // The same person's session from before the rules named groups or claims (or from rules
    // that named others): it holds no `acr` and no groups these rules ask about. It is not
    // decided on what it lacks; it is asked to sign in again.
    let mut before = session("okta", 3600);
    before.email = Some("carol@contractor.example".into());
    before.claims = None;
    before.facts = None;
    let before = cookie_for(&before);
    assert_eq!(status(&sc, "GET", "/reports", Some(&before)).await, 401);
    let r = client()
        .get(url(&sc, "/admin"))
        .header("accept", "text/html")
        .header("cookie", &before)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 302, "a browser goes to sign in again");
}
