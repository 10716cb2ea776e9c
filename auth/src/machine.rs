//! Machine clients' bearer tokens (`Authorization: Bearer <JWT>`): access tokens of configured
//! external issuers (client credentials) and Kubernetes ServiceAccount tokens. Pure: the caller
//! fetches the issuer's JWKS and passes its keys in.
//!
//! # Flow
//!
//! 1. [`UnverifiedBearer::parse`] reads the header before anything else: size, then a header that
//!    carries a key or a key's location (`jwk`, `jku`, `x5u`, `x5c`) or `crit` is refused, then an
//!    algorithm other than RS256, ES256 or EdDSA (`none` and HMAC included). Nothing in a header
//!    can make the caller fetch anything.
//! 2. [`MachineAuth::issuer_of`] picks the configured issuer by the token's (still unverified)
//!    `iss`, exactly: the caller fetches that issuer's JWKS.
//! 3. [`MachineAuth::verify`] checks the algorithm against the issuer's allow-list and the key's
//!    type (`kty`/`crv`), finds the key by `kid` ([`BearerError::UnknownKey`] when there is none:
//!    the caller refetches the JWKS once, rate-limited, and retries), verifies the signature with
//!    the verifier ID tokens use ([`crate::token::verify_signature`]), then `iss` (exact), `exp`
//!    (required) and `nbf` with the clock skew, `aud` (one of the issuer's audiences; a string or
//!    an array), and the issuer's own rules:
//!    - external issuers: a non-empty `sub`; the role from `roleClaim` through `roleMap`;
//!    - Kubernetes: `aud` never holds the API server's own audience (the issuer, or a well-known
//!      one: [`API_SERVER_AUDIENCES`]); the `kubernetes.io` claim names the namespace and
//!      ServiceAccount, and `sub` is `system:serviceaccount:<namespace>:<name>`; the role from
//!      `serviceAccounts`.
//!
//! A valid token whose claims map to no role is still a principal, with `role: None` (the caller
//! answers 403). There is no default role.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::access::{PrincipalType, Who};
use crate::claims::{Role, RoleRule, lookup};
use crate::jwk::KeySet;
use crate::token::{JoseHeader, TokenError, UnverifiedJws, header_members};

/// Largest bearer token accepted.
pub const MAX_BEARER_BYTES: usize = 16 * 1024;
/// Tolerated clock skew unless configured otherwise.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(60);
/// The algorithms an issuer accepts unless it lists its own (EdDSA only when listed).
pub const DEFAULT_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// Every algorithm an issuer may list.
pub const SUPPORTED_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
/// The issuer name of Kubernetes ServiceAccount tokens (`Who::client`, `Who::provider`); no
/// external issuer may take it.
pub const KUBERNETES_ISSUER_NAME: &str = "kubernetes";
/// Audiences the API server accepts on common distributions (kubeadm, EKS), besides its issuer:
/// a ServiceAccount token for any of them is a credential to the API server, refused always.
pub const API_SERVER_AUDIENCES: [&str; 2] = [
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
];
/// Header members that carry a key or where to fetch one: refused, never followed.
pub const KEY_HEADER_MEMBERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];
/// Longest `sub` accepted.
const MAX_SUBJECT_BYTES: usize = 1024;

/// An external issuer of machine tokens (`machineAuth.issuers[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineIssuer {
    /// Name (a DNS label): `Who::client`, and the prefix of the principal's id.
    pub name: String,
    /// `iss`, compared byte for byte.
    pub issuer: String,
    /// Accepted audiences: the token's `aud` must hold one of them.
    pub audiences: Vec<String>,
    /// Accepted signing algorithms ([`DEFAULT_ALGORITHMS`] unless configured).
    pub algorithms: Vec<Algorithm>,
    /// Claim name or dotted path holding the role values; `None`: no role.
    pub role_claim: Option<String>,
    /// Rules tried in order; the first whose value the claim holds gives the role.
    pub role_map: Vec<RoleRule>,
}

impl MachineIssuer {
    /// An issuer with the default algorithms and no role mapping.
    pub fn new(name: &str, issuer: &str, audiences: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            role_claim: None,
            role_map: Vec::new(),
        }
    }
}

/// The cluster's ServiceAccount token issuer (`machineAuth.kubernetes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesIssuer {
    /// The API server's `--service-account-issuer`, compared byte for byte.
    pub issuer: String,
    /// Accepted audiences (of projected tokens); never the API server's own.
    pub audiences: Vec<String>,
    /// `namespace/name` → role; the first entry naming the ServiceAccount decides.
    pub service_accounts: Vec<(String, Role)>,
}

