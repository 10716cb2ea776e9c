//! The User resource: rendering a stored profile ([`user_resource`], trimmed by a
//! [`Projection`]), reading a POST or PUT body ([`parse_user`]), and the coercion both PATCH and
//! POST use to turn what an IdP sends into what the CRD keeps.

use gatehouse_crds::ScimProfile;
use serde_json::{Map, Value, json};

use super::consts::{ENTERPRISE_SCHEMA, MAX_FILTER_LEN, USER_SCHEMA};
use super::error::ScimError;
use super::path::{Schema, split_schema};
use super::schema::{ENTERPRISE, ENTERPRISE_ATTRS, USER_ATTRS, find};
use crate::scim::schema::{Attr, Ty};

/// What the endpoint knows of one user, to render or to filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimUser {
    /// The SCIM `id` (the SsoUser's name).
    pub id: String,
    /// The stored profile (`spec.scim`).
    pub profile: ScimProfile,
    /// `active`: `!spec.suspended`.
    pub active: bool,
    /// `meta`.
    pub meta: Meta,
}

/// The resource's `meta` (RFC 7643 §3.1) as far as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// `created` (RFC 3339: the SsoUser's `creationTimestamp`).
    pub created: Option<String>,
    /// `lastModified` (RFC 3339).
    pub last_modified: Option<String>,
    /// The SsoUser's `resourceVersion`; rendered as the weak ETag `W/"<rv>"`.
    pub version: Option<String>,
}

/// Attributes SCIM clients send that Gatehouse never stores, and drops without an error:
/// Okta's `password` and `groups`, Entra ID's `roles`, and the other multi-valued attributes
/// of RFC 7643 §4.1.2 it does not keep.
pub(crate) const IGNORED: [&str; 7] = [
    "password",
    "groups",
    "roles",
    "entitlements",
    "x509Certificates",
    "photos",
    "ims",
];

/// Whether `name` is one of [`IGNORED`] (without case).
pub(crate) fn is_ignored(name: &str) -> bool {
    IGNORED.iter().any(|i| i.eq_ignore_ascii_case(name))
}

/// `key` in `map`, compared without case (an exact match first).
pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The name an attribute has in messages: `name.givenName`,
/// `urn:…:enterprise:2.0:User:department`.
pub(crate) fn display(schema: Schema, attr: &Attr, sub: Option<&Attr>) -> String {
    let prefix = match schema {
        Schema::Core => String::new(),
        Schema::Enterprise => format!("{ENTERPRISE_SCHEMA}:"),
    };
    match sub {
        Some(sub) => format!("{prefix}{}.{}", attr.name, sub.name),
        None => format!("{prefix}{}", attr.name),
    }
}

/// A boolean as IdPs send it: JSON `true`/`false`, or the strings `"True"`/`"False"` in any case
/// (Entra ID without `aadOptscim062020`).
pub(crate) fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// One value for attribute `attr` (named `name` in messages) as stored: `None` for null, `""`
/// and empty objects or lists (the attribute is cleared); booleans leniently; a complex
/// attribute's unknown sub-attributes dropped; a string for a complex attribute with a `value`
/// (Entra ID's `manager`, an email) taken as its `value`; too long or too many: `invalidValue`.
pub(crate) fn coerce(attr: &Attr, v: &Value, name: &str) -> Result<Option<Value>, ScimError> {
    if v.is_null() {
        return Ok(None);
    }
    if attr.multi {
        let items: &[Value] = match v {
            Value::Array(items) => items,
            one => std::slice::from_ref(one),
        };
        let mut out = Vec::new();
        for item in items {
            if let Some(item) = coerce_complex(attr, item, name)? {
                out.push(item);
            }
        }
        if attr.max > 0 && out.len() > attr.max {
            return Err(ScimError::invalid_value(format!(
                "{name}: at most {} values ({} given)",
                attr.max,
                out.len()
            )));
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    match attr.ty {
        Ty::Complex => coerce_complex(attr, v, name),
        Ty::Bool => match v {
            Value::String(s) if s.is_empty() => Ok(None),
            _ => lenient_bool(v)
                .map(|b| Some(Value::Bool(b)))
                .ok_or_else(|| {
                    ScimError::invalid_value(format!("{name} must be true or false, not {v}"))
                }),
        },
        Ty::Str => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "{name} must be a string, not {v}"
                    )));
                }
            };
            if s.is_empty() {
                return Ok(None);
            }
            let chars = s.chars().count();
            if attr.max > 0 && chars > attr.max {
                return Err(ScimError::invalid_value(format!(
                    "{name} is longer than {} characters ({chars})",
                    attr.max
                )));
            }
            Ok(Some(Value::String(s)))
        }
    }
}

