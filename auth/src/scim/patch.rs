//! PATCH (RFC 7644 §3.5.2) on a stored profile, as Okta and Entra ID send it.
//!
//! The profile is turned into its SCIM document (attributes as SCIM spells them, the extension
//! under its URN, `active`), each operation changes the document, and the result is read back
//! with the same coercion and bounds as a POST ([`super::parse_user`]): what a PATCH can store,
//! a POST could have.
//!
//! # Decisions
//!
//! - `op` is compared without case (`Replace`, `Add`, `Remove` from Entra ID). A missing
//!   `Operations` list is `invalidSyntax`; an unknown op `invalidValue`; more than
//!   [`MAX_OPERATIONS`] operations `tooMany`. `schemas` may be left out; when given it must list
//!   the PatchOp URN.
//! - Paths compare without case and may carry the core schema's URN. `password`, `groups`,
//!   `roles`, `entitlements`, `x509Certificates`, `photos`, `ims` and `schemas` are dropped
//!   without an error; `id` and `meta` are `mutability`; any other name no served schema
//!   defines is `invalidPath`. In a no-path value object, `id`, `meta` and `schemas` are
//!   dropped (clients echo the resource).
//! - `add` on a single-valued attribute sets it; on a complex one (`name`, `manager`) it merges
//!   the sub-attributes given. `replace` of a complex attribute replaces it whole (what Okta
//!   means when it sends its whole `name`); of a multi-valued one replaces the list; `add` to a
//!   multi-valued one appends the values not already there (same `value`, without case).
//! - A value of `null` or `""` clears the attribute (Entra ID clears `manager` so).
//! - A filtered path (`emails[type eq "work"].value`) acts on the matching values. With none
//!   matching, `add` creates a value from the filter's comparisons and the value given.
//!   `replace` does the same when the filter only compares `type` (`emails[type eq "work"]`,
//!   `phoneNumbers[type eq "mobile"]`, `addresses[type eq "work"]`): Entra ID updates an
//!   attribute that way whether the value exists or not. Any other filtered `replace` with no
//!   match is `noTarget`, as RFC 7644 §3.5.2.3 says. `remove` with no match changes nothing.
//!   A value left with nothing but `type` and `primary` is dropped.
//! - `remove` of a required attribute (`userName`, `active`) is `invalidValue`: `active` is
//!   published as required (Gatehouse always knows it: `spec.suspended`), so removing it could
//!   only mean reactivating or suspending, which a `replace` says plainly. A whole extension
//!   object echoed back with its `schemas` key is taken without it.

use gatehouse_crds::ScimProfile;
use serde_json::{Map, Value, json};

use super::consts::{ENTERPRISE_SCHEMA, MAX_OPERATIONS, PATCH_OP};
use super::error::ScimError;
use super::filter::eq_ci;
use super::path::{Lit, Schema, parse_path, split_schema};
use super::resource::{
    coerce, coerce_complex, finish, get_ci, is_ignored, lenient_bool, lists_schema, normalize,
    to_doc,
};
use super::schema::{Attr, ENTERPRISE_ATTRS, Ty, USER_ATTRS, find};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Replace => "replace",
            Op::Remove => "remove",
        }
    }
}

/// What a path names.
#[derive(Debug)]
enum Target {
    /// An attribute Gatehouse drops.
    Ignored,
    /// The enterprise extension as a whole.
    Extension,
    Attr {
        schema: Schema,
        attr: &'static Attr,
        sub: Option<&'static Attr>,
        filter: Option<Vec<(&'static Attr, Lit)>>,
        /// The path as written.
        name: String,
    },
}

fn resolve(text: &str) -> Result<Target, ScimError> {
    let head = text.split('[').next().unwrap_or(text).trim();
    if let Ok((Schema::Core, Some(rest))) = split_schema(head) {
        let first = rest.split('.').next().unwrap_or(rest);
        if is_ignored(first) || first.eq_ignore_ascii_case("schemas") {
            return Ok(Target::Ignored);
        }
        if first.eq_ignore_ascii_case("id") || first.eq_ignore_ascii_case("meta") {
            return Err(ScimError::mutability(format!(
                "`{text}` is read-only: the server assigns it"
            )));
        }
    }
    let raw = parse_path(text)?;
    let attrs: &'static [Attr] = match raw.schema {
        Schema::Core => &USER_ATTRS,
        Schema::Enterprise => &ENTERPRISE_ATTRS,
    };
    let Some(attr_name) = raw.attr.as_deref() else {
        return match raw.schema {
            Schema::Enterprise => Ok(Target::Extension),
            Schema::Core => Err(ScimError::invalid_path(format!(
                "`{text}` names a schema, not an attribute"
            ))),
        };
    };
    let attr = find(attrs, attr_name).ok_or_else(|| {
        ScimError::invalid_path(format!(
            "`{text}`: no attribute `{attr_name}` in the User schema or the enterprise extension"
        ))
    })?;
    let sub = match raw.sub.as_deref() {
        None => None,
        Some(s) => Some(find(attr.subs, s).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "`{text}`: {} has no sub-attribute `{s}`",
                attr.name
            ))
        })?),
    };
    let filter = match raw.filter {
        None => None,
        Some(cmps) => {
            if !attr.multi {
                return Err(ScimError::invalid_path(format!(
                    "`{text}`: {} is single-valued; a value filter selects values of a \
                     multi-valued attribute",
                    attr.name
                )));
            }
            let mut conds = Vec::new();
            for c in cmps {
                let (Schema::Core, Some(name), None, Some(lit)) = (
                    c.path.schema,
                    c.path.attr.as_deref(),
                    c.path.sub.as_deref(),
                    c.value,
                ) else {
                    return Err(ScimError::invalid_filter(format!(
                        "`{}` in `{text}` is no comparison of a sub-attribute",
                        c.path.text
                    )));
                };
                let sub = find(attr.subs, name).ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "`{text}`: {} has no sub-attribute `{name}`",
                        attr.name
                    ))
                })?;
                conds.push((sub, lit));
            }
            Some(conds)
        }
    };
    Ok(Target::Attr {
        schema: raw.schema,
        attr,
        sub,
        filter,
        name: text.to_owned(),
    })
}

