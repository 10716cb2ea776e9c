//! Operating the sidecar: secrets stay out of logs, bad configuration stops start-up clearly,
//! cookie keys rotate from a mounted file without dropping sessions, https public URLs get
//! `__Host-` cookies.

use std::time::{Duration, Instant};

use gatehouse_tests::{
    ProviderKind, Stack, StackOptions,
    flow::LoginFlow,
    get_app,
    idp::PASSWORD,
    process::{free_port, random_key_b64},
    stack::{SESSION_COOKIE_HOST, Sidecar, StackOptions as Options, sidecar_env},
};

#[tokio::test]
async fn secrets_tokens_and_codes_never_reach_the_sidecar_logs_even_at_trace() {
    let stack = Stack::start(StackOptions {
        log_level: Some("trace".into()),
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let attempt = LoginFlow::start(&stack, ProviderKind::Okta, Some("/"))
        .await
        .expect("start")
        .complete("ada", PASSWORD)
        .await
        .expect("flow");
    let session = attempt.session.clone().expect("session");
    let (_, seen) = get_app(&stack, Some(&session), "/", &[])
        .await
        .expect("app");
    assert!(seen.is_some());
    // A denied user and a logout too, so their paths are covered.
    let _ = LoginFlow::start(&stack, ProviderKind::Okta, Some("/"))
        .await
        .expect("start")
        .complete("eve", PASSWORD)
        .await
        .expect("flow");
    let _ = gatehouse_tests::http_client()
        .expect("client")
        .post(stack.url("/api/auth/logout"))
        .header("cookie", session.cookie_header())
        .send()
        .await
        .expect("logout");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let logs = stack.sidecar.process.logs.text();
    assert!(
        logs.contains("TRACE"),
        "the sidecar should be logging at trace level"
    );
    let code = attempt
        .callback_url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let state = attempt
        .callback_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let mut secrets = vec![
        (
            "client secret",
            stack
                .sidecar
                .env_value("OKTA_CLIENT_SECRET")
                .expect("secret")
                .to_owned(),
        ),
        (
            "cookie key",
            stack
                .sidecar
                .env_value("GATEHOUSE_COOKIE_SECRET")
                .expect("key")
                .to_owned(),
        ),
        ("session cookie", session.cookie_value.clone()),
        ("authorization code", code),
        ("state", state),
    ];
    for part in attempt.callback_cookies.split("; ") {
        if let Some((name, value)) = part.split_once('=')
            && name.contains("gatehouse")
            && value.len() > 16
        {
            secrets.push(("state cookie", value.to_owned()));
        }
    }
    let mut leaks = Vec::new();
    for (what, value) in &secrets {
        if logs.contains(value.as_str()) {
            leaks.push(*what);
        }
    }
    // ID tokens, access tokens and identity JWTs are JWS: base64url JSON starting "eyJ".
    if logs.contains("eyJ") {
        leaks.push("a JWT");
    }
    assert!(
        leaks.is_empty(),
        "secrets in the sidecar's trace logs: {leaks:?}"
    );
}

#[tokio::test]
async fn bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let port = free_port().expect("port");
    let admin = free_port().expect("port");
    let base = sidecar_env(
        &Options::default(),
        free_port().expect("port"),
        "a-client-secret-value",
        &format!("http://127.0.0.1:{port}"),
        port,
        admin,
        "http://127.0.0.1:1",
    )
    .expect("env");
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("GATEHOUSE_COOKIE_SECRET", Some("c2hvcnQ=")),
        ("GATEHOUSE_COOKIE_SECRET", None),
        ("GATEHOUSE_PUBLIC_URL", Some("not a url")),
        ("GATEHOUSE_AUTH_MODE", Some("sometimes")),
        ("GATEHOUSE_UPSTREAM", Some("ftp://127.0.0.1:21")),
        ("OKTA_ISSUER", Some("not-a-url")),
        ("OIDC_ROLE_MAP", Some("portal-admins=superuser")),
        ("AUTH_EXCLUSIVE_PROVIDER", Some("nonexistent")),
    ];
    let mut problems = Vec::new();
    for (var, value) in cases {
        let mut env: Vec<(String, String)> =
            base.iter().filter(|(k, _)| k != var).cloned().collect();
        if let Some(v) = value {
            env.push((var.to_owned(), v.to_owned()));
        }
        let mut sidecar = Sidecar::start(
            env,
            format!("http://127.0.0.1:{port}"),
            format!("http://127.0.0.1:{admin}"),
        )
        .expect("spawn");
        let status = sidecar.process.wait_exit(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100));
        let out = sidecar.process.logs.text();
        match status {
            Some(s) if !s.success() => {
                if !out.contains(var) {
                    problems.push(format!("{var}={value:?}: exit without naming {var}: {out}"));
                }
                if out.contains("a-client-secret-value") {
                    problems.push(format!("{var}={value:?}: client secret printed"));
                }
            }
            other => problems.push(format!(
                "{var}={value:?}: did not stop start-up ({other:?})"
            )),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn cookie_keys_rotate_from_a_mounted_file_without_dropping_sessions() {
    let dir = std::env::temp_dir().join(format!("gatehouse-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("cookie-secret");
    let (k1, k2) = (
        random_key_b64().expect("key"),
        random_key_b64().expect("key"),
    );
    std::fs::write(&file, &k1).expect("write");
    // The mounted file replaces the inline variable.
    let stack = Stack::start(StackOptions {
        extra_env: vec![(
            "GATEHOUSE_COOKIE_SECRET_FILE".into(),
            file.display().to_string(),
        )],
        remove_env: vec!["GATEHOUSE_COOKIE_SECRET".into()],
        ..StackOptions::default()
    })
    .await
    .expect("stack");

    let old = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    // Rotate: the new key first (seals), the old one still unseals.
    std::fs::write(&file, format!("{k2},{k1}")).expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stack.sidecar.process.logs.contains("cookie keys reloaded") {
        assert!(
            Instant::now() < deadline,
            "keys never reloaded:\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, seen) = get_app(&stack, Some(&old), "/", &[]).await.expect("app");
    assert!(
        seen.is_some(),
        "a session sealed with the old key was dropped by the rotation"
    );
    let new = stack
        .sign_in(ProviderKind::Okta, "bob")
        .await
        .expect("sign in");

    // Retire the old key: its sessions end, the new key's continue.
    std::fs::write(&file, &k2).expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (answer, _) = get_app(&stack, Some(&old), "/", &[]).await.expect("app");
        if answer.status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "old key never retired");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, seen) = get_app(&stack, Some(&new), "/", &[]).await.expect("app");
    assert_eq!(
        seen.expect("new key's session still works")
            .header("x-forwarded-email"),
        Some("bob@example.com")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn https_public_url_gets_host_prefixed_secure_cookies() {
    let stack = Stack::start(StackOptions {
        https_public_url: true,
        ..StackOptions::default()
    })
    .await
    .expect("stack");
    let res = gatehouse_tests::http_client()
        .expect("client")
        .get(stack.url("/api/auth/oauth2/start/okta?rd=/"))
        .send()
        .await
        .expect("start");
    assert!(res.status().is_redirection(), "{}", res.status());
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        !cookies.is_empty(),
        "the start route should set a state cookie"
    );
    for c in &cookies {
        let lower = c.to_ascii_lowercase();
        assert!(
            c.starts_with("__Host-"),
            "https cookie without __Host- prefix: {c}"
        );
        assert!(lower.contains("; secure"), "{c}");
        assert!(lower.contains("httponly"), "{c}");
        assert!(lower.contains("path=/"), "{c}");
        assert!(!lower.contains("domain="), "{c}");
    }
    let location = res.headers()["location"].to_str().expect("location");
    let redirect_uri = url::Url::parse(location)
        .expect("authorize url")
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        redirect_uri,
        Some(format!(
            "{}/api/auth/oauth2/callback/okta",
            stack
                .sidecar
                .env_value("GATEHOUSE_PUBLIC_URL")
                .expect("public url")
        ))
    );
    assert!(SESSION_COOKIE_HOST.starts_with("__Host-"));
}
