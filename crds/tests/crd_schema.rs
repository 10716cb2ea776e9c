//! The CRDs as the API server sees them: the committed YAML matches the types, and manifests are
//! accepted or rejected at apply time by the OpenAPI schema and the CEL rules.
//!
//! CEL rules run client-side through kube's `cel` feature (the kube-cel evaluator with the
//! Kubernetes CEL libraries); the structural part (types, enums, patterns, lengths, required
//! fields) runs through a JSON-Schema validator. The real-cluster suite re-checks both against a
//! real API server.

use std::path::{Path, PathBuf};

use gatehouse_crds::{SsoConfig, SsoUser};
use kube::CustomResourceExt;
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ sits in the workspace")
        .to_path_buf()
}

#[test]
fn committed_crd_yaml_matches_the_types() {
    for (file, generated) in gatehouse_crds::crd_manifests() {
        let path = repo_root().join("crds/manifests").join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `cargo run -p gatehouse-operator -- crdgen`",
                path.display()
            )
        });
        assert!(
            committed == generated,
            "{} differs from what the types generate; run `cargo run -p gatehouse-operator -- crdgen` and commit",
            path.display()
        );
    }
}

type Crd =
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// The schema of the CRD's storage version.
fn open_api_schema(crd: &Crd) -> Value {
    let storage = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .expect("a storage version")
        .name
        .clone();
    version_schema(crd, &storage)
}

/// The schema of the CRD's version `name`.
fn version_schema(crd: &Crd, name: &str) -> Value {
    let version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{} has no version {name}", crd.spec.names.kind));
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("derived CRDs carry an openAPIV3Schema"),
    )
    .expect("schema serializes")
}

/// What the API server would say about `object` on create (or on update from `old`): the
/// structural schema errors first, then the CEL rule messages. Empty means accepted.
fn apply_errors(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<String> {
    let structural = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(false)
        .build(schema)
        .expect("the CRD schema is a valid JSON schema");
    let mut errors: Vec<String> = structural
        .iter_errors(object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty()
        && let Err(cel) = kube::core::cel::Validator::new().validate(schema, object, old)
    {
        errors.extend(
            cel.into_vec()
                .into_iter()
                .map(|e| format!("{}: {}", e.field_path, e.message)),
        );
    }
    errors
}

fn sso_config_schema() -> Value {
    version_schema(&gatehouse_crds::sso_config_crd(), "v1alpha2")
}

/// The frozen, deprecated `v1alpha1` schema (old manifests).
fn sso_config_v1alpha1_schema() -> Value {
    version_schema(&gatehouse_crds::sso_config_crd(), "v1alpha1")
}

fn base_config() -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha2",
        "kind": "SsoConfig",
        "metadata": {"name": "portal", "namespace": "team-a"},
        "spec": {
            "protocol": "oidc",
            "publicUrl": "https://portal.example.com",
            "providers": {
                "okta": {
                    "issuer": "https://acme.okta.com",
                    "orgId": "acme-portal",
                    "clientSecretRef": {"name": "portal-okta"}
                }
            }
        }
    })
}

fn with(mut value: Value, pointer: &str, field: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(key.to_string(), field);
    value
}

fn without(mut value: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .remove(key);
    value
}

#[track_caller]
fn assert_rejected(object: &Value, expect: &str) {
    let errors = apply_errors(&sso_config_schema(), object, None);
    assert!(
        errors.iter().any(|e| e.contains(expect)),
        "expected a rejection containing {expect:?}, got {errors:#?}"
    );
}

