//! The SCIM 2.0 endpoint's service (`provisioning.mode: scim`): who may call it, which store it
//! reads and writes, and how much of the Kubernetes API it may take at once.
//!
//! The identity provider authenticates with a bearer token from the SsoConfig's token Secret
//! (`SCIM_TOKEN`, and `SCIM_PREVIOUS_TOKEN` while a rotation is under way), compared in constant
//! time. The store is the config's own SsoUsers ([`gatehouse_directory::scim`]): the token of
//! one SsoConfig reaches that config's users only.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_auth::scim::ScimError;
use gatehouse_directory::UserDirectory;
use gatehouse_directory::scim::{ScimDirectory, ScimStoreError};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use crate::config::ScimConfig;
use crate::providers::Providers;

/// How many SCIM requests one replica serves at once; more wait up to [`QUEUE_WAIT`].
pub const CONCURRENT_REQUESTS: usize = 8;

/// How long a request waits for one of the [`CONCURRENT_REQUESTS`] before it is answered 429
/// with `Retry-After` (an IdP's import floods the endpoint; it retries).
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Seconds an IdP is told to wait before retrying a request the API server or the queue could
/// not take (`Retry-After`).
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// The SCIM endpoint of one SsoConfig.
pub struct ScimService {
    /// SHA-256 of each accepted token: current, then previous (replaced when the token files
    /// change, see [`ScimService::set_tokens`]).
    tokens: std::sync::RwLock<Vec<[u8; 32]>>,
    /// The provider pushed users belong to.
    provider: String,
    /// The SsoConfig (audit lines name it as the caller).
    config_name: String,
    /// `<publicUrl>/api/auth/scim/v2`.
    base: String,
    directory: Arc<UserDirectory>,
    providers: Arc<Providers>,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for ScimService {
    /// Without the tokens' digests: a digest lets whoever reads the log test guesses offline.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimService")
            .field("provider", &self.provider)
            .field("config_name", &self.config_name)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why a caller was refused before its request was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A bearer token that is none of the config's.
    Wrong,
    /// A JWT, as Microsoft Entra ID sends when the provisioning's Secret Token is left blank.
    EntraDefaultToken,
}

impl Refusal {
    /// Stable reason code (audit lines).
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "token_missing",
            Refusal::Wrong => "token_wrong",
            Refusal::EntraDefaultToken => "token_entra_default",
        }
    }

    /// The SCIM error the caller gets.
    pub fn error(self) -> ScimError {
        ScimError::unauthorized(match self {
            Refusal::Missing => {
                "this SCIM endpoint needs `Authorization: Bearer <token>`, the `token` key of the \
                 SsoConfig's provisioning.scim.tokenSecretRef Secret"
            }
            Refusal::Wrong => {
                "the bearer token is not this application's SCIM token (the `token` or \
                 `previousToken` key of the SsoConfig's provisioning.scim.tokenSecretRef Secret)"
            }
            Refusal::EntraDefaultToken => {
                "this is the token Microsoft Entra ID sends when the provisioning's Secret Token \
                 is left blank: set Secret Token (Admin Credentials) to the `token` key of the \
                 SsoConfig's provisioning.scim.tokenSecretRef Secret"
            }
        })
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn digests(tokens: &[String]) -> Vec<[u8; 32]> {
    tokens.iter().map(|t| digest(t.as_bytes())).collect()
}

/// Whether `token` has the shape of a JWT (three base64url parts, the first a JSON header
/// naming an `alg`), as Entra ID's own test token does.
fn looks_like_jwt(token: &str) -> bool {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|h| h.get("alg").is_some())
}

impl ScimService {
    /// The endpoint `config` describes, serving `public_url`'s users of SsoConfig `config_name`.
    pub fn new(
        config: &ScimConfig,
        config_name: &str,
        public_url: &url::Url,
        directory: Arc<UserDirectory>,
        providers: Arc<Providers>,
    ) -> Self {
        let base = format!(
            "{}{}",
            public_url.as_str().trim_end_matches('/'),
            gatehouse_crds::consts::SCIM_PATH
        );
        ScimService {
            tokens: std::sync::RwLock::new(digests(&config.tokens)),
            provider: config.provider.clone(),
            config_name: config_name.to_owned(),
            base,
            directory,
            providers,
            slots: Arc::new(Semaphore::new(CONCURRENT_REQUESTS)),
        }
    }

