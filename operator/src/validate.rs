//! Pure validation of an `SsoConfig`: the checks the CRD's CEL rules make at apply time (so
//! `render` and the webhook catch them offline, with the same messages), plus the ones CEL cannot
//! express (URLs that really parse, values the sidecar's `value=role,…` format cannot carry, names
//! that must fit in a label value).

use std::fmt;
use std::time::Duration;

use gatehouse_crds::consts::{ADMIN_PORT, SIDECAR_PORT};
use gatehouse_crds::names::is_dns1123_label;
use gatehouse_crds::{ClientSecretRef, Protocol, RoleRule, SecretKeyRef, SsoConfigSpec};

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
pub const MSG_OIDC_NEEDS_PROVIDER: &str = "protocol oidc needs at least one provider: set spec.providers.okta, spec.providers.entra or spec.providers.oidc";
pub const MSG_SAML_NEEDS_BLOCK: &str = "protocol saml needs spec.saml";
pub const MSG_EXCLUSIVE: &str = "exclusiveProvider must name a provider configured under spec.providers (okta, entra, or the id of spec.providers.oidc), and is only used with protocol oidc";
pub const MSG_PUBLIC_URL_HTTPS: &str =
    "publicUrl must use https; set allowInsecureHttp: true to use plain http for local development";
pub const MSG_ISSUER_HTTPS: &str = "provider issuers must use https; set allowInsecureHttp: true to use plain http for local development";
pub const MSG_UPSTREAM_PORT: &str =
    "upstream.port must not be 4180 or 9090: the sidecar listens there";
pub const MSG_PUBLIC_URL_SHAPE: &str =
    "publicUrl must be an absolute URL with no path or query, such as https://portal.example.com";
