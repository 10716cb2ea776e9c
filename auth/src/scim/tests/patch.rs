use gatehouse_crds::ScimManager;

use super::*;

fn apply(profile: &ScimProfile, active: bool, ops: Value) -> (ScimProfile, bool) {
    apply_patch(profile, active, &patch(ops.clone())).unwrap_or_else(|e| panic!("{ops}: {e}"))
}

fn refuse(profile: &ScimProfile, ops: Value) -> ScimError {
    apply_patch(profile, true, &patch(ops.clone())).expect_err(&ops.to_string())
}

#[test]
fn okta_deactivates_and_reactivates_with_a_pathless_replace() {
    let profile = parse_user(&okta_create()).expect("okta").0;
    let (after, active) = apply_patch(&profile, true, &okta_deactivate()).expect("accepted");
    assert!(!active);
    assert_eq!(after, profile);
    let back = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": true}}]});
    assert!(apply_patch(&after, false, &back).expect("accepted").1);
}

#[test]
fn okta_password_changes_are_dropped() {
    let profile = parse_user(&okta_create()).expect("okta").0;
    let (after, active) = apply(
        &profile,
        true,
        json!([{"op": "replace", "value": {"password": "t1meMa$heen"}}]),
    );
    assert_eq!((after, active), (profile.clone(), true));
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "replace", "path": "password", "value": "x"}]),
    );
    assert_eq!(after, profile);
}

#[test]
fn okta_replaces_whole_complex_values() {
    let profile = parse_user(&okta_create()).expect("okta").0;
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "replace", "value": {"name": {"givenName": "Another"}, "emails": [{"value": "b@c", "type": "home"}]}}]),
    );
    let name = after.name.expect("name");
    assert_eq!(name.given_name.as_deref(), Some("Another"));
    assert_eq!(
        name.family_name, None,
        "replace replaces the complex value whole"
    );
    assert_eq!(after.emails, vec![email("b@c", "home")]);
}

#[test]
fn entra_default_update_with_capitalised_ops_and_value_paths() {
    let profile = entra_profile();
    let (after, active) = apply(
        &profile,
        true,
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"},
            {"op": "Add", "path": "displayName", "value": "Display"},
            {"op": "Replace", "path": "title", "value": "Engineer"},
            {"op": "Add", "path": "preferredLanguage", "value": "de-DE"},
            {"op": "Replace", "path": "externalId", "value": "new-object-id"},
            {"op": "Replace", "path": "active", "value": "False"}
        ]),
    );
    assert!(!active);
    assert_eq!(after.emails.len(), 1);
    assert_eq!(
        after.emails[0].value.as_deref(),
        Some("updatedEmail@microsoft.com")
    );
    assert_eq!(
        after.emails[0].primary,
        Some(true),
        "other sub-attributes stay"
    );
    assert_eq!(
        after.name.as_ref().and_then(|n| n.family_name.as_deref()),
        Some("updatedFamilyName")
    );
    assert_eq!(
        after.name.as_ref().and_then(|n| n.given_name.as_deref()),
        Some("givenName")
    );
    assert_eq!(
        after.user_name,
        "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    );
    assert_eq!(after.display_name.as_deref(), Some("Display"));
    assert_eq!(after.title.as_deref(), Some("Engineer"));
    assert_eq!(after.preferred_language.as_deref(), Some("de-DE"));
    assert_eq!(after.external_id.as_deref(), Some("new-object-id"));
    let (_, active) = apply(
        &after,
        false,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    );
    assert!(active);
}

