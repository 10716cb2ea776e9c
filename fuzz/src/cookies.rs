//! Cookies: the three sealed cookies (session, sign-in attempt, refresh grant), the key ring they
//! are sealed with, and the `Cookie` header splitter.
//!
//! A sealed-cookie target reads its input twice: as a cookie value, as a browser sends it (base64,
//! key id, nonce, AEAD — a fuzzer cannot forge one, so only the genuine seeds open), and as the
//! plaintext of a cookie sealed here (what unsealing parses once the AEAD passed: the JSON).

use std::fmt::Debug;

use gatehouse_auth::cookie::{
    ATTEMPT_TTL_SECS, Attempt, Binding, KeyRing, KeyRingError, MAX_COOKIE_BYTES,
    MAX_REFRESH_COOKIE, Purpose, RefreshGrant, Session, cookie, cookie_pairs, cookies,
};
use http::{HeaderMap, HeaderValue};

use crate::fixtures::{NOW, REFRESH_SID, binding, other_bindings, rings};

const PURPOSES: [Purpose; 6] = [
    Purpose::Session,
    Purpose::Attempt,
    Purpose::LogoutHint,
    Purpose::Refresh,
    Purpose::SharedSession,
    Purpose::SharedGrant,
];

/// How a sealed-cookie target opens and seals its type, and what an opened value must satisfy.
struct Kind<T> {
    purpose: Purpose,
    open: fn(&KeyRing, &Binding, &str) -> Option<T>,
    seal: fn(&T, &KeyRing, &Binding) -> Option<String>,
    check: fn(&T),
}

/// The invariants every sealed cookie keeps, on `data` as a value and as a plaintext.
fn sealed_cookie<T: PartialEq + Debug>(data: &[u8], kind: &Kind<T>) {
    let r = rings();
    let b = binding();
    let value = String::from_utf8_lossy(data);

    // As a cookie value: it opens for at most one purpose, never under a key that sealed nothing
    // (the stranger) nor for another app's binding.
    let purposes = PURPOSES
        .iter()
        .filter(|p| r.ring.unseal(**p, &b, &value).is_some())
        .count();
    assert!(purposes <= 1, "one value opened for {purposes} purposes");
    for p in PURPOSES {
        assert!(
            r.stranger.unseal(p, &b, &value).is_none(),
            "opened under a stranger key"
        );
    }
    for other in other_bindings() {
        assert!(
            r.ring.unseal(kind.purpose, &other, &value).is_none(),
            "opened for another app's binding"
        );
    }
    if let Some(opened) = (kind.open)(&r.ring, &b, &value) {
        assert!(value.len() <= MAX_COOKIE_BYTES, "an oversized value opened");
        (kind.check)(&opened);
        assert_eq!(
            (kind.open)(&r.rotated, &b, &value).as_ref(),
            Some(&opened),
            "a rotated ring (old key second) must still open it"
        );
        round_trip(kind, &opened);
    }

    // As the plaintext of a cookie sealed here.
    let sealed = r.ring.seal(kind.purpose, &b, data);
    let opened = r.ring.unseal(kind.purpose, &b, &sealed);
    if sealed.len() <= MAX_COOKIE_BYTES {
        assert_eq!(
            opened.as_deref(),
            Some(data),
            "sealed plaintext did not come back"
        );
    } else {
        assert!(opened.is_none(), "a value over MAX_COOKIE_BYTES opened");
    }
    for p in PURPOSES.into_iter().filter(|p| *p != kind.purpose) {
        assert!(
            r.ring.unseal(p, &b, &sealed).is_none(),
            "opened for another purpose"
        );
    }
    assert!(r.stranger.unseal(kind.purpose, &b, &sealed).is_none());
    for other in other_bindings() {
        assert!(r.ring.unseal(kind.purpose, &other, &sealed).is_none());
    }
    if let Some(opened) = (kind.open)(&r.ring, &b, &sealed) {
        (kind.check)(&opened);
        round_trip(kind, &opened);
    }
}

/// Sealing an opened value again opens to the same value (when it still fits a cookie).
fn round_trip<T: PartialEq + Debug>(kind: &Kind<T>, value: &T) {
    let r = rings();
    let b = binding();
    if let Some(sealed) = (kind.seal)(value, &r.ring, &b)
        && sealed.len() <= MAX_COOKIE_BYTES
    {
        assert_eq!(
            (kind.open)(&r.ring, &b, &sealed).as_ref(),
            Some(value),
            "re-sealed value did not open to itself"
        );
    }
}

/// Session cookie: never opens under another key, binding or purpose; an opened session is
/// unexpired at `NOW`; sealing it again round-trips.
pub fn session_cookie(data: &[u8]) {
    sealed_cookie(
        data,
        &Kind {
            purpose: Purpose::Session,
            open: |ring, b, v| Session::unseal(ring, b, v, NOW),
            seal: |s, ring, b| Some(s.seal(ring, b)),
            check: |s| assert!(s.expires_at > NOW, "an expired session opened"),
        },
    );
}

