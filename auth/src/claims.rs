//! Role mapping: verified ID-token claims → the user's role, or a typed denial. Pure.
//!
//! - Okta: `userType`, also accepted as `user_type`: `admin` → Admin, `member` → Member, anything
//!   else or missing → denied.
//! - Entra ID: `roles` (array of app-role values): `admin` wins, else `member`, neither → denied.
//! - Generic OIDC: `OIDC_ROLE_CLAIM` (a claim name, or a dotted path into nested objects) holding a
//!   string or an array of strings; `OIDC_ROLE_MAP` rules are tried in the order written and the
//!   first rule whose value the user has decides; `OIDC_DEFAULT_ROLE` for users no rule matches,
//!   else denied.
//!
//! Matching is exact and case-sensitive. A claim of the wrong JSON type is a denial even when a
//! default role exists: a malformed token is not "a user without groups".

use serde_json::{Map, Value};

/// What a signed-in user may do in the app (forwarded as `X-Forwarded-Groups`), and one
/// `value=role` rule of a generic provider: the API crate's types, one definition for both sides.
pub use gatehouse_crds::{Role, RoleRule};

/// How a provider's role is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolePolicy {
    /// `userType` / `user_type`.
    Okta,
    /// `roles`.
    Entra,
    /// A configurable claim with ordered rules and an optional default.
    Claim {
        /// Claim name or dotted path; `None` when only a default role is configured.
        claim: Option<String>,
        /// Rules, tried in order.
        rules: Vec<RoleRule>,
        /// Role for users matching no rule.
        default: Option<Role>,
    },
}

impl RolePolicy {
    /// Whether the role is read from claim `claim` (by name, or a dotted path through it): a role
    /// mapped from the groups claim cannot be given while the groups are unknown.
    pub fn reads_claim(&self, claim: &str) -> bool {
        let top = |name: &str| name.split('.').next().unwrap_or(name).to_owned();
        match self {
            RolePolicy::Okta => ["userType", "user_type"].contains(&claim),
            RolePolicy::Entra => claim == "roles",
            RolePolicy::Claim { claim: read, .. } => read
                .as_deref()
                .is_some_and(|read| read == claim || top(read) == top(claim)),
        }
    }
}

/// Why a user with a valid ID token gets no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleDenial {
    /// The role claim is absent (or null).
    ClaimMissing,
    /// The role claim is not a string or an array of strings.
    ClaimWrongType,
    /// The role claim has values, none of which grant a role.
    NotMapped,
}

impl RoleDenial {
    /// Stable, low-cardinality reason (metrics label, audit field, page message key).
    pub fn reason(self) -> &'static str {
        match self {
            RoleDenial::ClaimMissing => "role_claim_missing",
            RoleDenial::ClaimWrongType => "role_claim_invalid",
            RoleDenial::NotMapped => "role_not_mapped",
        }
    }

    /// Every denial, for the table of sign-in reasons in the docs. Keep it in step with
    /// [`RoleDenial::explanation`], whose match fails to compile on a new variant.
    pub const ALL: [RoleDenial; 3] = [
        RoleDenial::ClaimMissing,
        RoleDenial::ClaimWrongType,
        RoleDenial::NotMapped,
    ];

    /// What the reason tells an operator, and what to do: one line of the docs' table of
    /// sign-in reasons (`docs/troubleshooting.md`, generated from this).
    pub fn explanation(self) -> &'static str {
        match self {
            RoleDenial::ClaimMissing => {
                "the verified user has no role: the role claim (or SAML attribute) is absent and \
                 there is no `defaultRole`. Check the token's claims at the IdP (Okta Token \
                 Preview, Entra \"Enterprise app → Users\", Auth0 Action logs)"
            }
            RoleDenial::ClaimWrongType => {
                "the role claim is neither a string nor a list of strings: point the role mapping \
                 at another claim, or change what the IdP sends"
            }
            RoleDenial::NotMapped => {
                "the role claim's values match no `roleMap` rule and there is no `defaultRole`: \
                 add a rule, or give the user a value that has one"
            }
        }
    }
}

