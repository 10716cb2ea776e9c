//! Single logout started by the IdP (HTTP-Redirect binding): the IdP's `LogoutRequest` checked
//! (its query signature against the IdP's metadata certificates, then issuer, destination and
//! validity), and the SP's `LogoutResponse`, signed with the SP's own key when it has one.
//!
//! The redirect binding signs the query, not the XML (SAML Bindings 3.4.4.1): the octets
//! `SAMLRequest=…[&RelayState=…]&SigAlg=…`, with each value exactly as it was URL-encoded in
//! the request. The values are therefore taken from the raw query, never re-encoded.

use std::io::Read as _;

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::verify::{NS_ASSERTION, NS_PROTOCOL};

/// `SigAlg` of RSA with SHA-256: what the SP signs with, and what every IdP offers.
pub const SIG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SIG_RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
const SIG_RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
const SIG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SIG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
/// Status of a logout done.
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// Status of a logout the SP could not record everywhere (the IdP may retry).
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";

/// Largest `SAMLRequest` query value read, and largest inflated request.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// How long after its `IssueInstant` a request without `NotOnOrAfter` is accepted.
pub const MAX_REQUEST_AGE_SECS: i64 = 300;

/// Why an IdP's LogoutRequest was refused. Never carries request content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogoutError {
    /// Not a redirect-binding query with one `SAMLRequest`, or too large.
    #[error("not one well-formed SAMLRequest in the query")]
    Malformed,
    /// No `Signature`/`SigAlg`: the redirect binding must be signed.
    #[error("the LogoutRequest is not signed; single logout from the IdP must be signed")]
    Unsigned,
    /// A `SigAlg` outside the allow-list (RSA-SHA1 only with `allowSha1`).
    #[error("signature algorithm not accepted")]
    AlgorithmRefused,
    /// The signature does not verify with any of the IdP's signing certificates.
    #[error("the signature does not verify with the IdP's metadata certificates")]
    SignatureInvalid,
    /// Inflating or parsing the XML failed, or it is not a LogoutRequest.
    #[error("the SAMLRequest is not a readable LogoutRequest")]
    NotLogoutRequest,
    /// A DTD in the request.
    #[error("DOCTYPE refused")]
    Doctype,
    /// `Issuer` is not the IdP's entity ID.
    #[error("the LogoutRequest is not from the configured IdP")]
    IssuerMismatch,
    /// `Destination` missing or not this SP's logout URL.
    #[error("the LogoutRequest is not addressed to this service provider's logout URL")]
    DestinationMismatch,
    /// Past `NotOnOrAfter`, or issued too long ago.
    #[error("the LogoutRequest has expired")]
    Expired,
    /// Issued in the future.
    #[error("the LogoutRequest is not valid yet")]
    NotYetValid,
    /// No plain `NameID` (an `EncryptedID` or `BaseID` is not supported).
    #[error("the LogoutRequest names no NameID")]
    NameIdMissing,
    /// Its ID was already seen.
    #[error("the LogoutRequest was already used")]
    Replayed,
}

impl LogoutError {
    /// Stable reason code for audit lines and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            LogoutError::Malformed => "saml_logout_malformed",
            LogoutError::Unsigned => "saml_logout_unsigned",
            LogoutError::AlgorithmRefused => "saml_algorithm_refused",
            LogoutError::SignatureInvalid => "saml_signature_invalid",
            LogoutError::NotLogoutRequest => "saml_logout_malformed",
            LogoutError::Doctype => "saml_doctype_refused",
            LogoutError::IssuerMismatch => "saml_issuer_mismatch",
            LogoutError::DestinationMismatch => "saml_destination_mismatch",
            LogoutError::Expired => "saml_expired",
            LogoutError::NotYetValid => "saml_not_yet_valid",
            LogoutError::NameIdMissing => "saml_nameid_missing",
            LogoutError::Replayed => "saml_logout_replayed",
        }
    }
}

/// The parameters of a redirect-binding query, values still URL-encoded as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectQuery<'q> {
    /// `SAMLRequest` (encoded).
    pub message: &'q str,
    /// `RelayState` (encoded), if sent.
    pub relay_state: Option<&'q str>,
    /// `SigAlg` (encoded), if sent.
    pub sig_alg: Option<&'q str>,
    /// `Signature` (encoded), if sent.
    pub signature: Option<&'q str>,
}

