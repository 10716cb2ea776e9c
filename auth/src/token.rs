//! ID token verification.
//!
//! The signature is checked with `jsonwebtoken` against the provider's cached JWKS, with asymmetric
//! algorithms only (RS256, ES256, EdDSA): `alg: none` and HMAC tokens never reach a key. Then `iss`
//! (exact), `aud` (must contain our client id; more than one audience only when `azp` is us), `azp`
//! when present, `exp`/`nbf`/`iat` with the configured skew, `nonce` (the one stored for this
//! attempt), and a non-empty `sub`. Claims are read from the verified token only.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::jwk::VerifyKey;

/// Largest ID token accepted.
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// What the token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The provider's issuer, compared byte for byte.
    pub issuer: &'a str,
    /// Our client id: the audience, and `azp` when present.
    pub client_id: &'a str,
    /// What the `nonce` claim must be.
    pub nonce: Nonce<'a>,
    /// Tolerated clock skew.
    pub skew: Duration,
}

/// The rule for an ID token's `nonce` claim.
#[derive(Debug, Clone, Copy)]
pub enum Nonce<'a> {
    /// The ID token of a sign-in: the nonce sent with the attempt, required.
    Sent(&'a str),
    /// An ID token from a refresh (OIDC Core 12.2): the sign-in's nonce or none at all.
    Repeated(&'a str),
}

/// A verified ID token.
#[derive(Debug, Clone)]
pub struct VerifiedIdToken {
    /// `sub`.
    pub subject: String,
    /// All claims.
    pub claims: Map<String, Value>,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Over [`MAX_ID_TOKEN_BYTES`].
    #[error("ID token too large")]
    TooLarge,
    /// Not a JWS compact token, bad base64 or JSON, or a claim of the wrong type.
    #[error("ID token malformed")]
    Malformed,
    /// `alg` is not RS256, ES256 or EdDSA (includes `none` and HMAC).
    #[error("ID token algorithm not accepted")]
    UnsupportedAlgorithm,
    /// The token uses a critical header extension we do not implement.
    #[error("ID token has critical header extensions")]
    CriticalHeader,
    /// No key with this `kid` and algorithm, even after the rate-limited refetch.
    #[error("ID token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("ID token signature invalid")]
    BadSignature,
    /// `iss` differs from the provider's issuer.
    #[error("ID token issuer mismatch")]
    WrongIssuer,
    /// `aud` does not contain our client id, or `azp` names another client.
    #[error("ID token audience mismatch")]
    WrongAudience,
    /// Several audiences and `azp` is not us.
    #[error("ID token has extra audiences without azp")]
    UntrustedAudience,
    /// `exp` passed.
    #[error("ID token expired")]
    Expired,
    /// `iat` in the future.
    #[error("ID token issued in the future")]
    IssuedInFuture,
    /// `nbf` in the future.
    #[error("ID token not yet valid")]
    NotYetValid,
    /// A required claim is absent.
    #[error("ID token lacks `{0}`")]
    MissingClaim(&'static str),
    /// `nonce` differs from the one sent.
    #[error("ID token nonce mismatch")]
    NonceMismatch,
}

impl TokenError {
    /// Stable, low-cardinality reason (metrics label, audit field).
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "token_too_large",
            TokenError::Malformed => "token_malformed",
            TokenError::UnsupportedAlgorithm => "token_alg_unsupported",
            TokenError::CriticalHeader => "token_crit_unsupported",
            TokenError::UnknownKey => "token_key_unknown",
            TokenError::BadSignature => "token_signature_invalid",
            TokenError::WrongIssuer => "token_issuer_invalid",
            TokenError::WrongAudience => "token_audience_invalid",
            TokenError::UntrustedAudience => "token_audience_untrusted",
            TokenError::Expired => "token_expired",
            TokenError::IssuedInFuture => "token_iat_future",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::MissingClaim("nonce") => "token_nonce_missing",
            TokenError::MissingClaim("sub") => "token_subject_missing",
            TokenError::MissingClaim(_) => "token_claim_missing",
            TokenError::NonceMismatch => "token_nonce_mismatch",
        }
    }

    /// One error of every reason, for the table of sign-in reasons in the docs. Keep it in step
    /// with [`TokenError::explanation`], whose match fails to compile on a new variant.
    pub const EXAMPLES: [TokenError; 16] = [
        TokenError::TooLarge,
        TokenError::Malformed,
        TokenError::UnsupportedAlgorithm,
        TokenError::CriticalHeader,
        TokenError::UnknownKey,
        TokenError::BadSignature,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
        TokenError::UntrustedAudience,
        TokenError::Expired,
        TokenError::IssuedInFuture,
        TokenError::NotYetValid,
        TokenError::MissingClaim("nonce"),
        TokenError::MissingClaim("sub"),
        TokenError::MissingClaim("exp"),
        TokenError::NonceMismatch,
    ];

    /// What the reason tells an operator, and what to do: one line of the docs' table of
    /// sign-in reasons (`docs/troubleshooting.md`, generated from this).
    pub fn explanation(&self) -> &'static str {
        match self {
            TokenError::TooLarge => {
                "the ID token is over 16 KiB: have the IdP put fewer claims in it (large group lists)"
            }
            TokenError::Malformed => {
                "the ID token is not a compact JWS, or a claim has the wrong type: an IdP that does \
                 not follow OpenID Connect, or something between it and the sidecar altered the answer"
            }
            TokenError::UnsupportedAlgorithm => {
                "the ID token is signed with neither RS256, ES256 nor EdDSA (`none` and HMAC \
                 included): set the client's signing algorithm at the IdP to RS256"
            }
            TokenError::CriticalHeader => {
                "the ID token's header names critical extensions (`crit`), none of which the \
                 sidecar implements: an IdP setting beyond OpenID Connect"
            }
            TokenError::UnknownKey => {
                "no key of the provider's JWKS matches the ID token's `kid`, even after fetching \
                 the JWKS again: the issuer configured is not the one signing the tokens"
            }
            TokenError::BadSignature => {
                "the ID token's signature does not verify with the provider's key: a token altered \
                 or minted elsewhere"
            }
            TokenError::WrongIssuer => {
                "the ID token's `iss` differs from the configured issuer, compared byte for byte \
                 (a trailing slash counts): copy the issuer from the discovery document"
            }
            TokenError::WrongAudience => {
                "the ID token's `aud` does not hold the client id, or its `azp` names another \
                 client: check the client id configured for the provider"
            }
            TokenError::UntrustedAudience => {
                "the ID token has several audiences and no `azp` naming this client: have the IdP \
                 issue tokens for this client alone"
            }
            TokenError::Expired => {
                "the ID token's `exp` has passed, beyond the tolerated clock skew \
                 (`GATEHOUSE_CLOCK_SKEW`): check the node's clock"
            }
            TokenError::IssuedInFuture => {
                "the ID token's `iat` is in the future, beyond the tolerated clock skew: the node's \
                 and the IdP's clocks disagree"
            }
            TokenError::NotYetValid => {
                "the ID token's `nbf` is in the future, beyond the tolerated clock skew: the node's \
                 and the IdP's clocks disagree"
            }
            TokenError::MissingClaim("nonce") => {
                "the ID token of a sign-in carries no `nonce`, though one was sent: an IdP that \
                 ignores it, or a token not issued for this attempt"
            }
            TokenError::MissingClaim("sub") => {
                "the ID token has no usable `sub` (the user's stable id): an IdP bug"
            }
            TokenError::MissingClaim(_) => {
                "the ID token lacks a required claim (`iss`, `aud`, `exp` or `iat`): an IdP that \
                 does not follow OpenID Connect"
            }
            TokenError::NonceMismatch => {
                "the ID token's `nonce` is not the one this sign-in sent: a token replayed from \
                 another sign-in; the user signs in again"
            }
        }
    }
}

