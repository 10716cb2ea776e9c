//! ID token attacks, performed for real: tokens signed with locally generated keys (tests/data),
//! verified against an in-process JWKS endpoint whose key set the tests change.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_auth::token::{Expected, Nonce, TokenError, now_unix};
use gatehouse_sidecar::providers::jwks::JwksCache;
use gatehouse_sidecar::providers::jwks::verify_id_token;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.test";
const CLIENT: &str = "gatehouse-client";
const NONCE: &str = "nonce-0123456789";

struct Key {
    kid: &'static str,
    alg: Algorithm,
    encoding: EncodingKey,
    public: Value,
}

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key(kid: &'static str, file: &str, alg: Algorithm) -> Key {
    let pem = data(file);
    let encoding = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .expect("test key");
    let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    let public = serde_json::to_value(&jwk).expect("JWK JSON");
    Key {
        kid,
        alg,
        encoding,
        public,
    }
}

fn rsa1() -> Key {
    key("rsa-1", "rsa-1.pem", Algorithm::RS256)
}
fn rsa2() -> Key {
    key("rsa-2", "rsa-2.pem", Algorithm::RS256)
}
fn ec() -> Key {
    key("ec-1", "ec-p256.pem", Algorithm::ES256)
}
fn ed() -> Key {
    key("ed-1", "ed25519.pem", Algorithm::EdDSA)
}

fn claims() -> Value {
    let now = now_unix();
    json!({"iss": ISSUER, "aud": CLIENT, "sub": "00u1ada", "nonce": NONCE, "iat": now, "exp": now + 300,
           "email": "ada@example.com", "userType": "admin"})
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

fn with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = claims();
    if let Value::Object(m) = &mut c {
        f(m);
    }
    c
}

/// A JWKS endpoint whose document the test controls, counting fetches.
struct JwksServer {
    addr: SocketAddr,
    doc: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct ServerState {
    doc: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(State(s): State<ServerState>) -> axum::Json<Value> {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    let doc = s.doc.lock().map(|d| d.clone()).unwrap_or(Value::Null);
    axum::Json(doc)
}

impl JwksServer {
    async fn start(keys: &[&Key]) -> Self {
        let doc = Arc::new(Mutex::new(Self::document(keys)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let state = ServerState {
            doc: doc.clone(),
            fetches: fetches.clone(),
        };
        let router = Router::new()
            .route("/jwks", get(serve_jwks))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, doc, fetches }
    }

    fn document(keys: &[&Key]) -> Value {
        json!({ "keys": keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>() })
    }

    fn publish(&self, keys: &[&Key]) {
        if let Ok(mut doc) = self.doc.lock() {
            *doc = Self::document(keys);
        }
    }

    fn publish_raw(&self, doc: Value) {
        if let Ok(mut d) = self.doc.lock() {
            *d = doc;
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    async fn cache(&self, min_refetch: Duration) -> JwksCache {
        let url = url::Url::parse(&format!("http://{}/jwks", self.addr)).expect("url");
        let cache = JwksCache::new(url, reqwest::Client::new(), min_refetch);
        cache.refresh().await.expect("initial JWKS fetch");
        cache
    }
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: Nonce::Sent(NONCE),
        skew: Duration::from_secs(60),
    }
}

async fn verify(token: &str, cache: &JwksCache) -> Result<String, TokenError> {
    verify_id_token(token, cache, &expected())
        .await
        .map(|t| t.subject)
}

#[tokio::test]
async fn valid_tokens_of_each_algorithm_verify() {
    let (r, e, d) = (rsa1(), ec(), ed());
    let server = JwksServer::start(&[&r, &e, &d]).await;
    let cache = server.cache(Duration::from_secs(60)).await;
    for k in [&r, &e, &d] {
        assert_eq!(
            verify(&sign(k, &claims()), &cache).await,
            Ok("00u1ada".to_owned()),
            "{}",
            k.kid
        );
    }
    let token = verify_id_token(&sign(&r, &claims()), &cache, &expected())
        .await
        .expect("valid");
    assert_eq!(token.claims.get("userType"), Some(&json!("admin")));
}

#[tokio::test]
async fn signature_attacks_are_refused() {
    let r = rsa1();
    let server = JwksServer::start(&[&r]).await;
    let cache = server.cache(Duration::from_secs(60)).await;
    let good = sign(&r, &claims());

    // Signature bytes flipped (one byte at several places).
    let (message, signature) = good.rsplit_once('.').expect("three parts");
    let raw = URL_SAFE_NO_PAD.decode(signature).expect("b64");
    for i in [0, raw.len() / 2, raw.len() - 1] {
        let mut flipped = raw.clone();
        flipped[i] ^= 0x01;
        let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&flipped));
        assert_eq!(
            verify(&token, &cache).await,
            Err(TokenError::BadSignature),
            "byte {i}"
        );
    }
    // Payload changed under the original signature.
    let parts: Vec<&str> = good.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(
        with(|c| {
            c.insert("userType".into(), json!("admin"));
            c.insert("sub".into(), json!("mallory"));
        })
        .to_string(),
    );
    let token = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    assert_eq!(verify(&token, &cache).await, Err(TokenError::BadSignature));

    // alg: none, with and without a signature.
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "rsa-1"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for token in [
        format!("{none_header}.{payload}."),
        format!("{none_header}.{payload}.{}", parts[2]),
    ] {
        assert_eq!(
            verify(&token, &cache).await,
            Err(TokenError::UnsupportedAlgorithm)
        );
    }

    // RS256 → HS256 with the provider's public key as the HMAC secret.
    let public_pem = data("rsa-1.pub.pem");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let hs = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&public_pem))
        .expect("sign");
    assert_eq!(
        verify(&hs, &cache).await,
        Err(TokenError::UnsupportedAlgorithm)
    );
    // Same with the JWK's modulus bytes as the secret.
    let n = r.public.get("n").and_then(Value::as_str).expect("n");
    let hs = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(n.as_bytes()))
        .expect("sign");
    assert_eq!(
        verify(&hs, &cache).await,
        Err(TokenError::UnsupportedAlgorithm)
    );

    // Garbage.
    for token in ["", "a.b", "a.b.c", "....", &"x".repeat(20_000)] {
        assert!(verify(token, &cache).await.is_err(), "{token:.20}");
    }
}