impl<'q> RedirectQuery<'q> {
    /// Reads `raw` (the query string, without `?`); `None` without exactly one `SAMLRequest`.
    /// A parameter sent twice makes the query malformed: which copy was signed is ambiguous.
    pub fn parse(raw: &'q str) -> Result<Option<Self>, LogoutError> {
        let (mut message, mut relay_state, mut sig_alg, mut signature) = (None, None, None, None);
        for pair in raw.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "SAMLRequest" => &mut message,
                "RelayState" => &mut relay_state,
                "SigAlg" => &mut sig_alg,
                "Signature" => &mut signature,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(LogoutError::Malformed);
            }
        }
        let Some(message) = message else {
            return Ok(None);
        };
        if message.is_empty() || message.len() > MAX_REQUEST_BYTES * 2 {
            return Err(LogoutError::Malformed);
        }
        Ok(Some(Self {
            message,
            relay_state,
            sig_alg,
            signature,
        }))
    }

    /// The decoded `RelayState`, to send back.
    pub fn relay_state(&self) -> Option<String> {
        self.relay_state.map(decode).filter(|r| !r.is_empty())
    }

    /// Checks the query signature against `certs` (DER certificates of the IdP).
    pub fn verify_signature(&self, certs: &[Vec<u8>], allow_sha1: bool) -> Result<(), LogoutError> {
        let (Some(sig_alg), Some(signature)) = (self.sig_alg, self.signature) else {
            return Err(LogoutError::Unsigned);
        };
        let algorithm = verification_algorithm(&decode(sig_alg), allow_sha1)?;
        let signature = STANDARD
            .decode(decode(signature).as_bytes())
            .map_err(|_| LogoutError::SignatureInvalid)?;
        let mut signed = format!("SAMLRequest={}", self.message);
        if let Some(relay) = self.relay_state {
            signed.push_str("&RelayState=");
            signed.push_str(relay);
        }
        signed.push_str("&SigAlg=");
        signed.push_str(sig_alg);
        let verified = certs.iter().any(|der| {
            public_key_bits(der).is_some_and(|key| {
                UnparsedPublicKey::new(algorithm, key)
                    .verify(signed.as_bytes(), &signature)
                    .is_ok()
            })
        });
        if verified {
            Ok(())
        } else {
            Err(LogoutError::SignatureInvalid)
        }
    }

    /// The inflated XML of `SAMLRequest` (at most [`MAX_REQUEST_BYTES`]).
    pub fn inflate(&self) -> Result<String, LogoutError> {
        let deflated = STANDARD
            .decode(decode(self.message).as_bytes())
            .map_err(|_| LogoutError::NotLogoutRequest)?;
        let mut xml = Vec::new();
        flate2::read::DeflateDecoder::new(deflated.as_slice())
            .take(MAX_REQUEST_BYTES as u64 + 1)
            .read_to_end(&mut xml)
            .map_err(|_| LogoutError::NotLogoutRequest)?;
        if xml.len() > MAX_REQUEST_BYTES {
            return Err(LogoutError::NotLogoutRequest);
        }
        String::from_utf8(xml).map_err(|_| LogoutError::NotLogoutRequest)
    }
}

fn decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn verification_algorithm(
    sig_alg: &str,
    allow_sha1: bool,
) -> Result<&'static dyn VerificationAlgorithm, LogoutError> {
    Ok(match sig_alg {
        SIG_RSA_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        SIG_RSA_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        SIG_RSA_SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        SIG_ECDSA_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
        SIG_RSA_SHA1 if allow_sha1 => &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        _ => return Err(LogoutError::AlgorithmRefused),
    })
}

/// The subject public key of a DER certificate (PKCS#1 for RSA, the point for EC).
fn public_key_bits(der: &[u8]) -> Option<&[u8]> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    match cert.tbs_certificate.subject_pki.subject_public_key.data {
        std::borrow::Cow::Borrowed(bits) => Some(bits),
        std::borrow::Cow::Owned(_) => None,
    }
}

/// What an IdP's LogoutRequest says, once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpLogoutRequest {
    /// Its ID (against replay).
    pub id: String,
    /// `Issuer`.
    pub issuer: String,
    /// `Destination`, if present.
    pub destination: Option<String>,
    /// `IssueInstant`, Unix seconds.
    pub issued_at: i64,
    /// `NotOnOrAfter`, Unix seconds, if present.
    pub not_on_or_after: Option<i64>,
    /// The user's NameID.
    pub name_id: String,
    /// The IdP sessions to end; none means every session of the NameID.
    pub session_indexes: Vec<String>,
}