/// Maps claims to a role under `policy`.
pub fn map_role(policy: &RolePolicy, claims: &Map<String, Value>) -> Result<Role, RoleDenial> {
    match policy {
        RolePolicy::Okta => okta_role(claims),
        RolePolicy::Entra => entra_role(claims),
        RolePolicy::Claim {
            claim,
            rules,
            default,
        } => claim_role(claim.as_deref(), rules, *default, claims),
    }
}

fn okta_role(claims: &Map<String, Value>) -> Result<Role, RoleDenial> {
    let value = present(claims.get("userType"))
        .or_else(|| present(claims.get("user_type")))
        .ok_or(RoleDenial::ClaimMissing)?;
    let Value::String(user_type) = value else {
        return Err(RoleDenial::ClaimWrongType);
    };
    Role::parse(user_type).ok_or(RoleDenial::NotMapped)
}

fn entra_role(claims: &Map<String, Value>) -> Result<Role, RoleDenial> {
    let roles = string_values(present(claims.get("roles")).ok_or(RoleDenial::ClaimMissing)?)?;
    if roles.contains(&"admin") {
        Ok(Role::Admin)
    } else if roles.contains(&"member") {
        Ok(Role::Member)
    } else {
        Err(RoleDenial::NotMapped)
    }
}

fn claim_role(
    claim: Option<&str>,
    rules: &[RoleRule],
    default: Option<Role>,
    claims: &Map<String, Value>,
) -> Result<Role, RoleDenial> {
    let Some(value) = claim.and_then(|c| present(lookup(claims, c))) else {
        return default.ok_or(RoleDenial::ClaimMissing);
    };
    let values = string_values(value)?;
    rules
        .iter()
        .find(|rule| values.contains(&rule.value.as_str()))
        .map(|rule| rule.role)
        .or(default)
        .ok_or(RoleDenial::NotMapped)
}

/// A claim by exact name first (Auth0 namespaced claims contain dots), else by dotted path.
pub fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// A string, or an array of strings; anything else is the wrong type.
fn string_values(value: &Value) -> Result<Vec<&str>, RoleDenial> {
    match value {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().ok_or(RoleDenial::ClaimWrongType))
            .collect(),
        _ => Err(RoleDenial::ClaimWrongType),
    }
}