/// The parts of the JOSE header we look at before trusting anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseHeader {
    /// `alg`: one of the asymmetric algorithms we accept.
    pub alg: Algorithm,
    /// `kid`, when the header has one: which of the provider's keys to try.
    pub kid: Option<String>,
    /// `typ`, when the header has one.
    pub typ: Option<String>,
}

/// The JOSE header of a compact JWS (three dot-separated parts) as a JSON object, unchecked.
pub fn header_members(raw: &str) -> Result<Map<String, Value>, TokenError> {
    let mut parts = raw.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Reads the JOSE header of a compact JWS, refusing unsupported algorithms and `crit`.
pub fn parse_header(raw: &str) -> Result<JoseHeader, TokenError> {
    let header = header_members(raw)?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Algorithm::RS256,
        Some("ES256") => Algorithm::ES256,
        Some("EdDSA") => Algorithm::EdDSA,
        _ => return Err(TokenError::UnsupportedAlgorithm),
    };
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(typ)) => Some(typ.clone()),
        Some(_) => return Err(TokenError::Malformed),
    };
    Ok(JoseHeader { alg, kid, typ })
}

/// A compact JWS whose header was read and size checked, waiting for the keys its header names
/// (`kid`, `alg`). ID tokens and logout tokens are both read through it.
#[derive(Debug)]
pub struct UnverifiedJws<'a> {
    raw: &'a str,
    header: JoseHeader,
}

