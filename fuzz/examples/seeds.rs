//! Writes the generated part of the seed corpus: genuine sealed cookies, signed tokens, signed
//! SAML responses, and realistic configurations, all made with the fixtures the targets check
//! against (`src/fixtures.rs`), so the fuzzer starts from inputs that get past the first checks.
//!
//! `cargo run -p gatehouse-fuzz --example seeds` — writes only the files named here (under
//! `fuzz/corpus/<target>/`, prefixed `gen-`); hand-made seeds and kept crashes are left alone.
//! Sealed cookies differ at every run (fresh nonces); `tests/corpus.rs` checks that the
//! checked-in genuine seeds still open, verify and load.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_auth::claims::Role;
use gatehouse_auth::cookie::{Attempt, Purpose, RefreshGrant, Session};
use gatehouse_auth::logout_token::BACKCHANNEL_LOGOUT_EVENT;
use gatehouse_fuzz::fixtures::{
    CLIENT_ID, COOKIE_KEY, ISSUER, NONCE, NOW, REFRESH_SID, SAML_ACS, SAML_ASSERTION_ID,
    SAML_CERT_PEM, SAML_IDP, SAML_KEY_PEM, SAML_LOGOUT_ID, SAML_NAME_ID, SAML_RESPONSE_ID,
    SAML_SLO, SAML_SP, SIGNER_JWKS, STRANGER_KEY, binding, pem_der, rings, sign_token,
};
use samael::crypto::{Crypto, CryptoProvider as _};
use serde_json::json;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn write(target: &str, name: &str, data: impl AsRef<[u8]>) {
    let dir = corpus().join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(format!("gen-{name}")), data).expect("seed written");
}

fn session() -> Session {
    Session {
        sid: "c2lkLTAxMjM0NTY3ODlhYmNkZWY".into(),
        user: "okta-0123456789abcdef".into(),
        subject: "00u1abcd".into(),
        provider: "okta".into(),
        email: Some("ada@example.com".into()),
        name: Some("Ada Lovelace".into()),
        username: Some("ada@example.com".into()),
        role: Role::Admin,
        issued_at: NOW - 60,
        expires_at: NOW + 3600,
        user_uid: None,
        idp_sid: None,
        validated_at: None,
        groups: Vec::new(),
        claims: None,
        facts: None,
        groups_unknown: false,
    }
}

fn cookies() {
    let r = rings();
    let b = binding();
    let s = session();
    write("session_cookie", "genuine", s.seal(&r.ring, &b));
    let full = Session {
        role: Role::Member,
        user_uid: Some("5f0c1e2a-7b3d-4c1e-9a8b-0123456789ab".into()),
        idp_sid: Some("idp-session-42".into()),
        validated_at: Some(NOW - 30),
        ..session()
    };
    write("session_cookie", "genuine-full", full.seal(&r.ring, &b));
    write(
        "session_cookie",
        "expired",
        Session {
            expires_at: NOW - 1,
            ..session()
        }
        .seal(&r.ring, &b),
    );
    write(
        "session_cookie",
        "plaintext.json",
        serde_json::to_vec(&full).expect("json"),
    );
    write(
        "session_cookie",
        "attempt-value",
        Attempt::new("okta", "/", NOW).seal(&r.ring, &b),
    );

    let attempt = Attempt {
        state: "c3RhdGUtMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmM".into(),
        nonce: NONCE.into(),
        verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        provider: "okta".into(),
        rd: "/dashboard?tab=2".into(),
        created_at: NOW - 30,
        offline: true,
        scope_without_offline: false,
    };
    write("attempt_cookie", "genuine", attempt.seal(&r.ring, &b));
    write(
        "attempt_cookie",
        "plaintext.json",
        serde_json::to_vec(&attempt).expect("json"),
    );
    write(
        "attempt_cookie",
        "session-value",
        session().seal(&r.ring, &b),
    );

    let grant = RefreshGrant {
        sid: REFRESH_SID.into(),
        token: "rt.8xLOxBtZp8".into(),
        nonce: NONCE.into(),
    };
    write(
        "refresh_cookie",
        "genuine",
        grant.seal(&r.ring, &b).expect("fits"),
    );
    write(
        "refresh_cookie",
        "plaintext.json",
        serde_json::to_vec(&grant).expect("json"),
    );
    let other = RefreshGrant {
        sid: "sid-2".into(),
        ..grant
    };
    write(
        "refresh_cookie",
        "other-session",
        other.seal(&r.ring, &b).expect("fits"),
    );
    write(
        "refresh_cookie",
        "logout-hint-value",
        r.ring
            .seal(Purpose::LogoutHint, &b, b"eyJhbGciOiJFZERTQSJ9.e30.c2ln"),
    );

    for (name, text) in [
        ("one", COOKIE_KEY.to_owned()),
        ("rotated", format!("{STRANGER_KEY},{COOKIE_KEY}")),
        ("unpadded", COOKIE_KEY.trim_end_matches('=').to_owned()),
        ("spaced", format!(" {COOKIE_KEY} , {STRANGER_KEY} ")),
        ("duplicate", format!("{COOKIE_KEY},{COOKIE_KEY}")),
    ] {
        write("key_ring", name, text);
    }

    let genuine = s.seal(&r.ring, &b);
    write(
        "cookie_header",
        "browser",
        format!(
            "theme=dark; __Host-gatehouse-session={genuine}; _ga=GA1.2.3.4\n__Host-gatehouse-attempt-c3RhdGUtMDEyMzQ1=\"v\""
        ),
    );
}

