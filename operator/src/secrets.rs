//! The Secrets an `SsoConfig` points to: which ones it needs, and the pure step that reads the
//! values out of them. Fetching is the caller's job (the controller reads the API, `render` reads
//! files); both hand over a map of the Secrets found in the config's own namespace, so a
//! reference can never reach another namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_crds::saml_metadata::parse_idp_metadata;
use gatehouse_crds::{
    ClientSecretRef, Protocol, ProvisioningMode, SCIM_PREVIOUS_TOKEN_KEY, SCIM_TOKEN_KEY,
    SecretKeyRef, SecretNameRef, SsoConfigSpec,
};
use k8s_openapi::api::core::v1::Secret;

use crate::names;
use crate::validate::{Problem, ProblemKind};

/// Default key of the cookie keys in `session.cookieSecretRef` and in the generated Secret.
pub const COOKIE_SECRET_KEY: &str = "cookie-secret";
/// Default key of the IdP metadata XML in `saml.idpMetadataSecretRef`.
pub const SAML_METADATA_KEY: &str = "metadata.xml";

/// Secrets found in one namespace, by name.
pub type SecretMap = BTreeMap<String, Secret>;

/// A string read from a Secret. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }
    /// The value itself, for rendering into the sidecar's environment only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An OAuth client's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretValue,
}

/// Where the session cookie keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieKeys {
    /// From the Secret the user named in `session.cookieSecretRef`.
    Referenced(SecretValue),
    /// From the Secret the operator generated (`<config>-gatehouse-cookie`).
    Generated(SecretValue),
    /// Not generated yet: the controller creates the key when it first applies; `render` shows a
    /// placeholder.
    ToGenerate,
}

/// The values the active protocol needs, read from Secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedSecrets {
    pub okta: Option<ClientCredentials>,
    pub entra: Option<ClientCredentials>,
    /// One per entry of `spec.providers.oidc`, in its order (`None` only alongside a problem).
    pub oidc: Vec<Option<ClientCredentials>>,
    /// IdP metadata XML, when `saml.idpMetadataSecretRef` is used.
    pub saml_metadata: Option<String>,
    pub cookie_keys: CookieKeys,
    /// SAML only: the SP's signing keys, from the generated Secret; `None` until it exists (the
    /// controller creates it; `render` leaves the variables out, and the sidecar answers single
    /// logout unsigned).
    pub saml_sp: Option<crate::sp_key::SpKeys>,
    /// `provisioning.mode: scim` only: the SCIM bearer tokens.
    pub scim: Option<ScimTokens>,
}

/// The bearer tokens the identity provider may send to the SCIM endpoint, from
/// `provisioning.scim.tokenSecretRef`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimTokens {
    /// Key `token`: the one the identity provider is configured with.
    pub token: SecretValue,
    /// Key `previousToken`, when the Secret has it: still accepted during a rotation.
    pub previous: Option<SecretValue>,
}

/// Names of the Secrets (in the config's namespace) that `spec` needs: the active protocol's
/// references and the cookie-key Secret when one is named. References that name a namespace are
/// left out: they are refused by validation, never followed.
pub fn referenced_secret_names(spec: &SsoConfigSpec) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    match spec.protocol {
        Protocol::Oidc => {
            if let Some(p) = &spec.providers {
                let refs = [
                    p.okta.as_ref().map(|o| &o.client_secret_ref),
                    p.entra.as_ref().map(|e| &e.client_secret_ref),
                ];
                let generic = p.oidc.iter().map(|o| Some(&o.client_secret_ref));
                for r in refs.into_iter().chain(generic).flatten() {
                    if r.namespace.is_none() {
                        names.insert(r.name.clone());
                    }
                }
            }
        }
        Protocol::Saml => {
            if let Some(r) = spec
                .saml
                .as_ref()
                .and_then(|s| s.idp_metadata_secret_ref.as_ref())
                && r.namespace.is_none()
            {
                names.insert(r.name.clone());
            }
        }
    }
    if let Some(r) = cookie_ref(spec)
        && r.namespace.is_none()
    {
        names.insert(r.name.clone());
    }
    if let Some(r) = scim_ref(spec)
        && r.namespace.is_none()
    {
        names.insert(r.name.clone());
    }
    names
}

/// The SCIM token Secret, in `scim` mode only.
fn scim_ref(spec: &SsoConfigSpec) -> Option<&SecretNameRef> {
    (spec.provisioning_mode() == ProvisioningMode::Scim).then_some(())?;
    Some(&spec.provisioning.as_ref()?.scim.as_ref()?.token_secret_ref)
}

