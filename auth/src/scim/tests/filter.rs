use gatehouse_crds::ScimName;

use super::*;

fn users() -> Vec<ScimUser> {
    let mut okta = parse_user(&okta_create()).expect("okta").0;
    okta.emails.push(email("home@example.com", "home"));
    okta.display_name = Some("Test User".into());
    okta.name = Some(ScimName {
        given_name: Some("Test".into()),
        family_name: Some("User".into()),
        ..ScimName::default()
    });
    vec![
        user("okta-1", okta, true),
        user("entra-1", entra_profile(), false),
    ]
}

fn matching(filter: &str) -> Vec<String> {
    let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    users()
        .into_iter()
        .filter(|u| f.matches(u))
        .map(|u| u.id)
        .collect()
}

#[test]
fn the_filters_okta_and_entra_send() {
    // Okta: does the user exist?
    assert_eq!(
        matching(r#"userName eq "test.user@okta.local""#),
        ["okta-1"]
    );
    // Entra ID: the matching attribute, in its default and its other spellings.
    assert_eq!(
        matching(r#"userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1""#),
        ["entra-1"]
    );
    assert_eq!(
        matching(r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#),
        ["entra-1"]
    );
    assert_eq!(
        matching(r#"emails[type eq "work"].value eq "TEST.USER@okta.local""#),
        ["okta-1"]
    );
    assert!(matching(r#"emails[type eq "work"].value eq "home@example.com""#).is_empty());
}

#[test]
fn user_name_compares_without_case_external_id_and_id_with_case() {
    assert_eq!(
        matching(r#"userName eq "TEST.User@OKTA.local""#),
        ["okta-1"]
    );
    assert!(matching(r#"externalId eq "00UJL29U0LE5T6AJ10H7""#).is_empty());
    assert_eq!(
        matching(r#"externalId eq "00ujl29u0le5T6Aj10h7""#),
        ["okta-1"]
    );
    assert_eq!(matching(r#"id eq "okta-1""#), ["okta-1"]);
    assert!(matching(r#"id eq "OKTA-1""#).is_empty());
}

#[test]
fn every_supported_attribute() {
    assert_eq!(
        matching(r#"emails.value eq "home@example.com""#),
        ["okta-1"]
    );
    assert_eq!(matching("active eq false"), ["entra-1"]);
    assert_eq!(matching("active eq true"), ["okta-1"]);
    assert_eq!(matching(r#"displayName eq "test user""#), ["okta-1"]);
    assert_eq!(matching(r#"name.givenName eq "givenName""#), ["entra-1"]);
    assert_eq!(matching(r#"name.familyName eq "USER""#), ["okta-1"]);
    assert_eq!(
        matching(r#"emails[type eq "home" and value eq "home@example.com"]"#),
        ["okta-1"]
    );
    assert_eq!(
        matching(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "test.user@okta.local""#
        ),
        ["okta-1"]
    );
}

#[test]
fn and_in_any_case_with_parentheses() {
    assert_eq!(
        matching(r#"userName eq "test.user@okta.local" AND active eq true"#),
        ["okta-1"]
    );
    assert!(matching(r#"userName eq "test.user@okta.local" and active eq false"#).is_empty());
    assert_eq!(
        matching(
            r#"(userName eq "test.user@okta.local") and (externalId eq "00ujl29u0le5T6Aj10h7" and active EQ true)"#
        ),
        ["okta-1"]
    );
}

#[test]
fn user_name_and_external_id_pinned_by_a_conjunct() {
    let f = parse_filter(r#"active eq true and userName eq "Jo" and externalId eq "X""#)
        .expect("filter");
    assert_eq!(f.user_name(), Some("Jo"));
    assert_eq!(f.external_id(), Some("X"));
    let f = parse_filter("active eq true").expect("filter");
    assert_eq!((f.user_name(), f.external_id()), (None, None));
}

fn refused(filter: &str) -> ScimError {
    let e = parse_filter(filter).expect_err(filter);
    assert_eq!(
        (e.status, e.scim_type),
        (400, Some(ScimType::InvalidFilter)),
        "{filter}"
    );
    e
}

#[test]
fn unsupported_operators_are_refused_by_name() {
    for (filter, op) in [
        (r#"userName eq "a" or userName eq "b""#, "`or`"),
        (r#"not (userName eq "a")"#, "`not`"),
        (r#"userName co "a""#, "`co`"),
        (r#"userName sw "a""#, "`sw`"),
        (r#"userName Ne "a""#, "`ne`"),
        ("title pr", "`pr`"),
        (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, "`gt`"),
    ] {
        let e = refused(filter);
        assert!(e.detail.contains(op), "{filter}: {e}");
    }
}

#[test]
fn unsupported_attributes_are_refused_by_name() {
    for (filter, attr) in [
        (r#"title eq "x""#, "title"),
        (r#"phoneNumbers.value eq "1""#, "phoneNumbers.value"),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#,
            "department",
        ),
        (
            r#"urn:example:custom:thing eq "x""#,
            "urn:example:custom:thing",
        ),
        (r#"emails[foo eq "x"]"#, "foo"),
        (r#"addresses[type eq "work"].locality eq "x""#, "addresses"),
    ] {
        let e = refused(filter);
        assert!(e.detail.contains(attr), "{filter}: {e}");
    }
}

#[test]
fn malformed_filters() {
    for filter in [
        "",
        "userName",
        "userName eq",
        r#"userName eq "unterminated"#,
        r#"userName eq "a" and"#,
        r#"(userName eq "a""#,
        r#"userName eq "a")"#,
        r#"emails[type eq "work""#,
        r#"emails[type eq "work"] eq "x""#,
        "userName eq 42",
        "userName eq null",
        r#"userName eq "a" userName eq "b""#,
        "userName == \"a\"",
        r#"active eq "maybe""#,
        r#"userName eq true"#,
        r#"name.givenName.x eq "a""#,
    ] {
        refused(filter);
    }
}

#[test]
fn length_and_depth_are_bounded() {
    let long = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LEN));
    assert!(refused(&long).detail.contains("1024"));
    let deep = |n: usize| format!("{}active eq true{}", "(".repeat(n), ")".repeat(n));
    assert!(parse_filter(&deep(8)).is_ok());
    assert!(refused(&deep(9)).detail.contains("nested"));
    assert!(
        refused(&"(".repeat(MAX_FILTER_LEN))
            .detail
            .contains("nested")
    );
}