/// One value of complex attribute `attr` (one element, for a multi-valued one).
pub(crate) fn coerce_complex(
    attr: &Attr,
    v: &Value,
    name: &str,
) -> Result<Option<Value>, ScimError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(given) => {
            let mut out = Map::new();
            for (key, value) in given {
                if let Some(sub) = find(attr.subs, key) {
                    let sub_name = format!("{name}.{}", sub.name);
                    if let Some(value) = coerce(sub, value, &sub_name)? {
                        out.insert(sub.name.to_owned(), value);
                    }
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        Value::String(s) if find(attr.subs, "value").is_some() => {
            if s.is_empty() {
                return Ok(None);
            }
            coerce_complex(attr, &json!({ "value": s }), name)
        }
        _ => Err(ScimError::invalid_value(format!(
            "{name} must be an object, not {v}"
        ))),
    }
}

/// The core attributes and the enterprise extension of `body`, coerced: keys as SCIM spells
/// them (the extension under its URN), values as stored. Attributes no served schema defines
/// (Okta's `password` and `groups`, Entra ID's `roles`, other extensions, `id`, `meta`,
/// `schemas`) are dropped.
pub(crate) fn normalize(body: &Map<String, Value>) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (key, value) in body {
        let (attr, name) = match split_schema(key) {
            Ok((Schema::Enterprise, None)) => (&ENTERPRISE, ENTERPRISE_SCHEMA.to_owned()),
            Ok((Schema::Core, Some(rest))) => match find(&USER_ATTRS, rest) {
                Some(attr) => (attr, attr.name.to_owned()),
                None => continue,
            },
            Ok((Schema::Enterprise, Some(rest))) => match find(&ENTERPRISE_ATTRS, rest) {
                // A fully qualified enterprise attribute at the top level.
                Some(attr) => {
                    if let Some(v) = coerce(attr, value, &display(Schema::Enterprise, attr, None))?
                    {
                        let ext = out
                            .entry(ENTERPRISE_SCHEMA)
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(ext) = ext {
                            ext.insert(attr.name.to_owned(), v);
                        }
                    }
                    continue;
                }
                None => continue,
            },
            _ => continue,
        };
        if let Some(v) = coerce(attr, value, &name)? {
            match (out.get_mut(attr.name), v) {
                (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
                (_, v) => {
                    out.insert(attr.name.to_owned(), v);
                }
            }
        }
    }
    Ok(out)
}

/// The profile and `active` of a normalized document; `userName` must be there and not blank.
pub(crate) fn finish(
    mut doc: Map<String, Value>,
) -> Result<(ScimProfile, Option<bool>), ScimError> {
    let active = doc.remove("active").as_ref().and_then(lenient_bool);
    let user_name = doc.get("userName").and_then(Value::as_str).unwrap_or("");
    if user_name.trim().is_empty() {
        return Err(ScimError::invalid_value(
            "userName is required and must not be empty",
        ));
    }
    if let Some(ext) = doc.remove(ENTERPRISE_SCHEMA) {
        doc.insert("enterprise".to_owned(), ext);
    }
    let profile = serde_json::from_value(Value::Object(doc))
        .map_err(|e| ScimError::invalid_value(format!("the user does not fit: {e}")))?;
    Ok((profile, active))
}

/// The profile as a SCIM document: attributes as SCIM spells them, the enterprise extension
/// under its URN when it has values, and `active`.
pub(crate) fn to_doc(profile: &ScimProfile, active: bool) -> Map<String, Value> {
    let mut doc = match serde_json::to_value(profile) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(ext) = doc.remove("enterprise")
        && ext.as_object().is_some_and(|m| !m.is_empty())
    {
        doc.insert(ENTERPRISE_SCHEMA.to_owned(), ext);
    }
    doc.insert("active".to_owned(), Value::Bool(active));
    doc
}

/// Whether `schemas` (a JSON array) lists `urn` (compared without case).
pub(crate) fn lists_schema(schemas: Option<&Value>, urn: &str) -> bool {
    schemas.and_then(Value::as_array).is_some_and(|list| {
        list.iter()
            .filter_map(Value::as_str)
            .any(|s| s.eq_ignore_ascii_case(urn))
    })
}

/// A POST or PUT body: the profile, and `active` (`None` when not given).
///
/// Lenient about what IdPs send: unknown attributes and extensions are dropped (Okta's
/// `password` and `groups`, Entra ID's `roles: []`), attribute names compare without case,
/// booleans may be the strings `"True"`/`"False"`, `""` and `null` are absent values. Refused
/// with 400: a body that is no JSON object, or whose `schemas` lacks the User schema
/// (`invalidSyntax`); a missing or empty `userName`, a value of the wrong type, longer than the
/// CRD keeps, or too many values (`invalidValue`, naming the attribute).
pub fn parse_user(body: &Value) -> Result<(ScimProfile, Option<bool>), ScimError> {
    let Value::Object(map) = body else {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    };
    if !lists_schema(get_ci(map, "schemas"), USER_SCHEMA) {
        return Err(ScimError::invalid_syntax(format!(
            "`schemas` must list {USER_SCHEMA}"
        )));
    }
    finish(normalize(map)?)
}

/// One entry of `attributes` or `excludedAttributes`: a schema's attribute (lower case), and
/// a sub-attribute; no attribute is the whole schema.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selector {
    schema: Schema,
    attr: Option<String>,
    sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    All,
    Only(Vec<Selector>),
    Except(Vec<Selector>),
}

