//! Sessions that follow the IdP, end to end: two sidecar replicas on one in-memory Kubernetes API,
//! the real fixture OIDC provider, real sign-ins.
//!
//! The in-memory API has no streaming watch, so the tests play it (as `tests/src/kube_stack.rs`
//! explains): after a write they deliver the SsoUser as the API holds it to each replica's watch
//! cache. What is under test is the sidecars' own path: the IdP's back-channel logout POST, the
//! write on the SsoUser, and each replica refusing the session once its watch carries it.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use gatehouse_crds::SsoUser;
use gatehouse_tests::flow::LoginFlow;
use gatehouse_tests::idp::PASSWORD;
use gatehouse_tests::kube_stack::{KubeOptions, KubeStack, WS_PATH};
use gatehouse_tests::stack::ProviderKind;
use kube::api::DeleteParams;
use kube::runtime::watcher;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// A sign-in at the stack's sidecar in a browser of its own, kept so it can log out at the IdP.
async fn sign_in_keeping_browser(
    stack: &KubeStack,
    login: &str,
) -> (LoginFlow, gatehouse_tests::flow::Session) {
    let flow = LoginFlow::start_at(&stack.url(""), ProviderKind::Okta, Some("/"))
        .await
        .expect("start");
    let callback = flow.authenticate(login, PASSWORD).await.expect("IdP login");
    let attempt = flow.finish(callback).await.expect("callback");
    let session = attempt.session.unwrap_or_else(|| {
        panic!(
            "no session: {} {}",
            attempt.callback.status, attempt.callback.body
        )
    });
    (flow, session)
}

async fn only_user(stack: &KubeStack) -> SsoUser {
    let users = stack.all_users().await.expect("list");
    assert_eq!(users.len(), 1, "one SsoUser expected");
    users.into_iter().next().expect("one user")
}

fn user_name(user: &SsoUser) -> String {
    user.metadata.name.clone().expect("name")
}

#[tokio::test]
async fn a_logout_at_the_idp_ends_that_session_on_both_replicas() {
    let mut stack = KubeStack::start(KubeOptions::default())
        .await
        .expect("stack");
    stack.sync().await.expect("sync");
    let mut replica = stack.start_replica().await.expect("replica");

    // Two browsers of one user: two IdP sessions, two sidecar sessions.
    let (browser, session) = sign_in_keeping_browser(&stack, "ada").await;
    let (_other_browser, other) = sign_in_keeping_browser(&stack, "ada").await;
    let name = user_name(&only_user(&stack).await);
    stack.sync().await.expect("sync");
    replica.sync().await.expect("sync");
    for s in [&session, &other] {
        assert!(stack.reaches_app(s).await.expect("request"), "replica 1");
        assert!(replica.reaches_app(s).await.expect("request"), "replica 2");
    }

    // Logging out at the IdP makes it POST a logout token (with the IdP session's `sid`) to the
    // sidecar; the sidecar records it on the SsoUser before answering.
    let answer = browser
        .sign_out_at_idp(&stack.idp.okta_issuer)
        .await
        .expect("IdP logout");
    assert!(
        answer.status.is_redirection() || answer.status.is_success(),
        "IdP logout answered {} {}",
        answer.status,
        answer.body
    );
    let user = only_user(&stack).await;
    let revoked = user.status.clone().unwrap_or_default().revoked_sessions;
    assert_eq!(
        revoked.len(),
        1,
        "the back-channel logout is recorded on the SsoUser: {revoked:?}; IdP logout answered \
         {} {}; IdP log:\n{}",
        answer.status,
        answer.body.chars().take(500).collect::<String>(),
        stack.idp.process.logs.text()
    );

    // The watch carries it to both replicas.
    stack.deliver_current(&name).await.expect("deliver");
    replica.deliver_current(&name).await.expect("deliver");
    assert!(
        !stack.reaches_app(&session).await.expect("request"),
        "replica 1 still admits the session logged out at the IdP"
    );
    assert!(
        !replica.reaches_app(&session).await.expect("request"),
        "replica 2 still admits the session logged out at the IdP"
    );
    // Only that IdP session ended: the user's other browser is still signed in.
    assert!(stack.reaches_app(&other).await.expect("request"));
    assert!(replica.reaches_app(&other).await.expect("request"));
}

#[tokio::test]
async fn logout_at_one_replica_ends_the_session_on_the_other() {
    let mut stack = KubeStack::start(KubeOptions::default())
        .await
        .expect("stack");
    stack.sync().await.expect("sync");
    let mut replica = stack.start_replica().await.expect("replica");
    let session = stack
        .sign_in(ProviderKind::Okta, "bob")
        .await
        .expect("sign in");
    let name = user_name(&only_user(&stack).await);
    replica.sync().await.expect("sync");
    assert!(replica.reaches_app(&session).await.expect("request"));

    // The browser logs out at replica 1; an attacker who copied the cookie tries replica 2.
    let res = gatehouse_tests::http_client()
        .expect("client")
        .post(stack.url("/api/auth/logout"))
        .header("cookie", session.cookie_header())
        .send()
        .await
        .expect("logout");
    assert!(res.status().is_redirection(), "{}", res.status());
    replica.deliver_current(&name).await.expect("deliver");
    assert!(
        !replica.reaches_app(&session).await.expect("request"),
        "the other replica still admits a logged-out session"
    );
    stack.deliver_current(&name).await.expect("deliver");
    assert!(!stack.reaches_app(&session).await.expect("request"));
}

#[tokio::test]
async fn a_websocket_is_closed_when_the_ssouser_is_deleted() {
    let mut stack = KubeStack::start(KubeOptions::default())
        .await
        .expect("stack");
    stack.sync().await.expect("sync");
    let session = stack
        .sign_in(ProviderKind::Okta, "ada")
        .await
        .expect("sign in");
    stack.sync().await.expect("sync");

    let ws_url = stack.url(WS_PATH).replacen("http://", "ws://", 1);
    let mut req = ws_url.as_str().into_client_request().expect("request");
    req.headers_mut()
        .insert("cookie", session.cookie_header().parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("WebSocket through the sidecar");
    socket.send(Message::text("hello")).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("echo in time")
        .expect("a message")
        .expect("ok");
    assert_eq!(reply.into_text().expect("text").as_str(), "hello");

    let user = only_user(&stack).await;
    stack
        .users
        .delete(&user_name(&user), &DeleteParams::default())
        .await
        .expect("delete the SsoUser");
    stack.deliver(Ok(watcher::Event::Delete(user)));

    // Closed within a second of the watch delivering the deletion: the stream ends (or errors)
    // without the client closing it.
    let closed = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the WebSocket of a deleted user stayed open for more than a second"
    );
}
