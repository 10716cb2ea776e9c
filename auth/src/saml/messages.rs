//! The messages the SP sends: its metadata, the AuthnRequest and the LogoutRequest
//! (HTTP-Redirect binding: raw DEFLATE, base64, query parameter).

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::verify::{NAMEID_EMAIL, NAMEID_PERSISTENT, NS_ASSERTION, NS_DSIG, NS_PROTOCOL};
use gatehouse_crds::saml_metadata::{BINDING_POST, BINDING_REDIRECT, NS_METADATA};

/// XML text or attribute value, escaped.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `xs:dateTime` of a Unix time, UTC.
pub(super) fn instant(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The SP's metadata: entity ID, its signing certificates (`signing_certs`, DER: those of the
/// key its LogoutResponses are signed with, the next or previous one beside it during a
/// rotation), ACS (HTTP-POST), single logout (HTTP-Redirect), NameID formats; unsigned
/// AuthnRequests, signed assertions wanted.
pub fn sp_metadata(
    entity_id: &str,
    acs_url: &str,
    slo_url: &str,
    signing_certs: &[Vec<u8>],
) -> String {
    let keys: String = signing_certs
        .iter()
        .map(|der| {
            format!(
                r#"
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{NS_DSIG}"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                STANDARD.encode(der)
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="{NS_METADATA}" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="{NS_PROTOCOL}">{keys}
    <md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="{slo}"/>
    <md:NameIDFormat>{NAMEID_PERSISTENT}</md:NameIDFormat>
    <md:NameIDFormat>{NAMEID_EMAIL}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{BINDING_POST}" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = esc(entity_id),
        slo = esc(slo_url),
        acs = esc(acs_url),
    )
}

/// An AuthnRequest for the HTTP-Redirect binding.
#[derive(Debug)]
pub struct AuthnRequest<'a> {
    /// Request ID (random, at least 128 bits; an XML NCName).
    pub id: &'a str,
    /// The IdP's SingleSignOnService (Redirect binding).
    pub destination: &'a url::Url,
    /// Our entity ID.
    pub issuer: &'a str,
    /// Our ACS URL.
    pub acs_url: &'a str,
    /// Unix time of issue.
    pub issued_at: i64,
}

impl AuthnRequest<'_> {
    /// The request's XML.
    pub fn xml(&self) -> String {
        format!(
            r#"<samlp:AuthnRequest xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="{BINDING_POST}"><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy Format="{NAMEID_PERSISTENT}" AllowCreate="true"/></samlp:AuthnRequest>"#,
            id = esc(self.id),
            at = instant(self.issued_at),
            dest = esc(self.destination.as_str()),
            acs = esc(self.acs_url),
            issuer = esc(self.issuer),
        )
    }

    /// Where the browser is sent: the destination with `SAMLRequest` (and `RelayState`).
    pub fn redirect_url(&self, relay_state: &str) -> url::Url {
        redirect(self.destination, &self.xml(), relay_state)
    }
}

/// An SP-initiated LogoutRequest for the HTTP-Redirect binding.
#[derive(Debug)]
pub struct LogoutRequest<'a> {
    /// Request ID.
    pub id: &'a str,
    /// The IdP's SingleLogoutService (Redirect binding).
    pub destination: &'a url::Url,
    /// Our entity ID.
    pub issuer: &'a str,
    /// The user's NameID, as the IdP sent it.
    pub name_id: &'a str,
    /// Its format.
    pub name_id_format: Option<&'a str>,
    /// The IdP's session index.
    pub session_index: Option<&'a str>,
    /// Unix time of issue.
    pub issued_at: i64,
}

impl LogoutRequest<'_> {
    /// The request's XML.
    pub fn xml(&self) -> String {
        let format = self
            .name_id_format
            .map(|f| format!(r#" Format="{}""#, esc(f)))
            .unwrap_or_default();
        let session = self
            .session_index
            .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", esc(s)))
            .unwrap_or_default();
        format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{at}" Destination="{dest}"><saml:Issuer>{issuer}</saml:Issuer><saml:NameID{format}>{name_id}</saml:NameID>{session}</samlp:LogoutRequest>"#,
            id = esc(self.id),
            at = instant(self.issued_at),
            dest = esc(self.destination.as_str()),
            issuer = esc(self.issuer),
            name_id = esc(self.name_id),
        )
    }

    /// Where the browser is sent.
    pub fn redirect_url(&self, relay_state: &str) -> url::Url {
        redirect(self.destination, &self.xml(), relay_state)
    }
}