/// The configured issuer a token names.
#[derive(Debug, Clone, Copy)]
pub enum Issuer<'a> {
    /// An external issuer.
    External(&'a MachineIssuer),
    /// The cluster's ServiceAccount issuer.
    Kubernetes(&'a KubernetesIssuer),
}

impl<'a> Issuer<'a> {
    /// `iss`: whose JWKS the caller passes to [`MachineAuth::verify`].
    pub fn issuer(&self) -> &'a str {
        match self {
            Issuer::External(m) => &m.issuer,
            Issuer::Kubernetes(k) => &k.issuer,
        }
    }

    /// The issuer's name ([`KUBERNETES_ISSUER_NAME`] for ServiceAccount tokens).
    pub fn name(&self) -> &'a str {
        match self {
            Issuer::External(m) => &m.name,
            Issuer::Kubernetes(_) => KUBERNETES_ISSUER_NAME,
        }
    }

    fn algorithms(&self) -> &'a [Algorithm] {
        match self {
            Issuer::External(m) => &m.algorithms,
            Issuer::Kubernetes(_) => &DEFAULT_ALGORITHMS,
        }
    }
}

/// Why a machine-auth configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MachineConfigError {
    /// A name that is not a DNS label.
    #[error("machine issuer name `{0}` is not a lower-case DNS label of 1 to 63 characters")]
    BadName(String),
    /// Two issuers of one name, or one named `kubernetes`.
    #[error(
        "machine issuer name `{0}` is used twice or is `kubernetes` (reserved for ServiceAccount tokens)"
    )]
    DuplicateName(String),
    /// An empty `iss`.
    #[error("machine issuer `{0}` has an empty issuer")]
    EmptyIssuer(String),
    /// Two issuers of one `iss`.
    #[error("issuer `{0}` is configured twice")]
    DuplicateIssuer(String),
    /// No audience, or an empty one.
    #[error("issuer `{0}` needs at least one non-empty audience")]
    NoAudience(String),
    /// No algorithm, or one other than RS256, ES256 and EdDSA.
    #[error("issuer `{0}` needs algorithms among RS256, ES256 and EdDSA")]
    BadAlgorithms(String),
    /// A Kubernetes audience the API server accepts.
    #[error(
        "Kubernetes audience `{0}` is the API server's own: a token for it is a credential to the API server"
    )]
    ApiServerAudience(String),
    /// A ServiceAccount that is not `namespace/name`.
    #[error("service account `{0}` is not `namespace/name`")]
    BadServiceAccount(String),
}

/// Machine-auth configuration, checked once.
#[derive(Debug, Clone)]
pub struct MachineAuth {
    issuers: Vec<MachineIssuer>,
    kubernetes: Option<KubernetesIssuer>,
    skew: Duration,
}

impl MachineAuth {
    /// Checks the configuration: names are unique DNS labels (not `kubernetes`), issuers unique
    /// and non-empty, each with an audience and algorithms among RS256, ES256 and EdDSA; the
    /// Kubernetes audiences exclude the API server's own; ServiceAccounts are `namespace/name`.
    pub fn new(
        issuers: Vec<MachineIssuer>,
        kubernetes: Option<KubernetesIssuer>,
        skew: Duration,
    ) -> Result<Self, MachineConfigError> {
        let mut names: Vec<&str> = vec![KUBERNETES_ISSUER_NAME];
        let mut urls: Vec<&str> = kubernetes.iter().map(|k| k.issuer.as_str()).collect();
        for m in &issuers {
            if !is_dns_label(&m.name) {
                return Err(MachineConfigError::BadName(m.name.clone()));
            }
            if names.contains(&m.name.as_str()) {
                return Err(MachineConfigError::DuplicateName(m.name.clone()));
            }
            names.push(&m.name);
            if m.issuer.is_empty() {
                return Err(MachineConfigError::EmptyIssuer(m.name.clone()));
            }
            if urls.contains(&m.issuer.as_str()) {
                return Err(MachineConfigError::DuplicateIssuer(m.issuer.clone()));
            }
            urls.push(&m.issuer);
            if m.audiences.is_empty() || m.audiences.iter().any(String::is_empty) {
                return Err(MachineConfigError::NoAudience(m.issuer.clone()));
            }
            if m.algorithms.is_empty()
                || m.algorithms
                    .iter()
                    .any(|a| !SUPPORTED_ALGORITHMS.contains(a))
            {
                return Err(MachineConfigError::BadAlgorithms(m.issuer.clone()));
            }
        }
        if let Some(k) = &kubernetes {
            if k.issuer.is_empty() {
                return Err(MachineConfigError::EmptyIssuer(
                    KUBERNETES_ISSUER_NAME.to_owned(),
                ));
            }
            if k.audiences.is_empty() || k.audiences.iter().any(String::is_empty) {
                return Err(MachineConfigError::NoAudience(k.issuer.clone()));
            }
            if let Some(a) = k
                .audiences
                .iter()
                .find(|a| is_api_server_audience(a, &k.issuer))
            {
                return Err(MachineConfigError::ApiServerAudience(a.clone()));
            }
            if let Some((sa, _)) = k
                .service_accounts
                .iter()
                .find(|(sa, _)| sa.split_once('/').is_none_or(|(ns, n)| !is_sa(ns, n)))
            {
                return Err(MachineConfigError::BadServiceAccount(sa.clone()));
            }
        }
        Ok(Self {
            issuers,
            kubernetes,
            skew,
        })
    }