/// Runs `f` on the attributes of `schema` in `doc` (the extension's object, kept only when it
/// has values).
fn in_schema(
    doc: &mut Map<String, Value>,
    schema: Schema,
    f: impl FnOnce(&mut Map<String, Value>) -> Result<(), ScimError>,
) -> Result<(), ScimError> {
    match schema {
        Schema::Core => f(doc),
        Schema::Enterprise => {
            let mut ext = match doc.remove(ENTERPRISE_SCHEMA) {
                Some(Value::Object(ext)) => ext,
                _ => Map::new(),
            };
            let result = f(&mut ext);
            if !ext.is_empty() {
                doc.insert(ENTERPRISE_SCHEMA.to_owned(), Value::Object(ext));
            }
            result
        }
    }
}

fn take_object(c: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match c.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn take_list(c: &mut Map<String, Value>, key: &str) -> Vec<Value> {
    match c.remove(key) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

fn put(c: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if !empty {
        c.insert(key.to_owned(), value);
    }
}

/// Sets (or, `None`, removes) sub-attribute `sub` of one value.
fn set_sub(item: &mut Value, sub: &Attr, value: Option<Value>) {
    if let Value::Object(m) = item {
        match value {
            Some(v) => {
                m.insert(sub.name.to_owned(), v);
            }
            None => {
                m.remove(sub.name);
            }
        }
    }
}

/// Drops values left with nothing but `type` and `primary`.
fn prune(list: &mut Vec<Value>) {
    list.retain(|v| {
        v.as_object()
            .is_some_and(|m| m.keys().any(|k| k != "type" && k != "primary"))
    });
}

/// Whether two values of a multi-valued attribute are the same: the same `value` (without
/// case), or equal.
fn same(a: &Value, b: &Value) -> bool {
    match (
        a.get("value").and_then(Value::as_str),
        b.get("value").and_then(Value::as_str),
    ) {
        (Some(x), Some(y)) => eq_ci(x, y),
        _ => a == b,
    }
}

fn lit_value(lit: &Lit) -> Value {
    match lit {
        Lit::Str(s) => Value::String(s.clone()),
        Lit::Bool(b) => Value::Bool(*b),
    }
}

/// Whether one value matches every comparison of a filter.
fn holds(item: &Value, conds: &[(&Attr, Lit)]) -> bool {
    conds
        .iter()
        .all(|(sub, lit)| match (item.get(sub.name), lit) {
            (Some(Value::String(have)), Lit::Str(want)) if sub.ty == Ty::Str => {
                if sub.case_exact {
                    have == want
                } else {
                    eq_ci(have, want)
                }
            }
            (Some(have), lit) if sub.ty == Ty::Bool => {
                lenient_bool(have).is_some_and(|h| lenient_bool(&lit_value(lit)) == Some(h))
            }
            _ => false,
        })
}

fn is_blank(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

fn set(
    doc: &mut Map<String, Value>,
    op: Op,
    target: &Target,
    value: &Value,
) -> Result<(), ScimError> {
    match target {
        Target::Ignored => Ok(()),
        Target::Extension => match value {
            Value::Object(values) => {
                // `replace` of the whole extension replaces it; `add` merges into it.
                if op == Op::Replace {
                    doc.remove(ENTERPRISE_SCHEMA);
                }
                for (key, v) in values {
                    if ECHOED.iter().any(|e| e.eq_ignore_ascii_case(key)) {
                        continue;
                    }
                    set(doc, op, &resolve(&format!("{ENTERPRISE_SCHEMA}:{key}"))?, v)?;
                }
                Ok(())
            }
            v if is_blank(v) => {
                doc.remove(ENTERPRISE_SCHEMA);
                Ok(())
            }
            v => Err(ScimError::invalid_value(format!(
                "{ENTERPRISE_SCHEMA} takes an object, not {v}"
            ))),
        },
        Target::Attr {
            schema,
            attr,
            sub,
            filter,
            name,
        } => in_schema(doc, *schema, |c| {
            set_attr(c, op, attr, *sub, filter.as_deref(), name, value)
        }),
    }
}

fn set_attr(
    c: &mut Map<String, Value>,
    op: Op,
    attr: &Attr,
    sub: Option<&Attr>,
    filter: Option<&[(&Attr, Lit)]>,
    name: &str,
    value: &Value,
) -> Result<(), ScimError> {
    match (attr.multi, filter, sub) {
        (false, _, None) => match (op, coerce(attr, value, name)?) {
            (_, None) => {
                c.remove(attr.name);
            }
            (Op::Add, Some(Value::Object(more))) => {
                let mut have = take_object(c, attr.name);
                have.extend(more);
                put(c, attr.name, Value::Object(have));
            }
            (_, Some(v)) => {
                c.insert(attr.name.to_owned(), v);
            }
        },
        (false, _, Some(sub)) => {
            let v = coerce(sub, value, name)?;
            let mut have = Value::Object(take_object(c, attr.name));
            set_sub(&mut have, sub, v);
            put(c, attr.name, have);
        }
        (true, None, None) => match (op, coerce(attr, value, name)?) {
            (Op::Add, None) if value.is_array() => {}
            (_, None) => {
                c.remove(attr.name);
            }
            (Op::Add, Some(Value::Array(more))) => {
                let mut list = take_list(c, attr.name);
                for item in more {
                    if !list.iter().any(|have| same(have, &item)) {
                        list.push(item);
                    }
                }
                put(c, attr.name, Value::Array(list));
            }
            (_, Some(v)) => {
                c.insert(attr.name.to_owned(), v);
            }
        },
        (true, None, Some(sub)) => {
            let v = coerce(sub, value, name)?;
            let mut list = take_list(c, attr.name);
            if list.is_empty() {
                if let Some(v) = v {
                    list.push(json!({ sub.name: v }));
                }
            } else {
                for item in &mut list {
                    set_sub(item, sub, v.clone());
                }
                prune(&mut list);
            }
            put(c, attr.name, Value::Array(list));
        }
        (true, Some(conds), sub) => {
            let given = match sub {
                Some(sub) => coerce(sub, value, name)?,
                None => coerce_complex(attr, value, name)?,
            };
            let mut list = take_list(c, attr.name);
            let hits: Vec<usize> = (0..list.len())
                .filter(|&i| holds(&list[i], conds))
                .collect();
            let mut from_filter = Map::new();
            for (s, lit) in conds {
                if let Some(v) = coerce(s, &lit_value(lit), name)? {
                    from_filter.insert(s.name.to_owned(), v);
                }
            }
            if hits.is_empty() {
                if op == Op::Replace && !conds.iter().all(|(s, _)| s.name == "type") {
                    put(c, attr.name, Value::Array(list));
                    return Err(ScimError::no_target(format!(
                        "`{name}`: no value of {} matches the filter",
                        attr.name
                    )));
                }
                let mut item = Value::Object(from_filter);
                match (sub, given) {
                    (Some(sub), Some(v)) => set_sub(&mut item, sub, Some(v)),
                    (None, Some(Value::Object(m))) => {
                        if let Value::Object(have) = &mut item {
                            have.extend(m);
                        }
                    }
                    _ => {}
                }
                list.push(item);
            } else {
                for &i in &hits {
                    match (sub, &given) {
                        (Some(sub), v) => set_sub(&mut list[i], sub, v.clone()),
                        (None, Some(Value::Object(m))) => {
                            let mut item = if op == Op::Add {
                                list[i].as_object().cloned().unwrap_or_default()
                            } else {
                                from_filter.clone()
                            };
                            item.extend(m.clone());
                            list[i] = Value::Object(item);
                        }
                        (None, _) => list[i] = Value::Null,
                    }
                }
            }
            prune(&mut list);
            put(c, attr.name, Value::Array(list));
        }
    }
    Ok(())
}

fn remove(
    doc: &mut Map<String, Value>,
    target: &Target,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let Target::Attr {
        schema,
        attr,
        sub,
        filter,
        name,
    } = target
    else {
        if let Target::Extension = target {
            doc.remove(ENTERPRISE_SCHEMA);
        }
        return Ok(());
    };
    if attr.required {
        return Err(ScimError::invalid_value(format!(
            "`{}` is required and cannot be removed: replace it",
            attr.name
        )));
    }
    in_schema(doc, *schema, |c| {
        match (attr.multi, filter.as_deref(), sub) {
            (false, _, None) => {
                c.remove(attr.name);
            }
            (false, _, Some(sub)) => {
                let mut have = Value::Object(take_object(c, attr.name));
                set_sub(&mut have, sub, None);
                put(c, attr.name, have);
            }
            (true, None, None) => match value.map(|v| coerce(attr, v, name)).transpose()? {
                Some(Some(Value::Array(gone))) => {
                    let mut list = take_list(c, attr.name);
                    list.retain(|have| !gone.iter().any(|g| same(have, g)));
                    put(c, attr.name, Value::Array(list));
                }
                _ => {
                    c.remove(attr.name);
                }
            },
            (true, conds, sub) => {
                let mut list = take_list(c, attr.name);
                for item in &mut list {
                    if conds.is_none_or(|conds| holds(item, conds)) {
                        match sub {
                            Some(sub) => set_sub(item, sub, None),
                            None => *item = Value::Null,
                        }
                    }
                }
                prune(&mut list);
                put(c, attr.name, Value::Array(list));
            }
        }
        Ok(())
    })
}

/// Keys of a no-path value object that are dropped: clients echo them from the resource.
const ECHOED: [&str; 3] = ["schemas", "id", "meta"];

fn operation(doc: &mut Map<String, Value>, op: &Value) -> Result<(), ScimError> {
    let Value::Object(op) = op else {
        return Err(ScimError::invalid_syntax(
            "an operation must be a JSON object",
        ));
    };
    let kind = match get_ci(op, "op") {
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" => Op::Remove,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "unknown op `{s}` (add, replace or remove)"
                )));
            }
        },
        _ => return Err(ScimError::invalid_syntax("an operation needs `op`")),
    };
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim()),
        Some(other) => {
            return Err(ScimError::invalid_path(format!(
                "`path` must be a string, not {other}"
            )));
        }
    };
    let value = get_ci(op, "value");
    match (kind, path) {
        (Op::Remove, None) => Err(ScimError::no_target("remove needs a path")),
        (Op::Remove, Some(path)) => remove(doc, &resolve(path)?, value),
        (_, Some(path)) => {
            let value = value.ok_or_else(|| {
                ScimError::invalid_value(format!("{} of `{path}` needs a value", kind.name()))
            })?;
            set(doc, kind, &resolve(path)?, value)
        }
        (_, None) => {
            let Some(Value::Object(values)) = value else {
                return Err(ScimError::invalid_value(format!(
                    "{} without a path needs an object value",
                    kind.name()
                )));
            };
            for (key, v) in values {
                if ECHOED.iter().any(|e| e.eq_ignore_ascii_case(key)) {
                    continue;
                }
                set(doc, kind, &resolve(key)?, v)?;
            }
            Ok(())
        }
    }
}