/// Which attributes a response carries (RFC 7644 §3.4.2.5, §3.9): `attributes` (only those) or
/// `excludedAttributes` (all but those). `id`, `schemas` and `meta.resourceType` are always
/// returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    mode: Mode,
}

fn selectors(list: &str) -> Result<Vec<Selector>, ScimError> {
    if list.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_value(format!(
            "the attribute list is longer than {MAX_FILTER_LEN} bytes"
        )));
    }
    let mut out = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        // Unknown schemas and names select nothing; they are no error.
        let Ok((schema, rest)) = split_schema(entry) else {
            continue;
        };
        let (attr, sub) = match rest {
            None => (None, None),
            Some(rest) => match rest.split_once('.') {
                Some((a, s)) => (Some(a), Some(s)),
                None => (Some(rest), None),
            },
        };
        out.push(Selector {
            schema,
            attr: attr.map(str::to_ascii_lowercase),
            sub: sub.map(str::to_ascii_lowercase),
        });
    }
    Ok(out)
}

impl Projection {
    /// Every attribute.
    pub fn all() -> Self {
        Projection { mode: Mode::All }
    }

    /// The projection of the `attributes` and `excludedAttributes` query parameters
    /// (comma-separated, without case, optionally qualified by the schema URN). Both at once, or
    /// a list longer than [`MAX_FILTER_LEN`]: 400 `invalidValue`. Names no schema defines select
    /// nothing.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, ScimError> {
        let blank = |s: Option<&str>| s.is_none_or(|s| s.trim().is_empty());
        match (attributes, excluded) {
            (a, e) if blank(a) && blank(e) => Ok(Self::all()),
            (Some(a), e) if blank(e) => Ok(Projection {
                mode: Mode::Only(selectors(a)?),
            }),
            (a, Some(e)) if blank(a) => Ok(Projection {
                mode: Mode::Except(selectors(e)?),
            }),
            _ => Err(ScimError::invalid_value(
                "attributes and excludedAttributes cannot be given together",
            )),
        }
    }

    /// `obj` (one schema's attributes) trimmed for the selectors of `schema`.
    fn trim(&self, schema: Schema, obj: &Map<String, Value>) -> Map<String, Value> {
        let (only, sels) = match &self.mode {
            Mode::All => return obj.clone(),
            Mode::Only(s) => (true, s),
            Mode::Except(s) => (false, s),
        };
        let sels: Vec<&Selector> = sels.iter().filter(|s| s.schema == schema).collect();
        if sels.iter().any(|s| s.attr.is_none()) {
            return if only { obj.clone() } else { Map::new() };
        }
        let mut out = Map::new();
        for (key, value) in obj {
            let lower = key.to_ascii_lowercase();
            let mine: Vec<&str> = sels
                .iter()
                .filter(|s| s.attr.as_deref() == Some(lower.as_str()))
                .map(|s| s.sub.as_deref().unwrap_or(""))
                .collect();
            let whole = mine.contains(&"");
            let kept = match (only, whole, mine.is_empty()) {
                (true, true, _) | (false, _, true) => Some(value.clone()),
                (true, false, true) | (false, true, _) => None,
                (_, false, false) => sub_select(value, &mine, only),
            };
            if let Some(v) = kept {
                out.insert(key.clone(), v);
            }
        }
        out
    }
}

