//! SAML IdP metadata, read the same way by the operator (a metadata Secret must name an SSO
//! service and a signing certificate, or the SsoConfig is `Valid=False`) and by the sidecar
//! (which then verifies signatures with those certificates).
//!
//! Parsing refuses a DTD (no entity expansion, no external entities) and reads only what sign-in
//! needs: the IdP's entity ID, its HTTP-Redirect SingleSignOnService and SingleLogoutService, and
//! every signing certificate (several during a key rollover).

/// SAML 2.0 metadata namespace.
pub const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// XML-DSig namespace.
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// HTTP-Redirect binding.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// HTTP-POST binding.
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
/// Largest metadata document read (aggregates of many IdPs are not what an SsoConfig names).
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// What sign-in needs from an IdP's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    /// The IdP's entity ID: the expected `Issuer` of responses and assertions.
    pub entity_id: String,
    /// SingleSignOnService location for the HTTP-Redirect binding.
    pub sso_redirect: url::Url,
    /// SingleLogoutService location for the HTTP-Redirect binding, when offered.
    pub slo_redirect: Option<url::Url>,
    /// DER certificates whose keys may sign responses (`use="signing"` or no `use`).
    pub signing_certs: Vec<Vec<u8>>,
}

/// Why metadata is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// Larger than [`MAX_METADATA_BYTES`].
    TooLarge,
    /// Holds a DTD (`<!DOCTYPE`): refused before parsing.
    Doctype,
    /// Not well-formed XML.
    Xml(String),
    /// No EntityDescriptor with an IDPSSODescriptor.
    NoIdp,
    /// The EntityDescriptor has no `entityID`.
    NoEntityId,
    /// No SingleSignOnService with the HTTP-Redirect binding and an absolute URL.
    NoRedirectSso,
    /// No signing certificate.
    NoSigningCert,
    /// A certificate is not base64.
    BadCertificate,
}

impl std::fmt::Display for MetadataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetadataError::TooLarge => "the IdP metadata is larger than 1 MiB",
            MetadataError::Doctype => {
                "the IdP metadata holds a DOCTYPE, which is refused (entity expansion)"
            }
            MetadataError::Xml(_) => "the IdP metadata is not well-formed XML",
            MetadataError::NoIdp => {
                "the IdP metadata has no EntityDescriptor with an IDPSSODescriptor"
            }
            MetadataError::NoEntityId => "the IdP metadata's EntityDescriptor has no entityID",
            MetadataError::NoRedirectSso => {
                "the IdP metadata names no SingleSignOnService with the HTTP-Redirect binding"
            }
            MetadataError::NoSigningCert => {
                "the IdP metadata names no signing certificate (KeyDescriptor with an X509Certificate): responses could not be verified"
            }
            MetadataError::BadCertificate => {
                "an X509Certificate in the IdP metadata is not base64"
            }
        })?;
        if let MetadataError::Xml(detail) = self {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for MetadataError {}

/// Whether `text` declares a DTD: searched before any parser sees it.
pub fn has_doctype(text: &str) -> bool {
    text.as_bytes()
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"<!doctype"))
        || text.contains("<!ENTITY")
}

