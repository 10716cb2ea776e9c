//! Issue 29: every SCIM change, and every caller refused for its token, writes an audit line
//! naming the caller (the SsoConfig whose token it holds), the action and the SsoUser, and never
//! the token. In a test binary of its own: tracing caches per call site whether anyone listens,
//! so a call site first reached by another test's thread (no subscriber there) could stay
//! silent for this test's thread-local subscriber.

use anyhow::{Context as _, Result};
use gatehouse_crds::consts::SCIM_PATH;
use gatehouse_tests::kube_stack::{KubeOptions, KubeStack};
use serde_json::{Value, json};

const TOKEN: &str = "scim-token-0123456789abcdef";

async fn send(
    http: &reqwest::Client,
    stack: &KubeStack,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut req = http
        .request(method, stack.url(&format!("{SCIM_PATH}{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let text = req.send().await?.text().await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn active(active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": active}}]
    })
}

/// A log sink for the in-process sidecar: every line its tracing events write, in order.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

#[tokio::test]
async fn every_change_and_every_refused_caller_writes_an_audit_line_without_the_token() -> Result<()>
{
    // The test runtime has one thread, where the sidecar's handlers run too: a thread-local
    // subscriber sees their events.
    let lines = Lines::default();
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let stack = KubeStack::start(KubeOptions {
        mode: "scim",
        extra_env: vec![
            ("SCIM_TOKEN", TOKEN.to_owned()),
            ("AUTH_EXCLUSIVE_PROVIDER", "okta".to_owned()),
        ],
        ..KubeOptions::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com",
        "externalId": "00u1ada0000000000001",
        "active": true
    });
    let post = reqwest::Method::POST;
    let created = send(&http, &stack, post, "/Users", TOKEN, Some(user)).await?;
    let id = created["id"].as_str().context("id")?.to_owned();
    let path = format!("/Users/{id}");
    let patch = reqwest::Method::PATCH;
    send(
        &http,
        &stack,
        patch.clone(),
        &path,
        TOKEN,
        Some(active(false)),
    )
    .await?;
    send(&http, &stack, patch, &path, TOKEN, Some(active(true))).await?;
    send(&http, &stack, reqwest::Method::DELETE, &path, TOKEN, None).await?;
    let wrong = "wrong-token-0123456789abcdef";
    send(&http, &stack, reqwest::Method::GET, "/Users", wrong, None).await?;
    let text = lines.text();
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("gatehouse::audit") && l.contains("event=\"scim\""))
        .collect();
    for (action, outcome) in [
        ("create", "done"),
        ("suspend", "done"),
        ("reactivate", "done"),
        ("delete", "done"),
        ("authenticate", "refused"),
    ] {
        assert!(
            audit
                .iter()
                .any(|l| l.contains(&format!("action=\"{action}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
                    && l.contains("caller=\"portal\"")),
            "no audit line for {action}: {audit:#?}"
        );
    }
    assert!(
        audit
            .iter()
            .filter(|l| !l.contains("authenticate"))
            .all(|l| l.contains(&id)),
        "each change names the SsoUser"
    );
    assert!(!text.contains(TOKEN) && !text.contains("wrong-token-0123456789abcdef"));
    Ok(())
}