#[test]
fn a_minimal_okta_config_is_accepted() {
    let errors = apply_errors(&sso_config_schema(), &base_config(), None);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_full_config_in_the_shape_of_the_brief_is_accepted() {
    let full = json!({
        "apiVersion": "gatehouse.dev/v1alpha2",
        "kind": "SsoConfig",
        "metadata": {"name": "portal", "namespace": "team-a"},
        "spec": {
            "protocol": "oidc",
            "publicUrl": "https://portal.example.com",
            "exclusiveProvider": "auth0",
            "authMode": "optional",
            "providers": {
                "okta": {"issuer": "https://acme.okta.com", "orgId": "acme-portal",
                         "clientSecretRef": {"name": "portal-okta", "clientIdKey": "client-id", "clientSecretKey": "client-secret"}},
                "entra": {"tenantId": "0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90", "orgId": "acme-portal",
                          "clientSecretRef": {"name": "portal-entra"}},
                "oidc": [{"id": "auth0", "displayName": "Auth0", "issuer": "https://acme.us.auth0.com/",
                         "orgId": "acme-portal", "roleClaim": "groups",
                         "roleMap": [{"value": "portal-admins", "role": "admin"}, {"value": "portal-staff", "role": "member"}],
                         "clientSecretRef": {"name": "portal-auth0"}}]
            },
            "saml": {"idpMetadataUrl": "https://idp.example/saml2/metadata",
                     "spEntityId": "https://portal.example.com/api/auth/saml/metadata",
                     "roleAttribute": "memberOf", "roleMap": [{"value": "admins", "role": "admin"}], "orgId": "acme-portal"},
            "attributeMappings": {"department": "department"},
            "provisioning": {"mode": "jit", "hookPath": "/internal/sso-hook"},
            "session": {"ttl": "12h", "cookieSecretRef": {"name": "portal-cookie-keys"}},
            "upstream": {"port": 8080},
            "skipAuth": ["/healthz"],
            "appLoginPath": "/users/sign_in"
        }
    });
    let errors = apply_errors(&sso_config_schema(), &full, None);
    assert!(errors.is_empty(), "{errors:#?}");
    // And the Rust types read it back unchanged.
    let typed: SsoConfig =
        serde_json::from_value(full.clone()).expect("the types read the brief's shape");
    assert_eq!(
        serde_json::to_value(&typed).expect("serializes")["spec"],
        full["spec"]
    );
}

#[test]
fn protocol_and_blocks_must_agree() {
    assert_rejected(
        &without(base_config(), "/spec/providers"),
        "protocol oidc needs at least one provider",
    );
    assert_rejected(
        &with(base_config(), "/spec/providers", json!({})),
        "protocol oidc needs at least one provider",
    );
    assert_rejected(
        &with(base_config(), "/spec/protocol", json!("saml")),
        "protocol saml needs spec.saml",
    );
    assert_rejected(
        &with(base_config(), "/spec/protocol", json!("ldap")),
        "/spec/protocol",
    );
}

#[test]
fn exclusive_provider_must_name_a_configured_provider() {
    assert_rejected(
        &with(base_config(), "/spec/exclusiveProvider", json!("entra")),
        "exclusiveProvider must name a provider",
    );
    let ok = with(base_config(), "/spec/exclusiveProvider", json!("okta"));
    assert!(apply_errors(&sso_config_schema(), &ok, None).is_empty());
}

#[test]
fn public_url_must_be_an_https_origin_unless_insecure_is_opted_into() {
    assert_rejected(
        &with(
            base_config(),
            "/spec/publicUrl",
            json!("http://portal.example.com"),
        ),
        "publicUrl must use https",
    );
    assert_rejected(
        &with(base_config(), "/spec/publicUrl", json!("not a url")),
        "publicUrl must be an absolute URL",
    );
    assert_rejected(
        &with(
            base_config(),
            "/spec/publicUrl",
            json!("https://portal.example.com/app"),
        ),
        "no path or query",
    );
    let dev = with(
        with(
            base_config(),
            "/spec/publicUrl",
            json!("http://127.0.0.1:4180"),
        ),
        "/spec/allowInsecureHttp",
        json!(true),
    );
    let dev = with(
        dev,
        "/spec/providers/okta/issuer",
        json!("http://127.0.0.1:9000/okta"),
    );
    assert!(apply_errors(&sso_config_schema(), &dev, None).is_empty());
    assert_rejected(
        &with(
            base_config(),
            "/spec/providers/okta/issuer",
            json!("http://acme.okta.com"),
        ),
        "provider issuers must use https",
    );
}

#[test]
fn secret_refs_cannot_cross_namespaces() {
    assert_rejected(
        &with(
            base_config(),
            "/spec/providers/okta/clientSecretRef/namespace",
            json!("kube-system"),
        ),
        "Secret references cannot name a namespace",
    );
}

#[test]
fn role_maps_must_be_well_formed() {
    let generic = |role_map: Value| {
        with(
            base_config(),
            "/spec/providers/oidc",
            json!([{"id": "auth0", "displayName": "Auth0", "issuer": "https://acme.us.auth0.com/", "orgId": "o",
                   "roleClaim": "groups", "roleMap": role_map, "clientSecretRef": {"name": "s"}}]),
        )
    };
    assert!(
        apply_errors(
            &sso_config_schema(),
            &generic(json!([{"value": "a", "role": "admin"}])),
            None
        )
        .is_empty()
    );
    assert_rejected(
        &generic(json!([{"value": "a", "role": "admin"}, {"value": "a", "role": "member"}])),
        "roleMap values must be unique",
    );
    assert_rejected(
        &generic(json!([{"value": "a", "role": "owner"}])),
        "roleMap/0/role",
    );
    assert_rejected(
        &generic(json!([{"value": "", "role": "admin"}])),
        "roleMap/0/value",
    );
}

#[test]
fn generic_provider_ids_are_dns_safe_and_not_reserved() {
    let id = |id: &str| {
        with(
            base_config(),
            "/spec/providers/oidc",
            json!([{"id": id, "displayName": "X", "issuer": "https://x.example/", "orgId": "o",
                   "roleClaim": "groups", "clientSecretRef": {"name": "s"}}]),
        )
    };
    assert_rejected(&id("okta"), "names are reserved");
    assert_rejected(&id("entra"), "names are reserved");
    assert_rejected(&id("Auth0"), "/spec/providers/oidc/0/id");
    assert_rejected(&id("a/b"), "/spec/providers/oidc/0/id");
}

/// A generic provider with id `id` and issuer `https://<id>.example/`.
fn generic(id: &str) -> Value {
    json!({"id": id, "displayName": id.to_uppercase(), "issuer": format!("https://{id}.example/"),
           "orgId": "o", "roleClaim": "groups", "defaultRole": "member",
           "clientSecretRef": {"name": format!("portal-{id}")}})
}

fn with_generic(ids: &[&str]) -> Value {
    with(
        base_config(),
        "/spec/providers/oidc",
        Value::Array(ids.iter().map(|id| generic(id)).collect()),
    )
}

#[test]
fn several_generic_providers_are_a_list_keyed_by_id() {
    let three = with_generic(&["auth0", "google", "keycloak"]);
    assert!(apply_errors(&sso_config_schema(), &three, None).is_empty());
    // Only generic providers, no okta: still "at least one provider".
    let alone = without(three.clone(), "/spec/providers/okta");
    assert!(apply_errors(&sso_config_schema(), &alone, None).is_empty());
    let empty = without(with_generic(&[]), "/spec/providers/okta");
    assert_rejected(&empty, "protocol oidc needs at least one provider");

    assert_rejected(
        &with_generic(&["auth0", "google", "auth0"]),
        gatehouse_crds::rules::MSG_DUPLICATE_PROVIDER_ID,
    );
    assert_rejected(&with_generic(&["auth0", "all"]), "names are reserved");
    assert_rejected(&with_generic(&["auth0", "entra"]), "names are reserved");

    let ids: Vec<String> = (1..=gatehouse_crds::env::MAX_OIDC_PROVIDERS + 1)
        .map(|n| format!("idp-{n}"))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let sixteen = with_generic(&refs[..gatehouse_crds::env::MAX_OIDC_PROVIDERS]);
    assert!(
        apply_errors(&sso_config_schema(), &sixteen, None).is_empty(),
        "16 providers are accepted"
    );
    assert_rejected(&with_generic(&refs), "/spec/providers/oidc");
    let seventeen_errors = apply_errors(&sso_config_schema(), &with_generic(&refs), None);
    assert!(
        seventeen_errors
            .iter()
            .any(|e| e.contains("has more than 16 items")),
        "{seventeen_errors:#?}"
    );

    // exclusiveProvider may name any entry, not only the first.
    let third = with(three.clone(), "/spec/exclusiveProvider", json!("keycloak"));
    assert!(apply_errors(&sso_config_schema(), &third, None).is_empty());
    assert_rejected(
        &with(three.clone(), "/spec/exclusiveProvider", json!("gitlab")),
        "exclusiveProvider must name a provider",
    );

    // Every entry's issuer must be https (or loopback http with allowInsecureHttp).
    let mut plain = three.clone();
    plain["spec"]["providers"]["oidc"][2]["issuer"] = json!("http://keycloak.example/");
    assert_rejected(&plain, "provider issuers must use https");
    let mut dev = with(plain, "/spec/allowInsecureHttp", json!(true));
    assert_rejected(&dev, "provider issuers must use https");
    dev["spec"]["providers"]["oidc"][2]["issuer"] = json!("http://localhost:8080/realms/a");
    assert!(apply_errors(&sso_config_schema(), &dev, None).is_empty());
}

#[test]
fn scim_mode_needs_its_token_secret_and_one_provider() {
    use gatehouse_crds::rules::{MSG_SCIM_NEEDS_MODE, MSG_SCIM_NEEDS_TOKEN, MSG_SCIM_ONE_PROVIDER};
    let token = json!({"tokenSecretRef": {"name": "portal-scim"}});
    let scim = with(
        base_config(),
        "/spec/provisioning",
        json!({"mode": "scim", "scim": token}),
    );
    let errors = apply_errors(&sso_config_schema(), &scim, None);
    assert!(errors.is_empty(), "{errors:#?}");

    assert_rejected(
        &with(base_config(), "/spec/provisioning", json!({"mode": "scim"})),
        MSG_SCIM_NEEDS_TOKEN,
    );
    for mode in [
        json!({"scim": token}),
        json!({"mode": "jit", "scim": token}),
    ] {
        assert_rejected(
            &with(base_config(), "/spec/provisioning", mode),
            MSG_SCIM_NEEDS_MODE,
        );
    }
    assert_rejected(
        &with(
            base_config(),
            "/spec/provisioning",
            json!({"mode": "scim", "scim": {"tokenSecretRef": {"name": "s", "namespace": "other"}}}),
        ),
        "Secret references cannot name a namespace",
    );

    // Several providers: the one pushed users belong to must be named.
    let mut several = with_generic(&["auth0"]);
    several["spec"]["provisioning"] = json!({"mode": "scim", "scim": token});
    assert_rejected(&several, MSG_SCIM_ONE_PROVIDER);
    let named = with(several.clone(), "/spec/exclusiveProvider", json!("okta"));
    assert!(apply_errors(&sso_config_schema(), &named, None).is_empty());
    // Only generic providers count too: two entries, no okta.
    let two = without(
        with(
            several.clone(),
            "/spec/providers/oidc",
            json!([generic("auth0"), generic("google")]),
        ),
        "/spec/providers/okta",
    );
    assert_rejected(&two, MSG_SCIM_ONE_PROVIDER);
    let one = without(several, "/spec/providers/okta");
    assert!(apply_errors(&sso_config_schema(), &one, None).is_empty());
    // Other modes keep accepting several providers without exclusiveProvider.
    assert!(
        apply_errors(
            &sso_config_schema(),
            &with_generic(&["auth0", "google"]),
            None
        )
        .is_empty()
    );
}

#[test]
fn v1alpha1_stays_served_deprecated_and_frozen() {
    let crd = gatehouse_crds::sso_config_crd();
    let names: Vec<(&str, bool, bool)> = crd
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage))
        .collect();
    assert_eq!(names, [("v1alpha1", true, false), ("v1alpha2", true, true)]);
    let old = &crd.spec.versions[0];
    assert_eq!(old.deprecated, Some(true));
    let warning = old.deprecation_warning.as_deref().unwrap_or_default();
    assert!(
        warning.contains("apiVersion: gatehouse.dev/v1alpha2") && warning.contains("list"),
        "{warning}"
    );
    // The frozen schema still has the single object.
    let schema = sso_config_v1alpha1_schema();
    assert_eq!(
        schema["properties"]["spec"]["properties"]["providers"]["properties"]["oidc"]["type"],
        json!("object")
    );
    let conversion = serde_json::to_value(&crd.spec.conversion).expect("json");
    assert_eq!(conversion["strategy"], "Webhook");
    assert_eq!(
        conversion["webhook"]["conversionReviewVersions"],
        json!(["v1"])
    );
    assert_eq!(
        conversion["webhook"]["clientConfig"]["service"],
        json!({"name": "gatehouse-webhook", "namespace": "gatehouse-system", "path": "/convert", "port": 8443})
    );
}

