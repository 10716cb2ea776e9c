//! Each verification rule of [`super::verify`], performed against responses signed here with a
//! real key through libxmlsec1 (samael's signing), beside a genuine response that is accepted.

use samael::crypto::{Crypto, CryptoProvider as _};

use super::verify::{
    Algorithms, Expected, NAMEID_TRANSIENT, SamlError, VerifiedAssertion, verify_response,
    verify_xml, verify_xml_with,
};

const IDP: &str = "https://idp.example/metadata";
const SP: &str = "https://app.example/api/auth/saml/metadata";
const ACS: &str = "https://app.example/api/auth/saml/acs";
const REQUEST: &str = "_request-1";
const NOW: i64 = 1_800_000_000;

struct Key {
    private_der: Vec<u8>,
    cert_der: Vec<u8>,
}

fn key() -> Key {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
    let cert = rcgen::CertificateParams::new(vec!["idp.example".to_owned()])
        .expect("params")
        .self_signed(&pair)
        .expect("certificate");
    Key {
        private_der: pair.serialize_der(),
        cert_der: cert.der().to_vec(),
    }
}

fn keys() -> &'static (Key, Key) {
    static KEYS: std::sync::OnceLock<(Key, Key)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| (key(), key()))
}

fn signature(id: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"##
    )
}

/// What a response says; every field genuine unless a test changes it.
#[derive(Clone)]
struct Spec {
    response_id: &'static str,
    assertion_id: &'static str,
    issuer: &'static str,
    destination: Option<&'static str>,
    response_irt: Option<&'static str>,
    confirmation_irt: Option<&'static str>,
    recipient: &'static str,
    audience: Option<&'static str>,
    status: &'static str,
    not_before: i64,
    not_on_or_after: i64,
    name_id: &'static str,
    name_id_format: &'static str,
    roles: Vec<&'static str>,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            response_id: "_resp-1",
            assertion_id: "_assert-1",
            issuer: IDP,
            destination: Some(ACS),
            response_irt: Some(REQUEST),
            confirmation_irt: Some(REQUEST),
            recipient: ACS,
            audience: Some(SP),
            status: "urn:oasis:names:tc:SAML:2.0:status:Success",
            not_before: NOW - 60,
            not_on_or_after: NOW + 300,
            name_id: "p-admin-7c1e4b",
            name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            roles: vec!["cn=hr-admins,ou=groups,dc=example,dc=com", "staff"],
        }
    }
}

