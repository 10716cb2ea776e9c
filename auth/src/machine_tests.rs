//! Machine-token attacks, performed for real: tokens signed with keys generated here, verified
//! against a JWKS document built from their public halves. Every attack follows the honest token.

use std::sync::OnceLock;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::token::now_unix;

const OKTA: &str = "https://acme.okta.test/oauth2/default";
const API: &str = "api://reports";
const K8S: &str = "https://kubernetes.default.svc.cluster.local";
const K8S_ISSUER: &str = "https://oidc.cluster.test";
const GATEHOUSE_AUD: &str = "gatehouse";
const BROWSER_CLIENT: &str = "0oa-browser-client";

struct TestKey {
    kid: &'static str,
    alg: Algorithm,
    encoding: EncodingKey,
    public: Value,
}

fn generate(kid: &'static str, alg: Algorithm) -> TestKey {
    let pem = |rc| {
        let pair = rcgen::KeyPair::generate_for(rc).expect("key pair");
        pair.serialize_pem().into_bytes()
    };
    let encoding = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem(&rcgen::PKCS_RSA_SHA256)),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem(&rcgen::PKCS_ECDSA_P256_SHA256)),
        // jsonwebtoken reads the public half of a PKCS#8 v1 key only (rcgen writes v2): the
        // identity signer's encoding.
        _ => {
            let mut der = crate::identity::ED25519_PKCS8_PREFIX.to_vec();
            der.extend_from_slice(&rand::random::<[u8; 32]>());
            Ok(EncodingKey::from_ed_der(&der))
        }
    }
    .expect("encoding key");
    let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    TestKey {
        kid,
        alg,
        encoding,
        public: serde_json::to_value(&jwk).expect("JWK JSON"),
    }
}

struct Keys {
    rsa: TestKey,
    rsa2: TestKey,
    ec: TestKey,
    ed: TestKey,
    /// Not in any JWKS; signs under `rsa`'s kid.
    impostor: TestKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: generate("rsa-1", Algorithm::RS256),
        rsa2: generate("rsa-2", Algorithm::RS256),
        ec: generate("ec-1", Algorithm::ES256),
        ed: generate("ed-1", Algorithm::EdDSA),
        impostor: generate("rsa-1", Algorithm::RS256),
    })
}

fn jwks(keys: &[&TestKey]) -> KeySet {
    let doc = json!({"keys": keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>()});
    let set = KeySet::parse(doc.to_string().as_bytes()).expect("a JWKS");
    assert_eq!(set.len(), keys.len(), "every test key is usable");
    set
}

/// The issuer's published keys: RSA, EC and Ed25519.
fn published() -> KeySet {
    let k = keys();
    jwks(&[&k.rsa, &k.ec, &k.ed])
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

/// A token with a header of the test's choosing, signed by `key` under `alg`.
fn sign_raw(header: &Value, claims: &Value, key: &TestKey, alg: Algorithm) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key.encoding, alg).expect("sign");
    format!("{message}.{signature}")
}

fn okta_issuer() -> MachineIssuer {
    MachineIssuer {
        role_claim: Some("scp".into()),
        role_map: vec![
            RoleRule {
                value: "reports:admin".into(),
                role: Role::Admin,
            },
            RoleRule {
                value: "reports:read".into(),
                role: Role::Member,
            },
        ],
        ..MachineIssuer::new("okta-ci", OKTA, &[API])
    }
}

fn kubernetes() -> KubernetesIssuer {
    KubernetesIssuer {
        issuer: K8S_ISSUER.into(),
        audiences: vec![GATEHOUSE_AUD.into()],
        service_accounts: vec![
            ("ci/deployer".into(), Role::Admin),
            ("ci/reader".into(), Role::Member),
        ],
    }
}

fn auth_with(issuer: MachineIssuer) -> MachineAuth {
    MachineAuth::new(vec![issuer], Some(kubernetes()), DEFAULT_SKEW).expect("valid config")
}

fn auth() -> MachineAuth {
    auth_with(okta_issuer())
}

fn okta_claims() -> Value {
    let now = now_unix();
    json!({"iss": OKTA, "aud": API, "sub": "0oa-ci-client", "cid": "0oa-ci-client",
           "scp": "reports:read offline", "iat": now, "exp": now + 300})
}

