//! The header rules of the security model, as pure functions over a [`HeaderMap`].
//!
//! Request headers: client-sent identity headers of every spelling are removed (`X-Forwarded-*`
//! except a well-formed `X-Forwarded-For`, `X-Auth-Request-*`, `X-Gatehouse-*`, `Forwarded`,
//! `Remote-User`, `X-Remote-User`; any case, `_` for `-`, duplicates), as are hop-by-hop headers and
//! the sidecar's own cookies; then the real identity (if any) and `X-Forwarded-For` (appended),
//! `X-Forwarded-Proto` (the public URL's scheme) and `X-Forwarded-Host` are set. Response headers:
//! hop-by-hop headers and any `Set-Cookie` for the sidecar's cookies are removed.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};

use gatehouse_auth::cookie::{CookieNames, cookie_pairs};

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers the proxy may add to a request: `X-Forwarded-For`, `-Proto`, `-Host` and `Host`.
pub const FORWARDING_HEADERS: usize = 4;

/// Header-name prefixes (after `_` → `-`) that only the sidecar may send to the app.
const IDENTITY_PREFIXES: [&str; 3] = ["x-forwarded-", "x-auth-request-", "x-gatehouse-"];
/// Whole header names (after `_` → `-`) that apps commonly trust as identity.
const IDENTITY_NAMES: [&str; 3] = ["forwarded", "remote-user", "x-remote-user"];

/// Whether a client-sent header must be removed before the request reaches the app.
pub fn is_client_identity_header(name: &str) -> bool {
    // `X-Forwarded-For` spelled exactly is a hop list we append to; its `_` spellings are not.
    if name.eq_ignore_ascii_case("x-forwarded-for") {
        return false;
    }
    IDENTITY_PREFIXES
        .iter()
        .any(|p| normalized_starts_with(name, p))
        || IDENTITY_NAMES
            .iter()
            .any(|n| name.len() == n.len() && normalized_starts_with(name, n))
}

/// `name` starts with `prefix`, ignoring ASCII case and reading `_` as `-`.
fn normalized_starts_with(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.bytes().zip(prefix.bytes()).all(|(a, b)| {
            let a = if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            };
            a == b
        })
}

/// Removes client-sent identity headers (all values of each).
pub fn strip_client_identity(headers: &mut HeaderMap) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        if is_client_identity_header(name.as_str()) {
            doomed.push(name.clone());
        }
    }
    for name in doomed {
        headers.remove(&name);
    }
}

/// The trimmed name of one `name=value` cookie pair.
fn cookie_pair_name(pair: &[u8]) -> &[u8] {
    let name = match memchr::memchr(b'=', pair) {
        Some(i) => &pair[..i],
        None => pair,
    };
    name.trim_ascii()
}