fn tokens() {
    let id_claims = json!({
        "iss": ISSUER, "aud": CLIENT_ID, "sub": "00u1abcd", "nonce": NONCE,
        // `exp` far ahead: jsonwebtoken checks it against the wall clock, not the targets' NOW.
        "iat": NOW - 10, "exp": 4_000_000_000i64, "auth_time": NOW - 20,
        "email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace",
        "sid": "idp-session-42", "userType": "admin",
    });
    let header = r#"{"alg":"EdDSA","typ":"JWT","kid":"fuzz-ed25519"}"#;
    let payload = serde_json::to_vec(&id_claims).expect("json");
    write("id_token", "genuine", sign_token(header, &payload));
    write("id_token", "claims.json", &payload);
    let multi = json!({
        "iss": ISSUER, "aud": [CLIENT_ID, "api"], "azp": CLIENT_ID, "sub": "00u1abcd",
        "nonce": NONCE, "iat": NOW, "nbf": 1_700_000_000i64, "exp": 4_000_000_000i64,
    });
    write(
        "id_token",
        "genuine-azp",
        sign_token(header, &serde_json::to_vec(&multi).expect("json")),
    );
    write(
        "id_token",
        "claims-azp.json",
        serde_json::to_vec(&multi).expect("json"),
    );
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let body = b64(&id_claims.to_string());
    write(
        "id_token",
        "alg-none",
        format!("{}.{body}.", b64(r#"{"alg":"none"}"#)),
    );
    write(
        "id_token",
        "alg-hs256",
        format!(
            "{}.{body}.c2lnbmF0dXJl",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#)
        ),
    );
    write(
        "id_token",
        "rs256-unknown-key",
        format!(
            "{}.{body}.c2lnbmF0dXJl",
            b64(r#"{"alg":"RS256","kid":"other","typ":"JWT"}"#)
        ),
    );

    let logout_claims = json!({
        "iss": ISSUER, "aud": CLIENT_ID, "sub": "00u1abcd", "sid": "idp-session-42",
        "iat": NOW - 5, "exp": 4_000_000_000i64, "jti": "bWJq",
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    let logout_header = r#"{"alg":"EdDSA","typ":"logout+jwt","kid":"fuzz-ed25519"}"#;
    let payload = serde_json::to_vec(&logout_claims).expect("json");
    write(
        "logout_token",
        "genuine",
        sign_token(logout_header, &payload),
    );
    write("logout_token", "claims.json", &payload);
    let with_nonce = json!({
        "iss": ISSUER, "aud": [CLIENT_ID], "sid": "idp-session-42", "nonce": NONCE,
        "iat": NOW, "jti": "bWJr", "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    write(
        "logout_token",
        "claims-nonce.json",
        serde_json::to_vec(&with_nonce).expect("json"),
    );

    write("jwks", "signer.json", SIGNER_JWKS);
    write(
        "jwks",
        "mixed.json",
        json!({"keys": [
            {"kty":"EC","crv":"P-256","use":"sig","kid":"ec-1","alg":"ES256",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"OKP","crv":"Ed25519","kid":"ed-1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"RSA","use":"enc","kid":"enc-1","n":"sXch","e":"AQAB"},
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
            {"kty":"EC","crv":"P-384","kid":"ec-384","x":"AA","y":"AA"}
        ]})
        .to_string(),
    );

    for (name, claims) in [
        (
            "okta",
            json!({"sub": "u", "userType": "admin", "department": "R&D"}),
        ),
        (
            "entra",
            json!({"sub": "u", "roles": ["member", "reader"], "groups": "staff"}),
        ),
        (
            "generic",
            json!({"sub": "u", "groups": ["staff", "admins"],
                   "realm_access": {"roles": ["admins"]}, "address": {"country": "NZ"},
                   "https://acme.example/cost_center": 4711}),
        ),
    ] {
        write("claims", &format!("{name}.json"), claims.to_string());
    }
}

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

fn signature(id: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"##
    )
}

/// The genuine assertion (2027-01-15T08:00:00Z is NOW), with a signature template when `signed`.
fn assertion(signed: bool) -> String {
    let sig = if signed {
        signature(SAML_ASSERTION_ID)
    } else {
        String::new()
    };
    format!(
        r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{SAML_ASSERTION_ID}" Version="2.0" IssueInstant="2027-01-15T08:00:00Z"><saml:Issuer>{SAML_IDP}</saml:Issuer>{sig}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{SAML_NAME_ID}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="_request-1" NotOnOrAfter="2027-01-15T08:05:00Z" Recipient="{SAML_ACS}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="2027-01-15T07:59:00Z" NotOnOrAfter="2027-01-15T08:05:00Z"><saml:AudienceRestriction><saml:Audience>{SAML_SP}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="2027-01-15T08:00:00Z" SessionIndex="idx-1"/><saml:AttributeStatement><saml:Attribute Name="memberOf"><saml:AttributeValue>cn=hr-admins,ou=groups,dc=example,dc=com</saml:AttributeValue><saml:AttributeValue>staff</saml:AttributeValue></saml:Attribute><saml:Attribute Name="mail"><saml:AttributeValue>admin@example.com</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#
    )
}

fn response(inner: &str, signed: bool) -> String {
    let sig = if signed {
        signature(SAML_RESPONSE_ID)
    } else {
        String::new()
    };
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{SAML_RESPONSE_ID}" Version="2.0" IssueInstant="2027-01-15T08:00:00Z" Destination="{SAML_ACS}" InResponseTo="_request-1"><saml:Issuer>{SAML_IDP}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value="{STATUS_SUCCESS}"/></samlp:Status>{inner}</samlp:Response>"#
    )
}

fn saml() {
    let key = pem_der(SAML_KEY_PEM);
    let sign = |xml: &str| Crypto::sign_xml(xml, &key).expect("signed");
    let assertion_signed = sign(&response(&assertion(true), false));
    let response_signed = sign(&response(&assertion(false), true));
    // Both: the assertion first, then the response around it.
    let both = sign(&assertion_signed.replacen(
        &format!("<saml:Issuer>{SAML_IDP}</saml:Issuer>"),
        &format!(
            "<saml:Issuer>{SAML_IDP}</saml:Issuer>{}",
            signature(SAML_RESPONSE_ID)
        ),
        1,
    ));
    write("saml_response", "assertion-signed.xml", &assertion_signed);
    write("saml_response", "response-signed.xml", &response_signed);
    write("saml_response", "both-signed.xml", &both);
    write(
        "saml_response",
        "assertion-signed.b64",
        STANDARD.encode(&assertion_signed),
    );
    write(
        "saml_response",
        "unsigned.xml",
        response(&assertion(false), false),
    );
    // Signature wrapping: the signed assertion moved into an Extensions element, a forged
    // unsigned one in its place.
    let forged = assertion(false).replace(SAML_NAME_ID, "p-root-000000");
    let signed_assertion = sign(&assertion(true));
    let signed_assertion = signed_assertion
        .strip_prefix("<?xml version=\"1.0\"?>")
        .unwrap_or(&signed_assertion)
        .trim();
    let wrapped = response(
        &format!("<samlp:Extensions>{signed_assertion}</samlp:Extensions>{forged}"),
        false,
    );
    write("saml_response", "wrapped.xml", wrapped);
}

/// The LogoutRequest the fixture IdP sends (IssueInstant NOW, valid 5 minutes).
fn logout_request() -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{SAML_LOGOUT_ID}" Version="2.0" IssueInstant="2027-01-15T08:00:00Z" NotOnOrAfter="2027-01-15T08:05:00Z" Destination="{SAML_SLO}"><saml:Issuer>{SAML_IDP}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{SAML_NAME_ID}</saml:NameID><samlp:SessionIndex>idx-1</samlp:SessionIndex></samlp:LogoutRequest>"#
    )
}

/// `SAMLRequest=…&RelayState=…&SigAlg=…&Signature=…` signed with the fixture IdP's key.
fn signed_logout_query(xml: &str) -> String {
    use std::io::Write as _;
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater.write_all(xml.as_bytes()).expect("deflate");
    let deflated = deflater.finish().expect("deflate");
    let mut query = format!(
        "SAMLRequest={}&RelayState={}&SigAlg={}",
        encode(&STANDARD.encode(deflated)),
        encode("/after"),
        encode(gatehouse_auth::saml::logout::SIG_RSA_SHA256)
    );
    let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&pem_der(SAML_KEY_PEM)).expect("key");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        query.as_bytes(),
        &mut signature,
    )
    .expect("signed");
    query.push_str("&Signature=");
    query.push_str(&encode(&STANDARD.encode(signature)));
    query
}

fn saml_logout() {
    let xml = logout_request();
    write(
        "saml_logout_request",
        "genuine-query",
        signed_logout_query(&xml),
    );
    write("saml_logout_request", "request.xml", &xml);
    write(
        "saml_logout_request",
        "without-session-index.xml",
        xml.replace("<samlp:SessionIndex>idx-1</samlp:SessionIndex>", ""),
    );
    // Another user's request under the genuine signature.
    let genuine = signed_logout_query(&xml);
    let signature = genuine.split("&Signature=").nth(1).expect("signature");
    let other = signed_logout_query(&xml.replace(SAML_NAME_ID, "p-root-000000"));
    let prefix = other.split("&Signature=").next().expect("prefix");
    write(
        "saml_logout_request",
        "altered-query",
        format!("{prefix}&Signature={signature}"),
    );
}

fn config() {
    let cert = STANDARD.encode(pem_der(SAML_CERT_PEM));
    let metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{SAML_IDP}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/slo"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    );
    let common = format!(
        "GATEHOUSE_PUBLIC_URL=https://app.example.com\nGATEHOUSE_COOKIE_SECRET={COOKIE_KEY}\n"
    );
    let seeds = [
        (
            "valid-okta",
            format!(
                "{common}OKTA_CLIENT_ID=client\nOKTA_CLIENT_SECRET=s3cr3t-client-value-0123\nOKTA_ISSUER=https://acme.okta.com\nOKTA_ORG_ID=acme\n"
            ),
        ),
        (
            "valid-entra-oidc",
            format!(
                "{common}ENTRA_CLIENT_ID=e-client\nENTRA_CLIENT_SECRET=e-secret-value-0123456\nENTRA_TENANT_ID=contoso.onmicrosoft.com\nENTRA_ORG_ID=acme\n\
                 OIDC_PROVIDER_ID=auth0\nOIDC_PROVIDER_NAME=Auth0\nOIDC_CLIENT_ID=a-client\nOIDC_CLIENT_SECRET=a-secret-value-0123456\nOIDC_ISSUER=https://acme.us.auth0.com/\nOIDC_ORG_ID=acme\n\
                 OIDC_ROLE_CLAIM=groups\nOIDC_ROLE_MAP=[{{\"value\":\"admins\",\"role\":\"admin\"}}]\nOIDC_DEFAULT_ROLE=member\nAUTH_EXCLUSIVE_PROVIDER=auth0\n"
            ),
        ),
        (
            "valid-saml",
            format!(
                "{common}SAML_IDP_METADATA={metadata}\nSAML_ROLE_ATTRIBUTE=memberOf\nSAML_ROLE_MAP=[{{\"value\":\"cn=hr-admins,ou=groups,dc=example,dc=com\",\"role\":\"admin\"}},{{\"value\":\"staff\",\"role\":\"member\"}}]\nSAML_DEFAULT_ROLE=member\nSAML_ORG_ID=acme\n"
            ),
        ),
        (
            "valid-everything",
            format!(
                "{common}OKTA_CLIENT_ID=client\nOKTA_CLIENT_SECRET=s3cr3t-client-value-0123\nOKTA_ISSUER=https://acme.okta.com\nOKTA_ORG_ID=acme\n\
                 GATEHOUSE_LISTEN=0.0.0.0:4180\nGATEHOUSE_ADMIN_LISTEN=0.0.0.0:9090\nGATEHOUSE_UPSTREAM=http://127.0.0.1:8080\n\
                 GATEHOUSE_SESSION_TTL=12h\nGATEHOUSE_CONFIG=portal\nGATEHOUSE_NAMESPACE=team-a\nGATEHOUSE_CONFIG_UID=5f0c1e2a-7b3d-4c1e-9a8b-0123456789ab\n\
                 GATEHOUSE_PROVISIONING=kubernetes\nGATEHOUSE_PROVISIONING_MODE=jit\nGATEHOUSE_ATTRIBUTE_MAPPINGS=department=department,address.country=country\n\
                 GATEHOUSE_AUTH_MODE=optional\nGATEHOUSE_APP_LOGIN_PATH=/users/sign_in\nGATEHOUSE_SKIP_AUTH=/healthz,/public/,/static/app.css\nGATEHOUSE_PROVISION_HOOK=/hooks/user\n\
                 GATEHOUSE_REVOCATION_STALENESS=5m\nGATEHOUSE_REVALIDATE_INTERVAL=15m\nGATEHOUSE_REVALIDATE_GRACE=1h\nGATEHOUSE_CLOCK_SKEW=60s\n\
                 GATEHOUSE_MAX_REQUEST_BODY=64Mi\nGATEHOUSE_REQUEST_BODY_TIMEOUT=30s\nGATEHOUSE_SEND_TIMEOUT=30s\nGATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT=5m\n\
                 GATEHOUSE_ENV_DIR=/etc/gatehouse/env\nGATEHOUSE_LOG_FORMAT=json\n"
            ),
        ),
        (
            "bad-secret",
            format!(
                "GATEHOUSE_PUBLIC_URL=https://app.example.com/path?x#y\nGATEHOUSE_COOKIE_SECRET=c2hvcnQ=,{COOKIE_KEY}\nOKTA_CLIENT_ID=client\nOKTA_CLIENT_SECRET=s3cr3t-client-value-0123\n"
            ),
        ),
    ];
    for (name, text) in seeds {
        write("config", name, text);
    }
}

fn main() {
    cookies();
    tokens();
    saml();
    saml_logout();
    config();
    eprintln!("seeds written under {}", corpus().display());
}
