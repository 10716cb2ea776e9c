use std::collections::BTreeSet;

use gatehouse_crds::{ScimAddress, ScimEnterprise, ScimManager, ScimName};

use super::*;

const BASE: &str = "https://app.example/api/auth/scim/v2";

fn names(attrs: &Value) -> BTreeSet<String> {
    attrs
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| a["name"].as_str().expect("name").to_owned())
        .collect()
}

fn keys_of<T: serde::Serialize>(v: &T) -> BTreeSet<String> {
    serde_json::to_value(v)
        .expect("json")
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect()
}

fn attr<'a>(attrs: &'a Value, name: &str) -> &'a Value {
    attrs
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} published"))
}

/// A ScimProfile with every field set, so its JSON has every key.
fn every_field() -> ScimProfile {
    let s = || Some("x".to_owned());
    ScimProfile {
        user_name: "u".into(),
        external_id: s(),
        name: Some(ScimName {
            formatted: s(),
            family_name: s(),
            given_name: s(),
            middle_name: s(),
            honorific_prefix: s(),
            honorific_suffix: s(),
        }),
        display_name: s(),
        nick_name: s(),
        title: s(),
        user_type: s(),
        preferred_language: s(),
        locale: s(),
        timezone: s(),
        emails: vec![ScimValue {
            value: s(),
            kind: s(),
            primary: Some(true),
            display: s(),
        }],
        phone_numbers: vec![],
        addresses: vec![ScimAddress {
            formatted: s(),
            street_address: s(),
            locality: s(),
            region: s(),
            postal_code: s(),
            country: s(),
            kind: s(),
            primary: Some(true),
        }],
        enterprise: Some(ScimEnterprise {
            employee_number: s(),
            cost_center: s(),
            organization: s(),
            division: s(),
            department: s(),
            manager: Some(ScimManager {
                value: s(),
                display_name: s(),
            }),
        }),
    }
}

#[test]
fn the_user_schema_publishes_exactly_what_scim_profile_keeps_and_active() {
    let user = schema(BASE, USER_SCHEMA).expect("user schema");
    let attrs = &user["attributes"];
    let mut kept = keys_of(&every_field());
    kept.remove("enterprise");
    kept.insert("phoneNumbers".into());
    kept.insert("active".into());
    assert_eq!(names(attrs), kept);
    let p = every_field();
    assert_eq!(
        names(&attr(attrs, "name")["subAttributes"]),
        keys_of(p.name.as_ref().expect("name"))
    );
    assert_eq!(
        names(&attr(attrs, "emails")["subAttributes"]),
        keys_of(&p.emails[0])
    );
    assert_eq!(
        names(&attr(attrs, "phoneNumbers")["subAttributes"]),
        keys_of(&p.emails[0])
    );
    assert_eq!(
        names(&attr(attrs, "addresses")["subAttributes"]),
        keys_of(&p.addresses[0])
    );
    let ext = schema(BASE, ENTERPRISE_SCHEMA).expect("extension");
    let e = p.enterprise.as_ref().expect("ext");
    assert_eq!(names(&ext["attributes"]), keys_of(e));
    assert_eq!(
        names(&attr(&ext["attributes"], "manager")["subAttributes"]),
        keys_of(e.manager.as_ref().expect("manager"))
    );
}

#[test]
fn attribute_characteristics() {
    let user = schema(BASE, USER_SCHEMA).expect("user schema");
    let attrs = &user["attributes"];
    let user_name = attr(attrs, "userName");
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    assert_eq!(user_name["type"], "string");
    assert_eq!(attr(attrs, "externalId")["caseExact"], true);
    assert_eq!(attr(attrs, "active")["type"], "boolean");
    let emails = attr(attrs, "emails");
    assert_eq!(
        (emails["multiValued"].clone(), emails["type"].clone()),
        (json!(true), json!("complex"))
    );
    assert_eq!(attr(&emails["subAttributes"], "primary")["type"], "boolean");
    assert_eq!(
        attr(&emails["subAttributes"], "type")["canonicalValues"],
        json!(["work", "home", "other"])
    );
    for a in attrs.as_array().expect("list") {
        assert_eq!(a["mutability"], "readWrite", "{a}");
        assert_eq!(a["returned"], "default", "{a}");
    }
    assert_eq!(
        user["meta"]["location"],
        format!("{BASE}/Schemas/{USER_SCHEMA}")
    );
}

