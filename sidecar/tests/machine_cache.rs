//! The sidecar's memory of verified machine tokens (`machine::verified`), through the sidecar in
//! process: a refusal is never remembered. (The memory's own bounds, expiry and size are its
//! unit tests.)

mod common;

use axum::Router;
use axum::routing::get;
use common::harness::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const AUDIENCE: &str = "api://portal";

#[tokio::test]
async fn a_refused_token_is_checked_afresh_at_the_next_request() {
    // The issuer's keys are at a port where nothing listens yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let machine = json!({
        "issuers": [{
            "name": "okta-cc", "issuer": issuer, "jwksUri": format!("{issuer}/keys"),
            "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "roleClaim": "scp", "roleMap": [{"value": "portal.read", "role": "member"}]
        }]
    })
    .to_string();
    let sc = sidecar(
        serve_app(Router::new().fallback(echo)).await,
        &[("GATEHOUSE_MACHINE_AUTH", &machine)],
    )
    .await;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key pair");
    let signer = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("EC key");
    let mut jwk = Jwk::from_encoding_key(&signer, Algorithm::ES256).expect("public JWK");
    jwk.common.key_id = Some("k1".to_owned());
    let now = gatehouse_auth::token::now_unix();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".to_owned());
    let bearer = jsonwebtoken::encode(
        &header,
        &json!({"iss": issuer, "sub": "0oa-deploy-bot", "aud": AUDIENCE,
                "iat": now, "exp": now + 300, "scp": "portal.read"}),
        &signer,
    )
    .expect("signed");
    let call = || async {
        client()
            .get(url(&sc, "/api/items"))
            .header("authorization", format!("Bearer {bearer}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16()
    };
    // The keys cannot be read: refused, as often as asked.
    assert_eq!(call().await, 401);
    assert_eq!(call().await, 401);
    // The issuer answers now: the same token is verified afresh and admitted, then admitted
    // again (from memory).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the issuer's port");
    let jwks = json!({"keys": [jwk]});
    let router = Router::new().route("/keys", get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    assert_eq!(call().await, 200, "the refusal was not remembered");
    assert_eq!(call().await, 200);
}
