//! Gatehouse's authentication core: everything the sidecar decides about a user, with no I/O.
//!
//! No tokio, kube, hyper or reqwest here (a test in `xtask` keeps it so): every function takes
//! plain values — claims, keys, cookie values, the time — and returns a verdict, so it can be read,
//! tested and fuzzed on its own. Fetching keys, talking to the Kubernetes API and serving HTTP
//! are the callers' jobs.
//!
//! | module | what it decides |
//! | --- | --- |
//! | [`access`] | whether a request may reach the app: `spec.access` rules, compiled once |
//! | [`claims`] | role mapping from ID-token claims or SAML attributes; mapped attributes |
//! | [`paths`] | canonical request paths, skip-auth prefixes, same-origin `rd=` redirects |
//! | [`jwk`] | a provider's usable signing keys, from its JWKS document |
//! | [`token`] | ID-token verification against given keys |
//! | [`logout_token`] | back-channel logout-token verification against given keys |
//! | [`machine`] | machine clients' bearer tokens (external issuers, ServiceAccount tokens) |
//! | [`overage`] | Entra ID group overage: when to ask Microsoft Graph, which pages to follow |
//! | [`cookie`] | sealed cookies: sealing, session, sign-in attempt, refresh grant, `Cookie` parsing |
//! | [`collections`] | small bounded collections (expiring ids, maps keyed by random values) |
//! | [`identity`] | the identity headers and the signed `X-Gatehouse-Identity` JWT |
//! | [`signin`] | what a verified identity makes of a user: SsoUser record and role |
//! | [`revalidation`] | when a session is fresh, due for re-validation, or past grace |
//! | [`scim`] | SCIM 2.0 provisioning: User resources, PATCH, filters, paging, discovery |
//! | [`saml`] | SAML Response verification and the SP's messages (feature `saml`) |
#![forbid(unsafe_code)]

pub mod access;
pub mod claims;
pub mod collections;
pub mod cookie;
pub mod identity;
pub mod jwk;
pub mod logout_token;
pub mod machine;
pub mod overage;
pub mod paths;
pub mod revalidation;
#[cfg(feature = "saml")]
pub mod saml;
pub mod scim;
pub mod signin;
pub mod token;