impl<'a> UnverifiedJws<'a> {
    /// Reads `raw`'s header; refuses a token over `max_bytes`.
    pub fn parse(raw: &'a str, max_bytes: usize) -> Result<Self, TokenError> {
        if raw.len() > max_bytes {
            return Err(TokenError::TooLarge);
        }
        let header = parse_header(raw)?;
        Ok(Self { raw, header })
    }

    /// The header: which key (`kid`) and algorithm the signature needs.
    pub fn header(&self) -> &JoseHeader {
        &self.header
    }

    /// The claims, once the signature verifies against `keys` and `iss`, `exp` and `nbf` hold
    /// ([`verify_signature`]).
    pub fn claims(
        &self,
        keys: &[VerifyKey],
        issuer: &str,
        skew: Duration,
        required: &[&str],
    ) -> Result<Map<String, Value>, TokenError> {
        verify_signature(self.raw, &self.header, keys, issuer, skew, required)
    }
}

/// An ID token whose header was read and size checked, waiting for its provider's keys
/// ([`UnverifiedIdToken::header`] says which: `kid` and `alg`).
#[derive(Debug)]
pub struct UnverifiedIdToken<'a>(UnverifiedJws<'a>);

impl<'a> UnverifiedIdToken<'a> {
    /// Reads `raw`'s header; refuses a token over [`MAX_ID_TOKEN_BYTES`].
    pub fn parse(raw: &'a str) -> Result<Self, TokenError> {
        UnverifiedJws::parse(raw, MAX_ID_TOKEN_BYTES).map(Self)
    }

    /// The header: which key (`kid`) and algorithm the signature needs.
    pub fn header(&self) -> &JoseHeader {
        self.0.header()
    }

    /// Verifies the token against `keys` (the provider's keys matching the header) and
    /// `expected`, at `now` (Unix seconds).
    pub fn verify(
        &self,
        keys: &[VerifyKey],
        expected: &Expected<'_>,
        now: i64,
    ) -> Result<VerifiedIdToken, TokenError> {
        let claims = self
            .0
            .claims(keys, expected.issuer, expected.skew, &["exp", "iss"])?;
        check_claims(claims, expected, now)
    }
}

/// Checks the signature of `raw` (whose header is `header`) against `keys`, and `iss`, `exp`
/// and `nbf` (when present) with `skew`; the claims in `required` must be present. Returns the
/// claims.
pub fn verify_signature(
    raw: &str,
    header: &JoseHeader,
    keys: &[VerifyKey],
    issuer: &str,
    skew: Duration,
    required: &[&str],
) -> Result<Map<String, Value>, TokenError> {
    if keys.is_empty() {
        return Err(TokenError::UnknownKey);
    }

    let mut validation = Validation::new(header.alg);
    validation.leeway = skew.as_secs();
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(required);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    // Audience rules are stricter than the library's "any of": checked by the caller.
    validation.validate_aud = false;

    for key in keys {
        if key.alg != header.alg {
            continue;
        }
        match jsonwebtoken::decode::<Map<String, Value>>(raw, &key.key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
            Err(e) => return Err(map_jwt_error(e.kind())),
        }
    }
    Err(TokenError::BadSignature)
}

fn map_jwt_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(c) if c == "exp" => TokenError::MissingClaim("exp"),
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::MissingClaim("iss"),
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            TokenError::UnsupportedAlgorithm
        }
        _ => TokenError::Malformed,
    }
}

