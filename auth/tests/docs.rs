//! docs/security.md's cookie bullet says what the code sets: every cookie name under https, and
//! the `SameSite` each kind of cookie gets. A cookie renamed, or a `SameSite` changed, in the code
//! fails here until the page says so too.

use gatehouse_auth::cookie::CookieNames;

fn security_page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The `SameSite=…` attribute of a `Set-Cookie` value.
fn same_site(set_cookie: &http::HeaderValue) -> String {
    let line = set_cookie.to_str().expect("ascii");
    line.split("; ")
        .find(|a| a.starts_with("SameSite="))
        .unwrap_or_else(|| panic!("no SameSite in {line}"))
        .to_owned()
}

#[test]
fn the_security_page_names_every_cookie_and_the_same_site_the_code_sets() {
    let page = security_page();
    let start = page
        .find("- Cookies `")
        .expect("security.md has the cookie bullet (`- Cookies …`)");
    let bullet = &page[start..];
    let bullet = &bullet[..bullet[2..].find("\n- ").map_or(bullet.len(), |n| n + 2)];
    let https = CookieNames::new(true);
    for name in [
        https.session.clone(),
        https.refresh.clone(),
        https.logout_hint.clone(),
        format!("{}<id>", https.attempt_prefix),
    ] {
        assert!(
            bullet.contains(&format!("`{name}`")),
            "security.md's cookie bullet does not name `{name}`:\n{bullet}"
        );
    }
    let plain = CookieNames::new(false);
    let everyday = same_site(&https.set(&https.session, "v", 60));
    let cross_site = same_site(&https.set_cross_site("__Host-gatehouse-attempt-x", "v", 60));
    let cross_site_plain = same_site(&plain.set_cross_site("gatehouse-attempt-x", "v", 60));
    assert_eq!(everyday, "SameSite=Lax");
    assert_ne!(
        everyday, cross_site,
        "the SAML attempt cookie must ride the IdP's cross-site POST"
    );
    for attribute in [&everyday, &cross_site, &cross_site_plain] {
        assert!(
            bullet.contains(&format!("`{attribute}`")),
            "security.md's cookie bullet does not say `{attribute}`:\n{bullet}"
        );
    }
    assert!(bullet.contains("SAML"), "the exception is SAML's: {bullet}");
}