#[tokio::test]
async fn claim_attacks_are_refused() {
    let r = rsa1();
    let server = JwksServer::start(&[&r]).await;
    let cache = server.cache(Duration::from_secs(60)).await;
    let now = now_unix();
    let cases: Vec<(&str, Value, TokenError)> = vec![
        (
            "wrong iss",
            with(|c| {
                c.insert("iss".into(), json!("https://evil.test"));
            }),
            TokenError::WrongIssuer,
        ),
        (
            "iss with trailing slash",
            with(|c| {
                c.insert("iss".into(), json!("https://idp.test/"));
            }),
            TokenError::WrongIssuer,
        ),
        (
            "missing iss",
            with(|c| {
                c.remove("iss");
            }),
            TokenError::MissingClaim("iss"),
        ),
        (
            "wrong aud",
            with(|c| {
                c.insert("aud".into(), json!("someone-else"));
            }),
            TokenError::WrongAudience,
        ),
        (
            "extra aud without azp",
            with(|c| {
                c.insert("aud".into(), json!([CLIENT, "other-api"]));
            }),
            TokenError::UntrustedAudience,
        ),
        (
            "extra aud, azp is another client",
            with(|c| {
                c.insert("aud".into(), json!([CLIENT, "other"]));
                c.insert("azp".into(), json!("other"));
            }),
            TokenError::WrongAudience,
        ),
        (
            "expired",
            with(|c| {
                c.insert("exp".into(), json!(now - 120));
                c.insert("iat".into(), json!(now - 600));
            }),
            TokenError::Expired,
        ),
        (
            "missing exp",
            with(|c| {
                c.remove("exp");
            }),
            TokenError::MissingClaim("exp"),
        ),
        (
            "iat in the future",
            with(|c| {
                c.insert("iat".into(), json!(now + 600));
                c.insert("exp".into(), json!(now + 900));
            }),
            TokenError::IssuedInFuture,
        ),
        (
            "nbf in the future",
            with(|c| {
                c.insert("nbf".into(), json!(now + 600));
            }),
            TokenError::NotYetValid,
        ),
        (
            "wrong nonce",
            with(|c| {
                c.insert("nonce".into(), json!("nonce-from-another-attempt"));
            }),
            TokenError::NonceMismatch,
        ),
        (
            "missing nonce",
            with(|c| {
                c.remove("nonce");
            }),
            TokenError::MissingClaim("nonce"),
        ),
        (
            "missing sub",
            with(|c| {
                c.remove("sub");
            }),
            TokenError::MissingClaim("sub"),
        ),
        (
            "empty sub",
            with(|c| {
                c.insert("sub".into(), json!(""));
            }),
            TokenError::MissingClaim("sub"),
        ),
    ];
    for (name, claims, error) in cases {
        assert_eq!(
            verify(&sign(&r, &claims), &cache).await,
            Err(error),
            "{name}"
        );
    }
    // Within the skew: accepted.
    let ok = [
        with(|c| {
            c.insert("exp".into(), json!(now - 30));
            c.insert("iat".into(), json!(now - 600));
        }),
        with(|c| {
            c.insert("iat".into(), json!(now + 30));
        }),
        with(|c| {
            c.insert("nbf".into(), json!(now + 30));
        }),
        with(|c| {
            c.insert("aud".into(), json!([CLIENT, "other-api"]));
            c.insert("azp".into(), json!(CLIENT));
        }),
    ];
    for claims in ok {
        assert!(verify(&sign(&r, &claims), &cache).await.is_ok(), "{claims}");
    }
}

