//! SCIM: what an identity provider holding the SCIM bearer token sends the sidecar's
//! provisioning endpoint — PATCH and POST bodies, filters, attribute lists.

use gatehouse_auth::scim::{
    MAX_FILTER_LEN, Meta, Projection, ScimUser, apply_patch, parse_filter, parse_user,
    user_resource,
};
use gatehouse_crds::ScimProfile;
use serde_json::{Value, json};

/// The user the PATCH bodies are applied to: as Entra ID creates one, with every kind of
/// attribute set.
fn stored() -> ScimProfile {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "jo@example.com",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "name": {"givenName": "Jo", "familyName": "Doe"},
        "emails": [{"value": "jo@example.com", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
        "addresses": [{"streetAddress": "1 Main St", "type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Sales", "manager": {"value": "m-1"}
        }
    });
    match parse_user(&body) {
        Ok((profile, _)) => profile,
        Err(e) => panic!("the fixture user is refused: {e}"),
    }
}

fn user(profile: ScimProfile, active: bool) -> ScimUser {
    ScimUser {
        id: "jo".to_owned(),
        profile,
        active,
        meta: Meta::default(),
    }
}

/// What every accepted profile keeps: a `userName` that is not blank, the CRD's list bounds, and
/// rendering it and reading it back (as a PUT) gives it again, so it fits every bound `parse_user`
/// checks.
fn check_profile(profile: &ScimProfile, active: bool) {
    assert!(!profile.user_name.trim().is_empty(), "blank userName");
    assert!(profile.user_name.chars().count() <= 256);
    assert!(profile.emails.len() <= 16 && profile.phone_numbers.len() <= 16);
    assert!(profile.addresses.len() <= 8);
    let rendered = user_resource(
        &user(profile.clone(), active),
        "https://x",
        &Projection::all(),
    );
    match parse_user(&rendered) {
        Ok((back, back_active)) => {
            assert_eq!(&back, profile, "the rendered user reads back otherwise");
            assert_eq!(back_active, Some(active));
        }
        Err(e) => panic!("the rendered user is refused: {e}\n{rendered}"),
    }
}

/// A refusal is a 400 (409 never: this layer knows no other users) with a detail.
fn check_refusal(e: &gatehouse_auth::scim::ScimError) {
    assert_eq!(e.status, 400, "{e}");
    assert!(e.scim_type.is_some() && !e.detail.is_empty(), "{e}");
}

/// SCIM: the input as a PATCH body (applied to an active and a suspended user) and as a POST
/// body — an accepted result has a non-blank `userName`, fits the CRD's bounds and round-trips
/// through rendering; a refusal is a 400 with a `scimType` — and as a filter and an
/// `attributes` list: a filter longer than 1024 bytes is refused; a filter that pins a
/// `userName` (`externalId`) matches only users of that name without case (that id exactly);
/// a projected resource always has `id`, `schemas` and `meta.resourceType`.
pub fn scim_patch(data: &[u8]) {
    if let Ok(body) = serde_json::from_slice::<Value>(data) {
        let profile = stored();
        for active in [true, false] {
            match apply_patch(&profile, active, &body) {
                Ok((after, after_active)) => check_profile(&after, after_active),
                Err(e) => check_refusal(&e),
            }
        }
        match parse_user(&body) {
            Ok((profile, active)) => check_profile(&profile, active.unwrap_or(true)),
            Err(e) => check_refusal(&e),
        }
    }
    let text = String::from_utf8_lossy(data);
    match parse_filter(&text) {
        Ok(filter) => {
            assert!(text.len() <= MAX_FILTER_LEN);
            for u in [user(stored(), true), user(stored(), false)] {
                if filter.matches(&u) {
                    if let Some(name) = filter.user_name() {
                        assert_eq!(name.to_lowercase(), u.profile.user_name.to_lowercase());
                    }
                    if let Some(id) = filter.external_id() {
                        assert_eq!(Some(id), u.profile.external_id.as_deref());
                    }
                }
            }
        }
        Err(e) => check_refusal(&e),
    }
    let line = text.lines().next().unwrap_or_default();
    let projections = [
        Projection::parse(Some(line), None),
        Projection::parse(None, Some(line)),
    ];
    for p in projections.iter().flatten() {
        let r = user_resource(&user(stored(), true), "https://x", p);
        assert_eq!(r["id"], "jo");
        assert_eq!(r["meta"]["resourceType"], "User");
        assert!(r["schemas"].is_array());
    }
}
