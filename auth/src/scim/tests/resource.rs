use gatehouse_crds::{ScimAddress, ScimEnterprise, ScimManager, ScimName};

use super::*;

#[test]
fn okta_create_keeps_the_profile_and_drops_password_and_groups() {
    let (profile, active) = parse_user(&okta_create()).expect("accepted");
    assert_eq!(active, Some(true));
    assert_eq!(profile.user_name, "test.user@okta.local");
    assert_eq!(profile.external_id.as_deref(), Some("00ujl29u0le5T6Aj10h7"));
    assert_eq!(profile.locale.as_deref(), Some("en-US"));
    let name = profile.name.clone().expect("name");
    assert_eq!(name.given_name.as_deref(), Some("Test"));
    assert_eq!(profile.emails[0].primary, Some(true));
    let rendered = user_resource(&user("u1", profile, true), "https://x", &Projection::all());
    assert!(rendered.get("password").is_none() && rendered.get("groups").is_none());
}

#[test]
fn entra_create_reads_the_extension_from_its_urn_and_ignores_roles_and_meta() {
    let (profile, active) = parse_user(&entra_create()).expect("accepted");
    assert_eq!(active, Some(true));
    let ext = profile.enterprise.clone().expect("extension");
    assert_eq!(ext.department.as_deref(), Some("Sales"));
    assert_eq!(ext.employee_number.as_deref(), Some("1234"));
    assert_eq!(
        profile.name.and_then(|n| n.formatted).as_deref(),
        Some("givenName familyName")
    );
}

#[test]
fn booleans_may_be_strings_in_any_case() {
    let mut body = okta_create();
    body["active"] = json!("False");
    body["emails"][0]["primary"] = json!("TRUE");
    let (profile, active) = parse_user(&body).expect("accepted");
    assert_eq!(active, Some(false));
    assert_eq!(profile.emails[0].primary, Some(true));
    body["active"] = json!("nope");
    let e = parse_user(&body).expect_err("not a boolean");
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("active"), "{e}");
}

#[test]
fn attribute_names_compare_without_case_and_unknown_extensions_are_dropped() {
    let body = json!({
        "schemas": [USER_SCHEMA.to_uppercase()],
        "UserName": "jo",
        "DISPLAYNAME": "Jo",
        "urn:ietf:params:scim:schemas:extension:custom:2.0:User": { "x": 1 },
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops",
        "ims": [{ "value": "jo" }],
        "x509Certificates": [{ "value": "MII" }]
    });
    let (profile, active) = parse_user(&body).expect("accepted");
    assert_eq!(active, None);
    assert_eq!(profile.user_name, "jo");
    assert_eq!(profile.display_name.as_deref(), Some("Jo"));
    assert_eq!(
        profile.enterprise.and_then(|e| e.department).as_deref(),
        Some("Ops")
    );
}

#[test]
fn user_name_is_required_and_not_blank() {
    for bad in [json!(null), json!(""), json!("   ")] {
        let mut body = okta_create();
        body["userName"] = bad;
        let e = parse_user(&body).expect_err("refused");
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        assert!(e.detail.contains("userName"), "{e}");
    }
    let mut body = okta_create();
    body.as_object_mut().expect("object").remove("userName");
    assert!(parse_user(&body).is_err());
}

#[test]
fn schemas_must_list_the_user_schema_and_the_body_must_be_an_object() {
    let mut body = okta_create();
    body["schemas"] = json!([ENTERPRISE_SCHEMA]);
    assert_eq!(
        parse_user(&body).expect_err("refused").scim_type,
        Some(ScimType::InvalidSyntax)
    );
    body.as_object_mut().expect("object").remove("schemas");
    assert_eq!(
        parse_user(&body).expect_err("refused").scim_type,
        Some(ScimType::InvalidSyntax)
    );
    for not_object in [json!([]), json!("x"), json!(null)] {
        assert_eq!(
            parse_user(&not_object).expect_err("refused").scim_type,
            Some(ScimType::InvalidSyntax)
        );
    }
}

