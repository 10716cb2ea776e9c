//! Pure validation of an `SsoConfig`: the checks the CRD's CEL rules make at apply time (so
//! `render` and the webhook catch them offline, with the same messages), plus the ones CEL cannot
//! express (URLs that really parse, values the sidecar's `value=role,…` format cannot carry, names
//! that must fit in a label value).

use std::fmt;
use std::time::Duration;

use gatehouse_crds::consts::{ADMIN_PORT, SIDECAR_PORT};
use gatehouse_crds::names::is_dns1123_label;
use gatehouse_crds::rules::{self, IssuerScheme};
use gatehouse_crds::{
    ClientSecretRef, Protocol, ProvisioningMode, RoleRule, SecretKeyRef, SsoConfigSpec,
};

// The rules the sidecar applies too, with their messages: one definition in `gatehouse_crds`.
pub use gatehouse_crds::rules::{
    MSG_APP_LOGIN_PATH, MSG_ATTRIBUTE_MAPPINGS, MSG_HOOK_PATH, MSG_ISSUER_HTTPS, MSG_ISSUER_URL,
    MSG_PLAIN_TEXT, MSG_RESERVED_ID, MSG_ROLE_MAP_OR_DEFAULT, MSG_ROLE_VALUE, MSG_SKIP_AUTH,
    MSG_TENANT_ID, parse_go_duration,
};

/// One thing wrong with an object, located by its field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Field path in the object, such as `spec.providers.okta.clientSecretRef`.
    pub field: String,
    /// What is wrong and how to fix it. Never contains a secret value.
    pub message: String,
    /// Category, for condition reasons.
    pub kind: ProblemKind,
}

/// What kind of problem; becomes a condition's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The spec itself is wrong.
    InvalidSpec,
    /// A referenced Secret does not exist.
    SecretNotFound,
    /// A referenced Secret lacks the key.
    SecretKeyNotFound,
    /// A referenced key holds something unusable (empty, not text, not a cookie key).
    SecretValueInvalid,
}

impl ProblemKind {
    /// Condition reason for problems of this kind.
    pub fn reason(self) -> &'static str {
        match self {
            ProblemKind::InvalidSpec => "InvalidSpec",
            ProblemKind::SecretNotFound => "SecretNotFound",
            ProblemKind::SecretKeyNotFound => "SecretKeyNotFound",
            ProblemKind::SecretValueInvalid => "SecretValueInvalid",
        }
    }
}