fn sa_claims(namespace: &str, name: &str) -> Value {
    let now = now_unix();
    json!({"iss": K8S_ISSUER, "aud": [GATEHOUSE_AUD], "sub": format!("system:serviceaccount:{namespace}:{name}"),
           "iat": now, "nbf": now, "exp": now + 600,
           "kubernetes.io": {"namespace": namespace,
                             "serviceaccount": {"name": name, "uid": "6f0c0b8e-1111-2222-3333-444455556666"},
                             "pod": {"name": "runner-1", "uid": "0d0e0f00-aaaa-bbbb-cccc-ddddeeeeffff"}}})
}

fn with(mut claims: Value, f: impl FnOnce(&mut Map<String, Value>)) -> Value {
    f(claims.as_object_mut().expect("claims object"));
    claims
}

fn verify_at(
    auth: &MachineAuth,
    token: &str,
    keys: &KeySet,
    now: i64,
) -> Result<MachinePrincipal, BearerError> {
    let token = UnverifiedBearer::parse(token)?;
    auth.verify(&token, keys, now)
}

fn verify(auth: &MachineAuth, token: &str, keys: &KeySet) -> Result<MachinePrincipal, BearerError> {
    verify_at(auth, token, keys, now_unix())
}

fn okta_verify(claims: &Value) -> Result<MachinePrincipal, BearerError> {
    verify(&auth(), &sign(&keys().rsa, claims), &published())
}

#[test]
fn an_external_issuers_token_is_a_principal_with_its_id_role_and_claims() {
    let claims = okta_claims();
    let p = okta_verify(&claims).expect("honest token");
    assert_eq!(p.id, "okta-ci:0oa-ci-client");
    assert_eq!(p.issuer_name, "okta-ci");
    assert_eq!(p.subject, "0oa-ci-client");
    assert_eq!(p.role, Some(Role::Member));
    assert_eq!(p.service_account, None);
    assert_eq!(p.expires_at, claims["exp"].as_i64().expect("exp"));
    assert_eq!(p.claims.get("cid"), Some(&json!("0oa-ci-client")));

    let who = p.who();
    assert_eq!(who.kind, PrincipalType::Machine);
    assert_eq!(who.user, "okta-ci:0oa-ci-client");
    assert_eq!(who.role, Some(Role::Member));
    assert_eq!(who.provider, "okta-ci");
    assert_eq!(who.client, Some("okta-ci"));
    assert_eq!(who.service_account, None);
    assert_eq!(who.email, None);
    assert!(who.groups.is_empty());
    assert_eq!(
        who.claims.and_then(|c| c.get("scp")),
        Some(&json!("reports:read offline"))
    );
}

#[test]
fn the_issuer_is_chosen_and_compared_exactly() {
    let auth = auth();
    let raw = sign(&keys().rsa, &okta_claims());
    let honest = UnverifiedBearer::parse(&raw).expect("parse");
    assert_eq!(honest.claimed_issuer(), OKTA);
    assert_eq!(auth.issuer_of(&honest).expect("configured").issuer(), OKTA);
    assert_eq!(
        auth.issuer_of(&honest).expect("configured").name(),
        "okta-ci"
    );

    for iss in [
        json!(format!("{OKTA}/")),
        json!("https://evil.test"),
        json!([OKTA]),
    ] {
        let forged = with(okta_claims(), |c| {
            c.insert("iss".into(), iss.clone());
        });
        assert_eq!(
            okta_verify(&forged).err(),
            Some(BearerError::IssuerMismatch),
            "{iss}"
        );
    }
    let no_iss = with(okta_claims(), |c| {
        c.remove("iss");
    });
    assert_eq!(
        okta_verify(&no_iss).err(),
        Some(BearerError::IssuerMismatch)
    );
}

#[test]
fn the_audience_is_required_and_must_be_configured() {
    assert!(okta_verify(&okta_claims()).is_ok());
    let array = with(okta_claims(), |c| {
        c.insert("aud".into(), json!(["other", API]));
    });
    assert!(okta_verify(&array).is_ok(), "an array holding ours");

    let cases = [
        (Some(json!("api://other")), BearerError::AudienceMismatch),
        (
            Some(json!(["api://other", "x"])),
            BearerError::AudienceMismatch,
        ),
        (Some(json!([])), BearerError::AudienceMismatch),
        (
            Some(json!(format!("{API} "))),
            BearerError::AudienceMismatch,
        ),
        (None, BearerError::AudienceMismatch),
        (Some(json!(7)), BearerError::Malformed),
        (Some(json!([API, 7])), BearerError::Malformed),
    ];
    for (aud, error) in cases {
        let forged = with(okta_claims(), |c| match &aud {
            Some(aud) => {
                c.insert("aud".into(), aud.clone());
            }
            None => {
                c.remove("aud");
            }
        });
        assert_eq!(okta_verify(&forged).err(), Some(error), "{aud:?}");
    }
}