    /// The configured issuer whose `iss` the token carries (exactly), whose JWKS the caller
    /// fetches; [`BearerError::IssuerMismatch`] when none is.
    pub fn issuer_of(&self, token: &UnverifiedBearer<'_>) -> Result<Issuer<'_>, BearerError> {
        let iss = token.claimed_issuer();
        if let Some(k) = self.kubernetes.as_ref().filter(|k| k.issuer == iss) {
            return Ok(Issuer::Kubernetes(k));
        }
        self.issuers
            .iter()
            .find(|m| m.issuer == iss)
            .map(Issuer::External)
            .ok_or(BearerError::IssuerMismatch)
    }

    /// Verifies `token` against `keys` (the JWKS of [`MachineAuth::issuer_of`]'s issuer) at
    /// `now` (Unix seconds).
    pub fn verify(
        &self,
        token: &UnverifiedBearer<'_>,
        keys: &KeySet,
        now: i64,
    ) -> Result<MachinePrincipal, BearerError> {
        let issuer = self.issuer_of(token)?;
        let header = token.header();
        if !issuer.algorithms().contains(&header.alg) {
            return Err(BearerError::AlgorithmRefused);
        }
        let kid = header.kid.as_deref();
        let candidates = keys.matching(kid, header.alg);
        if candidates.is_empty() {
            // A known key of another type (`kty`/`crv`) than `alg` needs: not a refetch.
            let other_type = kid.is_some()
                && SUPPORTED_ALGORITHMS
                    .iter()
                    .any(|a| *a != header.alg && !keys.matching(kid, *a).is_empty());
            return Err(if other_type {
                BearerError::AlgorithmRefused
            } else {
                BearerError::UnknownKey
            });
        }
        let claims = token
            .jws
            .claims(&candidates, issuer.issuer(), self.skew, &["exp", "iss"])?;
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.issuer()) {
            return Err(BearerError::IssuerMismatch);
        }
        let expires_at = check_times(&claims, self.skew, now)?;
        let audiences = audiences(&claims)?;
        match issuer {
            Issuer::External(m) => {
                if !audiences.iter().any(|a| m.audiences.iter().any(|c| c == a)) {
                    return Err(BearerError::AudienceMismatch);
                }
                let subject = subject(&claims)?;
                let role = m
                    .role_claim
                    .as_deref()
                    .and_then(|c| role_of(lookup(&claims, c), &m.role_map));
                Ok(MachinePrincipal {
                    id: format!("{}:{subject}", m.name),
                    issuer_name: m.name.clone(),
                    subject,
                    role,
                    service_account: None,
                    claims,
                    expires_at,
                })
            }
            Issuer::Kubernetes(k) => {
                if audiences
                    .iter()
                    .any(|a| is_api_server_audience(a, &k.issuer))
                {
                    return Err(BearerError::ApiServerAudience);
                }
                if !audiences.iter().any(|a| k.audiences.iter().any(|c| c == a)) {
                    return Err(BearerError::AudienceMismatch);
                }
                k.principal(claims, expires_at, None)
            }
        }
    }
}