/// Removes the sidecar's cookies and folds several `Cookie` headers into one (HTTP/1.1 wants one).
///
/// Works on the header bytes, so a value that is not visible ASCII cannot hide one of our cookies.
pub fn strip_own_cookies(headers: &mut HeaderMap) {
    let mut count = 0;
    let mut ours = false;
    let mut only_ours = true;
    for v in headers.get_all(header::COOKIE) {
        count += 1;
        let bytes = v.as_bytes();
        // Every spelling of our names contains this; most apps' cookies never do.
        if memchr::memmem::find(bytes, b"gatehouse-").is_none() {
            only_ours = false;
            continue;
        }
        for pair in cookie_pairs(bytes) {
            if CookieNames::is_own_name(cookie_pair_name(pair)) {
                ours = true;
            } else if !pair.trim_ascii().is_empty() {
                only_ours = false;
            }
        }
    }
    if count == 0 || (count == 1 && !ours) {
        return;
    }
    if only_ours {
        headers.remove(header::COOKIE);
        return;
    }
    let mut kept: Vec<u8> = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        for pair in cookie_pairs(v.as_bytes()) {
            let pair = pair.trim_ascii();
            if pair.is_empty() || CookieNames::is_own_name(cookie_pair_name(pair)) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_bytes(&kept)
    {
        headers.insert(header::COOKIE, v);
    }
}

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass of cheap comparisons instead of eight hashed removals.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let mut listed: Vec<HeaderName> = Vec::new();
    for v in headers.get_all(header::CONNECTION) {
        if let Ok(text) = v.to_str() {
            for token in text.split(',') {
                if let Ok(name) = HeaderName::from_bytes(token.trim().as_bytes()) {
                    listed.push(name);
                }
            }
        }
    }
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Removes the client's hop-by-hop headers — the fixed set and every header its `Connection`
/// names — before the sidecar adds anything to its request, so a client cannot name away a
/// header the sidecar adds (`Connection: x-forwarded-groups`). An HTTP/1.1 upgrade
/// (`upgrade`, from [`crate::upgrade::upgrade_protocol`]) stays asked for, as `Connection:
/// upgrade` and its `Upgrade`.
pub fn strip_client_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    strip_hop_by_hop(headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
}

/// Appends the client address to `X-Forwarded-For` (one folded value).
pub fn append_forwarded_for(headers: &mut HeaderMap, peer: &HeaderValue) {
    let existing: Vec<&[u8]> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if existing.is_empty() {
        headers.insert(X_FORWARDED_FOR, peer.clone());
        return;
    }
    let mut joined = Vec::with_capacity(64);
    for v in existing {
        joined.extend_from_slice(v);
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(peer.as_bytes());
    match HeaderValue::from_bytes(&joined) {
        Ok(v) => headers.insert(X_FORWARDED_FOR, v),
        Err(_) => headers.insert(X_FORWARDED_FOR, peer.clone()),
    };
}

/// Removes the app's `Set-Cookie` headers for the sidecar's cookies: the app may not set (or clear)
/// them.
pub fn strip_own_set_cookies(headers: &mut HeaderMap) {
    if !headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(set_cookie_is_own)
    {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| !set_cookie_is_own(v))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in kept {
        headers.append(header::SET_COOKIE, v);
    }
}

fn set_cookie_is_own(v: &HeaderValue) -> bool {
    let bytes = v.as_bytes();
    let name_end = bytes.iter().position(|b| *b == b'=').unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..name_end]).is_ok_and(|n| CookieNames::is_own(n.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_header_table() {
        let stripped = [
            "x-forwarded-user",
            "X-Forwarded-User",
            "X-FORWARDED-EMAIL",
            "x-forwarded-preferred-username",
            "x-forwarded-groups",
            "x-forwarded-org",
            "x-forwarded-provider",
            "x-forwarded-access-token",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x_forwarded_user",
            "X_Forwarded_Email",
            "x-forwarded_user",
            "x_forwarded-for",
            "x_forwarded_for",
            "x-auth-request-email",
            "X-Auth-Request-User",
            "x_auth_request_email",
            "x-auth-request-access-token",
            "x-gatehouse-identity",
            "X_GATEHOUSE_IDENTITY",
            "forwarded",
            "remote-user",
            "remote_user",
            "x-remote-user",
        ];
        for name in stripped {
            assert!(is_client_identity_header(name), "{name} must be stripped");
        }
        let kept = [
            "x-forwarded-for",
            "X-Forwarded-For",
            "x-request-id",
            "authorization",
            "cookie",
            "x-forwarded",
            "x-forward-user",
            "remote-users",
            "user-agent",
        ];
        for name in kept {
            assert!(!is_client_identity_header(name), "{name} must be kept");
        }
    }

    #[test]
    fn stripping_removes_every_value_of_every_spelling() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("x-forwarded-user", "mallory"),
            ("x-forwarded-user", "mallory2"),
            ("x_forwarded_email", "m@evil"),
            ("x-auth-request-email", "m@evil"),
            ("x-gatehouse-identity", "forged"),
            ("x-forwarded-for", "203.0.113.9"),
            ("accept", "text/html"),
        ] {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_static(v),
            );
        }
        strip_client_identity(&mut h);
        let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "x-forwarded-for"]);
    }

    #[test]
    fn own_cookies_are_removed_and_others_kept() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("app=1; __Host-gatehouse-session=abc"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("gatehouse-attempt-x=1; theme=dark"),
        );
        strip_own_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(
            h.get(header::COOKIE).and_then(|v| v.to_str().ok()),
            Some("app=1; theme=dark")
        );

        let mut only_ours = HeaderMap::new();
        only_ours.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-gatehouse-session=abc"),
        );
        strip_own_cookies(&mut only_ours);
        assert!(only_ours.get(header::COOKIE).is_none());

        // A value that is not visible ASCII still loses our cookie.
        let mut odd = HeaderMap::new();
        odd.insert(
            header::COOKIE,
            HeaderValue::from_bytes(b"gatehouse-session=abc; caf\xc3\xa9=1").expect("value"),
        );
        strip_own_cookies(&mut odd);
        assert_eq!(
            odd.get(header::COOKIE).map(HeaderValue::as_bytes),
            Some(&b"caf\xc3\xa9=1"[..])
        );

        let mut untouched = HeaderMap::new();
        untouched.insert(header::COOKIE, HeaderValue::from_static("a=1;b=2"));
        strip_own_cookies(&mut untouched);
        assert_eq!(
            untouched.get(header::COOKIE).and_then(|v| v.to_str().ok()),
            Some("a=1;b=2")
        );
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept"]);
    }

    #[test]
    fn the_clients_hop_by_hop_headers_go_and_an_upgrade_stays_asked_for() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Upgrade, x-forwarded-groups"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-forwarded-groups", HeaderValue::from_static("admin"));
        strip_client_hop_by_hop(&mut h, Some(HeaderValue::from_static("websocket")));
        assert_eq!(
            h.get(header::CONNECTION).map(HeaderValue::as_bytes),
            Some(&b"upgrade"[..])
        );
        assert_eq!(
            h.get(header::UPGRADE).map(HeaderValue::as_bytes),
            Some(&b"websocket"[..])
        );
        assert!(h.get("x-forwarded-groups").is_none());
        // A header added afterwards survives the proxy's own pass: the client's list is gone.
        h.insert("x-forwarded-groups", HeaderValue::from_static("member"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-forwarded-groups").is_some());
    }

    #[test]
    fn forwarded_for_is_appended() {
        let peer = HeaderValue::from_static("10.0.0.7");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, &peer);
        assert_eq!(h.get(X_FORWARDED_FOR), Some(&peer));
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.1"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.2"));
        append_forwarded_for(&mut h, &peer);
        assert_eq!(
            h.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()),
            Some("198.51.100.1, 203.0.113.2, 10.0.0.7")
        );
    }

    #[test]
    fn the_app_cannot_set_our_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("__Host-gatehouse-session=x; Path=/"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("app=1; Path=/"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("gatehouse-session=; Max-Age=0"),
        );
        strip_own_set_cookies(&mut h);
        let left: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(left, ["app=1; Path=/"]);
    }
}