/// What an SsoConfig manifest of either version is checked against: its own version's schema.
fn sso_config_schema_of(object: &Value) -> Value {
    match object["apiVersion"].as_str() {
        Some("gatehouse.dev/v1alpha1") => sso_config_v1alpha1_schema(),
        _ => sso_config_schema(),
    }
}

#[test]
fn an_old_v1alpha1_manifest_is_accepted_and_converts_to_an_accepted_v1alpha2_one() {
    let text = std::fs::read_to_string(repo_root().join("crds/tests/fixtures/v1alpha1-auth0.yaml"))
        .expect("fixture");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML");
    let old = docs
        .into_iter()
        .find(|d| d["kind"] == "SsoConfig")
        .expect("an SsoConfig");
    assert_eq!(old["apiVersion"], "gatehouse.dev/v1alpha1");
    let errors = apply_errors(&sso_config_v1alpha1_schema(), &old, None);
    assert!(errors.is_empty(), "{errors:#?}");
    // The old form is refused by the new schema (so the API server needs the conversion).
    let mut as_new = old.clone();
    as_new["apiVersion"] = json!("gatehouse.dev/v1alpha2");
    assert!(!apply_errors(&sso_config_schema(), &as_new, None).is_empty());
    let new = gatehouse_crds::conversion::convert(old.clone(), "gatehouse.dev/v1alpha2")
        .expect("converts");
    let errors = apply_errors(&sso_config_schema(), &new, None);
    assert!(errors.is_empty(), "{errors:#?}");
    let typed: SsoConfig = serde_json::from_value(new).expect("the types read it");
    let providers = typed.spec.providers.expect("providers");
    assert_eq!(providers.oidc.len(), 1);
    assert_eq!(providers.oidc[0].id, "auth0");
}

