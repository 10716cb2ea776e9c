//! `gatehouse-operator render`: offline, no cluster. Reads manifests (SsoConfigs, the Secrets they
//! reference, workloads) and prints, as multi-document YAML, exactly the objects the controller
//! would apply, built by the same pure functions ([`crate::validate`], [`crate::secrets`],
//! [`crate::desired`]).
//!
//! Secrets are printed with `stringData` so they can be read; the operator writes the same keys as
//! `data`. Secret values are `<redacted>` unless `--show-secrets`; a cookie key the operator would
//! generate is `<generated at apply time>`.
//!
//! `render` is a filter: every input object comes out, a workload with the sidecar injected where
//! the webhook would inject it and every other object unchanged (Secrets in the input are shown
//! the same way as rendered ones), so it can sit in a GitOps pipeline as `linkerd inject` does.
//! Objects `render` itself printed (labelled `app.kubernetes.io/managed-by: gatehouse-operator`,
//! named as an input SsoConfig's owned objects) are rendered afresh instead of copied, and never
//! read as referenced Secrets, so `render` of its own output changes nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gatehouse_crds::consts::{LABEL_INJECT, LABEL_MANAGED_BY, MANAGED_BY};
use gatehouse_crds::{SsoConfig, env};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use crate::desired::{self, ConfigRef, Desired, GENERATED_PLACEHOLDER};
use crate::inject::SidecarDefaults;
use crate::inject::workload::{WorkloadInjection, inject_workload};
use crate::secrets::{self, SecretMap};
use crate::validate;

/// Shown instead of a secret value.
pub const REDACTED: &str = "<redacted>";
/// UID placeholder in owner references and `GATEHOUSE_CONFIG_UID` when the input has none.
pub const UID_PLACEHOLDER: &str = "<uid assigned by the API server>";

/// Kinds read as workloads: the sidecar injection renders their pod templates.
const WORKLOAD_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];

/// `path` spelled as serde_path_to_error spells a field (`spec.rules[0].from`): serde_ignored
/// writes `spec.?.rules.0.from`, with `?` for each optional level.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    let mut out = String::new();
    for segment in path.to_string().split('.') {
        if segment == "?" {
            continue;
        }
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// An SsoConfig read from a file.
#[derive(Clone, Debug)]
pub struct SourcedConfig {
    pub file: String,
    pub config: SsoConfig,
}

/// A workload (Pod, Deployment…) read from a file, kept as JSON for the injection step.
#[derive(Clone, Debug)]
pub struct Workload {
    pub file: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub object: Value,
}

/// One input document, in input order: what `render` passes through.
#[derive(Clone, Debug)]
pub struct InputDocument {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub object: Value,
    /// Labelled as created by the operator: render's own earlier output, or a copy of a cluster.
    pub operator_owned: bool,
}

/// Everything `render` read.
#[derive(Clone, Debug, Default)]
pub struct RenderInput {
    pub configs: Vec<SourcedConfig>,
    /// Secrets by namespace, then name (`stringData` already merged into `data`). Secrets the
    /// operator owns are left out: render generates those itself.
    pub secrets: BTreeMap<String, SecretMap>,
    pub workloads: Vec<Workload>,
    /// Why documents that produce nothing were left out (for stderr, never the rendered output).
    pub notes: Vec<String>,
    /// What the input should change (deprecated versions), for stderr.
    pub warnings: Vec<String>,
    /// Every document, in order (Lists unpacked).
    pub documents: Vec<InputDocument>,
}

/// Render `paths` (files, or directories whose `*.yaml`/`*.yml`/`*.json` files are read, not
/// recursively). `Err` holds one line per problem, each naming the file and the field.
pub fn render(paths: &[PathBuf], show_secrets: bool) -> Result<String, Vec<String>> {
    let input = read_inputs(paths)?;
    render_input(&input, show_secrets)
}

/// Read and classify every document of `paths`.
pub fn read_inputs(paths: &[PathBuf]) -> Result<RenderInput, Vec<String>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        match list_files(path) {
            Ok(found) => files.extend(found),
            Err(e) => errors.push(e),
        }
    }
    let mut input = RenderInput::default();
    let mut seen = BTreeMap::new();
    for file in files {
        let shown = file.display().to_string();
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                errors.push(format!("{shown}: cannot read: {e}"));
                continue;
            }
        };
        let docs: Vec<Value> = match serde_saphyr::from_multiple(&text) {
            Ok(docs) => docs,
            Err(e) => {
                errors.push(format!(
                    "{shown}: not valid YAML: {}",
                    one_line(&e.to_string())
                ));
                continue;
            }
        };
        for (index, doc) in docs.into_iter().enumerate() {
            read_document(&shown, index + 1, doc, &mut input, &mut seen, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(errors)
    }
}

