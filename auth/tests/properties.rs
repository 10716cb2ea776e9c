//! Properties of gatehouse-auth's attacker-facing parsers, each stated for all inputs of a
//! strategy rather than for a table of examples. The fuzz targets of `fuzz/` assert the same
//! invariants under AFL++; docs/security.md lists both.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_auth::claims::Role;
use gatehouse_auth::cookie::{
    Binding, KeyRing, MAX_COOKIE_BYTES, Purpose, Session, cookie_pairs, cookies,
};
use gatehouse_auth::paths::{canonical_path, safe_redirect, under_prefix};
use gatehouse_auth::token::{TokenError, parse_header};
use proptest::prelude::*;

const PURPOSES: [Purpose; 6] = [
    Purpose::Session,
    Purpose::Attempt,
    Purpose::LogoutHint,
    Purpose::Refresh,
    Purpose::SharedSession,
    Purpose::SharedGrant,
];

fn key_text(bytes: &[u8; 32]) -> String {
    STANDARD.encode(bytes)
}

fn purpose() -> impl Strategy<Value = Purpose> {
    prop::sample::select(PURPOSES.to_vec())
}

/// The four parts of a binding: namespace, config, origin, UID.
type Parts = (String, String, String, Option<String>);

fn parts() -> impl Strategy<Value = Parts> {
    (
        "[a-z0-9-]{0,8}",
        "[a-z0-9-]{0,8}",
        "https?://[a-z.]{1,12}",
        prop::option::of("[a-f0-9-]{1,12}"),
    )
}

fn binding(p: &Parts) -> Binding {
    Binding::new(&p.0, &p.1, &p.2, p.3.as_deref())
}

/// Whether `b` looks like a same-origin path: one `/`, not `//` or `/\`, no backslash or control
/// character.
fn looks_local(b: &[u8]) -> bool {
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && !b.iter().any(|&c| c == b'\\' || c < b' ' || c == 0x7f)
}

