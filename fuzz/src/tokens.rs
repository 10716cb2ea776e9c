//! Tokens from the identity provider: ID tokens, back-channel logout tokens, the JWKS document
//! their keys come from, and the role and attribute mapping of verified claims.
//!
//! A token target reads its input twice: as a whole compact JWS (header, payload and signature
//! as sent — a fuzzer cannot forge the signature, so past the header only the genuine seeds
//! verify), and as the claims of a token signed here with a trusted key (so every claim rule
//! after the signature is reached).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_auth::claims::{
    Role, RoleDenial, RolePolicy, RoleRule, attributes, lookup, map_role,
};
use gatehouse_auth::jwk::{KeySet, describe};
use gatehouse_auth::logout_token::{
    BACKCHANNEL_LOGOUT_EVENT, LogoutExpected, LogoutToken, MAX_AGE, MAX_LOGOUT_TOKEN_BYTES,
    UnverifiedLogoutToken, check_logout_claims,
};
use gatehouse_auth::token::{
    Expected, JoseHeader, MAX_ID_TOKEN_BYTES, Nonce, TokenError, UnverifiedIdToken,
    VerifiedIdToken, parse_header,
};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::fixtures::{CLIENT_ID, ISSUER, NONCE, NOW, SIGNER_KID, SKEW, key_set, sign_token};

/// Header of the ID tokens signed here.
const ID_HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT","kid":"fuzz-ed25519"}"#;
/// Header of the logout tokens signed here.
const LOGOUT_HEADER: &str = r#"{"alg":"EdDSA","typ":"logout+jwt","kid":"fuzz-ed25519"}"#;

fn skew() -> i64 {
    i64::try_from(SKEW.as_secs()).unwrap_or(i64::MAX)
}

fn id_expected(nonce: Nonce<'static>) -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        nonce,
        skew: SKEW,
    }
}

fn logout_expected() -> LogoutExpected<'static> {
    LogoutExpected {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        skew: SKEW,
    }
}

/// The JSON object of a compact JWS's `n`th part (0: header, 1: payload), read without trust.
fn part(raw: &str, n: usize) -> Option<Map<String, Value>> {
    let text = raw.split('.').nth(n)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).ok()?).ok()
}

/// An accepted header names one of the three asymmetric algorithms, exactly as written, and no
/// `crit`: `none` and HMAC never get a key.
fn check_header(raw: &str, header: &JoseHeader) {
    let json = part(raw, 0).expect("an accepted header is a JSON object");
    let alg = json.get("alg").and_then(Value::as_str);
    let expected = match header.alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        other => panic!("header accepted with algorithm {other:?}"),
    };
    assert_eq!(
        alg,
        Some(expected),
        "accepted alg differs from the header's"
    );
    assert!(!json.contains_key("crit"), "crit accepted");
    assert_eq!(
        header.kid.as_deref(),
        json.get("kid").and_then(Value::as_str)
    );
}

