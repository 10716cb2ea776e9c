//! The environment contract, both halves at once: for every shipped example, the env Secret the
//! operator renders (Secrets resolved as the reconciler resolves them, with the generated cookie
//! key) is read by the sidecar's own configuration parser, and what the sidecar understood matches
//! the SsoConfig. Then the same for generated SsoConfigs: whatever the operator's validation
//! accepts, the CRD's schema and CEL rules accept too, and the sidecar runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gatehouse_auth::claims::RolePolicy;
use gatehouse_crds::{Protocol, ProvisioningMode};
use gatehouse_operator::desired::{self, ConfigRef};
use gatehouse_operator::{names, render, secrets};
use gatehouse_sidecar::config::ProvisioningMode as SidecarProvisioning;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The env Secret's variables for each SsoConfig of `file`, as the operator would apply them.
fn rendered_env(file: &PathBuf) -> Vec<(gatehouse_crds::SsoConfig, BTreeMap<String, String>)> {
    let input = render::read_inputs(std::slice::from_ref(file))
        .unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
    input
        .configs
        .iter()
        .map(|sourced| {
            let config = &sourced.config;
            let name = config.metadata.name.clone().expect("name");
            let namespace = config.metadata.namespace.clone().expect("namespace");
            let mut namespace_secrets = input.secrets.get(&namespace).cloned().unwrap_or_default();
            // The reconciler's generated cookie Secret (created once, never overwritten).
            namespace_secrets.insert(
                names::cookie_secret(&name),
                Secret {
                    metadata: ObjectMeta {
                        name: Some(names::cookie_secret(&name)),
                        namespace: Some(namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([(
                        secrets::COOKIE_SECRET_KEY.to_owned(),
                        ByteString(secrets::generate_cookie_key().expose().as_bytes().to_vec()),
                    )])),
                    ..Secret::default()
                },
            );
            let resolved =
                secrets::resolve(&name, &config.spec, &namespace_secrets, "in the example")
                    .unwrap_or_else(|p| panic!("{}: {p:?}", file.display()));
            let config_ref = ConfigRef {
                name,
                namespace,
                uid: "2b3c4d5e-0000-4000-8000-00000000000a".into(),
            };
            let desired = desired::build(&config_ref, &config.spec, &resolved);
            let env = desired
                .env_secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8(v.0).expect("utf-8 value")))
                .collect();
            (config.clone(), env)
        })
        .collect()
}

