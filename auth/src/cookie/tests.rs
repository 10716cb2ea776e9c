use super::*;
use crate::claims::Role;
use crate::collections::ExpiringSet;
use http::{HeaderMap, HeaderValue};

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const NOW: i64 = 1_800_000_000;

fn binding() -> Binding {
    Binding::new("team-a", "portal", "https://portal.example.com", None)
}

fn session() -> Session {
    Session {
        sid: random_token(16),
        user: "okta-0123456789abcdef".into(),
        subject: "00u1".into(),
        provider: "okta".into(),
        email: Some("ada@example.com".into()),
        name: Some("Ada".into()),
        username: Some("ada@example.com".into()),
        role: Role::Admin,
        issued_at: NOW,
        expires_at: NOW + 3600,
        user_uid: None,
        idp_sid: None,
        validated_at: None,
        groups: Vec::new(),
        claims: None,
        facts: None,
        groups_unknown: false,
    }
}

#[test]
fn a_refresh_cookie_opens_only_for_its_own_session_and_never_as_another_cookie() {
    let ring = KeyRing::parse(K1).expect("ring");
    let grant = RefreshGrant {
        sid: "sid-1".into(),
        token: "rt-secret".into(),
        nonce: "n".into(),
    };
    let sealed = grant.seal(&ring, &binding()).expect("fits");
    assert!(!sealed.contains("rt-secret"));
    assert_eq!(
        RefreshGrant::unseal(&ring, &binding(), &sealed, "sid-1"),
        Some(grant.clone())
    );
    // Pasted beside another session: refused.
    assert_eq!(
        RefreshGrant::unseal(&ring, &binding(), &sealed, "sid-2"),
        None
    );
    // Another app's binding, or the value offered as a session cookie: refused.
    let other_app = Binding::new("team-a", "billing", "https://portal.example.com", None);
    assert_eq!(
        RefreshGrant::unseal(&ring, &other_app, &sealed, "sid-1"),
        None
    );
    assert_eq!(Session::unseal(&ring, &binding(), &sealed, NOW), None);
    // A session cookie is no refresh cookie either.
    let session_cookie = session().seal(&ring, &binding());
    assert_eq!(
        RefreshGrant::unseal(&ring, &binding(), &session_cookie, "sid-1"),
        None
    );
    // Its debug form names the session, never the token.
    assert!(!format!("{grant:?}").contains("rt-secret"));
}

#[test]
fn a_refresh_token_too_large_for_a_cookie_is_not_kept() {
    let ring = KeyRing::parse(K1).expect("ring");
    let grant = |len: usize| RefreshGrant {
        sid: "sid-1".into(),
        token: "r".repeat(len),
        nonce: "n".into(),
    };
    assert!(grant(2000).seal(&ring, &binding()).is_some());
    assert!(grant(3000).seal(&ring, &binding()).is_none());
}

#[test]
fn seal_and_unseal_round_trip() {
    let ring = KeyRing::parse(K1).expect("ring");
    let s = session();
    let sealed = s.seal(&ring, &binding());
    assert!(sealed.len() < 600, "cookie stays small: {}", sealed.len());
    assert_eq!(
        Session::unseal(&ring, &binding(), &sealed, NOW),
        Some(s.clone())
    );
    // Expired at its expiry.
    assert_eq!(
        Session::unseal(&ring, &binding(), &sealed, NOW + 3600),
        None
    );
    // Two seals of the same session differ (fresh nonce).
    assert_ne!(sealed, s.seal(&ring, &binding()));
}

#[test]
fn tampered_truncated_oversized_and_foreign_cookies_are_no_session() {
    let ring = KeyRing::parse(K1).expect("ring");
    let sealed = session().seal(&ring, &binding());
    let unseal = |v: &str| Session::unseal(&ring, &binding(), v, NOW);

    // Every single-character change anywhere is rejected.
    for i in 0..sealed.len() {
        let mut bytes = sealed.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert_eq!(unseal(&tampered), None, "byte {i}");
    }
    for len in [0, 1, 10, 40, sealed.len() - 1] {
        assert_eq!(unseal(&sealed[..len]), None, "truncated to {len}");
    }
    let huge = "A".repeat(100 * 1024);
    assert_eq!(unseal(&huge), None);
    assert_eq!(unseal(&format!("{sealed}{}", "A".repeat(4096))), None);
    assert_eq!(unseal("not base64 !!"), None);

    // Another app (config, namespace, origin or UID) cannot use it.
    for other in [
        Binding::new("team-a", "billing", "https://portal.example.com", None),
        Binding::new("team-b", "portal", "https://portal.example.com", None),
        Binding::new("team-a", "portal", "https://other.example.com", None),
        Binding::new(
            "team-a",
            "portal",
            "https://portal.example.com",
            Some("uid-1"),
        ),
    ] {
        assert_eq!(Session::unseal(&ring, &other, &sealed, NOW), None);
    }
    // Nor can a ring without the key.
    let stranger = KeyRing::parse(K2).expect("ring");
    assert_eq!(Session::unseal(&stranger, &binding(), &sealed, NOW), None);
    // Nor is an attempt cookie a session.
    let attempt = Attempt::new("okta", "/", NOW).seal(&ring, &binding());
    assert_eq!(unseal(&attempt), None);
}

