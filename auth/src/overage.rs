//! Entra ID group overage: a token that names no groups because the user has too many. Pure; the
//! sidecar's `graph` module asks Microsoft Graph with what this module decides.
//!
//! Entra puts at most 200 groups in a JWT (150 in a SAML assertion). Past that the ID token
//! carries no `groups` claim but `_claim_names: {"groups": "src1"}` (with a `_claim_sources`
//! entry pointing at the retired Azure AD Graph) or, from the implicit flow, `hasgroups: true`.
//! Such a user's groups are read from Microsoft Graph, `/me/transitiveMemberOf`, page by page
//! ([`parse_page`], [`next_page`]); never from `_claim_sources`, which names an endpoint the token
//! chose.

use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use crate::access::MAX_GROUP_BYTES;
use crate::claims::lookup;

/// Microsoft Graph, where an overage user's groups are read unless configured otherwise.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// The path (under the Graph URL) of the signed-in user's groups, direct and inherited.
pub const TRANSITIVE_MEMBER_OF: &str = "v1.0/me/transitiveMemberOf";
/// Objects asked for per page (Graph's largest `$top`).
pub const PAGE_SIZE: u32 = 999;
/// Most pages read for one user; a user with more is treated as one whose groups are unknown.
pub const MAX_PAGES: usize = 20;
/// Most groups read for one user; more and the groups are unknown (a partial list could let a
/// `Deny` on a group that was left out miss).
pub const MAX_GROUPS: usize = 10_000;
/// Largest page read (999 ids with their `@odata.type` come to about 100 KiB).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Longest `Retry-After` honoured; a longer one (or none that fits the time left) ends the read.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Whether `claims` (a verified ID token) shows a group overage for groups claim `groups_claim`:
/// the claim is absent (or null) and the token says it was left out, by `_claim_names` naming
/// it, or by `hasgroups: true` when the claim is Entra's `groups`.
pub fn groups_overage(claims: &Map<String, Value>, groups_claim: &str) -> bool {
    if lookup(claims, groups_claim).is_some_and(|v| !v.is_null()) {
        return false;
    }
    let named = claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key(groups_claim));
    let has_groups =
        groups_claim == "groups" && claims.get("hasgroups") == Some(&Value::Bool(true));
    named || has_groups
}

/// The first page of the signed-in user's groups under Graph URL `base`: ids only, as many per
/// page as Graph gives.
pub fn first_page(base: &Url) -> Url {
    page_at(base, TRANSITIVE_MEMBER_OF)
}

/// The first page of the groups of the user with Entra object id `oid` (the ID token's `oid`),
/// for the application's own token (client credentials); `None` unless `oid` is a GUID.
pub fn first_page_of_user(base: &Url, oid: &str) -> Option<Url> {
    is_object_id(oid).then(|| page_at(base, &format!("v1.0/users/{oid}/transitiveMemberOf")))
}

/// Whether `id` is an Entra object id: a GUID in its 8-4-4-4-12 hex form (what Graph gives for a
/// group, and what a rule must name to match an overage user's groups).
pub fn is_object_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn page_at(base: &Url, relative: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{relative}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url.query_pairs_mut()
        .append_pair("$select", "id")
        .append_pair("$top", &PAGE_SIZE.to_string());
    url
}

/// The next page a Graph answer links to, when it is on `base`'s origin and under its path: the
/// access token goes with the request, so a link elsewhere (whoever wrote it) is refused, as is
/// one with credentials in it or a fragment.
pub fn next_page(base: &Url, link: &str) -> Option<Url> {
    let url = Url::parse(link).ok()?;
    let same_origin = url.scheme() == base.scheme()
        && url.host_str().map(str::to_ascii_lowercase)
            == base.host_str().map(str::to_ascii_lowercase)
        && url.port_or_known_default() == base.port_or_known_default();
    let under = base.path().trim_end_matches('/');
    let path = url.path();
    let under_path = path.starts_with(under) && path[under.len()..].starts_with('/');
    let clean = url.username().is_empty() && url.password().is_none() && url.fragment().is_none();
    (same_origin && under_path && clean).then_some(url)
}

/// One page of `transitiveMemberOf`: the objects' ids and the link to the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The ids on this page, in Graph's order (empty and over-long ones left out).
    pub ids: Vec<String>,
    /// `@odata.nextLink`, when there are more pages.
    pub next_link: Option<String>,
}

/// Why a page could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// Not a JSON object with a `value` array.
    #[error("Graph answer is not a page of objects")]
    Malformed,
}

/// Parses one page of a Graph collection: `{"value": [{"id": …}, …], "@odata.nextLink": …}`.
pub fn parse_page(body: &[u8]) -> Result<Page, PageError> {
    let json: Value = serde_json::from_slice(body).map_err(|_| PageError::Malformed)?;
    let values = json
        .get("value")
        .and_then(Value::as_array)
        .ok_or(PageError::Malformed)?;
    let ids = values
        .iter()
        .filter_map(|object| object.get("id").and_then(Value::as_str))
        .filter(|id| !id.is_empty() && id.len() <= MAX_GROUP_BYTES)
        .map(str::to_owned)
        .collect();
    let next_link = match json.get("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(link)) => Some(link.clone()),
        Some(_) => return Err(PageError::Malformed),
    };
    Ok(Page { ids, next_link })
}