#[test]
fn every_example_renders_an_environment_the_sidecar_accepts() {
    let mut checked = 0;
    let mut saml_checked = 0;
    let mut several_checked = 0;
    let mut scim_checked = 0;
    for file in examples() {
        for (config, env) in rendered_env(&file) {
            let shown = format!(
                "{} (SsoConfig {})",
                file.display(),
                config.metadata.name.as_deref().unwrap_or("")
            );
            // The sidecar compares exactly these with its mounted copy to notice a change.
            for key in env.keys() {
                assert!(
                    gatehouse_crds::env::all_rendered_variables().contains(&key.as_str()),
                    "{shown}: {key} is rendered but missing from env::all_rendered_variables()"
                );
            }
            let lookup = |name: &str| env.get(name).cloned();
            let parsed = gatehouse_sidecar::Config::from_source(&lookup);
            let sidecar = parsed
                .unwrap_or_else(|e| panic!("{shown}: the sidecar refused the rendered env: {e}"));
            checked += 1;

            assert_eq!(
                sidecar.provisioning,
                SidecarProvisioning::Kubernetes,
                "{shown}"
            );
            assert_eq!(
                sidecar.user_provisioning,
                config
                    .spec
                    .provisioning
                    .as_ref()
                    .and_then(|p| p.mode)
                    .unwrap_or(ProvisioningMode::Jit),
                "{shown}"
            );
            assert_eq!(
                Some(sidecar.config_name.as_str()),
                config.metadata.name.as_deref(),
                "{shown}"
            );
            assert_eq!(
                Some(sidecar.namespace.as_str()),
                config.metadata.namespace.as_deref(),
                "{shown}"
            );
            assert_eq!(
                sidecar.config_uid.as_deref(),
                Some("2b3c4d5e-0000-4000-8000-00000000000a"),
                "{shown}"
            );
            assert_eq!(
                sidecar.public_origin(),
                config.spec.public_url.trim_end_matches('/'),
                "{shown}"
            );
            let mappings: Vec<(String, String)> = config
                .spec
                .attribute_mappings
                .iter()
                .map(|(c, a)| (c.clone(), a.clone()))
                .collect();
            assert_eq!(sidecar.attribute_mappings, mappings, "{shown}");
            assert_eq!(sidecar.skip_auth, config.spec.skip_auth, "{shown}");
            assert_eq!(
                sidecar.app_login_path, config.spec.app_login_path,
                "{shown}"
            );
            assert_eq!(
                sidecar.exclusive_provider, config.spec.exclusive_provider,
                "{shown}"
            );
            let port = config
                .spec
                .upstream
                .as_ref()
                .and_then(|u| u.port)
                .unwrap_or(gatehouse_crds::consts::DEFAULT_UPSTREAM_PORT);
            assert_eq!(sidecar.upstream.port_u16(), Some(port), "{shown}");
            let max_body = match config
                .spec
                .upstream
                .as_ref()
                .and_then(|u| u.max_request_body.as_deref())
            {
                Some(size) => {
                    let (number, shift) = [("Ki", 10), ("Mi", 20), ("Gi", 30)]
                        .into_iter()
                        .find_map(|(unit, shift)| Some((size.strip_suffix(unit)?, shift)))
                        .expect("the CRD allows Ki, Mi and Gi");
                    number.parse::<u64>().expect("digits") << shift
                }
                None => gatehouse_sidecar::config::DEFAULT_MAX_REQUEST_BODY,
            };
            assert_eq!(sidecar.max_request_body, max_body, "{shown}");
            assert_durations_carried_over(&config.spec, &sidecar, &shown);
            match (&sidecar.scim, config.spec.scim_provider()) {
                (None, None) => {}
                (Some(scim), Some(provider)) => {
                    scim_checked += 1;
                    assert_eq!(scim.provider, provider, "{shown}");
                    assert_eq!(
                        scim.tokens.first().map(String::as_str),
                        env.get(gatehouse_crds::env::SCIM_TOKEN).map(String::as_str),
                        "{shown}"
                    );
                }
                (read, provider) => panic!("{shown}: sidecar {read:?}, spec {provider:?}"),
            }

            if config.spec.protocol == Protocol::Saml {
                saml_checked += 1;
                let spec = config.spec.saml.as_ref().expect("saml block");
                let saml = sidecar.saml.as_ref().expect("SAML is active");
                assert!(sidecar.providers.is_empty(), "{shown}: no OIDC provider");
                assert_eq!(
                    saml.sp_entity_id,
                    spec.sp_entity_id.clone().unwrap_or_else(|| format!(
                        "{}/api/auth/saml/metadata",
                        sidecar.public_origin()
                    )),
                    "{shown}"
                );
                assert_eq!(
                    saml.acs_url,
                    format!("{}/api/auth/saml/acs", sidecar.public_origin()),
                    "{shown}"
                );
                assert_eq!(saml.org_id, spec.org_id, "{shown}");
                assert_eq!(
                    saml.algorithms.allow_sha1,
                    spec.allow_sha1.unwrap_or(false),
                    "{shown}"
                );
                match &saml.roles {
                    RolePolicy::Claim {
                        claim,
                        rules,
                        default,
                    } => {
                        assert_eq!(claim.as_deref(), Some(spec.role_attribute.as_str()));
                        assert_eq!(rules, &spec.role_map, "{shown}: every rule, in order");
                        assert_eq!(*default, spec.default_role, "{shown}");
                    }
                    other => panic!("{shown}: {other:?}"),
                }
                continue;
            }
            assert!(sidecar.saml.is_none(), "{shown}");
            let providers = config.spec.providers.as_ref().expect("oidc providers");
            let mut expected: Vec<String> = Vec::new();
            if providers.okta.is_some() {
                expected.push("okta".into());
            }
            if providers.entra.is_some() {
                expected.push("entra".into());
            }
            for oidc in &providers.oidc {
                expected.push(oidc.id.clone());
            }
            let got: Vec<String> = sidecar.providers.iter().map(|p| p.id.clone()).collect();
            assert_eq!(
                got, expected,
                "{shown}: every configured provider is enabled"
            );
            // Each generic provider reaches the sidecar with its own values: provider n from
            // its own numbered variables.
            for (index, oidc) in providers.oidc.iter().enumerate() {
                let slot = index + 1;
                let read = sidecar
                    .providers
                    .iter()
                    .find(|p| p.id == oidc.id)
                    .expect("enabled");
                assert_eq!(read.display_name, oidc.display_name, "{shown}");
                assert_eq!(read.issuer, oidc.issuer, "{shown}");
                assert_eq!(read.org_id, oidc.org_id, "{shown}");
                assert_eq!(
                    read.client_secret.var,
                    gatehouse_crds::env::oidc_slot_var(
                        gatehouse_crds::env::OIDC_CLIENT_SECRET,
                        slot
                    ),
                    "{shown}"
                );
                if let RolePolicy::Claim { rules, default, .. } = &read.roles {
                    assert_eq!(rules, &oidc.role_map, "{shown}: {}", oidc.id);
                    assert_eq!(*default, oidc.default_role, "{shown}: {}", oidc.id);
                }
            }
            if providers.oidc.len() >= 3 {
                several_checked += 1;
            }
        }
    }
    assert!(saml_checked >= 1, "the SAML example was checked");
    assert!(
        scim_checked >= 1,
        "the SCIM example (scim.yaml) was checked"
    );
    assert!(
        several_checked >= 1,
        "an example with three generic providers (several-oidc.yaml) was checked"
    );
    assert!(
        checked >= 5,
        "the OIDC examples were all checked ({checked})"
    );
}

