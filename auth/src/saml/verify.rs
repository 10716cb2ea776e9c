//! Verifying a SAML Response (HTTP-POST binding), everything a hostile IdP response can try.
//!
//! The XML signature is checked by `samael` (libxmlsec1), which also *reduces* the document to
//! the elements its verified signatures cover: from then on only that reduced document is read,
//! so a signature-wrapping attack (XSW), which moves the signed element aside and puts an
//! unsigned one where a naive reader looks, has nothing to offer. On top of the crate, Gatehouse's
//! own rules, in this order:
//!
//! 1. size bound; base64; UTF-8; no DOCTYPE (searched before any parser sees the text: XXE,
//!    entity expansion); well-formed, with a `samlp:Response` root;
//! 2. exactly one `Assertion` in the whole document, no `EncryptedAssertion`;
//! 3. every signature and digest method the document names on the allowlist: the SHA-2
//!    family ([`Algorithms`]; RSA-SHA1 signatures and SHA-1 digests only when the config opts in
//!    for a legacy IdP), checked by Gatehouse, which names the algorithm it refuses, and again by
//!    libxmlsec1 through samael's allowlist;
//! 4. at least one signature, every signature valid with a key of the IdP's metadata (an
//!    unsigned Response or Assertion is refused even though some crates accept one), and the
//!    Assertion among what they cover;
//! 5. issuers are the IdP's entity ID; the status is Success;
//! 6. `InResponseTo` names a request this browser started, taken from signed content only: the
//!    signed SubjectConfirmationData, or the Response when a signature covers the Response. The
//!    `InResponseTo` of an unsigned Response is never the request (an attacker can write their
//!    own pending request's ID into a captured IdP-initiated response): none in signed content
//!    is an unsolicited response, refused; one that differs anywhere is refused;
//! 7. `Destination` is the ACS URL (required when the Response itself is signed);
//!    AudienceRestriction present, every one naming the SP entity ID; a bearer
//!    SubjectConfirmation whose Recipient is the ACS URL;
//! 8. NotBefore / NotOnOrAfter of the Conditions and of the SubjectConfirmationData, with the
//!    configured clock skew;
//! 9. a NameID, read as the signed text (all its text, so a comment cannot cut it short), not
//!    transient.
//!
//! Replay (a Response or Assertion ID seen before) is the caller's check: it needs the replica's
//! memory of used IDs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::{Document, Node};
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider as _, ReduceMode,
};
use serde_json::{Map, Value};

/// SAML assertion namespace.
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// SAML protocol namespace.
pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// XML Signature namespace.
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Largest `SAMLResponse` form value accepted (base64 text).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Longest NameID or attribute value read.
const MAX_VALUE_BYTES: usize = 1024;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// NameID format of a one-time identifier: refused (every sign-in would be a new user).
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
/// NameID format of an email address.
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
/// NameID format of a stable, opaque identifier.
pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

