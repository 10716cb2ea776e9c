//! Microsoft Graph pages: what an Entra group overage reads, from a server the access token is
//! sent to.

use gatehouse_auth::access::MAX_GROUP_BYTES;
use gatehouse_auth::overage::{first_page, first_page_of_user, next_page, parse_page};
use url::Url;

/// A `transitiveMemberOf` page: ids are non-empty and at most [`MAX_GROUP_BYTES`]; the next page
/// is followed only on the Graph URL's origin (scheme, host and port), under its path, without
/// credentials or a fragment, so the access token goes nowhere else. An object id the page
/// names, used as a user's, gives a URL only when it is a GUID, and then one under the same
/// origin and path.
pub fn graph_page(data: &[u8]) {
    let bases = [
        Url::parse("https://graph.microsoft.com").expect("url"),
        Url::parse("http://127.0.0.1:8080/graph/").expect("url"),
    ];
    let Ok(page) = parse_page(data) else {
        return;
    };
    for id in &page.ids {
        assert!(!id.is_empty() && id.len() <= MAX_GROUP_BYTES, "{id:?}");
    }
    for base in &bases {
        let under = base.path().trim_end_matches('/');
        let stays = |url: &Url| {
            url.scheme() == base.scheme()
                && url.host_str().map(str::to_ascii_lowercase)
                    == base.host_str().map(str::to_ascii_lowercase)
                && url.port_or_known_default() == base.port_or_known_default()
                && url.path().starts_with(&format!("{under}/"))
                && url.username().is_empty()
                && url.password().is_none()
                && url.fragment().is_none()
        };
        assert!(stays(&first_page(base)));
        if let Some(link) = &page.next_link
            && let Some(next) = next_page(base, link)
        {
            assert!(stays(&next), "{link:?} followed from {base}");
        }
        for id in &page.ids {
            if let Some(url) = first_page_of_user(base, id) {
                assert!(stays(&url), "{id:?}");
                assert_eq!(id.len(), 36, "{id:?}");
                assert!(
                    url.path()
                        .ends_with(&format!("/users/{id}/transitiveMemberOf"))
                );
            }
        }
    }
}