/// Each shared rule's known hard cases, rendered and read back by the sidecar: the four configs
/// that once passed the CRD and crash-looped the sidecar are refused at apply time, offline and
/// by the sidecar with the same message, or accepted by both.
#[test]
fn the_once_mismatched_configs_are_decided_the_same_way_on_both_sides() {
    use gatehouse_crds::rules;
    let okta = |extra: &str| {
        format!(
            "{{apiVersion: gatehouse.dev/v1alpha2, kind: SsoConfig, metadata: {{name: portal, namespace: team-a}}, spec: {{protocol: oidc, publicUrl: 'https://portal.example.com', providers: {{okta: {{issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {{name: creds}}}}}}{extra}}}}}"
        )
    };
    let entra = |tenant: &str| {
        format!(
            "{{apiVersion: gatehouse.dev/v1alpha2, kind: SsoConfig, metadata: {{name: portal, namespace: team-a}}, spec: {{protocol: oidc, publicUrl: 'https://portal.example.com', providers: {{entra: {{tenantId: '{tenant}', orgId: acme, clientSecretRef: {{name: creds}}}}}}}}}}"
        )
    };
    let cases: Vec<(String, Option<(&str, &str)>)> = vec![
        (
            okta(", skipAuth: ['/']"),
            Some(("GATEHOUSE_SKIP_AUTH", rules::MSG_SKIP_AUTH)),
        ),
        (okta(", skipAuth: ['/@vite/client', '/healthz']"), None),
        (
            okta(", appLoginPath: /login"),
            Some(("GATEHOUSE_APP_LOGIN_PATH", rules::MSG_APP_LOGIN_PATH)),
        ),
        (okta(", appLoginPath: /users/sign_in"), None),
        (
            entra("common"),
            Some(("ENTRA_TENANT_ID", rules::MSG_TENANT_ID)),
        ),
        (entra("0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90"), None),
    ];
    for (yaml, refusal) in cases {
        let config: gatehouse_crds::SsoConfig = serde_saphyr::from_str(&yaml).expect("parses");
        let problems = gatehouse_operator::validate::validate("portal", &config.spec);
        let cel = apply_errors(&config);
        let env = render_env(&config);
        let sidecar = gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned());
        match refusal {
            None => {
                assert_eq!(problems, vec![], "{yaml}");
                assert_eq!(cel, Vec::<String>::new(), "{yaml}");
                sidecar.unwrap_or_else(|e| panic!("{yaml}: the sidecar refused: {e}"));
            }
            Some((var, message)) => {
                assert!(
                    problems.iter().any(|p| p.message == message),
                    "{yaml}: validation says {problems:?}"
                );
                assert!(
                    cel.iter().any(|e| e.contains(message)),
                    "{yaml}: the CRD says {cel:?}"
                );
                let err = sidecar.expect_err("the sidecar refuses it too");
                assert_eq!(err.to_string(), format!("{var}: {message}"), "{yaml}");
            }
        }
    }
}

/// The duration settings the sidecar runs with are the SsoConfig's, or the sidecar's defaults
/// where the SsoConfig sets none.
fn assert_durations_carried_over(
    spec: &gatehouse_crds::SsoConfigSpec,
    sidecar: &gatehouse_sidecar::Config,
    shown: &str,
) {
    use gatehouse_crds::rules::parse_go_duration;
    use std::time::Duration;
    let given = |value: Option<&String>| {
        value.map(|v| {
            let d = parse_go_duration(v).expect("validated");
            // The sidecar reads milliseconds at the finest.
            Duration::from_millis(u64::try_from(d.as_millis()).expect("small"))
        })
    };
    let session = spec.session.clone().unwrap_or_default();
    let timeouts = spec.timeouts.clone().unwrap_or_default();
    assert_eq!(
        sidecar.revocation_staleness,
        given(session.revocation_staleness.as_ref()).unwrap_or(Duration::from_secs(300)),
        "{shown}: revocationStaleness"
    );
    assert_eq!(
        sidecar.revalidate_interval,
        given(session.revalidate_interval.as_ref())
            .map_or(Some(Duration::from_secs(900)), |d| (!d.is_zero())
                .then_some(d)),
        "{shown}: revalidateInterval (0s is off)"
    );
    assert_eq!(
        sidecar.revalidate_grace,
        given(session.revalidate_grace.as_ref()).unwrap_or(Duration::from_secs(3600)),
        "{shown}: revalidateGrace"
    );
    assert_eq!(
        sidecar.request_body_timeout,
        given(timeouts.request_body.as_ref()).unwrap_or(Duration::from_secs(60)),
        "{shown}: timeouts.requestBody"
    );
    assert_eq!(
        sidecar.send_timeout,
        given(timeouts.send.as_ref()).unwrap_or(Duration::from_secs(60)),
        "{shown}: timeouts.send"
    );
    assert_eq!(
        sidecar.upstream_response_timeout,
        given(timeouts.upstream_response.as_ref()),
        "{shown}: timeouts.upstreamResponse (off unless set)"
    );
}