/// Whether `spec` references the Secret `name` (in its own namespace); the Secret watch uses it
/// to re-render configs when a referenced Secret changes.
pub fn references_secret(spec: &SsoConfigSpec, name: &str) -> bool {
    referenced_secret_names(spec).contains(name)
}

fn cookie_ref(spec: &SsoConfigSpec) -> Option<&SecretKeyRef> {
    spec.session.as_ref()?.cookie_secret_ref.as_ref()
}

/// Read what the active protocol of the SsoConfig `config` needs out of `secrets` (the Secrets of
/// its namespace, including the generated cookie Secret when it exists). `scope` completes "not
/// found" messages: `in namespace team-a`, `in the input`. Every missing Secret or key is
/// reported, naming both.
pub fn resolve(
    config: &str,
    spec: &SsoConfigSpec,
    secrets: &SecretMap,
    scope: &str,
) -> Result<ResolvedSecrets, Vec<Problem>> {
    let lookup = Lookup { secrets, scope };
    let generated_cookie_name = names::cookie_secret(config);
    let generated_cookie = secrets.get(&generated_cookie_name);
    let mut problems = Vec::new();
    let mut resolved = ResolvedSecrets {
        okta: None,
        entra: None,
        oidc: Vec::new(),
        saml_metadata: None,
        cookie_keys: CookieKeys::ToGenerate,
        saml_sp: None,
        scim: None,
    };

    match spec.protocol {
        Protocol::Oidc => {
            if let Some(p) = &spec.providers {
                if let Some(okta) = &p.okta {
                    resolved.okta = client_credentials(
                        "spec.providers.okta.clientSecretRef",
                        &okta.client_secret_ref,
                        &lookup,
                        &mut problems,
                    );
                }
                if let Some(entra) = &p.entra {
                    resolved.entra = client_credentials(
                        "spec.providers.entra.clientSecretRef",
                        &entra.client_secret_ref,
                        &lookup,
                        &mut problems,
                    );
                }
                for (index, oidc) in p.oidc.iter().enumerate() {
                    resolved.oidc.push(client_credentials(
                        &format!("spec.providers.oidc[{index}].clientSecretRef"),
                        &oidc.client_secret_ref,
                        &lookup,
                        &mut problems,
                    ));
                }
            }
        }
        Protocol::Saml => {
            let generated = names::saml_sp_secret(config);
            if let Some(secret) = secrets.get(&generated) {
                let data: BTreeMap<String, String> = secret
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                match crate::sp_key::SpKeys::from_data(&data) {
                    Ok(keys) => resolved.saml_sp = Some(keys),
                    Err(message) => problems.push(Problem::of(
                        ProblemKind::SecretValueInvalid,
                        "spec.saml",
                        format!(
                            "the generated Secret \"{generated}\" (the SP's signing key) was edited: {message}; delete it to have a new key generated"
                        ),
                    )),
                }
            }
            if let Some(r) = spec
                .saml
                .as_ref()
                .and_then(|s| s.idp_metadata_secret_ref.as_ref())
                && r.namespace.is_none()
            {
                let key = r.key.as_deref().unwrap_or(SAML_METADATA_KEY);
                let field = "spec.saml.idpMetadataSecretRef";
                let xml = read_key(field, &r.name, key, &lookup, false, &mut problems);
                // The sidecar would refuse to start on metadata it cannot use: say so here, on
                // the SsoConfig, instead.
                match xml.as_deref().map(parse_idp_metadata) {
                    Some(Err(e)) => problems.push(Problem::of(
                        ProblemKind::SecretValueInvalid,
                        field,
                        format!("key \"{key}\" of Secret \"{}\": {e}", r.name),
                    )),
                    Some(Ok(_)) => resolved.saml_metadata = xml,
                    None => {}
                }
            }
        }
    }

    match cookie_ref(spec) {
        Some(r) if r.namespace.is_some() => {}
        Some(r) => {
            let key = r.key.as_deref().unwrap_or(COOKIE_SECRET_KEY);
            let field = "spec.session.cookieSecretRef";
            if let Some(keys) = read_key(field, &r.name, key, &lookup, true, &mut problems) {
                if let Err(message) = check_cookie_keys(&keys) {
                    problems.push(Problem::of(
                        ProblemKind::SecretValueInvalid,
                        field,
                        format!("key \"{key}\" of Secret \"{}\": {message}", r.name),
                    ));
                } else {
                    resolved.cookie_keys = CookieKeys::Referenced(SecretValue(keys));
                }
            }
        }
        None => {
            if generated_cookie.is_some() {
                let field = "spec.session";
                if let Some(keys) = read_key(
                    field,
                    &generated_cookie_name,
                    COOKIE_SECRET_KEY,
                    &lookup,
                    true,
                    &mut problems,
                ) {
                    match check_cookie_keys(&keys) {
                        Ok(()) => resolved.cookie_keys = CookieKeys::Generated(SecretValue(keys)),
                        Err(message) => problems.push(Problem::of(
                            ProblemKind::SecretValueInvalid,
                            field,
                            format!(
                                "the generated Secret \"{generated_cookie_name}\" was edited: {message}; delete it to have a new key generated"
                            ),
                        )),
                    }
                }
            }
        }
    }

    if let Some(r) = scim_ref(spec)
        && r.namespace.is_none()
    {
        resolved.scim = scim_tokens(r, &lookup, &mut problems);
    }

    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(problems)
    }
}