#[test]
fn entra_replace_of_a_missing_typed_value_creates_it() {
    let profile = entra_profile();
    let (after, _) = apply(
        &profile,
        true,
        json!([
            {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
            {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
            {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"},
            {"op": "Replace", "path": "emails[type eq \"home\"].value", "value": "me@home.example"}
        ]),
    );
    assert_eq!(after.phone_numbers, vec![email("+1 555 0100", "mobile")]);
    assert_eq!(after.addresses.len(), 1);
    assert_eq!(after.addresses[0].kind.as_deref(), Some("work"));
    assert_eq!(
        after.addresses[0].street_address.as_deref(),
        Some("1 Main St")
    );
    assert_eq!(after.addresses[0].locality.as_deref(), Some("Springfield"));
    assert_eq!(after.emails.len(), 2);
    assert_eq!(after.emails[1], email("me@home.example", "home"));
}

#[test]
fn a_filtered_replace_matching_nothing_is_no_target_unless_it_only_compares_type() {
    let profile = entra_profile();
    let e = refuse(
        &profile,
        json!([{"op": "replace", "path": "emails[value eq \"nobody@example.com\"].display", "value": "x"}]),
    );
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    assert!(e.detail.starts_with("Operations[0]"), "{e}");
    // add creates it from the filter's comparisons.
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "add", "path": "emails[value eq \"nobody@example.com\"].display", "value": "x"}]),
    );
    assert_eq!(after.emails[1].value.as_deref(), Some("nobody@example.com"));
    assert_eq!(after.emails[1].display.as_deref(), Some("x"));
}

#[test]
fn entra_manager_as_a_string_an_object_and_its_removal() {
    let manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    let profile = entra_profile();
    let (after, _) = apply(
        &profile,
        true,
        json!([
            {"op": "Add", "path": manager, "value": "2819c223-7f76-453a-919d-413861904646"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Finance"}
        ]),
    );
    let ext = after.enterprise.clone().expect("ext");
    assert_eq!(ext.department.as_deref(), Some("Finance"));
    assert_eq!(ext.employee_number.as_deref(), Some("1234"));
    assert_eq!(
        ext.manager,
        Some(ScimManager {
            value: Some("2819c223-7f76-453a-919d-413861904646".into()),
            display_name: None
        })
    );
    let (again, _) = apply(
        &after,
        true,
        json!([{"op": "replace", "path": manager, "value": {"value": "other"}}]),
    );
    assert_eq!(
        again
            .enterprise
            .and_then(|e| e.manager)
            .and_then(|m| m.value)
            .as_deref(),
        Some("other")
    );
    for clear in [
        json!([{"op": "Remove", "path": manager}]),
        json!([{"op": "Replace", "path": manager, "value": ""}]),
        json!([{"op": "Replace", "path": manager, "value": null}]),
    ] {
        let (gone, _) = apply(&after, true, clear);
        assert_eq!(gone.enterprise.expect("ext").manager, None);
    }
}

#[test]
fn entra_aad_opt_scim_062020_pathless_replace_with_attribute_paths_as_keys() {
    let profile = entra_profile();
    let (after, active) = apply(
        &profile,
        true,
        json!([{
            "op": "replace",
            "value": {
                "active": false,
                "name.givenName": "Jo",
                "emails[type eq \"work\"].value": "x@y",
                "displayName": "Jo Doe",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Eng",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m-1",
                "roles": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}]
            }
        }]),
    );
    assert!(!active);
    assert_eq!(
        after.name.as_ref().and_then(|n| n.given_name.as_deref()),
        Some("Jo")
    );
    assert_eq!(
        after.name.as_ref().and_then(|n| n.family_name.as_deref()),
        Some("familyName")
    );
    assert_eq!(after.emails[0].value.as_deref(), Some("x@y"));
    assert_eq!(after.display_name.as_deref(), Some("Jo Doe"));
    let ext = after.enterprise.expect("ext");
    assert_eq!(ext.department.as_deref(), Some("Eng"));
    assert_eq!(ext.manager.and_then(|m| m.value).as_deref(), Some("m-1"));
    // The extension as one key of the value object.
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "add", "value": {ENTERPRISE_SCHEMA: {"costCenter": "42", "manager": {"value": "m-2"}}}}]),
    );
    let ext = after.enterprise.expect("ext");
    assert_eq!(
        (ext.cost_center.as_deref(), ext.department.as_deref()),
        (Some("42"), Some("Sales"))
    );
    assert_eq!(ext.manager.and_then(|m| m.value).as_deref(), Some("m-2"));
}

