//! `Config::from_source` end to end: defaults, every section's errors (each names its variable,
//! on one line, without secrets), secrets from files, and the sign-in methods.

use super::*;
use gatehouse_auth::claims::{Role, RolePolicy};
use gatehouse_crds::rules;
use std::collections::HashMap;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SECRET: &str = "s3cr3t-client-value";

fn base() -> HashMap<&'static str, String> {
    HashMap::from([
        ("GATEHOUSE_PUBLIC_URL", "https://app.example.com".to_owned()),
        ("GATEHOUSE_COOKIE_SECRET", KEY.to_owned()),
        ("OKTA_CLIENT_ID", "client".to_owned()),
        ("OKTA_CLIENT_SECRET", SECRET.to_owned()),
        ("OKTA_ISSUER", "https://acme.okta.com".to_owned()),
        ("OKTA_ORG_ID", "acme".to_owned()),
    ])
}

fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
    let lookup = |k: &str| vars.get(k).cloned();
    Config::from_source(&lookup)
}

fn err(vars: &HashMap<&'static str, String>) -> ConfigError {
    match load(vars) {
        Ok(_) => panic!("config unexpectedly valid"),
        Err(e) => e,
    }
}

#[test]
fn revalidation_defaults_to_every_15m_with_an_hour_of_grace_and_0s_turns_it_off() {
    let config = load(&base()).expect("valid");
    assert_eq!(config.revalidate_interval, Some(Duration::from_secs(900)));
    assert_eq!(config.revalidate_grace, Duration::from_secs(3600));
    let mut vars = base();
    vars.insert("GATEHOUSE_REVALIDATE_INTERVAL", "0s".to_owned());
    vars.insert("GATEHOUSE_REVALIDATE_GRACE", "2m".to_owned());
    let config = load(&vars).expect("valid");
    assert_eq!(config.revalidate_interval, None);
    assert_eq!(config.revalidate_grace, Duration::from_secs(120));
    for bad in ["500ms", "25h", "soon"] {
        vars.insert("GATEHOUSE_REVALIDATE_INTERVAL", bad.to_owned());
        assert_eq!(err(&vars).var, "GATEHOUSE_REVALIDATE_INTERVAL", "{bad}");
    }
    vars.insert("GATEHOUSE_REVALIDATE_INTERVAL", "1s".to_owned());
    vars.insert("GATEHOUSE_REVALIDATE_GRACE", "169h".to_owned());
    assert_eq!(err(&vars).var, "GATEHOUSE_REVALIDATE_GRACE");
}

fn saml_base() -> HashMap<&'static str, String> {
    let mut vars = base();
    for k in [
        "OKTA_CLIENT_ID",
        "OKTA_CLIENT_SECRET",
        "OKTA_ISSUER",
        "OKTA_ORG_ID",
    ] {
        vars.remove(k);
    }
    vars.insert(
        "SAML_IDP_METADATA_URL",
        "http://127.0.0.1:9000/metadata".to_owned(),
    );
    vars.insert("SAML_ROLE_ATTRIBUTE", "memberOf".to_owned());
    vars.insert(
        "SAML_ROLE_MAP",
        r#"[{"value":"cn=hr-admins,ou=groups,dc=example,dc=com","role":"admin"},{"value":"staff","role":"member"}]"#.to_owned(),
    );
    vars.insert("SAML_ORG_ID", "acme".to_owned());
    vars
}

#[test]
fn saml_config_reads_its_variables_with_defaults() {
    let c = load(&saml_base()).expect("valid");
    assert!(c.providers.is_empty());
    assert_eq!(c.provider_ids(), ["saml"]);
    let saml = c.saml.as_ref().expect("saml");
    assert_eq!(
        saml.sp_entity_id,
        "https://app.example.com/api/auth/saml/metadata"
    );
    assert_eq!(saml.acs_url, "https://app.example.com/api/auth/saml/acs");
    assert_eq!(saml.slo_url, "https://app.example.com/api/auth/logout");
    assert_eq!(saml.org_id, "acme");
    match &saml.roles {
        RolePolicy::Claim {
            claim,
            rules,
            default,
        } => {
            assert_eq!(claim.as_deref(), Some("memberOf"));
            assert_eq!(rules[0].value, "cn=hr-admins,ou=groups,dc=example,dc=com");
            assert_eq!(rules[1].role, Role::Member);
            assert_eq!(*default, None);
        }
        other => panic!("{other:?}"),
    }
    let mut vars = saml_base();
    vars.insert("SAML_SP_ENTITY_ID", "urn:acme:portal".to_owned());
    vars.insert("AUTH_EXCLUSIVE_PROVIDER", "saml".to_owned());
    let c = load(&vars).expect("valid");
    assert_eq!(
        c.saml.as_ref().map(|s| s.sp_entity_id.as_str()),
        Some("urn:acme:portal")
    );
    assert_eq!(c.exclusive_provider.as_deref(), Some("saml"));
    assert!(
        c.summary().contains("providers saml (exclusive: saml)"),
        "{}",
        c.summary()
    );
}

