//! Issue 29 end to end: SCIM 2.0 provisioning. Okta- and Entra-shaped clients push users to the
//! sidecar's `/api/auth/scim/v2` (the request bodies their documentation shows), and every
//! change is followed by a sign-in or a session check through the real fixture IdP: pushed →
//! signs in; deactivated → session refused; reactivated → a new sign-in works, the old cookie
//! stays dead; deleted → 404 and refused. Then the attacks and bad input the issue names, and
//! the public conformance suite (PyPI scim2-tester) against the same endpoint.
//!
//! The sidecar runs in process on the in-memory Kubernetes API (kube-fake-client); the test
//! delivers its SsoUser watch events (`deliver_current`), the path a real watch takes.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use gatehouse_crds::consts::{LABEL_CONFIG, LABEL_SOURCE, SCIM_PATH, SOURCE_SCIM};
use gatehouse_crds::{SsoUser, SsoUserSpec};
use gatehouse_tests::ProviderKind;
use gatehouse_tests::kube_stack::{KubeOptions, KubeStack, NAMESPACE};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "scim-token-0123456789abcdef";
const PREVIOUS_TOKEN: &str = "scim-previous-0123456789abcdef";
/// The fixture Okta's Ada (`sub`: what Okta pushes as `externalId`).
const OKTA_ADA_SUB: &str = "00u1ada0000000000001";
/// The fixture Entra ID's Ada: her object id (`oid`), what Entra pushes as `externalId`; her
/// `sub` is another value (pairwise per app).
const ENTRA_ADA_OID: &str = "7f1c9a52-0d3b-4e8a-9c61-2b5e8d4f7a01";
const ENTRA_ADA_SUB: &str = "AAAAAAAAAAAAAAAAAAAAAGFkYS1lbnRyYQ";

async fn scim_stack(exclusive: &'static str) -> Result<KubeStack> {
    let mut stack = KubeStack::start(KubeOptions {
        mode: "scim",
        extra_env: vec![
            ("SCIM_TOKEN", TOKEN.to_owned()),
            ("SCIM_PREVIOUS_TOKEN", PREVIOUS_TOKEN.to_owned()),
            ("AUTH_EXCLUSIVE_PROVIDER", exclusive.to_owned()),
        ],
        ..KubeOptions::default()
    })
    .await?;
    stack.sync().await?;
    Ok(stack)
}

/// A SCIM answer.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn scim_type(&self) -> Option<&str> {
        self.body["scimType"].as_str()
    }

    fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }
}

/// A SCIM client of the stack's sidecar (its own copy of the URL, so the test may still feed
/// the stack's watch).
struct Scim {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Scim {
    fn new(stack: &KubeStack) -> Self {
        Scim {
            base: stack.url(SCIM_PATH),
            http: reqwest::Client::new(),
            token: Some(TOKEN.to_owned()),
        }
    }

    fn with_token(stack: &KubeStack, token: Option<&str>) -> Self {
        Scim {
            token: token.map(str::to_owned),
            ..Scim::new(stack)
        }
    }

