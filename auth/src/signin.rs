//! The sign-in identity: what a protocol verified about a user ([`VerifiedIdentity`]), and what
//! it makes of them — the SsoUser record of the sign-in ([`SignedInUser`]) and the role
//! ([`map_user`]). OIDC sign-in, SAML sign-in and re-validation all pass through here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::claims::{Role, RoleDenial, RolePolicy, attributes, map_role};
use crate::identity::ProviderIdentity;
use crate::logout_token::idp_session_id;
use crate::token::VerifiedIdToken;

/// What a protocol established about the user: verified by the protocol's own module, trusted
/// from here on.
#[derive(Debug)]
pub struct VerifiedIdentity<'a> {
    /// The provider the user signed in with.
    pub provider: &'a ProviderIdentity,
    /// The issuer (OIDC `iss`) or IdP entity ID (SAML): with the subject, names the SsoUser.
    pub issuer: String,
    /// The IdP's stable subject (OIDC `sub`, SAML persistent NameID).
    pub subject: String,
    /// Verified email address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Preferred user name.
    pub preferred_username: Option<String>,
    /// Claims (OIDC) or attributes (SAML, name → string or array of strings): what the role
    /// policy and `GATEHOUSE_ATTRIBUTE_MAPPINGS` read.
    pub claims: Map<String, Value>,
    /// The IdP's own session id (OIDC `sid`), which back-channel logout names.
    pub idp_session: Option<String>,
    /// `claims` with gaps filled from the IdP's UserInfo endpoint (OIDC), read for the attribute
    /// mappings; the role policy never reads it (the role comes from the signed token only).
    pub profile: Option<Map<String, Value>>,
    /// Why the user's groups could not be read, when they could not: the ID token left them out
    /// (Entra ID group overage, [`crate::overage`]) and Microsoft Graph did not give them. The
    /// session then decides access rules with the groups unknown.
    pub groups_unknown: Option<&'static str>,
}

impl<'a> VerifiedIdentity<'a> {
    /// What a verified ID token says about the user, with the gaps `userinfo` filled (profile
    /// and mapped attributes only: the role policy reads the ID token's own claims).
    pub fn oidc(
        provider: &'a ProviderIdentity,
        issuer: &str,
        token: VerifiedIdToken,
        userinfo: Option<Map<String, Value>>,
    ) -> Self {
        let profile = userinfo.as_ref().unwrap_or(&token.claims);
        let text = |name: &str| {
            profile
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty() && s.len() <= 512)
                .map(str::to_owned)
        };
        // An address the IdP says is unverified is not an identity.
        let email =
            text("email").filter(|_| profile.get("email_verified") != Some(&Value::Bool(false)));
        let preferred_username = text("preferred_username").or_else(|| email.clone());
        let name = text("name");
        // The provider's own subject claim (Entra ID's `oid` under SCIM), else `sub`. A token
        // without it keeps `sub`, which names no pushed user: the sign-in is refused as not
        // provisioned.
        let subject = provider
            .subject_claim
            .as_deref()
            .and_then(|claim| token.claims.get(claim)?.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 1024)
            .map_or_else(|| token.subject.clone(), str::to_owned);
        VerifiedIdentity {
            provider,
            issuer: issuer.to_owned(),
            subject,
            name,
            email,
            preferred_username,
            idp_session: idp_session_id(&token.claims),
            claims: token.claims,
            profile: userinfo,
            groups_unknown: None,
        }
    }
}

/// A user who just passed verification and role mapping.
#[derive(Debug, Clone, Serialize)]
pub struct SignedInUser {
    /// SsoUser name (stable user id).
    pub user: String,
    /// Provider id.
    pub provider: String,
    /// Issuer.
    pub issuer: String,
    /// IdP subject.
    pub subject: String,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Preferred username.
    pub preferred_username: Option<String>,
    /// Role.
    pub role: &'static str,
    /// Organisation id.
    pub org: String,
    /// Groups from the provider's groups claim (SAML: attribute), as the IdP sent them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The groups could not be read (an Entra ID group overage Microsoft Graph did not answer):
    /// `groups` is empty and not the user's list, so the SsoUser keeps the groups it recorded
    /// before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub groups_unknown: bool,
    /// Claims copied by `GATEHOUSE_ATTRIBUTE_MAPPINGS`.
    pub attributes: BTreeMap<String, String>,
    /// A sign-in, or a re-validation of a session at the IdP (not sent to the hook, which only
    /// sign-ins call).
    #[serde(skip)]
    pub occasion: Occasion,
}