/// Raw DEFLATE of a message, as the HTTP-Redirect binding sends it.
pub(super) fn deflate(xml: &str) -> Vec<u8> {
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    deflater
        .write_all(xml.as_bytes())
        .and_then(|()| deflater.finish())
        .unwrap_or_default()
}

fn redirect(destination: &url::Url, xml: &str, relay_state: &str) -> url::Url {
    let mut url = destination.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("SAMLRequest", &STANDARD.encode(deflate(xml)));
        if !relay_state.is_empty() {
            q.append_pair("RelayState", relay_state);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn inflate(url: &url::Url) -> String {
        let b64 = url
            .query_pairs()
            .find(|(k, _)| k == "SAMLRequest")
            .map(|(_, v)| v.into_owned())
            .expect("SAMLRequest");
        let raw = STANDARD.decode(b64).expect("base64");
        let mut out = String::new();
        flate2::read::DeflateDecoder::new(raw.as_slice())
            .read_to_string(&mut out)
            .expect("deflate");
        out
    }

    #[test]
    fn authn_request_round_trips_through_the_redirect_binding() {
        let dest = url::Url::parse("https://idp.example/sso?tenant=1").expect("url");
        let request = AuthnRequest {
            id: "_abc",
            destination: &dest,
            issuer: "https://app.example/api/auth/saml/metadata?a=1&b=2",
            acs_url: "https://app.example/api/auth/saml/acs",
            issued_at: 1_800_000_000,
        };
        let url = request.redirect_url("r1");
        assert_eq!(url.host_str(), Some("idp.example"));
        assert!(url.query_pairs().any(|(k, v)| k == "tenant" && v == "1"));
        assert!(
            url.query_pairs()
                .any(|(k, v)| k == "RelayState" && v == "r1")
        );
        let xml = inflate(&url);
        assert_eq!(xml, request.xml());
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let root = doc.root_element();
        assert_eq!(root.attribute("ID"), Some("_abc"));
        assert_eq!(root.attribute("IssueInstant"), Some("2027-01-15T08:00:00Z"));
        assert_eq!(
            root.attribute("AssertionConsumerServiceURL"),
            Some("https://app.example/api/auth/saml/acs")
        );
        assert_eq!(
            root.first_element_child().and_then(|i| i.text()),
            Some("https://app.example/api/auth/saml/metadata?a=1&b=2")
        );
    }

    #[test]
    fn logout_request_names_the_user_and_session() {
        let dest = url::Url::parse("https://idp.example/slo").expect("url");
        let xml = inflate(
            &LogoutRequest {
                id: "_l1",
                destination: &dest,
                issuer: "sp",
                name_id: "a<b",
                name_id_format: Some(NAMEID_PERSISTENT),
                session_index: Some("s1"),
                issued_at: 0,
            }
            .redirect_url(""),
        );
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let text = |name: &str| {
            doc.descendants()
                .find(|n| n.tag_name().name() == name)
                .and_then(|n| n.text())
        };
        assert_eq!(text("NameID"), Some("a<b"));
        assert_eq!(text("SessionIndex"), Some("s1"));
    }

    #[test]
    fn sp_metadata_is_well_formed_and_names_the_endpoints() {
        let xml = sp_metadata(
            "https://app.example/api/auth/saml/metadata",
            "https://app.example/api/auth/saml/acs",
            "https://app.example/api/auth/logout",
            &[],
        );
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        assert!(!xml.contains("KeyDescriptor"), "no key: no KeyDescriptor");
        assert_eq!(
            doc.root_element().attribute("entityID"),
            Some("https://app.example/api/auth/saml/metadata")
        );
        let acs = doc
            .descendants()
            .find(|n| n.tag_name().name() == "AssertionConsumerService")
            .expect("acs");
        assert_eq!(acs.attribute("Binding"), Some(BINDING_POST));
        assert_eq!(
            acs.attribute("Location"),
            Some("https://app.example/api/auth/saml/acs")
        );

        // Its signing certificates, each as a KeyDescriptor of use `signing`.
        let xml = sp_metadata(
            "https://app.example/api/auth/saml/metadata",
            "https://app.example/api/auth/saml/acs",
            "https://app.example/api/auth/logout",
            &[vec![1, 2, 3], vec![4, 5]],
        );
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let certs: Vec<&str> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "KeyDescriptor")
            .inspect(|k| assert_eq!(k.attribute("use"), Some("signing")))
            .filter_map(|k| {
                k.descendants()
                    .find(|n| n.tag_name().name() == "X509Certificate")
                    .and_then(|n| n.text())
            })
            .collect();
        assert_eq!(certs, ["AQID", "BAU="]);
    }
}