    async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some((kind, bytes)) = body {
            req = req.header("content-type", kind).body(bytes);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))?
        };
        if status != StatusCode::NO_CONTENT {
            let kind = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            ensure!(
                kind.starts_with("application/scim+json"),
                "{method} {path} answered {status} as {kind:?}"
            );
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply> {
        let body = body.map(|b| ("application/scim+json", b.to_string().into_bytes()));
        self.send_raw(method, path, body).await
    }

    async fn get(&self, path: &str) -> Result<Reply> {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Result<Reply> {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

fn filter_path(filter: &str) -> String {
    format!(
        "/Users?filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    )
}

/// Okta's create request, as its SCIM 2.0 reference shows it (its `password` and `groups` are
/// ignored, never stored).
fn okta_create() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": true, "value": "ada@example.com", "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": OKTA_ADA_SUB,
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

fn okta_active(active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": active}}]
    })
}

#[tokio::test]
async fn an_okta_client_creates_finds_deactivates_reactivates_and_deletes_and_sign_ins_follow()
-> Result<()> {
    let mut stack = scim_stack("okta").await?;
    let scim = Scim::new(&stack);

    // Not pushed yet: the IdP vouches for Ada, but this app admits pushed users only.
    let refused = stack.attempt(ProviderKind::Okta, "ada").await?;
    assert_eq!(
        refused.callback.status,
        StatusCode::FORBIDDEN,
        "{}",
        refused.callback.body
    );
    assert!(
        refused.callback.body.contains("has not given you access"),
        "{}",
        refused.callback.body
    );
    assert!(
        stack.all_users().await?.is_empty(),
        "a sign-in creates nothing"
    );

    // Okta looks the user up by userName first: no match is 200 with nothing.
    let found = scim
        .get(&format!(
            "{}&startIndex=1&count=100",
            filter_path(r#"userName eq "ada@example.com""#)
        ))
        .await?;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["totalResults"], 0);

    let created = scim.post("/Users", &okta_create()).await?;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().context("id")?.to_owned();
    assert_eq!(created.body["userName"], "ada@example.com");
    assert_eq!(created.body["active"], true);
    assert!(created.body.get("password").is_none(), "never returned");
    let location = created.headers.get("location").context("Location")?;
    assert!(
        location
            .to_str()?
            .ends_with(&format!("{SCIM_PATH}/Users/{id}"))
    );
    let stored = stack.users.get(&id).await?;
    assert_eq!(
        stored
            .metadata
            .labels
            .unwrap_or_default()
            .get(LABEL_SOURCE)
            .map(String::as_str),
        Some(SOURCE_SCIM)
    );
    assert!(
        !serde_json::to_string(&stored.spec)?.contains("1mz050nq"),
        "Okta's password is not stored"
    );

    // Found by the filter, case-insensitively on userName.
    let found = scim
        .get(&filter_path(r#"userName eq "ADA@example.com""#))
        .await?;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());

    // Ada signs in: the pushed SsoUser is hers (no second one).
    let session = stack.sign_in(ProviderKind::Okta, "ada").await?;
    assert!(stack.reaches_app(&session).await?);
    assert_eq!(
        stack.all_users().await?.len(),
        1,
        "the sign-in found the pushed user"
    );
    stack.deliver_current(&id).await?;

    // Okta deactivates (unassign, or the user is deactivated at Okta).
    let off = scim
        .patch(&format!("/Users/{id}"), &okta_active(false))
        .await?;
    assert_eq!(off.status, StatusCode::OK, "{:?}", off.body);
    assert_eq!(off.body["active"], false);
    stack.deliver_current(&id).await?;
    assert!(!stack.reaches_app(&session).await?, "the session ended");
    let refused = stack.attempt(ProviderKind::Okta, "ada").await?;
    assert_eq!(refused.callback.status, StatusCode::FORBIDDEN);
    let read = scim.get(&format!("/Users/{id}")).await?;
    assert_eq!(
        read.status,
        StatusCode::OK,
        "an inactive user is still returned"
    );
    assert_eq!(read.body["active"], false);

    // Reactivated: a new sign-in works; the cookie from before stays dead. Sessions record
    // their start in whole seconds: sign in again in a later second.
    let on = scim
        .patch(&format!("/Users/{id}"), &okta_active(true))
        .await?;
    assert_eq!(on.body["active"], true);
    stack.deliver_current(&id).await?;
    assert!(
        !stack.reaches_app(&session).await?,
        "reactivation revives no cookie"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = stack.sign_in(ProviderKind::Okta, "ada").await?;
    assert!(stack.reaches_app(&again).await?);

    // Okta apps that PUT the whole user.
    let mut whole = okta_create();
    whole["id"] = json!(id);
    whole["name"]["familyName"] = json!("King");
    let put = scim.put(&format!("/Users/{id}"), &whole).await?;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["name"]["familyName"], "King");
    assert_eq!(put.body["active"], true);

    // Deleted: 204, then 404 for reads and a second delete; the session ends.
    let last = stack.users.get(&id).await?;
    let deleted = scim.delete(&format!("/Users/{id}")).await?;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(stack.users.get_opt(&id).await?.is_none());
    stack.deliver(Ok(watcher::Event::Delete(last)));
    assert!(!stack.reaches_app(&again).await?, "the session ended");
    assert_eq!(
        scim.get(&format!("/Users/{id}")).await?.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        scim.delete(&format!("/Users/{id}")).await?.status,
        StatusCode::NOT_FOUND
    );
    let refused = stack.attempt(ProviderKind::Okta, "ada").await?;
    assert_eq!(refused.callback.status, StatusCode::FORBIDDEN);
    Ok(())
}

/// Entra ID's create request (its "develop a SCIM endpoint" tutorial): enterprise extension,
/// `roles: []`, and the object id as `externalId` (the mapping the docs tell to set).
fn entra_create() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": ENTRA_ADA_OID,
        "userName": "ada@contoso.example",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "ada@contoso.example"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ada Entra", "familyName": "Entra", "givenName": "Ada"},
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Engines",
            "employeeNumber": "1815"
        }
    })
}