    /// Accepts `tokens` (current first) from now on; whether they differ from those in use.
    pub fn set_tokens(&self, tokens: &[String]) -> bool {
        let new = digests(tokens);
        let mut current = self
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current == new {
            return false;
        }
        *current = new;
        true
    }

    /// The service root URL (`<publicUrl>/api/auth/scim/v2`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The SsoConfig whose token the caller holds.
    pub fn config_name(&self) -> &str {
        &self.config_name
    }

    /// Checks the `Authorization` header: a bearer token equal to one of the config's. Every
    /// token is compared (their digests, in constant time), so the time taken tells nothing.
    pub fn authorize(&self, authorization: Option<&http::HeaderValue>) -> Result<(), Refusal> {
        let header = authorization
            .and_then(|v| v.to_str().ok())
            .ok_or(Refusal::Missing)?;
        let (scheme, token) = header.split_once(' ').ok_or(Refusal::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Refusal::Missing);
        }
        let token = token.trim();
        let offered = digest(token.as_bytes());
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let matched = tokens
            .iter()
            .fold(subtle::Choice::from(0), |any, t| any | t.ct_eq(&offered));
        if bool::from(matched) {
            Ok(())
        } else if looks_like_jwt(token) {
            Err(Refusal::EntraDefaultToken)
        } else {
            Err(Refusal::Wrong)
        }
    }

    /// Waits (at most [`QUEUE_WAIT`]) for one of the replica's SCIM request slots; `None` when
    /// none came free.
    pub async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        tokio::time::timeout(QUEUE_WAIT, self.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// The store, once the provider's issuer is known (SAML: its metadata is loaded).
    pub fn store(&self) -> Result<ScimDirectory, ScimError> {
        let issuer = match self.providers.get(&self.provider) {
            Some(oidc) => oidc.config.issuer.clone(),
            None => self
                .providers
                .saml()
                .filter(|s| s.id() == self.provider)
                .and_then(|s| s.metadata())
                .map(|m| m.entity_id.clone())
                .ok_or_else(|| {
                    ScimError::unavailable(
                        "the identity provider's metadata is not loaded yet; retry shortly",
                    )
                })?,
        };
        self.directory.scim(&self.provider, &issuer).ok_or_else(|| {
            ScimError::not_found(
                "SCIM needs the Kubernetes user directory (GATEHOUSE_PROVISIONING=kubernetes)",
            )
        })
    }
}