#[tokio::test]
async fn key_confusion_between_algorithms_is_refused() {
    let (r, e) = (rsa1(), ec());
    let server = JwksServer::start(&[&r, &e]).await;
    let cache = server.cache(Duration::from_secs(60)).await;
    // An RS256 token claiming the EC key's id: no RS256 key has that id.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(e.kid.to_owned());
    let token = jsonwebtoken::encode(&header, &claims(), &r.encoding).expect("sign");
    assert_eq!(verify(&token, &cache).await, Err(TokenError::UnknownKey));
}

#[tokio::test]
async fn unknown_kid_triggers_one_rate_limited_refetch_then_rotation_works() {
    let (old, new, third) = (rsa1(), rsa2(), ec());
    let server = JwksServer::start(&[&old]).await;
    let cache = server.cache(Duration::from_millis(400)).await;
    assert_eq!(server.fetches(), 1);
    assert!(verify(&sign(&old, &claims()), &cache).await.is_ok());
    assert_eq!(server.fetches(), 1, "known keys need no fetch");

    // Right after a fetch, an unknown kid is not worth another one.
    server.publish(&[&new]);
    assert_eq!(
        verify(&sign(&new, &claims()), &cache).await,
        Err(TokenError::UnknownKey)
    );
    assert_eq!(server.fetches(), 1, "rate-limited");

    // The IdP rotated (new key published, old one withdrawn); once the interval passed, the
    // unknown kid triggers exactly one refetch.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        verify(&sign(&new, &claims()), &cache).await,
        Ok("00u1ada".to_owned())
    );
    assert_eq!(
        server.fetches(),
        2,
        "exactly one refetch for the unknown kid"
    );
    assert_eq!(
        verify(&sign(&old, &claims()), &cache).await,
        Err(TokenError::UnknownKey)
    );
    // That miss came right after a fetch: rate limited, no request to the IdP.
    assert_eq!(server.fetches(), 2);

    // A flood of random kids does not reach the IdP more than once per interval.
    for i in 0..20 {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("random-{i}"));
        let token = jsonwebtoken::encode(&header, &claims(), &new.encoding).expect("sign");
        assert_eq!(verify(&token, &cache).await, Err(TokenError::UnknownKey));
    }
    assert!(server.fetches() <= 3, "fetches: {}", server.fetches());

    // After the interval a new unknown kid may fetch again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    server.publish(&[&new, &third]);
    let before = server.fetches();
    assert!(verify(&sign(&third, &claims()), &cache).await.is_ok());
    assert_eq!(server.fetches(), before + 1);
}

#[tokio::test]
async fn keys_of_unknown_type_are_ignored() {
    let r = rsa1();
    let server = JwksServer::start(&[&r]).await;
    server.publish_raw(json!({"keys": [
        {"kty": "PQC-ML-DSA", "kid": "future", "pub": "AAAA"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
        r.public.clone(),
    ]}));
    let cache = server.cache(Duration::from_secs(60)).await;
    assert_eq!(cache.current().len(), 1);
    assert!(verify(&sign(&r, &claims()), &cache).await.is_ok());

    // A JWKS with nothing usable is an error (discovery would retry), and keeps the old keys.
    server.publish_raw(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}));
    assert!(cache.refresh().await.is_err());
    assert!(verify(&sign(&r, &claims()), &cache).await.is_ok());
}