#[tokio::test]
async fn an_entra_client_links_on_the_object_id_and_its_patch_dialects_work() -> Result<()> {
    let mut stack = scim_stack("entra").await?;
    let scim = Scim::new(&stack);
    let found = scim
        .get(&filter_path(r#"userName eq "ada@contoso.example""#))
        .await?;
    assert_eq!(found.body["totalResults"], 0);
    let created = scim.post("/Users", &entra_create()).await?;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().context("id")?.to_owned();
    assert!(created.body.get("roles").is_none());
    assert_eq!(
        created.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Engines"
    );

    // Entra's `sub` differs per app: the sign-in is linked by `oid`.
    let session = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert!(stack.reaches_app(&session).await?);
    let users = stack.all_users().await?;
    assert_eq!(users.len(), 1, "no second user for the pairwise sub");
    assert_ne!(users[0].spec.subject, ENTRA_ADA_SUB);
    stack.deliver_current(&id).await?;

    // Entra's default PATCH: capitalised ops, string booleans, filtered paths.
    let update = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "ada.king@contoso.example"},
            {"op": "Replace", "path": "name.familyName", "value": "King"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Analytics"}
        ]
    });
    let patched = scim.patch(&format!("/Users/{id}"), &update).await?;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["name"]["familyName"], "King");
    assert_eq!(
        patched.body["emails"][0]["value"],
        "ada.king@contoso.example"
    );
    let disable = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
    });
    let off = scim.patch(&format!("/Users/{id}"), &disable).await?;
    assert_eq!(off.body["active"], false, "{:?}", off.body);
    stack.deliver_current(&id).await?;
    assert!(
        !stack.reaches_app(&session).await?,
        "disabled at Entra: session ended"
    );

    // With the aadOptscim062020 flag: lower-case ops, booleans, a replace without a path whose
    // keys are attribute paths.
    let on = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": true, "name.givenName": "Augusta"}}]
    });
    let on = scim.patch(&format!("/Users/{id}"), &on).await?;
    assert_eq!(on.status, StatusCode::OK, "{:?}", on.body);
    assert_eq!(on.body["active"], true);
    assert_eq!(on.body["name"]["givenName"], "Augusta");
    stack.deliver_current(&id).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = stack.sign_in(ProviderKind::Entra, "ada").await?;
    assert!(stack.reaches_app(&again).await?);

    // A PATCH to a path no served schema defines changes nothing.
    let bogus = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "favouriteColour", "value": "teal"}]
    });
    let refused = scim.patch(&format!("/Users/{id}"), &bogus).await?;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.scim_type(), Some("invalidPath"));
    assert!(
        refused.detail().contains("favouriteColour"),
        "{}",
        refused.detail()
    );
    Ok(())
}