/// The SCIM error a store failure is answered with, and whether it asks to retry.
pub fn store_error(err: &ScimStoreError) -> ScimError {
    match err {
        ScimStoreError::NotFound { id } => {
            ScimError::not_found(format!("no user {id} in this application"))
        }
        // 409, as for a uniqueness conflict: the write conflicts with who owns the user.
        ScimStoreError::ReadOnly { .. } => ScimError::new(
            409,
            Some(gatehouse_auth::scim::ScimType::Mutability),
            err.to_string(),
        ),
        ScimStoreError::Taken { .. } => ScimError::uniqueness(err.to_string()),
        ScimStoreError::Invalid(message) => {
            ScimError::invalid_value(format!("the Kubernetes API refused the user: {message}"))
        }
        ScimStoreError::Unavailable(_)
        | ScimStoreError::TimedOut(_)
        | ScimStoreError::Contended { .. } => ScimError::unavailable(format!(
            "the user store is unavailable ({err}); retry after {RETRY_AFTER_SECONDS} s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(tokens: &[&str]) -> ScimService {
        ScimService {
            tokens: std::sync::RwLock::new(tokens.iter().map(|t| digest(t.as_bytes())).collect()),
            provider: "okta".into(),
            config_name: "portal".into(),
            base: "https://portal.example/api/auth/scim/v2".into(),
            directory: Arc::new(UserDirectory::Off),
            providers: Arc::new(Providers::default()),
            slots: Arc::new(Semaphore::new(1)),
        }
    }

    fn bearer(token: &str) -> http::HeaderValue {
        http::HeaderValue::from_str(&format!("Bearer {token}")).expect("header")
    }

    #[test]
    fn the_current_and_the_previous_token_are_accepted_and_nothing_else() {
        let s = service(&["current-token-0123456789", "previous-token-0123456789"]);
        assert_eq!(
            s.authorize(Some(&bearer("current-token-0123456789"))),
            Ok(())
        );
        assert_eq!(
            s.authorize(Some(&bearer("previous-token-0123456789"))),
            Ok(())
        );
        assert_eq!(
            s.authorize(Some(&bearer("current-token-012345678"))),
            Err(Refusal::Wrong),
            "a prefix is not the token"
        );
        assert_eq!(s.authorize(None), Err(Refusal::Missing));
        let basic = http::HeaderValue::from_static("Basic Y3VycmVudC10b2tlbg==");
        assert_eq!(s.authorize(Some(&basic)), Err(Refusal::Missing));
        let lower = http::HeaderValue::from_static("bearer current-token-0123456789");
        assert_eq!(s.authorize(Some(&lower)), Ok(()), "the scheme has no case");
    }

    #[test]
    fn entras_blank_secret_token_jwt_is_refused_with_a_message_that_says_what_to_set() {
        let s = service(&["current-token-0123456789"]);
        // The shape Entra sends: a JWT it signed itself.
        let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiI4YWRmOGU2ZSJ9.c2lnbmF0dXJl";
        let refusal = s.authorize(Some(&bearer(jwt))).expect_err("refused");
        assert_eq!(refusal, Refusal::EntraDefaultToken);
        let error = refusal.error();
        assert_eq!(error.status, 401);
        assert!(error.detail.contains("Secret Token"), "{}", error.detail);
    }

    #[test]
    fn new_tokens_replace_the_old_ones_at_once() {
        let s = service(&["current-token-0123456789"]);
        assert!(s.set_tokens(&[
            "rotated-token-0123456789".into(),
            "current-token-0123456789".into()
        ]));
        assert_eq!(
            s.authorize(Some(&bearer("rotated-token-0123456789"))),
            Ok(())
        );
        assert_eq!(
            s.authorize(Some(&bearer("current-token-0123456789"))),
            Ok(())
        );
        assert!(s.set_tokens(&["rotated-token-0123456789".into()]));
        assert_eq!(
            s.authorize(Some(&bearer("current-token-0123456789"))),
            Err(Refusal::Wrong),
            "the previous token goes once its file is removed"
        );
        assert!(
            !s.set_tokens(&["rotated-token-0123456789".into()]),
            "no change"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_finds_no_free_slot_within_the_wait_is_turned_away() {
        let s = service(&["current-token-0123456789"]);
        let held = s.slot().await.expect("the one slot");
        assert!(s.slot().await.is_none(), "no slot freed within the wait");
        drop(held);
        assert!(s.slot().await.is_some(), "a freed slot is taken");
    }

    #[test]
    fn debug_output_holds_neither_the_tokens_nor_their_digests() {
        let s = service(&["current-token-0123456789"]);
        let shown = format!("{s:?}");
        assert!(!shown.contains("current-token"), "{shown}");
        assert!(!shown.contains("tokens"), "no digests either: {shown}");
        assert!(shown.contains("portal"), "{shown}");
    }

    #[test]
    fn a_refusal_never_repeats_the_token_offered() {
        let s = service(&["current-token-0123456789"]);
        for offered in ["guess-token-abcdef", "a.b.c"] {
            let refusal = s.authorize(Some(&bearer(offered))).expect_err("refused");
            assert!(!refusal.error().detail.contains(offered));
        }
    }
}