impl IdpLogoutRequest {
    /// The last second it can be accepted, clock skew aside: its `NotOnOrAfter`, and never more
    /// than [`MAX_REQUEST_AGE_SECS`] after its `IssueInstant`. Its ID is remembered until then.
    pub fn valid_until(&self) -> i64 {
        let cap = self.issued_at.saturating_add(MAX_REQUEST_AGE_SECS);
        self.not_on_or_after.map_or(cap, |until| until.min(cap))
    }
}

/// What a LogoutRequest is checked against.
#[derive(Debug, Clone, Copy)]
pub struct LogoutExpected<'a> {
    /// The IdP's entity ID.
    pub idp_entity_id: &'a str,
    /// This SP's logout URL (its metadata's SingleLogoutService).
    pub slo_url: &'a str,
    /// Clock skew allowed, seconds.
    pub skew_secs: i64,
    /// Now, Unix seconds.
    pub now: i64,
}

/// Parses the inflated XML of a LogoutRequest and checks issuer, destination and validity.
/// Only for a request whose query signature was verified.
pub fn parse_logout_request(
    xml: &str,
    expected: &LogoutExpected<'_>,
) -> Result<IdpLogoutRequest, LogoutError> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(LogoutError::Doctype);
    }
    let doc = roxmltree::Document::parse(xml).map_err(|_| LogoutError::NotLogoutRequest)?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(NS_PROTOCOL)
        || root.tag_name().name() != "LogoutRequest"
        || root.attribute("Version") != Some("2.0")
    {
        return Err(LogoutError::NotLogoutRequest);
    }
    let id = root
        .attribute("ID")
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .ok_or(LogoutError::NotLogoutRequest)?;
    let child = |ns: &'static str, name: &'static str| {
        root.children()
            .filter(|n| n.is_element() && n.tag_name().namespace() == Some(ns))
            .filter(move |n| n.tag_name().name() == name)
    };
    let one_text = |ns: &'static str, name: &'static str| {
        let mut found = child(ns, name);
        match (found.next(), found.next()) {
            (Some(node), None) => Some(node.text().unwrap_or_default().trim().to_owned()),
            _ => None,
        }
    };
    let issuer = one_text(NS_ASSERTION, "Issuer").ok_or(LogoutError::IssuerMismatch)?;
    if issuer != expected.idp_entity_id {
        return Err(LogoutError::IssuerMismatch);
    }
    let destination = root.attribute("Destination").map(str::to_owned);
    if destination.as_deref() != Some(expected.slo_url) {
        return Err(LogoutError::DestinationMismatch);
    }
    let instant = |value: &str| {
        value
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .map_err(|_| LogoutError::NotLogoutRequest)
    };
    let issued_at = instant(root.attribute("IssueInstant").unwrap_or_default())?;
    let not_on_or_after = root.attribute("NotOnOrAfter").map(instant).transpose()?;
    let skew = expected.skew_secs;
    if issued_at > expected.now + skew {
        return Err(LogoutError::NotYetValid);
    }
    let until = not_on_or_after.unwrap_or(issued_at + MAX_REQUEST_AGE_SECS);
    if expected.now >= until + skew || expected.now > issued_at + MAX_REQUEST_AGE_SECS + skew {
        return Err(LogoutError::Expired);
    }
    let name_id = one_text(NS_ASSERTION, "NameID")
        .filter(|n| !n.is_empty() && n.len() <= 1024)
        .ok_or(LogoutError::NameIdMissing)?;
    let session_indexes: Vec<String> = child(NS_PROTOCOL, "SessionIndex")
        .map(|n| n.text().unwrap_or_default().trim().to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .take(16)
        .collect();
    Ok(IdpLogoutRequest {
        id: id.to_owned(),
        issuer,
        destination,
        issued_at,
        not_on_or_after,
        name_id,
        session_indexes,
    })
}

/// The SP's signing key for the redirect binding: an RSA key (PKCS#8) and its certificates.
pub struct SpSigningKey {
    key: sig::RsaKeyPair,
    certs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SpSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpSigningKey")
            .field("certs", &self.certs.len())
            .finish_non_exhaustive()
    }
}