#[tokio::test]
async fn callers_without_the_configs_token_get_401_and_reach_nothing() -> Result<()> {
    let stack = scim_stack("okta").await?;
    let created = Scim::new(&stack).post("/Users", &okta_create()).await?;
    assert_eq!(created.status, StatusCode::CREATED);

    for token in [
        None,
        Some("wrong-token-0123456789abcdef"),
        Some(&TOKEN[..TOKEN.len() - 1]),
    ] {
        let scim = Scim::with_token(&stack, token);
        for path in ["/Users", "/ServiceProviderConfig", "/Nowhere"] {
            let reply = scim.get(path).await?;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?} {path}");
            assert!(reply.headers.contains_key("www-authenticate"));
            assert!(reply.body["Resources"].is_null(), "nothing listed");
        }
        let reply = scim
            .delete(&format!(
                "/Users/{}",
                created.body["id"].as_str().unwrap_or_default()
            ))
            .await?;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(stack.all_users().await?.len(), 1, "nothing deleted");

    // The previous token still works during a rotation.
    let previous = Scim::with_token(&stack, Some(PREVIOUS_TOKEN));
    assert_eq!(previous.get("/Users").await?.status, StatusCode::OK);

    // Entra ID's own test JWT (Secret Token left blank): refused, saying what to set.
    let entra_jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6IkFCQyJ9.\
                     eyJhdWQiOiI4YWRmOGU2ZS02N2IyLTRjZjItYTI1OS1lM2RjNTQ3NmM2MjEifQ.c2ln";
    let reply = Scim::with_token(&stack, Some(entra_jwt))
        .get("/Users")
        .await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.detail().contains("Secret Token"),
        "{}",
        reply.detail()
    );
    Ok(())
}

/// An SsoUser this test puts straight into the API: declared in Git (no source label) or of
/// another SsoConfig of the namespace.
fn declared(name: &str, config: &str, subject: &str, source: Option<&str>) -> SsoUser {
    let mut labels =
        std::collections::BTreeMap::from([(LABEL_CONFIG.to_owned(), config.to_owned())]);
    if let Some(source) = source {
        labels.insert(LABEL_SOURCE.to_owned(), source.to_owned());
    }
    SsoUser {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: SsoUserSpec {
            config: config.to_owned(),
            provider: "okta".into(),
            subject: subject.to_owned(),
            suspended: None,
            sessions_not_before: None,
            scim: None,
        },
        status: None,
    }
}

#[tokio::test]
async fn git_declared_users_are_read_only_and_another_configs_users_are_out_of_reach() -> Result<()>
{
    let stack = scim_stack("okta").await?;
    let scim = Scim::new(&stack);
    let git = declared(
        &gatehouse_crds::names::sso_user_name(
            gatehouse_tests::kube_stack::CONFIG,
            "okta",
            &stack.idp.okta_issuer,
            OKTA_ADA_SUB,
        ),
        gatehouse_tests::kube_stack::CONFIG,
        OKTA_ADA_SUB,
        None,
    );
    let mut theirs = declared("billing-user", "billing", "00u9other", Some(SOURCE_SCIM));
    theirs.spec.scim = Some(gatehouse_crds::ScimProfile {
        user_name: "other@example.com".into(),
        ..Default::default()
    });
    stack.users.create(&Default::default(), &git).await?;
    stack.users.create(&Default::default(), &theirs).await?;
    let git_id = git.metadata.name.clone().context("name")?;

    // Listed (the IdP may match it), but every write is 409 and changes nothing.
    let listed = scim.get("/Users").await?;
    assert_eq!(listed.body["totalResults"], 1, "{:?}", listed.body);
    assert_eq!(listed.body["Resources"][0]["id"], git_id.as_str());
    for reply in [
        scim.patch(&format!("/Users/{git_id}"), &okta_active(false))
            .await?,
        scim.put(&format!("/Users/{git_id}"), &okta_create())
            .await?,
        scim.delete(&format!("/Users/{git_id}")).await?,
        scim.post("/Users", &okta_create()).await?,
    ] {
        assert_eq!(reply.status, StatusCode::CONFLICT, "{:?}", reply.body);
        assert!(
            reply.detail().contains("declared in Git") || reply.detail().contains("already used"),
            "{}",
            reply.detail()
        );
    }
    let after = stack.users.get(&git_id).await?;
    assert_eq!(after.spec, git.spec, "unchanged");
    assert_eq!(stack.all_users().await?.len(), 2, "nothing created");

    // Another app's user: not found, whatever the verb.
    for reply in [
        scim.get("/Users/billing-user").await?,
        scim.patch("/Users/billing-user", &okta_active(false))
            .await?,
        scim.delete("/Users/billing-user").await?,
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{:?}", reply.body);
    }
    assert_eq!(stack.users.get("billing-user").await?.spec, theirs.spec);
    Ok(())
}