#[test]
fn schema_lists_and_lookups() {
    let all = schemas(BASE);
    assert_eq!(all["schemas"], json!([LIST_RESPONSE]));
    assert_eq!(all["totalResults"], 2);
    assert_eq!(all["Resources"][1]["id"], ENTERPRISE_SCHEMA);
    assert!(schema(BASE, &ENTERPRISE_SCHEMA.to_lowercase()).is_some());
    assert!(schema(BASE, "urn:ietf:params:scim:schemas:core:2.0:Group").is_none());
    let types = resource_types(BASE);
    assert_eq!(types["totalResults"], 1);
    let user = resource_type(BASE, "User").expect("User");
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], USER_SCHEMA);
    assert_eq!(
        user["schemaExtensions"],
        json!([{"schema": ENTERPRISE_SCHEMA, "required": false}])
    );
    assert_eq!(
        user["meta"]["location"],
        format!("{BASE}/ResourceTypes/User")
    );
    assert!(resource_type(BASE, "Group").is_none());
}

#[test]
fn service_provider_config_says_what_is_supported() {
    let c = service_provider_config(&format!("{BASE}/"));
    assert_eq!(c["patch"]["supported"], true);
    assert_eq!(c["bulk"]["supported"], false);
    assert_eq!(
        c["filter"],
        json!({"supported": true, "maxResults": MAX_RESULTS})
    );
    assert_eq!(c["changePassword"]["supported"], false);
    assert_eq!(c["sort"]["supported"], false);
    assert_eq!(c["etag"]["supported"], false);
    assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        c["meta"]["location"],
        format!("{BASE}/ServiceProviderConfig")
    );
}

#[test]
fn paging_defaults_clamps_and_refuses_non_integers() {
    assert_eq!(
        page(None, None).expect("defaults"),
        Page {
            start_index: 1,
            count: MAX_RESULTS
        }
    );
    assert_eq!(
        page(Some("0"), Some("-5")).expect("low"),
        Page {
            start_index: 1,
            count: 0
        }
    );
    assert_eq!(
        page(Some("-3"), Some("100000")).expect("high").count,
        MAX_RESULTS
    );
    assert_eq!(
        page(
            Some("99999999999999999999999"),
            Some("99999999999999999999")
        )
        .expect("huge"),
        Page {
            start_index: i64::MAX as usize,
            count: MAX_RESULTS
        }
    );
    for bad in ["x", "1.5", "", "1e3", "--1"] {
        if bad.is_empty() {
            assert!(page(Some(bad), Some(bad)).is_ok());
            continue;
        }
        let e = page(Some(bad), None).expect_err(bad);
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(e.detail.contains("startIndex"), "{e}");
        assert!(
            page(None, Some(bad))
                .expect_err(bad)
                .detail
                .contains("count")
        );
    }
}

#[test]
fn page_windows() {
    let p = |s, c| Page {
        start_index: s,
        count: c,
    };
    assert_eq!(p(1, 200).window(3), 0..3);
    assert_eq!(p(2, 1).window(3), 1..2);
    assert_eq!(p(3, 10).window(3), 2..3);
    assert_eq!(p(4, 10).window(3), 3..3);
    assert_eq!(p(usize::MAX, usize::MAX).window(3), 3..3);
    assert_eq!(p(1, 0).window(3), 0..0);
}

#[test]
fn list_response_shape() {
    let r = list_response(5, 2, vec![json!({"id": "a"})]);
    assert_eq!(
        r,
        json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": 5,
            "startIndex": 2,
            "itemsPerPage": 1,
            "Resources": [{"id": "a"}],
        })
    );
}

#[test]
fn error_bodies() {
    let e = ScimError::invalid_filter("operator `or` is not supported");
    assert_eq!(
        e.body(),
        json!({
            "schemas": [ERROR_SCHEMA],
            "status": "400",
            "scimType": "invalidFilter",
            "detail": "operator `or` is not supported",
        })
    );
    assert_eq!(
        e.to_string(),
        "400 invalidFilter: operator `or` is not supported"
    );
    let e = ScimError::not_found("no user x");
    assert_eq!(e.body().get("scimType"), None);
    assert_eq!(e.body()["status"], "404");
    assert_eq!(ScimError::uniqueness("x").status, 409);
    assert_eq!(ScimError::too_large("x").status, 413);
    assert_eq!(ScimError::unavailable("x").status, 503);
    assert_eq!(ScimError::unauthorized("x").status, 401);
    assert_eq!(ScimError::mutability("x").body()["scimType"], "mutability");
}