#[test]
fn values_beyond_the_crd_bounds_are_refused_naming_the_attribute() {
    let cases = [
        ("userName", json!("u".repeat(257))),
        ("externalId", json!("x".repeat(1025))),
        ("displayName", json!("d".repeat(257))),
        ("locale", json!("l".repeat(65))),
    ];
    for (attr, value) in cases {
        let mut body = okta_create();
        body[attr] = value;
        let e = parse_user(&body).expect_err(attr);
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(e.detail.contains(attr), "{attr}: {e}");
    }
    let mut body = okta_create();
    body["name"]["givenName"] = json!("g".repeat(257));
    let e = parse_user(&body).expect_err("long given name");
    assert!(e.detail.contains("name.givenName"), "{e}");
    let mut body = okta_create();
    body["emails"] = json!(
        (0..17)
            .map(|n| json!({"value": format!("{n}@x")}))
            .collect::<Vec<_>>()
    );
    let e = parse_user(&body).expect_err("17 emails");
    assert!(
        e.detail.contains("emails") && e.detail.contains("16"),
        "{e}"
    );
    let mut body = okta_create();
    body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"manager": {"value": "m".repeat(257)}});
    let e = parse_user(&body).expect_err("long manager");
    assert!(e.detail.contains("manager.value"), "{e}");
    // Exactly at the bound is fine, in characters, not bytes.
    let mut body = okta_create();
    body["userName"] = json!("ü".repeat(256));
    assert!(parse_user(&body).is_ok());
}

#[test]
fn wrong_types_are_invalid_values() {
    let mut body = okta_create();
    body["name"] = json!("Test User");
    let e = parse_user(&body).expect_err("name must be an object");
    assert!(e.detail.contains("name"), "{e}");
    let mut body = okta_create();
    body["displayName"] = json!({"x": 1});
    assert!(
        parse_user(&body)
            .expect_err("object")
            .detail
            .contains("displayName")
    );
}

fn full_profile() -> ScimProfile {
    ScimProfile {
        user_name: "bjensen@example.com".into(),
        external_id: Some("00u1".into()),
        name: Some(ScimName {
            formatted: Some("Ms. Barbara J Jensen III".into()),
            family_name: Some("Jensen".into()),
            given_name: Some("Barbara".into()),
            middle_name: Some("Jane".into()),
            honorific_prefix: Some("Ms.".into()),
            honorific_suffix: Some("III".into()),
        }),
        display_name: Some("Babs Jensen".into()),
        nick_name: Some("Babs".into()),
        title: Some("Tour Guide".into()),
        user_type: Some("Employee".into()),
        preferred_language: Some("en-US".into()),
        locale: Some("en-US".into()),
        timezone: Some("America/Los_Angeles".into()),
        emails: vec![email("bjensen@example.com", "work")],
        phone_numbers: vec![ScimValue {
            value: Some("555-555-5555".into()),
            kind: Some("work".into()),
            primary: Some(true),
            display: Some("+1 555".into()),
        }],
        addresses: vec![ScimAddress {
            formatted: Some("100 Universal City Plaza".into()),
            street_address: Some("100 Universal City Plaza".into()),
            locality: Some("Hollywood".into()),
            region: Some("CA".into()),
            postal_code: Some("91608".into()),
            country: Some("USA".into()),
            kind: Some("work".into()),
            primary: Some(true),
        }],
        enterprise: Some(ScimEnterprise {
            employee_number: Some("701984".into()),
            cost_center: Some("4130".into()),
            organization: Some("Universal Studios".into()),
            division: Some("Theme Park".into()),
            department: Some("Tour Operations".into()),
            manager: Some(ScimManager {
                value: Some("26118915-6090-4610-87e4-49d8ca9f808d".into()),
                display_name: Some("John Smith".into()),
            }),
        }),
    }
}