/// How long a `Retry-After` header asks to wait: whole seconds (what Graph sends); an HTTP date
/// or anything else is `None`.
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let seconds: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("object expected"),
        }
    }

    #[test]
    fn overage_is_a_missing_groups_claim_the_token_says_was_left_out() {
        let cases = [
            (
                json!({"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/x"}}}),
                "groups",
                true,
            ),
            (json!({"hasgroups": true}), "groups", true),
            (json!({"hasgroups": "true"}), "groups", false),
            (json!({"hasgroups": false}), "groups", false),
            (json!({}), "groups", false),
            // Groups present: no overage, whatever else the token says.
            (
                json!({"groups": ["a"], "_claim_names": {"groups": "src1"}}),
                "groups",
                false,
            ),
            (json!({"groups": [], "hasgroups": true}), "groups", false),
            (json!({"groups": null, "hasgroups": true}), "groups", true),
            // Another claim's overage, or another groups claim.
            (json!({"_claim_names": {"roles": "src1"}}), "groups", false),
            (json!({"_claim_names": {"grp": "src1"}}), "grp", true),
            (json!({"hasgroups": true}), "grp", false),
            (json!({"_claim_names": "groups"}), "groups", false),
        ];
        for (input, claim, want) in cases {
            assert_eq!(
                groups_overage(&claims(input.clone()), claim),
                want,
                "{input} {claim}"
            );
        }
    }

    #[test]
    fn first_page_asks_for_ids_under_the_configured_url() {
        let base = Url::parse("https://graph.microsoft.com").expect("url");
        assert_eq!(
            first_page(&base).as_str(),
            "https://graph.microsoft.com/v1.0/me/transitiveMemberOf?%24select=id&%24top=999"
        );
        let base = Url::parse("http://127.0.0.1:8080/graph/").expect("url");
        assert_eq!(
            first_page(&base).as_str(),
            "http://127.0.0.1:8080/graph/v1.0/me/transitiveMemberOf?%24select=id&%24top=999"
        );
    }

    #[test]
    fn a_users_first_page_needs_a_guid() {
        let base = Url::parse("https://graph.microsoft.com").expect("url");
        assert_eq!(
            first_page_of_user(&base, "7f1c9a52-0d3b-4e8a-9c61-2b5e8d4f7a01").map(String::from),
            Some(
                "https://graph.microsoft.com/v1.0/users/7f1c9a52-0d3b-4e8a-9c61-2b5e8d4f7a01/transitiveMemberOf?%24select=id&%24top=999"
                    .to_owned()
            )
        );
        for bad in [
            "",
            "me",
            "7f1c9a52-0d3b-4e8a-9c61-2b5e8d4f7a0",
            "7f1c9a52-0d3b-4e8a-9c61-2b5e8d4f7a01/../../x",
            "7f1c9a52x0d3b-4e8a-9c61-2b5e8d4f7a01",
            "../me/transitiveMemberOf?x=7f1c9a52-0d3b-4e8",
        ] {
            assert_eq!(first_page_of_user(&base, bad), None, "{bad}");
        }
    }

    #[test]
    fn next_links_are_followed_only_on_the_graph_origin() {
        let base = Url::parse("https://graph.microsoft.com").expect("url");
        let ok = "https://graph.microsoft.com/v1.0/me/transitiveMemberOf?$skiptoken=X";
        assert_eq!(next_page(&base, ok).map(String::from).as_deref(), Some(ok));
        assert!(next_page(&base, "https://GRAPH.microsoft.com:443/v1.0/x").is_some());
        for refused in [
            "https://evil.example/v1.0/me/transitiveMemberOf?$skiptoken=X",
            "http://graph.microsoft.com/v1.0/x",
            "https://graph.microsoft.com:8443/v1.0/x",
            "https://graph.microsoft.com.evil.example/v1.0/x",
            "https://user:pw@graph.microsoft.com/v1.0/x",
            "https://graph.microsoft.com/v1.0/x#frag",
            "//evil.example/v1.0/x",
            "/v1.0/me/transitiveMemberOf",
            "not a url",
        ] {
            assert_eq!(next_page(&base, refused), None, "{refused}");
        }
        let prefixed = Url::parse("http://127.0.0.1:8080/graph").expect("url");
        assert!(next_page(&prefixed, "http://127.0.0.1:8080/graph/v1.0/x").is_some());
        assert!(next_page(&prefixed, "http://127.0.0.1:8080/graphx/v1.0/x").is_none());
        assert!(next_page(&prefixed, "http://127.0.0.1:8080/other").is_none());
    }

    #[test]
    fn pages_give_ids_and_the_next_link() {
        let body = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id)",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/me/transitiveMemberOf?$skiptoken=A",
            "value": [
                {"@odata.type": "#microsoft.graph.group", "id": "g1"},
                {"@odata.type": "#microsoft.graph.directoryRole", "id": "r1"},
                {"id": ""},
                {"id": 7},
                {"id": "x".repeat(MAX_GROUP_BYTES + 1)},
                {}
            ]
        });
        let page = parse_page(body.to_string().as_bytes()).expect("a page");
        assert_eq!(page.ids, ["g1", "r1"]);
        assert_eq!(
            page.next_link.as_deref(),
            Some("https://graph.microsoft.com/v1.0/me/transitiveMemberOf?$skiptoken=A")
        );
        let last = parse_page(br#"{"value": []}"#).expect("a page");
        assert_eq!(
            last,
            Page {
                ids: vec![],
                next_link: None
            }
        );
        for bad in [
            &b"[]"[..],
            b"{}",
            b"{\"value\": {}}",
            b"not json",
            b"{\"value\": [], \"@odata.nextLink\": 3}",
        ] {
            assert_eq!(parse_page(bad), Err(PageError::Malformed));
        }
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some(" 0 ")), Some(Duration::ZERO));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(Some("-1")), None);
        assert_eq!(retry_after(None), None);
    }
}