#[test]
fn expiry_is_required_and_checked_with_the_configurable_skew() {
    let now = now_unix();
    let within_skew = with(okta_claims(), |c| {
        c.insert("exp".into(), json!(now - 30));
    });
    assert!(okta_verify(&within_skew).is_ok());
    let no_iat = with(okta_claims(), |c| {
        c.remove("iat");
    });
    assert!(okta_verify(&no_iat).is_ok(), "iat is not required");

    let expired = with(okta_claims(), |c| {
        c.insert("exp".into(), json!(now - 120));
    });
    assert_eq!(okta_verify(&expired).err(), Some(BearerError::Expired));
    let no_exp = with(okta_claims(), |c| {
        c.remove("exp");
    });
    assert_eq!(okta_verify(&no_exp).err(), Some(BearerError::ExpiryMissing));
    let text_exp = with(okta_claims(), |c| {
        c.insert("exp".into(), json!("never"));
    });
    assert_eq!(
        okta_verify(&text_exp).err(),
        Some(BearerError::ExpiryMissing),
        "an `exp` that is no number is none"
    );

    // The skew is the configured one: none at all refuses what 60 s tolerated.
    let strict = MachineAuth::new(vec![okta_issuer()], None, Duration::ZERO).expect("config");
    let token = sign(&keys().rsa, &within_skew);
    assert_eq!(
        verify_at(&strict, &token, &published(), now).err(),
        Some(BearerError::Expired)
    );
    // And `now` is the caller's: the honest token expires for a later `now`.
    let honest = sign(&keys().rsa, &okta_claims());
    assert!(verify_at(&auth(), &honest, &published(), now).is_ok());
    assert_eq!(
        verify_at(&auth(), &honest, &published(), now + 400).err(),
        Some(BearerError::Expired)
    );
}

#[test]
fn not_before_is_honoured_with_the_skew() {
    let now = now_unix();
    let soon = with(okta_claims(), |c| {
        c.insert("nbf".into(), json!(now + 30));
    });
    assert!(okta_verify(&soon).is_ok());
    let later = with(okta_claims(), |c| {
        c.insert("nbf".into(), json!(now + 120));
    });
    assert_eq!(okta_verify(&later).err(), Some(BearerError::NotYetValid));
    let text = with(okta_claims(), |c| {
        c.insert("nbf".into(), json!("now"));
    });
    assert_eq!(okta_verify(&text).err(), Some(BearerError::Malformed));
}

#[test]
fn algorithms_come_from_the_issuers_allow_list() {
    let k = keys();
    let auth = auth();
    for key in [&k.rsa, &k.ec] {
        assert!(
            verify(&auth, &sign(key, &okta_claims()), &published()).is_ok(),
            "{:?} is a default",
            key.alg
        );
    }
    let eddsa = sign(&k.ed, &okta_claims());
    assert_eq!(
        verify(&auth, &eddsa, &published()).err(),
        Some(BearerError::AlgorithmRefused),
        "EdDSA only when listed"
    );
    let listed = auth_with(MachineIssuer {
        algorithms: vec![Algorithm::EdDSA],
        ..okta_issuer()
    });
    assert!(verify(&listed, &eddsa, &published()).is_ok());
    assert_eq!(
        verify(&listed, &sign(&k.rsa, &okta_claims()), &published()).err(),
        Some(BearerError::AlgorithmRefused),
        "RS256 no longer listed"
    );
}

#[test]
fn none_hmac_and_unsupported_algorithms_are_refused_before_any_key() {
    let k = keys();
    assert!(okta_verify(&okta_claims()).is_ok());
    let body = URL_SAFE_NO_PAD.encode(okta_claims().to_string());

    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "rsa-1"}).to_string())
    );
    // HMAC keyed with the RSA key's public JWK (the classic confusion).
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("rsa-1".into());
    let hs = jsonwebtoken::encode(
        &hs_header,
        &okta_claims(),
        &EncodingKey::from_secret(k.rsa.public.to_string().as_bytes()),
    )
    .expect("sign");
    let rs512 = sign_raw(
        &json!({"alg": "RS512", "kid": "rsa-1"}),
        &okta_claims(),
        &k.rsa,
        Algorithm::RS512,
    );
    let ps256 = sign_raw(
        &json!({"alg": "PS256", "kid": "rsa-1"}),
        &okta_claims(),
        &k.rsa,
        Algorithm::PS256,
    );
    for (what, token) in [
        ("none", none),
        ("HS256", hs),
        ("RS512", rs512),
        ("PS256", ps256),
    ] {
        assert_eq!(
            UnverifiedBearer::parse(&token).err(),
            Some(BearerError::AlgorithmRefused),
            "{what}"
        );
    }
}