pub const MSG_ISSUER_URL: &str = "issuer must be an absolute URL";
pub const MSG_RESERVED_ID: &str =
    "id must not be okta, entra, saml or all: those names are reserved";
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
pub const MSG_SKIP_AUTH: &str = "skipAuth entries must be absolute paths without '..', '%', or backslashes, and not under /api/auth/";
pub const MSG_APP_LOGIN_PATH: &str = "appLoginPath must be an absolute path such as /users/sign_in";
pub const MSG_HOOK_PATH: &str = "hookPath must be an absolute path such as /internal/sso-hook";
pub const MSG_ATTRIBUTE_MAPPINGS: &str = "attributeMappings keys must be claim names and values attribute names (letters, digits, '_', '.', '-')";

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
    let oidc = providers.and_then(|p| p.oidc.as_ref());

    match spec.protocol {
        Protocol::Oidc => {
            if okta.is_none() && entra.is_none() && oidc.is_none() {
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
                || oidc.is_some_and(|o| &o.id == exclusive));
        if !configured {
            push("spec.exclusiveProvider", MSG_EXCLUSIVE);
        }
    }

    // Issuers and Secret refs are checked whichever protocol is active: the CRD rejects them at
    // apply time either way, so `render` must too.
    let mut issuer_http = false;
    if let Some(okta) = okta {
        issuer_http |= check_issuer("spec.providers.okta.issuer", &okta.issuer, &mut push);
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
        if entra.tenant_id.is_empty()
            || !entra
                .tenant_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            || !entra.tenant_id.as_bytes()[0].is_ascii_alphanumeric()
        {
            push(
                "spec.providers.entra.tenantId",
                "tenantId must be the directory (tenant) id: a GUID or a verified domain",
            );
        }
        check_client_ref(
            "spec.providers.entra.clientSecretRef",
            &entra.client_secret_ref,
            &mut push,
        );
    }
    if let Some(oidc) = oidc {
        issuer_http |= check_issuer("spec.providers.oidc.issuer", &oidc.issuer, &mut push);
        if ["okta", "entra", "saml", "all"].contains(&oidc.id.as_str()) {
            push("spec.providers.oidc.id", MSG_RESERVED_ID);
        } else if !is_dns1123_label(&oidc.id) || oidc.id.len() > 32 {
            push(
                "spec.providers.oidc.id",
                "id must be lowercase letters, digits and '-', at most 32 characters",
            );
        }
        check_role_map("spec.providers.oidc.roleMap", &oidc.role_map, &mut push);
        check_client_ref(
            "spec.providers.oidc.clientSecretRef",
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
    }

    if let Some(provisioning) = &spec.provisioning {
        if let Some(hook) = &provisioning.hook_path
            && !is_absolute_path(hook)
        {
            push("spec.provisioning.hookPath", MSG_HOOK_PATH);
        }
        if let Some(after) = &provisioning.delete_after_inactive
            && parse_go_duration(after).is_none_or(|d| d < Duration::from_secs(3600))
        {
            push("spec.provisioning.deleteAfterInactive", MSG_DELETE_AFTER);
        }
    }

    for (i, path) in spec.skip_auth.iter().enumerate() {
        let bad = !path.starts_with('/')
            || path.contains("..")
            || path.contains('%')
            || path.contains('\\')
            || path.starts_with("/api/auth/");
        if bad {
            push(&format!("spec.skipAuth[{i}]"), MSG_SKIP_AUTH);
        } else if path.contains(',') {
            // GATEHOUSE_SKIP_AUTH is comma-separated.
            push(
                &format!("spec.skipAuth[{i}]"),
                "skipAuth entries cannot contain ',': the sidecar receives them comma-separated",
            );
        }
    }

    if let Some(path) = &spec.app_login_path
        && !is_absolute_path(path)
    {
        push("spec.appLoginPath", MSG_APP_LOGIN_PATH);
    }

    let names_ok = spec
        .attribute_mappings
        .iter()
        .all(|(claim, attribute)| is_claim_name(claim) && is_attribute_name(attribute));
    if !names_ok {
        push("spec.attributeMappings", MSG_ATTRIBUTE_MAPPINGS);
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
    let shape_ok = url::Url::parse(public_url).is_ok_and(|u| {
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

/// Checks an issuer URL; returns whether it uses plain http (allowed only with
/// `allowInsecureHttp`).
fn check_issuer(field: &str, issuer: &str, push: &mut impl FnMut(&str, &str)) -> bool {
    let parsed = url::Url::parse(issuer);
    match parsed {
        Ok(u) if u.host_str().is_some() && (u.scheme() == "https" || u.scheme() == "http") => {
            u.scheme() == "http"
        }
        _ => {
            push(field, MSG_ISSUER_URL);
            false
        }
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
        // The sidecar receives `value=role,…`: a comma would split one value into two rules.
        if rule.value.contains(',') || rule.value.is_empty() {
            push(
                &format!("{field}[{i}].value"),
                "roleMap values cannot be empty or contain ',': the sidecar receives the map as value=role,…",
            );
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

fn is_absolute_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//")
}

/// `^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$`, as in the CRD.
fn is_claim_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.:-".contains(c))
}

/// `^[A-Za-z_][A-Za-z0-9_.-]{0,62}$`, as in the CRD.
fn is_attribute_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// Parse a duration the way CEL's `duration()` (Go's `time.ParseDuration`) does: a sequence of
/// decimal numbers with units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`, such as `12h` or `1h30m`.
/// Negative durations are refused (no Gatehouse field allows one).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * seconds;
        rest = tail;
    }
    // Go's limit is about 2562047h; anything larger fails to parse there too.
    (total.is_finite() && total < 9.2e9).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_crds::SsoConfig;

    fn config(yaml: &str) -> SsoConfig {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    const VALID: &str = r#"
apiVersion: gatehouse.dev/v1alpha1
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
      id: auth0
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
                "spec.providers.oidc.roleMap",
                MSG_ROLE_MAP_UNIQUE,
            ),
            (
                "{value: staff, role: member}",
                "{value: 'CN=a,OU=b', role: member}",
                "spec.providers.oidc.roleMap[1].value",
                "cannot be empty or contain ','",
            ),
            ("ttl: 1h30m", "ttl: 1m", "spec.session.ttl", MSG_TTL),
            ("ttl: 1h30m", "ttl: forever", "spec.session.ttl", MSG_TTL),
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
                "spec.providers.oidc.id",
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

    #[test]
    fn protocol_needs_its_block() {
        let oidc = problems_of(
            "{apiVersion: gatehouse.dev/v1alpha1, kind: SsoConfig, metadata: {name: a}, spec: {protocol: oidc, publicUrl: 'https://a.example'}}",
        );
        assert_eq!(
            oidc,
            vec![Problem::new("spec.providers", MSG_OIDC_NEEDS_PROVIDER)]
        );
        let saml = problems_of(
            "{apiVersion: gatehouse.dev/v1alpha1, kind: SsoConfig, metadata: {name: a}, spec: {protocol: saml, publicUrl: 'https://a.example'}}",
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