/// Claim checks after the signature, `iss`, `exp` and `nbf` passed. `now` in Unix seconds.
fn check_claims(
    claims: Map<String, Value>,
    expected: &Expected<'_>,
    now: i64,
) -> Result<VerifiedIdToken, TokenError> {
    let skew = i64::try_from(expected.skew.as_secs()).unwrap_or(i64::MAX);

    let iat = claims
        .get("iat")
        .ok_or(TokenError::MissingClaim("iat"))?
        .as_f64()
        .ok_or(TokenError::Malformed)?;
    if iat > (now.saturating_add(skew)) as f64 {
        return Err(TokenError::IssuedInFuture);
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        None => return Err(TokenError::MissingClaim("aud")),
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or(TokenError::Malformed))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(TokenError::Malformed),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(TokenError::WrongAudience);
    }
    let azp = match claims.get("azp") {
        None => None,
        Some(Value::String(azp)) => Some(azp.as_str()),
        Some(_) => return Err(TokenError::Malformed),
    };
    if azp.is_some_and(|azp| azp != expected.client_id) {
        return Err(TokenError::WrongAudience);
    }
    if audiences.iter().any(|a| *a != expected.client_id) && azp.is_none() {
        return Err(TokenError::UntrustedAudience);
    }

    match (claims.get("nonce"), expected.nonce) {
        (None, Nonce::Sent(_)) => return Err(TokenError::MissingClaim("nonce")),
        (None, Nonce::Repeated(_)) => {}
        (Some(Value::String(nonce)), Nonce::Sent(sent) | Nonce::Repeated(sent)) => {
            if !constant_time_eq(nonce.as_bytes(), sent.as_bytes()) {
                return Err(TokenError::NonceMismatch);
            }
        }
        (Some(_), _) => return Err(TokenError::NonceMismatch),
    }

    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() && sub.len() <= 1024 => sub.clone(),
        Some(Value::String(_)) | None => return Err(TokenError::MissingClaim("sub")),
        Some(_) => return Err(TokenError::Malformed),
    };

    Ok(VerifiedIdToken { subject, claims })
}