#[test]
fn headers_carrying_keys_or_crit_are_refused_before_any_key() {
    let k = keys();
    let honest = json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"});
    let token = sign_raw(&honest, &okta_claims(), &k.rsa, Algorithm::RS256);
    assert!(verify(&auth(), &token, &published()).is_ok());

    let extras = [
        ("jwk", k.impostor.public.clone()),
        ("jku", json!("https://evil.test/jwks.json")),
        ("x5u", json!("https://evil.test/cert.pem")),
        ("x5c", json!(["MIIBIjANBgkq"])),
        ("crit", json!(["exp"])),
    ];
    for (member, value) in extras {
        let mut header = honest.clone();
        header[member] = value;
        // Signed by the impostor, whose key the header could point at: never looked at.
        let token = sign_raw(&header, &okta_claims(), &k.impostor, Algorithm::RS256);
        assert_eq!(
            UnverifiedBearer::parse(&token).err(),
            Some(BearerError::HeaderRefused),
            "{member}"
        );
    }
}

#[test]
fn a_key_of_another_type_than_the_algorithm_is_refused() {
    let k = keys();
    assert!(okta_verify(&okta_claims()).is_ok());
    // An ES256 signature under the RSA key's kid.
    let confused = sign_raw(
        &json!({"alg": "ES256", "kid": "rsa-1"}),
        &okta_claims(),
        &k.ec,
        Algorithm::ES256,
    );
    assert_eq!(
        verify(&auth(), &confused, &published()).err(),
        Some(BearerError::AlgorithmRefused)
    );
}

#[test]
fn an_unknown_kid_is_its_own_error_and_a_refetched_jwks_admits_the_token() {
    let k = keys();
    let token = sign(&k.rsa2, &okta_claims());
    // The issuer rotated to rsa-2; the cached JWKS only has rsa-1.
    let stale = jwks(&[&k.rsa, &k.ec]);
    assert_eq!(
        verify(&auth(), &token, &stale).err(),
        Some(BearerError::UnknownKey)
    );
    assert_eq!(
        verify(&auth(), &token, &KeySet::default()).err(),
        Some(BearerError::UnknownKey)
    );
    let refetched = jwks(&[&k.rsa, &k.rsa2]);
    assert!(verify(&auth(), &token, &refetched).is_ok());
}

#[test]
fn a_forged_or_altered_signature_is_refused() {
    let k = keys();
    let honest = sign(&k.rsa, &okta_claims());
    assert!(verify(&auth(), &honest, &published()).is_ok());

    let forged = sign(&k.impostor, &okta_claims());
    assert_eq!(
        verify(&auth(), &forged, &published()).err(),
        Some(BearerError::SignatureInvalid)
    );
    // The honest signature on elevated claims.
    let elevated = with(okta_claims(), |c| {
        c.insert("scp".into(), json!("reports:admin"));
    });
    let mut parts: Vec<String> = honest.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(elevated.to_string());
    assert_eq!(
        verify(&auth(), &parts.join("."), &published()).err(),
        Some(BearerError::SignatureInvalid)
    );
}

#[test]
fn a_browser_sign_in_id_token_is_refused_as_a_bearer() {
    let now = now_unix();
    let id_token = json!({"iss": OKTA, "aud": BROWSER_CLIENT, "sub": "00u1ada", "nonce": "n-0123456789",
                          "email": "ada@example.com", "iat": now, "exp": now + 300});
    let token = sign(&keys().rsa, &id_token);
    // The same issuer's access token passes…
    assert!(okta_verify(&okta_claims()).is_ok());
    // …its ID token does not: the browser client id is no machine audience.
    assert_eq!(
        verify(&auth(), &token, &published()).err(),
        Some(BearerError::AudienceMismatch)
    );
}

