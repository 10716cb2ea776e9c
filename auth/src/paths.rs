//! Paths: the canonical form skip-auth rules match on, and the post-sign-in redirect sanitizer.
//!
//! The sidecar forwards the request path byte for byte. A skip-auth prefix only applies when that
//! path is unambiguous: no dot segments, no empty segments, no `;` parameters, no backslashes, and no
//! encoded `.`, `/`, `\`, `%` or control characters — forms that an app or framework might
//! normalize into a different path than the one we matched. Percent-encoded unreserved characters
//! (`%61` = `a`) are decoded before matching, since every server treats them alike. An ambiguous path
//! is never skipped; it simply needs a session.

use std::borrow::Cow;

/// The path to match skip-auth rules on, or `None` when it is ambiguous.
pub fn canonical_path(raw: &str) -> Option<Cow<'_, str>> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    let mut decoded: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let v = hex_pair(bytes.get(i + 1..i + 3)?)?;
                if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'_' | b'~') {
                    decoded.get_or_insert_with(|| bytes[..i].to_vec()).push(v);
                } else if matches!(v, b'.' | b'/' | b'\\' | b'%' | b';') || v < 0x20 || v == 0x7f {
                    return None;
                } else if let Some(d) = decoded.as_mut() {
                    d.extend_from_slice(&bytes[i..i + 3]);
                }
                i += 3;
                continue;
            }
            b'\\' | b';' => return None,
            _ if b < 0x20 || b == 0x7f => return None,
            _ => {}
        }
        if let Some(d) = decoded.as_mut() {
            d.push(b);
        }
        i += 1;
    }
    let path: Cow<'_, str> = match decoded {
        None => Cow::Borrowed(raw),
        Some(d) => Cow::Owned(String::from_utf8(d).ok()?),
    };
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, segment) in segments.iter().enumerate() {
        if *segment == "." || *segment == ".." || (segment.is_empty() && n != last) {
            return None;
        }
    }
    Some(path)
}

fn hex_pair(pair: &[u8]) -> Option<u8> {
    let hi = (pair[0] as char).to_digit(16)?;
    let lo = (pair[1] as char).to_digit(16)?;
    Some((hi * 16 + lo) as u8)
}

