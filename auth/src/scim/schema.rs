//! The attributes Gatehouse serves, once: what [`gatehouse_crds::ScimProfile`] keeps, plus
//! `active`. Parsing, PATCH, projection and the published `/Schemas` all read this catalogue, so
//! what is published is exactly what round-trips. The bounds are the CRD's (`schemars` lengths
//! on `ScimProfile`), so a value the API server would refuse is refused here first, naming it.

use serde_json::{Value, json};

use super::consts::{ENTERPRISE_SCHEMA, LIST_RESPONSE, MAX_RESULTS, USER_SCHEMA};

/// A SCIM attribute's data type, as far as Gatehouse keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `string`.
    Str,
    /// `boolean`.
    Bool,
    /// `complex`: sub-attributes.
    Complex,
}

/// One attribute (or sub-attribute) of a served schema.
#[derive(Debug)]
pub(crate) struct Attr {
    /// The name, as SCIM spells it and `ScimProfile` serializes it.
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) multi: bool,
    /// Strings: most characters; multi-valued: most values; 0: unbounded.
    pub(crate) max: usize,
    pub(crate) subs: &'static [Attr],
    pub(crate) case_exact: bool,
    pub(crate) required: bool,
    /// `uniqueness: server` (else `none`).
    pub(crate) unique: bool,
    pub(crate) canonical: &'static [&'static str],
    pub(crate) description: &'static str,
}

const fn text(name: &'static str, max: usize, description: &'static str) -> Attr {
    Attr {
        name,
        ty: Ty::Str,
        multi: false,
        max,
        subs: &[],
        case_exact: false,
        required: false,
        unique: false,
        canonical: &[],
        description,
    }
}

const fn boolean(name: &'static str, description: &'static str) -> Attr {
    Attr {
        ty: Ty::Bool,
        ..text(name, 0, description)
    }
}

const fn complex(name: &'static str, subs: &'static [Attr], description: &'static str) -> Attr {
    Attr {
        ty: Ty::Complex,
        subs,
        ..text(name, 0, description)
    }
}

const fn multi(
    name: &'static str,
    max: usize,
    subs: &'static [Attr],
    description: &'static str,
) -> Attr {
    Attr {
        multi: true,
        max,
        ..complex(name, subs, description)
    }
}

const NAME: [Attr; 6] = [
    text("formatted", 512, "The full name, formatted for display."),
    text("familyName", 256, "The family name."),
    text("givenName", 256, "The given name."),
    text("middleName", 256, "The middle name(s)."),
    text("honorificPrefix", 64, "The honorific prefix (`Ms.`)."),
    text("honorificSuffix", 64, "The honorific suffix (`III`)."),
];

const EMAIL: [Attr; 4] = [
    text("value", 512, "The email address."),
    Attr {
        canonical: &["work", "home", "other"],
        ..text(
            "type",
            64,
            "What the address is for (`work`, `home`, `other`).",
        )
    },
    boolean("primary", "Whether this is the user's primary address."),
    text("display", 512, "A name for display."),
];

const PHONE: [Attr; 4] = [
    text("value", 512, "The phone number."),
    Attr {
        canonical: &["work", "home", "mobile", "fax", "pager", "other"],
        ..text("type", 64, "What the number is for (`work`, `mobile`, …).")
    },
    boolean("primary", "Whether this is the user's primary number."),
    text("display", 512, "A name for display."),
];

const ADDRESS: [Attr; 8] = [
    text(
        "formatted",
        1024,
        "The full address, formatted for display.",
    ),
    text("streetAddress", 512, "The street address."),
    text("locality", 256, "The city or locality."),
    text("region", 256, "The state or region."),
    text("postalCode", 64, "The postal code."),
    text("country", 64, "The country."),
    Attr {
        canonical: &["work", "home", "other"],
        ..text(
            "type",
            64,
            "What the address is for (`work`, `home`, `other`).",
        )
    },
    boolean("primary", "Whether this is the user's primary address."),
];

/// The core User schema's attributes Gatehouse serves (RFC 7643 §4.1; `externalId` from §3.1).
pub(crate) const USER_ATTRS: [Attr; 14] = [
    Attr {
        required: true,
        unique: true,
        ..text(
            "userName",
            256,
            "Unique identifier of the user at the service provider, compared without case.",
        )
    },
    Attr {
        case_exact: true,
        ..text(
            "externalId",
            1024,
            "The identity provider's id of the user (Okta: the user id; Entra ID: the object id).",
        )
    },
    complex("name", &NAME, "The components of the user's name."),
    text("displayName", 256, "The name of the user, for display."),
    text("nickName", 256, "The casual name of the user."),
    text("title", 256, "The user's title (`Vice President`)."),
    text(
        "userType",
        256,
        "The relationship of the user to the organization.",
    ),
    text(
        "preferredLanguage",
        64,
        "The user's preferred language (`en-US`).",
    ),
    text("locale", 64, "The user's default location (`en-US`)."),
    text(
        "timezone",
        64,
        "The user's time zone (`America/Los_Angeles`).",
    ),
    // Required: every user has it (`spec.suspended`), and removing it would mean nothing a
    // `replace` cannot say. A POST without it still creates an active user.
    Attr {
        required: true,
        ..boolean(
            "active",
            "Whether the user may sign in (false: sign-in refused and sessions ended).",
        )
    },
    multi(
        "emails",
        16,
        &EMAIL,
        "The user's email addresses (at most 16).",
    ),
    multi(
        "phoneNumbers",
        16,
        &PHONE,
        "The user's phone numbers (at most 16).",
    ),
    multi(
        "addresses",
        8,
        &ADDRESS,
        "The user's addresses (at most 8).",
    ),
];

