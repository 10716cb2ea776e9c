//! Access rules (`spec.access`): whether one request may reach the app. Pure; the sidecar calls
//! [`Policy::decide`] on every request with facts it already holds.
//!
//! [`Policy::compile`] refuses what [`gatehouse_crds::rules::check_access`] refuses and prepares
//! every rule once (lower-cased hosts and email domains, method sets, parsed claim values), so a
//! decision allocates nothing per rule: at most the request's canonical path and its host, once.
//!
//! # Decision
//!
//! A rule matches when its `from`, `to` and `when` all match. Any matching `Deny` rule refuses the
//! request (the first by name is reported); otherwise any matching `Allow` rule admits it (the
//! first by name); otherwise `defaultAction` (default `Deny`) decides. The order of the rules never
//! matters. An anonymous request that is refused gets [`Decision::SignIn`] when credentials could
//! change the answer: no matching `Deny` rule applies to everyone (one with neither `from` nor
//! `when`), and `defaultAction` is `Allow` or some `Allow` rule that asks about the principal (has
//! a `from` or a `when`) matches the request's method, host and path.
//!
//! # `from`: who
//!
//! Entries are alternatives; inside one entry every field set must hold. No `from` matches every
//! request, anonymous ones included; a rule with a `from` never matches an anonymous request (so a
//! `Deny` rule meant for everyone has no `from`). `authenticated: true` holds for any principal.
//! `roles`, `principalTypes`: the principal's is listed. `groups`: one of the principal's groups is
//! listed (exact, case-sensitive); when the groups could not be read (an Entra ID group overage
//! Microsoft Graph did not answer, [`Policy::decide_groups_unknown`]) it holds for `Deny` rules
//! and never for `Allow` rules. `users`, `providers`, `serviceAccounts`, `clients`: exact.
//! `emails`: the verified address has exactly one `@`, its local part equal and its domain equal
//! ignoring ASCII case. `emailDomains`: the verified address has exactly one `@` and its whole
//! domain equals a listed one ignoring ASCII case (`example.com` covers neither `sub.example.com`
//! nor `evilexample.com`). A fact the principal lacks (no email, no role, no service account)
//! never matches.
//!
//! # `to`: which requests
//!
//! Entries are alternatives; inside one entry every field set must hold.
//!
//! - `paths`: prefixes on segment boundaries ([`under_prefix`]), case-sensitive, of the request's
//!   canonical path ([`canonical_path`], after cutting a query at `?`), in which percent-encoded
//!   characters a rule path may hold (`!$&'()*+=:@`) are decoded too, so `/a%3Ab` is `/a:b` for
//!   `Allow` and `Deny` alike. A path that is ambiguous (what `canonical_path` refuses, or one with
//!   a `#`) matches no path of an `Allow` rule and every path of a `Deny` rule: it fails closed,
//!   never answered 400.
//! - `hosts`: equal to [`normalize_host`] of the `Host` header (lower case, no port, no trailing
//!   dot). A missing or malformed `Host` fails closed like an ambiguous path: it matches no host of
//!   an `Allow` rule and every host of a `Deny` rule.
//! - `methods`: exact; a `GET` entry covers `HEAD` too. A method no rule can name never matches,
//!   except that a case variant of a nameable one (`post`, which some frameworks upper-case) fails
//!   closed: no method of an `Allow` rule, but a `Deny` rule's method it spells.
//!
//! # `when`: claims
//!
//! All conditions must hold. The claim is found by its exact name first, else by its dotted path
//! through nested objects ([`crate::claims::lookup`]); `null` counts as absent. `values` holds when
//! the claim is a string equal to a value or one of whose space-separated words is
//! (`scp: "read write"`), or an array with an element equal to a value; numbers and booleans (as
//! the claim or as array elements) equal a value that reads as the same JSON number or boolean
//! (`4711`, `true`); objects never. `present: true` holds when the claim is present, `present:
//! false` when it is absent. An anonymous request has no claims: `present: false` holds for it,
//! `values` and `present: true` never do.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

pub use gatehouse_crds::Role;
use gatehouse_crds::access::{AccessRule, ClaimCondition, Method, Operation, Principal};
pub use gatehouse_crds::access::{AccessSpec, Action, PrincipalType};
use serde_json::{Map, Number, Value};

use crate::claims::lookup;
use crate::paths::{canonical_path, under_prefix};

/// The claim (SAML: attribute) a provider's groups are read from when its config names none.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// Most groups recorded of one user (on the SsoUser); more are dropped, in the IdP's order.
pub const MAX_RECORDED_GROUPS: usize = 256;
/// Longest group name kept; a longer one is dropped.
pub const MAX_GROUP_BYTES: usize = 256;
/// Most bytes (as JSON) of the claims a session keeps for the rules' `when` conditions.
pub const MAX_SESSION_CLAIM_BYTES: usize = 1024;

/// The user's groups in claim `claim` (exact name first, then a dotted path): an array of
/// strings, or one string; other values are no groups. Empty and over-long names are dropped, and
/// at most [`MAX_RECORDED_GROUPS`] kept.
pub fn groups_from_claims(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    groups_in(claims, claim, MAX_RECORDED_GROUPS)
}

