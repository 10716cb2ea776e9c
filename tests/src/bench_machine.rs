//! The machine client of `cargo xtask bench` (issue 28): a client-credentials token issuer on
//! loopback and the bearer token the benchmark sends, so the report can give what a machine
//! request costs beside a browser's session cookie.
//!
//! The issuer is shaped like an Okta custom authorization server: an OIDC discovery document and a
//! JWKS of one RS256 key of 2048 bits. (The fixture IdPs issue no client-credentials tokens.) The
//! token carries the claims of an Okta client-credentials access token (`ver`, `jti`, `iss`,
//! `aud`, `iat`, `exp`, `cid`, `scp`, `sub`); its `scp` maps to a role, and it lives for
//! [`TOKEN_LIFETIME`], longer than any benchmark run. The sidecar fetches the keys at the first
//! token (the stack's check before the run), so every request of the run finds them cached.

use std::time::Duration;

use anyhow::{Context, Result};
use axum::{Json, Router, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

/// The issuer's name in `machineAuth.issuers` (`X-Forwarded-Provider`, rules' `clients`).
pub const ISSUER_NAME: &str = "okta-cc";
/// The audience the token is for, as an Okta authorization server's.
pub const AUDIENCE: &str = "api://portal";
/// How long the benchmark's token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The signing key's `kid`.
const KID: &str = "bench-rs256";

/// A client-credentials token issuer serving discovery and its JWKS on loopback, until the
/// process ends.
pub struct Issuer {
    /// `iss`, and the base of the discovery document.
    pub url: String,
    key: EncodingKey,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Generates the signing key and starts serving.
    pub async fn start() -> Result<Self> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .context("generating the issuer's RSA key")?;
        let key = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
        jwk.common.key_id = Some(KID.to_owned());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/v1/keys"),
            "token_endpoint": format!("{url}/v1/token"),
            "grant_types_supported": ["client_credentials"],
        });
        let jwks = json!({ "keys": [jwk] });
        let router = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { Json(discovery) }),
            )
            .route("/v1/keys", get(move || async move { Json(jwks) }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { url, key })
    }

    /// `GATEHOUSE_MACHINE_AUTH` naming this issuer (the keys from its discovery document),
    /// `scp` mapped to a role.
    pub fn machine_auth(&self) -> String {
        json!({
            "issuers": [{
                "name": ISSUER_NAME,
                "issuer": self.url,
                "audiences": [AUDIENCE],
                "algorithms": ["RS256"],
                "roleClaim": "scp",
                "roleMap": [
                    {"value": "portal.admin", "role": "admin"},
                    {"value": "portal.read", "role": "member"}
                ]
            }]
        })
        .to_string()
    }

    /// A client-credentials access token of this issuer, valid for [`TOKEN_LIFETIME`] from now.
    pub fn token(&self) -> Result<String> {
        self.sign(&claims(&self.url))
    }

    /// `claims` signed with the issuer's key.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

/// The claims of an Okta client-credentials access token for [`AUDIENCE`].
fn claims(issuer: &str) -> Value {
    let now = gatehouse_auth::token::now_unix();
    let lifetime = i64::try_from(TOKEN_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    json!({
        "ver": 1,
        "jti": format!("AT.{}", crate::process::random_key_b64().unwrap_or_default()
            .replace(['+', '/', '='], "")),
        "iss": issuer,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + lifetime,
        "cid": "0oa8bench5client6id7",
        "scp": ["portal.read"],
        "sub": "0oa8bench5client6id7",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_auth::claims::Role;
    use gatehouse_auth::jwk::KeySet;
    use gatehouse_auth::machine::{MachineAuth, MachineIssuer, UnverifiedBearer};

    #[tokio::test]
    async fn the_token_verifies_against_the_served_keys_as_a_member() {
        let issuer = Issuer::start().await.expect("issuer");
        let config: Value = serde_json::from_str(&issuer.machine_auth()).expect("JSON");
        assert_eq!(config["issuers"][0]["issuer"], issuer.url.as_str());
        let client = reqwest::Client::new();
        let discovery: Value = client
            .get(format!("{}/.well-known/openid-configuration", issuer.url))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        assert_eq!(discovery["issuer"], issuer.url.as_str());
        let jwks = client
            .get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
            .send()
            .await
            .expect("jwks")
            .bytes()
            .await
            .expect("jwks body");
        let keys = KeySet::parse(&jwks).expect("a JWKS");
        let auth = MachineAuth::new(
            vec![MachineIssuer {
                name: ISSUER_NAME.to_owned(),
                issuer: issuer.url.clone(),
                audiences: vec![AUDIENCE.to_owned()],
                algorithms: vec![Algorithm::RS256],
                role_claim: Some("scp".to_owned()),
                role_map: serde_json::from_value(config["issuers"][0]["roleMap"].clone())
                    .expect("role map"),
            }],
            None,
            gatehouse_auth::machine::DEFAULT_SKEW,
        )
        .expect("valid config");
        let raw = issuer.token().expect("token");
        let token = UnverifiedBearer::parse(&raw).expect("parse");
        let now = gatehouse_auth::token::now_unix();
        let principal = auth.verify(&token, &keys, now).expect("verified");
        assert_eq!(principal.role, Some(Role::Member));
        assert_eq!(principal.id, format!("{ISSUER_NAME}:0oa8bench5client6id7"));
        // Valid for the whole of any run.
        assert!(principal.expires_at >= now + 6 * 3600);
    }
}