#[test]
fn a_browser_id_token_passes_when_the_issuer_lists_its_audience_on_purpose() {
    let now = now_unix();
    let id_token = json!({"iss": OKTA, "aud": BROWSER_CLIENT, "sub": "00u1ada", "nonce": "n-0123456789",
                          "iat": now, "exp": now + 300});
    let token = sign(&keys().rsa, &id_token);
    let on_purpose = auth_with(MachineIssuer {
        audiences: vec![API.into(), BROWSER_CLIENT.into()],
        ..okta_issuer()
    });
    let p = verify(&on_purpose, &token, &published()).expect("audience listed");
    assert_eq!(p.id, "okta-ci:00u1ada");
    assert_eq!(p.role, None, "no scp: no role");
}

#[test]
fn the_subject_is_required() {
    assert!(okta_verify(&okta_claims()).is_ok());
    for sub in [Some(json!("")), Some(json!("a\nb")), None] {
        let forged = with(okta_claims(), |c| match &sub {
            Some(sub) => {
                c.insert("sub".into(), sub.clone());
            }
            None => {
                c.remove("sub");
            }
        });
        assert_eq!(
            okta_verify(&forged).err(),
            Some(BearerError::SubjectMissing),
            "{sub:?}"
        );
    }
    let number = with(okta_claims(), |c| {
        c.insert("sub".into(), json!(42));
    });
    assert_eq!(okta_verify(&number).err(), Some(BearerError::Malformed));
}

#[test]
fn roles_map_from_strings_arrays_and_words_first_rule_wins() {
    let role = |claim: &str, value: Value| {
        let issuer = MachineIssuer {
            role_claim: Some(claim.into()),
            ..okta_issuer()
        };
        let claims = with(okta_claims(), |c| {
            c.remove("scp");
            if !value.is_null() {
                c.insert("scp".into(), value.clone());
            }
            c.insert("app".into(), json!({"roles": value.clone()}));
        });
        verify(
            &auth_with(issuer),
            &sign(&keys().rsa, &claims),
            &published(),
        )
        .expect("valid whatever the role")
        .role
    };
    assert_eq!(role("scp", json!("reports:read")), Some(Role::Member));
    assert_eq!(
        role("scp", json!("offline reports:read")),
        Some(Role::Member)
    );
    assert_eq!(
        role("scp", json!(["x", "reports:read"])),
        Some(Role::Member)
    );
    assert_eq!(
        role("app.roles", json!(["reports:read"])),
        Some(Role::Member)
    );
    // Rules in order: `reports:admin` is first, whatever the claim's order.
    assert_eq!(
        role("scp", json!("reports:read reports:admin")),
        Some(Role::Admin)
    );
    assert_eq!(
        role("scp", json!(["reports:read", "reports:admin"])),
        Some(Role::Admin)
    );
    // No rule matches, or nothing to match: a principal without a role, never a default.
    assert_eq!(role("scp", json!("reports:write")), None);
    assert_eq!(role("scp", json!("reports")), None);
    assert_eq!(role("scp", json!(["reports:read reports:admin"])), None);
    assert_eq!(role("scp", json!({"reports:read": true})), None);
    assert_eq!(role("scp", json!(1)), None);
    assert_eq!(role("scp", Value::Null), None);
    assert_eq!(role("other", json!("reports:admin")), None);
    let no_claim = auth_with(MachineIssuer {
        role_claim: None,
        ..okta_issuer()
    });
    let p = verify(&no_claim, &sign(&keys().rsa, &okta_claims()), &published()).expect("valid");
    assert_eq!(p.role, None);
}

#[test]
fn a_service_account_token_names_its_service_account_and_role() {
    let k = keys();
    let auth = auth();
    let claims = sa_claims("ci", "deployer");
    let p = verify(&auth, &sign(&k.rsa, &claims), &published()).expect("projected token");
    assert_eq!(p.id, "system:serviceaccount:ci:deployer");
    assert_eq!(p.subject, "system:serviceaccount:ci:deployer");
    assert_eq!(p.issuer_name, KUBERNETES_ISSUER_NAME);
    assert_eq!(p.service_account.as_deref(), Some("ci/deployer"));
    assert_eq!(p.role, Some(Role::Admin));
    let who = p.who();
    assert_eq!(who.kind, PrincipalType::Machine);
    assert_eq!(who.user, "system:serviceaccount:ci:deployer");
    assert_eq!(who.service_account, Some("ci/deployer"));
    assert_eq!(who.client, Some("kubernetes"));
    assert_eq!(who.provider, "kubernetes");

    let reader = verify(
        &auth,
        &sign(&k.ec, &sa_claims("ci", "reader")),
        &published(),
    );
    assert_eq!(reader.expect("reader").role, Some(Role::Member));
    // Not in `serviceAccounts`: valid, no role.
    let other = verify(
        &auth,
        &sign(&k.rsa, &sa_claims("web", "frontend")),
        &published(),
    )
    .expect("valid");
    assert_eq!(other.service_account.as_deref(), Some("web/frontend"));
    assert_eq!(other.role, None);
}

