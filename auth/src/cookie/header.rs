//! Cookie names and `Cookie` header parsing.
//!
//! Names: `__Host-gatehouse-session` (and `__Host-gatehouse-attempt-<id>`,
//! `__Host-gatehouse-logout`, `__Host-gatehouse-refresh`) when the public URL is https; without
//! the `__Host-` prefix and without `Secure` when it is plain http. Always `Path=/`, `HttpOnly`, no
//! `Domain`; `SameSite=Lax`, except a SAML attempt cookie under https (`SameSite=None`: the IdP's
//! cross-site POST must carry it back).

use http::{HeaderMap, HeaderValue};

/// The sidecar's cookie names for this public URL scheme.
#[derive(Debug, Clone)]
pub struct CookieNames {
    /// Session cookie.
    pub session: String,
    /// Prefix of attempt cookies.
    pub attempt_prefix: String,
    /// Logout hint cookie.
    pub logout_hint: String,
    /// Refresh cookie.
    pub refresh: String,
    secure: bool,
}

/// Every spelling of our cookie names, stripped before a request reaches the app.
const OWN_COOKIE_PREFIXES: [&str; 2] = ["__Host-gatehouse-", "gatehouse-"];

impl CookieNames {
    /// Names with the `__Host-` prefix (and `Secure`) when `secure`.
    pub fn new(secure: bool) -> Self {
        let prefix = if secure { "__Host-" } else { "" };
        Self {
            session: format!("{prefix}gatehouse-session"),
            attempt_prefix: format!("{prefix}gatehouse-attempt-"),
            logout_hint: format!("{prefix}gatehouse-logout"),
            refresh: format!("{prefix}gatehouse-refresh"),
            secure,
        }
    }

    /// Whether cookies carry `Secure`.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// `Set-Cookie` for `name=value` living `max_age` seconds.
    pub fn set(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let line =
            format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
        HeaderValue::from_str(&line).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` for a cookie that must come back on a cross-site POST (the SAML ACS):
    /// `SameSite=None` (which browsers accept only with `Secure`); on plain http, where `Secure`
    /// is impossible, `SameSite=Lax` as every other cookie.
    pub fn set_cross_site(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        if !self.secure {
            return self.set(name, value, max_age);
        }
        let line =
            format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=None; Secure");
        HeaderValue::from_str(&line).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` that deletes `name`.
    pub fn delete(&self, name: &str) -> HeaderValue {
        self.set(name, "", 0)
    }

    /// Whether a cookie name is one of ours (any spelling).
    pub fn is_own(name: &str) -> bool {
        Self::is_own_name(name.as_bytes())
    }

    /// [`CookieNames::is_own`] for a name as bytes.
    pub fn is_own_name(name: &[u8]) -> bool {
        OWN_COOKIE_PREFIXES
            .iter()
            .any(|p| name.starts_with(p.as_bytes()))
    }
}

/// The `;`-separated pairs of one `Cookie` header value, untrimmed.
pub fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b';', r) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// All `name=value` pairs of the request's `Cookie` headers (pairs that are not UTF-8 are
/// skipped, the others of the same header still count).
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| cookie_pairs(v.as_bytes()))
        .filter_map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            let (name, value) = pair.split_once('=')?;
            Some((name.trim(), value.trim().trim_matches('"')))
        })
}

/// The first cookie called `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}
