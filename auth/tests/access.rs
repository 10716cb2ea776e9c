//! Properties of the access-rule engine (`gatehouse_auth::access`), for random policies and
//! requests: the order of the rules never matters, `Deny` rules only ever refuse, encoding an
//! unreserved character changes nothing, every ambiguous path fails closed both ways, and unknown
//! groups are never more permissive than known ones.

use gatehouse_auth::access::{
    AccessSpec, Decision, Policy, PrincipalType, RequestFacts, Role, Who,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// One `from` entry, from a small vocabulary so that random rules and principals meet.
fn principal() -> impl Strategy<Value = Value> {
    let one = prop_oneof![
        Just(json!({"authenticated": true})),
        prop::sample::select(vec!["admin", "member"]).prop_map(|r| json!({"roles": [r]})),
        prop::sample::subsequence(vec!["staff", "ops", "contractors"], 1..=2)
            .prop_map(|g| json!({"groups": g})),
        Just(json!({"emailDomains": ["example.com"]})),
        Just(json!({"emails": ["ada@example.com"]})),
        prop::sample::select(vec!["user", "machine"]).prop_map(|t| json!({"principalTypes": [t]})),
        Just(json!({"users": ["okta-ada"]})),
        Just(json!({"providers": ["okta"]})),
        Just(json!({"serviceAccounts": ["ci/deployer"]})),
        Just(json!({"clients": ["kubernetes"]})),
    ];
    prop::collection::vec(one, 1..=2).prop_map(|parts| {
        let mut entry = Map::new();
        for part in parts {
            if let Value::Object(fields) = part {
                entry.extend(fields);
            }
        }
        Value::Object(entry)
    })
}

/// One `to` entry.
fn operation() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::subsequence(
            vec!["/admin", "/api/", "/public", "/", "/a:b"],
            1..=2,
        )),
        prop::option::of(prop::sample::subsequence(
            vec!["GET", "HEAD", "POST", "DELETE"],
            1..=2,
        )),
        prop::option::of(prop::sample::subsequence(
            vec!["a.example", "b.example"],
            1..=1,
        )),
    )
        .prop_map(|(paths, methods, hosts)| {
            let mut entry = Map::new();
            if let Some(p) = paths {
                entry.insert("paths".into(), json!(p));
            }
            if let Some(m) = methods {
                entry.insert("methods".into(), json!(m));
            }
            if let Some(h) = hosts {
                entry.insert("hosts".into(), json!(h));
            }
            // At least one field: paths when nothing else was drawn.
            if entry.is_empty() {
                entry.insert("paths".into(), json!(["/admin"]));
            }
            Value::Object(entry)
        })
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"claim": "tier", "values": ["gold"]})),
        Just(json!({"claim": "scp", "values": ["write"]})),
        any::<bool>().prop_map(|p| json!({"claim": "org.id", "present": p})),
    ]
}

/// A rule without its name.
fn rule() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["Allow", "Deny"]),
        prop::collection::vec(principal(), 0..=2),
        prop::collection::vec(operation(), 0..=2),
        prop::collection::vec(condition(), 0..=1),
    )
        .prop_map(|(action, from, to, when)| {
            json!({"action": action, "from": from, "to": to, "when": when})
        })
}

/// Rules named `r0`, `r1`, … in the order drawn.
fn rules() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(rule(), 0..8).prop_map(|rules| {
        rules
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r["name"] = json!(format!("r{i}"));
                r
            })
            .collect()
    })
}

fn default_action() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec!["Allow", "Deny"]))
}

fn compile(default: Option<&str>, rules: &[Value]) -> Policy {
    let mut spec = json!({ "rules": rules });
    if let Some(d) = default {
        spec["defaultAction"] = json!(d);
    }
    let spec: AccessSpec = serde_json::from_value(spec).expect("an AccessSpec");
    Policy::compile(&spec).expect("a valid policy")
}

/// An owned principal; [`Person::who`] borrows it.
struct Person {
    kind: PrincipalType,
    user: &'static str,
    role: Option<Role>,
    groups: Vec<String>,
    email: Option<&'static str>,
    provider: &'static str,
    service_account: Option<&'static str>,
    client: Option<&'static str>,
    claims: Map<String, Value>,
}

impl Person {
    fn who(&self) -> Who<'_> {
        Who {
            kind: self.kind,
            user: self.user,
            role: self.role,
            groups: &self.groups,
            email: self.email,
            provider: self.provider,
            service_account: self.service_account,
            client: self.client,
            claims: Some(&self.claims),
        }
    }
}

