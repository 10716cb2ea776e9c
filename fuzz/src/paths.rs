//! Request paths: the canonical form skip-auth rules match on, and the `rd=` redirect judgement.

use gatehouse_auth::paths::{self as auth_paths, safe_redirect, under_prefix};

/// Whether `b` looks like a same-origin path: one `/`, not `//` or `/\`, no backslash, no
/// control character (a decoded space is fine: `%20` is kept).
fn looks_local(b: &[u8]) -> bool {
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && !b.iter().any(|&c| c == b'\\' || c < b' ' || c == 0x7f)
}

/// One round of `%XX` decoding; `None` when nothing changes or an escape is malformed.
fn percent_decode_once(b: &[u8]) -> Option<Vec<u8>> {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    (out != b).then_some(out)
}

/// Canonical path: an accepted path starts with `/` and has no `.` or `..` segment, no empty
/// segment but the last (no `//`), no `\`, `;` or control character, no encoded `.`, `/`, `\`,
/// `%` or `;`; canonicalizing it again changes nothing. A prefix matches only on a segment
/// boundary of it. The input's first line is the path, the second a skip-auth prefix.
pub fn canonical_path(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (raw, prefix) = text.split_once('\n').unwrap_or((&text, "/healthz"));
    let Some(path) = auth_paths::canonical_path(raw) else {
        return;
    };
    assert!(path.starts_with('/'), "{path:?}");
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, s) in segments.iter().enumerate() {
        assert!(*s != "." && *s != "..", "dot segment in {path:?}");
        assert!(
            !s.is_empty() || i == segments.len() - 1,
            "empty segment in {path:?}"
        );
    }
    assert!(
        !path
            .bytes()
            .any(|c| c == b'\\' || c == b';' || c < 0x20 || c == 0x7f),
        "{path:?}"
    );
    let lower = path.to_ascii_lowercase();
    for encoded in ["%2e", "%2f", "%5c", "%25", "%3b", "%00"] {
        assert!(!lower.contains(encoded), "{encoded} in {path:?}");
    }
    assert_eq!(
        auth_paths::canonical_path(&path).as_deref(),
        Some(&*path),
        "not idempotent"
    );
    if under_prefix(&path, prefix) {
        assert!(path.starts_with(prefix));
        let rest = &path[prefix.len()..];
        assert!(prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'));
    }
}

/// `rd=` redirect: the result is always a same-origin path — it starts with one `/` (never `//`
/// or `/\`), holds no backslash, whitespace, control or non-ASCII character and no fragment,
/// resolves to the same origin against any base, and stays local however often it is
/// percent-decoded; judging it again changes nothing.
pub fn redirect(data: &[u8]) {
    let rd = String::from_utf8_lossy(data);
    let out = safe_redirect(&rd);
    assert!(out.is_ascii() && !out.contains(' '), "{out:?}");
    assert!(looks_local(out.as_bytes()), "{out:?} from {rd:?}");
    assert!(!out.contains('#'), "{out:?}");
    assert!(url::Url::parse(&out).is_err(), "{out:?} is an absolute URL");
    for base in [
        "https://app.example/",
        "https://app.example/a/b/c?x=1#f",
        "http://app.example:8080/a/",
    ] {
        let base = url::Url::parse(base).expect("base");
        let joined = base.join(&out).expect("a path joins");
        assert_eq!(joined.origin(), base.origin(), "{out:?} leaves the origin");
        assert!(joined.username().is_empty() && joined.password().is_none());
    }
    let mut current = out.as_bytes().to_vec();
    while let Some(next) = percent_decode_once(&current) {
        assert!(
            looks_local(&next),
            "{out:?} decodes to {:?}",
            String::from_utf8_lossy(&next)
        );
        current = next;
    }
    assert_eq!(safe_redirect(&out), out, "not idempotent");
}