#[test]
fn durations_ports_and_paths_are_checked() {
    assert_rejected(
        &with(base_config(), "/spec/session", json!({"ttl": "forever"})),
        "/spec/session/ttl",
    );
    assert_rejected(
        &with(base_config(), "/spec/session", json!({"ttl": "1m"})),
        "ttl must be a duration",
    );
    assert_rejected(
        &with(base_config(), "/spec/upstream", json!({"port": 4180})),
        "upstream.port must not be 4180",
    );
    assert_rejected(
        &with(base_config(), "/spec/upstream", json!({"port": 70000})),
        "/spec/upstream/port",
    );
    for size in ["64MB", "1048576", "0Mi", "1.5Gi", "1000000Gi", " 64Mi"] {
        assert_rejected(
            &with(
                base_config(),
                "/spec/upstream",
                json!({"maxRequestBody": size}),
            ),
            "maxRequestBody must be a size such as 64Mi",
        );
    }
    for size in ["1Ki", "64Mi", "2Gi", "999999Gi"] {
        let object = with(
            base_config(),
            "/spec/upstream",
            json!({"maxRequestBody": size}),
        );
        let errors = apply_errors(&sso_config_schema(), &object, None);
        assert!(
            errors.is_empty(),
            "maxRequestBody {size} refused: {errors:?}"
        );
    }
    assert_rejected(
        &with(base_config(), "/spec/skipAuth", json!(["/public/../admin"])),
        "skipAuth entries",
    );
    assert_rejected(
        &with(base_config(), "/spec/skipAuth", json!(["healthz"])),
        "skipAuth entries",
    );
    assert_rejected(
        &with(base_config(), "/spec/appLoginPath", json!("//evil.example")),
        "appLoginPath",
    );
    assert_rejected(
        &with(
            base_config(),
            "/spec/provisioning",
            json!({"hookPath": "https://evil.example"}),
        ),
        "hookPath",
    );
}