fn list_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_dir() {
        let entries =
            std::fs::read_dir(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        files.sort();
        Ok(files)
    } else if path.exists() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(format!("{}: no such file or directory", path.display()))
    }
}

fn read_document(
    file: &str,
    index: usize,
    doc: Value,
    input: &mut RenderInput,
    seen: &mut BTreeMap<(String, String, String), usize>,
    errors: &mut Vec<String>,
) {
    if doc.is_null() {
        return;
    }
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind.is_empty() {
        errors.push(format!("{file}: document {index}: kind: missing"));
        return;
    }
    if kind == "List" {
        if let Some(items) = doc.get("items").and_then(Value::as_array) {
            for item in items.clone() {
                read_document(file, index, item, input, seen, errors);
            }
        }
        return;
    }
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let what = format!("{file}: {kind} {namespace}/{name}");
    let operator_owned = doc
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(LABEL_MANAGED_BY))
        .and_then(Value::as_str)
        == Some(MANAGED_BY);
    input.documents.push(InputDocument {
        kind: kind.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
        object: doc.clone(),
        operator_owned,
    });
    if kind == "SsoUser" {
        input.notes.push(format!(
            "{what}: passed through unchanged: the operator creates no object for an SsoUser; apply it as it is (the sidecar reads it at sign-in, and `suspended: true` keeps that user out)"
        ));
    }
    let relevant =
        kind == "SsoConfig" || kind == "Secret" || WORKLOAD_KINDS.contains(&kind.as_str());
    if !relevant {
        return;
    }
    if name.is_empty() {
        errors.push(format!(
            "{file}: document {index}: {kind}: metadata.name: missing"
        ));
        return;
    }
    if seen
        .insert((kind.clone(), namespace.clone(), name.clone()), index)
        .is_some()
    {
        errors.push(format!("{what}: defined more than once in the input"));
        return;
    }
    match kind.as_str() {
        "SsoConfig" => {
            use gatehouse_crds::conversion::{self, V1ALPHA1, V1ALPHA2};
            let doc = match api_version.as_str() {
                V1ALPHA2 => doc,
                // Read as the cluster reads it: through the conversion webhook's function.
                V1ALPHA1 => {
                    input.warnings.push(format!(
                        "{what}: {}",
                        gatehouse_crds::V1ALPHA1_DEPRECATION_WARNING
                    ));
                    match conversion::convert(doc, V1ALPHA2) {
                        Ok(converted) => converted,
                        Err(e) => {
                            errors.push(format!("{what}: {e}"));
                            return;
                        }
                    }
                }
                _ => {
                    errors.push(format!(
                        "{what}: apiVersion: must be {V1ALPHA2} (or the deprecated {V1ALPHA1})"
                    ));
                    return;
                }
            };
            let doc = &doc;
            // As kubectl's strict field validation: a field the CRD does not define (a typo) is
            // an error here, where a cluster would silently prune it.
            let mut unknown = Vec::new();
            let mut note = |path: serde_ignored::Path<'_>| {
                let path = field_path(&path);
                // Read (and checked above) apart from the typed fields.
                if path != "apiVersion" && path != "kind" {
                    unknown.push(path);
                }
            };
            let strict = serde_ignored::Deserializer::new(doc, &mut note);
            match serde_path_to_error::deserialize::<_, SsoConfig>(strict) {
                Ok(_) if !unknown.is_empty() => {
                    for path in unknown {
                        errors.push(format!(
                            "{what}: {path}: unknown field (the SsoConfig CRD does not define it; a cluster would drop it without a word)"
                        ));
                    }
                }
                Ok(mut config) => {
                    config.metadata.namespace = Some(namespace);
                    input.configs.push(SourcedConfig {
                        file: file.to_string(),
                        config,
                    });
                }
                Err(e) => errors.push(format!(
                    "{what}: {}: {}",
                    e.path(),
                    one_line(&e.inner().to_string())
                )),
            }
        }
        // Render's own output: generated again, never read as a referenced Secret.
        "Secret" if operator_owned => {}
        "Secret" => match serde_path_to_error::deserialize::<_, Secret>(doc) {
            Ok(mut secret) => {
                // As the API server does: stringData is merged into data, and wins.
                if let Some(string_data) = secret.string_data.take() {
                    let data = secret.data.get_or_insert_with(BTreeMap::new);
                    for (k, v) in string_data {
                        data.insert(k, ByteString(v.into_bytes()));
                    }
                }
                input
                    .secrets
                    .entry(namespace)
                    .or_default()
                    .insert(name, secret);
            }
            Err(e) => errors.push(format!(
                "{what}: {}: {}",
                e.path(),
                one_line(&e.inner().to_string())
            )),
        },
        _ => input.workloads.push(Workload {
            file: file.to_string(),
            kind,
            namespace,
            name,
            object: doc,
        }),
    }
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Render what the controller would apply for `input`.
pub fn render_input(input: &RenderInput, show_secrets: bool) -> Result<String, Vec<String>> {
    let mut errors = Vec::new();
    let mut rendered: Vec<(&SourcedConfig, Desired)> = Vec::new();
    let empty = SecretMap::new();
    for sourced in &input.configs {
        let config = &sourced.config;
        let name = config.metadata.name.clone().unwrap_or_default();
        let ns = config.metadata.namespace.clone().unwrap_or_default();
        let prefix = format!("{}: SsoConfig {ns}/{name}", sourced.file);
        let mut problems = validate::validate(&name, &config.spec);
        let namespace_secrets = input.secrets.get(&ns).unwrap_or(&empty);
        let resolved = secrets::resolve(&name, &config.spec, namespace_secrets, "in the input");
        match resolved {
            Err(secret_problems) => problems.extend(secret_problems),
            Ok(resolved) if problems.is_empty() => {
                let config_ref = ConfigRef {
                    name,
                    namespace: ns,
                    uid: config
                        .metadata
                        .uid
                        .clone()
                        .unwrap_or_else(|| UID_PLACEHOLDER.to_string()),
                };
                rendered.push((
                    sourced,
                    desired::build(&config_ref, &config.spec, &resolved),
                ));
            }
            Ok(_) => {}
        }
        errors.extend(problems.iter().map(|p| format!("{prefix}: {p}")));
    }
    let workloads = render_workloads(input);
    errors.extend(workloads.errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut out = String::new();
    if input.configs.is_empty() {
        out.push_str("# No SsoConfig in the input: the operator would apply nothing.\n");
    }
    for (sourced, desired) in &rendered {
        write_config_header(&mut out, sourced);
        for object in objects_of(desired, show_secrets) {
            out.push_str("---\n");
            out.push_str(&to_yaml(&object));
        }
    }
    let regenerated: Vec<(String, String, String)> = rendered
        .iter()
        .flat_map(|(_, desired)| objects_of(desired, true))
        .filter_map(|object| {
            Some((
                object.get("kind")?.as_str()?.to_string(),
                object.pointer("/metadata/namespace")?.as_str()?.to_string(),
                object.pointer("/metadata/name")?.as_str()?.to_string(),
            ))
        })
        .collect();
    for document in &input.documents {
        let identity = (
            document.kind.clone(),
            document.namespace.clone(),
            document.name.clone(),
        );
        if document.operator_owned && regenerated.contains(&identity) {
            continue;
        }
        let injected = workloads
            .injected
            .iter()
            .find(|(key, _, _)| *key == identity);
        let shown = match injected {
            Some((_, header, object)) => {
                let _ = writeln!(out, "# {header}");
                object.clone()
            }
            None => passed_through(document, show_secrets),
        };
        out.push_str("---\n");
        out.push_str(&to_yaml(&shown));
    }
    for note in workloads.notes {
        let _ = writeln!(out, "# {note}");
    }
    Ok(out)
}

/// Workloads after sidecar injection: manifests to print, notes, and one error line per pod
/// template the webhook would refuse.
#[derive(Debug, Default)]
struct RenderedWorkloads {
    /// (kind, namespace, name), header, injected object.
    injected: Vec<((String, String, String), String, Value)>,
    notes: Vec<String>,
    errors: Vec<String>,
}

/// Sidecar injection: each workload's pod template goes through the webhook's pure function
/// ([`crate::inject::workload`]), with the operator's default sidecar settings.
fn render_workloads(input: &RenderInput) -> RenderedWorkloads {
    let defaults = SidecarDefaults::default();
    let mut out = RenderedWorkloads::default();
    for w in &input.workloads {
        let what = format!("{} {}/{} ({})", w.kind, w.namespace, w.name, w.file);
        let config_of = |name: &str| {
            input.configs.iter().map(|s| &s.config).find(|c| {
                c.metadata.name.as_deref() == Some(name)
                    && c.metadata.namespace.as_deref() == Some(w.namespace.as_str())
            })
        };
        match inject_workload(&w.kind, &w.namespace, &w.object, config_of, &defaults) {
            WorkloadInjection::Injected { config, object } => out.injected.push((
                (w.kind.clone(), w.namespace.clone(), w.name.clone()),
                format!("{what}: sidecar injected for SsoConfig {config}"),
                object,
            )),
            WorkloadInjection::NotRequested => out.notes.push(format!(
                "{what}: no {LABEL_INJECT} label on its pod template; not injected"
            )),
            WorkloadInjection::AlreadyInjected => {
                out.notes.push(format!("{what}: already has the sidecar"))
            }
            WorkloadInjection::ConfigNotInInput { config } => out.notes.push(format!(
                "{what}: not injected: SsoConfig {config} is not in the input (without it in namespace {}, the webhook refuses these pods)",
                w.namespace
            )),
            WorkloadInjection::Refused { field, refusal } => out.errors.push(format!(
                "{}: {} {}/{}: {field}: {refusal}",
                w.file, w.kind, w.namespace, w.name
            )),
            WorkloadInjection::NoPodTemplate { field } => out.errors.push(format!(
                "{}: {} {}/{}: {field}: no pod template found",
                w.file, w.kind, w.namespace, w.name
            )),
        }
    }
    out
}

fn write_config_header(out: &mut String, sourced: &SourcedConfig) {
    let config = &sourced.config;
    let _ = writeln!(
        out,
        "# SsoConfig {}/{} ({}), protocol {}",
        config.metadata.namespace.as_deref().unwrap_or_default(),
        config.metadata.name.as_deref().unwrap_or_default(),
        sourced.file,
        config.spec.protocol.as_str()
    );
    let callbacks = desired::callback_urls(&config.spec);
    if !callbacks.is_empty() {
        out.push_str("# Redirect URIs to register at the identity providers:\n");
        for (id, url) in callbacks {
            let _ = writeln!(out, "#   {id}: {url}");
        }
    }
    let backchannel = desired::backchannel_logout_urls(&config.spec);
    if !backchannel.is_empty() {
        out.push_str("# Back-channel logout URIs to register at the identity providers:\n");
        for (id, url) in backchannel {
            let _ = writeln!(out, "#   {id}: {url}");
        }
    }
    if let Some(saml) = desired::saml_urls(&config.spec) {
        out.push_str("# To register at the SAML IdP:\n");
        let _ = writeln!(out, "#   ACS URL: {}", saml.acs_url);
        let _ = writeln!(out, "#   SP metadata URL: {}", saml.metadata_url);
        let _ = writeln!(out, "#   SP entity id: {}", saml.entity_id);
    }
    if let Some(url) = config.spec.scim_url() {
        let secret = config
            .spec
            .provisioning
            .as_ref()
            .and_then(|p| p.scim.as_ref())
            .map(|s| s.token_secret_ref.name.as_str())
            .unwrap_or_default();
        let provider = config.spec.scim_provider().unwrap_or_default();
        let _ = writeln!(
            out,
            "# SCIM 2.0 base URL to register at the identity provider ({provider}), with the bearer token of Secret {secret}:"
        );
        let _ = writeln!(out, "#   {url}");
    }
}

/// An input document as it is passed through: unchanged, except that a Secret's values are shown
/// as `stringData` and redacted like the rendered ones unless `show_secrets`.
fn passed_through(document: &InputDocument, show_secrets: bool) -> Value {
    if document.kind != "Secret" {
        return document.object.clone();
    }
    match serde_json::from_value::<Secret>(document.object.clone()) {
        Ok(mut secret) => {
            if let Some(string_data) = secret.string_data.take() {
                let data = secret.data.get_or_insert_with(BTreeMap::new);
                for (k, v) in string_data {
                    data.insert(k, ByteString(v.into_bytes()));
                }
            }
            secret_for_display(&secret, |_| !show_secrets)
        }
        // Unreadable Secrets were reported as errors already; never print their values.
        Err(_) => Value::Null,
    }
}

/// The owned objects in apply order, as JSON ready to print.
fn objects_of(desired: &Desired, show_secrets: bool) -> Vec<Value> {
    let mut objects = Vec::new();
    objects.push(secret_for_display(&desired.env_secret, |key| {
        !show_secrets && env::is_secret(key)
    }));
    if let Some(cookie) = &desired.cookie_secret {
        objects.push(secret_for_display(cookie, |_| !show_secrets));
    }
    objects.push(to_value(&desired.service_account));
    objects.push(to_value(&desired.role));
    objects.push(to_value(&desired.role_binding));
    objects.push(to_value(&desired.token_secret));
    if let Some(policy) = &desired.network_policy {
        objects.push(to_value(policy));
    }
    if let Some(binding) = &desired.token_review_binding {
        objects.push(to_value(binding));
    }
    objects
}

/// A Secret with `data` shown as `stringData`, values redacted where `redact(key)` says so. The
/// generated-key placeholder is always shown as is.
fn secret_for_display(secret: &Secret, redact: impl Fn(&str) -> bool) -> Value {
    let mut value = to_value(secret);
    let data = secret.data.clone().unwrap_or_default();
    let shown: serde_json::Map<String, Value> = data
        .into_iter()
        .map(|(key, bytes)| {
            let text = String::from_utf8_lossy(&bytes.0).into_owned();
            let text = if text != GENERATED_PLACEHOLDER && redact(&key) {
                REDACTED.to_string()
            } else {
                text
            };
            (key, Value::String(text))
        })
        .collect();
    if let Some(map) = value.as_object_mut() {
        map.remove("data");
        if !shown.is_empty() {
            map.insert("stringData".into(), Value::Object(shown));
        }
    }
    value
}

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    // Kubernetes objects always serialize to JSON.
    serde_json::to_value(object).unwrap_or(Value::Null)
}

fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gatehouse-render-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    const CONFIG: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal, namespace: team-a}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com
  providers:
    okta: {issuer: 'https://acme.okta.com', orgId: acme, clientSecretRef: {name: portal-okta}}
"#;

    const SECRET: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: portal-okta, namespace: team-a}
stringData: {client-id: okta-id}
data: {client-secret: czNjcmV0}
"#;

    #[test]
    fn renders_with_redaction_and_string_data() {
        let dir = temp_dir("ok");
        let file = write(&dir, "a.yaml", &format!("{CONFIG}---{SECRET}"));
        let out = render(std::slice::from_ref(&file), false).expect("renders");
        assert!(out.contains("OKTA_CLIENT_ID: okta-id"), "{out}");
        assert!(out.contains("OKTA_CLIENT_SECRET: <redacted>"), "{out}");
        assert!(!out.contains("s3cret"));
        assert!(
            out.contains("GATEHOUSE_COOKIE_SECRET: <generated at apply time>"),
            "{out}"
        );
        assert!(out.contains("#   okta: https://portal.example.com/api/auth/oauth2/callback/okta"));
        let shown = render(&[file], true).expect("renders");
        assert!(shown.contains("OKTA_CLIENT_SECRET: s3cret"), "{shown}");
        // Every printed document parses back as a Kubernetes object.
        let docs: Vec<Value> = serde_saphyr::from_multiple(&shown).expect("valid YAML");
        let kinds: Vec<&str> = docs
            .iter()
            .filter(|d| !d.is_null())
            .filter_map(|d| d["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "Secret",
                "Secret",
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "Secret",
                "NetworkPolicy",
                // The input, passed through (render is a filter).
                "SsoConfig",
                "Secret"
            ]
        );
    }

    #[test]
    fn a_declared_ssouser_passes_through_unchanged_and_says_why_aside() {
        let dir = temp_dir("ssouser");
        let user = "apiVersion: gatehouse.dev/v1alpha1\nkind: SsoUser\nmetadata: {name: okta-0123456789abcdef, namespace: demo}\nspec: {config: portal, provider: okta, subject: 00u1, suspended: true}\n";
        let file = write(&dir, "user.yaml", user);
        let input = read_inputs(std::slice::from_ref(&file)).expect("reads");
        assert_eq!(
            input.notes,
            [format!(
                "{}: SsoUser demo/okta-0123456789abcdef: passed through unchanged: the operator creates no object for an SsoUser; apply it as it is (the sidecar reads it at sign-in, and `suspended: true` keeps that user out)",
                file.display()
            )]
        );
        // The note is not part of what `render` prints: stdout is the objects to apply, the
        // SsoUser among them as it was written.
        let out = render_input(&input, false).expect("renders");
        assert!(!out.contains("passed through"), "{out}");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&out).expect("valid YAML");
        let users: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "SsoUser").collect();
        assert_eq!(users.len(), 1, "{out}");
        assert_eq!(users[0]["spec"]["suspended"], true, "{out}");
        assert_eq!(
            users[0]["metadata"]["name"], "okta-0123456789abcdef",
            "{out}"
        );
    }

    #[test]
    fn missing_secret_is_one_line_with_file_and_field() {
        let dir = temp_dir("missing");
        let file = write(&dir, "a.yaml", CONFIG);
        let errors = render(std::slice::from_ref(&file), false).expect_err("fails");
        assert_eq!(
            errors,
            [format!(
                "{}: SsoConfig team-a/portal: spec.providers.okta.clientSecretRef: Secret \"portal-okta\" not found in the input",
                file.display()
            )]
        );
    }

    #[test]
    fn secrets_of_another_namespace_do_not_count() {
        let dir = temp_dir("ns");
        let file = write(
            &dir,
            "a.yaml",
            &format!(
                "{CONFIG}---{}",
                SECRET.replace("namespace: team-a", "namespace: team-b")
            ),
        );
        let errors = render(&[file], false).expect_err("fails");
        assert!(
            errors[0].ends_with("Secret \"portal-okta\" not found in the input"),
            "{errors:?}"
        );
    }

    #[test]
    fn type_errors_name_the_field() {
        let dir = temp_dir("types");
        let file = write(
            &dir,
            "a.yaml",
            &CONFIG.replace("protocol: oidc", "protocol: ldap"),
        );
        let errors = render(std::slice::from_ref(&file), false).expect_err("fails");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let prefix = format!(
            "{}: SsoConfig team-a/portal: spec.protocol: unknown variant `ldap`",
            file.display()
        );
        assert!(errors[0].starts_with(&prefix), "{errors:?}");
        let broken = write(&dir, "b.yaml", "kind: [unclosed");
        let errors = render(std::slice::from_ref(&broken), false).expect_err("fails");
        assert!(
            errors[0].starts_with(&format!("{}: not valid YAML: ", broken.display())),
            "{errors:?}"
        );
        let missing = render(&[dir.join("nope.yaml")], false).expect_err("fails");
        assert!(missing[0].ends_with("nope.yaml: no such file or directory"));
    }

    #[test]
    fn unknown_and_misspelled_fields_are_refused_by_path() {
        let dir = temp_dir("strict");
        // The honest config renders.
        let honest = CONFIG.to_owned()
            + "  access:\n    rules:\n    - {name: admins, action: Allow, from: [{roles: [admin]}]}\n";
        let ok = write(&dir, "ok.yaml", &format!("{honest}---{SECRET}"));
        render(std::slice::from_ref(&ok), false).expect("renders");
        // The same with a typo at the top of the spec and one deep in a rule.
        let typo = honest
            .replace("  access:", "  acess: {}\n  access:")
            .replace("from: [{roles", "from: [{role: [member], roles");
        let file = write(&dir, "typo.yaml", &format!("{typo}---{SECRET}"));
        let errors = render(std::slice::from_ref(&file), false).expect_err("fails");
        let prefix = format!("{}: SsoConfig team-a/portal: ", file.display());
        let paths: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.strip_prefix(&prefix))
            .filter_map(|e| e.split_once(": unknown field").map(|(path, _)| path))
            .collect();
        assert_eq!(
            paths,
            ["spec.access.rules[0].from[0].role", "spec.acess"],
            "{errors:?}"
        );
    }

    #[test]
    fn a_directory_is_read_in_name_order_and_duplicates_are_refused() {
        let dir = temp_dir("dir");
        write(&dir, "1-config.yaml", CONFIG);
        write(&dir, "2-secret.yml", SECRET);
        write(&dir, "notes.txt", "ignored");
        assert!(render(std::slice::from_ref(&dir), false).is_ok());
        write(&dir, "3-again.yaml", SECRET);
        let errors = render(&[dir], false).expect_err("fails");
        assert!(
            errors[0].ends_with("Secret team-a/portal-okta: defined more than once in the input"),
            "{errors:?}"
        );
    }
}