#[test]
fn key_rotation_keeps_old_sessions() {
    let old = KeyRing::parse(K1).expect("ring");
    let sealed_old = session().seal(&old, &binding());
    let rotated = KeyRing::parse(&format!("{K2},{K1}")).expect("ring");
    assert!(Session::unseal(&rotated, &binding(), &sealed_old, NOW).is_some());
    let sealed_new = session().seal(&rotated, &binding());
    // New cookies use the new first key: the old ring cannot read them.
    assert!(Session::unseal(&old, &binding(), &sealed_new, NOW).is_none());
    let only_new = KeyRing::parse(K2).expect("ring");
    assert!(Session::unseal(&only_new, &binding(), &sealed_new, NOW).is_some());
    assert!(Session::unseal(&only_new, &binding(), &sealed_old, NOW).is_none());
}

#[test]
fn key_ring_parsing() {
    assert_eq!(KeyRing::parse("").err(), Some(KeyRingError::Empty));
    assert_eq!(KeyRing::parse(" , ").err(), Some(KeyRingError::Empty));
    assert_eq!(
        KeyRing::parse("c2hvcnQ=").err(),
        Some(KeyRingError::BadKey(1))
    );
    assert_eq!(
        KeyRing::parse(&format!("{K1},???")).err(),
        Some(KeyRingError::BadKey(2))
    );
    assert_eq!(
        KeyRing::parse(&format!("{K1},{K1}")).err(),
        Some(KeyRingError::Duplicate(2))
    );
    // URL-safe and unpadded forms are accepted.
    assert_eq!(
        KeyRing::parse(K1.trim_end_matches('='))
            .map(|r| r.len())
            .ok(),
        Some(1)
    );
    assert_eq!(
        KeyRing::parse(&format!(" {K1} , {K2} "))
            .map(|r| r.len())
            .ok(),
        Some(2)
    );
    let debug = format!("{:?}", KeyRing::parse(K1).expect("ring"));
    assert!(!debug.contains(K1) && debug.contains("keys: 1"), "{debug}");
}