/// Why a SAML response was refused. Never carries response content (it may hold personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    /// Larger than [`MAX_RESPONSE_BYTES`].
    #[error("SAML response too large")]
    TooLarge,
    /// Not base64, not UTF-8, not XML, not a Response.
    #[error("SAML response malformed")]
    Malformed,
    /// Holds a DTD.
    #[error("SAML response holds a DOCTYPE")]
    Doctype,
    /// Not exactly one Assertion (or an EncryptedAssertion, which is not supported).
    #[error("SAML response must hold exactly one (unencrypted) assertion")]
    AssertionCount,
    /// A signature or digest method outside the allowlist ([`Algorithms`]), named by its URI
    /// (from a fixed table, never text of the response: an unknown one is [`UNLISTED_ALGORITHM`]).
    #[error("SAML response uses a refused signature or digest algorithm: {0}")]
    AlgorithmRefused(&'static str),
    /// No valid signature of the IdP over the Response or the Assertion.
    #[error("SAML response signature missing or invalid")]
    SignatureInvalid,
    /// An issuer is not the IdP's entity ID.
    #[error("SAML response issuer mismatch")]
    IssuerMismatch,
    /// The IdP reported a non-success status.
    #[error("SAML response status is not Success")]
    Status,
    /// No InResponseTo: IdP-initiated sign-in.
    #[error("unsolicited SAML response")]
    Unsolicited,
    /// InResponseTo names no request of this browser (or the two InResponseTo differ).
    #[error("SAML response answers an unknown request")]
    UnknownRequest,
    /// Destination is not the ACS URL.
    #[error("SAML response destination mismatch")]
    DestinationMismatch,
    /// No AudienceRestriction, or one without the SP entity ID.
    #[error("SAML assertion audience mismatch")]
    AudienceMismatch,
    /// No bearer SubjectConfirmation for the ACS URL.
    #[error("SAML assertion recipient mismatch")]
    RecipientMismatch,
    /// Past NotOnOrAfter.
    #[error("SAML assertion expired")]
    Expired,
    /// Before NotBefore.
    #[error("SAML assertion not yet valid")]
    NotYetValid,
    /// No NameID.
    #[error("SAML assertion has no NameID")]
    NameIdMissing,
    /// A transient NameID.
    #[error("SAML assertion has a transient NameID")]
    NameIdTransient,
}

