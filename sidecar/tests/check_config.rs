//! The binary's configuration contract: `--check-config`, one-line errors naming the variable, and
//! no secret ever printed.

use std::process::{Command, Output};

const SECRET: &str = "very-secret-client-value";
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn run(vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse-sidecar"))
        .arg("--check-config")
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("run gatehouse-sidecar")
}

fn valid() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GATEHOUSE_PUBLIC_URL", "https://portal.example.com"),
        ("GATEHOUSE_COOKIE_SECRET", KEY),
        ("OKTA_CLIENT_ID", "client"),
        ("OKTA_CLIENT_SECRET", SECRET),
        ("OKTA_ISSUER", "https://acme.okta.com"),
        ("OKTA_ORG_ID", "acme"),
    ]
}

#[test]
fn valid_config_exits_zero_with_a_summary() {
    let out = run(&valid());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("config ok: providers okta"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stdout.contains(KEY));
}

#[test]
fn a_bad_variable_is_one_line_naming_it_and_exit_one() {
    let cases: [(&str, Option<&str>, &str); 4] = [
        (
            "OKTA_ISSUER",
            Some("not a url"),
            "error: OKTA_ISSUER: issuer must be an absolute http(s) URL",
        ),
        (
            "OKTA_CLIENT_SECRET",
            None,
            "error: OKTA_CLIENT_SECRET: missing",
        ),
        (
            "GATEHOUSE_COOKIE_SECRET",
            Some(SECRET),
            "error: GATEHOUSE_COOKIE_SECRET: key 1 is not base64",
        ),
        (
            "GATEHOUSE_SESSION_TTL",
            Some("soon"),
            "error: GATEHOUSE_SESSION_TTL: not a duration",
        ),
    ];
    for (var, value, expected) in cases {
        let mut vars: Vec<(&str, &str)> = valid().into_iter().filter(|(k, _)| *k != var).collect();
        if let Some(v) = value {
            vars.push((var, v));
        }
        let out = run(&vars);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{var}: {stderr}");
        assert!(stderr.starts_with(expected), "{var}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(!stderr.contains(SECRET), "secret echoed: {stderr}");
        assert!(out.stdout.is_empty());
    }
}