#[test]
fn paths_compare_without_case_and_may_carry_the_core_urn() {
    let profile = entra_profile();
    let (after, _) = apply(
        &profile,
        true,
        json!([
            {"op": "replace", "path": "UserName", "value": "a"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:nickName", "value": "n"},
            {"op": "replace", "path": "NAME.GIVENNAME", "value": "g"},
            {"op": "replace", "path": "EMAILS[TYPE EQ \"WORK\"].VALUE", "value": "w@x"}
        ]),
    );
    assert_eq!(after.user_name, "a");
    assert_eq!(after.nick_name.as_deref(), Some("n"));
    assert_eq!(after.name.and_then(|n| n.given_name).as_deref(), Some("g"));
    assert_eq!(after.emails[0].value.as_deref(), Some("w@x"));
}

#[test]
fn unkept_attributes_are_dropped_without_error() {
    let profile = entra_profile();
    for name in [
        "password",
        "groups",
        "roles",
        "entitlements",
        "x509Certificates",
        "photos",
        "ims",
        "Roles[primary eq \"True\"].value",
    ] {
        for op in ["add", "replace", "remove"] {
            let (after, _) = apply(
                &profile,
                true,
                json!([{"op": op, "path": name, "value": [{"value": "x"}]}]),
            );
            assert_eq!(after, profile, "{op} {name}");
        }
        let (after, _) = apply(
            &profile,
            true,
            json!([{"op": "add", "value": {name: "x", "id": "ignored", "schemas": []}}]),
        );
        assert_eq!(after, profile, "{name} in a value object");
    }
}

#[test]
fn add_appends_to_multi_valued_attributes_without_duplicates_and_replace_replaces() {
    let profile = entra_profile();
    let work = profile.emails[0].value.clone().expect("work email");
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "Add", "path": "emails", "value": [{"value": work.to_uppercase(), "type": "other"}, {"value": "b@c", "type": "home"}]}]),
    );
    assert_eq!(after.emails.len(), 2);
    assert_eq!(after.emails[1], email("b@c", "home"));
    let (after, _) = apply(
        &after,
        true,
        json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x"}]}]),
    );
    assert_eq!(after.emails.len(), 1);
    assert_eq!(after.emails[0].value.as_deref(), Some("only@x"));
}

#[test]
fn add_on_single_valued_sets_and_add_on_complex_merges() {
    let profile = entra_profile();
    let (after, _) = apply(
        &profile,
        true,
        json!([
            {"op": "Add", "path": "nickName", "value": "Babs"},
            {"op": "Add", "path": "nickName", "value": "Barbara"},
            {"op": "add", "path": "name", "value": {"middleName": "M"}}
        ]),
    );
    assert_eq!(after.nick_name.as_deref(), Some("Barbara"));
    let name = after.name.expect("name");
    assert_eq!(
        (name.middle_name.as_deref(), name.given_name.as_deref()),
        (Some("M"), Some("givenName"))
    );
}

