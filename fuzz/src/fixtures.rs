//! What every target runs against: a fixed clock, cookie keys and bindings, the token signer and
//! its key set, and the SAML IdP's certificate. The same values make the seed corpus
//! (`examples/seeds.rs`), so genuine seeds stay genuine for the targets.
//!
//! The keys under `fuzz/keys/` are test keys, public on purpose: nothing outside this crate
//! trusts them.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_auth::cookie::{Binding, KeyRing};
use gatehouse_auth::jwk::KeySet;
use jsonwebtoken::{Algorithm, EncodingKey};

/// The targets' "now", Unix seconds (2027-01-15).
pub const NOW: i64 = 1_800_000_000;

/// The cookie key that sealed the seed cookies.
pub const COOKIE_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// A key that never sealed anything: nothing may open under it.
pub const STRANGER_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// The session a refresh seed belongs to.
pub const REFRESH_SID: &str = "sid-1";

/// The ID-token and logout-token issuer.
pub const ISSUER: &str = "https://idp.example";
/// Our client id.
pub const CLIENT_ID: &str = "gatehouse-app";
/// The nonce of the sign-in attempt the seed ID tokens answer.
pub const NONCE: &str = "n-0S6_WzA2Mj";
/// Clock skew the verifiers tolerate.
pub const SKEW: Duration = Duration::from_secs(60);
/// `kid` of the token signer.
pub const SIGNER_KID: &str = "fuzz-ed25519";

/// The Ed25519 key that signs seed tokens and the claims the token targets sign for themselves.
pub const SIGNER_PEM: &str = include_str!("../keys/token-signer.key.pem");
/// Its public half as a JWKS document.
pub const SIGNER_JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":"fuzz-ed25519","x":"cUvMMOndXqIbOa848S8DhqS4I7vT93oqlnkALNy6lS4"}]}"#;

/// The SAML IdP's signing certificate (PEM), whose key signed the seed responses.
pub const SAML_CERT_PEM: &str = include_str!("../keys/saml-idp.crt.pem");
/// The SAML IdP's private key (PKCS#8 PEM): only the seed generator signs with it.
pub const SAML_KEY_PEM: &str = include_str!("../keys/saml-idp.key.pem");
/// The IdP's entity ID.
pub const SAML_IDP: &str = "https://idp.example/metadata";
/// Our entity ID.
pub const SAML_SP: &str = "https://app.example/api/auth/saml/metadata";
/// Our ACS URL.
pub const SAML_ACS: &str = "https://app.example/api/auth/saml/acs";
/// The SP's single logout URL (where the IdP's LogoutRequests are addressed).
pub const SAML_SLO: &str = "https://app.example/api/auth/logout";
/// ID of the LogoutRequest the fixture IdP signed.
pub const SAML_LOGOUT_ID: &str = "_logout-1";
/// The requests this browser started.
pub const SAML_REQUESTS: [&str; 2] = ["_other", "_request-1"];
/// The NameID every genuine seed response carries.
pub const SAML_NAME_ID: &str = "p-admin-7c1e4b";
/// The ID of the assertion every genuine seed response carries.
pub const SAML_ASSERTION_ID: &str = "_assert-1";
/// The ID of the genuine seed responses.
pub const SAML_RESPONSE_ID: &str = "_resp-1";
/// The attributes every genuine seed assertion carries, as the verifier reads them.
pub const SAML_ATTRIBUTES: &str = r#"{"memberOf":["cn=hr-admins,ou=groups,dc=example,dc=com","staff"],"mail":"admin@example.com"}"#;

/// The binding seed cookies were sealed to.
pub fn binding() -> Binding {
    Binding::new("team-a", "portal", "https://portal.example.com", None)
}

/// Bindings of other apps: nothing sealed for [`binding`] may open under them.
pub fn other_bindings() -> [Binding; 4] {
    [
        Binding::new("team-a", "billing", "https://portal.example.com", None),
        Binding::new("team-b", "portal", "https://portal.example.com", None),
        Binding::new("team-a", "portal", "https://other.example.com", None),
        Binding::new(
            "team-a",
            "portal",
            "https://portal.example.com",
            Some("uid-1"),
        ),
    ]
}

/// The cookie key rings.
#[derive(Debug)]
pub struct Rings {
    /// [`COOKIE_KEY`] alone: seals and opens the seeds.
    pub ring: KeyRing,
    /// [`STRANGER_KEY`] first, then [`COOKIE_KEY`]: a rotation, which still opens old cookies.
    pub rotated: KeyRing,
    /// [`STRANGER_KEY`] alone.
    pub stranger: KeyRing,
}

/// The rings, parsed once.
pub fn rings() -> &'static Rings {
    static RINGS: LazyLock<Rings> = LazyLock::new(|| Rings {
        ring: KeyRing::parse(COOKIE_KEY).expect("cookie key"),
        rotated: KeyRing::parse(&format!("{STRANGER_KEY},{COOKIE_KEY}")).expect("rotated ring"),
        stranger: KeyRing::parse(STRANGER_KEY).expect("stranger key"),
    });
    &RINGS
}

/// [`SAML_ATTRIBUTES`], parsed once.
pub fn saml_attributes() -> &'static serde_json::Map<String, serde_json::Value> {
    static ATTRIBUTES: LazyLock<serde_json::Map<String, serde_json::Value>> =
        LazyLock::new(|| serde_json::from_str(SAML_ATTRIBUTES).expect("attributes"));
    &ATTRIBUTES
}

/// The token signer.
pub fn signer() -> &'static EncodingKey {
    static KEY: LazyLock<EncodingKey> =
        LazyLock::new(|| EncodingKey::from_ed_pem(SIGNER_PEM.as_bytes()).expect("signer key"));
    &KEY
}

/// The signer's key set.
pub fn key_set() -> &'static KeySet {
    static SET: LazyLock<KeySet> =
        LazyLock::new(|| KeySet::parse(SIGNER_JWKS.as_bytes()).expect("signer JWKS"));
    &SET
}

/// A compact JWS of `header` (JSON text) and `payload` (any bytes) signed by [`signer`].
pub fn sign_token(header: &str, payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), signer(), Algorithm::EdDSA).expect("signing");
    format!("{input}.{signature}")
}

/// The DER of a PEM document's first block.
pub fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD.decode(body.trim()).expect("PEM body")
}

/// The SAML IdP's certificate, DER.
pub fn saml_certs() -> &'static [Vec<u8>] {
    static CERTS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| vec![pem_der(SAML_CERT_PEM)]);
    &CERTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_load() {
        assert_eq!(rings().rotated.len(), 2);
        assert_eq!(key_set().len(), 1);
        assert!(!saml_certs()[0].is_empty());
        let token = sign_token(r#"{"alg":"EdDSA"}"#, b"{}");
        assert_eq!(token.split('.').count(), 3);
    }
}