/// Each duration setting at and beyond its bounds: the operator's validation, the CRD and the
/// sidecar decide alike, with the same bounds (`rules::IO_TIMEOUT`,
/// `rules::REVOCATION_STALENESS`), and an accepted value reaches the sidecar unchanged.
#[test]
fn duration_settings_are_decided_the_same_way_on_both_sides() {
    use gatehouse_crds::rules;
    let config = |extra: &str| {
        format!(
            "{{apiVersion: gatehouse.dev/v1alpha2, kind: SsoConfig, metadata: {{name: portal, namespace: team-a}}, spec: {{protocol: oidc, publicUrl: 'https://portal.example.com', providers: {{okta: {{issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {{name: creds}}}}}}, {extra}}}}}"
        )
    };
    let fields = [
        (
            "session: {revocationStaleness: VALUE}",
            "GATEHOUSE_REVOCATION_STALENESS",
            rules::MSG_REVOCATION_STALENESS,
            rules::REVOCATION_STALENESS,
        ),
        (
            "session: {revalidateGrace: VALUE}",
            "GATEHOUSE_REVALIDATE_GRACE",
            rules::MSG_REVALIDATE_GRACE,
            rules::REVALIDATE_GRACE,
        ),
        (
            "timeouts: {requestBody: VALUE}",
            "GATEHOUSE_REQUEST_BODY_TIMEOUT",
            rules::MSG_REQUEST_BODY_TIMEOUT,
            rules::IO_TIMEOUT,
        ),
        (
            "timeouts: {send: VALUE}",
            "GATEHOUSE_SEND_TIMEOUT",
            rules::MSG_SEND_TIMEOUT,
            rules::IO_TIMEOUT,
        ),
        (
            "timeouts: {upstreamResponse: VALUE}",
            "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT",
            rules::MSG_UPSTREAM_RESPONSE_TIMEOUT,
            rules::IO_TIMEOUT,
        ),
    ];
    let base: gatehouse_crds::SsoConfig =
        serde_saphyr::from_str(&config("authMode: required")).expect("parses");
    let base_env = render_env(&base);
    for (field, var, message, bounds) in fields {
        let just_over = rules::duration_env(bounds.max + std::time::Duration::from_secs(1));
        let cases = [
            (bounds.min_text.to_owned(), true),
            (bounds.max_text.to_owned(), true),
            ("1m30s".to_owned(), true),
            ("1.5m".to_owned(), true),
            ("999ms".to_owned(), false),
            (just_over, false),
            ("0".to_owned(), false),
        ];
        for (value, accepted) in cases {
            let yaml = config(&field.replace("VALUE", &format!("'{value}'")));
            let config: gatehouse_crds::SsoConfig = serde_saphyr::from_str(&yaml).expect("parses");
            let problems = gatehouse_operator::validate::validate("portal", &config.spec);
            let cel = apply_errors(&config);
            if accepted {
                assert_eq!(problems, vec![], "{yaml}");
                assert_eq!(cel, Vec::<String>::new(), "{yaml}");
                let env = render_env(&config);
                let sidecar =
                    gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned())
                        .unwrap_or_else(|e| panic!("{yaml}: the sidecar refused: {e}"));
                assert!(env.contains_key(var), "{yaml}: {var} rendered");
                assert_durations_carried_over(&config.spec, &sidecar, &yaml);
            } else {
                assert!(
                    problems.iter().any(|p| p.message == message),
                    "{yaml}: validation says {problems:?}"
                );
                // The rule's message, or the schema's pattern for what is no duration at all.
                assert!(
                    cel.iter()
                        .any(|e| e.contains(message) || e.contains("does not match")),
                    "{yaml}: the CRD says {cel:?}"
                );
                // The sidecar, given the same value by hand, refuses it too.
                let mut env = base_env.clone();
                env.insert(var.to_owned(), value.clone());
                let err =
                    gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned())
                        .expect_err("the sidecar refuses it too");
                assert!(
                    err.to_string().starts_with(&format!("{var}: ")),
                    "{value}: {err}"
                );
            }
        }
    }
}

/// `revalidateInterval` takes `rules::REVALIDATE_INTERVAL` or `0s` (off): the operator's
/// validation, the CRD and the sidecar decide alike, and the sidecar runs with what was set.
#[test]
fn revalidate_interval_is_decided_the_same_way_on_both_sides_and_0s_is_off() {
    use gatehouse_crds::rules;
    let cases = [
        ("0s", Some(None)),
        ("0m", Some(None)),
        ("0", None),
        ("1s", Some(Some(1))),
        ("15m", Some(Some(900))),
        ("24h", Some(Some(24 * 3600))),
        ("999ms", None),
        ("24h0m1s", None),
        ("-1s", None),
    ];
    for (value, expected) in cases {
        let yaml = format!(
            "{{apiVersion: gatehouse.dev/v1alpha2, kind: SsoConfig, metadata: {{name: portal, namespace: team-a}}, spec: {{protocol: oidc, publicUrl: 'https://portal.example.com', providers: {{okta: {{issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {{name: creds}}}}}}, session: {{revalidateInterval: '{value}'}}}}}}"
        );
        let config: gatehouse_crds::SsoConfig = serde_saphyr::from_str(&yaml).expect("parses");
        let problems = gatehouse_operator::validate::validate("portal", &config.spec);
        let cel = apply_errors(&config);
        let env = render_env(&config);
        let sidecar = gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned());
        match expected {
            Some(interval) => {
                assert_eq!(problems, vec![], "{yaml}");
                assert_eq!(cel, Vec::<String>::new(), "{yaml}");
                let sidecar = sidecar.unwrap_or_else(|e| panic!("{yaml}: {e}"));
                assert_eq!(
                    sidecar.revalidate_interval,
                    interval.map(std::time::Duration::from_secs),
                    "{yaml}"
                );
            }
            None => {
                assert!(
                    problems
                        .iter()
                        .any(|p| p.message == rules::MSG_REVALIDATE_INTERVAL),
                    "{yaml}: {problems:?}"
                );
                assert!(
                    cel.iter()
                        .any(|e| e.contains(rules::MSG_REVALIDATE_INTERVAL)
                            || e.contains("does not match")),
                    "{yaml}: {cel:?}"
                );
                if value == "0" {
                    // Unit-less zero is refused by the schema's pattern; the sidecar reads it
                    // as off, which is what it means.
                    continue;
                }
                let mut env = env.clone();
                env.insert("GATEHOUSE_REVALIDATE_INTERVAL".to_owned(), value.to_owned());
                let err =
                    gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned())
                        .expect_err("the sidecar refuses it too");
                assert!(
                    err.to_string()
                        .starts_with("GATEHOUSE_REVALIDATE_INTERVAL: "),
                    "{err}"
                );
            }
        }
    }
}