#[test]
fn remove_with_a_filter_removes_matching_values_and_remove_clears() {
    let mut profile = entra_profile();
    profile.emails.push(email("home@x", "home"));
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
    );
    assert_eq!(after.emails, vec![email("home@x", "home")]);
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "remove", "path": "emails[type eq \"nothing\"]"}]),
    );
    assert_eq!(after.emails.len(), 2, "no match removes nothing");
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "remove", "path": "emails[type eq \"home\"].value"}]),
    );
    assert_eq!(
        after.emails.len(),
        1,
        "a value left with only its type is dropped"
    );
    let (after, _) = apply(
        &profile,
        true,
        json!([
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "externalId"},
            {"op": "remove", "path": "emails", "value": [{"value": "HOME@x"}]},
            {"op": "remove", "path": ENTERPRISE_SCHEMA}
        ]),
    );
    assert_eq!(
        after.name.as_ref().and_then(|n| n.given_name.as_deref()),
        None
    );
    assert_eq!(
        after.name.as_ref().and_then(|n| n.family_name.as_deref()),
        Some("familyName")
    );
    assert_eq!(after.external_id, None);
    assert_eq!(after.emails.len(), 1);
    assert_eq!(after.enterprise, None);
    let (after, _) = apply(
        &profile,
        true,
        json!([{"op": "remove", "path": "emails"}, {"op": "remove", "path": "name"}]),
    );
    assert!(after.emails.is_empty() && after.name.is_none());
}

#[test]
fn null_or_empty_values_clear() {
    let profile = entra_profile();
    let (after, _) = apply(
        &profile,
        true,
        json!([
            {"op": "replace", "path": "externalId", "value": ""},
            {"op": "replace", "path": "name.formatted", "value": null},
            {"op": "replace", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": ""}}
        ]),
    );
    assert_eq!(after.external_id, None);
    assert_eq!(after.name.and_then(|n| n.formatted), None);
    assert_eq!(after.enterprise.and_then(|e| e.department), None);
}

#[test]
fn required_attributes_cannot_be_removed() {
    for path in ["active", "userName"] {
        let e = refuse(&entra_profile(), json!([{"op": "remove", "path": path}]));
        assert_eq!(e.status, 400);
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(e.detail.contains(path), "{}", e.detail);
    }
}

#[test]
fn a_whole_extension_echoed_with_its_schemas_key_is_taken_and_replace_replaces_it() {
    let mut profile = entra_profile();
    let before = apply(
        &profile,
        true,
        json!([{"op": "add", "path": ENTERPRISE_SCHEMA, "value": {"department": "R&D", "costCenter": "42"}}]),
    )
    .0;
    assert_eq!(
        before
            .enterprise
            .as_ref()
            .and_then(|e| e.cost_center.as_deref()),
        Some("42")
    );
    profile = before;
    let echoed = json!({"schemas": [ENTERPRISE_SCHEMA], "department": "Engines"});
    let added = apply(
        &profile,
        true,
        json!([{"op": "add", "path": ENTERPRISE_SCHEMA, "value": echoed.clone()}]),
    )
    .0;
    let ext = added.enterprise.expect("extension");
    assert_eq!(ext.department.as_deref(), Some("Engines"));
    assert_eq!(ext.cost_center.as_deref(), Some("42"), "add merges");
    let replaced = apply(
        &profile,
        true,
        json!([{"op": "replace", "path": ENTERPRISE_SCHEMA, "value": echoed}]),
    )
    .0;
    let ext = replaced.enterprise.expect("extension");
    assert_eq!(ext.department.as_deref(), Some("Engines"));
    assert_eq!(
        ext.cost_center, None,
        "replace replaces the whole extension"
    );
}

fn kind(e: &ScimError) -> Option<ScimType> {
    e.scim_type
}

#[test]
fn refusals() {
    let p = entra_profile();
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "favoriteColor", "value": "x"}]),
    );
    assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    assert!(e.detail.contains("favoriteColor"), "{e}");
    let e = refuse(
        &p,
        json!([{"op": "replace", "value": {"favoriteColor": "x"}}]),
    );
    assert!(e.detail.contains("favoriteColor"), "{e}");
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize", "value": "x"}]),
    );
    assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "urn:example:custom:User:x", "value": "x"}]),
    );
    assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "name.nickName", "value": "x"}]),
    );
    assert!(e.detail.contains("nickName"), "{e}");
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "name[givenName eq \"x\"]", "value": "x"}]),
    );
    assert_eq!(kind(&e), Some(ScimType::InvalidPath));
    for path in ["id", "meta", "meta.lastModified", "ID"] {
        let e = refuse(&p, json!([{"op": "replace", "path": path, "value": "x"}]));
        assert_eq!(kind(&e), Some(ScimType::Mutability), "{path}");
    }
    let e = refuse(&p, json!([{"op": "remove"}]));
    assert_eq!(kind(&e), Some(ScimType::NoTarget));
    let e = refuse(&p, json!([{"op": "move", "path": "title"}]));
    assert_eq!(kind(&e), Some(ScimType::InvalidValue));
    assert!(e.detail.contains("move"), "{e}");
    let e = refuse(&p, json!([{"path": "title", "value": "x"}]));
    assert_eq!(kind(&e), Some(ScimType::InvalidSyntax));
    let e = refuse(&p, json!([{"op": "replace", "path": "title"}]));
    assert_eq!(kind(&e), Some(ScimType::InvalidValue));
    let e = refuse(&p, json!([{"op": "replace", "value": "x"}]));
    assert_eq!(kind(&e), Some(ScimType::InvalidValue));
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "emails[type ne \"work\"].value", "value": "x"}]),
    );
    assert_eq!(kind(&e), Some(ScimType::InvalidFilter));
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "emails[bogus eq \"work\"].value", "value": "x"}]),
    );
    assert_eq!(kind(&e), Some(ScimType::InvalidFilter));
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "userName", "value": ""}]),
    );
    assert_eq!(kind(&e), Some(ScimType::InvalidValue));
    assert!(e.detail.contains("userName"), "{e}");
    let e = refuse(&p, json!([{"op": "remove", "path": "userName"}]));
    assert!(e.detail.contains("userName"), "{e}");
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "title", "value": "t".repeat(257)}]),
    );
    assert!(e.detail.contains("title"), "{e}");
    let many: Vec<Value> = (0..17)
        .map(|n| json!({"op": "add", "path": "emails", "value": [{"value": format!("{n}@x")}]}))
        .collect();
    let e = refuse(&p, Value::Array(many));
    assert!(e.detail.contains("emails"), "{e}");
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
    );
    assert!(e.detail.contains("active"), "{e}");
    let e = refuse(
        &p,
        json!([{"op": "replace", "path": "emails[type eq \"work\"", "value": "x"}]),
    );
    assert_eq!(kind(&e), Some(ScimType::InvalidPath));
}