impl SamlError {
    /// Stable reason code (audit field, metric label, page message key).
    pub fn reason(self) -> &'static str {
        match self {
            SamlError::TooLarge => "saml_response_too_large",
            SamlError::Malformed => "saml_response_malformed",
            SamlError::Doctype => "saml_doctype_refused",
            SamlError::AssertionCount => "saml_assertion_count",
            SamlError::AlgorithmRefused(_) => "saml_algorithm_refused",
            SamlError::SignatureInvalid => "saml_signature_invalid",
            SamlError::IssuerMismatch => "saml_issuer_mismatch",
            SamlError::Status => "idp_denied",
            SamlError::Unsolicited => "saml_unsolicited",
            SamlError::UnknownRequest => "state_invalid",
            SamlError::DestinationMismatch => "saml_destination_mismatch",
            SamlError::AudienceMismatch => "saml_audience_mismatch",
            SamlError::RecipientMismatch => "saml_recipient_mismatch",
            SamlError::Expired => "saml_expired",
            SamlError::NotYetValid => "saml_not_yet_valid",
            SamlError::NameIdMissing => "saml_nameid_missing",
            SamlError::NameIdTransient => "saml_nameid_transient",
        }
    }

    /// HTTP status of the refusal page.
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            SamlError::TooLarge => S::PAYLOAD_TOO_LARGE,
            SamlError::Status | SamlError::NameIdTransient => S::FORBIDDEN,
            _ => S::BAD_REQUEST,
        }
    }

    /// Whether a verified user was refused (`denied`) rather than the response being broken.
    pub fn is_denial(self) -> bool {
        self == SamlError::NameIdTransient
    }

    /// Every refusal, for the table of sign-in reasons in the docs. Keep it in step with
    /// [`SamlError::explanation`], whose match fails to compile on a new variant.
    pub const ALL: [SamlError; 17] = [
        SamlError::TooLarge,
        SamlError::Malformed,
        SamlError::Doctype,
        SamlError::AssertionCount,
        SamlError::AlgorithmRefused(RSA_SHA1),
        SamlError::SignatureInvalid,
        SamlError::IssuerMismatch,
        SamlError::Status,
        SamlError::Unsolicited,
        SamlError::UnknownRequest,
        SamlError::DestinationMismatch,
        SamlError::AudienceMismatch,
        SamlError::RecipientMismatch,
        SamlError::Expired,
        SamlError::NotYetValid,
        SamlError::NameIdMissing,
        SamlError::NameIdTransient,
    ];

    /// What the reason tells an operator, and what to do: one line of the docs' table of
    /// sign-in reasons (`docs/troubleshooting.md`, generated from this; `docs/idp-saml.md`
    /// details each check).
    pub fn explanation(self) -> &'static str {
        match self {
            SamlError::TooLarge => "(SAML) the response is over 256 KiB: send fewer attributes",
            SamlError::Malformed => {
                "(SAML) the response is not base64, UTF-8 or XML, or not a `samlp:Response`"
            }
            SamlError::Doctype => {
                "(SAML) the response holds a DOCTYPE (entity expansion, XXE): refused before parsing"
            }
            SamlError::AssertionCount => {
                "(SAML) the response holds more than one assertion, or an encrypted one (not \
                 supported): turn off assertion encryption at the IdP"
            }
            SamlError::AlgorithmRefused(_) => {
                "(SAML) the response is signed or digested with an algorithm outside SHA-2, \
                 usually RSA-SHA1 (the sidecar's `SAML response refused` log line names it): \
                 switch the IdP to RSA-SHA256, or if it cannot, set `spec.saml.allowSha1: true` \
                 (insecure)"
            }
            SamlError::SignatureInvalid => {
                "(SAML) the response is unsigned, signed by a key the metadata does not name, \
                 altered after signing, or its signature does not cover the assertion: check that \
                 the metadata is the IdP's current one (after a certificate rollover)"
            }
            SamlError::IssuerMismatch => {
                "(SAML) an issuer of the response is not the IdP's entity ID from the metadata"
            }
            SamlError::Status => {
                "(SAML) the response's status is not Success: the IdP refused the user or the \
                 request; its own log says why"
            }
            SamlError::Unsolicited => {
                "(SAML) the response answers no request in signed content (IdP-initiated sign-in, \
                 which is not accepted): users start from the app"
            }
            SamlError::UnknownRequest => {
                "(SAML) the response answers a request this browser did not start (or names two)"
            }
            SamlError::DestinationMismatch => {
                "(SAML) the response's `Destination` is not the ACS URL: register \
                 `status.saml.acsUrl` at the IdP"
            }
            SamlError::AudienceMismatch => {
                "(SAML) the assertion's `AudienceRestriction` does not name the SP entity ID: \
                 register `status.saml.entityId` at the IdP"
            }
            SamlError::RecipientMismatch => {
                "(SAML) the assertion has no bearer `SubjectConfirmation` whose `Recipient` is the \
                 ACS URL: register `status.saml.acsUrl` at the IdP"
            }
            SamlError::Expired => {
                "(SAML) the assertion is past its `NotOnOrAfter`, beyond the tolerated clock skew \
                 (`GATEHOUSE_CLOCK_SKEW`): a slow user, or the clocks disagree"
            }
            SamlError::NotYetValid => {
                "(SAML) the assertion is before its `NotBefore`, beyond the tolerated clock skew: \
                 the node's and the IdP's clocks disagree"
            }
            SamlError::NameIdMissing => "(SAML) the assertion has no NameID",
            SamlError::NameIdTransient => {
                "(SAML) the NameID is transient, which would make a new user at every sign-in: \
                 have the IdP send a persistent NameID (or the email address)"
            }
        }
    }
}

/// Which signature and digest algorithms a response may use. The default is the SHA-2 family
/// only (SHA-1 is deprecated for XML signatures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Algorithms {
    /// Also accept RSA-SHA1 signatures and SHA-1 digests (`SAML_ALLOW_SHA1`,
    /// `spec.saml.allowSha1`), for an IdP that cannot sign otherwise. SHA-1 is deprecated for XML
    /// signatures: collisions are practical.
    pub allow_sha1: bool,
}

/// RSA-SHA1, the SHA-1 signature method the opt-in allows.
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
/// The SHA-1 digest method the opt-in allows.
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// How [`SamlError::AlgorithmRefused`] names an algorithm URI it does not know.
pub const UNLISTED_ALGORITHM: &str = "an algorithm outside the allowlist";