#[test]
fn the_resource_renders_every_kept_attribute_meta_and_the_extension() {
    let mut u = user("bjensen", full_profile(), false);
    u.meta = Meta {
        created: Some("2024-01-01T00:00:00Z".into()),
        last_modified: Some("2024-01-02T00:00:00Z".into()),
        version: Some("4711".into()),
    };
    let r = user_resource(
        &u,
        "https://app.example/api/auth/scim/v2/",
        &Projection::all(),
    );
    assert_eq!(r["schemas"], json!([USER_SCHEMA, ENTERPRISE_SCHEMA]));
    assert_eq!(r["id"], "bjensen");
    assert_eq!(r["active"], false);
    assert_eq!(r["name"]["honorificSuffix"], "III");
    assert_eq!(r["phoneNumbers"][0]["display"], "+1 555");
    assert_eq!(r["addresses"][0]["postalCode"], "91608");
    assert_eq!(r[ENTERPRISE_SCHEMA]["manager"]["displayName"], "John Smith");
    assert!(r.get("enterprise").is_none());
    assert_eq!(
        r["meta"],
        json!({
            "resourceType": "User",
            "created": "2024-01-01T00:00:00Z",
            "lastModified": "2024-01-02T00:00:00Z",
            "version": "W/\"4711\"",
            "location": "https://app.example/api/auth/scim/v2/Users/bjensen",
        })
    );
    // Rendered, then read back as a PUT: the same profile.
    let (again, active) = parse_user(&r).expect("round-trips");
    assert_eq!(again, full_profile());
    assert_eq!(active, Some(false));
}

#[test]
fn without_extension_values_the_schemas_list_only_the_core_schema() {
    let mut profile = full_profile();
    profile.enterprise = Some(ScimEnterprise::default());
    let r = user_resource(&user("b", profile, true), "https://x", &Projection::all());
    assert_eq!(r["schemas"], json!([USER_SCHEMA]));
    assert!(r.get(ENTERPRISE_SCHEMA).is_none());
}

fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let p = Projection::parse(attributes, excluded).expect("projection");
    user_resource(&user("b", full_profile(), true), "https://x", &p)
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn attributes_keep_only_those_named_and_always_id_schemas_and_resource_type() {
    let r = project(Some("userName, NAME.givenName,emails.value"), None);
    assert_eq!(
        keys(&r),
        ["emails", "id", "meta", "name", "schemas", "userName"]
    );
    assert_eq!(r["name"], json!({"givenName": "Barbara"}));
    assert_eq!(r["emails"], json!([{"value": "bjensen@example.com"}]));
    assert_eq!(r["meta"], json!({"resourceType": "User"}));
    assert_eq!(r["schemas"], json!([USER_SCHEMA]));

    let r = project(
        Some(
            "urn:ietf:params:scim:schemas:core:2.0:User:displayName,meta,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ),
        None,
    );
    assert_eq!(
        keys(&r),
        ["displayName", "id", "meta", "schemas", ENTERPRISE_SCHEMA]
    );
    assert_eq!(
        r[ENTERPRISE_SCHEMA],
        json!({"department": "Tour Operations"})
    );
    assert_eq!(r["schemas"], json!([USER_SCHEMA, ENTERPRISE_SCHEMA]));
    assert!(r["meta"].get("location").is_some());

    let r = project(Some(ENTERPRISE_SCHEMA), None);
    assert_eq!(r[ENTERPRISE_SCHEMA]["employeeNumber"], "701984");
    assert!(r.get("userName").is_none());
}

#[test]
fn excluded_attributes_drop_those_named_but_never_id_schemas_or_resource_type() {
    let r = project(None, Some("emails,name.familyName,meta,id,schemas,active"));
    assert!(r.get("emails").is_none() && r.get("active").is_none());
    assert!(r["name"].get("familyName").is_none());
    assert_eq!(r["name"]["givenName"], "Barbara");
    assert_eq!(r["meta"], json!({"resourceType": "User"}));
    assert_eq!(r["id"], "b");
    assert!(r.get("schemas").is_some());
    let r = project(None, Some(ENTERPRISE_SCHEMA));
    assert!(r.get(ENTERPRISE_SCHEMA).is_none());
    assert_eq!(r["schemas"], json!([USER_SCHEMA]));
    let r = project(None, Some("addresses.region,unknownThing"));
    assert!(r["addresses"][0].get("region").is_none());
    assert_eq!(r["addresses"][0]["locality"], "Hollywood");
}

#[test]
fn projection_refuses_both_lists_at_once_and_overlong_lists() {
    let e = Projection::parse(Some("userName"), Some("emails")).expect_err("both");
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    let long = "a,".repeat(MAX_FILTER_LEN);
    assert!(Projection::parse(Some(&long), None).is_err());
    assert_eq!(
        Projection::parse(Some(""), Some(" ")).expect("blank"),
        Projection::all()
    );
}