/// Applies a PATCH body to `(profile, active)` and returns the new pair; see the module's
/// decisions. The result has a non-empty `userName` and fits the CRD's bounds, else 400
/// `invalidValue` naming the attribute. Errors of one operation name it (`Operations[2]: …`).
pub fn apply_patch(
    profile: &ScimProfile,
    active: bool,
    body: &Value,
) -> Result<(ScimProfile, bool), ScimError> {
    let Value::Object(request) = body else {
        return Err(ScimError::invalid_syntax(
            "a PATCH body must be a JSON object",
        ));
    };
    if let Some(schemas) = get_ci(request, "schemas")
        && !lists_schema(Some(schemas), PATCH_OP)
    {
        return Err(ScimError::invalid_syntax(format!(
            "`schemas` must list {PATCH_OP}"
        )));
    }
    let ops = match get_ci(request, "Operations") {
        Some(Value::Array(ops)) => ops,
        Some(_) => return Err(ScimError::invalid_syntax("`Operations` must be a list")),
        None => {
            return Err(ScimError::invalid_syntax(
                "a PATCH body needs an `Operations` list",
            ));
        }
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::too_many(format!(
            "at most {MAX_OPERATIONS} operations ({} given)",
            ops.len()
        )));
    }
    let mut doc = to_doc(profile, active);
    for (n, op) in ops.iter().enumerate() {
        operation(&mut doc, op).map_err(|e| e.within(&format!("Operations[{n}]")))?;
    }
    let (profile, active) = finish(normalize(&doc)?)?;
    Ok((profile, active.unwrap_or(true)))
}