#[tokio::test]
async fn bad_input_gets_a_scim_error_and_writes_nothing() -> Result<()> {
    let stack = scim_stack("okta").await?;
    let scim = Scim::new(&stack);
    let post = |kind: &'static str, bytes: Vec<u8>| {
        let scim = &scim;
        async move {
            scim.send_raw(reqwest::Method::POST, "/Users", Some((kind, bytes)))
                .await
        }
    };
    let malformed = post("application/scim+json", b"{\"userName\": ".to_vec()).await?;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.scim_type(), Some("invalidSyntax"));
    let wrong_kind = post(
        "application/x-www-form-urlencoded",
        b"userName=ada".to_vec(),
    )
    .await?;
    assert_eq!(wrong_kind.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut big = okta_create();
    big["displayName"] = json!("x".repeat(1024 * 1024));
    let oversize = post("application/scim+json", big.to_string().into_bytes()).await?;
    assert_eq!(oversize.status, StatusCode::PAYLOAD_TOO_LARGE);
    let no_name = post(
        "application/scim+json",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})
            .to_string()
            .into_bytes(),
    )
    .await?;
    assert_eq!(no_name.status, StatusCode::BAD_REQUEST);
    assert!(
        no_name.detail().contains("userName"),
        "{}",
        no_name.detail()
    );

    for filter in [
        r#"userName co "ada""#,
        r#"userName eq "a" or userName eq "b""#,
        r#"nickName eq "x""#,
        "userName eq",
    ] {
        let reply = scim.get(&filter_path(filter)).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{filter}");
        assert_eq!(reply.scim_type(), Some("invalidFilter"), "{filter}");
    }
    let long = format!(r#"userName eq "{}""#, "a".repeat(4096));
    assert_eq!(
        scim.get(&filter_path(&long)).await?.scim_type(),
        Some("invalidFilter")
    );
    let deep = format!("{}userName eq \"a\"{}", "(".repeat(64), ")".repeat(64));
    assert_eq!(
        scim.get(&filter_path(&deep)).await?.scim_type(),
        Some("invalidFilter")
    );
    assert!(stack.all_users().await?.is_empty(), "nothing written");

    // Unknown paths under the SCIM root are SCIM 404s; other versions are never the app's.
    let unknown = scim.get("/Nowhere").await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["status"], "404");
    let other_version = stack.get_with("/api/auth/scim/v1/Users", &[]).await?;
    assert_eq!(other_version.status, StatusCode::NOT_FOUND);
    assert!(
        gatehouse_tests::kube_stack::seen_by_app(&other_version).is_none(),
        "never proxied to the app"
    );

    // The API server down: 503 with Retry-After, so the IdP retries; nothing half-written.
    stack.set_api_down(true);
    let down = scim.post("/Users", &okta_create()).await?;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        down.body
    );
    assert!(down.headers.contains_key("retry-after"));
    stack.set_api_down(false);
    assert!(stack.all_users().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn paging_skips_no_user_while_others_are_deleted_and_caps_count() -> Result<()> {
    let mut stack = scim_stack("okta").await?;
    let scim = Scim::new(&stack);
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut body = okta_create();
        body["userName"] = json!(format!("user{i}@example.com"));
        body["externalId"] = json!(format!("00u{i:017}"));
        let created = scim.post("/Users", &body).await?;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        ids.push(created.body["id"].as_str().context("id")?.to_owned());
    }
    let page = |start: usize| {
        let scim = &scim;
        async move {
            scim.get(&format!("/Users?startIndex={start}&count=3"))
                .await
        }
    };
    let first = page(1).await?;
    assert_eq!(first.body["totalResults"], 7);
    let mut seen: Vec<String> = first.body["Resources"]
        .as_array()
        .context("Resources")?
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(seen.len(), 3);
    // Two users of the first page are deleted before the second page is read.
    let deleted: Vec<String> = seen[..2].to_vec();
    for gone in &deleted {
        let user = stack.users.get(gone).await?;
        assert_eq!(
            scim.delete(&format!("/Users/{gone}")).await?.status,
            StatusCode::NO_CONTENT
        );
        stack.deliver(Ok(watcher::Event::Delete(user)));
    }
    let mut start = 4;
    loop {
        let reply = page(start).await?;
        let total = reply.body["totalResults"].as_u64().context("total")? as usize;
        seen.extend(
            reply.body["Resources"]
                .as_array()
                .context("Resources")?
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned)),
        );
        start += 3;
        if start > total {
            break;
        }
    }
    for id in &ids[..] {
        assert!(seen.contains(id), "{id} was skipped: {seen:?}");
    }

    // The same listing as a SearchRequest (POST /Users/.search).
    let survivor = ids
        .iter()
        .find(|id| !deleted.contains(id))
        .context("a survivor")?;
    let survivor_name = scim.get(&format!("/Users/{survivor}")).await?.body["userName"].clone();
    let filter = format!("userName eq {survivor_name}");
    let searched = scim
        .post(
            "/Users/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": filter,
                "attributes": ["userName"],
                "startIndex": 1,
                "count": 10
            }),
        )
        .await?;
    assert_eq!(searched.status, StatusCode::OK, "{:?}", searched.body);
    assert_eq!(searched.body["totalResults"], 1);
    assert_eq!(searched.body["Resources"][0]["userName"], survivor_name);
    assert!(
        searched.body["Resources"][0].get("emails").is_none(),
        "projected"
    );

    // count above the advertised maximum is capped, never an error; nonsense is refused.
    let capped = scim.get("/Users?count=100000").await?;
    assert_eq!(capped.status, StatusCode::OK);
    let config = scim.get("/ServiceProviderConfig").await?;
    let max = config.body["filter"]["maxResults"]
        .as_u64()
        .context("maxResults")?;
    assert!(
        capped.body["Resources"]
            .as_array()
            .context("Resources")?
            .len() as u64
            <= max
    );
    assert_eq!(
        scim.get("/Users?count=ten").await?.status,
        StatusCode::BAD_REQUEST
    );
    Ok(())
}