fn claims(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A few principals that random rules match and miss.
fn people() -> Vec<Person> {
    vec![
        Person {
            kind: PrincipalType::User,
            user: "okta-ada",
            role: Some(Role::Member),
            groups: vec!["staff".into()],
            email: Some("ada@example.com"),
            provider: "okta",
            service_account: None,
            client: None,
            claims: claims(json!({"tier": "gold", "org": {"id": "o1"}})),
        },
        Person {
            kind: PrincipalType::User,
            user: "entra-bob",
            role: Some(Role::Admin),
            groups: vec!["ops".into(), "contractors".into()],
            email: Some("bob@Sub.Example.com"),
            provider: "entra",
            service_account: None,
            client: None,
            claims: claims(json!({"scp": "read write"})),
        },
        Person {
            kind: PrincipalType::Machine,
            user: "deployer",
            role: None,
            groups: vec![],
            email: None,
            provider: "kubernetes",
            service_account: Some("ci/deployer"),
            client: Some("kubernetes"),
            claims: Map::new(),
        },
    ]
}

const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "post", "DELETE"];
const HOSTS: [Option<&str>; 4] = [
    Some("a.example"),
    Some("B.Example.:80"),
    None,
    Some("bad host"),
];
const PATHS: [&str; 9] = [
    "/",
    "/admin",
    "/admin/x",
    "/administrator",
    "/api/v1",
    "/public?x=/admin",
    "/a%3Ab",
    "/admin/../public",
    "/ad%6din",
];

/// Every decision of `policy` over a fixed grid of requests and principals (anonymous first).
fn decisions(policy: &Policy) -> Vec<Decision<'_>> {
    let people = people();
    let mut out = Vec::new();
    for method in METHODS {
        let method = http::Method::from_bytes(method.as_bytes()).expect("a method");
        for host in HOSTS {
            for path in PATHS {
                let request = RequestFacts {
                    method: &method,
                    host,
                    path,
                };
                out.push(policy.decide(&request, None));
                for person in &people {
                    out.push(policy.decide(&request, Some(&person.who())));
                }
            }
        }
    }
    out
}

/// An ambiguity put into a path.
#[derive(Debug, Clone)]
enum Injection {
    /// A whole segment (`..`, `%2e`, …) before segment `n` (or at the end).
    Segment(&'static str, usize),
    /// Appended to segment `n` (`;x`, `%2f`, a backslash, …).
    Suffix(&'static str, usize),
    /// An empty segment before segment `n`: `//`.
    Empty(usize),
}

const AMBIGUOUS_SEGMENTS: [&str; 6] = ["..", ".", "%2e", "%2E", "%2e%2E", ".%2e"];
const AMBIGUOUS_SUFFIXES: [&str; 13] = [
    ";x", ";", "%3b", "%2f", "%2Fx", "%5c", "%5C", "\\", "\\x", "%25", "%00", "%0a", "#x",
];

fn injection() -> impl Strategy<Value = Injection> {
    prop_oneof![
        (prop::sample::select(AMBIGUOUS_SEGMENTS.to_vec()), 0..8usize)
            .prop_map(|(s, n)| Injection::Segment(s, n)),
        (prop::sample::select(AMBIGUOUS_SUFFIXES.to_vec()), 0..8usize)
            .prop_map(|(s, n)| Injection::Suffix(s, n)),
        (0..8usize).prop_map(Injection::Empty),
    ]
}

/// `segments` as a path with `injection` in it.
fn inject(segments: &[String], injection: &Injection) -> String {
    let mut segments = segments.to_vec();
    match injection {
        Injection::Segment(s, n) => segments.insert(n % (segments.len() + 1), (*s).to_owned()),
        Injection::Suffix(s, n) => {
            let n = n % segments.len();
            segments[n].push_str(s);
        }
        Injection::Empty(n) => segments.insert(n % segments.len(), String::new()),
    }
    format!("/{}", segments.join("/"))
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9_~-]{1,6}"
}

/// `path` with some of its letters and digits percent-encoded (those `mask` picks, cycling), in
/// either hex case; escapes already there are kept as they are.
fn encode_some(path: &str, mask: &[bool], upper: bool) -> String {
    let bytes = path.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            out.push_str(&path[i..(i + 3).min(path.len())]);
            i += 3;
            continue;
        }
        if b.is_ascii_alphanumeric() && mask[i % mask.len()] {
            if upper {
                out.push_str(&format!("%{b:02X}"));
            } else {
                out.push_str(&format!("%{b:02x}"));
            }
        } else {
            out.push(char::from(b));
        }
        i += 1;
    }
    out
}

