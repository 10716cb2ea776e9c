//! The objects the operator owns for one `SsoConfig`, built by pure functions. The controller
//! applies them, `render` prints them, and the webhook reads the same names: one definition,
//! several callers.

use std::collections::BTreeMap;

use gatehouse_crds::consts::{
    ADMIN_PORT_NAME, DEFAULT_SESSION_TTL, DEFAULT_UPSTREAM_PORT, LABEL_COMPONENT, LABEL_CONFIG,
    LABEL_INJECT, LABEL_MANAGED_BY, MANAGED_BY, OIDC_BACKCHANNEL_LOGOUT_PREFIX,
    OIDC_CALLBACK_PREFIX, PROVIDER_ENTRA, PROVIDER_OKTA, SIDECAR_PORT_NAME,
};
use gatehouse_crds::{
    AuthMode, Protocol, ProvisioningMode, SamlUrls, SsoConfig, SsoConfigSpec, env, role_map_env,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use sha2::{Digest, Sha256};

use crate::names;
use crate::secrets::{COOKIE_SECRET_KEY, CookieKeys, ResolvedSecrets};

/// Shown instead of the cookie key that the controller generates when it first applies.
pub const GENERATED_PLACEHOLDER: &str = "<generated at apply time>";

/// `app.kubernetes.io/component` values of the owned objects.
pub const COMPONENT_ENV: &str = "sidecar-env";
pub const COMPONENT_COOKIE: &str = "cookie-keys";
/// Component label of the SAML SP's signing-key Secret.
pub const COMPONENT_SAML_SP: &str = "saml-sp-key";
pub const COMPONENT_IDENTITY: &str = "sidecar-identity";
pub const COMPONENT_NETWORK_POLICY: &str = "network-policy";
pub const COMPONENT_TOKEN_REVIEW: &str = "token-review";
/// Label of the cluster-scoped objects made for a config: its namespace (`gatehouse.dev/config`
/// holds its name).
pub const LABEL_CONFIG_NAMESPACE: &str = "gatehouse.dev/config-namespace";
/// Annotation of the cluster-scoped objects made for a config: its uid (they cannot have an owner
/// reference to a namespaced object; the finalizer removes them).
pub const ANNOTATION_CONFIG_UID: &str = "gatehouse.dev/config-uid";
/// The ClusterRole TokenReview mode binds the sidecar's ServiceAccount to: Kubernetes' own role
/// for delegated authentication (`tokenreviews` and `subjectaccessreviews`, create).
pub const AUTH_DELEGATOR: &str = "system:auth-delegator";

/// Everything the operator applies for one SsoConfig.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// `<config>-gatehouse-env`: the sidecar's environment, with a content-hash annotation.
    pub env_secret: Secret,
    /// `<config>-gatehouse-cookie`: only when no `cookieSecretRef` is set. Created once, never
    /// applied over (the controller reads it first and creates it only when missing).
    pub cookie_secret: Option<Secret>,
    pub service_account: ServiceAccount,
    pub role: Role,
    pub role_binding: RoleBinding,
    /// Long-lived token of the sidecar's ServiceAccount, filled in by Kubernetes.
    pub token_secret: Secret,
    /// Admits traffic to injected pods only on the sidecar's port; `None` when disabled.
    pub network_policy: Option<NetworkPolicy>,
    /// TokenReview mode only: the sidecar's ServiceAccount bound to `system:auth-delegator`.
    /// Cluster-scoped, so without owner reference: the config's finalizer removes it.
    pub token_review_binding: Option<ClusterRoleBinding>,
}

/// Identity of the SsoConfig being built: the parts of its metadata the objects need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

impl ConfigRef {
    /// From a stored object; `None` when it has no name, namespace or uid.
    pub fn of(config: &SsoConfig) -> Option<ConfigRef> {
        Some(ConfigRef {
            name: config.metadata.name.clone()?,
            namespace: config.metadata.namespace.clone()?,
            uid: config.metadata.uid.clone()?,
        })
    }

    fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: SsoConfig::api_version(&()).into_owned(),
            kind: SsoConfig::kind(&()).into_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn metadata(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(component)),
            owner_references: Some(vec![self.owner_reference()]),
            ..ObjectMeta::default()
        }
    }

    fn labels(&self, component: &str) -> BTreeMap<String, String> {
        [
            (LABEL_CONFIG, self.name.as_str()),
            (LABEL_MANAGED_BY, MANAGED_BY),
            (LABEL_COMPONENT, component),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// Build every owned object of a valid config whose Secrets resolved.
pub fn build(config: &ConfigRef, spec: &SsoConfigSpec, secrets: &ResolvedSecrets) -> Desired {
    let env = sidecar_env(config, spec, secrets);
    let sa_name = names::service_account(&config.name);

    let mut env_meta = config.metadata(names::env_secret(&config.name), COMPONENT_ENV);
    env_meta.annotations = Some(BTreeMap::from([(
        gatehouse_crds::consts::ANNOTATION_CONFIG_HASH.to_string(),
        content_hash(&env),
    )]));
    let env_secret = Secret {
        metadata: env_meta,
        type_: Some("Opaque".into()),
        data: Some(
            env.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    };

    let cookie_secret = match &secrets.cookie_keys {
        CookieKeys::Referenced(_) => None,
        CookieKeys::Generated(keys) => Some(cookie_secret(config, keys.expose())),
        CookieKeys::ToGenerate => Some(cookie_secret(config, GENERATED_PLACEHOLDER)),
    };

    let service_account = ServiceAccount {
        metadata: config.metadata(sa_name.clone(), COMPONENT_IDENTITY),
        // The webhook mounts the token into the sidecar container only, never the app's.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };

    let ssousers = gatehouse_crds::SsoUser::plural(&()).into_owned();
    let rw = ["get", "list", "watch", "create", "patch", "update"];
    let mut rules = vec![
        // Sign-in provisions SsoUsers and records what the IdP said; the watch drives
        // revocation. Only this namespace: a Role, not a ClusterRole.
        rule(
            &[gatehouse_crds::GROUP],
            &[&ssousers, &format!("{ssousers}/status")],
            &rw,
        ),
        // Audit trail of sign-ins and denials on the SsoUser.
        rule(&["", "events.k8s.io"], &["events"], &["create", "patch"]),
    ];
    if spec.provisioning_mode() == ProvisioningMode::Scim {
        // The identity provider deletes the users it pushed (SCIM DELETE); the sidecar deletes
        // only SsoUsers labelled as SCIM's, but RBAC cannot select by label.
        rules.push(rule(&[gatehouse_crds::GROUP], &[&ssousers], &["delete"]));
    }
    let role = Role {
        metadata: config.metadata(sa_name.clone(), COMPONENT_IDENTITY),
        rules: Some(rules),
    };

    let role_binding = RoleBinding {
        metadata: config.metadata(sa_name.clone(), COMPONENT_IDENTITY),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: sa_name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: sa_name.clone(),
            namespace: Some(config.namespace.clone()),
            ..Subject::default()
        }]),
    };

    let mut token_meta = config.metadata(names::token_secret(&config.name), COMPONENT_IDENTITY);
    token_meta.annotations = Some(BTreeMap::from([(
        "kubernetes.io/service-account.name".to_string(),
        sa_name.clone(),
    )]));
    let token_secret = Secret {
        metadata: token_meta,
        type_: Some("kubernetes.io/service-account-token".into()),
        ..Secret::default()
    };

    let network_policy_enabled = spec
        .network_policy
        .as_ref()
        .and_then(|n| n.enabled)
        .unwrap_or(true);
    let network_policy = network_policy_enabled.then(|| NetworkPolicy {
        metadata: config.metadata(sa_name.clone(), COMPONENT_NETWORK_POLICY),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    LABEL_INJECT.to_string(),
                    config.name.clone(),
                )])),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(network_policy_ingress(spec)),
            ..NetworkPolicySpec::default()
        }),
    });

    let token_review_binding = wants_token_review(spec).then(|| ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(names::token_review_binding(&config.namespace, &config.name)),
            labels: Some({
                let mut labels = config.labels(COMPONENT_TOKEN_REVIEW);
                labels.insert(LABEL_CONFIG_NAMESPACE.into(), config.namespace.clone());
                labels
            }),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_CONFIG_UID.to_string(),
                config.uid.clone(),
            )])),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: AUTH_DELEGATOR.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: sa_name.clone(),
            namespace: Some(config.namespace.clone()),
            ..Subject::default()
        }]),
    });

    Desired {
        env_secret,
        cookie_secret,
        service_account,
        role,
        role_binding,
        token_secret,
        network_policy,
        token_review_binding,
    }
}

/// Whether the config checks ServiceAccount tokens with the API server's TokenReview API.
pub fn wants_token_review(spec: &SsoConfigSpec) -> bool {
    spec.machine_auth
        .as_ref()
        .and_then(|m| m.kubernetes.as_ref())
        .is_some_and(|k| k.mode == Some(gatehouse_crds::access::KubernetesAuthMode::TokenReview))
}

/// Ingress of injected pods, by port name so a sidecar moved by an allowed pod override is still
/// admitted: the sidecar's port from anywhere (the app's own port stays unreachable around it),
/// and its admin port from the sources `spec.networkPolicy.adminFrom` names, if any (metrics).
fn network_policy_ingress(spec: &SsoConfigSpec) -> Vec<NetworkPolicyIngressRule> {
    let port = |name: &str| NetworkPolicyPort {
        protocol: Some("TCP".into()),
        port: Some(IntOrString::String(name.into())),
        ..NetworkPolicyPort::default()
    };
    let mut ingress = vec![NetworkPolicyIngressRule {
        ports: Some(vec![port(SIDECAR_PORT_NAME)]),
        ..NetworkPolicyIngressRule::default()
    }];
    let admin_from = spec
        .network_policy
        .as_ref()
        .map(|n| n.admin_from.clone())
        .unwrap_or_default();
    if !admin_from.is_empty() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(admin_from),
            ports: Some(vec![port(ADMIN_PORT_NAME)]),
        });
    }
    ingress
}

