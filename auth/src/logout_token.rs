//! OIDC Back-Channel Logout 1.0 logout tokens.
//!
//! A logout token is a JWT the identity provider POSTs to the back-channel logout URI. It is
//! verified like an ID token where the rules agree (signature from the provider's JWKS with an
//! asymmetric algorithm, `iss` exact, `aud` containing our client id, `exp` when present) and by
//! the specification's own rules (section 2.6): `typ` is `logout+jwt` when sent, `iat` lies
//! within the clock skew of now and is no older than [`MAX_AGE`], `jti` is present (the caller
//! refuses a replay), the `events` member names the back-channel logout event with an object,
//! there is no `nonce` (so an ID token is never accepted as a logout token), and `sid`, `sub` or
//! both are present.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::jwk::VerifyKey;
use crate::token::{JoseHeader, TokenError, UnverifiedJws};

/// The `events` member a logout token must carry.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Largest logout token accepted.
pub const MAX_LOGOUT_TOKEN_BYTES: usize = 16 * 1024;
/// Oldest `iat` accepted (plus the clock skew): a logout token is sent at once, so an old one is
/// a replay of a token whose `jti` may have been forgotten.
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// Longest `sid` or `sub` accepted.
const MAX_ID_LEN: usize = 256;

/// What a logout token must say.
#[derive(Debug, Clone, Copy)]
pub struct LogoutExpected<'a> {
    /// The provider's issuer, compared byte for byte.
    pub issuer: &'a str,
    /// Our client id: must be among the audiences.
    pub client_id: &'a str,
    /// Tolerated clock skew.
    pub skew: Duration,
}

/// A verified logout token: whose sessions end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// `sub`: every session of this subject ends (unless `sid` narrows it to one).
    pub subject: Option<String>,
    /// `sid`: the identity provider's session that ends.
    pub sid: Option<String>,
    /// `jti`: used once.
    pub jti: String,
    /// `iat`, Unix seconds.
    pub issued_at: i64,
}

/// Why a logout token was refused. Only logged: the answer to the identity provider is a bare 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// The JWT itself, its signature, `iss` or `exp` failed (as for an ID token).
    #[error("logout token: {0}")]
    Token(#[from] TokenError),
    /// `typ` is sent and is not `logout+jwt`.
    #[error("logout token has the wrong `typ`")]
    WrongType,
    /// Our client id is not among the audiences.
    #[error("logout token audience mismatch")]
    WrongAudience,
    /// `iat` is after now plus the skew.
    #[error("logout token issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the maximum age plus the skew.
    #[error("logout token too old")]
    TooOld,
    /// A required claim is absent or of the wrong type.
    #[error("logout token lacks a valid `{0}`")]
    MissingClaim(&'static str),
    /// No back-channel logout event in `events`.
    #[error("logout token lacks the back-channel logout event")]
    NoLogoutEvent,
    /// A `nonce` is present (an ID token, not a logout token).
    #[error("logout token carries a nonce")]
    Nonce,
    /// Neither `sid` nor `sub`.
    #[error("logout token names neither `sid` nor `sub`")]
    NoSubjectOrSession,
}

impl LogoutTokenError {
    /// Stable, low-cardinality reason (metrics label, log field).
    pub fn reason(&self) -> &'static str {
        match self {
            LogoutTokenError::Token(e) => e.reason(),
            LogoutTokenError::WrongType => "logout_token_type_invalid",
            LogoutTokenError::WrongAudience => "token_audience_invalid",
            LogoutTokenError::IssuedInFuture => "token_iat_future",
            LogoutTokenError::TooOld => "logout_token_too_old",
            LogoutTokenError::MissingClaim(_) => "token_claim_missing",
            LogoutTokenError::NoLogoutEvent => "logout_token_event_missing",
            LogoutTokenError::Nonce => "logout_token_has_nonce",
            LogoutTokenError::NoSubjectOrSession => "logout_token_subject_missing",
        }
    }
}

/// Whether a JOSE `typ` is the logout token's (`logout+jwt`, with or without `application/`,
/// in any case, as RFC 7515 recommends comparing it).
fn is_logout_type(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    typ == "logout+jwt" || typ == "application/logout+jwt"
}