fn time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .expect("time")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The assertion, with a signature template when `signed`.
fn assertion(s: &Spec, signed: bool) -> String {
    let audience = s
        .audience
        .map(|a| {
            format!("<saml:AudienceRestriction><saml:Audience>{a}</saml:Audience></saml:AudienceRestriction>")
        })
        .unwrap_or_default();
    let irt = s
        .confirmation_irt
        .map(|i| format!(r#" InResponseTo="{i}""#))
        .unwrap_or_default();
    let roles: String = s
        .roles
        .iter()
        .map(|r| format!("<saml:AttributeValue>{r}</saml:AttributeValue>"))
        .collect();
    format!(
        r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{issuer}</saml:Issuer>{sig}<saml:Subject><saml:NameID Format="{format}">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData{irt} NotOnOrAfter="{end}" Recipient="{recipient}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{start}" NotOnOrAfter="{end}">{audience}</saml:Conditions><saml:AuthnStatement AuthnInstant="{now}" SessionIndex="idx-1"/><saml:AttributeStatement><saml:Attribute Name="memberOf">{roles}</saml:Attribute><saml:Attribute Name="mail"><saml:AttributeValue>admin@example.com</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
        id = s.assertion_id,
        now = time(NOW),
        issuer = s.issuer,
        sig = if signed {
            signature(s.assertion_id)
        } else {
            String::new()
        },
        format = s.name_id_format,
        name_id = s.name_id,
        end = time(s.not_on_or_after),
        start = time(s.not_before),
        recipient = s.recipient,
    )
}

fn response(s: &Spec, inner: &str, signed: bool) -> String {
    let destination = s
        .destination
        .map(|d| format!(r#" Destination="{d}""#))
        .unwrap_or_default();
    let irt = s
        .response_irt
        .map(|i| format!(r#" InResponseTo="{i}""#))
        .unwrap_or_default();
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}"{destination}{irt}><saml:Issuer>{issuer}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{inner}</samlp:Response>"#,
        id = s.response_id,
        now = time(NOW),
        issuer = s.issuer,
        sig = if signed {
            signature(s.response_id)
        } else {
            String::new()
        },
        status = s.status,
    )
}

fn sign(xml: &str, key: &Key) -> String {
    Crypto::sign_xml(xml, &key.private_der).expect("sign")
}

/// A response whose assertion is signed by `key` (the usual IdP setting).
fn signed_by(s: &Spec, key: &Key) -> String {
    sign(&response(s, &assertion(s, true), false), key)
}

fn genuine(s: &Spec) -> String {
    signed_by(s, &keys().0)
}

fn check(xml: &str) -> Result<super::verify::VerifiedAssertion, SamlError> {
    check_at(xml, NOW)
}

fn check_at(xml: &str, now: i64) -> Result<super::verify::VerifiedAssertion, SamlError> {
    let certs = vec![keys().1.cert_der.clone(), keys().0.cert_der.clone()];
    verify_xml(
        xml,
        &Expected {
            idp_entity_id: IDP,
            certs: &certs,
            sp_entity_id: SP,
            acs_url: ACS,
            request_ids: &["_other", REQUEST],
            skew_secs: 60,
            now,
        },
    )
}

/// [`check`] with the given algorithm policy.
fn check_with(xml: &str, algorithms: Algorithms) -> Result<VerifiedAssertion, SamlError> {
    let certs = vec![keys().1.cert_der.clone(), keys().0.cert_der.clone()];
    verify_xml_with(
        xml,
        &Expected {
            idp_entity_id: IDP,
            certs: &certs,
            sp_entity_id: SP,
            acs_url: ACS,
            request_ids: &["_other", REQUEST],
            skew_secs: 60,
            now: NOW,
        },
        algorithms,
    )
}

#[test]
fn a_genuine_response_is_read_from_its_signed_assertion() {
    let v = check(&genuine(&Spec::default())).expect("genuine response accepted");
    assert_eq!(v.name_id, "p-admin-7c1e4b");
    assert_eq!(v.in_response_to, REQUEST);
    assert_eq!(v.response_id, "_resp-1");
    assert_eq!(v.assertion_id, "_assert-1");
    assert_eq!(v.session_index.as_deref(), Some("idx-1"));
    assert_eq!(
        v.attributes["memberOf"],
        serde_json::json!(["cn=hr-admins,ou=groups,dc=example,dc=com", "staff"])
    );
    assert_eq!(v.attributes["mail"], serde_json::json!("admin@example.com"));
    assert_eq!(v.valid_until, NOW + 300);
}

#[test]
fn signed_response_or_both_signed_are_accepted_and_the_second_key_works() {
    let s = Spec::default();
    let response_only = sign(&response(&s, &assertion(&s, false), true), &keys().0);
    assert!(check(&response_only).is_ok());
    // Both: the assertion first, then the response around it.
    let inner_signed = sign(&response(&s, &assertion(&s, true), false), &keys().0);
    let both = sign(
        &inner_signed.replacen(
            &format!("<saml:Issuer>{IDP}</saml:Issuer>"),
            &format!(
                "<saml:Issuer>{IDP}</saml:Issuer>{}",
                signature(s.response_id)
            ),
            1,
        ),
        &keys().0,
    );
    assert!(both.matches("SignatureValue>").count() >= 4, "{both}");
    assert!(check(&both).is_ok());
    // Rotation: either metadata certificate verifies.
    assert!(check(&signed_by(&s, &keys().1)).is_ok());
}

#[test]
fn unsigned_or_wrongly_signed_responses_are_refused() {
    let s = Spec::default();
    let unsigned = response(&s, &assertion(&s, false), false);
    assert_eq!(check(&unsigned).err(), Some(SamlError::SignatureInvalid));
    // The signature element stripped from a genuine response.
    let stripped = {
        let g = genuine(&s);
        let start = g.find("<ds:Signature").expect("signature");
        let end = g.find("</ds:Signature>").expect("end") + "</ds:Signature>".len();
        format!("{}{}", &g[..start], &g[end..])
    };
    assert_eq!(check(&stripped).err(), Some(SamlError::SignatureInvalid));
    // Signed by a key the metadata does not name.
    let stranger = key();
    assert_eq!(
        check(&signed_by(&s, &stranger)).err(),
        Some(SamlError::SignatureInvalid)
    );
    // Tampered after signing.
    let tampered = genuine(&s).replace("p-admin-7c1e4b", "p-admin-7c1e4c");
    assert_eq!(check(&tampered).err(), Some(SamlError::SignatureInvalid));
    // A genuine signed response whose assertion is swapped for an unsigned one.
    let swapped = sign(&response(&s, &assertion(&s, false), true), &keys().0)
        .replace("staff", "cn=hr-admins,ou=groups,dc=example,dc=com");
    assert_eq!(check(&swapped).err(), Some(SamlError::SignatureInvalid));
    // With no key at all, nothing is accepted (some crates then skip verification).
    let none: Vec<Vec<u8>> = Vec::new();
    let no_keys = verify_xml(
        &genuine(&s),
        &Expected {
            idp_entity_id: IDP,
            certs: &none,
            sp_entity_id: SP,
            acs_url: ACS,
            request_ids: &[REQUEST],
            skew_secs: 60,
            now: NOW,
        },
    );
    assert_eq!(no_keys.err(), Some(SamlError::SignatureInvalid));
}

#[test]
fn signature_wrapping_reads_only_the_signed_assertion() {
    let s = Spec::default();
    let g = genuine(&s);
    let evil = assertion(
        &Spec {
            assertion_id: "_evil",
            name_id: "p-victim",
            ..Spec::default()
        },
        false,
    );
    // An unsigned assertion before the signed one (XSW3-like) or after it (XSW4-like).
    let start = g.find("<saml:Assertion").expect("assertion");
    let before = format!("{}{evil}{}", &g[..start], &g[start..]);
    assert_eq!(check(&before).err(), Some(SamlError::AssertionCount));
    let end = g.find("</samlp:Response>").expect("end");
    let after = format!("{}{evil}{}", &g[..end], &g[end..]);
    assert_eq!(check(&after).err(), Some(SamlError::AssertionCount));
    // The signed assertion hidden inside the evil one (XSW5-like).
    let signed_assertion = &g[start..end];
    let hidden = format!(
        "{}{}{}",
        &g[..start],
        evil.replace(
            "</saml:Subject>",
            &format!("</saml:Subject>{signed_assertion}")
        ),
        &g[end..]
    );
    assert!(check(&hidden).is_err());
}

#[test]
fn a_comment_cannot_shorten_the_signed_name_id() {
    let s = Spec {
        name_id: "p-admin-7c1e4b.evil",
        ..Spec::default()
    };
    let injected = genuine(&s).replace("p-admin-7c1e4b.evil", "p-admin-7c1e4b<!---->.evil");
    assert!(injected.contains("<!---->"));
    // Whichever way it goes, the attack fails: samael's reduction may refuse the document, or it
    // passes and the NameID is all of the signed text, not the part before the comment.
    match check(&injected) {
        Ok(v) => assert_eq!(v.name_id, "p-admin-7c1e4b.evil"),
        Err(e) => assert_eq!(e, SamlError::SignatureInvalid),
    }
    // The reading rule itself: all the text of the element.
    let doc = roxmltree::Document::parse("<n>p-admin<!---->.evil</n>").expect("xml");
    assert_eq!(super::verify::text(&doc.root_element()), "p-admin.evil");
}

#[test]
fn audience_recipient_and_destination_must_be_ours() {
    let wrong = "https://other.example/api/auth/saml/acs";
    let cases = [
        (
            Spec {
                audience: Some("https://other.example/metadata"),
                ..Spec::default()
            },
            SamlError::AudienceMismatch,
        ),
        (
            Spec {
                audience: None,
                ..Spec::default()
            },
            SamlError::AudienceMismatch,
        ),
        (
            Spec {
                recipient: wrong,
                ..Spec::default()
            },
            SamlError::RecipientMismatch,
        ),
        (
            Spec {
                destination: Some(wrong),
                ..Spec::default()
            },
            SamlError::DestinationMismatch,
        ),
        (
            Spec {
                issuer: "https://evil.example/metadata",
                ..Spec::default()
            },
            SamlError::IssuerMismatch,
        ),
        (
            Spec {
                status: "urn:oasis:names:tc:SAML:2.0:status:Requester",
                ..Spec::default()
            },
            SamlError::Status,
        ),
    ];
    for (spec, expected) in cases {
        assert_eq!(check(&genuine(&spec)).err(), Some(expected), "{expected:?}");
    }
    // A signed Response must name its destination.
    let s = Spec {
        destination: None,
        ..Spec::default()
    };
    let signed_response = sign(&response(&s, &assertion(&s, false), true), &keys().0);
    assert_eq!(
        check(&signed_response).err(),
        Some(SamlError::DestinationMismatch)
    );
}

#[test]
fn time_windows_hold_with_the_clock_skew() {
    let g = genuine(&Spec::default());
    assert!(check_at(&g, NOW + 300 + 59).is_ok(), "within the skew");
    assert_eq!(check_at(&g, NOW + 300 + 60).err(), Some(SamlError::Expired));
    assert!(check_at(&g, NOW - 60 - 59).is_ok(), "within the skew");
    assert_eq!(
        check_at(&g, NOW - 60 - 61).err(),
        Some(SamlError::NotYetValid)
    );
}

#[test]
fn only_responses_to_this_browsers_requests_are_accepted() {
    let other = Spec {
        response_irt: Some("_someone-else"),
        confirmation_irt: Some("_someone-else"),
        ..Spec::default()
    };
    assert_eq!(
        check(&genuine(&other)).err(),
        Some(SamlError::UnknownRequest)
    );
    let mixed = Spec {
        response_irt: Some("_other"),
        ..Spec::default()
    };
    assert_eq!(
        check(&genuine(&mixed)).err(),
        Some(SamlError::UnknownRequest)
    );
    let unsolicited = Spec {
        response_irt: None,
        confirmation_irt: None,
        ..Spec::default()
    };
    assert_eq!(
        check(&genuine(&unsolicited)).err(),
        Some(SamlError::Unsolicited)
    );
}

#[test]
fn hostile_encodings_are_refused_before_parsing() {
    use base64::Engine as _;
    let b64 = |x: &str| base64::engine::general_purpose::STANDARD.encode(x);
    let expected = |certs: &'static [Vec<u8>]| Expected {
        idp_entity_id: IDP,
        certs,
        sp_entity_id: SP,
        acs_url: ACS,
        request_ids: &[REQUEST],
        skew_secs: 60,
        now: NOW,
    };
    let g = genuine(&Spec::default());
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>{g}"
    );
    assert_eq!(
        verify_response(&b64(&laughs), &expected(&[])).err(),
        Some(SamlError::Doctype)
    );
    assert_eq!(
        verify_response("not base64!", &expected(&[])).err(),
        Some(SamlError::Malformed)
    );
    assert_eq!(
        verify_response(&b64("<samlp:Response"), &expected(&[])).err(),
        Some(SamlError::Malformed)
    );
    let huge = "A".repeat(5 * 1024 * 1024);
    assert_eq!(
        verify_response(&huge, &expected(&[])).err(),
        Some(SamlError::TooLarge)
    );
    // Line-wrapped base64 (as some IdPs send it) is fine.
    let wrapped: String = b64(&g)
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
        .collect();
    let certs = vec![keys().0.cert_der.clone()];
    let ok = verify_response(
        &wrapped,
        &Expected {
            certs: &certs,
            ..expected(&[])
        },
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn a_transient_name_id_is_refused() {
    let s = Spec {
        name_id_format: NAMEID_TRANSIENT,
        ..Spec::default()
    };
    let e = check(&genuine(&s)).err();
    assert_eq!(e, Some(SamlError::NameIdTransient));
    assert!(SamlError::NameIdTransient.is_denial());
}

#[test]
fn two_signed_assertions_are_refused() {
    let s = Spec::default();
    let second = Spec {
        assertion_id: "_assert-2",
        ..Spec::default()
    };
    let one = sign(&response(&s, &assertion(&s, true), false), &keys().0);
    let other = sign(
        &response(&second, &assertion(&second, true), false),
        &keys().0,
    );
    let a2 = &other
        [other.find("<saml:Assertion").expect("a")..other.find("</samlp:Response>").expect("e")];
    let end = one.find("</samlp:Response>").expect("end");
    let both = format!("{}{a2}{}", &one[..end], &one[end..]);
    assert_eq!(check(&both).err(), Some(SamlError::AssertionCount));
}

/// Hardening defect 2: an attacker holding a victim's IdP-initiated response (only its Assertion
/// signed, no `InResponseTo` inside it: tile launches end up in logs and HAR files) writes the ID
/// of a request they started themselves into the unsigned Response root. No signature covers
/// that attribute, so it must not name the request.
#[test]
fn an_unsigned_response_root_cannot_name_the_request() {
    let captured = Spec {
        confirmation_irt: None,
        response_irt: Some(REQUEST),
        ..Spec::default()
    };
    assert_eq!(
        check(&genuine(&captured)).err(),
        Some(SamlError::Unsolicited),
        "the unsigned root's InResponseTo was taken as the request"
    );
    // The same attribute on a Response the IdP signed is the IdP's word: accepted.
    let signed_root = sign(
        &response(&captured, &assertion(&captured, false), true),
        &keys().0,
    );
    assert_eq!(
        check(&signed_root).map(|v| v.in_response_to),
        Ok(REQUEST.to_owned())
    );
}

/// The class of defect 2: what no signature covers may refuse a response, never admit it nor
/// change what it says. Each base response has only its Assertion signed; its Response root is
/// rewritten in every way an attacker could (request, destination, status, issuer, ID), and no
/// rewrite turns a refusal into an acceptance or an acceptance into another identity or request.
#[test]
fn unsigned_response_content_can_refuse_but_never_admit() {
    let wrong = "https://other.example/api/auth/saml/acs";
    let bases = [
        Spec::default(),
        Spec {
            confirmation_irt: None,
            ..Spec::default()
        },
        Spec {
            confirmation_irt: Some("_someone-else"),
            ..Spec::default()
        },
        Spec {
            audience: Some("https://other.example/metadata"),
            ..Spec::default()
        },
        Spec {
            recipient: wrong,
            ..Spec::default()
        },
        Spec {
            not_before: NOW - 600,
            not_on_or_after: NOW - 300,
            ..Spec::default()
        },
    ];
    let mut checked = 0;
    for base in &bases {
        let signed_assertion = assertion(base, true);
        let before = check(&sign(&response(base, &signed_assertion, false), &keys().0));
        for response_irt in [None, Some(REQUEST), Some("_other"), Some("_someone-else")] {
            for destination in [None, Some(ACS), Some(wrong)] {
                for status in [
                    "urn:oasis:names:tc:SAML:2.0:status:Success",
                    "urn:oasis:names:tc:SAML:2.0:status:Requester",
                ] {
                    for (issuer, response_id) in [(IDP, "_resp-1"), ("https://evil.example", "_x")]
                    {
                        let root = Spec {
                            response_irt,
                            destination,
                            status,
                            issuer,
                            response_id,
                            ..base.clone()
                        };
                        let xml = sign(&response(&root, &signed_assertion, false), &keys().0);
                        let after = check(&xml);
                        checked += 1;
                        match (&before, after) {
                            (_, Err(_)) => {}
                            (Ok(genuine), Ok(edited)) => assert_eq!(
                                VerifiedAssertion {
                                    response_id: genuine.response_id.clone(),
                                    ..edited
                                },
                                *genuine,
                                "an unsigned edit changed what was read: {xml}"
                            ),
                            (Err(refused), Ok(edited)) => panic!(
                                "refused ({refused:?}) until the unsigned root was edited, then \
                                 accepted for {} answering {}: {xml}",
                                edited.name_id, edited.in_response_to
                            ),
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, bases.len() * 48);
}

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const LEGACY: Algorithms = Algorithms { allow_sha1: true };

/// A response whose signature templates use `method` and `digest`, signed by the IdP's key:
/// the assertion's, then (`response_too`) the Response's around it.
fn signed_with(method: &str, digest: &str, response_too: bool) -> String {
    let s = Spec::default();
    let algorithms =
        |template: String| template.replace(RSA_SHA256, method).replace(SHA256, digest);
    let mut xml = sign(
        &algorithms(response(&s, &assertion(&s, true), false)),
        &keys().0,
    );
    if response_too {
        let issuer = format!("<saml:Issuer>{IDP}</saml:Issuer>");
        let template = algorithms(signature(s.response_id));
        xml = sign(
            &xml.replacen(&issuer, &format!("{issuer}{template}"), 1),
            &keys().0,
        );
    }
    let empty = [
        "<ds:SignatureValue/>",
        "<ds:SignatureValue></ds:SignatureValue>",
    ];
    assert!(!empty.iter().any(|e| xml.contains(e)), "unsigned: {xml}");
    assert_eq!(
        xml.matches("<ds:SignatureValue>").count(),
        1 + usize::from(response_too)
    );
    xml
}

/// Hardening defect 9: a response signed by the IdP's own key with RSA-SHA1 over SHA-1 digests
/// (deprecated for XML signatures; collisions are practical) is refused, naming the algorithm,
/// unless the config opts in for a legacy IdP.
#[test]
fn sha1_signatures_are_refused_unless_the_config_allows_them() {
    let sha1 = signed_with(RSA_SHA1, SHA1, false);
    let refused = check(&sha1).expect_err("an RSA-SHA1 signature was accepted");
    assert_eq!(refused, SamlError::AlgorithmRefused(RSA_SHA1));
    assert_eq!(refused.reason(), "saml_algorithm_refused");
    assert_eq!(refused.status(), http::StatusCode::BAD_REQUEST);
    assert!(!refused.is_denial());
    assert!(refused.to_string().contains(RSA_SHA1), "{refused}");
    // Each half alone is refused too, naming what it is.
    assert_eq!(
        check(&signed_with(RSA_SHA256, SHA1, false)).err(),
        Some(SamlError::AlgorithmRefused(SHA1))
    );
    assert_eq!(
        check(&signed_with(RSA_SHA1, SHA256, false)).err(),
        Some(SamlError::AlgorithmRefused(RSA_SHA1))
    );
    // A signed Response with SHA-1 as well.
    assert_eq!(
        check(&signed_with(RSA_SHA1, SHA1, true)).err(),
        Some(SamlError::AlgorithmRefused(RSA_SHA1))
    );

    // The opt-in: the same responses are read as any other.
    let v = check_with(&sha1, LEGACY).expect("SHA-1 allowed");
    assert_eq!(v.name_id, "p-admin-7c1e4b");
    assert_eq!(v.in_response_to, REQUEST);
    assert!(check_with(&signed_with(RSA_SHA1, SHA1, true), LEGACY).is_ok());
    assert!(check_with(&signed_with(RSA_SHA256, SHA1, false), LEGACY).is_ok());
    // The opt-in is about SHA-1 only: a SHA-1 signature by a stranger's key stays refused.
    let s = Spec::default();
    let stranger = sign(
        &response(&s, &assertion(&s, true), false)
            .replace(RSA_SHA256, RSA_SHA1)
            .replace(SHA256, SHA1),
        &key(),
    );
    assert_eq!(
        check_with(&stranger, LEGACY).err(),
        Some(SamlError::SignatureInvalid)
    );
    // The default is the secure one.
    assert_eq!(Algorithms::default(), Algorithms { allow_sha1: false });
}

/// The class of defect 9: only the SHA-2 algorithms are accepted, whatever else a response
/// names (weak, symmetric or unknown), with or without the SHA-1 opt-in; and every SHA-2
/// strength an IdP may use is accepted.
#[test]
fn only_allowlisted_signature_and_digest_algorithms_are_accepted() {
    let unlisted = [
        ("http://www.w3.org/2001/04/xmldsig-more#rsa-md5", SHA256),
        ("http://www.w3.org/2000/09/xmldsig#hmac-sha1", SHA256),
        ("http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", SHA256),
        ("http://www.w3.org/2000/09/xmldsig#dsa-sha1", SHA256),
        ("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1", SHA256),
        (
            "http://www.w3.org/2001/04/xmldsig-more#rsa-ripemd160",
            SHA256,
        ),
        ("urn:example:made-up", SHA256),
        (RSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#md5"),
        (RSA_SHA256, "http://www.w3.org/2001/04/xmlenc#ripemd160"),
        (RSA_SHA256, "urn:example:made-up"),
    ];
    for (method, digest) in unlisted {
        let s = Spec::default();
        // Not signed: refused before any signature is checked, so no key is needed.
        let xml = response(&s, &assertion(&s, true), false)
            .replace(RSA_SHA256, method)
            .replace(SHA256, digest);
        for algorithms in [Algorithms::default(), LEGACY] {
            match check_with(&xml, algorithms) {
                Err(SamlError::AlgorithmRefused(named)) => {
                    let offending = if method == RSA_SHA256 { digest } else { method };
                    if offending.starts_with("urn:example") {
                        assert!(!named.contains("example"), "{named}: response text echoed");
                    } else {
                        assert_eq!(named, offending);
                    }
                }
                other => panic!("{method} / {digest} ({algorithms:?}): {other:?}"),
            }
        }
    }
    for (method, digest) in [
        (RSA_SHA256, SHA256),
        (
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            "http://www.w3.org/2001/04/xmldsig-more#sha384",
        ),
        (
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
            "http://www.w3.org/2001/04/xmlenc#sha512",
        ),
        (RSA_SHA256, "http://www.w3.org/2001/04/xmlenc#sha512"),
    ] {
        for response_too in [false, true] {
            let xml = signed_with(method, digest, response_too);
            assert!(
                check(&xml).is_ok(),
                "{method} / {digest}: {:?}",
                check(&xml)
            );
        }
    }
}

/// Every refusal reason is explained in the SAML guide's table (`docs/idp-saml.md`), which
/// `docs/troubleshooting.md` points to: a new reason cannot go undocumented.
#[test]
fn every_refusal_reason_is_explained_in_the_saml_guide() {
    use SamlError as E;
    let all = [
        E::TooLarge,
        E::Malformed,
        E::Doctype,
        E::AssertionCount,
        E::AlgorithmRefused(RSA_SHA1),
        E::SignatureInvalid,
        E::IssuerMismatch,
        E::Status,
        E::Unsolicited,
        E::UnknownRequest,
        E::DestinationMismatch,
        E::AudienceMismatch,
        E::RecipientMismatch,
        E::Expired,
        E::NotYetValid,
        E::NameIdMissing,
        E::NameIdTransient,
    ];
    // A new variant does not compile here until it is listed above.
    for error in all {
        match error {
            E::TooLarge
            | E::Malformed
            | E::Doctype
            | E::AssertionCount
            | E::AlgorithmRefused(_)
            | E::SignatureInvalid
            | E::IssuerMismatch
            | E::Status
            | E::Unsolicited
            | E::UnknownRequest
            | E::DestinationMismatch
            | E::AudienceMismatch
            | E::RecipientMismatch
            | E::Expired
            | E::NotYetValid
            | E::NameIdMissing
            | E::NameIdTransient => {}
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/idp-saml.md");
    let guide = std::fs::read_to_string(&path).expect("docs/idp-saml.md");
    for error in all {
        let row = format!("| {} | `{}` |", error.status().as_u16(), error.reason());
        assert!(
            guide.contains(&row),
            "docs/idp-saml.md has no table row ending in {row} ({error:?})"
        );
    }
}
