//! Names derived from identities, shared by the sidecar (which creates SsoUsers) and the operator.

use sha2::{Digest, Sha256};

/// Name of the `SsoUser` of SsoConfig `config` for `subject` at `issuer`, signed in through
/// `provider`: `<provider>-<16 hex chars of sha256(config NUL issuer NUL subject)>`.
///
/// Stable across sign-ins, DNS-1123 safe whatever the subject contains, and distinct for the same
/// subject at two providers, two issuers or two SsoConfigs (each app of a namespace has its own
/// SsoUser of a person, with its own role). `provider` is a validated provider id (lowercase
/// alphanumerics and `-`, at most 32 characters), so the result stays far below 63 characters.
pub fn sso_user_name(config: &str, provider: &str, issuer: &str, subject: &str) -> String {
    named(provider, &digest(&[config, issuer, subject]))
}

/// The name SsoUsers were given before names included the SsoConfig (Gatehouse 0.1):
/// `<provider>-<16 hex chars of sha256(issuer NUL subject)>`. An SsoUser of that name still
/// serves its config (`spec.config`): sign-ins find it when the current name is not taken, so an
/// upgrade ends no session and needs no migration. An issuer is a URL (`scheme://`) and a config
/// name has no `:`, so no current name can equal a legacy one.
pub fn legacy_sso_user_name(provider: &str, issuer: &str, subject: &str) -> String {
    named(provider, &identity_digest(issuer, subject))
}

/// The person behind a sign-in, whatever the app: 16 hex chars of sha256(issuer NUL subject),
/// the value of the label [`crate::consts::LABEL_IDENTITY`] on every SsoUser of that person
/// (one per SsoConfig), so all of them can be listed or deleted at once.
pub fn identity_label(issuer: &str, subject: &str) -> String {
    hex16(&identity_digest(issuer, subject))
}

fn identity_digest(issuer: &str, subject: &str) -> [u8; 32] {
    digest(&[issuer, subject])
}

/// SHA-256 of `parts` joined by NUL bytes (no part of a name holds one but a subject, which
/// comes last).
fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

fn named(provider: &str, digest: &[u8]) -> String {
    let mut name = String::with_capacity(provider.len() + 17);
    name.push_str(provider);
    name.push('-');
    name.push_str(&hex16(digest));
    name
}

fn hex16(digest: &[u8]) -> String {
    let mut out = String::with_capacity(16);
    for byte in &digest[..8] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Whether `name` is a valid DNS-1123 label (lowercase alphanumerics and `-`, 1–63 characters,
/// starting and ending with an alphanumeric).
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Whether `name` is a valid DNS-1123 subdomain (an object name such as an SsoConfig's):
/// dot-separated labels, 1–253 characters in all.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns1123_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_stable_distinct_and_dns_safe() {
        let a = sso_user_name("portal", "okta", "https://acme.okta.com", "00u1abcd");
        assert_eq!(
            a,
            sso_user_name("portal", "okta", "https://acme.okta.com", "00u1abcd")
        );
        assert!(
            a.starts_with("okta-") && a.len() == "okta-".len() + 16,
            "{a}"
        );
        assert!(is_dns1123_label(&a));
        // Same subject, other issuer, provider or app: another user.
        assert_ne!(
            a,
            sso_user_name("portal", "okta", "https://other.okta.com", "00u1abcd")
        );
        assert_ne!(
            a,
            sso_user_name("portal", "entra", "https://acme.okta.com", "00u1abcd")
        );
        assert_ne!(
            a,
            sso_user_name("admin-ui", "okta", "https://acme.okta.com", "00u1abcd")
        );
        // Two OIDC providers of one config whose users share a `sub`: two users.
        assert_ne!(
            sso_user_name("portal", "partner", "https://login.partner.example", "42"),
            sso_user_name("portal", "workforce", "https://sso.acme.example", "42")
        );
        assert_ne!(
            sso_user_name("portal", "oidc", "https://a.example", "42"),
            sso_user_name("portal", "oidc", "https://b.example", "42")
        );
        // The separators keep the parts' boundaries apart.
        assert_ne!(
            sso_user_name("p", "oidc", "https://a", "bc"),
            sso_user_name("p", "oidc", "https://ab", "c")
        );
        assert_ne!(
            sso_user_name("ab", "oidc", "https://x", "y"),
            sso_user_name("a", "oidc", "b\0https://x", "y")
        );
        // Hostile subjects still give a valid name.
        let odd = sso_user_name(
            "portal",
            "auth0",
            "https://x",
            "Ünïcødé/../\0 UPPER@example.com",
        );
        assert!(is_dns1123_label(&odd), "{odd}");
    }

    #[test]
    fn legacy_names_are_those_of_gatehouse_0_1_and_never_a_current_name() {
        // The name Gatehouse 0.1 gave this identity: existing SsoUsers carry it.
        let legacy = legacy_sso_user_name("okta", "https://acme.okta.com", "00u1abcd");
        assert_eq!(legacy, "okta-92b37e3f8037e34b");
        assert!(is_dns1123_label(&legacy));
        assert_ne!(
            legacy,
            sso_user_name("portal", "okta", "https://acme.okta.com", "00u1abcd")
        );
        // The identity label is the same for every app of the person, and differs per person.
        let label = identity_label("https://acme.okta.com", "00u1abcd");
        assert_eq!(label.len(), 16);
        assert_ne!(label, identity_label("https://acme.okta.com", "00u1abce"));
    }

    #[test]
    fn dns_subdomain_check() {
        assert!(is_dns1123_subdomain("portal") && is_dns1123_subdomain("admin.portal-2"));
        for bad in ["", "Portal", "a..b", ".a", "a.", &"a".repeat(254)] {
            assert!(!is_dns1123_subdomain(bad), "{bad:?}");
        }
    }

    #[test]
    fn dns_label_check() {
        assert!(is_dns1123_label("okta-0123abcd"));
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad:?}");
        }
    }
}
