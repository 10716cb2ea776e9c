//! Tests of the SCIM layer, with the request bodies Okta and Entra ID document.

mod discovery;
mod filter;
mod patch;
mod properties;
mod resource;

use gatehouse_crds::{ScimProfile, ScimValue};
use serde_json::{Value, json};

use super::*;

/// Okta's create request ("SCIM 2.0 protocol" reference: create the user): `password` and
/// `groups` come along and are not kept.
pub(super) fn okta_create() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": { "givenName": "Test", "familyName": "User" },
        "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

/// Okta's deactivation: a replace without path.
pub(super) fn okta_deactivate() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "value": { "active": false } }]
    })
}

/// Entra ID's create request ("Tutorial: Develop a sample SCIM endpoint"): the enterprise URN
/// listed, `meta` and `roles: []` sent along.
pub(super) fn entra_create() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "emails": [{
            "primary": true,
            "type": "work",
            "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
        }],
        "meta": { "resourceType": "User" },
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName"
        },
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Sales",
            "employeeNumber": "1234"
        }
    })
}

/// A stored user as Entra ID created it.
pub(super) fn entra_profile() -> ScimProfile {
    parse_user(&entra_create()).expect("Entra's create body").0
}

/// A user to filter.
pub(super) fn user(id: &str, profile: ScimProfile, active: bool) -> ScimUser {
    ScimUser {
        id: id.to_owned(),
        profile,
        active,
        meta: Meta::default(),
    }
}

pub(super) fn email(value: &str, kind: &str) -> ScimValue {
    ScimValue {
        value: Some(value.to_owned()),
        kind: Some(kind.to_owned()),
        ..ScimValue::default()
    }
}

/// A PATCH body of the given operations.
pub(super) fn patch(ops: Value) -> Value {
    json!({ "schemas": [PATCH_OP], "Operations": ops })
}