/// The SCIM tokens of `r`: key `token` required, `previousToken` optional; each at least
/// [`gatehouse_crds::rules::MIN_SCIM_TOKEN_LEN`] characters (the message never shows a value).
fn scim_tokens(
    r: &SecretNameRef,
    lookup: &Lookup<'_>,
    problems: &mut Vec<Problem>,
) -> Option<ScimTokens> {
    let field = "spec.provisioning.scim.tokenSecretRef";
    let secret = lookup.get(field, &r.name, problems)?;
    let has_previous = secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(SCIM_PREVIOUS_TOKEN_KEY))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(SCIM_PREVIOUS_TOKEN_KEY));
    let mut read = |key: &str| {
        let value = read_key(field, &r.name, key, lookup, true, problems)?;
        match gatehouse_crds::rules::check_scim_token(&value) {
            Ok(()) => Some(SecretValue(value)),
            Err(message) => {
                problems.push(Problem::of(
                    ProblemKind::SecretValueInvalid,
                    field,
                    format!("key \"{key}\" of Secret \"{}\": {message}", r.name),
                ));
                None
            }
        }
    };
    let token = read(SCIM_TOKEN_KEY);
    let previous = if has_previous {
        Some(read(SCIM_PREVIOUS_TOKEN_KEY)?)
    } else {
        None
    };
    Some(ScimTokens {
        token: token?,
        previous,
    })
}

/// The Secrets of one namespace, and how to say where they were looked for.
struct Lookup<'a> {
    secrets: &'a SecretMap,
    scope: &'a str,
}

impl Lookup<'_> {
    fn get(&self, field: &str, name: &str, problems: &mut Vec<Problem>) -> Option<&Secret> {
        let found = self.secrets.get(name);
        if found.is_none() {
            problems.push(Problem::of(
                ProblemKind::SecretNotFound,
                field,
                format!("Secret \"{name}\" not found {}", self.scope),
            ));
        }
        found
    }
}

fn client_credentials(
    field: &str,
    r: &ClientSecretRef,
    lookup: &Lookup<'_>,
    problems: &mut Vec<Problem>,
) -> Option<ClientCredentials> {
    if r.namespace.is_some() {
        return None;
    }
    lookup.get(field, &r.name, problems)?;
    let id = read_key(field, &r.name, r.client_id_key(), lookup, true, problems);
    let client_secret = read_key(
        field,
        &r.name,
        r.client_secret_key(),
        lookup,
        true,
        problems,
    );
    Some(ClientCredentials {
        client_id: id?,
        client_secret: SecretValue(client_secret?),
    })
}

/// One key of one Secret as text. `trim` drops surrounding whitespace, such as the newline that
/// `kubectl create secret --from-file` keeps.
fn read_key(
    field: &str,
    name: &str,
    key: &str,
    lookup: &Lookup<'_>,
    trim: bool,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let secret = lookup.get(field, name, problems)?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.clone().into_bytes())
        });
    let Some(bytes) = bytes else {
        problems.push(Problem::of(
            ProblemKind::SecretKeyNotFound,
            field,
            format!("key \"{key}\" not found in Secret \"{name}\""),
        ));
        return None;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        problems.push(Problem::of(
            ProblemKind::SecretValueInvalid,
            field,
            format!("key \"{key}\" of Secret \"{name}\" is not UTF-8 text"),
        ));
        return None;
    };
    let text = if trim { text.trim().to_string() } else { text };
    if text.is_empty() {
        problems.push(Problem::of(
            ProblemKind::SecretValueInvalid,
            field,
            format!("key \"{key}\" of Secret \"{name}\" is empty"),
        ));
        return None;
    }
    Some(text)
}