#[test]
fn body_level_refusals() {
    let p = entra_profile();
    let cases = [
        (json!([]), ScimType::InvalidSyntax),
        (json!({"schemas": [PATCH_OP]}), ScimType::InvalidSyntax),
        (
            json!({"schemas": [PATCH_OP], "Operations": {}}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [USER_SCHEMA], "Operations": []}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [PATCH_OP], "Operations": ["x"]}),
            ScimType::InvalidSyntax,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            apply_patch(&p, true, &body)
                .expect_err(&body.to_string())
                .scim_type,
            Some(want)
        );
    }
    let ops: Vec<Value> = (0..=MAX_OPERATIONS)
        .map(|_| json!({"op": "replace", "path": "title", "value": "x"}))
        .collect();
    let e = apply_patch(&p, true, &patch(Value::Array(ops))).expect_err("too many");
    assert_eq!(e.scim_type, Some(ScimType::TooMany));
    let ops: Vec<Value> = (0..MAX_OPERATIONS)
        .map(|_| json!({"op": "replace", "path": "title", "value": "x"}))
        .collect();
    assert!(apply_patch(&p, true, &patch(Value::Array(ops))).is_ok());
    // No `schemas`, `operations` in lower case: accepted.
    let body = json!({"operations": [{"op": "replace", "path": "title", "value": "x"}]});
    assert_eq!(
        apply_patch(&p, true, &body)
            .expect("lenient")
            .0
            .title
            .as_deref(),
        Some("x")
    );
}