impl Problem {
    /// A problem with the spec itself.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem::of(ProblemKind::InvalidSpec, field, message)
    }

    pub fn of(kind: ProblemKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
            kind,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Join problems into one line for a condition message or an error.
pub fn summarize(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

// Messages shared with the CEL rules of `gatehouse_crds::sso_config`; the examples under
// `examples/invalid/` name them, and tests check both the CRD and `render` report them.
pub const MSG_OIDC_NEEDS_PROVIDER: &str = rules::MSG_OIDC_NEEDS_PROVIDER;
pub const MSG_SAML_NEEDS_BLOCK: &str = "protocol saml needs spec.saml";
pub const MSG_EXCLUSIVE: &str = rules::MSG_EXCLUSIVE_PROVIDER;
/// What the API server says of a `spec.providers.oidc` longer than its `maxItems`.
pub const MSG_TOO_MANY_OIDC: &str =
    "must have at most 16 items: at most 16 generic OIDC providers (besides okta and entra)";
pub const MSG_PUBLIC_URL_HTTPS: &str =
    "publicUrl must use https; set allowInsecureHttp: true to use plain http for local development";
pub const MSG_UPSTREAM_PORT: &str =
    "upstream.port must not be 4180 or 9090: the sidecar listens there";
pub const MSG_PUBLIC_URL_SHAPE: &str =
    "publicUrl must be an absolute URL with no path or query, such as https://portal.example.com";
pub const MSG_ROLE_MAP_UNIQUE: &str = "roleMap values must be unique";
pub const MSG_SAML_METADATA: &str = "set exactly one of idpMetadataUrl and idpMetadataSecretRef";
pub const MSG_SAML_METADATA_URL: &str = "idpMetadataUrl must be an https URL";
pub const MSG_SECRET_NAMESPACE: &str =
    "Secret references cannot name a namespace: the Secret must be in the SsoConfig's namespace";
pub const MSG_MAX_REQUEST_BODY: &str =
    "maxRequestBody must be a size such as 64Mi: a whole number of Ki, Mi or Gi";
pub const MSG_TTL: &str = "ttl must be a duration between 5m and 720h, such as 12h";
pub const MSG_DELETE_AFTER: &str =
    "deleteAfterInactive must be a duration of at least 1h, such as 2160h";

/// Every problem of `spec` for an SsoConfig named `name`. Empty means valid. Only the active
/// protocol's block is checked in depth: the inactive one is never rendered.
pub fn validate(name: &str, spec: &SsoConfigSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut push = |field: &str, message: &str| problems.push(Problem::new(field, message));

    // The name becomes the `gatehouse.dev/inject` label value (at most 63 characters) and the
    // prefix of every owned object's name.
    if !is_dns1123_label(name) {
        push(
            "metadata.name",
            "the SsoConfig name must be a DNS label (lowercase letters, digits, '-', at most 63 characters): pods select it with the label gatehouse.dev/inject",
        );
    }

    let insecure = spec.allow_insecure_http == Some(true);
    check_public_url(&spec.public_url, insecure, &mut push);

    let providers = spec.providers.as_ref();
    let okta = providers.and_then(|p| p.okta.as_ref());
    let entra = providers.and_then(|p| p.entra.as_ref());
    let oidc: &[gatehouse_crds::OidcProvider] = providers.map_or(&[], |p| p.oidc.as_slice());

    match spec.protocol {
        Protocol::Oidc => {
            if okta.is_none() && entra.is_none() && oidc.is_empty() {
                push("spec.providers", MSG_OIDC_NEEDS_PROVIDER);
            }
        }
        Protocol::Saml => {
            if spec.saml.is_none() {
                push("spec.saml", MSG_SAML_NEEDS_BLOCK);
            }
        }
    }

    if let Some(exclusive) = &spec.exclusive_provider {
        let configured = spec.protocol == Protocol::Oidc
            && ((exclusive == "okta" && okta.is_some())
                || (exclusive == "entra" && entra.is_some())
                || oidc.iter().any(|o| &o.id == exclusive));
        if !configured {
            push("spec.exclusiveProvider", MSG_EXCLUSIVE);
        }
    }

    // Issuers and Secret refs are checked whichever protocol is active: the CRD rejects them at
    // apply time either way, so `render` must too.
    let mut issuer_http = false;
    if let Some(okta) = okta {
        issuer_http |= check_issuer("spec.providers.okta.issuer", &okta.issuer, &mut push);
        check_text("spec.providers.okta.orgId", &okta.org_id, &mut push);
        check_groups_claim(
            "spec.providers.okta.groupsClaim",
            okta.groups_claim.as_deref(),
            &mut push,
        );
        check_client_ref(
            "spec.providers.okta.clientSecretRef",
            &okta.client_secret_ref,
            &mut push,
        );
    }
    if let Some(entra) = entra {
        if let Some(issuer) = &entra.issuer {
            issuer_http |= check_issuer("spec.providers.entra.issuer", issuer, &mut push);
        }
        if let Err(message) = rules::check_entra_tenant(&entra.tenant_id) {
            push("spec.providers.entra.tenantId", message);
        }
        if let Some(graph) = &entra.graph_url
            && let Err(message) = rules::check_graph_url(graph)
        {
            push("spec.providers.entra.graphUrl", message);
        }
        check_text("spec.providers.entra.orgId", &entra.org_id, &mut push);
        check_groups_claim(
            "spec.providers.entra.groupsClaim",
            entra.groups_claim.as_deref(),
            &mut push,
        );
        check_client_ref(
            "spec.providers.entra.clientSecretRef",
            &entra.client_secret_ref,
            &mut push,
        );
    }
    if oidc.len() > gatehouse_crds::env::MAX_OIDC_PROVIDERS {
        push("spec.providers.oidc", MSG_TOO_MANY_OIDC);
    }
    for (index, provider) in oidc.iter().enumerate() {
        if oidc[..index]
            .iter()
            .any(|earlier| earlier.id == provider.id)
        {
            push(
                &format!("spec.providers.oidc[{index}].id"),
                rules::MSG_DUPLICATE_PROVIDER_ID,
            );
        }
    }
    for (index, oidc) in oidc.iter().enumerate() {
        let field = |name: &str| format!("spec.providers.oidc[{index}].{name}");
        issuer_http |= check_issuer(&field("issuer"), &oidc.issuer, &mut push);
        if let Err(message) = rules::check_provider_id(&oidc.id) {
            push(&field("id"), message);
        }
        check_text(&field("displayName"), &oidc.display_name, &mut push);
        check_text(&field("orgId"), &oidc.org_id, &mut push);
        check_groups_claim(
            &field("groupsClaim"),
            oidc.groups_claim.as_deref(),
            &mut push,
        );
        check_text(&field("roleClaim"), &oidc.role_claim, &mut push);
        check_role_map(&field("roleMap"), &oidc.role_map, &mut push);
        if oidc.role_map.is_empty() && oidc.default_role.is_none() {
            push(
                &format!("spec.providers.oidc[{index}]"),
                MSG_ROLE_MAP_OR_DEFAULT,
            );
        }
        check_client_ref(
            &field("clientSecretRef"),
            &oidc.client_secret_ref,
            &mut push,
        );
    }
    if issuer_http && !insecure {
        push("spec.providers", MSG_ISSUER_HTTPS);
    }

    if let Some(saml) = &spec.saml {
        if saml.idp_metadata_url.is_some() == saml.idp_metadata_secret_ref.is_some() {
            push("spec.saml", MSG_SAML_METADATA);
        }
        if let Some(url) = &saml.idp_metadata_url
            && (!url.starts_with("https://") || url::Url::parse(url).is_err())
        {
            push("spec.saml.idpMetadataUrl", MSG_SAML_METADATA_URL);
        }
        if let Some(secret_ref) = &saml.idp_metadata_secret_ref {
            check_key_ref("spec.saml.idpMetadataSecretRef", secret_ref, &mut push);
        }
        check_role_map("spec.saml.roleMap", &saml.role_map, &mut push);
        check_text("spec.saml.orgId", &saml.org_id, &mut push);
        if let Some(attribute) = &saml.groups_attribute {
            check_text("spec.saml.groupsAttribute", attribute, &mut push);
        }
    }

    if let Some(port) = spec.upstream.as_ref().and_then(|u| u.port) {
        if port == SIDECAR_PORT || port == ADMIN_PORT {
            push("spec.upstream.port", MSG_UPSTREAM_PORT);
        } else if port == 0 {
            push(
                "spec.upstream.port",
                "upstream.port must be between 1 and 65535",
            );
        }
    }

    if let Some(max) = spec
        .upstream
        .as_ref()
        .and_then(|u| u.max_request_body.as_deref())
        && !is_binary_size(max)
    {
        push("spec.upstream.maxRequestBody", MSG_MAX_REQUEST_BODY);
    }

    if let Some(session) = &spec.session {
        if let Some(ttl) = &session.ttl {
            let ok = parse_go_duration(ttl).is_some_and(|d| {
                d >= Duration::from_secs(5 * 60) && d <= Duration::from_secs(720 * 3600)
            });
            if !ok {
                push("spec.session.ttl", MSG_TTL);
            }
        }
        if let Some(cookie_ref) = &session.cookie_secret_ref {
            check_key_ref("spec.session.cookieSecretRef", cookie_ref, &mut push);
        }
        if let Some(staleness) = &session.revocation_staleness
            && !rules::REVOCATION_STALENESS.check(staleness)
        {
            push(
                "spec.session.revocationStaleness",
                rules::MSG_REVOCATION_STALENESS,
            );
        }
        if let Some(interval) = &session.revalidate_interval
            && !rules::check_revalidate_interval(interval)
        {
            push(
                "spec.session.revalidateInterval",
                rules::MSG_REVALIDATE_INTERVAL,
            );
        }
        if let Some(grace) = &session.revalidate_grace
            && !rules::REVALIDATE_GRACE.check(grace)
        {
            push("spec.session.revalidateGrace", rules::MSG_REVALIDATE_GRACE);
        }
    }

    if let Some(timeouts) = &spec.timeouts {
        for (field, value, message) in [
            (
                "spec.timeouts.requestBody",
                &timeouts.request_body,
                rules::MSG_REQUEST_BODY_TIMEOUT,
            ),
            (
                "spec.timeouts.send",
                &timeouts.send,
                rules::MSG_SEND_TIMEOUT,
            ),
            (
                "spec.timeouts.upstreamResponse",
                &timeouts.upstream_response,
                rules::MSG_UPSTREAM_RESPONSE_TIMEOUT,
            ),
        ] {
            if let Some(value) = value
                && !rules::IO_TIMEOUT.check(value)
            {
                push(field, message);
            }
        }
    }

    if let Some(provisioning) = &spec.provisioning {
        if let Some(Err(message)) = provisioning
            .hook_path
            .as_deref()
            .map(rules::check_hook_path)
        {
            push("spec.provisioning.hookPath", message);
        }
        if let Some(after) = &provisioning.delete_after_inactive {
            if parse_go_duration(after).is_none_or(|d| d < Duration::from_secs(3600)) {
                push("spec.provisioning.deleteAfterInactive", MSG_DELETE_AFTER);
            }
            let ttl = spec.session.as_ref().and_then(|s| s.ttl.as_deref());
            if let Err(message) = rules::check_delete_after_inactive_ttl(after, ttl) {
                push("spec.provisioning.deleteAfterInactive", message);
            }
        }
        let scim_mode = provisioning.mode == Some(ProvisioningMode::Scim);
        match &provisioning.scim {
            None if scim_mode => push("spec.provisioning.scim", rules::MSG_SCIM_NEEDS_TOKEN),
            Some(_) if !scim_mode => push("spec.provisioning.scim", rules::MSG_SCIM_NEEDS_MODE),
            Some(scim) if scim.token_secret_ref.namespace.is_some() => push(
                "spec.provisioning.scim.tokenSecretRef.namespace",
                MSG_SECRET_NAMESPACE,
            ),
            _ => {}
        }
        let providers = usize::from(okta.is_some()) + usize::from(entra.is_some()) + oidc.len();
        if scim_mode
            && spec.protocol == Protocol::Oidc
            && spec.exclusive_provider.is_none()
            && providers > 1
        {
            push("spec.exclusiveProvider", rules::MSG_SCIM_ONE_PROVIDER);
        }
    }

    for (i, path) in spec.skip_auth.iter().enumerate() {
        if let Err(message) = rules::check_skip_auth(path) {
            push(&format!("spec.skipAuth[{i}]"), message);
        }
    }

    if let Some(Err(message)) = spec
        .app_login_path
        .as_deref()
        .map(rules::check_app_login_path)
    {
        push("spec.appLoginPath", message);
    }

    let mappings = spec
        .attribute_mappings
        .iter()
        .map(|(claim, attribute)| (claim.as_str(), attribute.as_str()));
    if let Err(message) = rules::check_attribute_mappings(mappings) {
        push("spec.attributeMappings", message);
    }

    if let Some(access) = &spec.access {
        for (field, message) in rules::check_access(access) {
            push(&format!("spec.access.{field}"), message);
        }
    }
    if let Some(machine) = &spec.machine_auth {
        for (field, message) in rules::check_machine_auth(machine, insecure) {
            push(&format!("spec.machineAuth.{field}"), message);
        }
    }

    problems
}

fn check_public_url(public_url: &str, insecure: bool, push: &mut impl FnMut(&str, &str)) {
    let https = public_url.starts_with("https://");
    let http = public_url.starts_with("http://");
    if !(https || insecure && http) {
        push("spec.publicUrl", MSG_PUBLIC_URL_HTTPS);
        return;
    }
    // The URL parser drops whitespace the sidecar would keep (and trims): refuse it instead.
    let clean = !public_url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control());
    let shape_ok = clean
        && url::Url::parse(public_url).is_ok_and(|u| {
            u.host_str().is_some_and(|h| !h.is_empty())
                && (u.path() == "/" || u.path().is_empty())
                && u.query().is_none()
                && u.fragment().is_none()
                && u.username().is_empty()
                && u.password().is_none()
        });
    if !shape_ok {
        push("spec.publicUrl", MSG_PUBLIC_URL_SHAPE);
    }
}

/// Checks an issuer URL; returns whether it needs `allowInsecureHttp` (plain http, which only a
/// loopback issuer may use, as the sidecar decides).
fn check_issuer(field: &str, issuer: &str, push: &mut impl FnMut(&str, &str)) -> bool {
    match rules::check_issuer(issuer) {
        Ok(IssuerScheme::Https) => false,
        Ok(IssuerScheme::LoopbackHttp) => true,
        // The CRD says this on the spec, where it also checks allowInsecureHttp.
        Err(MSG_ISSUER_HTTPS) => {
            push("spec.providers", MSG_ISSUER_HTTPS);
            false
        }
        Err(message) => {
            push(field, message);
            false
        }
    }
}

/// A free-text value the sidecar reads trimmed.
fn check_groups_claim(field: &str, claim: Option<&str>, push: &mut impl FnMut(&str, &str)) {
    if let Some(claim) = claim
        && !rules::is_claim_name(claim)
    {
        push(field, rules::MSG_GROUPS_CLAIM);
    }
}

fn check_text(field: &str, value: &str, push: &mut impl FnMut(&str, &str)) {
    if !rules::is_plain_text(value) {
        push(field, MSG_PLAIN_TEXT);
    }
}

fn check_client_ref(field: &str, secret_ref: &ClientSecretRef, push: &mut impl FnMut(&str, &str)) {
    if secret_ref.namespace.is_some() {
        push(&format!("{field}.namespace"), MSG_SECRET_NAMESPACE);
    }
}

fn check_key_ref(field: &str, secret_ref: &SecretKeyRef, push: &mut impl FnMut(&str, &str)) {
    if secret_ref.namespace.is_some() {
        push(&format!("{field}.namespace"), MSG_SECRET_NAMESPACE);
    }
}

fn check_role_map(field: &str, rules: &[RoleRule], push: &mut impl FnMut(&str, &str)) {
    for (i, rule) in rules.iter().enumerate() {
        if rules[..i].iter().any(|r| r.value == rule.value) {
            push(field, MSG_ROLE_MAP_UNIQUE);
            return;
        }
    }
    for (i, rule) in rules.iter().enumerate() {
        if let Err(message) = gatehouse_crds::rules::check_role_value(&rule.value) {
            push(&format!("{field}[{i}].value"), message);
        }
    }
}

/// `^[1-9][0-9]{0,5}(Ki|Mi|Gi)$`, as the CRD's rule for `maxRequestBody`.
fn is_binary_size(s: &str) -> bool {
    let Some(digits) = ["Ki", "Mi", "Gi"]
        .iter()
        .find_map(|unit| s.strip_suffix(unit))
    else {
        return false;
    };
    (1..=6).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_crds::SsoConfig;

    fn config(yaml: &str) -> SsoConfig {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    const VALID: &str = r#"
apiVersion: gatehouse.dev/v1alpha2
kind: SsoConfig
metadata: {name: portal, namespace: team-a}
spec:
  protocol: oidc
  publicUrl: https://portal.example.com
  exclusiveProvider: okta
  providers:
    okta:
      issuer: https://acme.okta.com
      orgId: acme
      clientSecretRef: {name: portal-okta}
    oidc:
      - id: auth0
        displayName: Auth0
        issuer: https://acme.us.auth0.com/
        orgId: acme
        roleClaim: groups
        roleMap: [{value: admins, role: admin}, {value: staff, role: member}]
        clientSecretRef: {name: portal-auth0}
  session: {ttl: 1h30m}
  skipAuth: [/healthz]
"#;

    fn problems_of(yaml: &str) -> Vec<Problem> {
        let c = config(yaml);
        validate(c.metadata.name.as_deref().unwrap_or_default(), &c.spec)
    }

    #[test]
    fn a_complete_config_is_valid() {
        assert_eq!(problems_of(VALID), vec![]);
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "exclusiveProvider: okta",
                "exclusiveProvider: entra",
                "spec.exclusiveProvider",
                MSG_EXCLUSIVE,
            ),
            (
                "https://portal.example.com",
                "http://portal.example.com",
                "spec.publicUrl",
                MSG_PUBLIC_URL_HTTPS,
            ),
            (
                "issuer: https://acme.okta.com",
                "issuer: http://acme.okta.com",
                "spec.providers",
                MSG_ISSUER_HTTPS,
            ),
            (
                "{name: portal-okta}",
                "{name: portal-okta, namespace: other}",
                "spec.providers.okta.clientSecretRef.namespace",
                MSG_SECRET_NAMESPACE,
            ),
            (
                "{value: staff, role: member}",
                "{value: admins, role: member}",
                "spec.providers.oidc[0].roleMap",
                MSG_ROLE_MAP_UNIQUE,
            ),
            (
                "{value: staff, role: member}",
                "{value: ' CN=a,OU=b', role: member}",
                "spec.providers.oidc[0].roleMap[1].value",
                "cannot be empty, start or end with whitespace",
            ),
            ("ttl: 1h30m", "ttl: 1m", "spec.session.ttl", MSG_TTL),
            ("ttl: 1h30m", "ttl: forever", "spec.session.ttl", MSG_TTL),
            (
                "ttl: 1h30m",
                "ttl: 1h30m, revocationStaleness: 25h",
                "spec.session.revocationStaleness",
                rules::MSG_REVOCATION_STALENESS,
            ),
            (
                "skipAuth: [/healthz]",
                "timeouts: {requestBody: 500ms}",
                "spec.timeouts.requestBody",
                rules::MSG_REQUEST_BODY_TIMEOUT,
            ),
            (
                "skipAuth: [/healthz]",
                "timeouts: {send: 2h}",
                "spec.timeouts.send",
                rules::MSG_SEND_TIMEOUT,
            ),
            (
                "skipAuth: [/healthz]",
                "timeouts: {upstreamResponse: soon}",
                "spec.timeouts.upstreamResponse",
                rules::MSG_UPSTREAM_RESPONSE_TIMEOUT,
            ),
            (
                "skipAuth: [/healthz]",
                "skipAuth: [/a/../b]",
                "spec.skipAuth[0]",
                MSG_SKIP_AUTH,
            ),
            (
                "skipAuth: [/healthz]",
                "upstream: {port: 4180}",
                "spec.upstream.port",
                MSG_UPSTREAM_PORT,
            ),
            (
                "skipAuth: [/healthz]",
                "upstream: {maxRequestBody: 64MB}",
                "spec.upstream.maxRequestBody",
                MSG_MAX_REQUEST_BODY,
            ),
            (
                "skipAuth: [/healthz]",
                "upstream: {maxRequestBody: '1048576'}",
                "spec.upstream.maxRequestBody",
                MSG_MAX_REQUEST_BODY,
            ),
            (
                "skipAuth: [/healthz]",
                "upstream: {maxRequestBody: 0Mi}",
                "spec.upstream.maxRequestBody",
                MSG_MAX_REQUEST_BODY,
            ),
            (
                "id: auth0",
                "id: saml",
                "spec.providers.oidc[0].id",
                MSG_RESERVED_ID,
            ),
            (
                "name: portal,",
                "name: Portal_1,",
                "metadata.name",
                "DNS label",
            ),
            (
                "https://portal.example.com",
                "https://portal.example.com/app",
                "spec.publicUrl",
                MSG_PUBLIC_URL_SHAPE,
            ),
        ];
        for (from, to, field, message) in cases {
            let yaml = VALID.replacen(from, to, 1);
            assert_ne!(yaml, VALID, "fixture edit {from:?} applies");
            let problems = problems_of(&yaml);
            assert!(
                problems
                    .iter()
                    .any(|p| p.field == *field && p.message.contains(message)),
                "{to}: expected {field}: {message}, got {problems:?}"
            );
        }
    }

    /// The CRD's CEL rule, offline and for an object that got past it (an older CRD): the
    /// SsoConfig's status names the field.
    #[test]
    fn delete_after_inactive_is_at_least_the_session_ttl() {
        let with = |provisioning: &str| {
            problems_of(&VALID.replacen(
                "  skipAuth: [/healthz]",
                &format!("  skipAuth: [/healthz]\n  provisioning: {provisioning}"),
                1,
            ))
        };
        let refused = Problem::new(
            "spec.provisioning.deleteAfterInactive",
            rules::MSG_DELETE_AFTER_INACTIVE_TTL,
        );
        // VALID's ttl is 1h30m.
        assert_eq!(with("{deleteAfterInactive: 1h}"), vec![refused.clone()]);
        assert_eq!(with("{deleteAfterInactive: 89m59s}"), vec![refused.clone()]);
        assert_eq!(with("{deleteAfterInactive: 90m}"), vec![]);
        assert_eq!(with("{deleteAfterInactive: 2160h}"), vec![]);
        // Without a ttl, against its default (12h).
        let default_ttl = |after: &str| {
            problems_of(
                &VALID.replacen("  session: {ttl: 1h30m}\n", "", 1).replacen(
                    "  skipAuth: [/healthz]",
                    &format!(
                        "  skipAuth: [/healthz]\n  provisioning: {{deleteAfterInactive: {after}}}"
                    ),
                    1,
                ),
            )
        };
        assert_eq!(default_ttl("11h"), vec![refused]);
        assert_eq!(default_ttl("12h"), vec![]);
    }

    /// VALID with `extra` generic providers after its first, `idp-2`, `idp-3`…
    fn with_generic(extra: usize, edit: impl Fn(usize) -> String) -> String {
        let mut yaml = VALID.to_owned();
        let entries: String = (2..=extra + 1)
            .map(|n| {
                format!(
                    "      - {{id: {}, displayName: IdP {n}, issuer: 'https://idp{n}.example/', orgId: acme, roleClaim: groups, defaultRole: member, clientSecretRef: {{name: portal-idp-{n}}}}}\n",
                    edit(n)
                )
            })
            .collect();
        yaml = yaml.replacen(
            "  session: {ttl: 1h30m}",
            &format!("{entries}  session: {{ttl: 1h30m}}"),
            1,
        );
        yaml
    }

    /// The CRD refuses these with the same words (crds/tests/crd_schema.rs).
    #[test]
    fn several_generic_providers_are_checked_as_the_crd_does() {
        let id = |n: usize| format!("idp-{n}");
        assert_eq!(problems_of(&with_generic(2, id)), vec![]);
        // exclusiveProvider may name the third entry.
        let third =
            with_generic(2, id).replacen("exclusiveProvider: okta", "exclusiveProvider: idp-3", 1);
        assert_eq!(problems_of(&third), vec![]);
        let unknown =
            with_generic(2, id).replacen("exclusiveProvider: okta", "exclusiveProvider: idp-4", 1);
        assert_eq!(
            problems_of(&unknown),
            vec![Problem::new("spec.exclusiveProvider", MSG_EXCLUSIVE)]
        );
        // A duplicate id is reported on the later entry.
        let duplicate = with_generic(2, |n| if n == 3 { "auth0".into() } else { id(n) });
        assert_eq!(
            problems_of(&duplicate),
            vec![Problem::new(
                "spec.providers.oidc[2].id",
                rules::MSG_DUPLICATE_PROVIDER_ID
            )]
        );
        // Reserved ids in any entry.
        let reserved = with_generic(2, |n| if n == 2 { "entra".into() } else { id(n) });
        assert_eq!(
            problems_of(&reserved),
            vec![Problem::new("spec.providers.oidc[1].id", MSG_RESERVED_ID)]
        );
        // 16 fit, 17 do not.
        assert_eq!(problems_of(&with_generic(15, id)), vec![]);
        assert_eq!(
            problems_of(&with_generic(16, id)),
            vec![Problem::new("spec.providers.oidc", MSG_TOO_MANY_OIDC)]
        );
        // Every entry's issuer must be https.
        let http = with_generic(2, id).replacen("https://idp3.example/", "http://idp3.example/", 1);
        assert_eq!(
            problems_of(&http),
            vec![Problem::new("spec.providers", MSG_ISSUER_HTTPS)]
        );
        // Only generic providers: enough for protocol oidc; none at all is not.
        let alone = VALID.replacen(
            "    okta:\n      issuer: https://acme.okta.com\n      orgId: acme\n      clientSecretRef: {name: portal-okta}\n",
            "",
            1,
        ).replacen("exclusiveProvider: okta", "exclusiveProvider: auth0", 1);
        assert_ne!(alone, VALID);
        assert_eq!(problems_of(&alone), vec![]);
    }

    #[test]
    fn protocol_needs_its_block() {
        let oidc = problems_of(
            "{apiVersion: gatehouse.dev/v1alpha2, kind: SsoConfig, metadata: {name: a}, spec: {protocol: oidc, publicUrl: 'https://a.example'}}",
        );
        assert_eq!(
            oidc,
            vec![Problem::new("spec.providers", MSG_OIDC_NEEDS_PROVIDER)]
        );
        let saml = problems_of(
            "{apiVersion: gatehouse.dev/v1alpha2, kind: SsoConfig, metadata: {name: a}, spec: {protocol: saml, publicUrl: 'https://a.example'}}",
        );
        assert_eq!(saml, vec![Problem::new("spec.saml", MSG_SAML_NEEDS_BLOCK)]);
    }

    #[test]
    fn exclusive_provider_is_only_for_oidc() {
        let yaml = VALID.replacen("protocol: oidc", "protocol: saml\n  saml: {idpMetadataUrl: 'https://idp.example/m', roleAttribute: memberOf, orgId: acme}", 1);
        let problems = problems_of(&yaml);
        assert_eq!(
            problems,
            vec![Problem::new("spec.exclusiveProvider", MSG_EXCLUSIVE)]
        );
    }

    #[test]
    fn scim_mode_needs_its_token_secret_and_one_provider() {
        let scim = "  provisioning: {mode: scim, scim: {tokenSecretRef: {name: portal-scim}}}\n";
        assert_eq!(problems_of(&format!("{VALID}{scim}")), vec![]);
        assert_eq!(
            problems_of(&format!("{VALID}  provisioning: {{mode: scim}}\n")),
            vec![Problem::new(
                "spec.provisioning.scim",
                rules::MSG_SCIM_NEEDS_TOKEN
            )]
        );
        assert_eq!(
            problems_of(&format!(
                "{VALID}  provisioning: {{scim: {{tokenSecretRef: {{name: s}}}}}}\n"
            )),
            vec![Problem::new(
                "spec.provisioning.scim",
                rules::MSG_SCIM_NEEDS_MODE
            )]
        );
        // VALID has okta and auth0: without exclusiveProvider the pushed users' provider is open.
        let open = format!("{VALID}{scim}").replacen("  exclusiveProvider: okta\n", "", 1);
        assert_eq!(
            problems_of(&open),
            vec![Problem::new(
                "spec.exclusiveProvider",
                rules::MSG_SCIM_ONE_PROVIDER
            )]
        );
        // SAML has one provider.
        let saml = open.replacen("protocol: oidc", "protocol: saml\n  saml: {idpMetadataUrl: 'https://idp.example/m', roleAttribute: memberOf, orgId: acme}", 1);
        assert_eq!(problems_of(&saml), vec![]);
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("12h"),
            Some(Duration::from_secs(12 * 3600))
        );
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "12", "h", "1d", "-1h", "1h-", "1..5h", "12 h"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }
}