/// Reads IdP metadata: an `EntityDescriptor`, or an `EntitiesDescriptor` whose first IdP is used.
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, MetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge);
    }
    if has_doctype(xml) {
        return Err(MetadataError::Doctype);
    }
    let doc = roxmltree::Document::parse(xml).map_err(|e| MetadataError::Xml(e.to_string()))?;
    let is = |n: &roxmltree::Node<'_, '_>, ns: &str, name: &str| {
        n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
    };
    let entity = doc
        .descendants()
        .filter(|n| is(n, NS_METADATA, "EntityDescriptor"))
        .find(|e| {
            e.children()
                .any(|c| is(&c, NS_METADATA, "IDPSSODescriptor"))
        })
        .ok_or(MetadataError::NoIdp)?;
    let entity_id = entity
        .attribute("entityID")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or(MetadataError::NoEntityId)?
        .to_owned();
    let idp: Vec<_> = entity
        .children()
        .filter(|c| is(c, NS_METADATA, "IDPSSODescriptor"))
        .collect();
    let service = |name: &str| {
        idp.iter()
            .flat_map(|d| d.children())
            .filter(|s| is(s, NS_METADATA, name))
            .filter(|s| s.attribute("Binding") == Some(BINDING_REDIRECT))
            .find_map(|s| {
                let url = url::Url::parse(s.attribute("Location")?.trim()).ok()?;
                matches!(url.scheme(), "https" | "http").then_some(url)
            })
    };
    let sso_redirect = service("SingleSignOnService").ok_or(MetadataError::NoRedirectSso)?;
    let slo_redirect = service("SingleLogoutService");

    let mut signing_certs = Vec::new();
    for key in idp
        .iter()
        .flat_map(|d| d.children())
        .filter(|k| is(k, NS_METADATA, "KeyDescriptor"))
        .filter(|k| matches!(k.attribute("use"), None | Some("signing")))
    {
        for cert in key
            .descendants()
            .filter(|c| is(c, NS_DSIG, "X509Certificate"))
        {
            let text: String = cert
                .descendants()
                .filter(|t| t.is_text())
                .filter_map(|t| t.text())
                .flat_map(str::chars)
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            use base64::Engine as _;
            let der = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| MetadataError::BadCertificate)?;
            if der.is_empty() {
                return Err(MetadataError::BadCertificate);
            }
            if !signing_certs.contains(&der) {
                signing_certs.push(der);
            }
        }
    }
    if signing_certs.is_empty() {
        return Err(MetadataError::NoSigningCert);
    }
    Ok(IdpMetadata {
        entity_id,
        sso_redirect,
        slo_redirect,
        signing_certs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(keys: &str, services: &str) -> String {
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example/metadata">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {keys}
    {services}
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
        )
    }

    const KEY_A: &str = r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
      QUJD
    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#;
    const KEY_B: &str = r#"<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>REVG</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#;
    const KEY_ENC: &str = r#"<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>R0hJ</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#;
    const SSO: &str = r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/post"/>
      <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/>"#;
    const SLO: &str = r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/slo"/>"#;

    #[test]
    fn reads_entity_services_and_every_signing_certificate() {
        let m = parse_idp_metadata(&metadata(
            &format!("{KEY_A}{KEY_B}{KEY_ENC}"),
            &format!("{SLO}{SSO}"),
        ))
        .expect("valid");
        assert_eq!(m.entity_id, "https://idp.example/metadata");
        assert_eq!(m.sso_redirect.as_str(), "https://idp.example/sso");
        assert_eq!(
            m.slo_redirect.as_ref().map(url::Url::as_str),
            Some("https://idp.example/slo")
        );
        // Both signing keys (rotation), not the encryption key.
        assert_eq!(m.signing_certs, vec![b"ABC".to_vec(), b"DEF".to_vec()]);
        let no_slo = parse_idp_metadata(&metadata(KEY_A, SSO)).expect("valid");
        assert_eq!(no_slo.slo_redirect, None);
    }

    #[test]
    fn unusable_metadata_says_what_is_missing() {
        assert_eq!(
            parse_idp_metadata(&metadata(KEY_ENC, SSO)),
            Err(MetadataError::NoSigningCert)
        );
        assert_eq!(
            parse_idp_metadata(&metadata(KEY_A, SLO)),
            Err(MetadataError::NoRedirectSso)
        );
        assert_eq!(parse_idp_metadata("<x/>"), Err(MetadataError::NoIdp));
        assert!(matches!(
            parse_idp_metadata("<md:EntityDescriptor"),
            Err(MetadataError::Xml(_))
        ));
        let bad_cert = KEY_A.replace("QUJD", "not base64!");
        assert_eq!(
            parse_idp_metadata(&metadata(&bad_cert, SSO)),
            Err(MetadataError::BadCertificate)
        );
        let no_id = metadata(KEY_A, SSO).replace(r#"entityID="https://idp.example/metadata""#, "");
        assert_eq!(parse_idp_metadata(&no_id), Err(MetadataError::NoEntityId));
    }

    #[test]
    fn a_doctype_is_refused_before_parsing() {
        let xxe = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
            metadata(KEY_A, SSO).trim_start_matches("<?xml version=\"1.0\"?>")
        );
        assert_eq!(parse_idp_metadata(&xxe), Err(MetadataError::Doctype));
        assert!(has_doctype("<!doctype html>"));
        assert!(!has_doctype(&metadata(KEY_A, SSO)));
    }
}