#[test]
fn attempts_expire_and_have_pkce() {
    let ring = KeyRing::parse(K1).expect("ring");
    let a = Attempt::new("okta", "/x", NOW);
    assert_eq!(a.state.len(), 43);
    assert_ne!(a.state, a.nonce);
    let sealed = a.seal(&ring, &binding());
    assert_eq!(
        Attempt::unseal(&ring, &binding(), &sealed, NOW + 10),
        Some(a.clone())
    );
    assert_eq!(
        Attempt::unseal(&ring, &binding(), &sealed, NOW + ATTEMPT_TTL_SECS),
        None
    );
    // RFC 7636 appendix B.
    let rfc = Attempt {
        verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        ..a
    };
    assert_eq!(
        rfc.code_challenge(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert_eq!(Attempt::cookie_id("abc"), None);
    assert_eq!(
        Attempt::cookie_id("0123456789abcdef-rest"),
        Some("0123456789abcdef")
    );
    assert_eq!(Attempt::cookie_id("0123456789abcd;f-rest"), None);
}

#[test]
fn cookie_attributes() {
    let https = CookieNames::new(true);
    assert_eq!(https.session, "__Host-gatehouse-session");
    assert_eq!(
        https.set(&https.session, "v", 60).to_str().ok(),
        Some("__Host-gatehouse-session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure")
    );
    let http = CookieNames::new(false);
    assert_eq!(http.session, "gatehouse-session");
    assert_eq!(
        http.delete(&http.session).to_str().ok(),
        Some("gatehouse-session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
    );
    assert!(CookieNames::is_own("__Host-gatehouse-attempt-abc"));
    assert!(CookieNames::is_own("gatehouse-session"));
    assert!(!CookieNames::is_own("session"));
}

#[test]
fn cookie_header_parsing() {
    let mut h = HeaderMap::new();
    h.append(
        http::header::COOKIE,
        HeaderValue::from_static("a=1; gatehouse-session=xyz"),
    );
    h.append(http::header::COOKIE, HeaderValue::from_static("b=\"2\""));
    assert_eq!(cookie(&h, "gatehouse-session"), Some("xyz"));
    assert_eq!(cookie(&h, "b"), Some("2"));
    assert_eq!(cookie(&h, "c"), None);
    assert_eq!(cookies(&h).count(), 3);
}

#[test]
fn unseal_cache_only_answers_for_the_exact_cookie() {
    let ring = KeyRing::parse(K1).expect("ring");
    let cache = UnsealCache::new(2);
    let s = session();
    let sealed = s.seal(&ring, &binding());
    let hit = cache
        .get_or_unseal(&ring, &binding(), &sealed, NOW)
        .expect("valid");
    assert_eq!(*hit, s);
    assert!(
        cache
            .get_or_unseal(&ring, &binding(), &sealed, NOW)
            .is_some()
    );
    // Same last 16 characters, different prefix: not a hit, and not valid either.
    let forged = format!("AAAA{}", &sealed[4..]);
    assert!(
        cache
            .get_or_unseal(&ring, &binding(), &forged, NOW)
            .is_none()
    );
    // Expiry still applies to cached entries.
    assert!(
        cache
            .get_or_unseal(&ring, &binding(), &sealed, NOW + 3600)
            .is_none()
    );
    // Bounded.
    for _ in 0..5 {
        let other = session().seal(&ring, &binding());
        assert!(
            cache
                .get_or_unseal(&ring, &binding(), &other, NOW)
                .is_some()
        );
    }
    assert!(cache.len() <= 2);
    // After a key change the caller clears it: the old ring's cookies must unseal again.
    cache.clear();
    let stranger = KeyRing::parse(K2).expect("ring");
    assert!(
        cache
            .get_or_unseal(&stranger, &binding(), &sealed, NOW)
            .is_none()
    );
}

#[test]
fn expiring_set_is_bounded() {
    let set = ExpiringSet::new(3);
    assert!(!set.contains("a", NOW));
    assert!(set.insert("a", NOW + 10, NOW));
    assert!(
        !set.insert("a", NOW + 10, NOW),
        "second insert reports a replay"
    );
    assert!(set.contains("a", NOW));
    assert!(!set.contains("a", NOW + 10), "gone at expiry");
    set.insert("b", NOW + 20, NOW);
    set.insert("c", NOW + 30, NOW);
    set.insert("d", NOW + 40, NOW);
    assert!(set.len() <= 3);
    assert!(!set.contains("a", NOW), "soonest-expiring evicted first");
    assert!(set.contains("d", NOW));
}

#[test]
fn shared_renewals_never_open_as_cookies_and_cookies_never_as_shared_renewals() {
    let keys = KeyRing::parse(K1).expect("ring");
    let s = session();
    let shared = s.seal_shared(&keys, &binding());
    assert_eq!(
        Session::unseal_shared(&keys, &binding(), &shared, &s.sid, NOW),
        Some(s.clone())
    );
    // An SsoUser reader who copies the shared value into a cookie gets no session.
    assert_eq!(Session::unseal(&keys, &binding(), &shared, NOW), None);
    // A cookie is no shared renewal, and a shared renewal of another session is none either.
    let cookie = s.seal(&keys, &binding());
    assert_eq!(
        Session::unseal_shared(&keys, &binding(), &cookie, &s.sid, NOW),
        None
    );
    assert_eq!(
        Session::unseal_shared(&keys, &binding(), &shared, "other", NOW),
        None
    );
    let grant = RefreshGrant {
        sid: s.sid.clone(),
        token: "rt-1".into(),
        nonce: "n".into(),
    };
    let shared_grant = grant.seal_shared(&keys, &binding()).expect("fits");
    assert_eq!(
        RefreshGrant::unseal_shared(&keys, &binding(), &shared_grant, &s.sid),
        Some(grant.clone())
    );
    assert_eq!(
        RefreshGrant::unseal(&keys, &binding(), &shared_grant, &s.sid),
        None
    );
    let refresh_cookie = grant.seal(&keys, &binding()).expect("fits");
    assert_eq!(
        RefreshGrant::unseal_shared(&keys, &binding(), &refresh_cookie, &s.sid),
        None
    );
}