/// A bearer token whose header was read and refused nothing yet, waiting for its issuer's keys.
#[derive(Debug)]
pub struct UnverifiedBearer<'a> {
    jws: UnverifiedJws<'a>,
    issuer: String,
    /// The payload, not yet verified.
    payload: Map<String, Value>,
}

impl<'a> UnverifiedBearer<'a> {
    /// Reads `raw` (the text after `Bearer `): size, a header without key-bearing members
    /// ([`KEY_HEADER_MEMBERS`]) or `crit`, an asymmetric algorithm, and an `iss` to route by.
    pub fn parse(raw: &'a str) -> Result<Self, BearerError> {
        if raw.len() > MAX_BEARER_BYTES {
            return Err(BearerError::TooLarge);
        }
        let members = header_members(raw)?;
        if KEY_HEADER_MEMBERS.iter().any(|m| members.contains_key(*m)) {
            return Err(BearerError::HeaderRefused);
        }
        let jws = UnverifiedJws::parse(raw, MAX_BEARER_BYTES)?;
        let payload = raw.split('.').nth(1).ok_or(BearerError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| BearerError::Malformed)?;
        let payload: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| BearerError::Malformed)?;
        let issuer = match payload.get("iss") {
            Some(Value::String(iss)) => iss.clone(),
            _ => return Err(BearerError::IssuerMismatch),
        };
        Ok(Self {
            jws,
            issuer,
            payload,
        })
    }

    /// The header: which key (`kid`) and algorithm the signature needs.
    pub fn header(&self) -> &JoseHeader {
        self.jws.header()
    }

    /// `iss` as the token claims it, not yet verified: only for choosing the issuer.
    pub fn claimed_issuer(&self) -> &str {
        &self.issuer
    }
}

/// What the API server's TokenReview answered for a token (`status`), sent with the configured
/// audiences.
#[derive(Debug, Clone, Copy)]
pub struct Review<'a> {
    /// `status.authenticated`.
    pub authenticated: bool,
    /// `status.user.username`.
    pub username: &'a str,
    /// `status.audiences`: those of the request the token is valid for.
    pub audiences: &'a [String],
}

impl KubernetesIssuer {
    /// The principal a token stands for, on the API server's `review` of it (TokenReview mode):
    /// the API server checked the signature, `exp` and that the ServiceAccount (and the pod a
    /// bound token names) still exists; this checks that it did so for one of the configured
    /// audiences and never the API server's own, that the user is a ServiceAccount consistent
    /// with the token's `kubernetes.io` claim, and the token's times (`exp` is required: it bounds
    /// how long a review is reused). `self.issuer` is not used: no discovery is made in this mode.
    pub fn reviewed(
        &self,
        token: &UnverifiedBearer<'_>,
        review: &Review<'_>,
        skew: Duration,
        now: i64,
    ) -> Result<MachinePrincipal, BearerError> {
        if !review.authenticated {
            return Err(BearerError::ReviewRefused);
        }
        if review
            .audiences
            .iter()
            .any(|a| is_api_server_audience(a, &token.issuer))
        {
            return Err(BearerError::ApiServerAudience);
        }
        // An API server that does not check audiences answers none: not a review of ours.
        if !review
            .audiences
            .iter()
            .any(|a| self.audiences.iter().any(|c| c == a))
        {
            return Err(BearerError::AudienceMismatch);
        }
        let expires_at = check_times(&token.payload, skew, now)?;
        self.principal(token.payload.clone(), expires_at, Some(review.username))
    }

    /// The principal of a ServiceAccount token whose `claims` were checked (signature or review,
    /// audiences, times): its `kubernetes.io` claim must name a ServiceAccount that its `sub`
    /// (and the reviewed `username`, when there is one) agree with; the role is the listed one.
    fn principal(
        &self,
        claims: Map<String, Value>,
        expires_at: i64,
        username: Option<&str>,
    ) -> Result<MachinePrincipal, BearerError> {
        let (namespace, name) = service_account(&claims).ok_or(BearerError::NotAServiceAccount)?;
        let subject = format!("system:serviceaccount:{namespace}:{name}");
        if claims.get("sub").and_then(Value::as_str) != Some(subject.as_str())
            || username.is_some_and(|u| u != subject)
        {
            return Err(BearerError::NotAServiceAccount);
        }
        let sa = format!("{namespace}/{name}");
        let role = self
            .service_accounts
            .iter()
            .find(|(listed, _)| *listed == sa)
            .map(|(_, role)| *role);
        Ok(MachinePrincipal {
            id: subject.clone(),
            issuer_name: KUBERNETES_ISSUER_NAME.to_owned(),
            subject,
            role,
            service_account: Some(sa),
            claims,
            expires_at,
        })
    }
}