/// Whether canonical `path` is under `prefix`, on segment boundaries: `/healthz` covers `/healthz`
/// and `/healthz/live`, not `/healthzz`; `/public/` covers everything below `/public/`.
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        path.starts_with(prefix)
    } else {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Longest redirect target kept.
const MAX_REDIRECT_LEN: usize = 2048;

/// A same-origin relative path to send the user to after sign-in; anything else becomes `/`.
///
/// Rejected: absolute and scheme-relative URLs (`https://x`, `//x`, `/\x`), other schemes
/// (`javascript:`), backslashes, whitespace and control characters, and the same after
/// percent-decoding (`/%09/evil.example`, `/%2F%2Fevil.example`), since browsers and frameworks
/// decode or drop them.
pub fn safe_redirect(rd: &str) -> String {
    sanitize_redirect(rd).unwrap_or_else(|| "/".to_owned())
}

fn sanitize_redirect(rd: &str) -> Option<String> {
    if rd.is_empty() || rd.len() > MAX_REDIRECT_LEN {
        return None;
    }
    // Raw: no whitespace at all (it is not valid in a URL). Decoded: no control characters.
    if rd.bytes().any(|c| c == b' ') {
        return None;
    }
    if !every_decoding_looks_local(rd.as_bytes()) {
        return None;
    }
    let base = url::Url::parse("https://gatehouse.invalid/").ok()?;
    let joined = base.join(rd).ok()?;
    if joined.origin() != base.origin() || !joined.username().is_empty() {
        return None;
    }
    let mut out = joined.path().to_owned();
    // Dot segments are resolved by the join, after the checks above: `/a/../%2Fx` becomes
    // `/%2Fx`. What is sent is judged again.
    if !out.starts_with('/') || out.starts_with("//") || !every_decoding_looks_local(out.as_bytes())
    {
        return None;
    }
    if let Some(q) = joined.query() {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

/// Whether `b` and each of its percent-decoded forms (up to four decodings) look like a local
/// path. A value still changing after four decodings is refused: too deeply encoded to judge.
fn every_decoding_looks_local(b: &[u8]) -> bool {
    let mut current = b.to_vec();
    for _ in 0..=MAX_DECODINGS {
        if !looks_local(&current) {
            return false;
        }
        match percent_decode(&current) {
            Some(next) if next != current => current = next,
            Some(_) => return true,
            None => return false,
        }
    }
    false
}

/// How many rounds of percent-decoding a redirect target is judged through.
const MAX_DECODINGS: usize = 4;

fn looks_local(b: &[u8]) -> bool {
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/') | Some(b'\\'))
        && !b.iter().any(|&c| c == b'\\' || c < b' ' || c == 0x7f)
}

/// Decodes `%XX` escapes; `None` for a malformed escape.
fn percent_decode(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(hex_pair(b.get(i + 1..i + 3)?)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_sanitizer_table() {
        let cases = [
            // Kept.
            ("/", "/"),
            ("/dashboard", "/dashboard"),
            ("/a/b?x=1&y=2", "/a/b?x=1&y=2"),
            ("/search?q=a%20b", "/search?q=a%20b"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/a/../b", "/b"),
            ("/a#frag", "/a"),
            // Open redirects.
            ("//evil.example", "/"),
            ("//evil.example/path", "/"),
            ("/\\evil.example", "/"),
            ("\\\\evil.example", "/"),
            ("/\\/evil.example", "/"),
            ("https://evil.example", "/"),
            ("http://evil.example/", "/"),
            ("HTTPS://evil.example", "/"),
            ("/%09/evil.example", "/"),
            ("/%2F%2Fevil.example", "/"),
            ("/%2f/evil.example", "/"),
            ("/%5Cevil.example", "/"),
            ("/%252F%252Fevil.example", "/"),
            ("/\t/evil.example", "/"),
            ("/\n/evil.example", "/"),
            ("/ /evil.example", "/"),
            ("javascript:alert(1)", "/"),
            ("JavaScript:alert(1)", "/"),
            ("data:text/html,hi", "/"),
            ("evil.example", "/"),
            ("", "/"),
            ("/%zz", "/"),
            ("/a\\b", "/"),
        ];
        for (input, expected) in cases {
            assert_eq!(safe_redirect(input), expected, "{input:?}");
        }
        assert_eq!(safe_redirect(&format!("/{}", "a".repeat(3000))), "/");
    }

    #[test]
    fn canonical_path_table() {
        let ok = [
            ("/", "/"),
            ("/healthz", "/healthz"),
            ("/healthz/", "/healthz/"),
            ("/public/a.css", "/public/a.css"),
            ("/%68ealthz", "/healthz"),
            ("/public/%7Euser", "/public/~user"),
            ("/files/a%20b", "/files/a%20b"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/.well-known/x", "/.well-known/x"),
            ("/a..b", "/a..b"),
        ];
        for (raw, canonical) in ok {
            assert_eq!(canonical_path(raw).as_deref(), Some(canonical), "{raw}");
        }
        let ambiguous = [
            "healthz",
            "",
            "*",
            "/public/../admin",
            "/public/./x",
            "/public/..",
            "/public//admin",
            "//public",
            "/public/%2e%2e/admin",
            "/public/%2E%2E/admin",
            "/public/.%2e/admin",
            "/public%2fadmin",
            "/public%2F..%2Fadmin",
            "/public/..%2fadmin",
            "/public\\..\\admin",
            "/public/%5c../admin",
            "/public/..;/admin",
            "/public;x/../admin",
            "/healthz;jsessionid=1",
            "/public/%252e%252e/admin",
            "/public/%00",
            "/public/%0a",
            "/public/%zz",
            "/public/%4",
        ];
        for raw in ambiguous {
            assert_eq!(canonical_path(raw), None, "{raw}");
        }
    }

    #[test]
    fn prefix_matching_is_on_segment_boundaries() {
        assert!(under_prefix("/healthz", "/healthz"));
        assert!(under_prefix("/healthz/live", "/healthz"));
        assert!(!under_prefix("/healthzz", "/healthz"));
        assert!(!under_prefix("/health", "/healthz"));
        assert!(under_prefix("/public/a", "/public/"));
        assert!(!under_prefix("/public", "/public/"));
        assert!(!under_prefix("/HEALTHZ", "/healthz"));
    }
}