/// The SHA-2 signature methods, as samael's allowlist for libxmlsec1 (each implies its digest).
const SHA2_SIGNATURES: [AllowedSignatureAlgorithm; 9] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::RsaSha224,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha224,
    AllowedSignatureAlgorithm::DsaSha256,
];

/// Algorithm URIs a refusal may name: the ones an IdP or an attacker would plausibly send.
const KNOWN_ALGORITHMS: [&str; 16] = [
    RSA_SHA1,
    SHA1,
    "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#hmac-sha224",
    "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
    "http://www.w3.org/2001/04/xmldsig-more#hmac-md5",
    "http://www.w3.org/2001/04/xmldsig-more#md5",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-ripemd160",
    "http://www.w3.org/2001/04/xmldsig-more#hmac-ripemd160",
    "http://www.w3.org/2001/04/xmlenc#ripemd160",
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
];

impl Algorithms {
    /// Whether `uri` may be the `SignatureMethod` of a signature.
    fn signature_allowed(self, uri: &str) -> bool {
        SHA2_SIGNATURES.iter().any(|a| a.signature_uri() == uri)
            || (self.allow_sha1 && uri == RSA_SHA1)
    }

    /// Whether `uri` may be the `DigestMethod` of a reference.
    fn digest_allowed(self, uri: &str) -> bool {
        SHA2_SIGNATURES.iter().any(|a| a.digest_uri() == uri) || (self.allow_sha1 && uri == SHA1)
    }

    /// Every `SignatureMethod` and `DigestMethod` anywhere in the document (a superset of those
    /// libxmlsec1 reads: wherever one hides, it is looked at) must be allowed.
    fn check(self, document: &Document<'_>) -> Result<(), SamlError> {
        for node in document.descendants() {
            let allowed = if is(&node, NS_DSIG, "SignatureMethod") {
                Self::signature_allowed
            } else if is(&node, NS_DSIG, "DigestMethod") {
                Self::digest_allowed
            } else {
                continue;
            };
            let uri = node.attribute("Algorithm").unwrap_or_default();
            if !allowed(self, uri) {
                let named = KNOWN_ALGORITHMS
                    .into_iter()
                    .chain(SHA2_SIGNATURES.iter().map(|a| a.signature_uri()))
                    .chain(SHA2_SIGNATURES.iter().map(|a| a.digest_uri()))
                    .find(|known| *known == uri)
                    .unwrap_or(UNLISTED_ALGORITHM);
                return Err(SamlError::AlgorithmRefused(named));
            }
        }
        Ok(())
    }

    /// The allowlist handed to libxmlsec1 (through samael), a second check of the same rule.
    /// samael's list has no SHA-1 entry, so with the opt-in it gets none, and [`Self::check`]
    /// alone keeps everything else out.
    fn for_xmlsec(self) -> Option<&'static [AllowedSignatureAlgorithm]> {
        (!self.allow_sha1).then_some(&SHA2_SIGNATURES[..])
    }
}

/// What a response must match.
#[derive(Debug)]
pub struct Expected<'a> {
    /// The IdP's entity ID.
    pub idp_entity_id: &'a str,
    /// The IdP's signing certificates (DER).
    pub certs: &'a [Vec<u8>],
    /// Our entity ID (the audience).
    pub sp_entity_id: &'a str,
    /// Our ACS URL (Destination, Recipient).
    pub acs_url: &'a str,
    /// Request IDs this browser started (from its attempt cookies).
    pub request_ids: &'a [&'a str],
    /// Tolerated clock skew, seconds.
    pub skew_secs: i64,
    /// Now, Unix seconds.
    pub now: i64,
}