/// Cookie keys are base64 32-byte keys, comma-separated. The message never shows a key.
fn check_cookie_keys(keys: &str) -> Result<(), String> {
    for (i, key) in keys.split(',').enumerate() {
        let ok = STANDARD
            .decode(key.trim())
            .is_ok_and(|bytes| bytes.len() == 32);
        if !ok {
            return Err(format!(
                "entry {} is not a base64-encoded 32-byte key (generate one with `openssl rand -base64 32`)",
                i + 1
            ));
        }
    }
    Ok(())
}

/// A new random cookie key: 32 bytes, base64.
pub fn generate_cookie_key() -> SecretValue {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    SecretValue(STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_crds::SsoConfig;
    use k8s_openapi::ByteString;

    fn spec(yaml: &str) -> SsoConfigSpec {
        serde_saphyr::from_str::<SsoConfig>(yaml)
            .expect("fixture parses")
            .spec
    }

    fn secret(name: &str, pairs: &[(&str, &str)]) -> (String, Secret) {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.data = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        );
        (name.to_string(), s)
    }

    const OKTA_AND_AUTH0: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com
  providers:
    okta: {issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {name: portal-okta}}
    oidc:
      - id: auth0
        displayName: Auth0
        issuer: https://acme.auth0.com/
        orgId: acme
        roleClaim: groups
        clientSecretRef: {name: portal-auth0, clientIdKey: id, clientSecretKey: secret}
  saml: {idpMetadataSecretRef: {name: never-read}, roleAttribute: memberOf, orgId: acme}
  session: {cookieSecretRef: {name: cookies, key: keys}}
"#;

    #[test]
    fn only_the_active_protocols_secrets_are_needed() {
        let names = referenced_secret_names(&spec(OKTA_AND_AUTH0));
        let names: Vec<_> = names.iter().map(String::as_str).collect();
        assert_eq!(names, ["cookies", "portal-auth0", "portal-okta"]);
        let saml = spec(&OKTA_AND_AUTH0.replace("protocol: oidc", "protocol: saml"));
        let names: Vec<_> = referenced_secret_names(&saml).into_iter().collect();
        assert_eq!(names, ["cookies", "never-read"]);
    }

    /// OKTA_AND_AUTH0 with two more generic providers, each with its own Secret.
    fn three_generic() -> SsoConfigSpec {
        spec(&OKTA_AND_AUTH0.replacen(
            "  saml: {",
            "      - {id: google, displayName: Google, issuer: 'https://accounts.google.com', orgId: acme, roleClaim: hd, defaultRole: member, clientSecretRef: {name: portal-google}}\n      - {id: keycloak, displayName: Keycloak, issuer: 'https://kc.example/realms/a', orgId: acme, roleClaim: groups, defaultRole: member, clientSecretRef: {name: portal-keycloak}}\n  saml: {",
            1,
        ))
    }

    #[test]
    fn every_generic_providers_secret_is_watched_and_read() {
        let spec = three_generic();
        let names: Vec<_> = referenced_secret_names(&spec).into_iter().collect();
        assert_eq!(
            names,
            [
                "cookies",
                "portal-auth0",
                "portal-google",
                "portal-keycloak",
                "portal-okta"
            ]
        );
        assert!(references_secret(&spec, "portal-keycloak"));
        let key = STANDARD.encode([7u8; 32]);
        let mut secrets: SecretMap = [
            secret(
                "portal-okta",
                &[("client-id", "o"), ("client-secret", "os")],
            ),
            secret("portal-auth0", &[("id", "a"), ("secret", "as")]),
            secret(
                "portal-google",
                &[("client-id", "g"), ("client-secret", "gs")],
            ),
            secret(
                "portal-keycloak",
                &[("client-id", "k"), ("client-secret", "ks")],
            ),
            secret("cookies", &[("keys", &key)]),
        ]
        .into_iter()
        .collect();
        let resolved = resolve("portal", &spec, &secrets, "in namespace team-a").expect("resolves");
        let ids: Vec<(&str, &str)> = resolved
            .oidc
            .iter()
            .map(|c| {
                let c = c.as_ref().expect("resolved");
                (c.client_id.as_str(), c.client_secret.expose())
            })
            .collect();
        assert_eq!(ids, [("a", "as"), ("g", "gs"), ("k", "ks")]);
        // A missing Secret of the third provider is reported on that entry.
        secrets.remove("portal-keycloak");
        let problems =
            resolve("portal", &spec, &secrets, "in namespace team-a").expect_err("fails");
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "spec.providers.oidc[2].clientSecretRef: Secret \"portal-keycloak\" not found in namespace team-a"
            ]
        );
    }

    #[test]
    fn scim_tokens_come_from_fixed_keys_the_previous_one_optional() {
        let scim = spec(&format!(
            "{OKTA_AND_AUTH0}  provisioning: {{mode: scim, scim: {{tokenSecretRef: {{name: portal-scim}}}}}}\n"
        ));
        assert!(references_secret(&scim, "portal-scim"));
        // Another mode leaves the block unread (validation refuses it anyway).
        let jit = spec(&format!(
            "{OKTA_AND_AUTH0}  provisioning: {{mode: jit, scim: {{tokenSecretRef: {{name: portal-scim}}}}}}\n"
        ));
        assert!(!references_secret(&jit, "portal-scim"));

        let key = STANDARD.encode([7u8; 32]);
        let base: SecretMap = [
            secret(
                "portal-okta",
                &[("client-id", "o"), ("client-secret", "os")],
            ),
            secret("portal-auth0", &[("id", "a"), ("secret", "as")]),
            secret("cookies", &[("keys", &key)]),
        ]
        .into_iter()
        .collect();
        let with = |pairs: &[(&str, &str)]| {
            let mut secrets = base.clone();
            secrets.extend([secret("portal-scim", pairs)]);
            resolve("portal", &scim, &secrets, "in namespace team-a")
        };
        let lines = |problems: Vec<Problem>| -> Vec<String> {
            problems.iter().map(ToString::to_string).collect()
        };

        let one = with(&[("token", "current-token-0123456789\n")]).expect("resolves");
        let tokens = one.scim.expect("tokens");
        assert_eq!(tokens.token.expose(), "current-token-0123456789");
        assert_eq!(tokens.previous, None);
        assert!(!format!("{tokens:?}").contains("current-token"));

        let two = with(&[
            ("token", "current-token-0123456789"),
            ("previousToken", "previous-token-0123456789"),
        ])
        .expect("resolves");
        assert_eq!(
            two.scim
                .expect("tokens")
                .previous
                .map(|p| p.expose().to_owned())
                .as_deref(),
            Some("previous-token-0123456789")
        );

        let missing = resolve("portal", &scim, &base, "in namespace team-a").expect_err("fails");
        assert_eq!(
            lines(missing.clone()),
            [
                "spec.provisioning.scim.tokenSecretRef: Secret \"portal-scim\" not found in namespace team-a"
            ]
        );
        assert_eq!(missing[0].kind, ProblemKind::SecretNotFound);
        let no_key = with(&[("previousToken", "previous-token-0123456789")]).expect_err("fails");
        assert_eq!(
            lines(no_key.clone()),
            [
                "spec.provisioning.scim.tokenSecretRef: key \"token\" not found in Secret \"portal-scim\""
            ]
        );
        assert_eq!(no_key[0].kind, ProblemKind::SecretKeyNotFound);
        let short =
            with(&[("token", "short-secret"), ("previousToken", "also-short")]).expect_err("fails");
        let short = lines(short);
        assert_eq!(short.len(), 2, "{short:?}");
        assert!(
            short[0].contains("key \"token\" of Secret \"portal-scim\""),
            "{short:?}"
        );
        assert!(short[1].contains("key \"previousToken\""), "{short:?}");
        for line in &short {
            assert!(line.contains("at least 16 characters"), "{line}");
            assert!(
                !line.contains("short-secret") && !line.contains("also-short"),
                "{line}"
            );
        }
    }

    #[test]
    fn values_come_from_the_named_keys_trimmed() {
        let key = STANDARD.encode([7u8; 32]);
        let secrets: SecretMap = [
            secret(
                "portal-okta",
                &[("client-id", "okta-id\n"), ("client-secret", "okta-s3cret")],
            ),
            secret(
                "portal-auth0",
                &[("id", "auth0-id"), ("secret", "auth0-s3cret")],
            ),
            secret("cookies", &[("keys", &format!("{key},{key}"))]),
        ]
        .into_iter()
        .collect();
        let resolved = resolve(
            "portal",
            &spec(OKTA_AND_AUTH0),
            &secrets,
            "in namespace team-a",
        )
        .expect("resolves");
        let okta = resolved.okta.expect("okta");
        assert_eq!(okta.client_id, "okta-id");
        assert_eq!(okta.client_secret.expose(), "okta-s3cret");
        assert_eq!(
            resolved.oidc[0]
                .as_ref()
                .expect("oidc")
                .client_secret
                .expose(),
            "auth0-s3cret"
        );
        assert_eq!(
            resolved.cookie_keys,
            CookieKeys::Referenced(SecretValue(format!("{key},{key}")))
        );
    }

    #[test]
    fn saml_metadata_must_name_an_sso_service_and_a_signing_certificate() {
        let saml = spec(&OKTA_AND_AUTH0.replace("protocol: oidc", "protocol: saml"));
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let usable = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example/m"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>QUJD</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#.to_owned();
        let with = |xml: &str| -> SecretMap {
            [
                secret("never-read", &[("metadata.xml", xml)]),
                secret("cookies", &[("keys", key)]),
            ]
            .into_iter()
            .collect()
        };
        let resolved = resolve("portal", &saml, &with(&usable), "here").expect("usable");
        assert_eq!(resolved.saml_metadata.as_deref(), Some(usable.as_str()));

        let no_cert = usable.replace(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>QUJD</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            "",
        );
        let no_sso = usable.replace("HTTP-Redirect", "SOAP");
        for (xml, says) in [
            (no_cert.as_str(), "names no signing certificate"),
            (no_sso.as_str(), "names no SingleSignOnService"),
            ("<not xml", "not well-formed XML"),
        ] {
            let problems = resolve("portal", &saml, &with(xml), "here").expect_err("refused");
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(
                lines[0].starts_with(
                    "spec.saml.idpMetadataSecretRef: key \"metadata.xml\" of Secret \"never-read\": the IdP metadata"
                ) && lines[0].contains(says),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn missing_secret_and_missing_key_are_both_named() {
        let secrets: SecretMap = [
            secret("portal-okta", &[("client-id", "okta-id")]),
            secret("cookies", &[("keys", "not-a-key")]),
        ]
        .into_iter()
        .collect();
        let problems = resolve(
            "portal",
            &spec(OKTA_AND_AUTH0),
            &secrets,
            "in namespace team-a",
        )
        .expect_err("fails");
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "spec.providers.okta.clientSecretRef: key \"client-secret\" not found in Secret \"portal-okta\"",
                "spec.providers.oidc[0].clientSecretRef: Secret \"portal-auth0\" not found in namespace team-a",
                "spec.session.cookieSecretRef: key \"keys\" of Secret \"cookies\": entry 1 is not a base64-encoded 32-byte key (generate one with `openssl rand -base64 32`)",
            ]
        );
        assert!(
            !lines.iter().any(|l| l.contains("not-a-key")),
            "no value leaks"
        );
    }

    #[test]
    fn generated_cookie_is_used_when_no_ref() {
        let no_ref = spec(&OKTA_AND_AUTH0.replace(
            "  session: {cookieSecretRef: {name: cookies, key: keys}}\n",
            "",
        ));
        let mut secrets: SecretMap = [
            secret("portal-okta", &[("client-id", "a"), ("client-secret", "b")]),
            secret("portal-auth0", &[("id", "c"), ("secret", "d")]),
        ]
        .into_iter()
        .collect();
        let first = resolve("portal", &no_ref, &secrets, "here").expect("resolves");
        assert_eq!(first.cookie_keys, CookieKeys::ToGenerate);
        let key = generate_cookie_key();
        assert_ne!(key, generate_cookie_key(), "keys are random");
        let (name, generated) = secret(
            "portal-gatehouse-cookie",
            &[(COOKIE_SECRET_KEY, key.expose())],
        );
        secrets.insert(name, generated);
        let later = resolve("portal", &no_ref, &secrets, "here").expect("resolves");
        assert_eq!(later.cookie_keys, CookieKeys::Generated(key));
    }

    #[test]
    fn debug_never_shows_values() {
        let creds = ClientCredentials {
            client_id: "id".into(),
            client_secret: SecretValue::new("hunter2"),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