/// `spec.saml.allowSha1`: the operator renders `SAML_ALLOW_SHA1=true` only when it is true, the
/// sidecar reads exactly that as the opt-in (and unset as SHA-2 only), and refuses a value that is
/// neither `true` nor `false` with one line naming the variable.
#[test]
fn saml_allow_sha1_is_decided_the_same_way_on_both_sides() {
    let config = |extra: &str| {
        format!(
            "{{apiVersion: gatehouse.dev/v1alpha2, kind: SsoConfig, metadata: {{name: hr, namespace: team-a}}, spec: {{protocol: saml, publicUrl: 'https://hr.example.com', saml: {{idpMetadataUrl: 'https://idp.example.com/m', roleAttribute: memberOf, defaultRole: member, orgId: acme{extra}}}}}}}"
        )
    };
    for (extra, rendered, allowed) in [
        (", allowSha1: true", Some("true"), true),
        (", allowSha1: false", None, false),
        ("", None, false),
    ] {
        let yaml = config(extra);
        let config: gatehouse_crds::SsoConfig = serde_saphyr::from_str(&yaml).expect("parses");
        assert_eq!(
            gatehouse_operator::validate::validate("hr", &config.spec),
            vec![],
            "{yaml}"
        );
        assert_eq!(apply_errors(&config), Vec::<String>::new(), "{yaml}");
        let env = render_env(&config);
        assert_eq!(
            env.get("SAML_ALLOW_SHA1").map(String::as_str),
            rendered,
            "{yaml}"
        );
        let sidecar = gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned())
            .unwrap_or_else(|e| panic!("{yaml}: the sidecar refused: {e}"));
        let saml = sidecar.saml.expect("SAML is active");
        assert_eq!(saml.algorithms.allow_sha1, allowed, "{yaml}");
    }
    // By hand: `false` is the default spelled out; anything else is refused.
    let base = render_env(&serde_saphyr::from_str(&config("")).expect("parses"));
    for (value, allowed) in [
        ("false", Some(false)),
        ("true", Some(true)),
        ("yes", None),
        ("TRUE", None),
        ("1", None),
    ] {
        let mut env = base.clone();
        env.insert("SAML_ALLOW_SHA1".to_owned(), value.to_owned());
        match gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned()) {
            Ok(sidecar) => assert_eq!(
                sidecar.saml.map(|s| s.algorithms.allow_sha1),
                allowed,
                "{value}"
            ),
            Err(e) => {
                assert_eq!(allowed, None, "{value}: refused: {e}");
                assert!(e.to_string().starts_with("SAML_ALLOW_SHA1: "), "{e}");
            }
        }
    }
}

/// `provisioning.mode: scim`: the operator's validation, the CRD and the sidecar agree on which
/// configs run (one provider, or several with `exclusiveProvider`) and on the pushed users'
/// provider; a token too short is refused by the operator (reading the Secret) and by the
/// sidecar with the same words, never the value.
#[test]
fn scim_mode_is_decided_the_same_way_on_both_sides() {
    let config = |providers: &str, exclusive: &str| {
        format!(
            "{{apiVersion: gatehouse.dev/v1alpha2, kind: SsoConfig, metadata: {{name: desk, namespace: team-a}}, spec: {{protocol: oidc, publicUrl: 'https://desk.example.com'{exclusive}, providers: {{{providers}}}, provisioning: {{mode: scim, scim: {{tokenSecretRef: {{name: creds}}}}}}}}}}"
        )
    };
    let okta =
        "okta: {issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {name: creds}}";
    let entra =
        "entra: {tenantId: contoso.onmicrosoft.com, orgId: acme, clientSecretRef: {name: creds}}";
    for (providers, exclusive, provider) in [
        (okta.to_owned(), "", Some("okta")),
        (entra.to_owned(), "", Some("entra")),
        (
            format!("{okta}, {entra}"),
            ", exclusiveProvider: entra",
            Some("entra"),
        ),
        (format!("{okta}, {entra}"), "", None),
    ] {
        let yaml = config(&providers, exclusive);
        let config: gatehouse_crds::SsoConfig = serde_saphyr::from_str(&yaml).expect("parses");
        let problems = gatehouse_operator::validate::validate("desk", &config.spec);
        let applied = apply_errors(&config);
        let Some(provider) = provider else {
            let message = gatehouse_crds::rules::MSG_SCIM_ONE_PROVIDER;
            assert!(
                problems.iter().any(|p| p.message == message),
                "{yaml}: {problems:?}"
            );
            assert!(
                applied.iter().any(|e| e.contains(message)),
                "{yaml}: {applied:?}"
            );
            continue;
        };
        assert_eq!(problems, vec![], "{yaml}");
        assert_eq!(applied, Vec::<String>::new(), "{yaml}");
        let env = render_env(&config);
        assert_eq!(env[gatehouse_crds::env::SCIM_TOKEN], SCIM_TOKEN, "{yaml}");
        let sidecar = gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned())
            .unwrap_or_else(|e| panic!("{yaml}: the sidecar refused: {e}"));
        let scim = sidecar.scim.expect("scim mode");
        assert_eq!(scim.provider, provider, "{yaml}");
        assert_eq!(scim.tokens, [SCIM_TOKEN], "{yaml}");
        assert_eq!(config.spec.scim_provider().as_deref(), Some(provider));

        // By hand, a short token: refused with the rule's words on both sides.
        let mut short = env.clone();
        short.insert(
            gatehouse_crds::env::SCIM_TOKEN.to_owned(),
            "too-short".to_owned(),
        );
        let e = gatehouse_sidecar::Config::from_source(&|name: &str| short.get(name).cloned())
            .map(|_| ())
            .expect_err("too short");
        assert_eq!(
            e.to_string(),
            format!("SCIM_TOKEN: {}", gatehouse_crds::rules::MSG_SCIM_TOKEN)
        );
    }
}