/// `GET path` at `a.example`, decided for `who`.
fn get<'p>(policy: &'p Policy, path: &str, who: Option<&Person>) -> Decision<'p> {
    let who = who.map(Person::who);
    policy.decide(
        &RequestFacts {
            method: &http::Method::GET,
            host: Some("a.example"),
            path,
        },
        who.as_ref(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Shuffling the rules of a policy changes no decision, named rule included.
    #[test]
    fn the_order_of_rules_never_matters(
        default in default_action(),
        (rules, shuffled) in rules().prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
    ) {
        let policy = compile(default, &rules);
        let other = compile(default, &shuffled);
        prop_assert_eq!(decisions(&policy), decisions(&other));
    }

    /// A decision names a rule of its own action; dropping the `Deny` rules never refuses a
    /// request that was admitted; a `Deny` rule for everything admits nothing.
    #[test]
    fn deny_rules_only_ever_refuse(default in default_action(), rules in rules()) {
        let policy = compile(default, &rules);
        let action_of = |name: &str| {
            rules.iter().find(|r| r["name"] == name).map(|r| r["action"].clone())
        };
        let allows: Vec<Value> = rules.iter().filter(|r| r["action"] == "Allow").cloned().collect();
        let without_denies = compile(default, &allows);
        let mut closed = rules.clone();
        closed.push(json!({"name": "zz-everything", "action": "Deny"}));
        let closed = compile(default, &closed);
        let before = decisions(&policy);
        for (i, (d, lenient)) in before.iter().zip(decisions(&without_denies)).enumerate() {
            match d {
                Decision::Allow { rule: Some(name) } => {
                    prop_assert_eq!(action_of(name), Some(json!("Allow")));
                }
                Decision::Deny { rule: Some(name) } => {
                    prop_assert_eq!(action_of(name), Some(json!("Deny")));
                }
                _ => {}
            }
            if matches!(d, Decision::Allow { .. }) {
                prop_assert!(matches!(lenient, Decision::Allow { .. }), "request {}: {:?}", i, lenient);
            }
        }
        for d in decisions(&closed) {
            prop_assert!(matches!(d, Decision::Deny { rule: Some(_) }), "{:?}", d);
        }
    }

    /// Unknown groups (an Entra group overage Graph did not answer) admit no more than any list
    /// of groups would: whatever groups the principal really has, a request admitted with them
    /// unknown is admitted with them known, by no `Deny` rule refused.
    #[test]
    fn unknown_groups_are_never_more_permissive_than_any_known_groups(
        default in default_action(),
        rules in rules(),
        groups in prop::sample::subsequence(vec!["staff", "ops", "contractors"], 0..=3),
    ) {
        let policy = compile(default, &rules);
        let method = http::Method::GET;
        for mut person in people().into_iter().filter(|p| p.kind == PrincipalType::User) {
            for path in PATHS {
                let request = RequestFacts { method: &method, host: HOSTS[0], path };
                let unknown = policy.decide_groups_unknown(&request, &person.who());
                person.groups = groups.iter().map(|g| (*g).to_owned()).collect();
                let known = policy.decide(&request, Some(&person.who()));
                if matches!(unknown, Decision::Allow { .. }) {
                    prop_assert!(
                        matches!(known, Decision::Allow { .. }),
                        "{}: unknown {:?}, known {:?}", path, unknown, known
                    );
                }
            }
        }
    }

    /// Percent-encoding letters and digits of a path (in either hex case) changes no decision.
    #[test]
    fn encoding_unreserved_characters_changes_nothing(
        default in default_action(),
        rules in rules(),
        path in prop::sample::select(PATHS.to_vec()),
        mask in prop::collection::vec(any::<bool>(), 1..6),
        upper in any::<bool>(),
    ) {
        let policy = compile(default, &rules);
        let encoded = encode_some(path, &mask, upper);
        for person in people().iter().map(Some).chain([None]) {
            prop_assert_eq!(get(&policy, path, person), get(&policy, &encoded, person), "{}", encoded);
        }
    }

    /// Every ambiguous spelling of a path is under no `Allow` rule's paths and under every `Deny`
    /// rule's, whatever the prefixes; the honest path is decided by its prefix.
    #[test]
    fn ambiguous_paths_fail_closed_both_ways(
        prefix in prop::collection::vec(segment(), 1..3),
        tail in prop::collection::vec(segment(), 0..3),
        other in prop::collection::vec(segment(), 1..3),
        injection in injection(),
    ) {
        let prefix_path = format!("/{}", prefix.join("/"));
        // A `.` in its first segment: never a prefix of the honest path.
        let other_path = format!("/x.{}", other.join("/"));
        let segments: Vec<String> = prefix.iter().chain(&tail).cloned().collect();
        let honest = format!("/{}", segments.join("/"));
        let ambiguous = inject(&segments, &injection);

        let allow = compile(Some("Deny"), &[json!({
            "name": "allow", "action": "Allow", "to": [{"paths": [prefix_path]}],
        })]);
        let allow_signed_in = compile(Some("Deny"), &[json!({
            "name": "allow", "action": "Allow",
            "from": [{"authenticated": true}], "to": [{"paths": [prefix_path]}],
        })]);
        let deny = compile(Some("Allow"), &[json!({
            "name": "deny", "action": "Deny", "to": [{"paths": [other_path]}],
        })]);
        let people = people();
        let ada = Some(&people[0]);

        prop_assert_eq!(get(&allow, &honest, None), Decision::Allow { rule: Some("allow") });
        prop_assert_eq!(get(&allow_signed_in, &honest, None), Decision::SignIn);
        prop_assert_eq!(get(&deny, &honest, ada), Decision::Allow { rule: None });

        for who in [None, ada] {
            prop_assert_eq!(get(&allow, &ambiguous, who), Decision::Deny { rule: None }, "{}", ambiguous);
            prop_assert_eq!(get(&allow_signed_in, &ambiguous, who), Decision::Deny { rule: None }, "{}", ambiguous);
            prop_assert_eq!(get(&deny, &ambiguous, who), Decision::Deny { rule: Some("deny") }, "{}", ambiguous);
        }
    }
}