/// `value` (an object, or a list of objects) with only (`only`) or without the sub-attributes
/// `subs` (lower case); `None` when nothing is left.
fn sub_select(value: &Value, subs: &[&str], only: bool) -> Option<Value> {
    let pick = |obj: &Map<String, Value>| -> Option<Value> {
        let kept: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| subs.contains(&k.to_ascii_lowercase().as_str()) == only)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!kept.is_empty()).then_some(Value::Object(kept))
    };
    match value {
        Value::Object(obj) => pick(obj),
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|i| i.as_object().and_then(pick))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        // A plain value has no sub-attributes: none are selected, none are excluded.
        other => (!only).then(|| other.clone()),
    }
}

/// The User resource of `user` (RFC 7643 §4.1, 8.2): `schemas` (the enterprise URN too when the
/// extension has values), `id`, the profile's attributes, `active`, and `meta` (`resourceType`
/// `User`, `created`, `lastModified`, `version` as `W/"<rv>"`, `location`
/// `<base>/Users/<id>`), trimmed by `projection`.
pub fn user_resource(user: &ScimUser, base: &str, projection: &Projection) -> Value {
    let mut doc = to_doc(&user.profile, user.active);
    let ext = doc.remove(ENTERPRISE_SCHEMA);
    let mut out = projection.trim(Schema::Core, &doc);
    if let Some(Value::Object(ext)) = ext {
        let ext = projection.trim(Schema::Enterprise, &ext);
        if !ext.is_empty() {
            out.insert(ENTERPRISE_SCHEMA.to_owned(), Value::Object(ext));
        }
    }
    let mut meta = Map::new();
    meta.insert("resourceType".to_owned(), Value::from("User"));
    let m = &user.meta;
    for (key, value) in [
        ("created", m.created.clone()),
        ("lastModified", m.last_modified.clone()),
        (
            "version",
            m.version.as_ref().map(|rv| format!("W/\"{rv}\"")),
        ),
        (
            "location",
            Some(format!("{}/Users/{}", base.trim_end_matches('/'), user.id)),
        ),
    ] {
        if let Some(value) = value {
            meta.insert(key.to_owned(), Value::String(value));
        }
    }
    let mut meta = projection
        .trim(
            Schema::Core,
            &Map::from_iter([("meta".to_owned(), Value::Object(meta))]),
        )
        .remove("meta")
        .and_then(|m| match m {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    meta.insert("resourceType".to_owned(), Value::from("User"));
    out.insert("meta".to_owned(), Value::Object(meta));
    out.insert("id".to_owned(), Value::String(user.id.clone()));
    let mut schemas = vec![Value::from(USER_SCHEMA)];
    if out.contains_key(ENTERPRISE_SCHEMA) {
        schemas.push(Value::from(ENTERPRISE_SCHEMA));
    }
    out.insert("schemas".to_owned(), Value::Array(schemas));
    Value::Object(out)
}