#[test]
fn a_service_account_token_must_agree_with_its_subject() {
    let k = keys();
    let sign_verify = |claims: &Value| verify(&auth(), &sign(&k.rsa, claims), &published());
    assert!(sign_verify(&sa_claims("ci", "deployer")).is_ok());

    let cases: Vec<(&str, Value)> = vec![
        (
            "sub names another account",
            with(sa_claims("ci", "reader"), |c| {
                c.insert("sub".into(), json!("system:serviceaccount:ci:deployer"));
            }),
        ),
        (
            "claim names another namespace",
            with(sa_claims("ci", "deployer"), |c| {
                c["kubernetes.io"]["namespace"] = json!("prod");
            }),
        ),
        (
            "no kubernetes.io claim",
            with(sa_claims("ci", "deployer"), |c| {
                c.remove("kubernetes.io");
            }),
        ),
        (
            "no sub",
            with(sa_claims("ci", "deployer"), |c| {
                c.remove("sub");
            }),
        ),
        (
            "a name with a colon",
            with(sa_claims("ci", "deployer"), |c| {
                c["kubernetes.io"]["serviceaccount"]["name"] = json!("deployer:x");
                c.insert("sub".into(), json!("system:serviceaccount:ci:deployer:x"));
            }),
        ),
        (
            "a namespace with a slash",
            with(sa_claims("ci", "deployer"), |c| {
                c["kubernetes.io"]["namespace"] = json!("ci/x");
                c.insert("sub".into(), json!("system:serviceaccount:ci/x:deployer"));
            }),
        ),
        (
            "a name that is not a string",
            with(sa_claims("ci", "deployer"), |c| {
                c["kubernetes.io"]["serviceaccount"] = json!("deployer");
            }),
        ),
    ];
    for (what, claims) in cases {
        assert_eq!(
            sign_verify(&claims).err(),
            Some(BearerError::NotAServiceAccount),
            "{what}"
        );
    }
}

#[test]
fn a_token_for_the_api_server_is_refused_always() {
    let k = keys();
    let sign_verify = |claims: &Value| verify(&auth(), &sign(&k.rsa, claims), &published());
    assert!(sign_verify(&sa_claims("ci", "deployer")).is_ok());

    for aud in [
        json!([K8S_ISSUER]),
        json!(K8S_ISSUER),
        json!([GATEHOUSE_AUD, K8S_ISSUER]),
        json!(["https://kubernetes.default.svc", GATEHOUSE_AUD]),
        json!([K8S]),
    ] {
        let claims = with(sa_claims("ci", "deployer"), |c| {
            c.insert("aud".into(), aud.clone());
        });
        assert_eq!(
            sign_verify(&claims).err(),
            Some(BearerError::ApiServerAudience),
            "{aud}"
        );
    }
    let elsewhere = with(sa_claims("ci", "deployer"), |c| {
        c.insert("aud".into(), json!(["vault"]));
    });
    assert_eq!(
        sign_verify(&elsewhere).err(),
        Some(BearerError::AudienceMismatch)
    );
    // A legacy Secret-based token never expires.
    let legacy = with(sa_claims("ci", "deployer"), |c| {
        c.remove("exp");
    });
    assert_eq!(sign_verify(&legacy).err(), Some(BearerError::ExpiryMissing));
}