/// Compares secrets without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            client_id: "me",
            nonce: Nonce::Sent("n-123"),
            skew: Duration::from_secs(60),
        }
    }

    fn base() -> Map<String, Value> {
        match json!({"iss": "https://idp.example", "aud": "me", "sub": "u1", "nonce": "n-123",
                     "iat": NOW, "exp": NOW + 300})
        {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn with(f: impl FnOnce(&mut Map<String, Value>)) -> Result<VerifiedIdToken, TokenError> {
        let mut c = base();
        f(&mut c);
        check_claims(c, &expected(), NOW)
    }

    #[test]
    fn a_refreshed_id_token_may_leave_the_nonce_out_but_never_change_it() {
        let refreshed = Expected {
            nonce: Nonce::Repeated("n-123"),
            ..expected()
        };
        let check = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut c = base();
            f(&mut c);
            check_claims(c, &refreshed, NOW).map(|t| t.subject)
        };
        assert_eq!(check(&|_| {}), Ok("u1".to_owned()));
        assert_eq!(
            check(&|c| {
                c.remove("nonce");
            }),
            Ok("u1".to_owned())
        );
        assert_eq!(
            check(&|c| {
                c.insert("nonce".into(), json!("n-124"));
            }),
            Err(TokenError::NonceMismatch)
        );
        assert_eq!(
            check(&|c| {
                c.insert("nonce".into(), json!(null));
            }),
            Err(TokenError::NonceMismatch)
        );
    }

    #[test]
    fn claim_checks_table() {
        assert_eq!(with(|_| {}).map(|t| t.subject), Ok("u1".to_owned()));
        assert!(
            with(|c| {
                c.insert("aud".into(), json!(["me"]));
            })
            .is_ok()
        );
        assert!(
            with(|c| {
                c.insert("aud".into(), json!(["me", "api"]));
                c.insert("azp".into(), json!("me"));
            })
            .is_ok()
        );
        assert!(
            with(|c| {
                c.insert("iat".into(), json!(NOW + 59));
            })
            .is_ok()
        );
        assert!(
            with(|c| {
                c.insert("iat".into(), json!(NOW as f64 + 0.5));
            })
            .is_ok()
        );

        type Mutation = Box<dyn FnOnce(&mut Map<String, Value>)>;
        let cases: Vec<(Mutation, TokenError)> = vec![
            (
                Box::new(|c| {
                    c.insert("aud".into(), json!("other"));
                }),
                TokenError::WrongAudience,
            ),
            (
                Box::new(|c| {
                    c.insert("aud".into(), json!(["other", "api"]));
                }),
                TokenError::WrongAudience,
            ),
            (
                Box::new(|c| {
                    c.insert("aud".into(), json!(["me", "api"]));
                }),
                TokenError::UntrustedAudience,
            ),
            (
                Box::new(|c| {
                    c.insert("aud".into(), json!(["me", "api"]));
                    c.insert("azp".into(), json!("api"));
                }),
                TokenError::WrongAudience,
            ),
            (
                Box::new(|c| {
                    c.insert("azp".into(), json!("someone-else"));
                }),
                TokenError::WrongAudience,
            ),
            (
                Box::new(|c| {
                    c.insert("aud".into(), json!(7));
                }),
                TokenError::Malformed,
            ),
            (
                Box::new(|c| {
                    c.remove("aud");
                }),
                TokenError::MissingClaim("aud"),
            ),
            (
                Box::new(|c| {
                    c.insert("iat".into(), json!(NOW + 61));
                }),
                TokenError::IssuedInFuture,
            ),
            (
                Box::new(|c| {
                    c.remove("iat");
                }),
                TokenError::MissingClaim("iat"),
            ),
            (
                Box::new(|c| {
                    c.insert("iat".into(), json!("now"));
                }),
                TokenError::Malformed,
            ),
            (
                Box::new(|c| {
                    c.insert("nonce".into(), json!("n-124"));
                }),
                TokenError::NonceMismatch,
            ),
            (
                Box::new(|c| {
                    c.insert("nonce".into(), json!(["n-123"]));
                }),
                TokenError::NonceMismatch,
            ),
            (
                Box::new(|c| {
                    c.remove("nonce");
                }),
                TokenError::MissingClaim("nonce"),
            ),
            (
                Box::new(|c| {
                    c.remove("sub");
                }),
                TokenError::MissingClaim("sub"),
            ),
            (
                Box::new(|c| {
                    c.insert("sub".into(), json!(""));
                }),
                TokenError::MissingClaim("sub"),
            ),
            (
                Box::new(|c| {
                    c.insert("sub".into(), json!(42));
                }),
                TokenError::Malformed,
            ),
        ];
        for (i, (mutate, error)) in cases.into_iter().enumerate() {
            assert_eq!(
                with(mutate).err(),
                Some(error.clone()),
                "case {i}: {error:?}"
            );
        }
    }

    #[test]
    fn header_allowlist() {
        let token = |h: Value| format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(h.to_string()));
        for alg in ["none", "HS256", "HS512", "RS512", "PS256", "ES384", "NONE"] {
            assert!(
                matches!(
                    parse_header(&token(json!({"alg": alg}))),
                    Err(TokenError::UnsupportedAlgorithm)
                ),
                "{alg}"
            );
        }
        assert!(matches!(
            parse_header(&token(json!({}))),
            Err(TokenError::UnsupportedAlgorithm)
        ));
        assert!(matches!(
            parse_header(&token(json!({"alg": "RS256", "crit": ["exp"]}))),
            Err(TokenError::CriticalHeader)
        ));
        assert!(matches!(
            parse_header(&token(json!({"alg": "RS256", "kid": 5}))),
            Err(TokenError::Malformed)
        ));
        assert!(matches!(parse_header("a.b"), Err(TokenError::Malformed)));
        assert!(matches!(
            parse_header("a.b.c.d"),
            Err(TokenError::Malformed)
        ));
        assert!(matches!(parse_header("!!.b.c"), Err(TokenError::Malformed)));
        let ok = parse_header(&token(json!({"alg": "ES256", "kid": "k"}))).expect("valid header");
        assert_eq!(ok.alg, Algorithm::ES256);
        assert_eq!(ok.kid.as_deref(), Some("k"));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