const SCIM_TOKEN: &str = "scim-token-for-the-contract-test";

/// The env Secret's variables for `config`, every referenced Secret present (`client-id`,
/// `client-secret`, SCIM's `token`) and the cookie key generated, as the reconciler would apply
/// them.
fn render_env(config: &gatehouse_crds::SsoConfig) -> BTreeMap<String, String> {
    let name = config.metadata.name.clone().expect("name");
    let namespace = config.metadata.namespace.clone().expect("namespace");
    let secret = |secret_name: &str, data: &[(&str, &str)]| {
        (
            secret_name.to_owned(),
            Secret {
                metadata: ObjectMeta {
                    name: Some(secret_name.to_owned()),
                    namespace: Some(namespace.clone()),
                    ..ObjectMeta::default()
                },
                data: Some(
                    data.iter()
                        .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                        .collect(),
                ),
                ..Secret::default()
            },
        )
    };
    let cookie = secrets::generate_cookie_key();
    let namespace_secrets: secrets::SecretMap = [
        secret(
            "creds",
            &[
                ("client-id", "the-client"),
                ("client-secret", "s3cr3t-value"),
                ("token", SCIM_TOKEN),
            ],
        ),
        secret(
            &names::cookie_secret(&name),
            &[(secrets::COOKIE_SECRET_KEY, cookie.expose())],
        ),
    ]
    .into_iter()
    .collect();
    let resolved = secrets::resolve(&name, &config.spec, &namespace_secrets, "in the test")
        .unwrap_or_else(|p| panic!("{p:?}"));
    let config_ref = ConfigRef {
        name,
        namespace,
        uid: "2b3c4d5e-0000-4000-8000-00000000000a".into(),
    };
    desired::build(&config_ref, &config.spec, &resolved)
        .env_secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).expect("utf-8 value")))
        .collect()
}

/// What the API server would say when `config` is created: structural schema errors, then the
/// CEL rules' messages (kube's client-side CEL evaluator, as `crds/tests/crd_schema.rs` uses it).
/// Empty means accepted.
fn apply_errors(config: &gatehouse_crds::SsoConfig) -> Vec<String> {
    use kube::CustomResourceExt;
    use std::sync::OnceLock;
    static SCHEMA: OnceLock<(serde_json::Value, jsonschema::Validator)> = OnceLock::new();
    let (schema, structural) = SCHEMA.get_or_init(|| {
        let crd = gatehouse_crds::SsoConfig::crd();
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema"),
        )
        .expect("serializes");
        let structural = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&schema)
            .expect("a valid JSON schema");
        (schema, structural)
    });
    let object = serde_json::to_value(config).expect("serializes");
    let mut errors: Vec<String> = structural
        .iter_errors(&object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty()
        && let Err(cel) = kube::core::cel::Validator::new().validate(schema, &object, None)
    {
        errors.extend(
            cel.into_vec()
                .into_iter()
                .map(|e| format!("{}: {}", e.field_path, e.message)),
        );
    }
    errors
}

mod generated {
    use super::*;
    use gatehouse_crds::{
        AuthMode, ClientSecretRef, EntraProvider, GroupOverage, OidcProvider, OktaProvider,
        Providers, ProvisioningSpec, Role, RoleRule, SessionSpec, SsoConfig, SsoConfigSpec,
        TimeoutsSpec, UpstreamSpec,
    };
    use proptest::prelude::*;
    use proptest::sample::select;

