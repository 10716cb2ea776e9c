//! SsoConfig `gatehouse.dev/v1alpha1` ⇄ `gatehouse.dev/v1alpha2`, on JSON objects: what the
//! operator's conversion webhook answers the API server, and how `gatehouse-operator render`
//! reads old manifests.
//!
//! The versions differ in one field: `spec.providers.oidc` is one provider object in `v1alpha1`
//! and a list in `v1alpha2`. Down-conversion writes the first entry as the object; when there are
//! more, the whole list also goes to the annotation [`ANNOTATION_OIDC_PROVIDERS`], so a client
//! that reads, edits and writes back `v1alpha1` loses none of them. Up-conversion restores the
//! list from that annotation when its first entry still has the object's id (the object, maybe
//! edited, replaces that entry), and always drops the annotation. A garbled annotation is
//! ignored: reading an object never fails because of it. Status is the same in both versions.
//!
//! `spec.provisioning.mode: scim` and `spec.provisioning.scim` exist in `v1alpha2` only.
//! Down-conversion writes the nearest `v1alpha1` mode, `preDeclared` (only declared users sign
//! in), drops `scim`, and keeps both in the annotation [`ANNOTATION_PROVISIONING`]; up-conversion
//! restores them when the mode is still `preDeclared` (a client that chose another mode through
//! `v1alpha1` meant it), and always drops the annotation.

use serde_json::{Map, Value};

/// `apiVersion` of the deprecated SsoConfig version.
pub const V1ALPHA1: &str = "gatehouse.dev/v1alpha1";
/// `apiVersion` of the current SsoConfig version.
pub const V1ALPHA2: &str = crate::SSO_CONFIG_API_VERSION;

/// Annotation of a `v1alpha1` SsoConfig holding every generic provider (a JSON list) when the
/// `v1alpha2` object has more than one. Written and removed by conversion only.
pub const ANNOTATION_OIDC_PROVIDERS: &str = "gatehouse.dev/v1alpha2-oidc";

/// Annotation of a `v1alpha1` SsoConfig holding the `v1alpha2` provisioning `mode` and `scim`
/// (JSON) when the mode is `scim`. Written and removed by conversion only.
pub const ANNOTATION_PROVISIONING: &str = "gatehouse.dev/v1alpha2-provisioning";

/// The `v1alpha1` mode a `v1alpha2` `scim` config is written with.
const SCIM_MODE_IN_V1ALPHA1: &str = "preDeclared";

/// Why an object cannot be converted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConversionError {
    /// The object is not a JSON object.
    NotAnObject,
    /// The object's `apiVersion` is missing or not an SsoConfig version.
    UnknownSource(String),
    /// The requested version is not an SsoConfig version.
    UnknownTarget(String),
}

impl std::fmt::Display for ConversionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConversionError::NotAnObject => {
                f.write_str("the object to convert is not a JSON object")
            }
            ConversionError::UnknownSource(v) => write!(
                f,
                "cannot convert from apiVersion {v:?}: SsoConfig versions are {V1ALPHA1} and {V1ALPHA2}"
            ),
            ConversionError::UnknownTarget(v) => write!(
                f,
                "cannot convert to apiVersion {v:?}: SsoConfig versions are {V1ALPHA1} and {V1ALPHA2}"
            ),
        }
    }
}

impl std::error::Error for ConversionError {}

/// `object` (an SsoConfig in either version) in `desired` (`gatehouse.dev/v1alpha1` or
/// `gatehouse.dev/v1alpha2`).
pub fn convert(object: Value, desired: &str) -> Result<Value, ConversionError> {
    let Value::Object(object) = object else {
        return Err(ConversionError::NotAnObject);
    };
    let source = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if source != V1ALPHA1 && source != V1ALPHA2 {
        return Err(ConversionError::UnknownSource(source));
    }
    match desired {
        V1ALPHA1 => Ok(Value::Object(to_v1alpha1(object))),
        V1ALPHA2 => Ok(Value::Object(to_v1alpha2(object))),
        other => Err(ConversionError::UnknownTarget(other.to_owned())),
    }
}

fn annotations(object: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    object
        .get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()
}

/// Remove [`ANNOTATION_OIDC_PROVIDERS`], and the annotations map when it was the only one.
fn take_annotation(object: &mut Map<String, Value>) -> Option<Value> {
    take_named_annotation(object, ANNOTATION_OIDC_PROVIDERS)
}

/// Remove the annotation `name`, and the annotations map when it was the only one.
fn take_named_annotation(object: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let map = annotations(object)?;
    let taken = map.remove(name)?;
    if map.is_empty()
        && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.remove("annotations");
    }
    Some(taken)
}