impl SpSigningKey {
    /// From a PEM private key (PKCS#8, RSA) and PEM certificates (the first is the key's; any
    /// further one is published too, for a rotation's overlap). Errors name what is wrong.
    pub fn from_pem(key_pem: &str, certs_pem: &str) -> Result<Self, String> {
        let blocks = |text: &str| -> Result<Vec<x509_parser::pem::Pem>, String> {
            x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "not PEM".to_owned())
        };
        let keys = blocks(key_pem).map_err(|e| format!("the SP signing key is {e}"))?;
        let key = match keys.as_slice() {
            [key] if key.label == "PRIVATE KEY" => key,
            [key] => {
                return Err(format!(
                    "the SP signing key is a `{}`; a PKCS#8 `PRIVATE KEY` (RSA) is needed",
                    key.label
                ));
            }
            _ => return Err("the SP signing key must be one PEM block".to_owned()),
        };
        let key = sig::RsaKeyPair::from_pkcs8(&key.contents)
            .map_err(|_| "the SP signing key is not an RSA key of 2048 bits or more".to_owned())?;
        let certs: Vec<Vec<u8>> = blocks(certs_pem)
            .map_err(|e| format!("the SP signing certificate is {e}"))?
            .into_iter()
            .filter(|p| p.label == "CERTIFICATE")
            .map(|p| p.contents)
            .collect();
        let Some(first) = certs.first() else {
            return Err("no CERTIFICATE in the SP signing certificate".to_owned());
        };
        use sig::KeyPair as _;
        if public_key_bits(first) != Some(key.public_key().as_ref()) {
            return Err("the first SP signing certificate is not the signing key's".to_owned());
        }
        Ok(Self { key, certs })
    }

    /// The certificates to publish in the SP metadata (DER).
    pub fn certs(&self) -> &[Vec<u8>] {
        &self.certs
    }

    fn sign(&self, octets: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        // Signing with a valid key into a buffer of the modulus' length cannot fail.
        let _ = self.key.sign(
            &sig::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            octets,
            &mut signature,
        );
        signature
    }
}

/// The SP's LogoutResponse to an IdP's LogoutRequest.
#[derive(Debug)]
pub struct LogoutResponse<'a> {
    /// Response ID.
    pub id: &'a str,
    /// The request's ID.
    pub in_response_to: &'a str,
    /// The IdP's SingleLogoutService.
    pub destination: &'a url::Url,
    /// Our entity ID.
    pub issuer: &'a str,
    /// [`STATUS_SUCCESS`] or [`STATUS_RESPONDER`].
    pub status: &'a str,
    /// Unix time of issue.
    pub issued_at: i64,
}

impl LogoutResponse<'_> {
    /// The response's XML.
    pub fn xml(&self) -> String {
        format!(
            r#"<samlp:LogoutResponse xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status></samlp:LogoutResponse>"#,
            id = super::messages::esc(self.id),
            at = super::messages::instant(self.issued_at),
            dest = super::messages::esc(self.destination.as_str()),
            irt = super::messages::esc(self.in_response_to),
            issuer = super::messages::esc(self.issuer),
            status = super::messages::esc(self.status),
        )
    }

    /// Where the browser is sent: the destination with `SAMLResponse`, `RelayState` and, with a
    /// key, `SigAlg` and `Signature` over them.
    pub fn redirect_url(&self, relay_state: Option<&str>, key: Option<&SpSigningKey>) -> url::Url {
        let encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let mut query = format!(
            "SAMLResponse={}",
            encode(&STANDARD.encode(super::messages::deflate(&self.xml())))
        );
        if let Some(relay) = relay_state {
            query.push_str("&RelayState=");
            query.push_str(&encode(relay));
        }
        if let Some(key) = key {
            query.push_str("&SigAlg=");
            query.push_str(&encode(SIG_RSA_SHA256));
            let signature = STANDARD.encode(key.sign(query.as_bytes()));
            query.push_str("&Signature=");
            query.push_str(&encode(&signature));
        }
        let mut url = self.destination.clone();
        let joined = match url.query() {
            Some(existing) if !existing.is_empty() => format!("{existing}&{query}"),
            _ => query,
        };
        url.set_query(Some(&joined));
        url
    }
}