/// A verified machine token.
#[derive(Debug, Clone, PartialEq)]
pub struct MachinePrincipal {
    /// `system:serviceaccount:<namespace>:<name>`, or `<issuer name>:<sub>` (`X-Forwarded-User`).
    pub id: String,
    /// The issuer's name ([`KUBERNETES_ISSUER_NAME`] for ServiceAccount tokens).
    pub issuer_name: String,
    /// `sub`.
    pub subject: String,
    /// The mapped role; `None` when nothing maps (the caller answers 403).
    pub role: Option<Role>,
    /// `namespace/name` of a ServiceAccount token.
    pub service_account: Option<String>,
    /// All claims of the verified token.
    pub claims: Map<String, Value>,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
}

impl MachinePrincipal {
    /// The principal as the access rules see it.
    pub fn who(&self) -> Who<'_> {
        Who {
            kind: PrincipalType::Machine,
            user: &self.id,
            role: self.role,
            groups: &[],
            email: None,
            provider: &self.issuer_name,
            service_account: self.service_account.as_deref(),
            client: Some(&self.issuer_name),
            claims: Some(&self.claims),
        }
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// Over [`MAX_BEARER_BYTES`].
    #[error("bearer token too large")]
    TooLarge,
    /// Not a compact JWS, bad base64 or JSON, or a claim of the wrong type.
    #[error("bearer token malformed")]
    Malformed,
    /// `alg` outside the issuer's list (`none`, HMAC, others), or not the key's type.
    #[error("bearer token algorithm refused")]
    AlgorithmRefused,
    /// The header carries `jwk`, `jku`, `x5u`, `x5c` or `crit`.
    #[error("bearer token header refused")]
    HeaderRefused,
    /// No key with this `kid` and algorithm: the caller may refetch the JWKS once and retry.
    #[error("bearer token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bearer token signature invalid")]
    SignatureInvalid,
    /// `iss` absent, or no configured issuer's.
    #[error("bearer token issuer mismatch")]
    IssuerMismatch,
    /// `aud` absent or holds none of the issuer's audiences.
    #[error("bearer token audience mismatch")]
    AudienceMismatch,
    /// `exp` passed (beyond the skew).
    #[error("bearer token expired")]
    Expired,
    /// `nbf` in the future (beyond the skew).
    #[error("bearer token not yet valid")]
    NotYetValid,
    /// No `exp`.
    #[error("bearer token has no expiry")]
    ExpiryMissing,
    /// No usable `sub`.
    #[error("bearer token has no subject")]
    SubjectMissing,
    /// A ServiceAccount token whose `aud` holds the API server's own audience.
    #[error("bearer token is for the API server")]
    ApiServerAudience,
    /// A token of the Kubernetes issuer without a consistent ServiceAccount.
    #[error("bearer token names no ServiceAccount")]
    NotAServiceAccount,
    /// The API server's TokenReview did not authenticate the token.
    #[error("bearer token refused by the API server's review")]
    ReviewRefused,
    /// The token could not be checked now: the API server's keys or its TokenReview API did not
    /// answer (the client may retry; 503).
    #[error("bearer token could not be checked now")]
    Unverifiable,
}

impl BearerError {
    /// Every error, for the docs' table of reasons. Keep it in step with
    /// [`BearerError::explanation`], whose match fails to compile on a new variant.
    pub const ALL: [BearerError; 16] = [
        BearerError::TooLarge,
        BearerError::Malformed,
        BearerError::AlgorithmRefused,
        BearerError::HeaderRefused,
        BearerError::UnknownKey,
        BearerError::SignatureInvalid,
        BearerError::IssuerMismatch,
        BearerError::AudienceMismatch,
        BearerError::Expired,
        BearerError::NotYetValid,
        BearerError::ExpiryMissing,
        BearerError::SubjectMissing,
        BearerError::ApiServerAudience,
        BearerError::NotAServiceAccount,
        BearerError::ReviewRefused,
        BearerError::Unverifiable,
    ];