fn cookie_secret(config: &ConfigRef, key: &str) -> Secret {
    Secret {
        metadata: config.metadata(names::cookie_secret(&config.name), COMPONENT_COOKIE),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            COOKIE_SECRET_KEY.to_string(),
            ByteString(key.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// `<config>-gatehouse-saml-sp`: the SAML SP's signing keys ([`crate::sp_key`]). Created and
/// rotated by the controller with the Secret's `resourceVersion`, never applied over.
pub fn saml_sp_secret(config: &ConfigRef, keys: &crate::sp_key::SpKeys) -> Secret {
    Secret {
        metadata: config.metadata(names::saml_sp_secret(&config.name), COMPONENT_SAML_SP),
        type_: Some("Opaque".into()),
        data: Some(
            keys.to_data()
                .into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        verbs: owned(verbs),
        ..PolicyRule::default()
    }
}

/// `publicUrl` without a trailing slash: URLs derived from it append absolute paths.
pub fn public_base(spec: &SsoConfigSpec) -> &str {
    spec.public_url.trim_end_matches('/')
}

/// The sidecar's environment for the active protocol only (variable names of
/// [`gatehouse_crds::env`]). Unset optional settings are left out rather than rendered empty.
pub fn sidecar_env(
    config: &ConfigRef,
    spec: &SsoConfigSpec,
    secrets: &ResolvedSecrets,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut set = |name: &str, value: &str| {
        vars.insert(name.to_string(), value.to_string());
    };

    set(env::GATEHOUSE_PUBLIC_URL, public_base(spec));
    set(env::GATEHOUSE_CONFIG, &config.name);
    set(env::GATEHOUSE_CONFIG_UID, &config.uid);
    set(env::GATEHOUSE_NAMESPACE, &config.namespace);
    set(env::GATEHOUSE_PROVISIONING, "kubernetes");
    let provisioning = spec.provisioning.clone().unwrap_or_default();
    set(
        env::GATEHOUSE_PROVISIONING_MODE,
        provisioning.mode.unwrap_or(ProvisioningMode::Jit).as_str(),
    );
    if let Some(hook) = &provisioning.hook_path {
        set(env::GATEHOUSE_PROVISION_HOOK, hook);
    }
    if let Some(scim) = &secrets.scim {
        set(env::SCIM_TOKEN, scim.token.expose());
        if let Some(previous) = &scim.previous {
            set(env::SCIM_PREVIOUS_TOKEN, previous.expose());
        }
    }
    set(
        env::GATEHOUSE_AUTH_MODE,
        spec.auth_mode.unwrap_or(AuthMode::Required).as_str(),
    );
    // Written as the sidecar reads durations (`1.5h` becomes `1h30m`); validation has checked
    // that the CRD's Go-style duration parses.
    let ttl = spec.session.as_ref().and_then(|s| s.ttl.as_deref());
    let ttl = ttl
        .and_then(gatehouse_crds::rules::parse_go_duration)
        .map(gatehouse_crds::rules::duration_env);
    set(
        env::GATEHOUSE_SESSION_TTL,
        ttl.as_deref().unwrap_or(DEFAULT_SESSION_TTL),
    );
    if !spec.skip_auth.is_empty() {
        set(env::GATEHOUSE_SKIP_AUTH, &spec.skip_auth.join(","));
    }
    if let Some(path) = &spec.app_login_path {
        set(env::GATEHOUSE_APP_LOGIN_PATH, path);
    }
    if !spec.attribute_mappings.is_empty() {
        let mappings = spec
            .attribute_mappings
            .iter()
            .map(|(claim, attribute)| format!("{claim}={attribute}"))
            .collect::<Vec<_>>()
            .join(",");
        set(env::GATEHOUSE_ATTRIBUTE_MAPPINGS, &mappings);
    }
    // The policy as JSON in the CRD's own shape: the sidecar reads it with the same types.
    if let Some(access) = &spec.access {
        let json = serde_json::to_string(access).unwrap_or_default();
        set(env::GATEHOUSE_ACCESS, &json);
    }
    if let Some(machine) = spec
        .machine_auth
        .as_ref()
        .filter(|m| !m.issuers.is_empty() || m.kubernetes.is_some())
    {
        let json = serde_json::to_string(machine).unwrap_or_default();
        set(env::GATEHOUSE_MACHINE_AUTH, &json);
    }
    let port = spec
        .upstream
        .as_ref()
        .and_then(|u| u.port)
        .unwrap_or(DEFAULT_UPSTREAM_PORT);
    set(env::GATEHOUSE_UPSTREAM, &format!("http://127.0.0.1:{port}"));
    if let Some(max) = spec
        .upstream
        .as_ref()
        .and_then(|u| u.max_request_body.as_deref())
    {
        set(env::GATEHOUSE_MAX_REQUEST_BODY, max);
    }
    // Durations as the sidecar reads them; unset ones keep the sidecar's defaults.
    let session = spec.session.clone().unwrap_or_default();
    let timeouts = spec.timeouts.clone().unwrap_or_default();
    for (var, value) in [
        (
            env::GATEHOUSE_REVOCATION_STALENESS,
            session.revocation_staleness.as_deref(),
        ),
        (
            env::GATEHOUSE_REVALIDATE_INTERVAL,
            session.revalidate_interval.as_deref(),
        ),
        (
            env::GATEHOUSE_REVALIDATE_GRACE,
            session.revalidate_grace.as_deref(),
        ),
        (
            env::GATEHOUSE_REQUEST_BODY_TIMEOUT,
            timeouts.request_body.as_deref(),
        ),
        (env::GATEHOUSE_SEND_TIMEOUT, timeouts.send.as_deref()),
        (
            env::GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT,
            timeouts.upstream_response.as_deref(),
        ),
    ] {
        if let Some(duration) = value.and_then(gatehouse_crds::rules::parse_go_duration) {
            set(var, &gatehouse_crds::rules::duration_env(duration));
        }
    }
    let cookie = match &secrets.cookie_keys {
        CookieKeys::Referenced(keys) | CookieKeys::Generated(keys) => keys.expose(),
        CookieKeys::ToGenerate => GENERATED_PLACEHOLDER,
    };
    set(env::GATEHOUSE_COOKIE_SECRET, cookie);

    match spec.protocol {
        Protocol::Oidc => {
            if let Some(exclusive) = &spec.exclusive_provider {
                set(env::AUTH_EXCLUSIVE_PROVIDER, exclusive);
            }
            let providers = spec.providers.as_ref();
            if let (Some(okta), Some(creds)) =
                (providers.and_then(|p| p.okta.as_ref()), &secrets.okta)
            {
                set(env::OKTA_CLIENT_ID, &creds.client_id);
                set(env::OKTA_CLIENT_SECRET, creds.client_secret.expose());
                set(env::OKTA_ISSUER, &okta.issuer);
                set(env::OKTA_ORG_ID, &okta.org_id);
                if let Some(claim) = &okta.groups_claim {
                    set(env::OKTA_GROUPS_CLAIM, claim);
                }
            }
            if let (Some(entra), Some(creds)) =
                (providers.and_then(|p| p.entra.as_ref()), &secrets.entra)
            {
                set(env::ENTRA_CLIENT_ID, &creds.client_id);
                set(env::ENTRA_CLIENT_SECRET, creds.client_secret.expose());
                set(env::ENTRA_TENANT_ID, &entra.tenant_id);
                set(env::ENTRA_ORG_ID, &entra.org_id);
                if let Some(claim) = &entra.groups_claim {
                    set(env::ENTRA_GROUPS_CLAIM, claim);
                }
                if let Some(issuer) = &entra.issuer {
                    set(env::ENTRA_ISSUER, issuer);
                }
                if let Some(graph) = &entra.graph_url {
                    set(env::ENTRA_GRAPH_URL, graph);
                }
                if let Some(overage) = entra.group_overage {
                    set(env::ENTRA_GROUP_OVERAGE, overage.as_str());
                }
            }
            // The first generic provider keeps the plain `OIDC_*` names (a config with one
            // renders what it always did); provider n ≥ 2 renders `OIDC_<n>_*`.
            let generic = providers.map_or(&[][..], |p| p.oidc.as_slice());
            for (index, oidc) in generic.iter().enumerate() {
                let Some(Some(creds)) = secrets.oidc.get(index) else {
                    continue;
                };
                let slot = index + 1;
                let mut put = |name: &str, value: &str| set(&env::oidc_slot_var(name, slot), value);
                put(env::OIDC_PROVIDER_ID, &oidc.id);
                put(env::OIDC_PROVIDER_NAME, &oidc.display_name);
                put(env::OIDC_CLIENT_ID, &creds.client_id);
                put(env::OIDC_CLIENT_SECRET, creds.client_secret.expose());
                put(env::OIDC_ISSUER, &oidc.issuer);
                put(env::OIDC_ORG_ID, &oidc.org_id);
                if let Some(claim) = &oidc.groups_claim {
                    put(env::OIDC_GROUPS_CLAIM, claim);
                }
                // The claim only matters to the rules: without any, the sidecar reads a claim
                // it has no use for as a mistake, and `defaultRole` alone decides.
                if !oidc.role_map.is_empty() {
                    put(env::OIDC_ROLE_CLAIM, &oidc.role_claim);
                    put(env::OIDC_ROLE_MAP, &role_map_env(&oidc.role_map));
                }
                if let Some(role) = oidc.default_role {
                    put(env::OIDC_DEFAULT_ROLE, role.as_str());
                }
            }
        }
        Protocol::Saml => {
            if let Some(saml) = &spec.saml {
                if let Some(url) = &saml.idp_metadata_url {
                    set(env::SAML_IDP_METADATA_URL, url);
                }
                if let Some(xml) = &secrets.saml_metadata {
                    set(env::SAML_IDP_METADATA, xml);
                }
                let urls = saml_urls(spec);
                set(
                    env::SAML_SP_ENTITY_ID,
                    &urls.map(|u| u.entity_id).unwrap_or_default(),
                );
                set(env::SAML_ROLE_ATTRIBUTE, &saml.role_attribute);
                if !saml.role_map.is_empty() {
                    set(env::SAML_ROLE_MAP, &role_map_env(&saml.role_map));
                }
                if let Some(role) = saml.default_role {
                    set(env::SAML_DEFAULT_ROLE, role.as_str());
                }
                set(env::SAML_ORG_ID, &saml.org_id);
                if let Some(attribute) = &saml.groups_attribute {
                    set(env::SAML_GROUPS_ATTRIBUTE, attribute);
                }
                if saml.allow_sha1 == Some(true) {
                    set(env::SAML_ALLOW_SHA1, "true");
                }
                if let Some(keys) = &secrets.saml_sp {
                    set(env::SAML_SP_SIGNING_KEY, keys.signing.key.expose());
                    set(env::SAML_SP_SIGNING_CERT, &keys.published_certs());
                }
            }
        }
    }
    vars
}

/// SHA-256 of the rendered environment (names and values, in order), hex. Changes whenever any
/// value does, so a pod template annotated with it rolls on rotation.
pub fn content_hash(vars: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in vars {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Redirect (callback) URL to register at each configured OIDC provider, by provider id; empty
/// when the active protocol is SAML.
pub fn callback_urls(spec: &SsoConfigSpec) -> BTreeMap<String, String> {
    oidc_urls(spec, OIDC_CALLBACK_PREFIX)
}

/// Back-channel logout URL (`backchannel_logout_uri`) to register at each configured OIDC
/// provider, by provider id; empty when the active protocol is SAML.
pub fn backchannel_logout_urls(spec: &SsoConfigSpec) -> BTreeMap<String, String> {
    oidc_urls(spec, OIDC_BACKCHANNEL_LOGOUT_PREFIX)
}

/// `<public URL><prefix><provider id>` for each configured OIDC provider.
fn oidc_urls(spec: &SsoConfigSpec, prefix: &str) -> BTreeMap<String, String> {
    let mut urls = BTreeMap::new();
    if spec.protocol != Protocol::Oidc {
        return urls;
    }
    let base = public_base(spec);
    let Some(p) = &spec.providers else {
        return urls;
    };
    let ids = [
        p.okta.as_ref().map(|_| PROVIDER_OKTA.to_string()),
        p.entra.as_ref().map(|_| PROVIDER_ENTRA.to_string()),
    ];
    let generic = p.oidc.iter().map(|o| Some(o.id.clone()));
    for id in ids.into_iter().chain(generic).flatten() {
        urls.insert(id.clone(), format!("{base}{prefix}{id}"));
    }
    urls
}

/// SAML URLs to register at the IdP; `None` unless the active protocol is SAML.
pub fn saml_urls(spec: &SsoConfigSpec) -> Option<SamlUrls> {
    let saml = spec
        .saml
        .as_ref()
        .filter(|_| spec.protocol == Protocol::Saml)?;
    Some(SamlUrls::for_origin(
        public_base(spec),
        saml.sp_entity_id.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{ClientCredentials, SecretValue};

    fn spec(yaml: &str) -> SsoConfigSpec {
        serde_saphyr::from_str::<SsoConfig>(yaml)
            .expect("fixture parses")
            .spec
    }

    fn portal() -> ConfigRef {
        ConfigRef {
            name: "portal".into(),
            namespace: "team-a".into(),
            uid: "6a1f7c2e-0000-4000-8000-000000000001".into(),
        }
    }

    fn creds(id: &str) -> Option<ClientCredentials> {
        Some(ClientCredentials {
            client_id: format!("{id}-client"),
            client_secret: SecretValue::new(format!("{id}-s3cret")),
        })
    }

    fn resolved() -> ResolvedSecrets {
        ResolvedSecrets {
            okta: creds("okta"),
            entra: creds("entra"),
            oidc: vec![creds("auth0")],
            saml_metadata: None,
            cookie_keys: CookieKeys::Generated(SecretValue::new("a2V5")),
            saml_sp: None,
            scim: None,
        }
    }

    const ALL_PROVIDERS: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal, namespace: team-a}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com/
  exclusiveProvider: okta
  authMode: optional
  providers:
    okta: {issuer: 'https://acme.okta.com', orgId: acme-okta, clientSecretRef: {name: portal-okta}}
    entra: {tenantId: contoso.onmicrosoft.com, orgId: acme-entra, clientSecretRef: {name: portal-entra}}
    oidc:
      - id: auth0
        displayName: Auth0
        issuer: https://acme.us.auth0.com/
        orgId: acme-auth0
        roleClaim: groups
        roleMap: [{value: portal-admins, role: admin}, {value: portal-staff, role: member}]
        defaultRole: member
        clientSecretRef: {name: portal-auth0}
  saml: {idpMetadataUrl: 'https://idp.example/m', roleAttribute: memberOf, orgId: acme}
  attributeMappings: {department: dept, locale: lang}
  provisioning: {mode: preDeclared, hookPath: /internal/sso}
  session: {ttl: 8h}
  upstream: {port: 3000, maxRequestBody: 512Mi}
  skipAuth: [/healthz, /static/]
  appLoginPath: /users/sign_in
"#;

    fn vars_of(yaml: &str, secrets: &ResolvedSecrets) -> BTreeMap<String, String> {
        sidecar_env(&portal(), &spec(yaml), secrets)
    }

    #[test]
    fn oidc_env_carries_every_provider_and_no_saml() {
        let vars = vars_of(ALL_PROVIDERS, &resolved());
        let expect = [
            ("GATEHOUSE_PUBLIC_URL", "https://portal.example.com"),
            ("GATEHOUSE_CONFIG", "portal"),
            (
                "GATEHOUSE_CONFIG_UID",
                "6a1f7c2e-0000-4000-8000-000000000001",
            ),
            ("GATEHOUSE_NAMESPACE", "team-a"),
            ("GATEHOUSE_PROVISIONING", "kubernetes"),
            ("GATEHOUSE_PROVISIONING_MODE", "preDeclared"),
            ("GATEHOUSE_PROVISION_HOOK", "/internal/sso"),
            ("GATEHOUSE_AUTH_MODE", "optional"),
            ("GATEHOUSE_SESSION_TTL", "8h"),
            ("GATEHOUSE_SKIP_AUTH", "/healthz,/static/"),
            ("GATEHOUSE_APP_LOGIN_PATH", "/users/sign_in"),
            (
                "GATEHOUSE_ATTRIBUTE_MAPPINGS",
                "department=dept,locale=lang",
            ),
            ("GATEHOUSE_UPSTREAM", "http://127.0.0.1:3000"),
            ("GATEHOUSE_MAX_REQUEST_BODY", "512Mi"),
            ("GATEHOUSE_COOKIE_SECRET", "a2V5"),
            ("AUTH_EXCLUSIVE_PROVIDER", "okta"),
            ("OKTA_CLIENT_ID", "okta-client"),
            ("OKTA_CLIENT_SECRET", "okta-s3cret"),
            ("OKTA_ISSUER", "https://acme.okta.com"),
            ("OKTA_ORG_ID", "acme-okta"),
            ("ENTRA_CLIENT_ID", "entra-client"),
            ("ENTRA_CLIENT_SECRET", "entra-s3cret"),
            ("ENTRA_TENANT_ID", "contoso.onmicrosoft.com"),
            ("ENTRA_ORG_ID", "acme-entra"),
            ("OIDC_PROVIDER_ID", "auth0"),
            ("OIDC_PROVIDER_NAME", "Auth0"),
            ("OIDC_CLIENT_ID", "auth0-client"),
            ("OIDC_CLIENT_SECRET", "auth0-s3cret"),
            ("OIDC_ISSUER", "https://acme.us.auth0.com/"),
            ("OIDC_ORG_ID", "acme-auth0"),
            ("OIDC_ROLE_CLAIM", "groups"),
            (
                "OIDC_ROLE_MAP",
                r#"[{"value":"portal-admins","role":"admin"},{"value":"portal-staff","role":"member"}]"#,
            ),
            ("OIDC_DEFAULT_ROLE", "member"),
        ];
        let expect: BTreeMap<String, String> = expect
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(vars, expect);
    }

    /// Provider 1 keeps the plain names (what a single-provider config always rendered); 2 and 3
    /// render `OIDC_2_*` and `OIDC_3_*` with their own Secret's credentials.
    #[test]
    fn further_generic_providers_render_numbered_variables() {
        let yaml = ALL_PROVIDERS.replacen(
            "  saml: {",
            "      - {id: google, displayName: Google, issuer: 'https://accounts.google.com', orgId: acme-google, roleClaim: hd, roleMap: [{value: acme.example, role: member}], clientSecretRef: {name: portal-google}}\n      - {id: keycloak, displayName: Keycloak, issuer: 'https://kc.example/realms/a', orgId: acme-kc, roleClaim: groups, defaultRole: admin, groupsClaim: groups, clientSecretRef: {name: portal-keycloak}}\n  saml: {",
            1,
        );
        let single = vars_of(ALL_PROVIDERS, &resolved());
        let mut secrets = resolved();
        secrets.oidc.push(creds("google"));
        secrets.oidc.push(creds("keycloak"));
        let vars = vars_of(&yaml, &secrets);
        // Provider 1's variables are exactly the single-provider ones.
        for (name, value) in &single {
            assert_eq!(vars.get(name), Some(value), "{name}");
        }
        let numbered: BTreeMap<&str, &str> = vars
            .iter()
            .filter(|(k, _)| !single.contains_key(*k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            numbered,
            BTreeMap::from([
                ("OIDC_2_PROVIDER_ID", "google"),
                ("OIDC_2_PROVIDER_NAME", "Google"),
                ("OIDC_2_CLIENT_ID", "google-client"),
                ("OIDC_2_CLIENT_SECRET", "google-s3cret"),
                ("OIDC_2_ISSUER", "https://accounts.google.com"),
                ("OIDC_2_ORG_ID", "acme-google"),
                ("OIDC_2_ROLE_CLAIM", "hd"),
                (
                    "OIDC_2_ROLE_MAP",
                    r#"[{"value":"acme.example","role":"member"}]"#
                ),
                ("OIDC_3_PROVIDER_ID", "keycloak"),
                ("OIDC_3_PROVIDER_NAME", "Keycloak"),
                ("OIDC_3_CLIENT_ID", "keycloak-client"),
                ("OIDC_3_CLIENT_SECRET", "keycloak-s3cret"),
                ("OIDC_3_ISSUER", "https://kc.example/realms/a"),
                ("OIDC_3_ORG_ID", "acme-kc"),
                ("OIDC_3_GROUPS_CLAIM", "groups"),
                ("OIDC_3_DEFAULT_ROLE", "admin"),
            ])
        );
        assert!(
            vars.keys()
                .all(|k| env::all_rendered_variables().contains(&k.as_str()))
        );
        let urls = callback_urls(&spec(&yaml));
        assert_eq!(
            urls.keys().map(String::as_str).collect::<Vec<_>>(),
            ["auth0", "entra", "google", "keycloak", "okta"]
        );
    }

    #[test]
    fn saml_env_has_no_oidc_variables() {
        let yaml = ALL_PROVIDERS
            .replace("protocol: oidc", "protocol: saml")
            .replace("  exclusiveProvider: okta\n", "");
        let vars = vars_of(&yaml, &resolved());
        assert!(
            !vars.keys().any(|k| k.starts_with("OKTA_")
                || k.starts_with("ENTRA_")
                || k.starts_with("OIDC_")
                || k == "AUTH_EXCLUSIVE_PROVIDER"),
            "{vars:?}"
        );
        assert_eq!(vars["SAML_IDP_METADATA_URL"], "https://idp.example/m");
        assert_eq!(
            vars["SAML_SP_ENTITY_ID"],
            "https://portal.example.com/api/auth/saml/metadata"
        );
        assert_eq!(vars["SAML_ROLE_ATTRIBUTE"], "memberOf");
        assert_eq!(vars["SAML_ORG_ID"], "acme");
        assert!(!vars.contains_key("SAML_IDP_METADATA"));
        assert_eq!(callback_urls(&spec(&yaml)), BTreeMap::new());
        let urls = saml_urls(&spec(&yaml)).expect("saml urls");
        assert_eq!(urls.acs_url, "https://portal.example.com/api/auth/saml/acs");
    }

    #[test]
    fn saml_allow_sha1_is_rendered_only_when_on() {
        let saml = ALL_PROVIDERS
            .replace("protocol: oidc", "protocol: saml")
            .replace("  exclusiveProvider: okta\n", "");
        let with = |allow: &str| {
            vars_of(
                &saml.replace("orgId: acme}", &format!("orgId: acme{allow}}}")),
                &resolved(),
            )
        };
        assert_eq!(
            with(", allowSha1: true").get(env::SAML_ALLOW_SHA1),
            Some(&"true".to_owned())
        );
        assert_eq!(with(", allowSha1: false").get(env::SAML_ALLOW_SHA1), None);
        assert_eq!(with("").get(env::SAML_ALLOW_SHA1), None);
        // An inactive SAML block renders nothing, its opt-in included.
        let oidc = vars_of(
            &ALL_PROVIDERS.replace("orgId: acme}", "orgId: acme, allowSha1: true}"),
            &resolved(),
        );
        assert!(!oidc.contains_key(env::SAML_ALLOW_SHA1), "{oidc:?}");
    }

    #[test]
    fn oidc_config_has_no_saml_variables_or_urls() {
        let vars = vars_of(ALL_PROVIDERS, &resolved());
        assert!(!vars.keys().any(|k| k.starts_with("SAML_")), "{vars:?}");
        assert_eq!(saml_urls(&spec(ALL_PROVIDERS)), None);
        let urls = callback_urls(&spec(ALL_PROVIDERS));
        assert_eq!(
            urls.into_iter().collect::<Vec<_>>(),
            [
                (
                    "auth0".to_string(),
                    "https://portal.example.com/api/auth/oauth2/callback/auth0".to_string()
                ),
                (
                    "entra".to_string(),
                    "https://portal.example.com/api/auth/oauth2/callback/entra".to_string()
                ),
                (
                    "okta".to_string(),
                    "https://portal.example.com/api/auth/oauth2/callback/okta".to_string()
                ),
            ]
        );
    }

    #[test]
    fn backchannel_logout_urls_follow_the_oidc_providers() {
        let urls = backchannel_logout_urls(&spec(ALL_PROVIDERS));
        assert_eq!(
            urls.get("okta").map(String::as_str),
            Some("https://portal.example.com/api/auth/oauth2/backchannel-logout/okta")
        );
        assert_eq!(
            urls.keys().collect::<Vec<_>>(),
            callback_urls(&spec(ALL_PROVIDERS))
                .keys()
                .collect::<Vec<_>>()
        );
        let saml = ALL_PROVIDERS
            .replace("protocol: oidc", "protocol: saml")
            .replace("  exclusiveProvider: okta\n", "");
        assert_eq!(backchannel_logout_urls(&spec(&saml)), BTreeMap::new());
    }

    #[test]
    fn defaults_fill_unset_settings() {
        let minimal = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com
  providers:
    okta: {issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {name: portal-okta}}
"#;
        let mut secrets = resolved();
        secrets.cookie_keys = CookieKeys::ToGenerate;
        let vars = vars_of(minimal, &secrets);
        assert_eq!(vars["GATEHOUSE_UPSTREAM"], "http://127.0.0.1:8080");
        assert_eq!(vars["GATEHOUSE_SESSION_TTL"], "12h");
        assert_eq!(vars["GATEHOUSE_AUTH_MODE"], "required");
        assert_eq!(vars["GATEHOUSE_PROVISIONING_MODE"], "jit");
        assert_eq!(vars["GATEHOUSE_COOKIE_SECRET"], GENERATED_PLACEHOLDER);
        for unset in [
            "GATEHOUSE_SKIP_AUTH",
            "AUTH_EXCLUSIVE_PROVIDER",
            "GATEHOUSE_PROVISION_HOOK",
            "GATEHOUSE_MAX_REQUEST_BODY",
            "ENTRA_CLIENT_ID",
        ] {
            assert!(!vars.contains_key(unset), "{unset} is left out");
        }
    }

    #[test]
    fn owned_objects_carry_owner_and_labels() {
        let desired = build(&portal(), &spec(ALL_PROVIDERS), &resolved());
        let metas = [
            &desired.env_secret.metadata,
            &desired
                .cookie_secret
                .as_ref()
                .expect("generated cookie")
                .metadata,
            &desired.service_account.metadata,
            &desired.role.metadata,
            &desired.role_binding.metadata,
            &desired.token_secret.metadata,
            &desired
                .network_policy
                .as_ref()
                .expect("on by default")
                .metadata,
        ];
        for meta in metas {
            let owner = &meta.owner_references.as_ref().expect("owned")[0];
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str()),
                ("SsoConfig", "portal")
            );
            assert_eq!(owner.uid, portal().uid);
            assert_eq!(owner.controller, Some(true));
            assert_eq!(
                meta.labels.as_ref().expect("labels")[LABEL_CONFIG],
                "portal"
            );
            assert_eq!(meta.namespace.as_deref(), Some("team-a"));
        }
        assert_eq!(
            desired.env_secret.metadata.name.as_deref(),
            Some("portal-gatehouse-env")
        );
        let hash = &desired
            .env_secret
            .metadata
            .annotations
            .as_ref()
            .expect("hash")[gatehouse_crds::consts::ANNOTATION_CONFIG_HASH];
        assert_eq!(hash.len(), 64);

        // Rotation changes the hash.
        let mut rotated = resolved();
        rotated.okta = creds("rotated");
        let again = build(&portal(), &spec(ALL_PROVIDERS), &rotated);
        assert_ne!(
            again.env_secret.metadata.annotations,
            desired.env_secret.metadata.annotations
        );
    }

    #[test]
    fn role_is_limited_to_ssousers_and_events() {
        let desired = build(&portal(), &spec(ALL_PROVIDERS), &resolved());
        let rules = desired.role.rules.expect("rules");
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].api_groups.as_deref(),
            Some(&["gatehouse.dev".to_string()][..])
        );
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["ssousers".to_string(), "ssousers/status".to_string()][..])
        );
        assert!(!rules[0].verbs.contains(&"delete".to_string()));
        assert_eq!(
            rules[1].resources.as_deref(),
            Some(&["events".to_string()][..])
        );
        assert_eq!(rules[1].verbs, ["create", "patch"]);
        let subject = &desired.role_binding.subjects.expect("subject")[0];
        assert_eq!(subject.name, "portal-gatehouse");
        assert_eq!(
            desired.token_secret.type_.as_deref(),
            Some("kubernetes.io/service-account-token")
        );
    }

    const SCIM: &str =
        "  provisioning: {mode: scim, scim: {tokenSecretRef: {name: portal-scim}}}\n";

    fn scim_spec() -> SsoConfigSpec {
        spec(&format!(
            "{}{SCIM}",
            ALL_PROVIDERS.replace(
                "  provisioning: {mode: preDeclared, hookPath: /internal/sso}\n",
                ""
            )
        ))
    }

    fn scim_resolved(previous: Option<&str>) -> ResolvedSecrets {
        ResolvedSecrets {
            scim: Some(crate::secrets::ScimTokens {
                token: SecretValue::new("scim-token-0123456789"),
                previous: previous.map(SecretValue::new),
            }),
            ..resolved()
        }
    }

    #[test]
    fn scim_mode_renders_its_tokens_and_lets_the_sidecar_delete_ssousers() {
        let spec = scim_spec();
        let vars = sidecar_env(&portal(), &spec, &scim_resolved(None));
        assert_eq!(vars[env::GATEHOUSE_PROVISIONING_MODE], "scim");
        assert_eq!(vars[env::SCIM_TOKEN], "scim-token-0123456789");
        assert!(!vars.contains_key(env::SCIM_PREVIOUS_TOKEN));
        let vars = sidecar_env(
            &portal(),
            &spec,
            &scim_resolved(Some("scim-old-0123456789")),
        );
        assert_eq!(vars[env::SCIM_PREVIOUS_TOKEN], "scim-old-0123456789");

        let desired = build(&portal(), &spec, &scim_resolved(None));
        let rules = desired.role.rules.expect("rules");
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[2].resources.as_deref(),
            Some(&["ssousers".to_string()][..]),
            "delete on the objects only, not on their status"
        );
        assert_eq!(rules[2].verbs, ["delete"]);
        assert!(!rules[0].verbs.contains(&"delete".to_string()));
        // Every other mode: no delete at all.
        for yaml in [
            ALL_PROVIDERS.to_owned(),
            ALL_PROVIDERS.replace("mode: preDeclared, ", ""),
        ] {
            let desired = build(&portal(), &self::spec(&yaml), &resolved());
            let rules = desired.role.rules.expect("rules");
            assert!(
                rules
                    .iter()
                    .all(|r| !r.verbs.contains(&"delete".to_string())),
                "{rules:?}"
            );
        }
    }

    #[test]
    fn scim_url_and_provider_follow_the_spec() {
        let spec = scim_spec();
        assert_eq!(
            spec.scim_url().as_deref(),
            Some("https://portal.example.com/api/auth/scim/v2")
        );
        assert_eq!(
            spec.scim_provider().as_deref(),
            Some("okta"),
            "exclusiveProvider"
        );
        assert_eq!(self::spec(ALL_PROVIDERS).scim_url(), None);
        assert_eq!(self::spec(ALL_PROVIDERS).scim_provider(), None);
    }

    #[test]
    fn network_policy_admits_only_the_sidecar_port_and_can_be_disabled() {
        let desired = build(&portal(), &spec(ALL_PROVIDERS), &resolved());
        let np = desired
            .network_policy
            .expect("on by default")
            .spec
            .expect("spec");
        assert_eq!(
            np.pod_selector
                .expect("selector")
                .match_labels
                .expect("labels")[LABEL_INJECT],
            "portal"
        );
        let ingress = np.ingress.expect("ingress");
        assert_eq!(ingress.len(), 1);
        assert!(ingress[0].from.is_none());
        let ports = ingress[0].ports.as_ref().expect("ports");
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, Some(IntOrString::String("gatehouse".into())));
        // The admin port (metrics) is admitted only from the sources the spec names.
        let scraped = ALL_PROVIDERS.replace(
            "  upstream:",
            "  networkPolicy: {adminFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]}\n  upstream:",
        );
        let ingress = build(&portal(), &spec(&scraped), &resolved())
            .network_policy
            .and_then(|np| np.spec)
            .and_then(|np| np.ingress)
            .expect("ingress");
        assert_eq!(ingress.len(), 2);
        assert!(ingress[0].from.is_none());
        let admin = &ingress[1];
        assert_eq!(
            admin.ports.as_ref().expect("ports")[0].port,
            Some(IntOrString::String("gatehouse-admin".into()))
        );
        let from = admin.from.as_ref().expect("from");
        assert_eq!(
            from[0]
                .namespace_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .expect("labels")["kubernetes.io/metadata.name"],
            "monitoring"
        );
        let off = ALL_PROVIDERS.replace(
            "  upstream:",
            "  networkPolicy: {enabled: false}\n  upstream:",
        );
        assert!(
            build(&portal(), &spec(&off), &resolved())
                .network_policy
                .is_none()
        );
    }

    #[test]
    fn only_token_review_mode_binds_the_sidecar_to_auth_delegator() {
        let jwks = spec(&format!(
            "{ALL_PROVIDERS}  machineAuth:\n    kubernetes: {{audiences: [a/b], serviceAccounts: [{{name: ci/deployer, role: admin}}]}}\n"
        ));
        assert!(!wants_token_review(&jwks));
        assert!(
            build(&portal(), &jwks, &resolved())
                .token_review_binding
                .is_none()
        );
        assert!(
            build(&portal(), &spec(ALL_PROVIDERS), &resolved())
                .token_review_binding
                .is_none()
        );

        let reviewed = spec(&format!(
            "{ALL_PROVIDERS}  machineAuth:\n    kubernetes: {{mode: TokenReview, audiences: [a/b]}}\n"
        ));
        assert!(wants_token_review(&reviewed));
        let binding = build(&portal(), &reviewed, &resolved())
            .token_review_binding
            .expect("binding");
        let meta = &binding.metadata;
        assert_eq!(
            meta.name.as_deref(),
            Some("gatehouse-token-review.team-a.portal")
        );
        // Cluster-scoped: no namespace, no owner reference (the finalizer removes it); what it
        // is for is in its labels and annotation.
        assert!(meta.namespace.is_none() && meta.owner_references.is_none());
        let labels = meta.labels.as_ref().expect("labels");
        assert_eq!(labels[LABEL_CONFIG], "portal");
        assert_eq!(labels[LABEL_CONFIG_NAMESPACE], "team-a");
        assert_eq!(labels[LABEL_COMPONENT], COMPONENT_TOKEN_REVIEW);
        assert_eq!(
            meta.annotations.as_ref().expect("annotations")[ANNOTATION_CONFIG_UID],
            portal().uid
        );
        assert_eq!(
            (
                binding.role_ref.kind.as_str(),
                binding.role_ref.name.as_str()
            ),
            ("ClusterRole", AUTH_DELEGATOR)
        );
        let subjects = binding.subjects.expect("subjects");
        assert_eq!(subjects.len(), 1);
        assert_eq!(
            (
                subjects[0].kind.as_str(),
                subjects[0].name.as_str(),
                subjects[0].namespace.as_deref()
            ),
            ("ServiceAccount", "portal-gatehouse", Some("team-a"))
        );
    }

    #[test]
    fn token_review_binding_names_fit_and_never_collide() {
        let long = "c".repeat(253);
        let name = names::token_review_binding("team-a", &long);
        assert!(name.len() <= 253, "{name}");
        assert_ne!(name, names::token_review_binding("team-b", &long));
        // A namespace has no dot, so the dot between the two parts is unambiguous.
        assert_ne!(
            names::token_review_binding("a-b", "c"),
            names::token_review_binding("a", "b-c")
        );
    }
}
