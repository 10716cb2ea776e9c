//! IdP-initiated single logout: each refusal performed against a request signed the way IdPs
//! sign the redirect binding, beside the genuine request that is accepted.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::logout::*;
use super::verify::{NS_ASSERTION, NS_PROTOCOL};

const IDP: &str = "https://idp.example/metadata";
const SLO: &str = "https://app.example/api/auth/logout";
const NOW: i64 = 1_800_000_000;

struct Signer {
    key: sig::RsaKeyPair,
    cert_der: Vec<u8>,
    key_pem: String,
    cert_pem: String,
}

fn signer() -> Signer {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
    let cert = rcgen::CertificateParams::new(vec!["idp.example".to_owned()])
        .expect("params")
        .self_signed(&pair)
        .expect("cert");
    Signer {
        key: sig::RsaKeyPair::from_pkcs8(&pair.serialize_der()).expect("pkcs8"),
        cert_der: cert.der().to_vec(),
        key_pem: pair.serialize_pem(),
        cert_pem: cert.pem(),
    }
}

fn instant(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .expect("time")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn request_xml(issuer: &str, destination: Option<&str>, issued: i64, until: Option<i64>) -> String {
    let dest = destination
        .map(|d| format!(r#" Destination="{d}""#))
        .unwrap_or_default();
    let until = until
        .map(|u| format!(r#" NotOnOrAfter="{}""#, instant(u)))
        .unwrap_or_default();
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="_lr1" Version="2.0" IssueInstant="{}"{dest}{until}><saml:Issuer>{issuer}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">p-ada</saml:NameID><samlp:SessionIndex>_s1</samlp:SessionIndex><samlp:SessionIndex>_s2</samlp:SessionIndex></samlp:LogoutRequest>"#,
        instant(issued)
    )
}

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn deflated_b64(xml: &str) -> String {
    use std::io::Write as _;
    let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    d.write_all(xml.as_bytes()).expect("deflate");
    STANDARD.encode(d.finish().expect("deflate"))
}

/// The query an IdP sends: `SAMLRequest`, `RelayState`, `SigAlg`, and `Signature` over them.
fn signed_query(xml: &str, signer: &Signer, sig_alg: &str) -> String {
    let mut query = format!(
        "SAMLRequest={}&RelayState={}&SigAlg={}",
        encode(&deflated_b64(xml)),
        encode("back to /home"),
        encode(sig_alg)
    );
    let mut signature = vec![0; signer.key.public_modulus_len()];
    // Always RSA-SHA256 (aws-lc-rs signs nothing weaker): a request naming another algorithm
    // is refused before its signature is looked at, or fails it.
    signer
        .key
        .sign(
            &sig::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            query.as_bytes(),
            &mut signature,
        )
        .expect("sign");
    query.push_str("&Signature=");
    query.push_str(&encode(&STANDARD.encode(signature)));
    query
}

fn expected() -> LogoutExpected<'static> {
    LogoutExpected {
        idp_entity_id: IDP,
        slo_url: SLO,
        skew_secs: 60,
        now: NOW,
    }
}

/// Verifies and parses `query` as the sidecar does.
fn check(query: &str, certs: &[Vec<u8>]) -> Result<IdpLogoutRequest, LogoutError> {
    let q = RedirectQuery::parse(query)?.expect("a SAMLRequest");
    q.verify_signature(certs, false)?;
    parse_logout_request(&q.inflate()?, &expected())
}

fn honest() -> String {
    request_xml(IDP, Some(SLO), NOW - 5, Some(NOW + 120))
}

#[test]
fn a_signed_request_from_the_idp_is_read_with_every_session_index() {
    let idp = signer();
    let query = signed_query(&honest(), &idp, SIG_RSA_SHA256);
    let request = check(&query, std::slice::from_ref(&idp.cert_der)).expect("accepted");
    assert_eq!(request.id, "_lr1");
    assert_eq!(request.name_id, "p-ada");
    assert_eq!(request.session_indexes, ["_s1", "_s2"]);
    assert_eq!(request.not_on_or_after, Some(NOW + 120));
    assert_eq!(request.valid_until(), NOW + 120);
    // Without NotOnOrAfter, or with a later one, the ID is remembered 5 minutes past issue.
    let later = IdpLogoutRequest {
        not_on_or_after: Some(NOW + 3600),
        ..request.clone()
    };
    assert_eq!(later.valid_until(), NOW - 5 + MAX_REQUEST_AGE_SECS);
    let q = RedirectQuery::parse(&query).expect("ok").expect("some");
    assert_eq!(q.relay_state().as_deref(), Some("back to /home"));
    // Another certificate of the IdP's beside it (a rotation) changes nothing.
    let other = signer();
    check(&query, &[other.cert_der.clone(), idp.cert_der.clone()]).expect("accepted");
}

#[test]
fn unsigned_forged_and_altered_requests_are_refused() {
    let idp = signer();
    let certs = [idp.cert_der.clone()];
    let query = signed_query(&honest(), &idp, SIG_RSA_SHA256);
    // Unsigned: the signature and its algorithm stripped.
    let unsigned = query.split("&SigAlg=").next().expect("prefix");
    assert_eq!(check(unsigned, &certs), Err(LogoutError::Unsigned));
    // Forged: signed by a key that is not the IdP's.
    let forged = signed_query(&honest(), &signer(), SIG_RSA_SHA256);
    assert_eq!(check(&forged, &certs), Err(LogoutError::SignatureInvalid));
    // Altered after signing: another user's NameID under the IdP's signature.
    let signature = query.split("&Signature=").nth(1).expect("signature");
    let other_user = signed_query(
        &honest().replace("p-ada", "p-bob"),
        &signer(),
        SIG_RSA_SHA256,
    );
    let altered = format!(
        "{}&Signature={signature}",
        other_user.split("&Signature=").next().expect("prefix")
    );
    assert_eq!(check(&altered, &certs), Err(LogoutError::SignatureInvalid));
    // The relay state is covered too.
    let relayed = query.replace("RelayState=back", "RelayState=evil");
    assert_eq!(check(&relayed, &certs), Err(LogoutError::SignatureInvalid));
    // RSA-SHA1 only where allowed; unknown algorithms never.
    let sha1 = signed_query(
        &honest(),
        &idp,
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    );
    assert_eq!(check(&sha1, &certs), Err(LogoutError::AlgorithmRefused));
    let q = RedirectQuery::parse(&sha1).expect("ok").expect("some");
    assert_eq!(
        q.verify_signature(&certs, true),
        Err(LogoutError::SignatureInvalid),
        "with allowSha1 the algorithm is taken, and the signature checked with it"
    );
    let hmac = signed_query(
        &honest(),
        &idp,
        "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
    );
    assert_eq!(check(&hmac, &certs), Err(LogoutError::AlgorithmRefused));
    // A parameter sent twice: which one was signed is ambiguous.
    assert_eq!(
        RedirectQuery::parse(&format!("{query}&SAMLRequest=x")),
        Err(LogoutError::Malformed)
    );
    // No SAMLRequest: not a logout request at all (the plain logout path).
    assert_eq!(RedirectQuery::parse("rd=/x"), Ok(None));
}

#[test]
fn other_idps_other_destinations_and_stale_requests_are_refused() {
    let idp = signer();
    let certs = [idp.cert_der.clone()];
    let refused = |xml: String| check(&signed_query(&xml, &idp, SIG_RSA_SHA256), &certs);
    assert_eq!(
        refused(request_xml("https://evil.example", Some(SLO), NOW, None)),
        Err(LogoutError::IssuerMismatch)
    );
    assert_eq!(
        refused(request_xml(
            IDP,
            Some("https://other-app.example/api/auth/logout"),
            NOW,
            None
        )),
        Err(LogoutError::DestinationMismatch)
    );
    assert_eq!(
        refused(request_xml(IDP, None, NOW, None)),
        Err(LogoutError::DestinationMismatch)
    );
    // Past NotOnOrAfter (beyond the skew), or issued over 5 minutes (and the skew) ago.
    assert_eq!(
        refused(request_xml(IDP, Some(SLO), NOW - 200, Some(NOW - 61))),
        Err(LogoutError::Expired)
    );
    assert_eq!(
        refused(request_xml(
            IDP,
            Some(SLO),
            NOW - MAX_REQUEST_AGE_SECS - 61,
            None
        )),
        Err(LogoutError::Expired)
    );
    assert_eq!(
        refused(request_xml(IDP, Some(SLO), NOW + 61, None)),
        Err(LogoutError::NotYetValid)
    );
    // Within the skew, both ways: accepted.
    refused(request_xml(IDP, Some(SLO), NOW + 59, Some(NOW - 59))).expect("within the skew");
    // A DTD, even signed, is refused before parsing.
    let doctype = format!("<!DOCTYPE x [<!ENTITY e \"p-bob\">]>{}", honest());
    assert_eq!(refused(doctype), Err(LogoutError::Doctype));
    // An encrypted NameID is not read.
    let encrypted = honest().replace(
        r#"<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">p-ada</saml:NameID>"#,
        "<saml:EncryptedID/>",
    );
    assert_eq!(refused(encrypted), Err(LogoutError::NameIdMissing));
}

#[test]
fn an_inflation_bomb_is_cut_off() {
    let idp = signer();
    let padding = " ".repeat(MAX_REQUEST_BYTES);
    let bomb = honest().replace("<saml:Issuer>", &format!("{padding}<saml:Issuer>"));
    let query = signed_query(&bomb, &idp, SIG_RSA_SHA256);
    assert_eq!(
        check(&query, std::slice::from_ref(&idp.cert_der)),
        Err(LogoutError::NotLogoutRequest)
    );
}

#[test]
fn the_sp_signs_its_logout_response_with_its_own_key() {
    let sp = signer();
    let key = SpSigningKey::from_pem(&sp.key_pem, &sp.cert_pem).expect("key");
    assert_eq!(key.certs(), std::slice::from_ref(&sp.cert_der));
    let destination = url::Url::parse("https://idp.example/slo?tenant=a").expect("url");
    let response = LogoutResponse {
        id: "_resp1",
        in_response_to: "_lr1",
        destination: &destination,
        issuer: "https://app.example/api/auth/saml/metadata",
        status: STATUS_SUCCESS,
        issued_at: NOW,
    };
    let url = response.redirect_url(Some("back to /home"), Some(&key));
    let query = url.query().expect("query");
    assert!(query.starts_with("tenant=a&SAMLResponse="), "{query}");
    let (signed, signature) = query
        .strip_prefix("tenant=a&")
        .and_then(|q| q.split_once("&Signature="))
        .expect("signed query");
    assert!(
        signed.contains("&RelayState=back+to+%2Fhome&SigAlg="),
        "{signed}"
    );
    let signature = STANDARD
        .decode(
            url::form_urlencoded::parse(format!("s={signature}").as_bytes())
                .next()
                .expect("s")
                .1
                .as_bytes(),
        )
        .expect("base64");
    let public = x509_parser::parse_x509_certificate(&sp.cert_der)
        .expect("cert")
        .1;
    UnparsedPublicKey::new(
        &sig::RSA_PKCS1_2048_8192_SHA256,
        public
            .tbs_certificate
            .subject_pki
            .subject_public_key
            .data
            .as_ref(),
    )
    .verify(signed.as_bytes(), &signature)
    .expect("the SP's signature verifies with its published certificate");
    let xml = response.xml();
    assert!(
        xml.contains(r#"InResponseTo="_lr1""#) && xml.contains(STATUS_SUCCESS),
        "{xml}"
    );
    // Unsigned without a key.
    let plain = response.redirect_url(None, None);
    assert!(!plain.query().unwrap_or_default().contains("Signature"));
}

#[test]
fn an_sp_key_is_refused_with_a_reason_when_it_cannot_sign() {
    let sp = signer();
    let other = signer();
    let mismatch = SpSigningKey::from_pem(&sp.key_pem, &other.cert_pem).expect_err("mismatch");
    assert!(mismatch.contains("not the signing key's"), "{mismatch}");
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ec");
    let ec_err = SpSigningKey::from_pem(&ec.serialize_pem(), &sp.cert_pem).expect_err("ec");
    assert!(ec_err.contains("not an RSA key"), "{ec_err}");
    let garbage = SpSigningKey::from_pem("not pem", &sp.cert_pem).expect_err("garbage");
    assert!(
        garbage.contains("one PEM block") || garbage.contains("not PEM"),
        "{garbage}"
    );
    // A second certificate (the rotation's other key) is published too.
    let both = format!("{}{}", sp.cert_pem, other.cert_pem);
    let key = SpSigningKey::from_pem(&sp.key_pem, &both).expect("two certificates");
    assert_eq!(key.certs().len(), 2);
}