    /// Stable, low-cardinality reason (metrics label, audit field).
    pub fn reason(self) -> &'static str {
        match self {
            BearerError::TooLarge => "bearer_too_large",
            BearerError::Malformed => "bearer_malformed",
            BearerError::AlgorithmRefused => "bearer_algorithm_refused",
            BearerError::HeaderRefused => "bearer_header_refused",
            BearerError::UnknownKey => "bearer_unknown_key",
            BearerError::SignatureInvalid => "bearer_signature_invalid",
            BearerError::IssuerMismatch => "bearer_issuer_mismatch",
            BearerError::AudienceMismatch => "bearer_audience_mismatch",
            BearerError::Expired => "bearer_expired",
            BearerError::NotYetValid => "bearer_not_yet_valid",
            BearerError::ExpiryMissing => "bearer_expiry_missing",
            BearerError::SubjectMissing => "bearer_subject_missing",
            BearerError::ApiServerAudience => "bearer_api_server_audience",
            BearerError::NotAServiceAccount => "bearer_not_a_service_account",
            BearerError::ReviewRefused => "bearer_review_refused",
            BearerError::Unverifiable => "bearer_unverifiable",
        }
    }

    /// What the reason tells an operator, and what to do: one line.
    pub fn explanation(self) -> &'static str {
        match self {
            BearerError::TooLarge => {
                "the bearer token is over 16 KiB: have the issuer put fewer claims in it"
            }
            BearerError::Malformed => {
                "the bearer token is not a compact JWS, or a claim has the wrong type: the client \
                 sends something other than a JWT access token (an opaque token, say)"
            }
            BearerError::AlgorithmRefused => {
                "the bearer token's `alg` is not in the issuer's `algorithms` (`none` and HMAC \
                 never are), or does not fit the type of the key its `kid` names: list the \
                 algorithm, or have the issuer sign with RS256 or ES256"
            }
            BearerError::HeaderRefused => {
                "the bearer token's header carries a key or where to fetch one (`jwk`, `jku`, \
                 `x5u`, `x5c`) or critical extensions (`crit`): keys come from the issuer's JWKS \
                 only; a forged token, or an issuer setting beyond plain JWTs"
            }
            BearerError::UnknownKey => {
                "no key of the issuer's JWKS matches the bearer token's `kid`, even after fetching \
                 the JWKS again: the token was signed by another issuer than its `iss` names"
            }
            BearerError::SignatureInvalid => {
                "the bearer token's signature does not verify with the issuer's key: a token \
                 altered or minted elsewhere"
            }
            BearerError::IssuerMismatch => {
                "the bearer token's `iss` is absent or is no configured issuer, compared byte for \
                 byte (a trailing slash counts): copy the issuer from the discovery document"
            }
            BearerError::AudienceMismatch => {
                "the bearer token's `aud` holds none of the issuer's `audiences` (a browser sign-in's \
                 ID token has the app's client id): request the token for a configured audience"
            }
            BearerError::Expired => {
                "the bearer token's `exp` has passed, beyond the tolerated clock skew: the client \
                 gets a new token"
            }
            BearerError::NotYetValid => {
                "the bearer token's `nbf` is in the future, beyond the tolerated clock skew: the \
                 node's and the issuer's clocks disagree"
            }
            BearerError::ExpiryMissing => {
                "the bearer token has no `exp` (legacy Secret-based ServiceAccount tokens never \
                 expire): use a projected token or one from the TokenRequest API"
            }
            BearerError::SubjectMissing => {
                "the bearer token has no usable `sub` (a non-empty string without control \
                 characters): an issuer that does not follow RFC 9068"
            }
            BearerError::ApiServerAudience => {
                "the ServiceAccount token's `aud` holds the API server's own audience (the default \
                 `kube-api-access` token): mount a projected token with the configured audience"
            }
            BearerError::NotAServiceAccount => {
                "the Kubernetes token's `kubernetes.io` claim names no valid namespace and \
                 ServiceAccount, or its `sub` is not `system:serviceaccount:<namespace>:<name>`"
            }
            BearerError::ReviewRefused => {
                "the API server's TokenReview did not authenticate the ServiceAccount token for \
                 the configured audiences: it expired, its ServiceAccount or pod was deleted, or \
                 it was minted for another audience"
            }
            BearerError::Unverifiable => {
                "the ServiceAccount token could not be checked now (503): the API server's keys \
                 or TokenReview API did not answer; with TokenReview, the sidecar's \
                 ServiceAccount needs the `system:auth-delegator` binding the operator makes"
            }
        }
    }
}