/// The first `limit` groups in claim `claim`, as [`groups_from_claims`] reads them.
fn groups_in(claims: &Map<String, Value>, claim: &str, limit: usize) -> Vec<String> {
    let keep = |g: &&str| !g.is_empty() && g.len() <= MAX_GROUP_BYTES;
    match lookup(claims, claim) {
        Some(Value::String(one)) => [one.as_str()]
            .into_iter()
            .filter(keep)
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(keep)
            .take(limit)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The claims the rules name came to more than [`MAX_SESSION_CLAIM_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimsTooLarge;

/// Why a spec cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The problems [`gatehouse_crds::rules::check_access`] found: (field under `access`, message).
    Invalid(Vec<(String, &'static str)>),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Invalid(problems) => {
                for (n, (field, message)) in problems.iter().enumerate() {
                    if n > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "access.{field}: {message}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PolicyError {}

/// What the sidecar knows about a request, before knowing who sent it.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The request method.
    pub method: &'a http::Method,
    /// The raw `Host` header (or HTTP/2 `:authority`), never `X-Forwarded-Host`.
    pub host: Option<&'a str>,
    /// The raw request path, without the query (a `?…` is cut off if present).
    pub path: &'a str,
}

/// Who sent a request: a signed-in user or a machine token's principal.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// `User` (browser session) or `Machine` (bearer token).
    pub kind: PrincipalType,
    /// The SsoUser name; for a machine, its id.
    pub user: &'a str,
    /// The Gatehouse role, if the principal has one.
    pub role: Option<Role>,
    /// The principal's groups (a session keeps those of [`Policy::referenced_groups`]).
    pub groups: &'a [String],
    /// A verified email address; never an unverified one.
    pub email: Option<&'a str>,
    /// The provider id, or the machine issuer's name.
    pub provider: &'a str,
    /// `namespace/name` of a Kubernetes ServiceAccount token.
    pub service_account: Option<&'a str>,
    /// The machine issuer's name (`machineAuth.issuers[].name`).
    pub client: Option<&'a str>,
    /// The claims `when` conditions read (at least those of [`Policy::referenced_claims`]);
    /// `None` is the same as no claims at all.
    pub claims: Option<&'a Map<String, Value>>,
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'p> {
    /// The request may pass: admitted by the named `Allow` rule, or by `defaultAction` (`None`).
    Allow {
        /// The `Allow` rule, first by name; `None` for `defaultAction`.
        rule: Option<&'p str>,
    },
    /// The request is refused (403 for a principal).
    Deny {
        /// The `Deny` rule, first by name; `None` for `defaultAction`.
        rule: Option<&'p str>,
    },
    /// An anonymous request refused, which a signed-in principal could be admitted for: sign in
    /// (a login redirect, or 401 for an API client).
    SignIn,
}

/// A compiled access policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `Deny` rules, by name.
    denies: Vec<Rule>,
    /// `Allow` rules, by name.
    allows: Vec<Rule>,
    default: Action,
    groups: BTreeSet<String>,
    claims: BTreeSet<String>,
    /// [`Policy::facts_fingerprint`].
    fingerprint: Option<String>,
    uses_hosts: bool,
    uses_paths: bool,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    from: Vec<FromEntry>,
    to: Vec<ToEntry>,
    when: Vec<Condition>,
}

/// One `from` entry; an empty list is no condition.
#[derive(Debug, Clone)]
struct FromEntry {
    roles: Vec<Role>,
    groups: BTreeSet<String>,
    /// (local part, lower-cased domain)
    emails: Vec<(String, String)>,
    /// lower-cased
    email_domains: Vec<String>,
    users: Vec<String>,
    providers: Vec<String>,
    principal_types: Vec<PrincipalType>,
    service_accounts: Vec<String>,
    clients: Vec<String>,
}

/// One `to` entry; an empty list (or no method bit) is no condition.
#[derive(Debug, Clone)]
struct ToEntry {
    /// lower-cased
    hosts: Vec<String>,
    paths: Vec<String>,
    methods: u8,
}

#[derive(Debug, Clone)]
struct Condition {
    claim: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Values {
        strings: Vec<String>,
        /// The values that read as JSON numbers.
        numbers: Vec<Number>,
        /// Whether `true` (`false`) is one of the values.
        bools: [bool; 2],
    },
    Present(bool),
}

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// The method's bit in a method set.
fn method_bit(method: Method) -> u8 {
    match method {
        Method::GET => 1,
        Method::HEAD => 1 << 1,
        Method::POST => 1 << 2,
        Method::PUT => 1 << 3,
        Method::PATCH => 1 << 4,
        Method::DELETE => 1 << 5,
        Method::OPTIONS => 1 << 6,
    }
}

impl Policy {
    /// Of a user's `groups`, those some rule names: all a session needs to be decided.
    pub fn session_groups(&self, groups: &[String]) -> Vec<String> {
        groups
            .iter()
            .filter(|g| self.referenced_groups().contains(g.as_str()))
            .cloned()
            .collect()
    }

    /// Of the groups in claim `claim` (read as [`groups_from_claims`] reads them, but all of
    /// them, not only the first [`MAX_RECORDED_GROUPS`]: a user's groups read from Microsoft
    /// Graph can be thousands), those some rule names.
    pub fn session_groups_from_claims(
        &self,
        claims: &Map<String, Value>,
        claim: &str,
    ) -> Vec<String> {
        if self.groups.is_empty() {
            return Vec::new();
        }
        self.session_groups(&groups_in(claims, claim, usize::MAX))
    }

    /// Of the ID token's `claims`, those some `when` condition names (by their top-level name),
    /// for the session; `None` when no condition names a claim. Refused when they come to more
    /// than [`MAX_SESSION_CLAIM_BYTES`] as JSON: dropping some would let a `Deny` rule that asks
    /// about them miss.
    pub fn session_claims(
        &self,
        claims: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, ClaimsTooLarge> {
        if self.referenced_claims().is_empty() {
            return Ok(None);
        }
        let kept: Map<String, Value> = claims
            .iter()
            .filter(|(name, _)| self.referenced_claims().contains(name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let size = serde_json::to_vec(&kept).map_or(usize::MAX, |json| json.len());
        if size > MAX_SESSION_CLAIM_BYTES {
            return Err(ClaimsTooLarge);
        }
        Ok(Some(kept))
    }

    /// Which groups and claims a session must carry to be decided by this policy: a short hash
    /// of [`Policy::referenced_groups`] and [`Policy::referenced_claims`], `None` when the rules
    /// name neither. A session records the fingerprint of the policy it was signed in (or
    /// re-validated) under ([`crate::cookie::Session::facts`]); under a policy that names other
    /// groups or claims, it lacks facts a rule may ask about, so it is not decided on them (a
    /// `Deny` on a group it was never asked for must not miss): it signs in again.
    pub fn facts_fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Whether `session_facts` (a session's recorded fingerprint) is this policy's.
    pub fn facts_current(&self, session_facts: Option<&str>) -> bool {
        session_facts == self.facts_fingerprint()
    }

    /// Checks `spec` with [`gatehouse_crds::rules::check_access`] and prepares its rules.
    pub fn compile(spec: &AccessSpec) -> Result<Policy, PolicyError> {
        let problems = gatehouse_crds::rules::check_access(spec);
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        let mut rules: Vec<&AccessRule> = spec.rules.iter().collect();
        rules.sort_by(|a, b| a.name.cmp(&b.name));
        let mut policy = Policy {
            denies: Vec::new(),
            allows: Vec::new(),
            default: spec.default_action(),
            groups: BTreeSet::new(),
            claims: BTreeSet::new(),
            fingerprint: None,
            uses_hosts: false,
            uses_paths: false,
        };
        for rule in rules {
            for p in &rule.from {
                policy.groups.extend(p.groups.iter().cloned());
            }
            for c in &rule.when {
                policy.claims.insert(c.claim.clone());
                if let Some((top, _)) = c.claim.split_once('.') {
                    policy.claims.insert(top.to_owned());
                }
            }
            policy.uses_hosts |= rule.to.iter().any(|o| !o.hosts.is_empty());
            policy.uses_paths |= rule.to.iter().any(|o| !o.paths.is_empty());
            let compiled = Rule {
                name: rule.name.clone(),
                from: rule.from.iter().map(FromEntry::compile).collect(),
                to: rule.to.iter().map(ToEntry::compile).collect(),
                when: rule.when.iter().map(Condition::compile).collect(),
            };
            match rule.action {
                Action::Deny => policy.denies.push(compiled),
                Action::Allow => policy.allows.push(compiled),
            }
        }
        policy.fingerprint = facts_fingerprint(&policy.groups, &policy.claims);
        Ok(policy)
    }

    /// The answer for `request` from `who` (`None`: anonymous).
    pub fn decide(&self, request: &RequestFacts<'_>, who: Option<&Who<'_>>) -> Decision<'_> {
        self.decide_as(request, who, true)
    }

    /// The answer for `request` from a principal whose groups could not be read (an Entra ID
    /// group overage that Microsoft Graph did not answer): `who.groups` is not a full list, so a
    /// `from` entry that names groups never admits (an `Allow` rule needing a group does not
    /// match) and always holds for a `Deny` rule (it fails closed). Its other fields still decide.
    pub fn decide_groups_unknown(&self, request: &RequestFacts<'_>, who: &Who<'_>) -> Decision<'_> {
        self.decide_as(request, Some(who), false)
    }

    fn decide_as(
        &self,
        request: &RequestFacts<'_>,
        who: Option<&Who<'_>>,
        groups_known: bool,
    ) -> Decision<'_> {
        let facts = Facts {
            method: MethodFact::of(request.method),
            host: if self.uses_hosts {
                request.host.and_then(normalize_host)
            } else {
                None
            },
            path: if self.uses_paths {
                request_path(request.path)
            } else {
                None
            },
        };
        let who = who.map(|w| Asker {
            who: w,
            email: w.email.and_then(split_email),
            groups_known,
        });
        let who = who.as_ref();

        let mut denied: Option<&Rule> = None;
        for rule in &self.denies {
            if rule.matches(true, &facts, who) {
                let first = *denied.get_or_insert(rule);
                // A principal's refusal is final; an anonymous one unless only `when` made the
                // rule match (a signed-in principal's claims might not).
                if who.is_some() || rule.when.is_empty() {
                    return Decision::Deny {
                        rule: Some(&first.name),
                    };
                }
            }
        }
        if let Some(rule) = denied {
            return if self.sign_in_may_help(&facts) {
                Decision::SignIn
            } else {
                Decision::Deny {
                    rule: Some(&rule.name),
                }
            };
        }
        if let Some(rule) = self.allows.iter().find(|r| r.matches(false, &facts, who)) {
            return Decision::Allow {
                rule: Some(&rule.name),
            };
        }
        match self.default {
            Action::Allow => Decision::Allow { rule: None },
            Action::Deny if who.is_none() && self.sign_in_may_help(&facts) => Decision::SignIn,
            Action::Deny => Decision::Deny { rule: None },
        }
    }

    /// For an anonymous request refused by no unconditional `Deny` rule: whether a signed-in
    /// principal could be admitted.
    fn sign_in_may_help(&self, facts: &Facts<'_>) -> bool {
        self.default == Action::Allow
            || self.allows.iter().any(|r| {
                (!r.from.is_empty() || !r.when.is_empty()) && r.request_matches(false, facts)
            })
    }

    /// Groups any rule names: the session keeps only these of a user's groups (cookies are small).
    pub fn referenced_groups(&self) -> &BTreeSet<String> {
        &self.groups
    }

    /// Claims any `when` reads: each condition's claim name as written, and the top-level name of
    /// its dotted path. Keeping the claims with these names keeps every value a `when` can read.
    pub fn referenced_claims(&self) -> &BTreeSet<String> {
        &self.claims
    }

    /// How many rules the policy has.
    pub fn rule_count(&self) -> usize {
        self.denies.len() + self.allows.len()
    }

    /// The answer for a request no rule matches.
    pub fn default_action(&self) -> Action {
        self.default
    }
}

/// The request, prepared once per decision.
struct Facts<'r> {
    method: MethodFact,
    /// Normalized; `None` when missing or malformed (or no rule names hosts).
    host: Option<Cow<'r, str>>,
    /// Canonical; `None` when ambiguous (or no rule names paths).
    path: Option<Cow<'r, str>>,
}

/// The principal asking, with its email split once per decision.
struct Asker<'w, 'a> {
    who: &'w Who<'a>,
    /// (local part, domain) of an address with exactly one `@`.
    email: Option<(&'a str, &'a str)>,
    /// Whether `who.groups` is the principal's full list; when not, a `from` entry naming groups
    /// holds for `Deny` rules only.
    groups_known: bool,
}

#[derive(Debug, Clone, Copy)]
enum MethodFact {
    /// A method rules can name: its bit.
    Known(u8),
    /// A case variant of a method rules can name (`post`): its bit.
    Variant(u8),
    /// Any other method.
    Other,
}

impl MethodFact {
    fn of(method: &http::Method) -> MethodFact {
        let s = method.as_str();
        if let Some(m) = METHODS.iter().find(|m| m.as_str() == s) {
            MethodFact::Known(method_bit(*m))
        } else if let Some(m) = METHODS.iter().find(|m| m.as_str().eq_ignore_ascii_case(s)) {
            MethodFact::Variant(method_bit(*m))
        } else {
            MethodFact::Other
        }
    }
}

impl Rule {
    fn matches(&self, deny: bool, facts: &Facts<'_>, who: Option<&Asker<'_, '_>>) -> bool {
        self.request_matches(deny, facts)
            && self.principal_matches(deny, who)
            && self.when_holds(who)
    }

    fn request_matches(&self, deny: bool, facts: &Facts<'_>) -> bool {
        self.to.is_empty() || self.to.iter().any(|o| o.matches(deny, facts))
    }

    fn principal_matches(&self, deny: bool, who: Option<&Asker<'_, '_>>) -> bool {
        if self.from.is_empty() {
            return true;
        }
        who.is_some_and(|w| self.from.iter().any(|p| p.matches(deny, w)))
    }

    fn when_holds(&self, who: Option<&Asker<'_, '_>>) -> bool {
        let claims = who.and_then(|w| w.who.claims);
        self.when.iter().all(|c| c.holds(claims))
    }
}

impl FromEntry {
    fn compile(p: &Principal) -> FromEntry {
        FromEntry {
            roles: p.roles.clone(),
            groups: p.groups.iter().cloned().collect(),
            emails: p
                .emails
                .iter()
                .filter_map(|e| split_email(e))
                .map(|(local, domain)| (local.to_owned(), domain.to_ascii_lowercase()))
                .collect(),
            email_domains: p
                .email_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            users: p.users.clone(),
            providers: p.providers.clone(),
            principal_types: p.principal_types.clone(),
            service_accounts: p.service_accounts.clone(),
            clients: p.clients.clone(),
        }
    }

    fn matches(&self, deny: bool, w: &Asker<'_, '_>) -> bool {
        fn listed(list: &[String], fact: Option<&str>) -> bool {
            list.is_empty() || fact.is_some_and(|f| list.iter().any(|x| x == f))
        }
        let who = w.who;
        (self.roles.is_empty() || who.role.is_some_and(|r| self.roles.contains(&r)))
            && (self.principal_types.is_empty() || self.principal_types.contains(&who.kind))
            && listed(&self.users, Some(who.user))
            && listed(&self.providers, Some(who.provider))
            && listed(&self.service_accounts, who.service_account)
            && listed(&self.clients, who.client)
            && (self.groups.is_empty()
                || if w.groups_known {
                    who.groups.iter().any(|g| self.groups.contains(g.as_str()))
                } else {
                    deny
                })
            && (self.emails.is_empty()
                || w.email.is_some_and(|(local, domain)| {
                    self.emails
                        .iter()
                        .any(|(l, d)| l == local && d.eq_ignore_ascii_case(domain))
                }))
            && (self.email_domains.is_empty()
                || w.email.is_some_and(|(_, domain)| {
                    self.email_domains
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(domain))
                }))
    }
}

impl ToEntry {
    fn compile(o: &Operation) -> ToEntry {
        let mut methods = 0;
        for m in &o.methods {
            methods |= method_bit(*m);
            if *m == Method::GET {
                methods |= method_bit(Method::HEAD);
            }
        }
        ToEntry {
            hosts: o.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            paths: o.paths.clone(),
            methods,
        }
    }

    /// Whether the request is one of this entry's; `deny`: ambiguous facts match (fail closed).
    fn matches(&self, deny: bool, facts: &Facts<'_>) -> bool {
        let host = self.hosts.is_empty()
            || match &facts.host {
                Some(h) => self.hosts.iter().any(|x| x == h),
                None => deny,
            };
        let path = self.paths.is_empty()
            || match &facts.path {
                Some(p) => self.paths.iter().any(|x| under_prefix(p, x)),
                None => deny,
            };
        let method = self.methods == 0
            || match facts.method {
                MethodFact::Known(bit) => self.methods & bit != 0,
                MethodFact::Variant(bit) => deny && self.methods & bit != 0,
                MethodFact::Other => false,
            };
        host && path && method
    }
}

impl Condition {
    fn compile(c: &ClaimCondition) -> Condition {
        let test = match c.present {
            Some(present) => Test::Present(present),
            None => Test::Values {
                strings: c.values.clone(),
                numbers: c.values.iter().filter_map(|v| v.parse().ok()).collect(),
                bools: [
                    c.values.iter().any(|v| v == "true"),
                    c.values.iter().any(|v| v == "false"),
                ],
            },
        };
        Condition {
            claim: c.claim.clone(),
            test,
        }
    }

    fn holds(&self, claims: Option<&Map<String, Value>>) -> bool {
        let value = claims
            .and_then(|c| lookup(c, &self.claim))
            .filter(|v| !v.is_null());
        match &self.test {
            Test::Present(present) => value.is_some() == *present,
            Test::Values { .. } => value.is_some_and(|v| match v {
                Value::String(s) => {
                    self.scalar_holds(v) || s.split(' ').any(|word| self.string_listed(word))
                }
                Value::Array(items) => items.iter().any(|item| self.scalar_holds(item)),
                _ => self.scalar_holds(v),
            }),
        }
    }

    fn string_listed(&self, s: &str) -> bool {
        matches!(&self.test, Test::Values { strings, .. } if strings.iter().any(|v| v == s))
    }

    /// A string, number or boolean equal to a value.
    fn scalar_holds(&self, value: &Value) -> bool {
        let Test::Values {
            strings,
            numbers,
            bools,
        } = &self.test
        else {
            return false;
        };
        match value {
            Value::String(s) => strings.iter().any(|v| v == s),
            Value::Number(n) => numbers.contains(n),
            Value::Bool(b) => bools[usize::from(!*b)],
            _ => false,
        }
    }
}

/// (local part, domain) of an address with exactly one `@` and something on each side.
fn split_email(email: &str) -> Option<(&str, &str)> {
    let (local, domain) = email.split_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !domain.contains('@')).then_some((local, domain))
}

/// Characters a rule path may hold that [`canonical_path`] leaves percent-encoded: decoded before
/// matching, so a rule covers their encoded spelling too (most servers decode them).
const DECODED_PUNCTUATION: &[u8] = b"!$&'()*+=:@";

/// The path rules match on; `None` when ambiguous.
fn request_path(raw: &str) -> Option<Cow<'_, str>> {
    let raw = raw.split_once('?').map_or(raw, |(path, _)| path);
    if raw.contains('#') {
        return None;
    }
    let path = canonical_path(raw)?;
    if !path.contains('%') {
        return Some(path);
    }
    let bytes = path.as_bytes();
    let decoded_at = |i: usize| {
        let pair = bytes.get(i + 1..i + 3)?;
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        let v = u8::try_from(hi * 16 + lo).ok()?;
        (bytes[i] == b'%' && DECODED_PUNCTUATION.contains(&v)).then_some(v)
    };
    if !(0..bytes.len()).any(|i| decoded_at(i).is_some()) {
        return Some(path);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match decoded_at(i) {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // Only ASCII bytes replaced ASCII escapes: still UTF-8.
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Longest host name kept.
const MAX_HOST_LEN: usize = 253;

/// A `Host` header as rules compare it: lower case, without port and one trailing dot; an IPv6
/// literal keeps its brackets. `None` when empty or malformed (anything but letters, digits, `-`,
/// `_` and non-empty dot-separated labels; a port of anything but digits; a userinfo).
pub fn normalize_host(raw: &str) -> Option<Cow<'_, str>> {
    let (host, port, literal) = match raw.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')?;
            let inner = &rest[..end];
            let ipv6 = inner.contains(':')
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if !ipv6 {
                return None;
            }
            (&raw[..end + 2], &rest[end + 1..], true)
        }
        None => match raw.find(':') {
            Some(i) => (&raw[..i], &raw[i..], false),
            None => (raw, "", false),
        },
    };
    if !port.is_empty() {
        let digits = port.strip_prefix(':')?;
        if digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    if literal {
        return Some(lower(host));
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let name = !host.is_empty()
        && host.len() <= MAX_HOST_LEN
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    name.then(|| lower(host))
}

/// `h` in lower case, borrowed when it already is (the usual `Host`): no allocation per request.
fn lower(h: &str) -> Cow<'_, str> {
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
    }
}

/// 16 hex digits of SHA-256 over the sorted group and claim names (each set length-prefixed, so
/// no two different pairs of sets share an input); `None` for two empty sets.
fn facts_fingerprint(groups: &BTreeSet<String>, claims: &BTreeSet<String>) -> Option<String> {
    use sha2::{Digest, Sha256};
    if groups.is_empty() && claims.is_empty() {
        return None;
    }
    let mut hash = Sha256::new();
    for set in [groups, claims] {
        hash.update((set.len() as u64).to_be_bytes());
        for name in set {
            hash.update((name.len() as u64).to_be_bytes());
            hash.update(name.as_bytes());
        }
    }
    let digest = hash.finalize();
    Some(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(spec: Value) -> Policy {
        let spec: AccessSpec = serde_json::from_value(spec).expect("an AccessSpec");
        Policy::compile(&spec).expect("a valid policy")
    }

    /// One rule and a `defaultAction`.
    fn one(action: &str, rule: Value, default: &str) -> Policy {
        let mut rule = rule;
        rule["name"] = json!("r");
        rule["action"] = json!(action);
        policy(json!({ "defaultAction": default, "rules": [rule] }))
    }

    /// An owned principal for tests; [`Person::who`] borrows it.
    #[derive(Clone)]
    struct Person {
        kind: PrincipalType,
        user: String,
        role: Option<Role>,
        groups: Vec<String>,
        email: Option<String>,
        provider: String,
        service_account: Option<String>,
        client: Option<String>,
        claims: Option<Map<String, Value>>,
    }

    impl Person {
        fn who(&self) -> Who<'_> {
            Who {
                kind: self.kind,
                user: &self.user,
                role: self.role,
                groups: &self.groups,
                email: self.email.as_deref(),
                provider: &self.provider,
                service_account: self.service_account.as_deref(),
                client: self.client.as_deref(),
                claims: self.claims.as_ref(),
            }
        }
    }

    fn ada() -> Person {
        Person {
            kind: PrincipalType::User,
            user: "okta-ada".into(),
            role: Some(Role::Member),
            groups: vec!["staff".into(), "Engineering".into()],
            email: Some("ada@example.com".into()),
            provider: "okta".into(),
            service_account: None,
            client: None,
            claims: Some(Map::new()),
        }
    }

    fn deployer() -> Person {
        Person {
            kind: PrincipalType::Machine,
            user: "system:serviceaccount:ci:deployer".into(),
            role: None,
            groups: vec![],
            email: None,
            provider: "kubernetes".into(),
            service_account: Some("ci/deployer".into()),
            client: Some("kubernetes".into()),
            claims: None,
        }
    }

    fn with_claims(claims: Value) -> Person {
        let Value::Object(claims) = claims else {
            panic!("claims are an object")
        };
        Person {
            claims: Some(claims),
            ..ada()
        }
    }

    /// `method path` at `host`, decided for `who`.
    fn ask<'p>(
        p: &'p Policy,
        method: &str,
        host: Option<&str>,
        path: &str,
        who: Option<&Person>,
    ) -> Decision<'p> {
        let method = http::Method::from_bytes(method.as_bytes()).expect("a method");
        let who = who.map(Person::who);
        p.decide(
            &RequestFacts {
                method: &method,
                host,
                path,
            },
            who.as_ref(),
        )
    }

    fn get<'p>(p: &'p Policy, path: &str, who: Option<&Person>) -> Decision<'p> {
        ask(p, "GET", Some("portal.example.com"), path, who)
    }

    const ALLOWED: Decision<'static> = Decision::Allow { rule: Some("r") };
    const DENIED: Decision<'static> = Decision::Deny { rule: Some("r") };
    const DEFAULT_ALLOW: Decision<'static> = Decision::Allow { rule: None };
    const DEFAULT_DENY: Decision<'static> = Decision::Deny { rule: None };

    /// For each `from` entry: principals it admits and principals it does not.
    #[test]
    fn every_from_criterion_matches_and_refuses() {
        let mut admin = ada();
        admin.role = Some(Role::Admin);
        let mut no_role = ada();
        no_role.role = None;
        let mut no_email = ada();
        no_email.email = None;
        let mut shouting = ada();
        shouting.email = Some("ada@EXAMPLE.Com".into());
        let mut local_case = ada();
        local_case.email = Some("Ada@example.com".into());
        let mut two_at = ada();
        two_at.email = Some("ada@evil.example@example.com".into());
        let mut other_provider = ada();
        other_provider.provider = "entra".into();
        let mut other_sa = deployer();
        other_sa.service_account = Some("ci/builder".into());
        let mut other_client = deployer();
        other_client.client = Some("github".into());
        let mut engineering_lower = ada();
        engineering_lower.groups = vec!["engineering".into()];
        let mut no_groups = ada();
        no_groups.groups = vec![];

        let cases: Vec<(Value, Vec<Person>, Vec<Person>)> = vec![
            (
                json!({"authenticated": true}),
                vec![ada(), deployer()],
                vec![],
            ),
            (
                json!({"roles": ["admin"]}),
                vec![admin.clone()],
                vec![ada(), no_role, deployer()],
            ),
            (
                json!({"groups": ["Engineering", "ops"]}),
                vec![ada()],
                vec![engineering_lower, no_groups, deployer()],
            ),
            (
                json!({"emails": ["ada@example.com"]}),
                vec![ada(), shouting.clone()],
                vec![local_case, no_email.clone(), two_at.clone(), deployer()],
            ),
            (
                json!({"emails": ["ada@Example.COM"]}),
                vec![ada(), shouting],
                vec![no_email.clone()],
            ),
            (
                json!({"emailDomains": ["example.com"]}),
                vec![ada()],
                vec![no_email, two_at, deployer()],
            ),
            (
                json!({"users": ["okta-ada"]}),
                vec![ada()],
                vec![deployer(), admin_named("okta-bob")],
            ),
            (
                json!({"providers": ["okta"]}),
                vec![ada()],
                vec![other_provider, deployer()],
            ),
            (
                json!({"principalTypes": ["user"]}),
                vec![ada()],
                vec![deployer()],
            ),
            (
                json!({"principalTypes": ["machine"]}),
                vec![deployer()],
                vec![ada()],
            ),
            (
                json!({"serviceAccounts": ["ci/deployer"]}),
                vec![deployer()],
                vec![other_sa, ada()],
            ),
            (
                json!({"clients": ["kubernetes"]}),
                vec![deployer()],
                vec![other_client, ada()],
            ),
        ];
        for (from, admitted, refused) in cases {
            for action in ["Allow", "Deny"] {
                let default = if action == "Allow" { "Deny" } else { "Allow" };
                let p = one(action, json!({"from": [from]}), default);
                let (hit, miss) = if action == "Allow" {
                    (ALLOWED, DEFAULT_DENY)
                } else {
                    (DENIED, DEFAULT_ALLOW)
                };
                for who in &admitted {
                    assert_eq!(
                        get(&p, "/", Some(who)),
                        hit,
                        "{action} {from} for {}",
                        who.user
                    );
                }
                for who in &refused {
                    assert_eq!(
                        get(&p, "/", Some(who)),
                        miss,
                        "{action} {from} for {}",
                        who.user
                    );
                }
                // A rule with a `from` never matches an anonymous request.
                assert_ne!(get(&p, "/", None), hit, "{action} {from} for anonymous");
            }
        }
    }

    fn admin_named(user: &str) -> Person {
        Person {
            user: user.into(),
            role: Some(Role::Admin),
            ..ada()
        }
    }

    #[test]
    fn email_domains_are_whole_domains_of_single_at_addresses() {
        let p = one(
            "Allow",
            json!({"from": [{"emailDomains": ["contractor.example"]}]}),
            "Deny",
        );
        let with = |email: &str| Person {
            email: Some(email.into()),
            ..ada()
        };
        assert_eq!(get(&p, "/", Some(&with("ada@contractor.example"))), ALLOWED);
        assert_eq!(get(&p, "/", Some(&with("ada@Contractor.EXAMPLE"))), ALLOWED);
        for attack in [
            "ada@sub.contractor.example",
            "ada@evilcontractor.example",
            "ada@contractor.example.evil",
            "a@b@contractor.example",
            "@contractor.example",
            "contractor.example",
            "ada@contractor.example.",
        ] {
            assert_eq!(get(&p, "/", Some(&with(attack))), DEFAULT_DENY, "{attack}");
        }
    }

    #[test]
    fn fields_of_an_entry_all_hold_and_entries_are_alternatives() {
        let both = one(
            "Allow",
            json!({"from": [{"roles": ["member"], "groups": ["ops"]}]}),
            "Deny",
        );
        let mut ops_member = ada();
        ops_member.groups.push("ops".into());
        let mut ops_admin = ops_member.clone();
        ops_admin.role = Some(Role::Admin);
        assert_eq!(get(&both, "/", Some(&ops_member)), ALLOWED);
        assert_eq!(get(&both, "/", Some(&ada())), DEFAULT_DENY);
        assert_eq!(get(&both, "/", Some(&ops_admin)), DEFAULT_DENY);

        let either = one(
            "Allow",
            json!({"from": [{"roles": ["admin"]}, {"groups": ["ops"]}]}),
            "Deny",
        );
        assert_eq!(get(&either, "/", Some(&ops_member)), ALLOWED);
        assert_eq!(get(&either, "/", Some(&ops_admin)), ALLOWED);
        assert_eq!(get(&either, "/", Some(&admin_named("okta-bob"))), ALLOWED);
        assert_eq!(get(&either, "/", Some(&ada())), DEFAULT_DENY);

        let to = one(
            "Allow",
            json!({"to": [{"paths": ["/api"], "methods": ["POST"]}, {"paths": ["/docs"]}]}),
            "Deny",
        );
        assert_eq!(ask(&to, "POST", None, "/api/x", None), ALLOWED);
        assert_eq!(ask(&to, "DELETE", None, "/api/x", None), DEFAULT_DENY);
        assert_eq!(ask(&to, "POST", None, "/other", None), DEFAULT_DENY);
        assert_eq!(ask(&to, "DELETE", None, "/docs/x", None), ALLOWED);
    }

    #[test]
    fn paths_are_prefixes_on_segment_boundaries_and_case_sensitive() {
        let p = one("Allow", json!({"to": [{"paths": ["/admin"]}]}), "Deny");
        assert_eq!(get(&p, "/admin", None), ALLOWED);
        assert_eq!(get(&p, "/admin/", None), ALLOWED);
        assert_eq!(get(&p, "/admin/users", None), ALLOWED);
        assert_eq!(get(&p, "/administrator", None), DEFAULT_DENY);
        assert_eq!(get(&p, "/Admin", None), DEFAULT_DENY);
        assert_eq!(get(&p, "/", None), DEFAULT_DENY);
        let dir = one("Allow", json!({"to": [{"paths": ["/api/"]}]}), "Deny");
        assert_eq!(get(&dir, "/api/x", None), ALLOWED);
        assert_eq!(get(&dir, "/api", None), DEFAULT_DENY);
    }

    #[test]
    fn decoded_unreserved_characters_are_the_same_path_for_allow_and_deny() {
        let allow = one("Allow", json!({"to": [{"paths": ["/admin"]}]}), "Deny");
        let deny = one("Deny", json!({"to": [{"paths": ["/admin"]}]}), "Allow");
        for spelling in ["/ad%6din", "/%61dmin/x", "/ADMIN%5F"] {
            let covered = spelling != "/ADMIN%5F";
            assert_eq!(
                get(&allow, spelling, None),
                if covered { ALLOWED } else { DEFAULT_DENY },
                "{spelling}"
            );
            assert_eq!(
                get(&deny, spelling, None),
                if covered { DENIED } else { DEFAULT_ALLOW },
                "{spelling}"
            );
        }
    }

    #[test]
    fn encoded_rule_punctuation_is_the_same_path_for_allow_and_deny() {
        let allow = one("Allow", json!({"to": [{"paths": ["/users/@me"]}]}), "Deny");
        let deny = one("Deny", json!({"to": [{"paths": ["/a:b"]}]}), "Allow");
        assert_eq!(get(&allow, "/users/@me", None), ALLOWED);
        assert_eq!(get(&allow, "/users/%40me/x", None), ALLOWED);
        assert_eq!(get(&allow, "/users/%40you", None), DEFAULT_DENY);
        assert_eq!(get(&deny, "/a:b", None), DENIED);
        assert_eq!(get(&deny, "/a%3Ab", None), DENIED);
        assert_eq!(get(&deny, "/a%3ab/c", None), DENIED);
        assert_eq!(get(&deny, "/a%3Ac", None), DEFAULT_ALLOW);
        // Other escapes stay as they are: `%20` is not a rule character.
        assert_eq!(get(&deny, "/a%20b", None), DEFAULT_ALLOW);
    }

    const AMBIGUOUS: [&str; 14] = [
        "/admin/../x",
        "/x/../admin",
        "/%2e%2e/admin",
        "/admin/%2E",
        "/admin%2fx",
        "/admin%2Fx",
        "/admin;x",
        "/admin\\x",
        "//admin",
        "/admin//x",
        "/admin%5cx",
        "/admin%25",
        "/admin#x",
        "admin",
    ];

    #[test]
    fn ambiguous_paths_fail_closed_both_ways() {
        let allow = one("Allow", json!({"to": [{"paths": ["/admin"]}]}), "Deny");
        let deny = one("Deny", json!({"to": [{"paths": ["/other"]}]}), "Allow");
        // The honest requests first.
        assert_eq!(get(&allow, "/admin/x", None), ALLOWED);
        assert_eq!(get(&deny, "/admin/x", None), DEFAULT_ALLOW);
        for path in AMBIGUOUS {
            assert_eq!(get(&allow, path, None), DEFAULT_DENY, "{path}");
            assert_eq!(get(&deny, path, None), DENIED, "{path}");
        }
        // A rule without paths does not care.
        let any_path = one("Allow", json!({"to": [{"methods": ["GET"]}]}), "Deny");
        for path in AMBIGUOUS {
            assert_eq!(get(&any_path, path, None), ALLOWED, "{path}");
        }
    }

    #[test]
    fn the_query_is_not_part_of_the_path() {
        let allow = one("Allow", json!({"to": [{"paths": ["/public"]}]}), "Deny");
        assert_eq!(get(&allow, "/public?x=1", None), ALLOWED);
        assert_eq!(get(&allow, "/admin?/public", None), DEFAULT_DENY);
        let deny = one("Deny", json!({"to": [{"paths": ["/admin"]}]}), "Allow");
        assert_eq!(get(&deny, "/admin?x=/public", None), DENIED);
        assert_eq!(get(&deny, "/public?/admin", None), DEFAULT_ALLOW);
        // An ambiguous query is not the path's business.
        assert_eq!(get(&allow, "/public?a=../b;c", None), ALLOWED);
    }

    #[test]
    fn hosts_compare_normalized() {
        let allow = one(
            "Allow",
            json!({"to": [{"hosts": ["portal.example.com"]}]}),
            "Deny",
        );
        for host in [
            "portal.example.com",
            "Portal.Example.COM.:443",
            "PORTAL.EXAMPLE.COM:8080",
            "portal.example.com.",
        ] {
            assert_eq!(ask(&allow, "GET", Some(host), "/", None), ALLOWED, "{host}");
        }
        for host in [
            "other.example.com",
            "portal.example.com.evil.example",
            "sub.portal.example.com",
            "evilportal.example.com",
        ] {
            assert_eq!(
                ask(&allow, "GET", Some(host), "/", None),
                DEFAULT_DENY,
                "{host}"
            );
        }
    }

    #[test]
    fn a_missing_or_malformed_host_fails_closed_both_ways() {
        let allow = one(
            "Allow",
            json!({"to": [{"hosts": ["portal.example.com"]}]}),
            "Deny",
        );
        let deny = one(
            "Deny",
            json!({"to": [{"hosts": ["admin.example.com"]}]}),
            "Allow",
        );
        assert_eq!(
            ask(&deny, "GET", Some("portal.example.com"), "/", None),
            DEFAULT_ALLOW
        );
        assert_eq!(
            ask(&deny, "GET", Some("Admin.Example.com."), "/", None),
            DENIED
        );
        for host in [
            None,
            Some(""),
            Some("portal.example.com.."),
            Some("portal.example.com:x"),
            Some("user@portal.example.com"),
            Some("portal.example.com/x"),
            Some("portal example.com"),
        ] {
            assert_eq!(
                ask(&allow, "GET", host, "/", None),
                DEFAULT_DENY,
                "{host:?}"
            );
            assert_eq!(ask(&deny, "GET", host, "/", None), DENIED, "{host:?}");
        }
    }

    #[test]
    fn normalize_host_table() {
        let cases = [
            ("portal.example.com", Some("portal.example.com")),
            ("Portal.Example.COM.:443", Some("portal.example.com")),
            ("localhost:8080", Some("localhost")),
            ("host:", Some("host")),
            ("my_host.internal", Some("my_host.internal")),
            ("10.0.0.1:80", Some("10.0.0.1")),
            ("[::1]:8443", Some("[::1]")),
            ("[2001:DB8::1]", Some("[2001:db8::1]")),
            ("", None),
            (".", None),
            (":443", None),
            ("a..b", None),
            (".example.com", None),
            ("example.com..", None),
            ("example.com:443:1", None),
            ("example.com:123456", None),
            ("[::1", None),
            ("[example.com]", None),
            ("[::1]x", None),
            ("[::1]:8a", None),
            ("exa mple.com", None),
            ("exämple.com", None),
            ("example.com%2f", None),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_host(raw).as_deref(), want, "{raw:?}");
        }
        assert_eq!(normalize_host(&"a".repeat(254)), None);
    }

    #[test]
    fn get_covers_head_and_methods_are_exact() {
        let p = one("Allow", json!({"to": [{"methods": ["GET"]}]}), "Deny");
        assert_eq!(get(&p, "/", None), ALLOWED);
        assert_eq!(ask(&p, "HEAD", None, "/", None), ALLOWED);
        assert_eq!(ask(&p, "POST", None, "/", None), DEFAULT_DENY);
        assert_eq!(ask(&p, "OPTIONS", None, "/", None), DEFAULT_DENY);
        assert_eq!(ask(&p, "TRACE", None, "/", None), DEFAULT_DENY);
        let head = one("Allow", json!({"to": [{"methods": ["HEAD"]}]}), "Deny");
        assert_eq!(ask(&head, "HEAD", None, "/", None), ALLOWED);
        assert_eq!(get(&head, "/", None), DEFAULT_DENY);
        let deny_get = one("Deny", json!({"to": [{"methods": ["GET"]}]}), "Allow");
        assert_eq!(ask(&deny_get, "HEAD", None, "/", None), DENIED);
        assert_eq!(ask(&deny_get, "POST", None, "/", None), DEFAULT_ALLOW);
    }

    #[test]
    fn method_case_variants_fail_closed() {
        let allow = one("Allow", json!({"to": [{"methods": ["POST"]}]}), "Deny");
        let deny = one("Deny", json!({"to": [{"methods": ["POST"]}]}), "Allow");
        assert_eq!(ask(&allow, "POST", None, "/", None), ALLOWED);
        assert_eq!(ask(&deny, "POST", None, "/", None), DENIED);
        for variant in ["post", "Post"] {
            assert_eq!(
                ask(&allow, variant, None, "/", None),
                DEFAULT_DENY,
                "{variant}"
            );
            assert_eq!(ask(&deny, variant, None, "/", None), DENIED, "{variant}");
        }
        // Not a spelling of POST: unmatched both ways.
        assert_eq!(ask(&deny, "get", None, "/", None), DEFAULT_ALLOW);
        assert_eq!(ask(&deny, "PROPFIND", None, "/", None), DEFAULT_ALLOW);
        // `head` is a variant of HEAD, which a GET entry covers.
        let deny_get = one("Deny", json!({"to": [{"methods": ["GET"]}]}), "Allow");
        assert_eq!(ask(&deny_get, "head", None, "/", None), DENIED);
    }

    #[test]
    fn when_values_match_strings_words_arrays_and_json_scalars() {
        let rule = |claim: &str, values: Value| {
            one(
                "Allow",
                json!({"when": [{"claim": claim, "values": values}]}),
                "Deny",
            )
        };
        let cases: Vec<(Policy, Value, bool)> = vec![
            (rule("tier", json!(["gold"])), json!({"tier": "gold"}), true),
            (
                rule("tier", json!(["gold"])),
                json!({"tier": "Gold"}),
                false,
            ),
            (
                rule("tier", json!(["gold"])),
                json!({"tier": "golden"}),
                false,
            ),
            (rule("tier", json!(["gold"])), json!({}), false),
            (rule("tier", json!(["gold"])), json!({"tier": null}), false),
            (
                rule("tier", json!(["gold"])),
                json!({"tier": {"gold": true}}),
                false,
            ),
            (
                rule("scp", json!(["write"])),
                json!({"scp": "read write"}),
                true,
            ),
            (
                rule("scp", json!(["read write"])),
                json!({"scp": "read write"}),
                true,
            ),
            (
                rule("scp", json!(["admin"])),
                json!({"scp": "read write"}),
                false,
            ),
            (
                rule("scp", json!(["write"])),
                json!({"scp": "read,write"}),
                false,
            ),
            (
                rule("roles", json!(["b"])),
                json!({"roles": ["a", "b"]}),
                true,
            ),
            (
                rule("roles", json!(["b"])),
                json!({"roles": ["a", "c"]}),
                false,
            ),
            // Array elements are compared whole, not split into words.
            (
                rule("roles", json!(["b"])),
                json!({"roles": ["a b"]}),
                false,
            ),
            (
                rule("roles", json!(["b"])),
                json!({"roles": [["b"]]}),
                false,
            ),
            (
                rule("realm_access.roles", json!(["ops"])),
                json!({"realm_access": {"roles": ["ops"]}}),
                true,
            ),
            (
                rule("realm_access.roles", json!(["ops"])),
                json!({"realm_access": ["ops"]}),
                false,
            ),
            // An exact name with dots comes first, as for role claims.
            (
                rule("acme.example:roles", json!(["ops"])),
                json!({"acme.example:roles": "ops", "acme": {"example:roles": "dev"}}),
                true,
            ),
            (
                rule("acme.example:roles", json!(["dev"])),
                json!({"acme.example:roles": "ops", "acme": {"example:roles": "dev"}}),
                false,
            ),
            (
                rule("tenant", json!(["4711"])),
                json!({"tenant": 4711}),
                true,
            ),
            (
                rule("tenant", json!(["4711"])),
                json!({"tenant": 4712}),
                false,
            ),
            (
                rule("tenant", json!(["4711"])),
                json!({"tenant": "4711"}),
                true,
            ),
            (
                rule("tenant", json!(["-3"])),
                json!({"tenant": [1, -3]}),
                true,
            ),
            (rule("ratio", json!(["1.5"])), json!({"ratio": 1.5}), true),
            (rule("mfa", json!(["true"])), json!({"mfa": true}), true),
            (rule("mfa", json!(["true"])), json!({"mfa": false}), false),
            (rule("mfa", json!(["false"])), json!({"mfa": false}), true),
            (rule("mfa", json!(["True"])), json!({"mfa": true}), false),
        ];
        for (p, claims, holds) in cases {
            let want = if holds { ALLOWED } else { DEFAULT_DENY };
            assert_eq!(
                get(&p, "/", Some(&with_claims(claims.clone()))),
                want,
                "{claims}"
            );
            // An anonymous request has no claims, but a signed-in user's might hold.
            assert_eq!(get(&p, "/", None), Decision::SignIn, "anonymous");
        }
    }

    #[test]
    fn when_present_and_absent() {
        let present = one(
            "Allow",
            json!({"when": [{"claim": "org.id", "present": true}]}),
            "Deny",
        );
        let absent = one(
            "Allow",
            json!({"when": [{"claim": "org.id", "present": false}]}),
            "Deny",
        );
        let cases = [
            (json!({"org": {"id": "x"}}), true),
            (json!({"org": {"id": ""}}), true),
            (json!({"org": {"id": false}}), true),
            (json!({"org.id": 1}), true),
            (json!({"org": {"id": null}}), false),
            (json!({"org": {}}), false),
            (json!({"org": "id"}), false),
            (json!({}), false),
        ];
        for (claims, is_present) in cases {
            let who = with_claims(claims.clone());
            let (p, a) = if is_present {
                (ALLOWED, DEFAULT_DENY)
            } else {
                (DEFAULT_DENY, ALLOWED)
            };
            assert_eq!(get(&present, "/", Some(&who)), p, "{claims}");
            assert_eq!(get(&absent, "/", Some(&who)), a, "{claims}");
        }
        // No claims at all, and anonymous: nothing is present.
        let mut no_claims = ada();
        no_claims.claims = None;
        assert_eq!(get(&present, "/", Some(&no_claims)), DEFAULT_DENY);
        assert_eq!(get(&absent, "/", Some(&no_claims)), ALLOWED);
        assert_eq!(get(&absent, "/", None), ALLOWED);
        // The `present: true` rule could admit a signed-in user.
        assert_eq!(get(&present, "/", None), Decision::SignIn);
    }

    #[test]
    fn all_when_conditions_must_hold() {
        let p = one(
            "Allow",
            json!({"when": [
                {"claim": "tier", "values": ["gold"]},
                {"claim": "mfa", "values": ["true"]},
            ]}),
            "Deny",
        );
        assert_eq!(
            get(
                &p,
                "/",
                Some(&with_claims(json!({"tier": "gold", "mfa": true})))
            ),
            ALLOWED
        );
        assert_eq!(
            get(&p, "/", Some(&with_claims(json!({"tier": "gold"})))),
            DEFAULT_DENY
        );
        assert_eq!(
            get(&p, "/", Some(&with_claims(json!({"mfa": true})))),
            DEFAULT_DENY
        );
    }

    #[test]
    fn deny_wins_over_allow_regardless_of_order() {
        let allow =
            json!({"name": "a-allow", "action": "Allow", "from": [{"authenticated": true}]});
        let deny = json!({
            "name": "z-deny", "action": "Deny",
            "from": [{"groups": ["contractors"]}], "to": [{"paths": ["/admin"]}],
        });
        let mut contractor = ada();
        contractor.groups.push("contractors".into());
        for rules in [json!([allow, deny]), json!([deny, allow])] {
            let p = policy(json!({"rules": rules}));
            assert_eq!(
                get(&p, "/admin", Some(&ada())),
                Decision::Allow {
                    rule: Some("a-allow")
                }
            );
            assert_eq!(
                get(&p, "/home", Some(&contractor)),
                Decision::Allow {
                    rule: Some("a-allow")
                }
            );
            assert_eq!(
                get(&p, "/admin/x", Some(&contractor)),
                Decision::Deny {
                    rule: Some("z-deny")
                }
            );
        }
    }

    #[test]
    fn the_first_matching_rule_by_name_is_reported() {
        let rules = json!([
            {"name": "deny-b", "action": "Deny", "to": [{"paths": ["/x"]}]},
            {"name": "deny-a", "action": "Deny", "to": [{"paths": ["/x/y"]}]},
            {"name": "allow-b", "action": "Allow", "to": [{"paths": ["/p"]}]},
            {"name": "allow-a", "action": "Allow", "to": [{"paths": ["/p/q"]}]},
        ]);
        let p = policy(json!({"rules": rules}));
        assert_eq!(
            get(&p, "/x/y", None),
            Decision::Deny {
                rule: Some("deny-a")
            }
        );
        assert_eq!(
            get(&p, "/x/z", None),
            Decision::Deny {
                rule: Some("deny-b")
            }
        );
        assert_eq!(
            get(&p, "/p/q", None),
            Decision::Allow {
                rule: Some("allow-a")
            }
        );
        assert_eq!(
            get(&p, "/p/r", None),
            Decision::Allow {
                rule: Some("allow-b")
            }
        );
        // Also when the first is a claim-conditioned rule an anonymous request could escape by
        // signing in, and a later one refuses it for good.
        let p = policy(json!({"rules": [
            {"name": "deny-b", "action": "Deny", "to": [{"paths": ["/x"]}]},
            {"name": "deny-a", "action": "Deny", "when": [{"claim": "human", "present": false}]},
        ]}));
        for who in [None, Some(&ada())] {
            assert_eq!(
                get(&p, "/x", who),
                Decision::Deny {
                    rule: Some("deny-a")
                }
            );
        }
    }

    #[test]
    fn default_action_decides_unmatched_requests() {
        let rule = json!({"to": [{"paths": ["/public"]}]});
        let allow = one("Allow", rule.clone(), "Allow");
        let deny = one("Allow", rule.clone(), "Deny");
        let implicit = policy(
            json!({"rules": [{"name": "r", "action": "Allow", "to": [{"paths": ["/public"]}]}]}),
        );
        assert_eq!(get(&allow, "/other", Some(&ada())), DEFAULT_ALLOW);
        assert_eq!(get(&deny, "/other", Some(&ada())), DEFAULT_DENY);
        assert_eq!(get(&implicit, "/other", Some(&ada())), DEFAULT_DENY);
        assert_eq!(implicit.default_action(), Action::Deny);
        let empty = policy(json!({}));
        assert_eq!(get(&empty, "/", Some(&ada())), DEFAULT_DENY);
        assert_eq!(get(&empty, "/", None), DEFAULT_DENY);
        let open = policy(json!({"defaultAction": "Allow"}));
        assert_eq!(get(&open, "/", None), DEFAULT_ALLOW);
    }

    #[test]
    fn anonymous_requests_match_only_rules_without_from() {
        let public = one("Allow", json!({"to": [{"paths": ["/public"]}]}), "Deny");
        assert_eq!(get(&public, "/public/x", None), ALLOWED);
        assert_eq!(get(&public, "/public/x", Some(&ada())), ALLOWED);
        // A Deny rule with a `from` is no refusal of anonymous requests.
        let deny_from = one(
            "Deny",
            json!({"from": [{"authenticated": true}], "to": [{"paths": ["/x"]}]}),
            "Allow",
        );
        assert_eq!(get(&deny_from, "/x", Some(&ada())), DENIED);
        assert_eq!(get(&deny_from, "/x", None), DEFAULT_ALLOW);
        let deny_all = one("Deny", json!({"to": [{"paths": ["/x"]}]}), "Allow");
        assert_eq!(get(&deny_all, "/x", None), DENIED);
    }

    #[test]
    fn anonymous_gets_sign_in_only_where_credentials_could_help() {
        let p = policy(json!({"rules": [
            {"name": "staff", "action": "Allow", "from": [{"groups": ["staff"]}],
             "to": [{"paths": ["/app"]}]},
            {"name": "vip", "action": "Allow",
             "when": [{"claim": "tier", "values": ["gold"]}], "to": [{"paths": ["/vip"]}]},
            {"name": "public", "action": "Allow", "to": [{"paths": ["/public"]}]},
            {"name": "closed", "action": "Deny", "to": [{"paths": ["/app/closed"]}]},
            {"name": "no-bots", "action": "Deny",
             "when": [{"claim": "human", "present": false}], "to": [{"paths": ["/app/human"]}]},
        ]}));
        assert_eq!(
            get(&p, "/app/x", Some(&ada())),
            Decision::Allow {
                rule: Some("staff")
            }
        );
        assert_eq!(get(&p, "/app/x", None), Decision::SignIn);
        assert_eq!(get(&p, "/vip", None), Decision::SignIn);
        assert_eq!(
            get(&p, "/public", None),
            Decision::Allow {
                rule: Some("public")
            }
        );
        // No rule could admit a signed-in user here.
        assert_eq!(get(&p, "/other", None), DEFAULT_DENY);
        // An ambiguous path is no reason to sign in either: it is under every Deny rule's paths.
        assert_eq!(
            get(&p, "/app/../x", None),
            Decision::Deny {
                rule: Some("closed")
            }
        );
        // Refused for everyone: signing in would not help.
        assert_eq!(
            get(&p, "/app/closed", None),
            Decision::Deny {
                rule: Some("closed")
            }
        );
        assert_eq!(
            get(&p, "/app/closed", Some(&ada())),
            Decision::Deny {
                rule: Some("closed")
            }
        );
        // Refused for anonymous requests by a claim condition: a signed-in user may pass it.
        assert_eq!(get(&p, "/app/human", None), Decision::SignIn);
        assert_eq!(
            get(&p, "/app/human", Some(&ada())),
            Decision::Deny {
                rule: Some("no-bots")
            }
        );
        let human = with_claims(json!({"human": true}));
        assert_eq!(
            get(&p, "/app/human", Some(&human)),
            Decision::Allow {
                rule: Some("staff")
            }
        );

        // defaultAction Allow: only a claim-conditioned Deny can refuse an anonymous request that
        // a signed-in one might pass.
        let open = one(
            "Deny",
            json!({"when": [{"claim": "human", "present": false}]}),
            "Allow",
        );
        assert_eq!(get(&open, "/", None), Decision::SignIn);
        assert_eq!(get(&open, "/", Some(&human)), DEFAULT_ALLOW);
    }

    #[test]
    fn compile_refuses_what_check_access_refuses() {
        let spec: AccessSpec = serde_json::from_value(json!({"rules": [
            {"name": "Bad_Name", "action": "Allow"},
            {"name": "dup", "action": "Allow", "from": [{}]},
            {"name": "dup", "action": "Deny", "to": [{"paths": ["/a/../b"]}]},
        ]}))
        .expect("an AccessSpec");
        let err = Policy::compile(&spec).expect_err("invalid");
        let PolicyError::Invalid(problems) = &err;
        assert_eq!(problems, &gatehouse_crds::rules::check_access(&spec));
        let text = err.to_string();
        assert!(text.starts_with("access.rules[0].name: "), "{text}");
        assert!(text.contains("; access.rules[1].from[0]: "), "{text}");
        assert!(text.contains("access.rules[2].to[0].paths: "), "{text}");
    }

    #[test]
    fn the_facts_fingerprint_changes_with_the_groups_and_claims_named_and_nothing_else() {
        let none = policy(json!({"rules": [
            {"name": "a", "action": "Allow", "from": [{"roles": ["admin"]}], "to": [{"paths": ["/x"]}]}
        ]}));
        assert_eq!(none.facts_fingerprint(), None, "no group or claim named");
        assert!(none.facts_current(None));
        let one = policy(json!({"rules": [
            {"name": "a", "action": "Allow", "from": [{"groups": ["sre", "ops"]}]},
            {"name": "b", "action": "Deny", "when": [{"claim": "acr", "values": ["weak"]}]}
        ]}));
        let same = policy(json!({"rules": [
            {"name": "z", "action": "Deny", "to": [{"methods": ["POST"]}], "when": [{"claim": "acr", "present": false}]},
            {"name": "y", "action": "Allow", "from": [{"groups": ["ops"]}, {"groups": ["sre"]}]}
        ]}));
        let more = policy(json!({"rules": [
            {"name": "a", "action": "Allow", "from": [{"groups": ["sre", "ops", "contractors"]}]},
            {"name": "b", "action": "Deny", "when": [{"claim": "acr", "values": ["weak"]}]}
        ]}));
        // A group named as a claim is another fingerprint: the sets are kept apart.
        let swapped = policy(json!({"rules": [
            {"name": "a", "action": "Allow", "from": [{"groups": ["acr"]}],
             "when": [{"claim": "ops", "present": true}, {"claim": "sre", "present": true}]}
        ]}));
        let fp = one.facts_fingerprint().expect("named facts");
        assert_eq!(fp.len(), 16);
        assert_eq!(
            same.facts_fingerprint(),
            Some(fp),
            "order and rule shape do not matter"
        );
        assert_ne!(more.facts_fingerprint(), Some(fp));
        assert_ne!(swapped.facts_fingerprint(), Some(fp));
        assert!(one.facts_current(Some(fp)));
        assert!(
            !one.facts_current(None),
            "a session from before the rules named facts"
        );
        assert!(!more.facts_current(Some(fp)));
    }

    #[test]
    fn referenced_groups_and_claims_and_rule_count() {
        let p = policy(json!({"rules": [
            {"name": "a", "action": "Allow", "from": [{"groups": ["staff", "ops"]}, {"roles": ["admin"]}]},
            {"name": "b", "action": "Deny", "from": [{"groups": ["contractors"]}],
             "when": [{"claim": "realm_access.roles", "values": ["x"]},
                      {"claim": "tier", "present": true}]},
        ]}));
        let set = |items: &[&str]| {
            items
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(
            p.referenced_groups(),
            &set(&["contractors", "ops", "staff"])
        );
        assert_eq!(
            p.referenced_claims(),
            &set(&["realm_access", "realm_access.roles", "tier"])
        );
        assert_eq!(p.rule_count(), 2);
        assert_eq!(policy(json!({})).rule_count(), 0);
    }

    #[test]
    fn request_path_decodes_only_rule_punctuation() {
        let cases = [
            ("/a", Some("/a")),
            ("/a?b", Some("/a")),
            (
                "/a%3Ab%40c%21%24%26%27%28%29%2A%2B%3D",
                Some("/a:b@c!$&'()*+="),
            ),
            ("/a%20b%C3%A9", Some("/a%20b%C3%A9")),
            ("/%61%3a", Some("/a:")),
            ("/a%2C", Some("/a%2C")),
            ("/a#b", None),
            ("/a%2F", None),
        ];
        for (raw, want) in cases {
            assert_eq!(request_path(raw).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn unknown_groups_admit_through_no_group_rule_and_fail_closed_on_group_denies() {
        let p = policy(json!({"rules": [
            {"name": "eng", "action": "Allow", "from": [{"groups": ["Engineering"]}],
             "to": [{"paths": ["/eng"]}]},
            {"name": "members", "action": "Allow", "from": [{"roles": ["member"]}],
             "to": [{"paths": ["/docs"]}]},
            {"name": "either", "action": "Allow",
             "from": [{"groups": ["Engineering"]}, {"roles": ["member"]}], "to": [{"paths": ["/either"]}]},
            {"name": "no-contractors", "action": "Deny", "from": [{"groups": ["contractors"]}],
             "to": [{"paths": ["/secret"]}]},
            {"name": "no-admins-here", "action": "Deny",
             "from": [{"groups": ["contractors"], "roles": ["admin"]}], "to": [{"paths": ["/ops"]}]},
            {"name": "open", "action": "Allow", "from": [{"authenticated": true}],
             "to": [{"paths": ["/secret"]}, {"paths": ["/ops"]}]}
        ]}));
        let person = ada();
        let decide = |path: &str, known: bool| {
            let method = http::Method::GET;
            let request = RequestFacts {
                method: &method,
                host: Some("portal.example.com"),
                path,
            };
            let who = person.who();
            if known {
                p.decide(&request, Some(&who))
            } else {
                p.decide_groups_unknown(&request, &who)
            }
        };
        // Known groups: ada is in Engineering, not in contractors.
        assert_eq!(decide("/eng", true), Decision::Allow { rule: Some("eng") });
        assert_eq!(
            decide("/secret", true),
            Decision::Allow { rule: Some("open") }
        );
        // Unknown groups: the group rule admits no one, even one whose partial list names the
        // group; other criteria still decide.
        assert_eq!(decide("/eng", false), Decision::Deny { rule: None });
        assert_eq!(
            decide("/docs", false),
            Decision::Allow {
                rule: Some("members")
            }
        );
        assert_eq!(
            decide("/either", false),
            Decision::Allow {
                rule: Some("either")
            }
        );
        // A Deny on a group refuses; one whose other fields do not hold does not.
        assert_eq!(
            decide("/secret", false),
            Decision::Deny {
                rule: Some("no-contractors")
            }
        );
        assert_eq!(
            decide("/ops", false),
            Decision::Allow { rule: Some("open") }
        );
    }

    #[test]
    fn session_groups_come_from_all_the_groups_not_only_the_recorded_ones() {
        let p = policy(json!({"rules": [
            {"name": "late", "action": "Allow", "from": [{"groups": ["g-0300", "g-0001"]}]}
        ]}));
        let groups: Vec<Value> = (0..400).map(|i| json!(format!("g-{i:04}"))).collect();
        let Value::Object(claims) = json!({ "groups": groups }) else {
            panic!("object")
        };
        assert_eq!(
            groups_from_claims(&claims, "groups").len(),
            MAX_RECORDED_GROUPS
        );
        assert_eq!(
            p.session_groups_from_claims(&claims, "groups"),
            ["g-0001", "g-0300"]
        );
        assert!(
            policy(json!({}))
                .session_groups_from_claims(&claims, "groups")
                .is_empty()
        );
    }
}