#[test]
fn saml_and_oidc_together_are_refused_in_one_line_naming_both() {
    let mut vars = saml_base();
    vars.insert("OIDC_ISSUER", "https://idp.example".to_owned());
    let e = err(&vars);
    let line = e.to_string();
    assert!(line.starts_with("SAML_"), "{line}");
    assert!(line.contains("OIDC_ISSUER"), "{line}");
    assert!(
        line.contains("SAML and OIDC cannot be active together"),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

#[test]
fn saml_config_errors_name_the_variable() {
    let inline = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:IDPSSODescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#;
    let cases: [(&str, Option<&str>, &str); 7] = [
        (
            "SAML_IDP_METADATA_URL",
            Some("http://idp.example/metadata"),
            "SAML_IDP_METADATA_URL: must be https",
        ),
        (
            "SAML_IDP_METADATA_URL",
            None,
            "SAML_IDP_METADATA_URL: missing",
        ),
        (
            "SAML_IDP_METADATA",
            Some("<x/>"),
            "SAML_IDP_METADATA: set SAML_IDP_METADATA_URL or SAML_IDP_METADATA, not both",
        ),
        ("SAML_ORG_ID", None, "SAML_ORG_ID: missing"),
        (
            "SAML_ROLE_MAP",
            Some("a=owner"),
            "SAML_ROLE_MAP: entry 1: role must be",
        ),
        (
            "SAML_DEFAULT_ROLE",
            Some("root"),
            "SAML_DEFAULT_ROLE: must be",
        ),
        (
            "AUTH_EXCLUSIVE_PROVIDER",
            Some("okta"),
            "AUTH_EXCLUSIVE_PROVIDER: not an enabled provider (enabled: saml)",
        ),
    ];
    for (var, value, expected) in cases {
        let mut vars = saml_base();
        match value {
            Some(v) => vars.insert(var, v.to_owned()),
            None => vars.remove(var),
        };
        let line = err(&vars).to_string();
        assert!(line.starts_with(expected), "{var}={value:?}: got `{line}`");
    }
    // Inline metadata is parsed at start-up, with the shared parser's words.
    let mut vars = saml_base();
    vars.remove("SAML_IDP_METADATA_URL");
    vars.insert("SAML_IDP_METADATA", inline.to_owned());
    assert_eq!(
        err(&vars).to_string(),
        format!(
            "SAML_IDP_METADATA: {}",
            gatehouse_crds::saml_metadata::MetadataError::NoSigningCert
        )
    );
    // A default role alone, or with the attribute and no rules, is enough.
    let mut vars = saml_base();
    vars.remove("SAML_ROLE_MAP");
    vars.insert("SAML_DEFAULT_ROLE", "member".to_owned());
    assert!(load(&vars).is_ok());
}

#[test]
fn minimal_okta_config_has_the_documented_defaults() {
    let c = load(&base()).expect("valid");
    assert_eq!(c.providers.len(), 1);
    assert_eq!(c.providers[0].id, "okta");
    assert_eq!(c.listen.to_string(), "0.0.0.0:4180");
    assert_eq!(c.admin_listen.to_string(), "0.0.0.0:9090");
    assert_eq!(c.upstream.as_str(), "127.0.0.1:8080");
    assert_eq!(c.session_ttl, Duration::from_secs(12 * 3600));
    assert_eq!(c.clock_skew, Duration::from_secs(60));
    assert_eq!(c.max_request_body, 64 * 1024 * 1024);
    assert_eq!(c.request_body_timeout, Duration::from_secs(60));
    assert_eq!(c.send_timeout, Duration::from_secs(60));
    assert_eq!(c.upstream_response_timeout, None, "off unless set");
    assert_eq!(c.auth_mode, AuthMode::Required);
    assert_eq!(c.provisioning, ProvisioningMode::Off);
    assert!(c.secure_cookies());
    assert_eq!(c.public_origin(), "https://app.example.com");
}

#[test]
fn request_body_limit_takes_bytes_or_binary_suffixes() {
    for (text, bytes) in [
        ("4096", 4096),
        ("512Ki", 512 << 10),
        ("10Mi", 10 << 20),
        ("2Gi", 2 << 30),
    ] {
        let mut vars = base();
        vars.insert("GATEHOUSE_MAX_REQUEST_BODY", text.to_owned());
        assert_eq!(load(&vars).expect(text).max_request_body, bytes, "{text}");
    }
}

#[test]
fn kubernetes_provisioning_reads_mode_mappings_and_config_uid() {
    let mut vars = base();
    vars.insert("GATEHOUSE_PROVISIONING", "kubernetes".to_owned());
    vars.insert("GATEHOUSE_PROVISIONING_MODE", "preDeclared".to_owned());
    vars.insert("GATEHOUSE_CONFIG_UID", "0f4c-uid".to_owned());
    vars.insert(
        "GATEHOUSE_ATTRIBUTE_MAPPINGS",
        "department=department, https://acme.example/cost_center=costCenter,address.country=country".to_owned(),
    );
    let err_line = load(&vars)
        .map(|_| ())
        .expect_err("a URL is not a claim name")
        .to_string();
    assert!(
        err_line.starts_with(&format!(
            "GATEHOUSE_ATTRIBUTE_MAPPINGS: {}",
            rules::MSG_ATTRIBUTE_MAPPINGS
        )) && err_line.ends_with("(at `https://acme.example/cost_center=costCenter`)"),
        "{err_line}"
    );
    vars.insert(
        "GATEHOUSE_ATTRIBUTE_MAPPINGS",
        "department=department, acme:cost_center=costCenter,address.country=country".to_owned(),
    );
    let c = load(&vars).expect("valid");
    assert_eq!(c.provisioning, ProvisioningMode::Kubernetes);
    assert_eq!(
        c.user_provisioning,
        gatehouse_crds::ProvisioningMode::PreDeclared
    );
    assert_eq!(c.config_uid.as_deref(), Some("0f4c-uid"));
    assert_eq!(
        c.attribute_mappings,
        [
            ("department".to_owned(), "department".to_owned()),
            ("acme:cost_center".to_owned(), "costCenter".to_owned()),
            ("address.country".to_owned(), "country".to_owned()),
        ]
    );
    assert!(
        c.summary()
            .ends_with("provisioning kubernetes (preDeclared, namespace default)"),
        "{}",
        c.summary()
    );

    let defaults = load(&base()).expect("valid");
    assert_eq!(
        defaults.user_provisioning,
        gatehouse_crds::ProvisioningMode::Jit
    );
    assert!(defaults.attribute_mappings.is_empty());
    assert_eq!(defaults.config_uid, None);
    assert!(defaults.summary().ends_with("provisioning off"));
}

#[test]
fn every_error_names_its_variable() {
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        (
            "OKTA_ISSUER",
            Some("not a url"),
            "OKTA_ISSUER: issuer must be an absolute",
        ),
        (
            "OKTA_ISSUER",
            Some("http://acme.okta.com"),
            "OKTA_ISSUER: provider issuers must use https",
        ),
        ("OKTA_ORG_ID", None, "OKTA_ORG_ID: missing"),
        ("OKTA_CLIENT_SECRET", None, "OKTA_CLIENT_SECRET: missing"),
        (
            "GATEHOUSE_PUBLIC_URL",
            None,
            "GATEHOUSE_PUBLIC_URL: missing",
        ),
        (
            "GATEHOUSE_PUBLIC_URL",
            Some("https://a.example/app"),
            "GATEHOUSE_PUBLIC_URL: must be an origin",
        ),
        (
            "GATEHOUSE_COOKIE_SECRET",
            None,
            "GATEHOUSE_COOKIE_SECRET: missing",
        ),
        (
            "GATEHOUSE_COOKIE_SECRET",
            Some("c2hvcnQ="),
            "GATEHOUSE_COOKIE_SECRET: key 1",
        ),
        (
            "GATEHOUSE_SESSION_TTL",
            Some("forever"),
            "GATEHOUSE_SESSION_TTL: not a duration",
        ),
        (
            "GATEHOUSE_SESSION_TTL",
            Some("10s"),
            "GATEHOUSE_SESSION_TTL: must be between",
        ),
        (
            "GATEHOUSE_LISTEN",
            Some("4180"),
            "GATEHOUSE_LISTEN: not a socket address",
        ),
        (
            "GATEHOUSE_UPSTREAM",
            Some("https://127.0.0.1:8443"),
            "GATEHOUSE_UPSTREAM: must be a plain http",
        ),
        (
            "GATEHOUSE_AUTH_MODE",
            Some("sometimes"),
            "GATEHOUSE_AUTH_MODE: must be",
        ),
        (
            "GATEHOUSE_PROVISIONING",
            Some("k8s"),
            "GATEHOUSE_PROVISIONING: must be `off` or `kubernetes`",
        ),
        (
            "GATEHOUSE_PROVISIONING_MODE",
            Some("predeclared"),
            "GATEHOUSE_PROVISIONING_MODE: must be `jit`, `preDeclared` or `scim`",
        ),
        (
            "GATEHOUSE_PROVISIONING_MODE",
            Some("scim"),
            "GATEHOUSE_PROVISIONING_MODE: `scim` needs GATEHOUSE_PROVISIONING=kubernetes",
        ),
        (
            "GATEHOUSE_PROVISIONING_MODE",
            Some("preDeclared"),
            "GATEHOUSE_PROVISIONING_MODE: `preDeclared` needs GATEHOUSE_PROVISIONING=kubernetes",
        ),
        (
            "GATEHOUSE_ATTRIBUTE_MAPPINGS",
            Some("department"),
            "GATEHOUSE_ATTRIBUTE_MAPPINGS: `department` is not `claim=attribute`",
        ),
        (
            "GATEHOUSE_ATTRIBUTE_MAPPINGS",
            Some("department=dept ok"),
            "GATEHOUSE_ATTRIBUTE_MAPPINGS: attributeMappings keys must be claim names",
        ),
        (
            "GATEHOUSE_ATTRIBUTE_MAPPINGS",
            Some("1claim=dept"),
            "GATEHOUSE_ATTRIBUTE_MAPPINGS: attributeMappings keys must be claim names",
        ),
        (
            "GATEHOUSE_ATTRIBUTE_MAPPINGS",
            Some("department=dept,division=dept"),
            "GATEHOUSE_ATTRIBUTE_MAPPINGS: attributeMappings keys must be claim names and values attribute names (letters, digits, '_', '.', '-'), each attribute name used once (at `division=dept`)",
        ),
        (
            "GATEHOUSE_SKIP_AUTH",
            Some("/ok,/a/../b"),
            "GATEHOUSE_SKIP_AUTH: skipAuth entries must be paths",
        ),
        (
            "GATEHOUSE_SKIP_AUTH",
            Some("/"),
            "GATEHOUSE_SKIP_AUTH: skipAuth entries must be paths",
        ),
        (
            "GATEHOUSE_APP_LOGIN_PATH",
            Some("/login"),
            "GATEHOUSE_APP_LOGIN_PATH: appLoginPath must be a path",
        ),
        (
            "GATEHOUSE_APP_LOGIN_PATH",
            Some("login"),
            "GATEHOUSE_APP_LOGIN_PATH: appLoginPath must be a path",
        ),
        (
            "GATEHOUSE_CLOCK_SKEW",
            Some("1h"),
            "GATEHOUSE_CLOCK_SKEW: must be at most",
        ),
        (
            "GATEHOUSE_MAX_REQUEST_BODY",
            Some("10MB"),
            "GATEHOUSE_MAX_REQUEST_BODY: must be a size in bytes",
        ),
        (
            "GATEHOUSE_MAX_REQUEST_BODY",
            Some("-1"),
            "GATEHOUSE_MAX_REQUEST_BODY: must be a size in bytes",
        ),
        (
            "GATEHOUSE_MAX_REQUEST_BODY",
            Some("99999999999999999999Gi"),
            "GATEHOUSE_MAX_REQUEST_BODY: must be a size in bytes",
        ),
        (
            "GATEHOUSE_MAX_REQUEST_BODY",
            Some("100"),
            "GATEHOUSE_MAX_REQUEST_BODY: must be at least 1Ki",
        ),
        (
            "GATEHOUSE_REQUEST_BODY_TIMEOUT",
            Some("0s"),
            "GATEHOUSE_REQUEST_BODY_TIMEOUT: must be between 1s and 1h",
        ),
        (
            "GATEHOUSE_SEND_TIMEOUT",
            Some("2h"),
            "GATEHOUSE_SEND_TIMEOUT: must be between 1s and 1h",
        ),
        (
            "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT",
            Some("500ms"),
            "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT: must be between 1s and 1h",
        ),
        (
            "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT",
            Some("a while"),
            "GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT: not a duration",
        ),
        (
            "GATEHOUSE_REQUEST_BODY_TIMEOUT",
            Some("soon"),
            "GATEHOUSE_REQUEST_BODY_TIMEOUT: not a duration",
        ),
        (
            "GATEHOUSE_LOG_FORMAT",
            Some("xml"),
            "GATEHOUSE_LOG_FORMAT: must be",
        ),
        (
            "GATEHOUSE_CONFIG",
            Some("Portal"),
            "GATEHOUSE_CONFIG: not a Kubernetes name",
        ),
        (
            "AUTH_EXCLUSIVE_PROVIDER",
            Some("entra"),
            "AUTH_EXCLUSIVE_PROVIDER: not an enabled provider (enabled: okta)",
        ),
        (
            "SAML_IDP_METADATA_URL",
            Some("https://idp/metadata"),
            "SAML_IDP_METADATA_URL: SAML",
        ),
    ];
    for (var, value, expected) in cases {
        let mut vars = base();
        match value {
            Some(v) => vars.insert(var, v.to_owned()),
            None => vars.remove(var),
        };
        let e = err(&vars);
        let line = e.to_string();
        assert!(line.starts_with(expected), "{var}={value:?}: got `{line}`");
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(!line.contains(SECRET), "no secret in: {line}");
    }
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let mut vars = base();
    vars.insert("OKTA_CLIENT_SECRET_FILE", "/nonexistent".to_owned());
    let e = err(&vars);
    assert_eq!(e.var, "OKTA_CLIENT_SECRET_FILE");
    assert!(!e.to_string().contains(SECRET));

    let mut vars = base();
    let bad_key = "bm90LWEtdmFsaWQta2V5LXRoYXQtaXMtc2VjcmV0";
    vars.insert("GATEHOUSE_COOKIE_SECRET", format!("{KEY},{bad_key}"));
    let e = err(&vars);
    assert!(e.to_string().contains("key 2"), "{e}");
    assert!(!e.to_string().contains(bad_key), "{e}");

    let config = load(&base()).expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(!config.summary().contains(SECRET));
}

#[test]
fn secrets_are_read_from_files() {
    let dir = std::env::temp_dir().join(format!("gatehouse-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("okta-secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write");
    let mut vars = base();
    vars.remove("OKTA_CLIENT_SECRET");
    vars.insert("OKTA_CLIENT_SECRET_FILE", file.display().to_string());
    let c = load(&vars).expect("valid");
    assert_eq!(c.providers[0].client_secret.value.expose(), SECRET);
    assert_eq!(
        c.providers[0].client_secret.file.as_deref(),
        Some(file.as_path())
    );

    std::fs::write(&file, "\n").expect("write");
    let e = err(&vars);
    assert_eq!(e.to_string(), "OKTA_CLIENT_SECRET_FILE: the file is empty");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_file_wins_over_the_value() {
    let dir = std::env::temp_dir().join(format!("gatehouse-both-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("OKTA_CLIENT_SECRET");
    std::fs::write(&file, "rotated-secret\n").expect("write");
    let mut vars = base();
    vars.insert("OKTA_CLIENT_SECRET_FILE", file.display().to_string());
    let c = load(&vars).expect("valid");
    let secret = &c.providers[0].client_secret;
    assert_eq!(secret.value.expose(), "rotated-secret");
    assert_eq!(secret.file.as_deref(), Some(file.as_path()));
    // A file that cannot be read is an error even when the value is set: never fall back
    // silently to a value that may have been rotated away.
    vars.insert(
        "OKTA_CLIENT_SECRET_FILE",
        "/nonexistent/OKTA_CLIENT_SECRET".to_owned(),
    );
    assert_eq!(err(&vars).var, "OKTA_CLIENT_SECRET_FILE");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn http_issuer_is_only_for_loopback() {
    let mut vars = base();
    vars.insert("OKTA_ISSUER", "http://127.0.0.1:9000/okta".to_owned());
    assert!(load(&vars).is_ok());
    vars.insert("OKTA_ISSUER", "http://localhost:9000/okta".to_owned());
    assert!(load(&vars).is_ok());
}

#[test]
fn entra_and_generic_providers() {
    let mut vars = base();
    vars.insert("ENTRA_CLIENT_ID", "e-client".to_owned());
    vars.insert("ENTRA_CLIENT_SECRET", "e-secret".to_owned());
    vars.insert(
        "ENTRA_TENANT_ID",
        "0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90".to_owned(),
    );
    vars.insert("ENTRA_ORG_ID", "acme".to_owned());
    vars.insert("OIDC_PROVIDER_ID", "auth0".to_owned());
    vars.insert("OIDC_PROVIDER_NAME", "Auth0".to_owned());
    vars.insert("OIDC_CLIENT_ID", "a-client".to_owned());
    vars.insert("OIDC_CLIENT_SECRET", "a-secret".to_owned());
    vars.insert("OIDC_ISSUER", "https://acme.us.auth0.com/".to_owned());
    vars.insert("OIDC_ORG_ID", "acme".to_owned());
    vars.insert("OIDC_ROLE_CLAIM", "groups".to_owned());
    vars.insert(
        "OIDC_ROLE_MAP",
        "portal-admins=admin, portal-staff=member".to_owned(),
    );
    vars.insert("AUTH_EXCLUSIVE_PROVIDER", "auth0".to_owned());
    let c = load(&vars).expect("valid");
    let ids: Vec<&str> = c.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["okta", "entra", "auth0"]);
    assert_eq!(
        c.providers[1].issuer,
        "https://login.microsoftonline.com/0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90/v2.0"
    );
    assert_eq!(c.providers[2].issuer, "https://acme.us.auth0.com/");
    assert_eq!(c.providers[2].display_name, "Auth0");
    assert_eq!(c.exclusive_provider.as_deref(), Some("auth0"));
    match &c.providers[2].roles {
        RolePolicy::Claim {
            claim,
            rules,
            default,
        } => {
            assert_eq!(claim.as_deref(), Some("groups"));
            assert_eq!(rules.len(), 2);
            assert_eq!(rules[0].value, "portal-admins");
            assert_eq!(rules[1].role, Role::Member);
            assert_eq!(*default, None);
        }
        other => panic!("unexpected policy {other:?}"),
    }

    vars.insert(
        "ENTRA_ISSUER",
        "http://127.0.0.1:9000/entra/t/v2.0".to_owned(),
    );
    let c = load(&vars).expect("valid");
    assert_eq!(c.providers[1].issuer, "http://127.0.0.1:9000/entra/t/v2.0");
}

#[test]
fn generic_provider_errors() {
    let generic = |extra: &[(&'static str, &str)]| {
        let mut vars = base();
        vars.insert("OIDC_CLIENT_ID", "a".to_owned());
        vars.insert("OIDC_CLIENT_SECRET", "b".to_owned());
        vars.insert("OIDC_ISSUER", "https://idp.example".to_owned());
        vars.insert("OIDC_ORG_ID", "o".to_owned());
        for (k, v) in extra {
            vars.insert(k, (*v).to_owned());
        }
        load(&vars).err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(generic(&[]).starts_with("OIDC_ROLE_CLAIM: missing"));
    assert!(generic(&[("OIDC_ROLE_CLAIM", "groups")]).starts_with("OIDC_ROLE_MAP: missing"));
    assert!(
        generic(&[("OIDC_ROLE_CLAIM", "groups"), ("OIDC_ROLE_MAP", "a=owner")])
            .starts_with("OIDC_ROLE_MAP: entry 1: role must be")
    );
    assert!(
        generic(&[
            ("OIDC_ROLE_CLAIM", "groups"),
            ("OIDC_ROLE_MAP", "a=admin,oops")
        ])
        .starts_with("OIDC_ROLE_MAP: entry 2 is not")
    );
    assert!(generic(&[("OIDC_DEFAULT_ROLE", "root")]).starts_with("OIDC_DEFAULT_ROLE: must be"));
    assert!(generic(&[("OIDC_DEFAULT_ROLE", "member")]).is_empty());
    assert!(
        generic(&[
            ("OIDC_DEFAULT_ROLE", "member"),
            ("OIDC_PROVIDER_ID", "Bad_Id")
        ])
        .starts_with("OIDC_PROVIDER_ID:")
    );
    assert!(
        generic(&[
            ("OIDC_DEFAULT_ROLE", "member"),
            ("OIDC_PROVIDER_ID", "okta")
        ])
        .starts_with("OIDC_PROVIDER_ID:")
    );
}

/// Generic provider `slot`'s four enabling variables and a role map, numbered as the operator
/// renders the `slot`-th entry of `spec.providers.oidc`.
fn generic_slot(vars: &mut HashMap<&'static str, String>, slot: usize, id: &str, issuer: &str) {
    use gatehouse_crds::env::oidc_slot_var;
    let leak =
        |name: &str| -> &'static str { Box::leak(oidc_slot_var(name, slot).into_boxed_str()) };
    for (name, value) in [
        ("OIDC_PROVIDER_ID", id.to_owned()),
        ("OIDC_CLIENT_ID", format!("{id}-client")),
        ("OIDC_CLIENT_SECRET", format!("{id}-secret")),
        ("OIDC_ISSUER", issuer.to_owned()),
        ("OIDC_ORG_ID", format!("{id}-org")),
        ("OIDC_ROLE_CLAIM", "groups".to_owned()),
        ("OIDC_ROLE_MAP", format!("{id}-admins=admin")),
    ] {
        vars.insert(leak(name), value);
    }
}

#[test]
fn several_generic_providers_each_read_their_own_numbered_variables() {
    let mut vars = base();
    generic_slot(&mut vars, 1, "workforce", "https://login.acme.example");
    generic_slot(&mut vars, 2, "partner", "https://partner.example/oauth2");
    // Slots may be left empty: the 16th is read as well as the 2nd.
    generic_slot(&mut vars, 16, "contractors", "https://contractors.example");
    vars.insert("OIDC_2_PROVIDER_NAME", "Partner SSO".to_owned());
    vars.insert("OIDC_16_GROUPS_CLAIM", "teams".to_owned());
    vars.insert("AUTH_EXCLUSIVE_PROVIDER", "contractors".to_owned());
    let c = load(&vars).expect("valid");
    let ids: Vec<&str> = c.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["okta", "workforce", "partner", "contractors"]);
    let partner = &c.providers[2];
    assert_eq!(partner.display_name, "Partner SSO");
    assert_eq!(partner.issuer, "https://partner.example/oauth2");
    assert_eq!(partner.client_id, "partner-client");
    assert_eq!(partner.client_secret.value.expose(), "partner-secret");
    assert_eq!(partner.client_secret.var, "OIDC_2_CLIENT_SECRET");
    assert_eq!(partner.org_id, "partner-org");
    match &partner.roles {
        RolePolicy::Claim { rules, .. } => assert_eq!(rules[0].value, "partner-admins"),
        other => panic!("unexpected policy {other:?}"),
    }
    let contractors = &c.providers[3];
    assert_eq!(contractors.display_name, "contractors");
    assert_eq!(contractors.groups_claim, "teams");
    assert_eq!(c.providers[1].groups_claim, "groups");
    assert_eq!(c.exclusive_provider.as_deref(), Some("contractors"));
}

#[test]
fn numbered_generic_providers_are_refused_naming_their_own_variable() {
    let with = |edit: &dyn Fn(&mut HashMap<&'static str, String>)| {
        let mut vars = base();
        generic_slot(&mut vars, 1, "workforce", "https://login.acme.example");
        generic_slot(&mut vars, 3, "partner", "https://partner.example");
        edit(&mut vars);
        err(&vars).to_string()
    };
    let e = with(&|v| {
        v.insert("OIDC_3_PROVIDER_ID", "workforce".to_owned());
    });
    assert!(
        e.starts_with("OIDC_3_PROVIDER_ID: `workforce` is already the id of another generic provider (OIDC_PROVIDER_ID)"),
        "{e}"
    );
    let e = with(&|v| {
        v.remove("OIDC_3_PROVIDER_ID");
    });
    assert!(
        e.starts_with("OIDC_3_PROVIDER_ID: missing; generic OIDC provider 3 needs an id"),
        "{e}"
    );
    let e = with(&|v| {
        v.insert("OIDC_3_PROVIDER_ID", "entra".to_owned());
    });
    assert!(e.starts_with("OIDC_3_PROVIDER_ID:"), "{e}");
    let e = with(&|v| {
        v.remove("OIDC_3_ORG_ID");
    });
    assert!(
        e.starts_with(
            "OIDC_3_ORG_ID: missing (OIDC_3_CLIENT_ID is set; generic OIDC provider 3 needs"
        ),
        "{e}"
    );
    let e = with(&|v| {
        v.insert("OIDC_3_ROLE_MAP", "a=root".to_owned());
    });
    assert!(
        e.starts_with("OIDC_3_ROLE_MAP: entry 1: role must be"),
        "{e}"
    );
    let e = with(&|v| {
        v.insert("OIDC_3_ISSUER", "ftp://partner.example".to_owned());
    });
    assert!(e.starts_with("OIDC_3_ISSUER:"), "{e}");
    let e = with(&|v| {
        v.insert("AUTH_EXCLUSIVE_PROVIDER", "nobody".to_owned());
    });
    assert!(e.contains("enabled: okta, workforce, partner"), "{e}");
    // A numbered client secret is never shown in an error.
    assert!(!e.contains("partner-secret"));
}

#[test]
fn a_numbered_generic_provider_beside_saml_is_refused_as_two_protocols() {
    let mut vars = saml_base();
    generic_slot(&mut vars, 5, "partner", "https://partner.example");
    let e = err(&vars).to_string();
    assert!(
        e.contains("SAML and OIDC cannot be active together (OIDC_5_CLIENT_ID is also set)"),
        "{e}"
    );
}

#[test]
fn no_provider_is_an_error() {
    let mut vars = base();
    for k in [
        "OKTA_CLIENT_ID",
        "OKTA_CLIENT_SECRET",
        "OKTA_ISSUER",
        "OKTA_ORG_ID",
    ] {
        vars.remove(k);
    }
    assert!(err(&vars).problem.contains("no sign-in provider"));
}

#[test]
fn skip_auth_list_is_parsed() {
    let mut vars = base();
    vars.insert(
        "GATEHOUSE_SKIP_AUTH",
        "/healthz, /public/ ,/static".to_owned(),
    );
    let c = load(&vars).expect("valid");
    assert_eq!(c.skip_auth, ["/healthz", "/public/", "/static"]);
    vars.insert("GATEHOUSE_SKIP_AUTH", "/healthz,/@vite/client".to_owned());
    assert_eq!(
        load(&vars).expect("valid").skip_auth,
        ["/healthz", "/@vite/client"]
    );
    vars.insert("GATEHOUSE_SKIP_AUTH", "/".to_owned());
    assert_eq!(err(&vars).problem, rules::MSG_SKIP_AUTH);
}

/// Found by fuzzing (fuzz/regressions/config): a role map whose bad role has a newline made an
/// error of two lines; the start-up error is always one line naming the variable.
#[test]
fn an_error_quoting_a_value_with_a_newline_stays_one_line() {
    let error = ConfigError::new("OIDC_ROLE_MAP", "unknown variant `adm\n`, expected `admin`");
    let line = error.to_string();
    assert!(!line.contains('\n'), "{line:?}");
    assert_eq!(
        line,
        "OIDC_ROLE_MAP: unknown variant `adm\\n`, expected `admin`"
    );
}

#[test]
fn the_catalogues_size_default_reads_back_as_itself() {
    let shown = vars::GATEHOUSE_MAX_REQUEST_BODY.default.shown();
    let text = shown.trim_matches('`');
    assert_eq!(parse::parse_byte_size(text), Ok(DEFAULT_MAX_REQUEST_BODY));
}

#[test]
fn access_rules_and_groups_claims_are_read_with_the_operators_words() {
    let mut vars = base();
    let c = load(&vars).expect("valid");
    assert!(c.access.is_none(), "no rules without GATEHOUSE_ACCESS");
    assert_eq!(c.providers[0].groups_claim, "groups", "the default claim");
    vars.insert(
        "GATEHOUSE_ACCESS",
        r#"{"rules":[{"name":"admins","action":"Allow","from":[{"roles":["admin"]}]}]}"#.to_owned(),
    );
    vars.insert("OKTA_GROUPS_CLAIM", "realm_access.groups".to_owned());
    let c = load(&vars).expect("valid");
    assert_eq!(c.access.as_ref().map(|p| p.rule_count()), Some(1));
    assert_eq!(c.providers[0].groups_claim, "realm_access.groups");
    // What the operator's validation refuses, refused with the same words.
    vars.insert(
        "GATEHOUSE_ACCESS",
        r#"{"rules":[{"name":"anyone","action":"Allow","from":[{"authenticated":false}]}]}"#
            .to_owned(),
    );
    let line = err(&vars).to_string();
    assert!(line.starts_with("GATEHOUSE_ACCESS: "), "{line}");
    assert!(line.contains(rules::MSG_AUTHENTICATED_TRUE), "{line}");
    vars.insert("GATEHOUSE_ACCESS", r#"{"rules":[{"name":"x"}"#.to_owned());
    let line = err(&vars).to_string();
    assert!(
        line.starts_with("GATEHOUSE_ACCESS: not an access policy as JSON"),
        "{line}"
    );
    vars.remove("GATEHOUSE_ACCESS");
    vars.insert(
        "OKTA_GROUPS_CLAIM",
        "https://acme.example/groups".to_owned(),
    );
    assert_eq!(
        err(&vars).to_string(),
        format!("OKTA_GROUPS_CLAIM: {}", rules::MSG_GROUPS_CLAIM)
    );
}

const SCIM_TOKEN: &str = "scim-bearer-0123456789abcdef";

fn scim_base() -> HashMap<&'static str, String> {
    let mut vars = base();
    vars.insert("GATEHOUSE_PROVISIONING", "kubernetes".to_owned());
    vars.insert("GATEHOUSE_PROVISIONING_MODE", "scim".to_owned());
    vars.insert("SCIM_TOKEN", SCIM_TOKEN.to_owned());
    vars
}

#[test]
fn scim_mode_reads_its_tokens_and_the_pushed_users_provider() {
    let c = load(&scim_base()).expect("valid");
    assert_eq!(c.user_provisioning, gatehouse_crds::ProvisioningMode::Scim);
    let scim = c.scim.expect("scim mode");
    assert_eq!(scim.tokens, [SCIM_TOKEN]);
    assert_eq!(scim.provider, "okta", "the only provider");
    assert_eq!(scim.token_file, None);

    let mut vars = scim_base();
    vars.insert("SCIM_PREVIOUS_TOKEN", "scim-previous-0123456789".to_owned());
    let scim = load(&vars).expect("valid").scim.expect("scim mode");
    assert_eq!(scim.tokens, [SCIM_TOKEN, "scim-previous-0123456789"]);

    // SAML: the pushed users are SAML's.
    let mut vars = saml_base();
    vars.insert("GATEHOUSE_PROVISIONING", "kubernetes".to_owned());
    vars.insert("GATEHOUSE_PROVISIONING_MODE", "scim".to_owned());
    vars.insert("SCIM_TOKEN", SCIM_TOKEN.to_owned());
    assert_eq!(
        load(&vars).expect("valid").scim.expect("scim").provider,
        "saml"
    );

    // Any other mode: no SCIM.
    for mode in ["jit", "preDeclared"] {
        let mut vars = base();
        vars.insert("GATEHOUSE_PROVISIONING", "kubernetes".to_owned());
        vars.insert("GATEHOUSE_PROVISIONING_MODE", mode.to_owned());
        assert!(load(&vars).expect("valid").scim.is_none(), "{mode}");
    }
}

#[test]
fn scim_with_several_providers_takes_the_exclusive_one() {
    let mut vars = scim_base();
    generic_slot(&mut vars, 1, "auth0", "https://acme.auth0.com/");
    let e = err(&vars);
    assert_eq!(e.var, "AUTH_EXCLUSIVE_PROVIDER");
    assert!(e.problem.contains("okta, auth0"), "{e}");
    vars.insert("AUTH_EXCLUSIVE_PROVIDER", "auth0".to_owned());
    assert_eq!(
        load(&vars).expect("valid").scim.expect("scim").provider,
        "auth0"
    );
}

#[test]
fn scim_errors_name_their_variable_and_never_the_token() {
    // scim mode needs kubernetes provisioning and a token.
    let mut vars = scim_base();
    vars.remove("GATEHOUSE_PROVISIONING");
    let e = err(&vars);
    assert_eq!(e.var, "GATEHOUSE_PROVISIONING_MODE");
    assert!(
        e.problem.contains("GATEHOUSE_PROVISIONING=kubernetes"),
        "{e}"
    );

    let mut vars = scim_base();
    vars.remove("SCIM_TOKEN");
    let e = err(&vars);
    assert_eq!(e.var, "SCIM_TOKEN");
    assert!(
        e.problem.starts_with("missing (or set SCIM_TOKEN_FILE)"),
        "{e}"
    );

    // A token elsewhere is a mistake, named with the mode.
    for var in ["SCIM_TOKEN", "SCIM_PREVIOUS_TOKEN"] {
        let mut vars = base();
        vars.insert("GATEHOUSE_PROVISIONING", "kubernetes".to_owned());
        vars.insert(var, SCIM_TOKEN.to_owned());
        let e = err(&vars);
        assert_eq!(e.var, var);
        assert!(e.problem.contains("GATEHOUSE_PROVISIONING_MODE"), "{e}");
        assert!(!e.to_string().contains(SCIM_TOKEN), "{e}");
    }

    // Too short: said, never shown.
    for var in ["SCIM_TOKEN", "SCIM_PREVIOUS_TOKEN"] {
        let mut vars = scim_base();
        vars.insert(var, "short-token".to_owned());
        let e = err(&vars);
        assert_eq!(e.var, var);
        assert!(e.problem.contains("at least 16 characters"), "{e}");
        assert!(!e.to_string().contains("short-token"), "{e}");
    }

    let mut vars = scim_base();
    vars.insert("SCIM_PREVIOUS_TOKEN", "scim-previous-0123456789".to_owned());
    let c = load(&vars).expect("valid");
    let debug = format!("{c:?}");
    assert!(!debug.contains(SCIM_TOKEN), "{debug}");
    assert!(!debug.contains("scim-previous-0123456789"), "{debug}");
    assert!(!c.summary().contains(SCIM_TOKEN));
}

#[test]
fn scim_tokens_come_from_files_and_a_missing_previous_file_is_no_previous_token() {
    let dir = std::env::temp_dir().join(format!("gatehouse-scim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let current = dir.join("SCIM_TOKEN");
    let previous = dir.join("SCIM_PREVIOUS_TOKEN");
    std::fs::write(&current, format!("{SCIM_TOKEN}\n")).expect("write");
    let mut vars = scim_base();
    vars.remove("SCIM_TOKEN");
    vars.insert("SCIM_TOKEN_FILE", current.display().to_string());
    vars.insert("SCIM_PREVIOUS_TOKEN_FILE", previous.display().to_string());
    let scim = load(&vars).expect("valid").scim.expect("scim");
    assert_eq!(scim.tokens, [SCIM_TOKEN]);
    assert_eq!(scim.token_file.as_deref(), Some(current.as_path()));
    assert_eq!(
        scim.previous_token_file.as_deref(),
        Some(previous.as_path())
    );
    assert_eq!(scim.reread_tokens(), Ok(Some(vec![SCIM_TOKEN.to_owned()])));

    // A rotation: the new token in the file, the old one as the previous token.
    std::fs::write(&current, "scim-rotated-0123456789\n").expect("write");
    std::fs::write(&previous, format!("{SCIM_TOKEN}\n")).expect("write");
    assert_eq!(
        scim.reread_tokens(),
        Ok(Some(vec![
            "scim-rotated-0123456789".to_owned(),
            SCIM_TOKEN.to_owned()
        ]))
    );
    let again = load(&vars).expect("valid").scim.expect("scim");
    assert_eq!(again.tokens, ["scim-rotated-0123456789", SCIM_TOKEN]);
    // A short token in the file keeps the tokens in use, and says why without the value.
    std::fs::write(&current, "short\n").expect("write");
    let problem = scim.reread_tokens().expect_err("too short");
    assert!(
        problem.starts_with("SCIM_TOKEN_FILE: ") && !problem.contains("short\n"),
        "{problem}"
    );
    // The current token's file must exist.
    std::fs::remove_file(&current).expect("remove");
    assert_eq!(err(&vars).var, "SCIM_TOKEN_FILE");

    // Left over from scim mode, files that no longer exist do not stop another mode.
    std::fs::remove_file(&previous).expect("remove");
    vars.insert("GATEHOUSE_PROVISIONING_MODE", "jit".to_owned());
    assert!(load(&vars).expect("valid").scim.is_none());
    std::fs::remove_dir_all(&dir).ok();
}