/// A verified assertion: only what its signature covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The Response's ID. Signed only when the Response is: with only the Assertion signed,
    /// anyone may have written it, so replay is decided by [`Self::assertion_id`] (which the
    /// caller remembers too), never by this alone.
    pub response_id: String,
    /// The Assertion's ID.
    pub assertion_id: String,
    /// The request it answers (one of [`Expected::request_ids`]).
    pub in_response_to: String,
    /// NameID text, exactly as signed.
    pub name_id: String,
    /// NameID format, if given.
    pub name_id_format: Option<String>,
    /// SessionIndex of the AuthnStatement (for single logout).
    pub session_index: Option<String>,
    /// Attributes: Name → string (one value) or array of strings.
    pub attributes: Map<String, Value>,
    /// Latest NotOnOrAfter that applied (Unix seconds): how long to remember the IDs.
    pub valid_until: i64,
}

/// Decodes and verifies the `SAMLResponse` form value, with the default [`Algorithms`] (SHA-2).
pub fn verify_response(
    saml_response: &str,
    expected: &Expected<'_>,
) -> Result<VerifiedAssertion, SamlError> {
    verify_response_with(saml_response, expected, Algorithms::default())
}

/// [`verify_response`] accepting the given signature and digest [`Algorithms`].
pub fn verify_response_with(
    saml_response: &str,
    expected: &Expected<'_>,
    algorithms: Algorithms,
) -> Result<VerifiedAssertion, SamlError> {
    if saml_response.len() > MAX_RESPONSE_BYTES {
        return Err(SamlError::TooLarge);
    }
    let compact: Vec<u8> = saml_response
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD
        .decode(&compact)
        .map_err(|_| SamlError::Malformed)?;
    let xml = std::str::from_utf8(&bytes).map_err(|_| SamlError::Malformed)?;
    verify_xml_with(xml, expected, algorithms)
}

/// [`verify_response`] for the decoded XML.
pub fn verify_xml(xml: &str, expected: &Expected<'_>) -> Result<VerifiedAssertion, SamlError> {
    verify_xml_with(xml, expected, Algorithms::default())
}

