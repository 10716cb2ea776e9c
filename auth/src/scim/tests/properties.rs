//! Properties for all inputs of a strategy (the fuzz target `scim_patch` asserts the same).

use gatehouse_crds::{ScimAddress, ScimEnterprise, ScimManager, ScimName};
use proptest::prelude::*;

use super::*;

/// A non-empty string that fits every bound (64 characters), Unicode included.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 @._äß€-]{1,24}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn opt() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn value() -> impl Strategy<Value = ScimValue> {
    (text(), opt(), prop::option::of(any::<bool>()), opt()).prop_map(
        |(v, kind, primary, display)| ScimValue {
            value: Some(v),
            kind,
            primary,
            display,
        },
    )
}

fn address() -> impl Strategy<Value = ScimAddress> {
    (
        text(),
        opt(),
        opt(),
        opt(),
        opt(),
        opt(),
        opt(),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(street, formatted, locality, region, postal, country, kind, primary)| ScimAddress {
                formatted,
                street_address: Some(street),
                locality,
                region,
                postal_code: postal,
                country,
                kind,
                primary,
            },
        )
}

fn name() -> impl Strategy<Value = ScimName> {
    (text(), opt(), opt(), opt(), opt(), opt()).prop_map(
        |(given, family, formatted, middle, pre, suf)| ScimName {
            formatted,
            family_name: family,
            given_name: Some(given),
            middle_name: middle,
            honorific_prefix: pre,
            honorific_suffix: suf,
        },
    )
}

fn enterprise() -> impl Strategy<Value = ScimEnterprise> {
    (
        text(),
        opt(),
        opt(),
        opt(),
        opt(),
        prop::option::of((text(), opt())),
    )
        .prop_map(
            |(department, number, cost, org, division, manager)| ScimEnterprise {
                employee_number: number,
                cost_center: cost,
                organization: org,
                division,
                department: Some(department),
                manager: manager.map(|(value, display_name)| ScimManager {
                    value: Some(value),
                    display_name,
                }),
            },
        )
}

/// Any profile the CRD and [`parse_user`] accept.
fn profile() -> impl Strategy<Value = ScimProfile> {
    (
        (text(), opt(), prop::option::of(name()), opt(), opt(), opt()),
        (opt(), opt(), opt(), opt()),
        (
            prop::collection::vec(value(), 0..4),
            prop::collection::vec(value(), 0..4),
            prop::collection::vec(address(), 0..3),
            prop::option::of(enterprise()),
        ),
    )
        .prop_map(
            |(
                (user_name, external_id, name, display_name, nick_name, title),
                (user_type, preferred_language, locale, timezone),
                (emails, phone_numbers, addresses, enterprise),
            )| ScimProfile {
                user_name,
                external_id,
                name,
                display_name,
                nick_name,
                title,
                user_type,
                preferred_language,
                locale,
                timezone,
                emails,
                phone_numbers,
                addresses,
                enterprise,
            },
        )
}

/// Single-valued paths, and where their value is in the rendered resource.
const LEAVES: [(&str, &[&str]); 14] = [
    ("userName", &["userName"]),
    ("externalId", &["externalId"]),
    ("displayName", &["displayName"]),
    ("nickName", &["nickName"]),
    ("title", &["title"]),
    ("timezone", &["timezone"]),
    ("name.givenName", &["name", "givenName"]),
    ("name.honorificPrefix", &["name", "honorificPrefix"]),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        &[ENTERPRISE_SCHEMA, "department"],
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        &[ENTERPRISE_SCHEMA, "manager", "value"],
    ),
    (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
        &[ENTERPRISE_SCHEMA, "costCenter"],
    ),
    (
        "emails[type eq \"work\"].value",
        &["emails", "work", "value"],
    ),
    (
        "phoneNumbers[type eq \"mobile\"].value",
        &["phoneNumbers", "mobile", "value"],
    ),
    (
        "addresses[type eq \"work\"].postalCode",
        &["addresses", "work", "postalCode"],
    ),
];