const MANAGER: [Attr; 2] = [
    text("value", 256, "The SCIM id of the user's manager."),
    text("displayName", 256, "The manager's display name."),
];

/// The enterprise User extension's attributes (RFC 7643 §4.3).
pub(crate) const ENTERPRISE_ATTRS: [Attr; 6] = [
    text("employeeNumber", 256, "The employee number."),
    text("costCenter", 256, "The cost center."),
    text("organization", 256, "The organization."),
    text("division", 256, "The division."),
    text("department", 256, "The department."),
    complex("manager", &MANAGER, "The user's manager."),
];

/// The enterprise extension as one complex attribute under its URN (how a User resource holds
/// it), so the same code walks it.
pub(crate) const ENTERPRISE: Attr = complex(
    ENTERPRISE_SCHEMA,
    &ENTERPRISE_ATTRS,
    "The enterprise User extension.",
);

/// The attribute of `attrs` named `name`, compared without case (RFC 7643 §2.1).
pub(crate) fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The published definition of one attribute (RFC 7643 §7).
fn definition(attr: &Attr) -> Value {
    let ty = match attr.ty {
        Ty::Str => "string",
        Ty::Bool => "boolean",
        Ty::Complex => "complex",
    };
    let mut def = json!({
        "name": attr.name,
        "type": ty,
        "multiValued": attr.multi,
        "description": attr.description,
        "required": attr.required,
        "caseExact": attr.case_exact,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": if attr.unique { "server" } else { "none" },
    });
    if let Some(map) = def.as_object_mut() {
        if !attr.canonical.is_empty() {
            map.insert("canonicalValues".to_owned(), json!(attr.canonical));
        }
        if attr.ty == Ty::Complex {
            let subs: Vec<Value> = attr.subs.iter().map(definition).collect();
            map.insert("subAttributes".to_owned(), Value::Array(subs));
        }
    }
    def
}

fn root(base: &str) -> &str {
    base.trim_end_matches('/')
}

fn schema_document(base: &str, id: &str, name: &str, description: &str, attrs: &[Attr]) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attrs.iter().map(definition).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{id}", root(base)),
        },
    })
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

/// `GET /ServiceProviderConfig` (RFC 7643 §5): PATCH yes; bulk, sorting, password changes and
/// ETags no; filtering yes, at most [`MAX_RESULTS`] results a page; OAuth bearer tokens.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": false },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token in the Authorization header, configured at the identity provider.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", root(base)),
        },
    })
}

/// `GET /Schemas/{id}` (RFC 7643 §7): the User schema or the enterprise extension (the URN
/// compared without case); `None` for any other id.
pub fn schema(base: &str, id: &str) -> Option<Value> {
    if id.eq_ignore_ascii_case(USER_SCHEMA) {
        Some(schema_document(
            base,
            USER_SCHEMA,
            "User",
            "User account: the attributes Gatehouse keeps on the SsoUser.",
            &USER_ATTRS,
        ))
    } else if id.eq_ignore_ascii_case(ENTERPRISE_SCHEMA) {
        Some(schema_document(
            base,
            ENTERPRISE_SCHEMA,
            "EnterpriseUser",
            "Enterprise User extension.",
            &ENTERPRISE_ATTRS,
        ))
    } else {
        None
    }
}

/// `GET /Schemas`: both schemas, as a ListResponse.
pub fn schemas(base: &str) -> Value {
    list(
        [USER_SCHEMA, ENTERPRISE_SCHEMA]
            .iter()
            .filter_map(|id| schema(base, id))
            .collect(),
    )
}

/// `GET /ResourceTypes/{id}` (RFC 7643 §6): `User` only (compared without case).
pub fn resource_type(base: &str, id: &str) -> Option<Value> {
    id.eq_ignore_ascii_case("User").then(|| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User account",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{ "schema": ENTERPRISE_SCHEMA, "required": false }],
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{}/ResourceTypes/User", root(base)),
            },
        })
    })
}

/// `GET /ResourceTypes`: the one resource type, as a ListResponse.
pub fn resource_types(base: &str) -> Value {
    list(resource_type(base, "User").into_iter().collect())
}
