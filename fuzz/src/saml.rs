//! The SAML Response (HTTP-POST binding) parser and verifier.

use gatehouse_auth::saml::logout::{LogoutExpected, RedirectQuery, parse_logout_request};
use gatehouse_auth::saml::verify::{
    Expected, NAMEID_TRANSIENT, VerifiedAssertion, verify_response, verify_xml,
};

use crate::fixtures::{
    NOW, SAML_ACS, SAML_ASSERTION_ID, SAML_IDP, SAML_LOGOUT_ID, SAML_NAME_ID, SAML_REQUESTS,
    SAML_SLO, SAML_SP, saml_attributes, saml_certs,
};

const SKEW: i64 = 60;

/// What the sidecar would expect of the fixtures' responses (the generated seeds answer it).
pub fn expected() -> Expected<'static> {
    Expected {
        idp_entity_id: SAML_IDP,
        certs: saml_certs(),
        sp_entity_id: SAML_SP,
        acs_url: SAML_ACS,
        request_ids: &SAML_REQUESTS,
        skew_secs: SKEW,
        now: NOW,
    }
}

/// What an accepted response may say: only what the IdP signed (every genuine seed is the same
/// signed assertion, so any other NameID, assertion ID or attribute that gets through is a
/// signature-wrapping or comment-injection hole), answering a request of this browser, not
/// transient, not expired.
fn check(v: &VerifiedAssertion) {
    assert_eq!(v.name_id, SAML_NAME_ID, "a NameID the IdP did not sign");
    assert_eq!(
        v.assertion_id, SAML_ASSERTION_ID,
        "an assertion the IdP did not sign"
    );
    assert_eq!(
        &v.attributes,
        saml_attributes(),
        "attributes the IdP did not sign"
    );
    assert!(SAML_REQUESTS.contains(&v.in_response_to.as_str()));
    assert_ne!(v.name_id_format.as_deref(), Some(NAMEID_TRANSIENT));
    assert!(v.valid_until > NOW - SKEW, "expired assertion accepted");
}

/// SAML Response: the input as the decoded XML and as the `SAMLResponse` form value (base64);
/// never a panic or a crash in libxml2/libxmlsec1, and an accepted response says only what the
/// IdP signed (see [`check`]).
pub fn saml_response(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(v) = verify_xml(&text, &expected()) {
        check(&v);
    }
    if let Ok(v) = verify_response(&text, &expected()) {
        check(&v);
    }
}

/// IdP-initiated single logout: line 1 as the redirect-binding query (`SAMLRequest`,
/// `RelayState`, `SigAlg`, `Signature`), and the whole input as LogoutRequest XML. Never a
/// panic; a query whose signature verifies says only what the IdP signed (the genuine seed is the
/// only input the fixture IdP signed, so another NameID or ID is a signature hole); an accepted
/// request is the configured IdP's, addressed here, current, and names a NameID.
pub fn saml_logout_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let expected = LogoutExpected {
        idp_entity_id: SAML_IDP,
        slo_url: SAML_SLO,
        skew_secs: SKEW,
        now: NOW,
    };
    if let Ok(Some(query)) = RedirectQuery::parse(text.lines().next().unwrap_or_default()) {
        let _ = query.relay_state();
        let xml = query.inflate();
        if query.verify_signature(saml_certs(), false).is_ok()
            && let Ok(request) = xml.and_then(|xml| parse_logout_request(&xml, &expected))
        {
            assert_eq!(
                request.name_id, SAML_NAME_ID,
                "a NameID the IdP did not sign"
            );
            assert_eq!(request.id, SAML_LOGOUT_ID, "a request the IdP did not sign");
        }
    }
    if let Ok(request) = parse_logout_request(&text, &expected) {
        assert_eq!(request.issuer, SAML_IDP);
        assert_eq!(request.destination.as_deref(), Some(SAML_SLO));
        assert!(!request.name_id.is_empty() && request.session_indexes.len() <= 16);
        assert!(request.issued_at <= NOW + SKEW, "a request from the future");
        assert!(
            request
                .not_on_or_after
                .is_none_or(|until| until + SKEW > NOW),
            "an expired request"
        );
    }
}