#[test]
fn the_configuration_refuses_the_api_servers_audience_and_ambiguities() {
    let ok = MachineAuth::new(vec![okta_issuer()], Some(kubernetes()), DEFAULT_SKEW);
    assert!(ok.is_ok());

    let with_k8s = |f: &dyn Fn(&mut KubernetesIssuer)| {
        let mut k = kubernetes();
        f(&mut k);
        MachineAuth::new(vec![okta_issuer()], Some(k), DEFAULT_SKEW).err()
    };
    assert_eq!(
        with_k8s(&|k| k.audiences.push(K8S_ISSUER.into())),
        Some(MachineConfigError::ApiServerAudience(K8S_ISSUER.into()))
    );
    assert_eq!(
        with_k8s(&|k| k.audiences = vec!["https://kubernetes.default.svc".into()]),
        Some(MachineConfigError::ApiServerAudience(
            "https://kubernetes.default.svc".into()
        ))
    );
    assert_eq!(
        with_k8s(&|k| k.audiences.clear()),
        Some(MachineConfigError::NoAudience(K8S_ISSUER.into()))
    );
    assert_eq!(
        with_k8s(&|k| k.service_accounts.push(("deployer".into(), Role::Admin))),
        Some(MachineConfigError::BadServiceAccount("deployer".into()))
    );
    assert_eq!(
        with_k8s(&|k| k.issuer = OKTA.into()),
        Some(MachineConfigError::DuplicateIssuer(OKTA.into()))
    );

    let with_issuer = |f: &dyn Fn(&mut MachineIssuer)| {
        let mut m = okta_issuer();
        f(&mut m);
        MachineAuth::new(vec![m], None, DEFAULT_SKEW).err()
    };
    assert_eq!(
        with_issuer(&|m| m.name = "kubernetes".into()),
        Some(MachineConfigError::DuplicateName("kubernetes".into()))
    );
    assert_eq!(
        with_issuer(&|m| m.name = "Okta".into()),
        Some(MachineConfigError::BadName("Okta".into()))
    );
    assert_eq!(
        with_issuer(&|m| m.audiences.clear()),
        Some(MachineConfigError::NoAudience(OKTA.into()))
    );
    assert_eq!(
        with_issuer(&|m| m.algorithms.clear()),
        Some(MachineConfigError::BadAlgorithms(OKTA.into()))
    );
    assert_eq!(
        with_issuer(&|m| m.algorithms = vec![Algorithm::HS256]),
        Some(MachineConfigError::BadAlgorithms(OKTA.into()))
    );
    assert_eq!(
        with_issuer(&|m| m.issuer.clear()),
        Some(MachineConfigError::EmptyIssuer("okta-ci".into()))
    );
    let twice = MachineAuth::new(
        vec![okta_issuer(), MachineIssuer::new("other", OKTA, &["x"])],
        None,
        DEFAULT_SKEW,
    );
    assert_eq!(
        twice.err(),
        Some(MachineConfigError::DuplicateIssuer(OKTA.into()))
    );
}

#[test]
fn oversized_and_malformed_tokens_are_refused() {
    assert!(okta_verify(&okta_claims()).is_ok());
    let huge = with(okta_claims(), |c| {
        c.insert("pad".into(), json!("x".repeat(MAX_BEARER_BYTES)));
    });
    assert_eq!(okta_verify(&huge).err(), Some(BearerError::TooLarge));
    for raw in ["", "abc", "a.b", "a.b.c.d", "!!.e30.c2ln"] {
        assert_eq!(
            UnverifiedBearer::parse(raw).err(),
            Some(BearerError::Malformed),
            "{raw}"
        );
    }
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256"}).to_string());
    assert_eq!(
        UnverifiedBearer::parse(&format!("{header}.bm90IGpzb24.c2ln")).err(),
        Some(BearerError::Malformed)
    );
}

#[test]
fn reasons_are_stable_distinct_and_explained() {
    let reasons: std::collections::BTreeSet<&str> =
        BearerError::ALL.iter().map(|e| e.reason()).collect();
    assert_eq!(reasons.len(), BearerError::ALL.len());
    for e in BearerError::ALL {
        let r = e.reason();
        assert!(r.starts_with("bearer_"), "{r}");
        assert!(
            r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{r}"
        );
        assert!(!e.explanation().is_empty() && !e.explanation().contains('\n'));
    }
    for (e, r) in [
        (BearerError::Malformed, "bearer_malformed"),
        (BearerError::AlgorithmRefused, "bearer_algorithm_refused"),
        (BearerError::HeaderRefused, "bearer_header_refused"),
        (BearerError::UnknownKey, "bearer_unknown_key"),
        (BearerError::SignatureInvalid, "bearer_signature_invalid"),
        (BearerError::IssuerMismatch, "bearer_issuer_mismatch"),
        (BearerError::AudienceMismatch, "bearer_audience_mismatch"),
        (BearerError::Expired, "bearer_expired"),
        (BearerError::NotYetValid, "bearer_not_yet_valid"),
        (BearerError::ExpiryMissing, "bearer_expiry_missing"),
        (BearerError::ApiServerAudience, "bearer_api_server_audience"),
        (
            BearerError::NotAServiceAccount,
            "bearer_not_a_service_account",
        ),
        (BearerError::ReviewRefused, "bearer_review_refused"),
        (BearerError::Unverifiable, "bearer_unverifiable"),
    ] {
        assert_eq!(e.reason(), r);
    }
}

