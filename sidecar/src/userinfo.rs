//! Profile claims from the provider's UserInfo endpoint.
//!
//! Several providers put only scope claims in the UserInfo answer and leave them out of the ID
//! token. When the ID token lacks a profile claim the identity headers or the attribute mappings
//! use (`email`, `name`, `preferred_username`, the mapped claims), the sidecar
//! asks the UserInfo endpoint with the access token of the same sign-in and fills in only those
//! claims. An answer whose `sub` differs from the ID token's is ignored (OIDC Core 5.3.2). The
//! role never comes from here: it is mapped from the verified ID token before this runs, and a
//! role claim found only in UserInfo still means denied.

use std::time::Duration;

use serde_json::{Map, Value};

/// Profile claims the identity headers use.
pub const PROFILE_CLAIMS: [&str; 3] = ["email", "name", "preferred_username"];
/// Largest UserInfo answer read.
pub const MAX_USERINFO_BYTES: usize = 64 * 1024;
/// Longest the sign-in waits for the UserInfo answer.
pub const USERINFO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the UserInfo answer was not used. Logged; the sign-in goes on with the ID token's claims.
#[derive(Debug, thiserror::Error)]
pub enum UserInfoError {
    /// The request failed.
    #[error("UserInfo request failed")]
    Request(#[source] reqwest::Error),
    /// No answer in time.
    #[error("UserInfo did not answer within {0:?}")]
    TimedOut(Duration),
    /// Not 200.
    #[error("UserInfo answered {0}")]
    Status(u16),
    /// Larger than [`MAX_USERINFO_BYTES`].
    #[error("UserInfo answer too large")]
    TooLarge,
    /// Not a JSON object (a signed or encrypted answer is not used).
    #[error("UserInfo answer is not a JSON object")]
    NotJson,
    /// `sub` differs from the ID token's, or is missing.
    #[error("UserInfo answer is about another subject")]
    OtherSubject,
}

/// The claims of `wanted` that `claims` (the verified ID token) lacks.
pub fn missing<'a>(
    claims: &Map<String, Value>,
    wanted: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut out: Vec<&str> = wanted
        .into_iter()
        .filter(|name| matches!(claims.get(*name), None | Some(Value::Null)))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The profile claim names a sign-in needs: [`PROFILE_CLAIMS`] and the first segment of each
/// attribute mapping's claim (a dotted path reads inside it).
pub fn wanted_claims(attribute_mappings: &[(String, String)]) -> Vec<&str> {
    PROFILE_CLAIMS
        .iter()
        .copied()
        .chain(
            attribute_mappings
                .iter()
                .map(|(claim, _)| claim.split('.').next().unwrap_or(claim)),
        )
        .collect()
}

/// `claims` with the `missing` ones filled in from a UserInfo answer about `subject`.
pub fn fill(
    claims: &Map<String, Value>,
    userinfo: &Map<String, Value>,
    subject: &str,
    missing: &[&str],
) -> Result<Map<String, Value>, UserInfoError> {
    if userinfo.get("sub").and_then(Value::as_str) != Some(subject) {
        return Err(UserInfoError::OtherSubject);
    }
    let mut out = claims.clone();
    for name in missing {
        if let Some(value) = userinfo.get(*name).filter(|v| !v.is_null()) {
            out.insert((*name).to_owned(), value.clone());
            if *name == "email" {
                // Whether an address is verified belongs with the address.
                match userinfo.get("email_verified") {
                    Some(verified) => out.insert("email_verified".to_owned(), verified.clone()),
                    None => out.remove("email_verified"),
                };
            }
        }
    }
    Ok(out)
}

/// GETs the UserInfo answer with `access_token`.
pub async fn fetch(
    http: &reqwest::Client,
    endpoint: &url::Url,
    access_token: &str,
) -> Result<Map<String, Value>, UserInfoError> {
    let request = async {
        let mut response = http
            .get(endpoint.clone())
            .bearer_auth(access_token)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(UserInfoError::Request)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(UserInfoError::Status(response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(UserInfoError::Request)? {
            if body.len() + chunk.len() > MAX_USERINFO_BYTES {
                return Err(UserInfoError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice::<Map<String, Value>>(&body).map_err(|_| UserInfoError::NotJson)
    };
    tokio::time::timeout(USERINFO_TIMEOUT, request)
        .await
        .map_err(|_| UserInfoError::TimedOut(USERINFO_TIMEOUT))?
}

/// The ID token's claims completed from UserInfo, when it lacks a claim of
/// [`wanted_claims`] and the provider offers UserInfo and sent an access token; `None` when
/// nothing was asked or the answer was not used (the reason is logged).
pub async fn complete(
    http: &reqwest::Client,
    endpoint: Option<&url::Url>,
    access_token: Option<&str>,
    claims: &Map<String, Value>,
    subject: &str,
    attribute_mappings: &[(String, String)],
    provider: &str,
) -> Option<Map<String, Value>> {
    let gaps = missing(claims, wanted_claims(attribute_mappings));
    if gaps.is_empty() {
        return None;
    }
    let (endpoint, access_token) = (endpoint?, access_token?);
    let answer = fetch(http, endpoint, access_token)
        .await
        .and_then(|userinfo| fill(claims, &userinfo, subject, &gaps));
    match answer {
        Ok(filled) => Some(filled),
        Err(e) => {
            tracing::warn!(provider, error = %e, "UserInfo not used; signing in with the ID token's claims");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn only_missing_profile_claims_are_filled_and_never_the_role() {
        let id_token = map(json!({"sub": "u1", "userType": "member", "name": "From ID token"}));
        let userinfo = map(
            json!({"sub": "u1", "email": "ada@example.com", "name": "From UserInfo",
                                  "email_verified": false, "userType": "admin",
                                  "department": "R&D"}),
        );
        let mappings = [("department".to_owned(), "department".to_owned())];
        let wanted = wanted_claims(&mappings);
        let gaps = missing(&id_token, wanted);
        assert_eq!(gaps, ["department", "email", "preferred_username"]);
        let filled = fill(&id_token, &userinfo, "u1", &gaps).expect("same subject");
        assert_eq!(filled["email"], "ada@example.com");
        assert_eq!(
            filled["email_verified"], false,
            "verification comes with the address"
        );
        assert_eq!(filled["department"], "R&D");
        assert_eq!(filled["name"], "From ID token", "the ID token's claims win");
        assert_eq!(
            filled["userType"], "member",
            "the role claim is never taken from UserInfo"
        );
    }

    #[test]
    fn an_answer_about_another_subject_is_ignored() {
        let id_token = map(json!({"sub": "u1"}));
        for other in [
            json!({"sub": "u2", "email": "x@y"}),
            json!({"email": "x@y"}),
        ] {
            assert!(matches!(
                fill(&id_token, &map(other), "u1", &["email"]),
                Err(UserInfoError::OtherSubject)
            ));
        }
    }

    #[test]
    fn dotted_mappings_want_their_top_level_claim() {
        let mappings = [("address.country".to_owned(), "country".to_owned())];
        let wanted = wanted_claims(&mappings);
        assert!(wanted.contains(&"address"));
    }
}