/// A logout token whose header was read and size checked, waiting for its provider's keys
/// ([`UnverifiedLogoutToken::header`] says which).
#[derive(Debug)]
pub struct UnverifiedLogoutToken<'a>(UnverifiedJws<'a>);

impl<'a> UnverifiedLogoutToken<'a> {
    /// Reads `raw`'s header: size, algorithm and `typ` (`logout+jwt` when sent).
    pub fn parse(raw: &'a str) -> Result<Self, LogoutTokenError> {
        let jws = UnverifiedJws::parse(raw, MAX_LOGOUT_TOKEN_BYTES)?;
        if jws
            .header()
            .typ
            .as_deref()
            .is_some_and(|t| !is_logout_type(t))
        {
            return Err(LogoutTokenError::WrongType);
        }
        Ok(Self(jws))
    }

    /// The header: which key (`kid`) and algorithm the signature needs.
    pub fn header(&self) -> &JoseHeader {
        self.0.header()
    }

    /// Verifies the token against `keys` (the provider's keys matching the header) and
    /// `expected`; `now` in Unix seconds.
    pub fn verify(
        &self,
        keys: &[VerifyKey],
        expected: &LogoutExpected<'_>,
        now: i64,
    ) -> Result<LogoutToken, LogoutTokenError> {
        let claims = self
            .0
            .claims(keys, expected.issuer, expected.skew, &["iss"])?;
        check_logout_claims(&claims, expected, now)
    }
}

/// The claim rules after the signature, `iss` and `exp` passed. `now` in Unix seconds.
pub fn check_logout_claims(
    claims: &Map<String, Value>,
    expected: &LogoutExpected<'_>,
    now: i64,
) -> Result<LogoutToken, LogoutTokenError> {
    let skew = i64::try_from(expected.skew.as_secs()).unwrap_or(i64::MAX);
    let max_age = i64::try_from(MAX_AGE.as_secs()).unwrap_or(i64::MAX);

    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expected.client_id,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(expected.client_id)),
        Some(_) => false,
        None => return Err(LogoutTokenError::MissingClaim("aud")),
    };
    if !audience_ok {
        return Err(LogoutTokenError::WrongAudience);
    }

    let issued_at = match claims.get("iat").and_then(Value::as_f64) {
        Some(iat) if iat.is_finite() => iat as i64,
        _ => return Err(LogoutTokenError::MissingClaim("iat")),
    };
    if issued_at > now.saturating_add(skew) {
        return Err(LogoutTokenError::IssuedInFuture);
    }
    if issued_at < now.saturating_sub(max_age).saturating_sub(skew) {
        return Err(LogoutTokenError::TooOld);
    }

    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_ID_LEN => jti.clone(),
        _ => return Err(LogoutTokenError::MissingClaim("jti")),
    };

    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
    if !matches!(event, Some(Value::Object(_))) {
        return Err(LogoutTokenError::NoLogoutEvent);
    }

    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::Nonce);
    }

    let id = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(v)) if !v.is_empty() && v.len() <= MAX_ID_LEN => Ok(Some(v.clone())),
        Some(_) => Err(LogoutTokenError::MissingClaim(name)),
    };
    let subject = id("sub")?;
    let sid = id("sid")?;
    if subject.is_none() && sid.is_none() {
        return Err(LogoutTokenError::NoSubjectOrSession);
    }
    Ok(LogoutToken {
        subject,
        sid,
        jti,
        issued_at,
    })
}