/// Inactivity counts from the user's last sign-in or re-validation, so a `deleteAfterInactive`
/// shorter than the session lifetime could delete a user whose session is still open: refused,
/// against the written `ttl` or its default (12h).
#[test]
fn delete_after_inactive_is_at_least_the_session_ttl() {
    let config = |delete_after: &str, ttl: Option<&str>| {
        let object = with(
            base_config(),
            "/spec/provisioning",
            json!({"deleteAfterInactive": delete_after}),
        );
        match ttl {
            Some(ttl) => with(object, "/spec/session", json!({"ttl": ttl})),
            None => object,
        }
    };
    let message = gatehouse_crds::rules::MSG_DELETE_AFTER_INACTIVE_TTL;
    for (delete_after, ttl) in [
        ("1h", Some("12h")),
        ("11h59m", None),
        ("6h", Some("720h")),
        ("2h", Some("2h1s")),
    ] {
        assert_rejected(&config(delete_after, ttl), message);
    }
    for (delete_after, ttl) in [
        ("12h", None),
        ("2160h", None),
        ("1h", Some("30m")),
        ("1h", Some("1h")),
        ("720h", Some("720h")),
        ("90m", Some("1.5h")),
    ] {
        let object = config(delete_after, ttl);
        let errors = apply_errors(&sso_config_schema(), &object, None);
        assert!(
            errors.is_empty(),
            "deleteAfterInactive {delete_after} with ttl {ttl:?} refused: {errors:#?}"
        );
    }
    // A session block without a ttl gets the default too.
    let object = with(
        config("1h", None),
        "/spec/session",
        json!({"revocationStaleness": "5m"}),
    );
    assert_rejected(&object, message);
    // The message names the field (no fieldPath: Kubernetes 1.27's CRD schema lacks it).
    let errors = apply_errors(&sso_config_schema(), &config("1h", Some("12h")), None);
    assert!(
        errors
            .iter()
            .any(|e| e.contains(message) && message.starts_with("deleteAfterInactive")),
        "{errors:#?}"
    );
}