/// `%XX` escapes of `b` decoded; `None` for a malformed escape.
fn percent_decode(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Path-like strings rich in what makes paths ambiguous: dots, slashes, backslashes, `;`, and
/// escapes of them.
fn tricky_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "/", "/", "/", ".", "..", "a", "b", "%2e", "%2E", "%2f", "%2F", "%5c", "%25", "%61",
            "%7E", "%20", "%C3%A9", ";", "\\", "%", "%zz", "~", "-", "?", "#",
        ]),
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// Redirect targets rich in what makes open redirects: slashes, backslashes, schemes, controls,
/// `@`, and (nested) escapes of them.
fn tricky_redirect() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "/",
            "/",
            "//",
            "\\",
            "%2F",
            "%2f",
            "%5C",
            "%25",
            "%252F",
            "%09",
            "%0a",
            "\t",
            " ",
            "evil.example",
            "a",
            "..",
            ".",
            "@",
            ":",
            "https:",
            "javascript:",
            "?",
            "#",
            "%",
            "%zz",
            "é",
        ]),
        0..10,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A sealed value opens only under a ring holding its key, for its own purpose and its own
    /// binding; there it opens to exactly what was sealed (when it fits a cookie).
    #[test]
    fn a_sealed_value_opens_only_for_its_key_purpose_and_binding(
        key in any::<[u8; 32]>(),
        other_key in any::<[u8; 32]>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..512),
        purpose in purpose(),
        other_purpose in purpose(),
        parts in parts(),
        other_parts in parts(),
    ) {
        prop_assume!(key != other_key);
        let ring = KeyRing::parse(&key_text(&key)).expect("a 32-byte key");
        let stranger = KeyRing::parse(&key_text(&other_key)).expect("a 32-byte key");
        let b = binding(&parts);
        let sealed = ring.seal(purpose, &b, &plaintext);
        prop_assert!(sealed.len() <= MAX_COOKIE_BYTES);
        prop_assert_eq!(ring.unseal(purpose, &b, &sealed), Some(plaintext.clone()));
        prop_assert_eq!(stranger.unseal(purpose, &b, &sealed), None);
        if other_purpose != purpose {
            prop_assert_eq!(ring.unseal(other_purpose, &b, &sealed), None);
        }
        if other_parts != parts {
            prop_assert_eq!(ring.unseal(purpose, &binding(&other_parts), &sealed), None);
        }
        // A rotation that keeps the key (second) still opens it; one that drops it does not.
        let rotated =
            KeyRing::parse(&format!("{},{}", key_text(&other_key), key_text(&key))).expect("ring");
        prop_assert_eq!(rotated.unseal(purpose, &b, &sealed), Some(plaintext));
    }

    /// Changing any one character of a sealed value (to another base64url character), or cutting
    /// it short, leaves no value.
    #[test]
    fn a_tampered_or_truncated_sealed_value_never_opens(
        key in any::<[u8; 32]>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        at in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_-]",
        cut in any::<prop::sample::Index>(),
    ) {
        let ring = KeyRing::parse(&key_text(&key)).expect("ring");
        let b = Binding::new("team-a", "portal", "https://portal.example.com", None);
        let sealed = ring.seal(Purpose::Session, &b, &plaintext);
        let i = at.index(sealed.len());
        let replacement = replacement.as_bytes()[0];
        prop_assume!(sealed.as_bytes()[i] != replacement);
        let mut tampered = sealed.clone().into_bytes();
        tampered[i] = replacement;
        let tampered = String::from_utf8(tampered).expect("ASCII");
        prop_assert_eq!(ring.unseal(Purpose::Session, &b, &tampered), None);
        let short = &sealed[..cut.index(sealed.len())];
        prop_assert_eq!(ring.unseal(Purpose::Session, &b, short), None);
    }

    /// Arbitrary text never opens as a sealed value of any purpose.
    #[test]
    fn arbitrary_text_never_opens(key in any::<[u8; 32]>(), value in ".{0,200}", raw in prop::collection::vec(any::<u8>(), 0..200)) {
        let ring = KeyRing::parse(&key_text(&key)).expect("ring");
        let b = Binding::new("team-a", "portal", "https://portal.example.com", None);
        let encoded = URL_SAFE_NO_PAD.encode(&raw);
        for p in PURPOSES {
            prop_assert_eq!(ring.unseal(p, &b, &value), None);
            prop_assert_eq!(ring.unseal(p, &b, &encoded), None);
        }
    }

    /// A session round-trips through its cookie until it expires, and not after.
    #[test]
    fn a_session_opens_until_it_expires(
        key in any::<[u8; 32]>(),
        sid in "[A-Za-z0-9_-]{1,43}",
        subject in ".{1,40}",
        email in prop::option::of(".{0,40}"),
        admin in any::<bool>(),
        issued_at in 0i64..4_000_000_000,
        ttl in 1i64..100_000,
        at in 0i64..200_000,
    ) {
        let ring = KeyRing::parse(&key_text(&key)).expect("ring");
        let b = Binding::new("team-a", "portal", "https://portal.example.com", None);
        let session = Session {
            sid,
            user: "okta-0123456789abcdef".into(),
            subject,
            provider: "okta".into(),
            email,
            name: None,
            username: None,
            role: if admin { Role::Admin } else { Role::Member },
            issued_at,
            expires_at: issued_at + ttl,
            user_uid: None,
            idp_sid: None,
            validated_at: None,
            groups: Vec::new(),
            claims: None,
            facts: None,
            groups_unknown: false,
        };
        let sealed = session.seal(&ring, &b);
        let now = issued_at + at;
        let opened = Session::unseal(&ring, &b, &sealed, now);
        if now < session.expires_at {
            prop_assert_eq!(opened, Some(session));
        } else {
            prop_assert_eq!(opened, None);
        }
    }

    /// A ring parsed from distinct keys holds all of them, and what its first key sealed opens
    /// under any ring holding that key.
    #[test]
    fn a_key_ring_holds_every_distinct_key(keys in prop::collection::hash_set(any::<[u8; 32]>(), 1..6)) {
        let keys: Vec<[u8; 32]> = keys.into_iter().collect();
        let list: Vec<String> = keys.iter().map(key_text).collect();
        let ring = KeyRing::parse(&list.join(" , ")).expect("ring");
        prop_assert_eq!(ring.len(), keys.len());
        let b = Binding::new("ns", "cfg", "https://a.example", None);
        let sealed = ring.seal(Purpose::Session, &b, b"x");
        let first = KeyRing::parse(&list[0]).expect("ring");
        prop_assert_eq!(first.unseal(Purpose::Session, &b, &sealed), Some(b"x".to_vec()));
        for other in &list[1..] {
            let ring = KeyRing::parse(other).expect("ring");
            prop_assert_eq!(ring.unseal(Purpose::Session, &b, &sealed), None);
        }
    }

    /// The `Cookie` header splitter neither loses nor invents bytes: its pairs joined with `;`
    /// are the input, and there is one pair more than there are `;`.
    #[test]
    fn cookie_pairs_lose_and_invent_nothing(value in prop::collection::vec(any::<u8>(), 0..300)) {
        let pairs: Vec<&[u8]> = cookie_pairs(&value).collect();
        prop_assert_eq!(pairs.join(&b';'), value.clone());
        prop_assert_eq!(pairs.len(), value.iter().filter(|&&c| c == b';').count() + 1);
    }

    /// Cookies read from headers have trimmed names without `=` or `;`, values without `;` or
    /// surrounding quotes, and every cookie written as `name=value` is found.
    #[test]
    fn cookies_are_read_as_written(
        pairs in prop::collection::vec(("[A-Za-z0-9_-]{1,12}", "[A-Za-z0-9_=/+-]{0,20}"), 0..8),
        spaces in " {0,2}",
    ) {
        let header = pairs
            .iter()
            .map(|(n, v)| format!("{spaces}{n}={v}"))
            .collect::<Vec<_>>()
            .join(";");
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::COOKIE, http::HeaderValue::from_str(&header).expect("header"));
        let read: Vec<(String, String)> = cookies(&headers)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let written: Vec<(String, String)> = pairs.clone();
        prop_assert_eq!(read, written);
    }

    /// A canonical path starts with `/`, has no `.` or `..` segment and no empty segment but the
    /// last (no `//`), no `\` or `;`, no encoded `.`, `/`, `\` or `%`; canonicalizing it again
    /// changes nothing.
    #[test]
    fn canonical_paths_have_no_dot_segments_and_are_fixed_points(raw in tricky_path()) {
        if let Some(path) = canonical_path(&raw) {
            prop_assert!(path.starts_with('/'));
            let segments: Vec<&str> = path[1..].split('/').collect();
            for (i, s) in segments.iter().enumerate() {
                prop_assert!(*s != "." && *s != "..", "{:?} from {:?}", path, raw);
                prop_assert!(!s.is_empty() || i == segments.len() - 1, "{:?}", path);
            }
            prop_assert!(!path.contains('\\') && !path.contains(';'));
            let lower = path.to_ascii_lowercase();
            for encoded in ["%2e", "%2f", "%5c", "%25"] {
                prop_assert!(!lower.contains(encoded), "{:?}", path);
            }
            let again = canonical_path(&path);
            prop_assert_eq!(again.as_deref(), Some(&*path));
        }
    }

    /// Paths made of plain segments (letters, digits, `-`, `_`, `~`, inner dots) are their own
    /// canonical form.
    #[test]
    fn plain_paths_are_their_own_canonical_form(segments in prop::collection::vec("[a-z0-9_~-]{1,6}(\\.[a-z0-9]{1,3})?", 0..6), slash in any::<bool>()) {
        let mut path = format!("/{}", segments.join("/"));
        if slash && !segments.is_empty() {
            path.push('/');
        }
        let canonical = canonical_path(&path);
        prop_assert_eq!(canonical.as_deref(), Some(path.as_str()));
    }

    /// A prefix matches only on a segment boundary.
    #[test]
    fn prefixes_match_on_segment_boundaries(path in "/[a-z/]{0,12}", prefix in "/[a-z/]{0,6}") {
        if under_prefix(&path, &prefix) {
            prop_assert!(path.starts_with(&prefix));
            let rest = &path[prefix.len()..];
            prop_assert!(prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'));
        }
    }

    /// The `rd=` judgement always yields a same-origin path: one leading `/` (never `//` or
    /// `/\`), ASCII without whitespace, controls, backslashes or a fragment, and it stays on the
    /// origin it is joined to, whatever that origin; and every percent-decoded form of it looks
    /// local too (browsers and frameworks decode).
    #[test]
    fn redirects_stay_on_the_origin(rd in prop_oneof![tricky_redirect(), ".{0,40}"]) {
        let out = safe_redirect(&rd);
        prop_assert!(out.is_ascii() && !out.contains(' ') && !out.contains('#'), "{:?}", out);
        prop_assert!(looks_local(out.as_bytes()), "{:?} from {:?}", out, rd);
        let mut decoded = out.clone().into_bytes();
        for _ in 0..5 {
            prop_assert!(looks_local(&decoded), "{:?} decodes to {:?}", out, String::from_utf8_lossy(&decoded));
            let next: Vec<u8> = match percent_decode(&decoded) {
                Some(next) => next,
                None => break,
            };
            if next == decoded {
                break;
            }
            decoded = next;
        }
        prop_assert!(url::Url::parse(&out).is_err(), "{:?} is an absolute URL", out);
        for base in ["https://app.example/", "http://app.example:8080/a/b?c#d"] {
            let base = url::Url::parse(base).expect("base");
            let joined = base.join(&out).expect("joins");
            prop_assert_eq!(joined.origin(), base.origin(), "{:?}", out);
            prop_assert!(joined.username().is_empty() && joined.password().is_none());
        }
    }

    /// A redirect target with no escape and no dot segment, in the characters a path keeps
    /// as they are, is kept exactly.
    #[test]
    fn plain_redirects_are_kept(segments in prop::collection::vec("[A-Za-z0-9_~-]{1,8}", 0..5), query in prop::option::of("[a-z]{1,5}=[a-z0-9]{0,5}")) {
        let mut rd = format!("/{}", segments.join("/"));
        if let Some(q) = &query {
            rd.push('?');
            rd.push_str(q);
        }
        prop_assert_eq!(safe_redirect(&rd), rd);
    }

    /// A JOSE header is accepted only with `alg` RS256, ES256 or EdDSA, exactly so written, and
    /// never with `crit`: `none`, HMAC and every other algorithm are refused before any key.
    #[test]
    fn only_asymmetric_algorithms_pass_the_header(
        alg in prop_oneof![
            Just("RS256".to_owned()), Just("ES256".to_owned()), Just("EdDSA".to_owned()),
            Just("none".to_owned()), Just("HS256".to_owned()), Just("rs256".to_owned()),
            "[A-Za-z0-9]{0,8}",
        ],
        crit in any::<bool>(),
    ) {
        let mut header = serde_json::json!({"alg": alg, "typ": "JWT"});
        if crit {
            header["crit"] = serde_json::json!(["exp"]);
        }
        let token = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()));
        let accepted = matches!(alg.as_str(), "RS256" | "ES256" | "EdDSA");
        match parse_header(&token) {
            Ok(h) => {
                prop_assert!(accepted && !crit, "{} accepted", alg);
                prop_assert_eq!(format!("{:?}", h.alg), alg);
            }
            Err(TokenError::UnsupportedAlgorithm) => prop_assert!(!accepted),
            Err(TokenError::CriticalHeader) => prop_assert!(accepted && crit),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }
}
