//! The 20-rule access policy of `cargo xtask bench` (issue 28): what a further sidecar enforces
//! beside the plain authenticated one, so the report can give what the rules cost per request.
//!
//! The rules are an internal portal's: ten `Deny` and ten `Allow`, on paths, methods, hosts,
//! roles, groups, emails, email domains, providers and claims (`when`). The benchmark's request
//! (`GET /static` on `127.0.0.1`, the fixture Okta IdP's `ada`: role `admin`, `ada@example.com`)
//! matches no `Deny` rule, so every one of them is evaluated, and is admitted only by
//! [`ADMITTING_RULE`], the last `Allow` rule by name: `Allow` rules are tried in name order and
//! the first that matches decides, so every other rule is evaluated before it. The tests below
//! check both.
//!
//! The session the benchmark sends is signed in at the sidecar with these rules, so it carries
//! what they name: ada's `userType` and `department` claims (she has no `groups` claim at the
//! fixture Okta) and the fingerprint of the facts the rules name; a session signed in without
//! them is asked to sign in again under rules that name groups or claims. The sidecar without
//! rules ignores those fields, so the same cookie goes to both. The rules' `when` conditions ask
//! for values her claims do not hold, so every rule decides the same with or without them.

use serde_json::{Value, json};

/// The `Allow` rule that admits the benchmark's request.
pub const ADMITTING_RULE: &str = "allow-staff-read";

/// The policy as `spec.access` JSON (what the operator renders into `GATEHOUSE_ACCESS`).
pub fn policy() -> Value {
    json!({
        "defaultAction": "Deny",
        "rules": [
            // Deny: none matches ada's GET /static.
            {"name": "block-actuator", "action": "Deny",
             "to": [{"paths": ["/actuator", "/debug", "/internal"]}]},
            {"name": "block-contractors-admin", "action": "Deny",
             "from": [{"emailDomains": ["contractor.example", "vendor.example"]}],
             "to": [{"paths": ["/admin", "/api/admin"]}]},
            {"name": "block-departed-users", "action": "Deny",
             "from": [{"emails": ["mallory@example.com", "trent@example.com"]}]},
            {"name": "block-guest-user-type", "action": "Deny",
             "from": [{"authenticated": true}],
             "when": [{"claim": "userType", "values": ["guest", "contractor"]}]},
            {"name": "block-legacy-provider", "action": "Deny",
             "from": [{"providers": ["legacy-sso"]}]},
            {"name": "block-member-deletes", "action": "Deny",
             "from": [{"roles": ["member"]}],
             "to": [{"methods": ["DELETE"]}]},
            {"name": "block-partner-admins", "action": "Deny",
             "from": [{"roles": ["admin"], "emailDomains": ["partner.example"]}]},
            {"name": "block-personal-email", "action": "Deny",
             "from": [{"emailDomains": ["gmail.com", "outlook.com", "yahoo.com"]}]},
            {"name": "block-readonly-host-writes", "action": "Deny",
             "to": [{"hosts": ["readonly.portal.example.com"],
                     "methods": ["POST", "PUT", "PATCH", "DELETE"]}]},
            {"name": "block-suspended-groups", "action": "Deny",
             "from": [{"groups": ["suspended", "offboarding"]}]},
            // Allow: only the last by name admits ada's GET /static.
            {"name": "allow-admin-console", "action": "Allow",
             "from": [{"roles": ["admin"]}, {"groups": ["sre"]}],
             "to": [{"paths": ["/admin"]}]},
            {"name": "allow-api-readers", "action": "Allow",
             "from": [{"roles": ["member", "admin"]}],
             "to": [{"paths": ["/api"], "methods": ["GET"]}],
             "when": [{"claim": "scp", "values": ["portal.read"]}]},
            {"name": "allow-billing-finance", "action": "Allow",
             "from": [{"groups": ["finance", "billing-admins"]}],
             "to": [{"paths": ["/billing", "/invoices"]}]},
            {"name": "allow-engineering-dashboards", "action": "Allow",
             "from": [{"authenticated": true}],
             "to": [{"hosts": ["127.0.0.1", "portal.example.com"], "methods": ["GET"]}],
             "when": [{"claim": "department",
                       "values": ["Platform Engineering", "Site Reliability"]}]},
            {"name": "allow-health-checks", "action": "Allow",
             "to": [{"paths": ["/healthz", "/readyz"], "methods": ["GET"]}]},
            {"name": "allow-mfa-writes", "action": "Allow",
             "from": [{"roles": ["member", "admin"]}],
             "to": [{"methods": ["POST", "PUT", "PATCH", "DELETE"]}],
             "when": [{"claim": "amr", "values": ["mfa", "hwk"]}]},
            {"name": "allow-partner-portal", "action": "Allow",
             "from": [{"emailDomains": ["partner.example"]}],
             "to": [{"hosts": ["127.0.0.1", "portal.example.com"]}]},
            {"name": "allow-reports-analysts", "action": "Allow",
             "from": [{"groups": ["analysts"]}, {"emails": ["ceo@example.com"]}],
             "to": [{"paths": ["/reports"]}]},
            {"name": "allow-sre-everywhere", "action": "Allow",
             "from": [{"groups": ["sre", "platform-oncall"]}]},
            {"name": ADMITTING_RULE, "action": "Allow",
             "from": [{"roles": ["admin", "member"],
                       "emailDomains": ["example.com", "example.org"],
                       "providers": ["okta"]}],
             "to": [{"hosts": ["127.0.0.1", "portal.example.com"],
                     "paths": ["/static", "/assets", "/app"],
                     "methods": ["GET"]}]},
        ]
    })
}