#[test]
fn saml_metadata_comes_from_exactly_one_place() {
    let saml = |block: Value| {
        with(
            with(base_config(), "/spec/protocol", json!("saml")),
            "/spec/saml",
            block,
        )
    };
    let ok = saml(
        json!({"idpMetadataUrl": "https://idp.example/md", "roleAttribute": "memberOf", "orgId": "o"}),
    );
    assert!(apply_errors(&sso_config_schema(), &ok, None).is_empty());
    assert_rejected(
        &saml(json!({"roleAttribute": "memberOf", "orgId": "o"})),
        "exactly one of idpMetadataUrl",
    );
    assert_rejected(
        &saml(
            json!({"idpMetadataUrl": "https://idp.example/md", "idpMetadataSecretRef": {"name": "md"},
                     "roleAttribute": "memberOf", "orgId": "o"}),
        ),
        "exactly one of idpMetadataUrl",
    );
}

#[test]
fn sso_user_identity_is_immutable() {
    let schema = open_api_schema(&SsoUser::crd());
    let user = json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "SsoUser",
        "metadata": {"name": "okta-3f9c2a1b7d4e5f60", "namespace": "team-a"},
        "spec": {"config": "portal", "provider": "okta", "subject": "00u1abcd", "suspended": false}
    });
    assert!(apply_errors(&schema, &user, None).is_empty());
    let suspended = with(user.clone(), "/spec/suspended", json!(true));
    assert!(
        apply_errors(&schema, &suspended, Some(&user)).is_empty(),
        "suspending is an allowed update"
    );
    let moved = with(user.clone(), "/spec/subject", json!("someone-else"));
    let errors = apply_errors(&schema, &moved, Some(&user));
    assert!(
        errors.iter().any(|e| e.contains("subject is immutable")),
        "{errors:#?}"
    );
}