/// [`verify_response_with`] for the decoded XML.
pub fn verify_xml_with(
    xml: &str,
    expected: &Expected<'_>,
    algorithms: Algorithms,
) -> Result<VerifiedAssertion, SamlError> {
    if gatehouse_crds::saml_metadata::has_doctype(xml) {
        return Err(SamlError::Doctype);
    }
    let original = Document::parse(xml).map_err(|_| SamlError::Malformed)?;
    let response = original.root_element();
    if !is(&response, NS_PROTOCOL, "Response") {
        return Err(SamlError::Malformed);
    }
    let assertions = original
        .descendants()
        .filter(|n| is(n, NS_ASSERTION, "Assertion"))
        .count();
    let encrypted = original
        .descendants()
        .any(|n| is(&n, NS_ASSERTION, "EncryptedAssertion"));
    if assertions != 1 || encrypted {
        return Err(SamlError::AssertionCount);
    }

    // Algorithms: before any signature is checked, and again by libxmlsec1.
    algorithms.check(&original)?;

    // Signatures: all of them valid with an IdP key; then only what they cover is read.
    if expected.certs.is_empty() {
        return Err(SamlError::SignatureInvalid);
    }
    let certs: Vec<CertificateDer> = expected
        .certs
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let reduced = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        algorithms.for_xmlsec(),
    )
    .map_err(|_| SamlError::SignatureInvalid)?;
    if gatehouse_crds::saml_metadata::has_doctype(&reduced) {
        return Err(SamlError::SignatureInvalid);
    }
    let signed = Document::parse(&reduced).map_err(|_| SamlError::SignatureInvalid)?;
    let signed_root = signed.root_element();
    let response_signed = is(&signed_root, NS_PROTOCOL, "Response")
        && signed_root.attribute("ID").is_some()
        && signed_root.attribute("ID") == response.attribute("ID");
    let mut signed_assertions = signed
        .descendants()
        .filter(|n| is(n, NS_ASSERTION, "Assertion"));
    let assertion = signed_assertions
        .next()
        .ok_or(SamlError::SignatureInvalid)?;
    if signed_assertions.next().is_some() {
        return Err(SamlError::AssertionCount);
    }
    // The Response's own fields: from the signed copy when the Response is signed, else from
    // the document (the signed assertion then carries what matters: recipient, request, times).
    // What no signature covers may only refuse: issuer, status, destination and InResponseTo of
    // an unsigned Response are compared, never taken as what the IdP said.
    let response = if response_signed {
        signed_root
    } else {
        response
    };

    // Issuers and status.
    let idp = expected.idp_entity_id;
    if let Some(issuer) = child(&response, NS_ASSERTION, "Issuer")
        && text(&issuer) != idp
    {
        return Err(SamlError::IssuerMismatch);
    }
    match child(&assertion, NS_ASSERTION, "Issuer") {
        Some(issuer) if text(&issuer) == idp => {}
        _ => return Err(SamlError::IssuerMismatch),
    }
    let status = child(&response, NS_PROTOCOL, "Status")
        .and_then(|s| child(&s, NS_PROTOCOL, "StatusCode"))
        .and_then(|c| c.attribute("Value"));
    if status != Some(STATUS_SUCCESS) {
        return Err(SamlError::Status);
    }

    // The bearer confirmations of the signed subject.
    let subject = child(&assertion, NS_ASSERTION, "Subject").ok_or(SamlError::NameIdMissing)?;
    let bearer: Vec<Node<'_, '_>> = subject
        .children()
        .filter(|c| is(c, NS_ASSERTION, "SubjectConfirmation"))
        .filter(|c| c.attribute("Method") == Some(CM_BEARER))
        .filter_map(|c| child(&c, NS_ASSERTION, "SubjectConfirmationData"))
        .collect();

    // InResponseTo: the request this browser started, named by signed content only (the signed
    // SubjectConfirmationData, or the Response when a signature covers it). The InResponseTo of
    // an unsigned Response is anyone's to write: a captured IdP-initiated response with the
    // attacker's own pending request ID put there would otherwise sign the attacker in as the
    // victim. It may still refuse (when it differs), never name the request.
    let response_irt = response.attribute("InResponseTo");
    let signed_response_irt = response_irt.filter(|_| response_signed);
    let confirmation_irt: Vec<&str> = bearer
        .iter()
        .filter_map(|d| d.attribute("InResponseTo"))
        .collect();
    let in_response_to = confirmation_irt.first().copied().or(signed_response_irt);
    let Some(in_response_to) = in_response_to else {
        return Err(SamlError::Unsolicited);
    };
    let consistent = confirmation_irt.iter().all(|i| *i == in_response_to)
        && response_irt.is_none_or(|i| i == in_response_to);
    if !consistent || !expected.request_ids.contains(&in_response_to) {
        return Err(SamlError::UnknownRequest);
    }

    // Destination, audience, recipient.
    match response.attribute("Destination") {
        Some(d) if d == expected.acs_url => {}
        None if !response_signed => {}
        _ => return Err(SamlError::DestinationMismatch),
    }
    let conditions = child(&assertion, NS_ASSERTION, "Conditions");
    let restrictions: Vec<Node<'_, '_>> = conditions
        .iter()
        .flat_map(|c| c.children())
        .filter(|r| is(r, NS_ASSERTION, "AudienceRestriction"))
        .collect();
    let names_us = |r: &Node<'_, '_>| {
        r.children()
            .filter(|a| is(a, NS_ASSERTION, "Audience"))
            .any(|a| text(&a) == expected.sp_entity_id)
    };
    if restrictions.is_empty() || !restrictions.iter().all(names_us) {
        return Err(SamlError::AudienceMismatch);
    }
    let confirmation = bearer
        .iter()
        .find(|d| d.attribute("Recipient") == Some(expected.acs_url))
        .ok_or(SamlError::RecipientMismatch)?;

    // Time windows.
    let (now, skew) = (expected.now, expected.skew_secs);
    let time = |n: &Node<'_, '_>, name: &str| -> Result<Option<i64>, SamlError> {
        n.attribute(name)
            .map(|t| {
                t.trim()
                    .parse::<jiff::Timestamp>()
                    .map(|t| t.as_second())
                    .map_err(|_| SamlError::Malformed)
            })
            .transpose()
    };
    let mut valid_until = i64::MAX;
    for (node, required) in [(conditions, false), (Some(*confirmation), true)] {
        let Some(node) = node else { continue };
        if let Some(not_before) = time(&node, "NotBefore")?
            && now + skew < not_before
        {
            return Err(SamlError::NotYetValid);
        }
        match time(&node, "NotOnOrAfter")? {
            Some(not_on_or_after) if now - skew >= not_on_or_after => {
                return Err(SamlError::Expired);
            }
            Some(not_on_or_after) => valid_until = valid_until.min(not_on_or_after),
            // A bearer confirmation without an end would be valid for ever.
            None if required => return Err(SamlError::Expired),
            None => {}
        }
    }

    // The subject.
    if child(&subject, NS_ASSERTION, "EncryptedID").is_some() {
        return Err(SamlError::AssertionCount);
    }
    let name_id = child(&subject, NS_ASSERTION, "NameID").ok_or(SamlError::NameIdMissing)?;
    let name_id_format = name_id.attribute("Format").map(str::to_owned);
    if name_id_format.as_deref() == Some(NAMEID_TRANSIENT) {
        return Err(SamlError::NameIdTransient);
    }
    let name_id_text = text(&name_id);
    if name_id_text.is_empty() || name_id_text.len() > MAX_VALUE_BYTES {
        return Err(SamlError::NameIdMissing);
    }

    let session_index = assertion
        .children()
        .filter(|s| is(s, NS_ASSERTION, "AuthnStatement"))
        .find_map(|s| s.attribute("SessionIndex"))
        .map(str::to_owned);

    Ok(VerifiedAssertion {
        response_id: response.attribute("ID").unwrap_or_default().to_owned(),
        assertion_id: assertion
            .attribute("ID")
            .ok_or(SamlError::Malformed)?
            .to_owned(),
        in_response_to: in_response_to.to_owned(),
        name_id: name_id_text,
        name_id_format,
        session_index,
        attributes: attributes(&assertion),
        valid_until,
    })
}