/// Sign-in attempt cookie: as [`session_cookie`]; an opened attempt is within its lifetime, its
/// cookie id (when it has one) is 16 URL-safe characters, its PKCE challenge 43.
pub fn attempt_cookie(data: &[u8]) {
    sealed_cookie(
        data,
        &Kind {
            purpose: Purpose::Attempt,
            open: |ring, b, v| Attempt::unseal(ring, b, v, NOW),
            seal: |a, ring, b| Some(a.seal(ring, b)),
            check: |a| {
                assert!(
                    a.created_at.saturating_add(ATTEMPT_TTL_SECS) > NOW && a.created_at <= NOW + 60,
                    "an attempt outside its lifetime opened"
                );
                if let Some(id) = Attempt::cookie_id(&a.state) {
                    assert!(
                        id.len() == 16
                            && id
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
                        "cookie id {id:?}"
                    );
                }
                assert_eq!(a.code_challenge().len(), 43);
            },
        },
    );
}

/// Refresh cookie: as [`session_cookie`]; an opened grant belongs to the session asked for, and
/// sealing refuses a grant whose cookie would exceed `MAX_REFRESH_COOKIE`.
pub fn refresh_cookie(data: &[u8]) {
    sealed_cookie(
        data,
        &Kind {
            purpose: Purpose::Refresh,
            open: |ring, b, v| RefreshGrant::unseal(ring, b, v, REFRESH_SID),
            seal: |g, ring, b| {
                let sealed = g.seal(ring, b);
                if let Some(s) = &sealed {
                    assert!(
                        s.len() <= MAX_REFRESH_COOKIE,
                        "refresh cookie over the limit"
                    );
                }
                sealed
            },
            check: |g| assert_eq!(g.sid, REFRESH_SID, "a grant of another session opened"),
        },
    );
}

/// `GATEHOUSE_COOKIE_SECRET`: a ring has between one key and one per non-empty entry; an error
/// names an entry that exists; the ring's `Debug` shows no key; what it seals, it opens, and so
/// does a ring of its first key alone (the key that seals).
pub fn key_ring(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let entries: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    match KeyRing::parse(&text) {
        Ok(ring) => {
            assert!(
                !ring.is_empty() && ring.len() == entries.len(),
                "{} keys",
                ring.len()
            );
            let debug = format!("{ring:?}");
            for entry in &entries {
                assert!(!debug.contains(entry), "Debug shows a key");
            }
            let b = binding();
            let sealed = ring.seal(Purpose::Session, &b, b"payload");
            assert_eq!(
                ring.unseal(Purpose::Session, &b, &sealed).as_deref(),
                Some(&b"payload"[..])
            );
            let first = KeyRing::parse(entries[0]).expect("the first entry alone is a ring");
            assert!(first.unseal(Purpose::Session, &b, &sealed).is_some());
        }
        Err(KeyRingError::Empty) => assert!(entries.is_empty(), "Empty with entries"),
        Err(KeyRingError::BadKey(i) | KeyRingError::Duplicate(i)) => {
            assert!((1..=entries.len()).contains(&i), "error names entry {i}");
        }
    }
}

/// The `Cookie` header splitter: the pairs joined with `;` are the input (no byte lost or
/// invented); one pair more than `;`s. As request headers (one per input line): every cookie's
/// name and value hold no `;`, the name no `=` and no surrounding space, the value no surrounding
/// quote; `cookie()` finds the first of a name; the session cookie found unseals without panic.
pub fn cookie_header(data: &[u8]) {
    let pairs: Vec<&[u8]> = cookie_pairs(data).collect();
    assert_eq!(
        pairs.join(&b';'),
        data,
        "cookie_pairs lost or invented bytes"
    );
    assert_eq!(pairs.len(), data.iter().filter(|&&c| c == b';').count() + 1);

    let mut headers = HeaderMap::new();
    let mut total = 0;
    for line in data.split(|&c| c == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            total += cookie_pairs(v.as_bytes()).count();
            headers.append(http::header::COOKIE, v);
        }
    }
    let all: Vec<(&str, &str)> = cookies(&headers).collect();
    assert!(all.len() <= total);
    for (name, value) in &all {
        assert!(!name.contains(';') && !value.contains(';'));
        assert!(!name.contains('='));
        assert_eq!(name.trim(), *name);
        assert!(!value.starts_with('"') && !value.ends_with('"'));
        let first = all.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(cookie(&headers, name), first);
    }
    for name in ["__Host-gatehouse-session", "gatehouse-session"] {
        if let Some(value) = cookie(&headers, name) {
            let _ = Session::unseal(&rings().ring, &binding(), value, NOW);
        }
    }
}