/// Set the annotation `name` to `value`, creating the maps as needed.
fn put_annotation(object: &mut Map<String, Value>, name: &str, value: String) {
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(metadata) = metadata {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(annotations) = annotations {
            annotations.insert(name.into(), Value::from(value));
        }
    }
}

fn provisioning(object: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    object
        .get_mut("spec")?
        .get_mut("provisioning")?
        .as_object_mut()
}

/// `v1alpha1` has no `scim` mode nor block: write `preDeclared` and keep both in the annotation.
fn provisioning_to_v1alpha1(object: &mut Map<String, Value>) {
    take_named_annotation(object, ANNOTATION_PROVISIONING);
    let Some(provisioning) = provisioning(object) else {
        return;
    };
    let scim_mode = provisioning.get("mode").and_then(Value::as_str) == Some("scim");
    if !scim_mode && !provisioning.contains_key("scim") {
        return;
    }
    let mut kept = Map::new();
    if scim_mode {
        kept.insert("mode".into(), Value::from("scim"));
        provisioning.insert("mode".into(), Value::from(SCIM_MODE_IN_V1ALPHA1));
    }
    if let Some(scim) = provisioning.remove("scim") {
        kept.insert("scim".into(), scim);
    }
    put_annotation(
        object,
        ANNOTATION_PROVISIONING,
        Value::Object(kept).to_string(),
    );
}

/// Restore what [`provisioning_to_v1alpha1`] kept, unless the mode was changed meanwhile.
fn provisioning_to_v1alpha2(object: &mut Map<String, Value>) {
    let Some(Value::Object(kept)) = take_named_annotation(object, ANNOTATION_PROVISIONING)
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
    else {
        return;
    };
    let Some(provisioning) = provisioning(object) else {
        return;
    };
    if provisioning.get("mode").and_then(Value::as_str) != Some(SCIM_MODE_IN_V1ALPHA1) {
        return;
    }
    if kept.get("mode").and_then(Value::as_str) == Some("scim") {
        provisioning.insert("mode".into(), Value::from("scim"));
    }
    if let Some(scim) = kept.get("scim").filter(|s| s.is_object()) {
        provisioning.insert("scim".into(), scim.clone());
    }
}

fn oidc_slot(object: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    object
        .get_mut("spec")?
        .get_mut("providers")?
        .as_object_mut()
}

/// A `v1alpha2` (or `v1alpha1`) SsoConfig written as `v1alpha1`.
fn to_v1alpha1(mut object: Map<String, Value>) -> Map<String, Value> {
    object.insert("apiVersion".into(), Value::from(V1ALPHA1));
    // Only conversion writes it: one set by hand must not be restored later.
    take_annotation(&mut object);
    let mut keep = None;
    if let Some(providers) = oidc_slot(&mut object)
        && let Some(Value::Array(list)) = providers.get("oidc")
    {
        let list = list.clone();
        match list.first() {
            None => {
                providers.remove("oidc");
            }
            Some(first) => {
                providers.insert("oidc".into(), first.clone());
                if list.len() > 1 {
                    keep = Some(Value::Array(list).to_string());
                }
            }
        }
    }
    if let Some(list) = keep {
        put_annotation(&mut object, ANNOTATION_OIDC_PROVIDERS, list);
    }
    provisioning_to_v1alpha1(&mut object);
    object
}