/// Longest attribute value copied to an SsoUser (longer values are left out, not cut).
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// The SsoUser attributes of `GATEHOUSE_ATTRIBUTE_MAPPINGS` (claim → attribute): strings as they
/// are, numbers and booleans as text, arrays of those joined with `,`. Missing, null, object-valued
/// and oversized claims are left out.
pub fn attributes(
    mappings: &[(String, String)],
    claims: &Map<String, Value>,
) -> std::collections::BTreeMap<String, String> {
    fn scalar(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    mappings
        .iter()
        .filter_map(|(claim, attribute)| {
            let value = match present(lookup(claims, claim))? {
                Value::Array(items) => items
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()?
                    .join(","),
                other => scalar(other)?,
            };
            (value.len() <= MAX_ATTRIBUTE_BYTES).then(|| (attribute.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn attributes_copy_mapped_claims_by_name_and_path() {
        let claims = serde_json::json!({
            "department": "R&D",
            "https://acme.example/cost_center": 4711,
            "address": { "country": "NZ" },
            "groups": ["a", "b"],
            "mixed": ["a", { "b": 1 }],
            "nested": { "x": 1 },
            "nothing": null,
            "huge": "x".repeat(super::MAX_ATTRIBUTE_BYTES + 1),
            "verified": true,
        });
        let claims = claims.as_object().expect("object");
        let mappings: Vec<(String, String)> = [
            ("department", "department"),
            ("https://acme.example/cost_center", "costCenter"),
            ("address.country", "country"),
            ("groups", "groups"),
            ("mixed", "mixed"),
            ("nested", "nested"),
            ("nothing", "nothing"),
            ("huge", "huge"),
            ("absent", "absent"),
            ("verified", "verified"),
        ]
        .iter()
        .map(|(c, a)| ((*c).to_owned(), (*a).to_owned()))
        .collect();
        let got = super::attributes(&mappings, claims);
        let want: std::collections::BTreeMap<String, String> = [
            ("department", "R&D"),
            ("costCenter", "4711"),
            ("country", "NZ"),
            ("groups", "a,b"),
            ("verified", "true"),
        ]
        .iter()
        .map(|(a, v)| ((*a).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("object expected"),
        }
    }

    #[test]
    fn okta_table() {
        use RoleDenial::*;
        let cases = [
            (json!({"userType": "admin"}), Ok(Role::Admin)),
            (json!({"userType": "member"}), Ok(Role::Member)),
            (json!({"user_type": "admin"}), Ok(Role::Admin)),
            (json!({"user_type": "member"}), Ok(Role::Member)),
            (
                json!({"userType": "member", "user_type": "admin"}),
                Ok(Role::Member),
            ),
            (
                json!({"userType": null, "user_type": "admin"}),
                Ok(Role::Admin),
            ),
            (json!({}), Err(ClaimMissing)),
            (json!({"userType": null}), Err(ClaimMissing)),
            (json!({"usertype": "admin"}), Err(ClaimMissing)),
            (json!({"userType": "Admin"}), Err(NotMapped)),
            (json!({"userType": "ADMIN"}), Err(NotMapped)),
            (json!({"userType": " admin"}), Err(NotMapped)),
            (json!({"userType": "contractor"}), Err(NotMapped)),
            (json!({"userType": ""}), Err(NotMapped)),
            (json!({"userType": ["admin"]}), Err(ClaimWrongType)),
            (json!({"userType": true}), Err(ClaimWrongType)),
            (json!({"userType": 1}), Err(ClaimWrongType)),
            (json!({"userType": {"admin": true}}), Err(ClaimWrongType)),
        ];
        for (input, expected) in cases {
            assert_eq!(
                map_role(&RolePolicy::Okta, &claims(input.clone())),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn entra_table() {
        use RoleDenial::*;
        let cases = [
            (json!({"roles": ["admin", "member"]}), Ok(Role::Admin)),
            (json!({"roles": ["member", "admin"]}), Ok(Role::Admin)),
            (json!({"roles": ["member"]}), Ok(Role::Member)),
            (json!({"roles": ["reader", "member"]}), Ok(Role::Member)),
            (json!({"roles": "admin"}), Ok(Role::Admin)),
            (json!({"roles": []}), Err(NotMapped)),
            (json!({"roles": ["Admin", "MEMBER"]}), Err(NotMapped)),
            (json!({"roles": ["reader"]}), Err(NotMapped)),
            (json!({}), Err(ClaimMissing)),
            (json!({"role": ["admin"]}), Err(ClaimMissing)),
            (json!({"roles": ["admin", 1]}), Err(ClaimWrongType)),
            (json!({"roles": {"admin": true}}), Err(ClaimWrongType)),
            (json!({"roles": 7}), Err(ClaimWrongType)),
        ];
        for (input, expected) in cases {
            assert_eq!(
                map_role(&RolePolicy::Entra, &claims(input.clone())),
                expected,
                "{input}"
            );
        }
    }

    fn generic(claim: Option<&str>, default: Option<Role>) -> RolePolicy {
        RolePolicy::Claim {
            claim: claim.map(str::to_owned),
            rules: vec![
                RoleRule {
                    value: "portal-staff".into(),
                    role: Role::Member,
                },
                RoleRule {
                    value: "portal-admins".into(),
                    role: Role::Admin,
                },
            ],
            default,
        }
    }

    #[test]
    fn generic_table() {
        use RoleDenial::*;
        let policy = generic(Some("groups"), None);
        let cases = [
            // Rules are tried in the order written: the first listed rule the user matches wins.
            (
                json!({"groups": ["portal-admins", "portal-staff"]}),
                Ok(Role::Member),
            ),
            (json!({"groups": ["portal-admins"]}), Ok(Role::Admin)),
            (json!({"groups": "portal-admins"}), Ok(Role::Admin)),
            (
                json!({"groups": ["everyone", "portal-staff"]}),
                Ok(Role::Member),
            ),
            (json!({"groups": ["Portal-Admins"]}), Err(NotMapped)),
            (json!({"groups": ["other"]}), Err(NotMapped)),
            (json!({"groups": []}), Err(NotMapped)),
            (json!({}), Err(ClaimMissing)),
            (json!({"groups": null}), Err(ClaimMissing)),
            (json!({"groups": 3}), Err(ClaimWrongType)),
            (
                json!({"groups": ["portal-admins", null]}),
                Err(ClaimWrongType),
            ),
            (
                json!({"groups": {"portal-admins": true}}),
                Err(ClaimWrongType),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                map_role(&policy, &claims(input.clone())),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn generic_default_role() {
        let policy = generic(Some("groups"), Some(Role::Member));
        assert_eq!(
            map_role(&policy, &claims(json!({"groups": ["x"]}))),
            Ok(Role::Member)
        );
        assert_eq!(map_role(&policy, &claims(json!({}))), Ok(Role::Member));
        assert_eq!(
            map_role(&policy, &claims(json!({"groups": ["portal-admins"]}))),
            Ok(Role::Admin)
        );
        // A malformed claim is not "no groups": still denied.
        assert_eq!(
            map_role(&policy, &claims(json!({"groups": 5}))),
            Err(RoleDenial::ClaimWrongType)
        );
        let only_default = RolePolicy::Claim {
            claim: None,
            rules: vec![],
            default: Some(Role::Member),
        };
        assert_eq!(
            map_role(&only_default, &claims(json!({"groups": ["portal-admins"]}))),
            Ok(Role::Member)
        );
    }

    #[test]
    fn dotted_paths_and_namespaced_claims() {
        let nested = generic(Some("realm_access.roles"), None);
        assert_eq!(
            map_role(
                &nested,
                &claims(json!({"realm_access": {"roles": ["portal-admins"]}}))
            ),
            Ok(Role::Admin)
        );
        assert_eq!(
            map_role(&nested, &claims(json!({"realm_access": ["portal-admins"]}))),
            Err(RoleDenial::ClaimMissing)
        );
        let namespaced = generic(Some("https://acme.example/roles"), None);
        assert_eq!(
            map_role(
                &namespaced,
                &claims(json!({"https://acme.example/roles": ["portal-staff"]}))
            ),
            Ok(Role::Member)
        );
    }

    #[test]
    fn reads_claim_names_the_claims_a_role_comes_from() {
        assert!(RolePolicy::Entra.reads_claim("roles"));
        assert!(!RolePolicy::Entra.reads_claim("groups"));
        assert!(RolePolicy::Okta.reads_claim("userType"));
        assert!(!RolePolicy::Okta.reads_claim("groups"));
        assert!(generic(Some("groups"), None).reads_claim("groups"));
        assert!(generic(Some("realm.groups"), None).reads_claim("realm"));
        assert!(generic(Some("groups"), None).reads_claim("groups.nested"));
        assert!(!generic(Some("roles"), None).reads_claim("groups"));
        assert!(!generic(None, Some(Role::Member)).reads_claim("groups"));
    }

    #[test]
    fn reasons_are_stable() {
        assert_eq!(RoleDenial::ClaimMissing.reason(), "role_claim_missing");
        assert_eq!(RoleDenial::ClaimWrongType.reason(), "role_claim_invalid");
        assert_eq!(RoleDenial::NotMapped.reason(), "role_not_mapped");
    }
}