fn audiences(claims: &Map<String, Value>) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A verified ID token says what it must: our issuer, our client among the audiences (and as
/// `azp` when there are others), a subject, `iat` not in the future.
fn check_verified(token: &VerifiedIdToken) {
    let c = &token.claims;
    assert_eq!(c.get("iss").and_then(Value::as_str), Some(ISSUER));
    let aud = audiences(c);
    assert!(aud.contains(&CLIENT_ID), "accepted without our audience");
    if let Some(azp) = c.get("azp") {
        assert_eq!(azp.as_str(), Some(CLIENT_ID), "accepted with another azp");
    }
    if aud.iter().any(|a| *a != CLIENT_ID) {
        assert!(
            c.contains_key("azp"),
            "extra audiences accepted without azp"
        );
    }
    let sub = c.get("sub").and_then(Value::as_str).unwrap_or_default();
    assert!(!sub.is_empty() && sub.len() <= 1024 && sub == token.subject);
    let iat = c.get("iat").and_then(Value::as_f64).expect("numeric iat");
    assert!(iat <= (NOW + skew()) as f64, "iat in the future accepted");
    assert!(
        c.get("exp").and_then(Value::as_f64).is_some(),
        "no numeric exp"
    );
}

fn check_id_token(raw: &str) {
    let header = parse_header(raw);
    if let Ok(h) = &header {
        check_header(raw, h);
    }
    let token = match UnverifiedIdToken::parse(raw) {
        Ok(token) => token,
        Err(TokenError::TooLarge) => {
            assert!(raw.len() > MAX_ID_TOKEN_BYTES);
            return;
        }
        Err(e) => {
            assert_eq!(header.err(), Some(e));
            return;
        }
    };
    assert!(raw.len() <= MAX_ID_TOKEN_BYTES);
    assert_eq!(Ok(token.header()), header.as_ref());
    let h = token.header();
    let keys = key_set().matching(h.kid.as_deref(), h.alg);
    let sent = token.verify(&keys, &id_expected(Nonce::Sent(NONCE)), NOW);
    let repeated = token.verify(&keys, &id_expected(Nonce::Repeated(NONCE)), NOW);
    if let Ok(v) = &sent {
        check_verified(v);
        assert_eq!(v.claims.get("nonce").and_then(Value::as_str), Some(NONCE));
        assert!(
            repeated.is_ok(),
            "a sign-in's ID token refused after a refresh"
        );
        // An ID token is never a logout token.
        if let Ok(logout) = UnverifiedLogoutToken::parse(raw) {
            let keys = key_set().matching(logout.header().kid.as_deref(), logout.header().alg);
            assert!(
                logout.verify(&keys, &logout_expected(), NOW).is_err(),
                "an ID token verified as a logout token"
            );
        }
    }
    if let Ok(v) = &repeated {
        check_verified(v);
        if let Some(nonce) = v.claims.get("nonce") {
            assert_eq!(nonce.as_str(), Some(NONCE), "a changed nonce accepted");
        }
    }
}

/// ID token: a header is accepted only with RS256, ES256 or EdDSA as written and no `crit`;
/// tokens over the size bound are refused before anything else; a verified token has our issuer,
/// audience (and `azp` when there are several), the nonce sent, a subject, `iat` not in the
/// future; a token accepted at sign-in is accepted after a refresh, and is never a logout token.
pub fn id_token(data: &[u8]) {
    check_id_token(&String::from_utf8_lossy(data));
    check_id_token(&sign_token(ID_HEADER, data));
}

/// The logout-token rules, on claims that passed.
fn check_logout(claims: &Map<String, Value>, token: &LogoutToken) {
    assert!(
        audiences(claims).contains(&CLIENT_ID),
        "accepted without our audience"
    );
    let iat = claims
        .get("iat")
        .and_then(Value::as_f64)
        .expect("numeric iat");
    assert!(iat.is_finite());
    assert_eq!(token.issued_at, iat as i64);
    let max_age = i64::try_from(MAX_AGE.as_secs()).unwrap_or(i64::MAX);
    assert!(
        token.issued_at <= NOW + skew() && token.issued_at >= NOW - max_age - skew(),
        "iat {} outside the window",
        token.issued_at
    );
    assert_eq!(
        claims.get("jti").and_then(Value::as_str),
        Some(token.jti.as_str())
    );
    assert!(!token.jti.is_empty() && token.jti.len() <= 256);
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT));
    assert!(matches!(event, Some(Value::Object(_))), "no logout event");
    assert!(
        !claims.contains_key("nonce"),
        "a token with a nonce accepted"
    );
    assert!(token.subject.is_some() || token.sid.is_some());
    assert_eq!(
        claims.get("sub").and_then(Value::as_str),
        token.subject.as_deref()
    );
    assert_eq!(
        claims.get("sid").and_then(Value::as_str),
        token.sid.as_deref()
    );
}

fn check_logout_token(raw: &str) {
    let token = match UnverifiedLogoutToken::parse(raw) {
        Ok(token) => token,
        Err(_) => return,
    };
    assert!(raw.len() <= MAX_LOGOUT_TOKEN_BYTES);
    check_header(raw, token.header());
    if let Some(typ) = &token.header().typ {
        let typ = typ.to_ascii_lowercase();
        assert!(
            typ == "logout+jwt" || typ == "application/logout+jwt",
            "typ {typ:?} accepted"
        );
    }
    let h = token.header();
    let keys = key_set().matching(h.kid.as_deref(), h.alg);
    if let Ok(verified) = token.verify(&keys, &logout_expected(), NOW) {
        let claims = part(raw, 1).expect("verified claims are a JSON object");
        assert_eq!(claims.get("iss").and_then(Value::as_str), Some(ISSUER));
        check_logout(&claims, &verified);
        // A logout token is never a sign-in's ID token (it has no nonce).
        if let Ok(id) = UnverifiedIdToken::parse(raw) {
            assert!(
                id.verify(&keys, &id_expected(Nonce::Sent(NONCE)), NOW)
                    .is_err(),
                "a logout token verified as an ID token"
            );
        }
    }
}