#[tokio::test]
async fn the_public_scim_conformance_suite_passes() -> Result<()> {
    let stack = scim_stack("okta").await?;
    let base = stack.url(SCIM_PATH);
    let checks =
        tokio::task::spawn_blocking(move || gatehouse_tests::scim_conformance::run(&base, TOKEN))
            .await??;
    ensure!(!checks.is_empty(), "the suite ran no check");
    let failed: Vec<_> = checks.iter().filter(|c| c.failed()).collect();
    for check in &checks {
        eprintln!(
            "{:<10} {}: {}",
            check.status,
            check.title,
            check.reason.as_deref().unwrap_or("")
        );
    }
    let passed = checks.iter().filter(|c| c.status == "SUCCESS").count();
    eprintln!("scim2-tester: {passed} of {} checks passed", checks.len());
    assert!(failed.is_empty(), "scim2-tester failures: {failed:#?}");
    Ok(())
}

#[tokio::test]
async fn a_flood_of_requests_gets_answers_never_a_5xx_or_a_half_written_user() -> Result<()> {
    let stack = scim_stack("okta").await?;
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..60 {
        let scim = Scim::new(&stack);
        requests.spawn(async move {
            let mut body = okta_create();
            body["userName"] = json!(format!("flood{}@example.com", i % 30));
            body["externalId"] = json!(format!("00uflood{:012}", i % 30));
            let created = scim.post("/Users", &body).await?;
            let listed = scim.get("/Users?count=5").await?;
            anyhow::Ok((created.status, listed.status))
        });
    }
    let mut created = 0;
    while let Some(done) = requests.join_next().await {
        let (post, list) = done??;
        for status in [post, list] {
            assert!(
                [
                    StatusCode::OK,
                    StatusCode::CREATED,
                    StatusCode::CONFLICT,
                    StatusCode::TOO_MANY_REQUESTS
                ]
                .contains(&status),
                "answered {status}"
            );
        }
        created += usize::from(post == StatusCode::CREATED);
    }
    // Each user name was pushed twice: one of the two made it, the other was refused (409) or
    // told to wait (429); nothing was half-written.
    let users = stack.all_users().await?;
    assert_eq!(users.len(), created);
    assert!(created <= 30);
    for user in &users {
        assert!(user.spec.scim.is_some(), "a whole profile");
        assert_eq!(
            user.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_SOURCE))
                .map(String::as_str),
            Some(SOURCE_SCIM)
        );
    }
    Ok(())
}
