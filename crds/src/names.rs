//! Names derived from identities, shared by the sidecar (which creates SsoUsers) and the operator.

use sha2::{Digest, Sha256};

/// Name of the `SsoUser` for `subject` at `issuer`, signed in through `provider`:
/// `<provider>-<16 hex chars of sha256(issuer NUL subject)>`.
///
/// Stable across sign-ins, DNS-1123 safe whatever the subject contains, and distinct for the same
/// subject at two providers or two issuers. `provider` is a validated provider id (lowercase
/// alphanumerics and `-`, at most 32 characters), so the result stays far below 63 characters.
pub fn sso_user_name(provider: &str, issuer: &str, subject: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(issuer.as_bytes());
    hasher.update([0u8]);
    hasher.update(subject.as_bytes());
    let digest = hasher.finalize();
    let mut name = String::with_capacity(provider.len() + 17);
    name.push_str(provider);
    name.push('-');
    for byte in &digest[..8] {
        name.push_str(&format!("{byte:02x}"));
    }
    name
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_stable_distinct_and_dns_safe() {
        let a = sso_user_name("okta", "https://acme.okta.com", "00u1abcd");
        assert_eq!(
            a,
            sso_user_name("okta", "https://acme.okta.com", "00u1abcd")
        );
        assert!(
            a.starts_with("okta-") && a.len() == "okta-".len() + 16,
            "{a}"
        );
        assert!(is_dns1123_label(&a));
        // Same subject, other issuer or provider: another user.
        assert_ne!(
            a,
            sso_user_name("okta", "https://other.okta.com", "00u1abcd")
        );
        assert_ne!(
            a,
            sso_user_name("entra", "https://acme.okta.com", "00u1abcd")
        );
        // The separator keeps issuer/subject boundaries apart.
        assert_ne!(
            sso_user_name("oidc", "https://a", "bc"),
            sso_user_name("oidc", "https://ab", "c")
        );
        // Hostile subjects still give a valid name.
        let odd = sso_user_name("auth0", "https://x", "Ünïcødé/../\0 UPPER@example.com");
        assert!(is_dns1123_label(&odd), "{odd}");
    }

    #[test]
    fn dns_label_check() {
        assert!(is_dns1123_label("okta-0123abcd"));
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad:?}");
        }
    }
}