    /// Paths: the shapes each rule decides on, the characters that once split the two sides
    /// (`@`, `:`, `;`, `,`, `%`, spaces, non-ASCII), and random mixes of them.
    fn path() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => select(vec![
                "/healthz", "/public/", "/@vite/client", "/a..b", "/.well-known/a", "/login/sso",
                "/users/sign_in", "/a:b@c!$&'()*+=~", "/api/authors", "/x/y/",
            ])
            .prop_map(str::to_owned),
            1 => select(vec![
                "/", "/login", "/api/auth", "/api/auth/session", "/a/../b", "/./a", "//x", "/x;y",
                "/x%41", "/x,y", "/x y", "/café", "/x?y", "/x#y", "x",
            ])
            .prop_map(str::to_owned),
            1 => "/[a-z@:;,.%~!$&'()*+=?# /é-]{0,8}",
        ]
    }

    fn issuer() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => select(vec![
                "https://acme.okta.com", "https://acme.okta.com/", "https://acme.okta.com/oauth2/default",
                "https://idp.example:8443/realms/a", "http://127.0.0.1:4444/", "http://localhost:8080",
                "http://[::1]:9000",
            ])
            .prop_map(str::to_owned),
            1 => select(vec![
                "http://keycloak.dev.svc", "https://acme.okta.com?x=1", "https://acme.okta.com/#f",
                " https://acme.okta.com", "https://acme.okta.com\t", "https://", "acme.okta.com",
                "ftp://acme.okta.com", "https://a b.example", "HTTP://LOCALHOST:1/",
            ])
            .prop_map(str::to_owned),
            1 => "(https?)://[a-z.]{1,6}(:[0-9]{1,4})?(/[a-z?#]{0,4})?",
        ]
    }

    /// Free text the sidecar trims: ordinary values, and whitespace or control characters at
    /// either end or inside.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[a-zA-Z0-9][a-zA-Z0-9 ._=-]{0,6}[a-zA-Z0-9]",
            1 => "[ \t\u{a0}a-z,=\n\u{0}]{0,4}",
        ]
    }

    /// A role-map value: free text, or an LDAP group DN (commas and `=` inside).
    fn role_value() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => text(),
            1 => "cn=[a-z-]{1,6},ou=[a-z]{1,5},dc=example,dc=com",
            1 => Just("CN=HR Admins,OU=Groups,DC=corp,DC=example".to_owned()),
        ]
    }

    fn role() -> impl Strategy<Value = Role> {
        select(vec![Role::Admin, Role::Member])
    }

    fn creds() -> ClientSecretRef {
        ClientSecretRef {
            name: "creds".into(),
            client_id_key: None,
            client_secret_key: None,
            namespace: None,
        }
    }

    /// A groups claim: usually a claim name or dotted path, sometimes one the contract refuses.
    fn groups_claim() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            3 => select(vec!["groups", "realm_access.groups", "cognito:groups"]).prop_map(str::to_owned),
            1 => select(vec!["https://acme.example/groups", " groups", "1groups", "a b"]).prop_map(str::to_owned),
        ])
    }

    fn okta() -> impl Strategy<Value = OktaProvider> {
        (issuer(), text(), groups_claim()).prop_map(|(issuer, org_id, groups_claim)| OktaProvider {
            issuer,
            org_id,
            groups_claim,
            client_secret_ref: creds(),
        })
    }

    fn entra() -> impl Strategy<Value = EntraProvider> {
        let tenant = prop_oneof![
            4 => select(vec!["0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90", "acme.onmicrosoft.com"])
                .prop_map(str::to_owned),
            1 => select(vec![
                "0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90", "acme.onmicrosoft.com", "common",
                "Common", "organizations", "consumers", "-acme", "a_b", "",
            ])
            .prop_map(str::to_owned),
            1 => "[a-zA-Z0-9.-]{1,10}",
        ];
        let graph = proptest::option::of(select(vec![
            "https://graph.microsoft.us",
            "https://graph.microsoft.com/",
            "http://graph.example.com",
            "https://graph.example.com?x=1",
            "https://user@graph.example.com",
            "graph.microsoft.com",
            "",
        ]));
        let overage = proptest::option::of(select(vec![
            GroupOverage::Delegated,
            GroupOverage::Application,
        ]));
        (
            tenant,
            proptest::option::of(issuer()),
            text(),
            graph,
            overage,
        )
            .prop_map(|(tenant_id, issuer, org_id, graph_url, group_overage)| {
                EntraProvider {
                    tenant_id,
                    issuer,
                    org_id,
                    groups_claim: None,
                    graph_url: graph_url.map(str::to_owned),
                    group_overage,
                    client_secret_ref: creds(),
                }
            })
    }

    fn oidc() -> impl Strategy<Value = OidcProvider> {
        let id = prop_oneof![
            4 => Just("auth0".to_owned()),
            1 => select(vec!["okta", "entra", "saml", "all", "Auth0", "-x", "a".repeat(33).leak()])
                .prop_map(str::to_owned),
            2 => "[a-z0-9-]{1,6}",
            2 => select(vec!["ab", "x1", "google"]).prop_map(str::to_owned),
        ];
        let rules = proptest::collection::vec((role_value(), role()), 0..3).prop_map(|rules| {
            rules
                .into_iter()
                .map(|(value, role)| RoleRule { value, role })
                .collect::<Vec<_>>()
        });
        (
            id,
            text(),
            issuer(),
            text(),
            text(),
            rules,
            proptest::option::of(role()),
        )
            .prop_map(
                |(id, display_name, issuer, org_id, role_claim, role_map, default_role)| {
                    OidcProvider {
                        id,
                        display_name,
                        issuer,
                        org_id,
                        role_claim,
                        role_map,
                        default_role,
                        groups_claim: None,
                        client_secret_ref: creds(),
                    }
                },
            )
    }

    fn spec() -> impl Strategy<Value = SsoConfigSpec> {
        let public_url = prop_oneof![
            4 => select(vec![
                "https://portal.example.com", "https://portal.example.com/", "http://localhost:8080",
                "https://portal.example.com:8443",
            ]),
            1 => select(vec![
                "http://portal.example.com", "https://portal.example.com/app", "https://portal.example.com?x",
                "https://u:p@portal.example.com", "https://portal.example.com\t",
            ]),
        ]
        .prop_map(str::to_owned);
        let providers = (
            proptest::option::of(okta()),
            proptest::option::of(entra()),
            proptest::collection::vec(oidc(), 0..4),
        )
            .prop_map(|(okta, entra, oidc)| Providers { okta, entra, oidc });
        let exclusive = proptest::option::of(
            select(vec!["okta", "entra", "auth0", "all", "x1", "ab"]).prop_map(str::to_owned),
        );
        let mappings =
            proptest::collection::btree_map("[a-z_.:0-9-]{1,4}", "[a-z_.0-9-]{1,3}", 0..3);
        let ttl = proptest::option::of(
            select(vec![
                "12h", "1.5h", "1h30m", "5m", "4m", "720h", "721h", "300000ms", "5m0.5s", "90m",
                "1h0m1s", "forever", "12",
            ])
            .prop_map(str::to_owned),
        );
        // Durations around each setting's bounds (1s…1h, 1s…24h), in Go's spellings.
        let duration = || {
            proptest::option::of(
                select(vec![
                    "1s",
                    "60s",
                    "1m30s",
                    "1.5m",
                    "1h",
                    "3600.5s",
                    "61m",
                    "24h",
                    "25h",
                    "999ms",
                    "1500ms",
                    "0",
                    "0s",
                    "5",
                    "soon",
                    "-1s",
                    "1h0m0.001s",
                ])
                .prop_map(str::to_owned),
            )
        };
        let session = (ttl, duration(), duration(), duration()).prop_map(
            |(ttl, revocation_staleness, revalidate_interval, revalidate_grace)| {
                (ttl.is_some()
                    || revocation_staleness.is_some()
                    || revalidate_interval.is_some()
                    || revalidate_grace.is_some())
                .then_some(SessionSpec {
                    ttl,
                    cookie_secret_ref: None,
                    revocation_staleness,
                    revalidate_interval,
                    revalidate_grace,
                })
            },
        );
        let timeouts = (duration(), duration(), duration()).prop_map(
            |(request_body, send, upstream_response)| {
                (request_body.is_some() || send.is_some() || upstream_response.is_some()).then_some(
                    TimeoutsSpec {
                        request_body,
                        send,
                        upstream_response,
                    },
                )
            },
        );
        let upstream = (
            proptest::option::of(select(vec![1u16, 80, 3000, 4180, 9090, 8080, 65535, 0])),
            proptest::option::of(
                select(vec!["64Mi", "1Ki", "999999Gi", "0Mi", "64MB", "512Ki"])
                    .prop_map(str::to_owned),
            ),
        )
            .prop_map(|(port, max_request_body)| UpstreamSpec {
                port,
                max_request_body,
            });
        let provisioning = (
            proptest::option::of(select(vec![
                gatehouse_crds::ProvisioningMode::Jit,
                gatehouse_crds::ProvisioningMode::PreDeclared,
            ])),
            proptest::option::of(path()),
        )
            .prop_map(|(mode, hook_path)| ProvisioningSpec {
                mode,
                hook_path,
                delete_after_inactive: None,
                // scim mode has its own test (`scim_mode_is_decided_the_same_way_on_both_sides`).
                scim: None,
            });
        (
            (
                public_url,
                proptest::option::of(any::<bool>()),
                exclusive,
                proptest::option::of(select(vec![AuthMode::Required, AuthMode::Optional])),
                providers,
            ),
            (
                mappings,
                proptest::option::of(provisioning),
                (session, timeouts),
                proptest::option::of(upstream),
                proptest::collection::vec(path(), 0..3),
                proptest::option::of(path()),
            ),
        )
            .prop_map(
                |(
                    (public_url, allow_insecure_http, exclusive_provider, auth_mode, providers),
                    (
                        attribute_mappings,
                        provisioning,
                        (session, timeouts),
                        upstream,
                        skip_auth,
                        app_login_path,
                    ),
                )| SsoConfigSpec {
                    public_url,
                    allow_insecure_http,
                    exclusive_provider,
                    auth_mode,
                    providers: Some(providers),
                    attribute_mappings,
                    provisioning,
                    session,
                    timeouts,
                    upstream,
                    skip_auth,
                    app_login_path,
                    ..SsoConfigSpec::default()
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            // Most generated specs are invalid; keep going until enough valid ones were checked.
            max_global_rejects: 1_000_000,
            ..ProptestConfig::default()
        })]

        /// Every spec the operator's validation accepts is accepted at apply time by the CRD's
        /// schema and CEL rules, and renders an environment the sidecar's `Config` accepts.
        #[test]
        fn what_the_operator_accepts_the_sidecar_runs(spec in spec()) {
            let mut config = SsoConfig::new("portal", spec);
            config.metadata.namespace = Some("team-a".into());
            let problems = gatehouse_operator::validate::validate("portal", &config.spec);
            prop_assume!(problems.is_empty());
            let refused = apply_errors(&config);
            prop_assert!(
                refused.is_empty(),
                "validation accepted what the CRD refuses: {refused:?}\n{:#?}",
                config.spec
            );
            let env = render_env(&config);
            let sidecar = gatehouse_sidecar::Config::from_source(&|name: &str| env.get(name).cloned());
            prop_assert!(
                sidecar.is_ok(),
                "the sidecar refused what the operator accepted: {}\n{:#?}",
                sidecar.as_ref().err().map(ToString::to_string).unwrap_or_default(),
                config.spec
            );
            if let Ok(sidecar) = &sidecar {
                assert_durations_carried_over(&config.spec, sidecar, "generated");
            }
        }
    }
}