/// A `v1alpha1` (or `v1alpha2`) SsoConfig written as `v1alpha2`.
fn to_v1alpha2(mut object: Map<String, Value>) -> Map<String, Value> {
    object.insert("apiVersion".into(), Value::from(V1ALPHA2));
    let kept = take_annotation(&mut object);
    if let Some(providers) = oidc_slot(&mut object)
        && let Some(Value::Object(current)) = providers.get("oidc")
    {
        let current = Value::Object(current.clone());
        let mut list = vec![current.clone()];
        if let Some(kept) = kept
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            && let Value::Array(kept) = kept
            && kept.iter().all(Value::is_object)
            && let Some(first) = kept.first()
            && first.get("id").is_some()
            && first.get("id") == current.get("id")
        {
            list.extend(kept.into_iter().skip(1));
        }
        providers.insert("oidc".into(), Value::Array(list));
    }
    provisioning_to_v1alpha2(&mut object);
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(id: &str) -> Value {
        json!({"id": id, "displayName": id.to_uppercase(), "issuer": format!("https://{id}.example/"),
               "orgId": "acme", "roleClaim": "groups", "defaultRole": "member",
               "clientSecretRef": {"name": format!("portal-{id}")}})
    }

    fn v2(providers: &[&str]) -> Value {
        let mut object = json!({
            "apiVersion": "gatehouse.dev/v1alpha2", "kind": "SsoConfig",
            "metadata": {"name": "portal", "namespace": "team-a", "uid": "u-1", "resourceVersion": "7",
                         "labels": {"team": "a"}},
            "spec": {"protocol": "oidc", "publicUrl": "https://portal.example.com",
                     "providers": {"okta": {"issuer": "https://acme.okta.com", "orgId": "acme",
                                            "clientSecretRef": {"name": "portal-okta"}}}},
            "status": {"observedGeneration": 3, "callbackUrls": {"okta": "https://portal.example.com/api/auth/callback/okta"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        });
        if !providers.is_empty() {
            object["spec"]["providers"]["oidc"] =
                Value::Array(providers.iter().map(|id| provider(id)).collect());
        }
        object
    }

    fn down(object: Value) -> Value {
        convert(object, V1ALPHA1).expect("converts")
    }

    fn up(object: Value) -> Value {
        convert(object, V1ALPHA2).expect("converts")
    }

    #[test]
    fn v1alpha1_object_becomes_a_one_entry_list() {
        let mut old = v2(&[]);
        old["apiVersion"] = json!(V1ALPHA1);
        old["spec"]["providers"]["oidc"] = provider("auth0");
        let new = up(old.clone());
        assert_eq!(new["apiVersion"], V1ALPHA2);
        assert_eq!(new["spec"]["providers"]["oidc"], json!([provider("auth0")]));
        // Everything else, status included, is untouched.
        assert_eq!(new["status"], old["status"]);
        assert_eq!(new["metadata"], old["metadata"]);
        assert_eq!(
            new["spec"]["providers"]["okta"],
            old["spec"]["providers"]["okta"]
        );
    }

    #[test]
    fn v1alpha2_list_becomes_its_first_entry_and_the_rest_is_kept_in_an_annotation() {
        let new = v2(&["auth0", "google", "keycloak"]);
        let old = down(new.clone());
        assert_eq!(old["apiVersion"], V1ALPHA1);
        assert_eq!(old["spec"]["providers"]["oidc"], provider("auth0"));
        let kept: Value = serde_json::from_str(
            old["metadata"]["annotations"][ANNOTATION_OIDC_PROVIDERS]
                .as_str()
                .expect("annotation"),
        )
        .expect("JSON");
        assert_eq!(kept, new["spec"]["providers"]["oidc"]);
        assert_eq!(old["metadata"]["labels"], new["metadata"]["labels"]);
        assert_eq!(old["status"], new["status"]);

        // One provider: no annotation. None: no oidc field at all.
        let one = down(v2(&["auth0"]));
        assert_eq!(one["spec"]["providers"]["oidc"], provider("auth0"));
        assert!(one["metadata"].get("annotations").is_none(), "{one}");
        let none = down(v2(&[]));
        assert!(none["spec"]["providers"].get("oidc").is_none());
    }

    #[test]
    fn v1alpha2_to_v1alpha1_and_back_is_the_identity() {
        for providers in [
            &[][..],
            &["auth0"][..],
            &["auth0", "google", "keycloak"][..],
        ] {
            let new = v2(providers);
            assert_eq!(up(down(new.clone())), new, "{providers:?}");
            // With annotations of its own, which stay.
            let mut annotated = new.clone();
            annotated["metadata"]["annotations"] = json!({"team.example/owner": "a"});
            assert_eq!(up(down(annotated.clone())), annotated, "{providers:?}");
        }
        // v1alpha1 → v1alpha2 → v1alpha1 too.
        let mut old = v2(&[]);
        old["apiVersion"] = json!(V1ALPHA1);
        old["spec"]["providers"]["oidc"] = provider("auth0");
        assert_eq!(down(up(old.clone())), old);
        // Same version in, same object out.
        assert_eq!(up(v2(&["a", "b"])), v2(&["a", "b"]));
    }

    #[test]
    fn an_edit_made_through_v1alpha1_keeps_the_other_providers() {
        let mut old = down(v2(&["auth0", "google", "keycloak"]));
        old["spec"]["providers"]["oidc"]["displayName"] = json!("Auth0 (staff)");
        let new = up(old);
        let mut edited = provider("auth0");
        edited["displayName"] = json!("Auth0 (staff)");
        assert_eq!(
            new["spec"]["providers"]["oidc"],
            json!([edited, provider("google"), provider("keycloak")])
        );
        assert!(new["metadata"].get("annotations").is_none(), "{new}");
    }

    #[test]
    fn an_annotation_that_no_longer_matches_the_object_is_dropped() {
        // The v1alpha1 client replaced the provider with another one: the old list is stale.
        let mut old = down(v2(&["auth0", "google"]));
        old["spec"]["providers"]["oidc"] = provider("keycloak");
        let new = up(old);
        assert_eq!(
            new["spec"]["providers"]["oidc"],
            json!([provider("keycloak")])
        );
        assert!(new["metadata"].get("annotations").is_none());
        // The client removed the provider: no list, no annotation.
        let mut old = down(v2(&["auth0", "google"]));
        old["spec"]["providers"]
            .as_object_mut()
            .expect("providers")
            .remove("oidc");
        let new = up(old);
        assert!(new["spec"]["providers"].get("oidc").is_none(), "{new}");
        assert!(new["metadata"].get("annotations").is_none());
    }

    #[test]
    fn a_garbled_annotation_is_ignored_never_an_error() {
        for garbage in [
            json!("not json"),
            json!("{\"id\": \"auth0\"}"),
            json!("[]"),
            json!("[1, 2]"),
            json!("[{\"displayName\": \"no id\"}, {\"id\": \"google\"}]"),
            json!(17),
        ] {
            let mut old = v2(&[]);
            old["apiVersion"] = json!(V1ALPHA1);
            old["spec"]["providers"]["oidc"] = provider("auth0");
            old["metadata"]["annotations"] =
                json!({ANNOTATION_OIDC_PROVIDERS: garbage.clone(), "keep": "me"});
            let new = up(old);
            assert_eq!(
                new["spec"]["providers"]["oidc"],
                json!([provider("auth0")]),
                "{garbage}"
            );
            assert_eq!(new["metadata"]["annotations"], json!({"keep": "me"}));
        }
        // A hand-written annotation on a v1alpha2 object is not carried into v1alpha1.
        let mut new = v2(&["auth0"]);
        new["metadata"]["annotations"] =
            json!({ANNOTATION_OIDC_PROVIDERS: "[{\"id\":\"auth0\"},{\"id\":\"evil\"}]"});
        let old = down(new);
        assert!(old["metadata"].get("annotations").is_none(), "{old}");
    }

    #[test]
    fn unknown_versions_are_refused_by_name() {
        let err = convert(v2(&[]), "gatehouse.dev/v1").expect_err("unknown target");
        assert!(err.to_string().contains("\"gatehouse.dev/v1\""), "{err}");
        let mut other = v2(&[]);
        other["apiVersion"] = json!("gatehouse.dev/v9");
        let err = convert(other, V1ALPHA2).expect_err("unknown source");
        assert!(
            err.to_string()
                .contains("cannot convert from apiVersion \"gatehouse.dev/v9\"")
        );
        assert_eq!(
            convert(json!([1]), V1ALPHA2),
            Err(ConversionError::NotAnObject)
        );
    }
    fn scim(object: Value) -> Value {
        let mut object = object;
        object["spec"]["provisioning"] =
            json!({"mode": "scim", "scim": {"tokenSecretRef": {"name": "portal-scim"}}});
        object
    }

    #[test]
    fn scim_provisioning_survives_a_v1alpha1_round_trip() {
        let new = scim(v2(&["auth0", "google"]));
        let old = down(new.clone());
        assert_eq!(
            old["spec"]["provisioning"],
            json!({"mode": "preDeclared"}),
            "v1alpha1 knows neither the mode nor the block"
        );
        assert!(
            old["metadata"]["annotations"][ANNOTATION_PROVISIONING].is_string(),
            "{old}"
        );
        assert_eq!(up(old), new);
        // Without scim, no annotation.
        let plain = down(v2(&[]));
        assert!(plain["metadata"].get("annotations").is_none(), "{plain}");
    }

    #[test]
    fn a_mode_chosen_through_v1alpha1_wins_over_the_kept_scim_block() {
        let mut old = down(scim(v2(&[])));
        old["spec"]["provisioning"]["mode"] = json!("jit");
        let new = up(old);
        assert_eq!(new["spec"]["provisioning"], json!({"mode": "jit"}));
        assert!(new["metadata"].get("annotations").is_none(), "{new}");
        // A garbled annotation is dropped, never an error.
        let mut old = down(scim(v2(&[])));
        old["metadata"]["annotations"][ANNOTATION_PROVISIONING] = json!("{not json");
        let new = up(old);
        assert_eq!(new["spec"]["provisioning"], json!({"mode": "preDeclared"}));
    }
}