/// A path every signed-in user is refused by a `Deny` rule (`block-actuator`): the benchmark
/// checks with it that the rules are in force.
pub const REFUSED_PATH: &str = "/actuator";

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_auth::access::{
        AccessSpec, Action, Decision, Policy, PrincipalType, RequestFacts, Who,
    };
    use gatehouse_crds::Role;
    use reqwest::Method;
    use serde_json::Map;

    fn spec() -> AccessSpec {
        serde_json::from_value(policy()).expect("an access spec")
    }

    /// The benchmark's request (or another on the same host), as the sidecar with rules sees it.
    fn request<'a>(method: &'a Method, path: &'a str) -> RequestFacts<'a> {
        RequestFacts {
            method,
            host: Some("127.0.0.1:41234"),
            path,
        }
    }

    /// The fixture Okta IdP's ada, as her session holds her: with or without the claims a
    /// session issued under these rules would keep.
    fn ada<'a>(claims: Option<&'a Map<String, Value>>) -> Who<'a> {
        Who {
            kind: PrincipalType::User,
            user: "okta-3f9c0a1b2c3d4e5f",
            role: Some(Role::Admin),
            groups: &[],
            email: Some("ada@example.com"),
            provider: "okta",
            service_account: None,
            client: None,
            claims,
        }
    }

    fn ada_claims() -> Map<String, Value> {
        let Value::Object(claims) =
            json!({"userType": "admin", "department": "Analytical Engines"})
        else {
            unreachable!("an object")
        };
        claims
    }

    #[test]
    fn twenty_rules_of_both_actions_on_every_kind_of_fact() {
        let spec = spec();
        let policy = Policy::compile(&spec).expect("a valid policy");
        assert_eq!(policy.rule_count(), 20);
        // It names groups and claims: a session must be signed in under it to be decided by it.
        assert!(policy.facts_fingerprint().is_some());
        let denies = spec
            .rules
            .iter()
            .filter(|r| r.action == Action::Deny)
            .count();
        assert_eq!(denies, 10);
        let text = super::policy().to_string();
        for field in [
            "paths",
            "methods",
            "hosts",
            "roles",
            "groups",
            "emails",
            "emailDomains",
            "providers",
            "when",
        ] {
            assert!(
                text.contains(&format!("\"{field}\"")),
                "no rule uses {field}"
            );
        }
    }

    #[test]
    fn the_benchmark_request_is_admitted_by_the_last_allow_rule_after_every_other() {
        let spec = spec();
        let policy = Policy::compile(&spec).expect("a valid policy");
        let claims = ada_claims();
        for who in [ada(None), ada(Some(&claims))] {
            assert_eq!(
                policy.decide(&request(&Method::GET, "/static"), Some(&who)),
                Decision::Allow {
                    rule: Some(ADMITTING_RULE)
                }
            );
        }
        // Allow rules are tried in name order, the first match deciding: the admitting rule is
        // the last, so every other one was evaluated (and no Deny rule matched, or it would have
        // decided).
        let last = spec
            .rules
            .iter()
            .filter(|r| r.action == Action::Allow)
            .map(|r| r.name.as_str())
            .max();
        assert_eq!(last, Some(ADMITTING_RULE));
        // Without it, nothing admits the request: the default answer.
        let mut without = spec.clone();
        without.rules.retain(|r| r.name != ADMITTING_RULE);
        let without = Policy::compile(&without).expect("a valid policy");
        for who in [ada(None), ada(Some(&claims))] {
            assert_eq!(
                without.decide(&request(&Method::GET, "/static"), Some(&who)),
                Decision::Deny { rule: None }
            );
        }
    }

    #[test]
    fn the_rules_are_in_force_for_the_same_user() {
        let policy = Policy::compile(&spec()).expect("a valid policy");
        assert_eq!(
            policy.decide(&request(&Method::GET, REFUSED_PATH), Some(&ada(None))),
            Decision::Deny {
                rule: Some("block-actuator")
            }
        );
        assert_eq!(
            policy.decide(&request(&Method::DELETE, "/static"), Some(&ada(None))),
            Decision::Deny { rule: None }
        );
    }
}