/// TokenReview mode: what the API server answered, held to the configuration.
fn review_of(
    token: &str,
    authenticated: bool,
    username: &str,
    audiences: &[&str],
) -> Result<MachinePrincipal, BearerError> {
    let token = UnverifiedBearer::parse(token)?;
    let audiences: Vec<String> = audiences.iter().map(|a| (*a).to_owned()).collect();
    kubernetes().reviewed(
        &token,
        &Review {
            authenticated,
            username,
            audiences: &audiences,
        },
        DEFAULT_SKEW,
        now_unix(),
    )
}

#[test]
fn a_reviewed_token_is_a_principal_only_on_an_authenticated_review_for_our_audience() {
    let k = keys();
    let deployer = "system:serviceaccount:ci:deployer";
    let token = sign(&k.rsa, &sa_claims("ci", "deployer"));
    // Honest: the API server authenticated it for the configured audience.
    let p = review_of(&token, true, deployer, &[GATEHOUSE_AUD]).expect("reviewed");
    assert_eq!(p.id, deployer);
    assert_eq!(p.service_account.as_deref(), Some("ci/deployer"));
    assert_eq!(p.role, Some(Role::Admin));
    assert_eq!(p.issuer_name, KUBERNETES_ISSUER_NAME);
    assert_eq!(p.claims["kubernetes.io"]["pod"]["name"], "runner-1");
    // Not authenticated (forged, expired, its ServiceAccount or pod deleted).
    assert_eq!(
        review_of(&token, false, deployer, &[GATEHOUSE_AUD]).err(),
        Some(BearerError::ReviewRefused)
    );
    // An API server that checks no audience answers none: not a review for us.
    assert_eq!(
        review_of(&token, true, deployer, &[]).err(),
        Some(BearerError::AudienceMismatch)
    );
    assert_eq!(
        review_of(&token, true, deployer, &["vault"]).err(),
        Some(BearerError::AudienceMismatch)
    );
    // Valid for the API server itself: refused always.
    for aud in [K8S, "https://kubernetes.default.svc", K8S_ISSUER] {
        assert_eq!(
            review_of(&token, true, deployer, &[GATEHOUSE_AUD, aud]).err(),
            Some(BearerError::ApiServerAudience),
            "{aud}"
        );
    }
    // The user the API server names must be the one the token's claims name.
    for user in ["system:serviceaccount:ci:reader", "alice", ""] {
        assert_eq!(
            review_of(&token, true, user, &[GATEHOUSE_AUD]).err(),
            Some(BearerError::NotAServiceAccount),
            "{user}"
        );
    }
    let no_claim = sign(
        &k.rsa,
        &with(sa_claims("ci", "deployer"), |c| {
            c.remove("kubernetes.io");
        }),
    );
    assert_eq!(
        review_of(&no_claim, true, deployer, &[GATEHOUSE_AUD]).err(),
        Some(BearerError::NotAServiceAccount)
    );
    // `exp` bounds how long a review is reused: required, and checked here too.
    let no_exp = sign(
        &k.rsa,
        &with(sa_claims("ci", "deployer"), |c| {
            c.remove("exp");
        }),
    );
    assert_eq!(
        review_of(&no_exp, true, deployer, &[GATEHOUSE_AUD]).err(),
        Some(BearerError::ExpiryMissing)
    );
    let expired = sign(
        &k.rsa,
        &with(sa_claims("ci", "deployer"), |c| {
            c.insert("exp".into(), json!(now_unix() - 3600));
        }),
    );
    assert_eq!(
        review_of(&expired, true, deployer, &[GATEHOUSE_AUD]).err(),
        Some(BearerError::Expired)
    );
    // A listed-nowhere ServiceAccount: valid, no role (the gate answers 403).
    let other = sign(&k.rsa, &sa_claims("web", "frontend"));
    let p = review_of(
        &other,
        true,
        "system:serviceaccount:web:frontend",
        &[GATEHOUSE_AUD],
    )
    .expect("reviewed");
    assert_eq!(p.role, None);
}