/// The identity provider's session id (`sid`) of a verified ID token, kept in the session so a
/// back-channel logout naming it ends that session.
pub fn idp_session_id(claims: &Map<String, Value>) -> Option<String> {
    claims
        .get("sid")
        .and_then(Value::as_str)
        .filter(|sid| !sid.is_empty() && sid.len() <= MAX_ID_LEN)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn expected() -> LogoutExpected<'static> {
        LogoutExpected {
            issuer: "https://idp.example",
            client_id: "me",
            skew: Duration::from_secs(60),
        }
    }

    fn base() -> Map<String, Value> {
        match json!({"iss": "https://idp.example", "aud": "me", "sub": "u1", "sid": "s1",
                     "iat": NOW, "jti": "j1",
                     "events": {BACKCHANNEL_LOGOUT_EVENT: {}}})
        {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn with(f: impl FnOnce(&mut Map<String, Value>)) -> Result<LogoutToken, LogoutTokenError> {
        let mut c = base();
        f(&mut c);
        check_logout_claims(&c, &expected(), NOW)
    }

    #[test]
    fn a_complete_token_names_the_subject_and_session() {
        let t = with(|_| {}).expect("valid");
        assert_eq!(t.subject.as_deref(), Some("u1"));
        assert_eq!(t.sid.as_deref(), Some("s1"));
        assert_eq!(t.jti, "j1");
        // Either one alone is enough.
        assert!(with(|c| drop(c.remove("sid"))).is_ok());
        assert!(with(|c| drop(c.remove("sub"))).is_ok());
        // An audience list containing us is fine.
        assert!(with(|c| drop(c.insert("aud".into(), json!(["x", "me"])))).is_ok());
    }

    #[test]
    fn every_rule_refuses_its_forgery() {
        use LogoutTokenError as E;
        let cases: Vec<(&str, Result<LogoutToken, E>, E)> = vec![
            (
                "nonce",
                with(|c| drop(c.insert("nonce".into(), json!("n")))),
                E::Nonce,
            ),
            (
                "wrong aud",
                with(|c| drop(c.insert("aud".into(), json!("other")))),
                E::WrongAudience,
            ),
            (
                "aud list without us",
                with(|c| drop(c.insert("aud".into(), json!(["a", "b"])))),
                E::WrongAudience,
            ),
            (
                "no aud",
                with(|c| drop(c.remove("aud"))),
                E::MissingClaim("aud"),
            ),
            (
                "no events",
                with(|c| drop(c.remove("events"))),
                E::NoLogoutEvent,
            ),
            (
                "another event",
                with(|c| drop(c.insert("events".into(), json!({"urn:other": {}})))),
                E::NoLogoutEvent,
            ),
            (
                "event not an object",
                with(|c| {
                    drop(c.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" })))
                }),
                E::NoLogoutEvent,
            ),
            (
                "iat in the future",
                with(|c| drop(c.insert("iat".into(), json!(NOW + 61)))),
                E::IssuedInFuture,
            ),
            (
                "iat too old",
                with(|c| drop(c.insert("iat".into(), json!(NOW - 300 - 61)))),
                E::TooOld,
            ),
            (
                "no iat",
                with(|c| drop(c.remove("iat"))),
                E::MissingClaim("iat"),
            ),
            (
                "no jti",
                with(|c| drop(c.remove("jti"))),
                E::MissingClaim("jti"),
            ),
            (
                "empty jti",
                with(|c| drop(c.insert("jti".into(), json!("")))),
                E::MissingClaim("jti"),
            ),
            (
                "neither sid nor sub",
                with(|c| {
                    c.remove("sid");
                    c.remove("sub");
                }),
                E::NoSubjectOrSession,
            ),
            (
                "sub not a string",
                with(|c| drop(c.insert("sub".into(), json!(7)))),
                E::MissingClaim("sub"),
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, Err(want), "{name}");
        }
        // Within the skew either side is accepted.
        assert!(with(|c| drop(c.insert("iat".into(), json!(NOW + 60)))).is_ok());
        assert!(with(|c| drop(c.insert("iat".into(), json!(NOW - 360)))).is_ok());
    }

    #[test]
    fn the_logout_type_is_recognised_in_its_spellings() {
        assert!(is_logout_type("logout+jwt"));
        assert!(is_logout_type("application/logout+jwt"));
        assert!(is_logout_type("Logout+JWT"));
        assert!(!is_logout_type("JWT"));
        assert!(!is_logout_type("at+jwt"));
    }

    #[test]
    fn the_idp_session_id_is_read_from_the_id_token() {
        let mut c = base();
        assert_eq!(idp_session_id(&c).as_deref(), Some("s1"));
        c.insert("sid".into(), json!("x".repeat(300)));
        assert_eq!(idp_session_id(&c), None);
        c.insert("sid".into(), json!(1));
        assert_eq!(idp_session_id(&c), None);
    }
}
