//! Filters for `GET /Users` (RFC 7644 §3.4.2.2), the subset Okta and Entra ID send: `eq`
//! comparisons joined by `and` (any case, parentheses allowed) on `userName` (compared without
//! case), `externalId` and `id` (with case), `emails.value` and `emails[…]` value paths (without
//! case), `active`, `displayName`, `name.givenName` and `name.familyName` (without case).
//! Anything else is refused with `invalidFilter`, naming the operator or attribute.

use std::fmt;

use super::error::ScimError;
use super::path::{Lit, RawCmp, RawPath, Schema, parse_conjunction};
use super::resource::ScimUser;

const SUPPORTED: &str = "userName, externalId, id, emails.value, emails[…], active, displayName, \
                         name.givenName, name.familyName";

/// A parsed filter: comparisons that must all hold.
#[derive(Clone, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.terms).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    UserName(String),
    ExternalId(String),
    Id(String),
    Active(bool),
    DisplayName(String),
    GivenName(String),
    FamilyName(String),
    /// Some email has all of these.
    Email(Vec<EmailCond>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EmailCond {
    Value(String),
    Type(String),
    Primary(bool),
    Display(String),
}

/// Strings compared without case (Unicode lower case).
pub(crate) fn eq_ci(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

fn string(path: &RawPath, value: Option<Lit>) -> Result<String, ScimError> {
    match value {
        Some(Lit::Str(s)) => Ok(s),
        _ => Err(ScimError::invalid_filter(format!(
            "`{}` compares with a string",
            path.text
        ))),
    }
}

fn boolean(path: &RawPath, value: Option<Lit>) -> Result<bool, ScimError> {
    match value {
        Some(Lit::Bool(b)) => Ok(b),
        Some(Lit::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Lit::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_filter(format!(
            "`{}` compares with true or false",
            path.text
        ))),
    }
}

fn unsupported(path: &RawPath) -> ScimError {
    ScimError::invalid_filter(format!(
        "filtering on `{}` is not supported (supported: {SUPPORTED})",
        path.text
    ))
}

fn email_cond(path: &RawPath, sub: &str, value: Option<Lit>) -> Result<EmailCond, ScimError> {
    match sub.to_ascii_lowercase().as_str() {
        "value" => Ok(EmailCond::Value(string(path, value)?)),
        "type" => Ok(EmailCond::Type(string(path, value)?)),
        "display" => Ok(EmailCond::Display(string(path, value)?)),
        "primary" => Ok(EmailCond::Primary(boolean(path, value)?)),
        _ => Err(unsupported(path)),
    }
}

fn term(cmp: RawCmp) -> Result<Term, ScimError> {
    let RawCmp { path, value } = cmp;
    let (Schema::Core, Some(attr)) = (path.schema, path.attr.as_deref()) else {
        return Err(unsupported(&path));
    };
    let attr = attr.to_ascii_lowercase();
    let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
    if let Some(inner) = &path.filter {
        if attr != "emails" {
            return Err(unsupported(&path));
        }
        let mut conds = Vec::new();
        for c in inner {
            match (&c.path.attr, &c.path.sub, c.path.schema) {
                (Some(name), None, Schema::Core) => {
                    conds.push(email_cond(&c.path, name, c.value.clone())?);
                }
                _ => return Err(unsupported(&c.path)),
            }
        }
        if let Some(sub) = &sub {
            conds.push(email_cond(&path, sub, value)?);
        }
        return Ok(Term::Email(conds));
    }
    match (attr.as_str(), sub.as_deref()) {
        ("username", None) => Ok(Term::UserName(string(&path, value)?)),
        ("externalid", None) => Ok(Term::ExternalId(string(&path, value)?)),
        ("id", None) => Ok(Term::Id(string(&path, value)?)),
        ("displayname", None) => Ok(Term::DisplayName(string(&path, value)?)),
        ("active", None) => Ok(Term::Active(boolean(&path, value)?)),
        ("name", Some("givenname")) => Ok(Term::GivenName(string(&path, value)?)),
        ("name", Some("familyname")) => Ok(Term::FamilyName(string(&path, value)?)),
        ("emails", Some(sub)) => Ok(Term::Email(vec![email_cond(&path, sub, value)?])),
        _ => Err(unsupported(&path)),
    }
}

/// Parses a `filter` query parameter. Longer than [`super::consts::MAX_FILTER_LEN`], nested deeper
/// than 8, malformed, or using an operator or attribute outside the subset: 400
/// `invalidFilter`, naming it.
pub fn parse_filter(s: &str) -> Result<Filter, ScimError> {
    let terms = parse_conjunction(s)?
        .into_iter()
        .map(term)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Filter { terms })
}

fn opt_eq_ci(have: Option<&String>, want: &str) -> bool {
    have.is_some_and(|h| eq_ci(h, want))
}

impl Filter {
    /// Whether `user` matches every comparison.
    pub fn matches(&self, user: &ScimUser) -> bool {
        let p = &user.profile;
        let name = p.name.as_ref();
        self.terms.iter().all(|t| match t {
            Term::UserName(v) => eq_ci(&p.user_name, v),
            Term::ExternalId(v) => p.external_id.as_deref() == Some(v.as_str()),
            Term::Id(v) => user.id == *v,
            Term::Active(v) => user.active == *v,
            Term::DisplayName(v) => opt_eq_ci(p.display_name.as_ref(), v),
            Term::GivenName(v) => opt_eq_ci(name.and_then(|n| n.given_name.as_ref()), v),
            Term::FamilyName(v) => opt_eq_ci(name.and_then(|n| n.family_name.as_ref()), v),
            Term::Email(conds) => p.emails.iter().any(|e| {
                conds.iter().all(|c| match c {
                    EmailCond::Value(v) => opt_eq_ci(e.value.as_ref(), v),
                    EmailCond::Type(v) => opt_eq_ci(e.kind.as_ref(), v),
                    EmailCond::Display(v) => opt_eq_ci(e.display.as_ref(), v),
                    EmailCond::Primary(v) => e.primary.unwrap_or(false) == *v,
                })
            }),
        })
    }

    /// The `userName` an `eq` comparison pins, if any: every match has it (without case), so
    /// the caller may read only the users of that name.
    pub fn user_name(&self) -> Option<&str> {
        self.terms.iter().find_map(|t| match t {
            Term::UserName(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// The `externalId` an `eq` comparison pins, if any (every match has exactly it).
    pub fn external_id(&self) -> Option<&str> {
        self.terms.iter().find_map(|t| match t {
            Term::ExternalId(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// The `id` an `eq` comparison pins, if any.
    pub fn id(&self) -> Option<&str> {
        self.terms.iter().find_map(|t| match t {
            Term::Id(v) => Some(v.as_str()),
            _ => None,
        })
    }
}