/// The value at `at` in a rendered resource; a list step picks the value of that `type`.
fn read<'a>(resource: &'a Value, at: &[&str]) -> Vec<&'a Value> {
    let mut here = vec![resource];
    for step in at {
        here = here
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().filter(|i| i["type"] == *step).collect(),
                Value::Object(m) => m.get(*step).into_iter().collect(),
                _ => Vec::new(),
            })
            .collect();
    }
    here
}

proptest! {
    #[test]
    fn parse_filter_never_panics(s in ".{0,200}") {
        let _ = parse_filter(&s);
    }

    #[test]
    fn parse_filter_never_panics_on_filter_like_text(
        parts in prop::collection::vec(
            prop::sample::select(vec![
                "userName", "emails", "[", "]", "(", ")", ".", "value", "type", " eq ", " and ",
                " or ", "not ", "\"x\"", "\"", "\\", "true", "42", "-", " ", "name.givenName",
                "urn:ietf:params:scim:schemas:core:2.0:User:", ENTERPRISE_SCHEMA, "pr", ":",
            ]),
            0..40,
        )
    ) {
        let s: String = parts.concat();
        if let Ok(f) = parse_filter(&s) {
            let u = user("x", entra_profile(), true);
            let _ = f.matches(&u);
            if let Some(name) = f.user_name() && f.matches(&u) {
                prop_assert!(crate::scim::filter::eq_ci(name, &u.profile.user_name));
            }
        }
    }

    #[test]
    fn rendered_profiles_parse_back_to_themselves(p in profile(), active in any::<bool>()) {
        let u = user("id-1", p.clone(), active);
        let rendered = user_resource(&u, "https://x", &Projection::all());
        let (back, back_active) = parse_user(&rendered).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, p);
        prop_assert_eq!(back_active, Some(active));
    }

    #[test]
    fn a_replace_of_x_reads_back_x(
        p in profile(),
        leaf in 0..LEAVES.len(),
        x in text(),
        without_path in any::<bool>(),
    ) {
        let (path, at) = LEAVES[leaf];
        let op = if without_path {
            json!({"op": "replace", "value": {path: x}})
        } else {
            json!({"op": "Replace", "path": path, "value": x})
        };
        let (after, active) = apply_patch(&p, true, &patch(json!([op])))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(active);
        let rendered = user_resource(&user("i", after, active), "https://x", &Projection::all());
        let found = read(&rendered, at);
        prop_assert!(!found.is_empty(), "{} not found in {}", path, rendered);
        for v in found {
            prop_assert_eq!(v, &Value::String(x.clone()));
        }
    }

    #[test]
    fn patches_never_panic_and_keep_a_user_name(
        p in profile(),
        ops in prop::collection::vec(
            (
                prop::sample::select(vec!["add", "Replace", "remove", "copy"]),
                prop::option::of(prop::sample::select(vec![
                    "userName", "name", "name.givenName", "emails", "emails.value",
                    "emails[type eq \"work\"]", "emails[type eq \"work\"].value",
                    "emails[value eq \"a\"].primary", "addresses[type eq \"home\"].region",
                    "active", "id", "groups", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "x[", "",
                ])),
                prop::sample::select(vec![
                    json!(null), json!(""), json!("v"), json!(true), json!("False"), json!(7),
                    json!({"value": "a", "type": "work"}), json!([{"value": "b"}, {"type": "home"}]),
                    json!({"givenName": "g", "active": false, "name.familyName": "f"}), json!([]),
                ]),
            ),
            0..6,
        ),
    ) {
        let ops: Vec<Value> = ops
            .into_iter()
            .map(|(op, path, value)| {
                let mut o = json!({"op": op, "value": value});
                if let Some(path) = path {
                    o["path"] = json!(path);
                }
                o
            })
            .collect();
        if let Ok((after, active)) = apply_patch(&p, true, &patch(Value::Array(ops))) {
            prop_assert!(!after.user_name.trim().is_empty());
            let rendered = user_resource(&user("i", after.clone(), active), "https://x", &Projection::all());
            let (back, _) = parse_user(&rendered).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, after);
        }
    }
}