/// Why the IdP vouched for a user just now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// The user signed in: counted in `status.loginCount` and `status.lastLogin`.
    SignIn,
    /// A session was re-validated with its refresh token: the profile, role and attributes are
    /// synced, the sign-in count and time are left as they were.
    Revalidation,
}

impl Occasion {
    /// `sign-in` or `re-validation`, for Event notes.
    pub fn as_str(self) -> &'static str {
        match self {
            Occasion::SignIn => "sign-in",
            Occasion::Revalidation => "re-validation",
        }
    }
}

/// A verified user whose claims map to no role: the SsoUser name they would have, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    /// The SsoUser name.
    pub user: String,
    /// Why no role.
    pub denial: RoleDenial,
}

/// What a verified identity makes of the user of SsoConfig `config`: the SsoUser record of the sign-in (name,
/// profile, attributes copied by `attribute_mappings`) and the role its claims map to under
/// `roles`, or the denial. The role is read from `identity.claims` only, never from the profile
/// the UserInfo endpoint filled.
pub fn map_user(
    config: &str,
    identity: &VerifiedIdentity<'_>,
    roles: &RolePolicy,
    attribute_mappings: &[(String, String)],
) -> Result<(SignedInUser, Role), Unmapped> {
    let provider = identity.provider;
    let user = gatehouse_crds::names::sso_user_name(
        config,
        &provider.id,
        &identity.issuer,
        &identity.subject,
    );
    let role = match map_role(roles, &identity.claims) {
        Ok(role) => role,
        Err(denial) => return Err(Unmapped { user, denial }),
    };
    let signed_in = SignedInUser {
        user,
        provider: provider.id.clone(),
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        email: identity.email.clone(),
        name: identity.name.clone(),
        preferred_username: identity.preferred_username.clone(),
        role: role.as_str(),
        org: provider.org_id.clone(),
        attributes: attributes(
            attribute_mappings,
            identity.profile.as_ref().unwrap_or(&identity.claims),
        ),
        groups: crate::access::groups_from_claims(&identity.claims, &provider.groups_claim),
        groups_unknown: identity.groups_unknown.is_some(),
        occasion: Occasion::SignIn,
    };
    Ok((signed_in, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: Value) -> VerifiedIdToken {
        let claims = claims.as_object().cloned().unwrap_or_default();
        VerifiedIdToken {
            subject: claims["sub"].as_str().unwrap_or_default().to_owned(),
            claims,
        }
    }

    #[test]
    fn a_provider_with_a_subject_claim_names_the_person_by_it_and_others_by_sub() {
        let claims = serde_json::json!({"sub": "pairwise-per-app", "oid": "7f1c9a52-0d3b"});
        let plain = ProviderIdentity::new("entra", "acme");
        let by_oid = ProviderIdentity::new("entra", "acme").with_subject_claim(Some("oid"));
        let issuer = "https://login.microsoftonline.com/t/v2.0";
        assert_eq!(
            VerifiedIdentity::oidc(&plain, issuer, token(claims.clone()), None).subject,
            "pairwise-per-app"
        );
        assert_eq!(
            VerifiedIdentity::oidc(&by_oid, issuer, token(claims), None).subject,
            "7f1c9a52-0d3b"
        );
        let without = serde_json::json!({"sub": "pairwise-per-app"});
        assert_eq!(
            VerifiedIdentity::oidc(&by_oid, issuer, token(without), None).subject,
            "pairwise-per-app",
            "a token without the claim keeps sub, which names no pushed user"
        );
    }
}