/// The signed assertion's attributes: Name → the only value as a string, or all as an array.
fn attributes(assertion: &Node<'_, '_>) -> Map<String, Value> {
    let mut out = Map::new();
    for attribute in assertion
        .children()
        .filter(|s| is(s, NS_ASSERTION, "AttributeStatement"))
        .flat_map(|s| s.children())
        .filter(|a| is(a, NS_ASSERTION, "Attribute"))
    {
        let Some(name) = attribute.attribute("Name") else {
            continue;
        };
        let values: Vec<Value> = attribute
            .children()
            .filter(|v| is(v, NS_ASSERTION, "AttributeValue"))
            .map(|v| text(&v))
            .filter(|v| v.len() <= MAX_VALUE_BYTES)
            .map(Value::String)
            .collect();
        let merged = match out.remove(name) {
            None => values,
            Some(Value::Array(mut before)) => {
                before.extend(values);
                before
            }
            Some(single) => std::iter::once(single).chain(values).collect(),
        };
        let value = match <[Value; 1]>::try_from(merged) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        out.insert(name.to_owned(), value);
    }
    out
}

fn is(n: &Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

fn child<'a, 'i>(n: &Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| is(c, ns, name))
}

/// All the text inside an element, trimmed: what its signature covered (a comment inside it
/// splits the text into several nodes; reading only the first would read another value).
pub(super) fn text(n: &Node<'_, '_>) -> String {
    let all: String = n
        .descendants()
        .filter(|t| t.is_text())
        .filter_map(|t| t.text())
        .collect();
    all.trim().to_owned()
}