impl From<TokenError> for BearerError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::TooLarge => BearerError::TooLarge,
            TokenError::UnsupportedAlgorithm => BearerError::AlgorithmRefused,
            TokenError::CriticalHeader => BearerError::HeaderRefused,
            TokenError::UnknownKey => BearerError::UnknownKey,
            TokenError::BadSignature => BearerError::SignatureInvalid,
            TokenError::WrongIssuer | TokenError::MissingClaim("iss") => {
                BearerError::IssuerMismatch
            }
            TokenError::WrongAudience | TokenError::UntrustedAudience => {
                BearerError::AudienceMismatch
            }
            TokenError::Expired => BearerError::Expired,
            TokenError::NotYetValid => BearerError::NotYetValid,
            TokenError::MissingClaim("exp") => BearerError::ExpiryMissing,
            TokenError::MissingClaim("sub") => BearerError::SubjectMissing,
            TokenError::Malformed
            | TokenError::IssuedInFuture
            | TokenError::MissingClaim(_)
            | TokenError::NonceMismatch => BearerError::Malformed,
        }
    }
}

/// `exp` (required) and `nbf` (when present) against `now` with `skew`; returns `exp`.
fn check_times(claims: &Map<String, Value>, skew: Duration, now: i64) -> Result<i64, BearerError> {
    let skew = i64::try_from(skew.as_secs()).unwrap_or(i64::MAX);
    let exp = claims
        .get("exp")
        .ok_or(BearerError::ExpiryMissing)?
        .as_i64()
        .ok_or(BearerError::Malformed)?;
    if exp < now.saturating_sub(skew) {
        return Err(BearerError::Expired);
    }
    match claims.get("nbf").map(Value::as_i64) {
        None => {}
        Some(None) => return Err(BearerError::Malformed),
        Some(Some(nbf)) if nbf > now.saturating_add(skew) => {
            return Err(BearerError::NotYetValid);
        }
        Some(Some(_)) => {}
    }
    Ok(exp)
}

/// `aud` as a list: a string or an array of strings.
fn audiences(claims: &Map<String, Value>) -> Result<Vec<&str>, BearerError> {
    match claims.get("aud") {
        None => Err(BearerError::AudienceMismatch),
        Some(Value::String(aud)) => Ok(vec![aud.as_str()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or(BearerError::Malformed))
            .collect(),
        Some(_) => Err(BearerError::Malformed),
    }
}

/// A non-empty `sub` without control characters (it becomes part of a header).
fn subject(claims: &Map<String, Value>) -> Result<String, BearerError> {
    match claims.get("sub") {
        Some(Value::String(sub))
            if !sub.is_empty()
                && sub.len() <= MAX_SUBJECT_BYTES
                && !sub.chars().any(char::is_control) =>
        {
            Ok(sub.clone())
        }
        Some(Value::String(_)) | None => Err(BearerError::SubjectMissing),
        Some(_) => Err(BearerError::Malformed),
    }
}

/// The first rule whose value the claim holds: a string equal to it or one of whose
/// space-separated words is (`scp: "read write"`), or an array with an element equal to it.
fn role_of(value: Option<&Value>, rules: &[RoleRule]) -> Option<Role> {
    let holds = |wanted: &str| match value {
        Some(Value::String(s)) => s == wanted || s.split(' ').any(|word| word == wanted),
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(wanted)),
        _ => false,
    };
    rules
        .iter()
        .find(|rule| holds(&rule.value))
        .map(|rule| rule.role)
}

/// `kubernetes.io.namespace` and `kubernetes.io.serviceaccount.name`, when both are valid names.
fn service_account(claims: &Map<String, Value>) -> Option<(&str, &str)> {
    let k8s = claims.get("kubernetes.io")?.as_object()?;
    let namespace = k8s.get("namespace")?.as_str()?;
    let name = k8s
        .get("serviceaccount")?
        .as_object()?
        .get("name")?
        .as_str()?;
    is_sa(namespace, name).then_some((namespace, name))
}

fn is_api_server_audience(audience: &str, issuer: &str) -> bool {
    audience == issuer || API_SERVER_AUDIENCES.contains(&audience)
}

/// A namespace (DNS label) and ServiceAccount name (DNS subdomain).
fn is_sa(namespace: &str, name: &str) -> bool {
    is_dns_label(namespace)
        && name.len() <= 253
        && name.split('.').all(is_dns_label)
        && !name.is_empty()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