#[test]
fn printer_columns_show_what_operators_look_for() {
    let columns = |crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
    };
    let users = columns(SsoUser::crd());
    for name in ["Email", "Role", "Provider", "Last Login"] {
        assert!(
            users.iter().any(|c| c == name),
            "SsoUser lacks printer column {name}: {users:?}"
        );
    }
    let configs = columns(SsoConfig::crd());
    assert!(configs.iter().any(|c| c == "Ready"), "{configs:?}");
    // The deprecated version shows the same columns.
    let crd = gatehouse_crds::sso_config_crd();
    assert_eq!(
        crd.spec.versions[0].additional_printer_columns,
        crd.spec.versions[1].additional_printer_columns
    );
}

#[test]
fn every_field_is_documented_for_kubectl_explain() {
    fn walk(path: &str, schema: &Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let here = format!("{path}.{name}");
                let is_k8s_owned = here.starts_with(".metadata")
                    || here.starts_with(".apiVersion")
                    || here.starts_with(".kind");
                let inside_k8s_type = path.contains(".conditions")
                    || path.contains(".resources")
                    || path.contains("sessionsNotBefore");
                if !is_k8s_owned && !inside_k8s_type && sub.get("description").is_none() {
                    missing.push(here.clone());
                }
                walk(&here, sub, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
    }
    for crd in [SsoConfig::crd(), SsoUser::crd()] {
        let mut missing = Vec::new();
        walk("", &open_api_schema(&crd), &mut missing);
        if crd.spec.names.kind == "SsoConfig" {
            walk("(v1alpha1)", &sso_config_v1alpha1_schema(), &mut missing);
        }
        assert!(
            missing.is_empty(),
            "{}: fields without a description: {missing:#?}",
            crd.spec.names.kind
        );
    }
}

/// Every manifest under `examples/` is accepted; every one under `examples/invalid/` is rejected
/// with the message its first line names (`# expect: <text>`).
#[test]
fn shipped_examples_are_accepted_and_invalid_ones_rejected() {
    let examples = repo_root().join("examples");
    let mut checked = 0;
    for (dir, expect_valid) in [(examples.clone(), true), (examples.join("invalid"), false)] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for file in files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        {
            let text = std::fs::read_to_string(&file).expect("readable example");
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect:"))
                .map(|s| s.trim().to_string());
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
            let mut errors = Vec::new();
            for doc in docs.iter().filter(|d| !d.is_null()) {
                let schema = match doc["kind"].as_str() {
                    Some("SsoConfig") => {
                        // Also as a v1alpha1 client would read it back: the frozen schema
                        // accepts every converted example.
                        if expect_valid && doc["apiVersion"] == "gatehouse.dev/v1alpha2" {
                            let old = gatehouse_crds::conversion::convert(
                                doc.clone(),
                                "gatehouse.dev/v1alpha1",
                            )
                            .expect("converts");
                            errors.extend(apply_errors(&sso_config_v1alpha1_schema(), &old, None));
                        }
                        sso_config_schema_of(doc)
                    }
                    Some("SsoUser") => open_api_schema(&SsoUser::crd()),
                    _ => continue,
                };
                errors.extend(apply_errors(&schema, doc, None));
                checked += 1;
            }
            if expect_valid {
                assert!(
                    errors.is_empty(),
                    "{}: rejected: {errors:#?}",
                    file.display()
                );
            } else {
                let expect = expect.unwrap_or_else(|| {
                    panic!(
                        "{}: first line must be `# expect: <message>`",
                        file.display()
                    )
                });
                assert!(
                    errors.iter().any(|e| e.contains(&expect)),
                    "{}: expected a rejection containing {expect:?}, got {errors:#?}",
                    file.display()
                );
            }
        }
    }
    eprintln!("checked {checked} Gatehouse objects under examples/");
}

#[test]
fn conditions_are_a_map_keyed_by_type_so_each_field_manager_owns_its_own() {
    for (kind, schema) in [
        ("SsoConfig", sso_config_schema()),
        ("SsoUser", open_api_schema(&SsoUser::crd())),
    ] {
        let conditions = &schema["properties"]["status"]["properties"]["conditions"];
        assert_eq!(
            conditions["x-kubernetes-list-type"],
            json!("map"),
            "{kind}: {conditions}"
        );
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            json!(["type"]),
            "{kind}"
        );
        assert!(
            conditions["items"]["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("type"))),
            "{kind}: a map key must be required"
        );
    }
}