/// Logout token: the header rules of [`id_token`] and `typ` `logout+jwt` when sent; a verified
/// token has our issuer and audience, `iat` within the skew of now and no older than `MAX_AGE`,
/// a `jti`, the back-channel logout event, no `nonce`, and `sub` or `sid`; it never verifies as a
/// sign-in's ID token. The claim rules are also run on the input directly when it is a JSON object.
pub fn logout_token(data: &[u8]) {
    check_logout_token(&String::from_utf8_lossy(data));
    check_logout_token(&sign_token(LOGOUT_HEADER, data));
    if let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(data)
        && let Ok(token) = check_logout_claims(&claims, &logout_expected(), NOW)
    {
        check_logout(&claims, &token);
    }
}

/// JWKS document: at most 64 keys kept; keys are found only for their own algorithm (never an
/// HMAC or `none`), and for a token naming a `kid` only with that `kid`; every key is found for
/// exactly one algorithm.
pub fn jwks(data: &[u8]) {
    let Ok(set) = KeySet::parse(data) else {
        return;
    };
    assert!(set.len() <= 64);
    let _ = describe(&set);
    let mut found = 0;
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let all = set.matching(None, alg);
        assert!(all.iter().all(|k| k.alg == alg));
        found += all.len();
        // A token naming a `kid` gets only the keys of that `kid` (one without gets them all).
        for kid in all.iter().filter_map(|k| k.kid.as_deref()) {
            let by_kid = set.matching(Some(kid), alg);
            assert!(!by_kid.is_empty());
            assert!(
                by_kid
                    .iter()
                    .all(|k| k.kid.as_deref() == Some(kid) && k.alg == alg),
                "a key of another kid offered for {kid:?}"
            );
        }
    }
    assert_eq!(
        found,
        set.len(),
        "a key usable for no or several algorithms"
    );
    for alg in [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::ES384,
    ] {
        assert!(set.matching(None, alg).is_empty(), "a key for {alg:?}");
    }
    // A document can add our signer's kid; a token of ours then verifies only if the key is ours.
    let _ = set.matching(Some(SIGNER_KID), Algorithm::EdDSA);
}

/// The values of a role claim as the rules read them, or `None` for the wrong type.
fn values(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// Role mapping and attributes of verified claims: Okta grants exactly the role its `userType`
/// names; Entra grants admin only with `admin` among the roles; a rule-based policy grants a role
/// only through a rule whose value the user has, or its default; a claim of the wrong type is a
/// denial even with a default; attributes are only the mapped ones, each at most 1 KiB.
pub fn claims(data: &[u8]) {
    let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return;
    };
    let present = |name: &str| lookup(&claims, name).filter(|v| !v.is_null());

    if let Ok(role) = map_role(&RolePolicy::Okta, &claims) {
        let user_type = present("userType").or_else(|| present("user_type"));
        assert_eq!(
            user_type.and_then(Value::as_str).and_then(Role::parse),
            Some(role)
        );
    }
    match map_role(&RolePolicy::Entra, &claims) {
        Ok(Role::Admin) => assert!(
            present("roles")
                .and_then(values)
                .expect("roles")
                .contains(&"admin")
        ),
        Ok(Role::Member) => assert!(
            present("roles")
                .and_then(values)
                .expect("roles")
                .contains(&"member")
        ),
        Err(_) => {}
    }
    let rules = vec![
        RoleRule {
            value: "admins".into(),
            role: Role::Admin,
        },
        RoleRule {
            value: "staff".into(),
            role: Role::Member,
        },
    ];
    for (claim, default) in [("groups", None), ("realm_access.roles", Some(Role::Member))] {
        let policy = RolePolicy::Claim {
            claim: Some(claim.to_owned()),
            rules: rules.clone(),
            default,
        };
        let result = map_role(&policy, &claims);
        match present(claim) {
            None => assert_eq!(result, default.ok_or(RoleDenial::ClaimMissing)),
            Some(value) => match values(value) {
                None => assert_eq!(result, Err(RoleDenial::ClaimWrongType)),
                Some(have) => {
                    let by_rule = rules.iter().find(|r| have.contains(&r.value.as_str()));
                    let want = by_rule.map(|r| r.role).or(default);
                    assert_eq!(result, want.ok_or(RoleDenial::NotMapped));
                }
            },
        }
    }

    let mappings: Vec<(String, String)> = [
        ("department", "department"),
        ("address.country", "country"),
        ("groups", "groups"),
        ("https://acme.example/cost_center", "costCenter"),
    ]
    .iter()
    .map(|(c, a)| ((*c).to_owned(), (*a).to_owned()))
    .collect();
    for (attribute, value) in attributes(&mappings, &claims) {
        let (claim, _) = mappings
            .iter()
            .find(|(_, a)| *a == attribute)
            .expect("only mapped attributes");
        assert!(
            present(claim).is_some(),
            "attribute {attribute} without its claim"
        );
        assert!(value.len() <= gatehouse_auth::claims::MAX_ATTRIBUTE_BYTES);
    }
}
