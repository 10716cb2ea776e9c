//! The rules both halves of the contract apply to the values the operator renders into the
//! sidecar's environment, defined once.
//!
//! Each rule is a pure function with one message. The CRD's CEL rule (where CEL can say it) uses
//! the message as is; the operator's validation (`render`, the webhook, the reconciler) reports it
//! on the field; the sidecar's start-up check reports it after the variable's name. So what the
//! operator accepts, the sidecar runs, and what the sidecar would refuse is refused at apply time
//! with the same words.

use crate::consts::{
    DEFAULT_SESSION_TTL, LOGIN_PATH, PROVIDER_ENTRA, PROVIDER_OKTA, PROVIDER_SAML,
};

/// Provider ids the generic OIDC provider cannot take: the built-in providers', SAML's, and
/// `all` (the break-glass value of `/login?providers=all`).
pub const RESERVED_PROVIDER_IDS: [&str; 4] = [PROVIDER_OKTA, PROVIDER_ENTRA, PROVIDER_SAML, "all"];

/// Prefix of the sidecar's own routes (sign-in, callbacks, logout, session); never proxied.
pub const AUTH_ROUTES_PREFIX: &str = "/api/auth/";

/// Entra ID tenant aliases that stand for many tenants.
pub const MULTI_TENANT_ALIASES: [&str; 3] = ["common", "organizations", "consumers"];

pub const MSG_RESERVED_ID: &str =
    "id must not be okta, entra, saml or all: those names are reserved";
pub const MSG_DUPLICATE_PROVIDER_ID: &str =
    "the ids of spec.providers.oidc must be unique: each provider has its own callback URL";
pub const MSG_OIDC_NEEDS_PROVIDER: &str = "protocol oidc needs at least one provider: set spec.providers.okta, spec.providers.entra or an entry of spec.providers.oidc";
pub const MSG_EXCLUSIVE_PROVIDER: &str = "exclusiveProvider must name a provider configured under spec.providers (okta, entra, or the id of an entry of spec.providers.oidc), and is only used with protocol oidc";
pub const MSG_PROVIDER_ID: &str = "id must be 1-32 lowercase letters, digits or '-', starting and ending with a letter or digit (it is a URL path segment)";
pub const MSG_SKIP_AUTH: &str = "skipAuth entries must be paths such as /healthz or /assets/: '/' then only letters, digits and -._~!$&'()*+=:@/ (no '//', no '.' or '..' segment, no query, '%', ',' or ';'); not '/' itself (use authMode: optional) and not under /api/auth/ (the sidecar's own routes)";
pub const MSG_APP_LOGIN_PATH: &str = "appLoginPath must be a path such as /users/sign_in: '/' then only letters, digits and -._~!$&'()*+=:@/ (no '//', no '.' or '..' segment, no query, '%', ',' or ';'); not /login or under /api/auth/ (the sidecar serves those itself)";
pub const MSG_HOOK_PATH: &str = "hookPath must be a path such as /internal/sso-hook: '/' then only letters, digits and -._~!$&'()*+=:@/ (no '//', no '.' or '..' segment, no query, '%', ',' or ';')";
pub const MSG_TENANT_ID: &str = "tenantId must be the directory (tenant) id, a GUID or a verified domain; the multi-tenant aliases common, organizations and consumers are refused: they have no single issuer, and any tenant's administrators could grant themselves roles";
pub const MSG_ISSUER_URL: &str =
    "issuer must be an absolute http(s) URL with a host and no query, fragment or whitespace";
pub const MSG_ISSUER_HTTPS: &str = "provider issuers must use https; plain http is accepted only for a localhost or loopback issuer (local development), with allowInsecureHttp: true";
pub const MSG_PLAIN_TEXT: &str = "must not be empty, start or end with whitespace, or contain control characters (the sidecar trims what it reads)";
pub const MSG_ROLE_VALUE: &str =
    "roleMap values cannot be empty, start or end with whitespace or contain control characters";
pub const MSG_ROLE_MAP_OR_DEFAULT: &str =
    "set roleMap, defaultRole or both: with neither, every user would be denied";
pub const MSG_ATTRIBUTE_MAPPINGS: &str = "attributeMappings keys must be claim names and values attribute names (letters, digits, '_', '.', '-'), each attribute name used once";

/// Characters a configured path may hold besides ASCII letters and digits: RFC 3986's unreserved
/// characters and the sub-delimiters that mean nothing special to the sidecar's path matching
/// (`,` separates list entries in the environment, `;` makes a request path ambiguous, `%`
/// encodes).
const PATH_PUNCTUATION: &[u8] = b"/-._~!$&'()*+=:@";

/// CEL: a path in the shape [`is_route_path`] accepts (`p` names the string).
pub const CEL_ROUTE_PATH: &str =
    r#"p.matches("^/([-A-Za-z0-9._~!$&'()*+=:@]+/?)*$") && !p.matches("(^|/)[.][.]?(/|$)")"#;

/// Whether `path` is a path the sidecar can configure: `/`, then segments of letters, digits and
/// [`PATH_PUNCTUATION`], no empty segment (`//`), no `.` or `..` segment. Such a path is its own
/// canonical form, so matching it against a request's canonical path is exact.
pub fn is_route_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || PATH_PUNCTUATION.contains(&b))
        && !path.contains("//")
        && !rest.split('/').any(|s| s == "." || s == "..")
}

/// Whether `path` is `prefix` without its trailing `/`, or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix) || path == prefix.trim_end_matches('/')
}

/// One skip-auth path prefix (`spec.skipAuth[i]`, an entry of `GATEHOUSE_SKIP_AUTH`).
pub fn check_skip_auth(path: &str) -> Result<(), &'static str> {
    let ok = is_route_path(path) && path != "/" && !under(path, AUTH_ROUTES_PREFIX);
    ok.then_some(()).ok_or(MSG_SKIP_AUTH)
}

/// The app's own login page (`spec.appLoginPath`, `GATEHOUSE_APP_LOGIN_PATH`).
pub fn check_app_login_path(path: &str) -> Result<(), &'static str> {
    let ok = is_route_path(path) && path != LOGIN_PATH && !under(path, AUTH_ROUTES_PREFIX);
    ok.then_some(()).ok_or(MSG_APP_LOGIN_PATH)
}

/// The provisioning hook on the app (`spec.provisioning.hookPath`, `GATEHOUSE_PROVISION_HOOK`).
pub fn check_hook_path(path: &str) -> Result<(), &'static str> {
    is_route_path(path).then_some(()).ok_or(MSG_HOOK_PATH)
}

/// CEL for [`check_entra_tenant`].
pub const CEL_TENANT_ID: &str = r#"self.matches("^[A-Za-z0-9][A-Za-z0-9.-]*$") && !self.matches("^(?i)(common|organizations|consumers)$")"#;

/// An Entra ID directory (tenant) id: a GUID or a verified domain, not a multi-tenant alias.
///
/// `common`, `organizations` and `consumers` are refused rather than supported: tokens signed in
/// through them carry each user's home tenant as issuer, so no single issuer can be checked, and
/// the `roles` claim would be granted by whichever tenant the user comes from.
pub fn check_entra_tenant(tenant: &str) -> Result<(), &'static str> {
    let bytes = tenant.as_bytes();
    let shape = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-');
    let alias = MULTI_TENANT_ALIASES
        .iter()
        .any(|a| a.eq_ignore_ascii_case(tenant));
    (shape && !alias).then_some(()).ok_or(MSG_TENANT_ID)
}

/// The id of a generic OIDC provider (`spec.providers.oidc[i].id`, `OIDC_PROVIDER_ID`,
/// `OIDC_<n>_PROVIDER_ID`).
pub fn check_provider_id(id: &str) -> Result<(), &'static str> {
    if RESERVED_PROVIDER_IDS.contains(&id) {
        return Err(MSG_RESERVED_ID);
    }
    let ok = (1..=32).contains(&id.len()) && crate::names::is_dns1123_label(id);
    ok.then_some(()).ok_or(MSG_PROVIDER_ID)
}

/// How an issuer URL is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuerScheme {
    /// https: accepted everywhere.
    Https,
    /// Plain http to localhost or a loopback address: local development only.
    LoopbackHttp,
}

/// `spec.providers.entra.graphUrl`: an https URL with no query, fragment or whitespace (the
/// sidecar sends access tokens there).
pub const CEL_GRAPH_URL: &str = r#"isURL(self) && url(self).getQuery().size() == 0 && !self.matches("[#\\s]") && self.startsWith("https://")"#;
pub const MSG_GRAPH_URL: &str =
    "graphUrl must be an absolute https URL with no query, fragment or whitespace";

/// `spec.providers.entra.graphUrl` (what [`CEL_GRAPH_URL`] admits): an https URL with a host and
/// no query, fragment, credentials or whitespace.
pub fn check_graph_url(graph: &str) -> Result<(), &'static str> {
    let clean = !graph
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '#');
    let url = url::Url::parse(graph).ok().filter(|url| {
        url.host_str().is_some_and(|h| !h.is_empty())
            && url.query().is_none()
            && url.username().is_empty()
            && url.password().is_none()
    });
    (clean && url.is_some() && graph.starts_with("https://"))
        .then_some(())
        .ok_or(MSG_GRAPH_URL)
}

/// CEL for the shape part of [`check_issuer`] (a URL with no query, fragment or whitespace).
pub const CEL_ISSUER: &str = r#"isURL(self) && url(self).getQuery().size() == 0 && !self.matches("[#\\s]") && (self.startsWith("https://") || self.startsWith("http://"))"#;

/// An issuer URL (`spec.providers.*.issuer`, `OKTA_ISSUER`, `ENTRA_ISSUER`, `OIDC_ISSUER`): an
/// absolute https URL with a host and no query or fragment, or plain http to a loopback host.
/// Issuers are compared byte for byte with the token's `iss`, so whitespace is refused rather
/// than trimmed.
pub fn check_issuer(issuer: &str) -> Result<IssuerScheme, &'static str> {
    if issuer
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        return Err(MSG_ISSUER_URL);
    }
    let url = url::Url::parse(issuer).map_err(|_| MSG_ISSUER_URL)?;
    if url.host_str().is_none_or(str::is_empty) || url.query().is_some() {
        return Err(MSG_ISSUER_URL);
    }
    // As written, not as parsed: the token's `iss` is compared byte for byte, and the CRD's rule
    // sees the text.
    if issuer.starts_with("https://") {
        Ok(IssuerScheme::Https)
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let loopback = LOOPBACK_HOSTS.iter().any(|h| {
            authority == *h
                || authority
                    .strip_prefix(h)
                    .is_some_and(|p| p.starts_with(':'))
        });
        if loopback {
            Ok(IssuerScheme::LoopbackHttp)
        } else {
            Err(MSG_ISSUER_HTTPS)
        }
    } else {
        Err(MSG_ISSUER_URL)
    }
}

/// Hosts a plain-http issuer may name, exactly as written (the CRD's rule compares the text).
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Whether the URL's host is `localhost` or a loopback address.
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// CEL for [`is_plain_text`].
pub const CEL_PLAIN_TEXT: &str = r#"self.matches("^[^\\x00-\\x1f\\x7f-\\x9f\\pZ]([^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x1f\\x7f-\\x9f\\pZ])?$")"#;

/// A free-text value the sidecar reads from its environment (org ids, claim names, labels):
/// not empty, no leading or trailing whitespace (the sidecar trims, so it would read another
/// value), no control characters.
pub fn is_plain_text(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with(char::is_whitespace)
        && !value.ends_with(char::is_whitespace)
        && !value.chars().any(char::is_control)
}

/// One claim value of a role map (`value` of a `RoleRule`). The map is rendered as JSON, so any
/// plain text survives, LDAP group DNs (`cn=admins,ou=groups,dc=example,dc=com`) included.
pub fn check_role_value(value: &str) -> Result<(), &'static str> {
    is_plain_text(value).then_some(()).ok_or(MSG_ROLE_VALUE)
}

/// `^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$`: a claim name or dotted path.
pub fn is_claim_name(s: &str) -> bool {
    name_like(s, 128, b"_.:-")
}

/// `^[A-Za-z_][A-Za-z0-9_.-]{0,62}$`: a key of an SsoUser's `status.attributes`.
pub fn is_attribute_name(s: &str) -> bool {
    name_like(s, 63, b"_.-")
}

fn name_like(s: &str, max: usize, punctuation: &[u8]) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || punctuation.contains(c))
}

/// Claim → attribute mappings: claim names, attribute names, each attribute used once.
pub fn check_attribute_mappings<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), &'static str> {
    let mut seen: Vec<&str> = Vec::new();
    for (claim, attribute) in pairs {
        if !is_claim_name(claim) || !is_attribute_name(attribute) || seen.contains(&attribute) {
            return Err(MSG_ATTRIBUTE_MAPPINGS);
        }
        seen.push(attribute);
    }
    Ok(())
}

/// A duration the way CEL's `duration()` (Go's `time.ParseDuration`) reads it: decimal numbers
/// with units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`, such as `12h`, `1h30m` or `1.5h`. Negative
/// durations are refused (no Gatehouse field allows one).
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(std::time::Duration::ZERO);
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
    (total.is_finite() && total < 9.2e9).then(|| std::time::Duration::from_secs_f64(total))
}

/// The range a duration setting may take, the same for the CRD's CEL rule, the operator's
/// validation and the sidecar's start-up check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationBounds {
    /// Shortest allowed.
    pub min: std::time::Duration,
    /// Longest allowed.
    pub max: std::time::Duration,
    /// `min` as written in CEL and messages (a Go duration such as `1s`).
    pub min_text: &'static str,
    /// `max` as written in CEL and messages (a Go duration such as `1h`).
    pub max_text: &'static str,
}

impl DurationBounds {
    /// Whether `duration` is within the bounds.
    pub fn contains(&self, duration: std::time::Duration) -> bool {
        (self.min..=self.max).contains(&duration)
    }

    /// The bounds as a range.
    pub fn range(&self) -> std::ops::RangeInclusive<std::time::Duration> {
        self.min..=self.max
    }

    /// `1s and 1h`, for messages.
    pub fn text(&self) -> String {
        format!("{} and {}", self.min_text, self.max_text)
    }

    /// CEL: `self` is a duration within the bounds.
    pub fn cel(&self) -> String {
        format!(
            "duration(self) >= duration('{}') && duration(self) <= duration('{}')",
            self.min_text, self.max_text
        )
    }

    /// Whether `text`, a Go duration as the CRD holds it, is within the bounds.
    pub fn check(&self, text: &str) -> bool {
        parse_go_duration(text).is_some_and(|d| self.contains(d))
    }
}

/// The sidecar's I/O timeouts (`spec.timeouts.*`; `GATEHOUSE_REQUEST_BODY_TIMEOUT`,
/// `GATEHOUSE_SEND_TIMEOUT`, `GATEHOUSE_UPSTREAM_RESPONSE_TIMEOUT`): 1s to 1h.
pub const IO_TIMEOUT: DurationBounds = DurationBounds {
    min: std::time::Duration::from_secs(1),
    max: std::time::Duration::from_secs(3600),
    min_text: "1s",
    max_text: "1h",
};

/// How long the SsoUser watch may be silent before every session is refused
/// (`spec.session.revocationStaleness`, `GATEHOUSE_REVOCATION_STALENESS`): 1s to 24h.
pub const REVOCATION_STALENESS: DurationBounds = DurationBounds {
    min: std::time::Duration::from_secs(1),
    max: std::time::Duration::from_secs(24 * 3600),
    min_text: "1s",
    max_text: "24h",
};

/// How often an OIDC session is re-validated at the IdP with its refresh token
/// (`spec.session.revalidateInterval`, `GATEHOUSE_REVALIDATE_INTERVAL`): 1s to 24h, or `0s` for
/// never (see [`REVALIDATE_OFF`]).
pub const REVALIDATE_INTERVAL: DurationBounds = DurationBounds {
    min: std::time::Duration::from_secs(1),
    max: std::time::Duration::from_secs(24 * 3600),
    min_text: "1s",
    max_text: "24h",
};

/// The `revalidateInterval` that turns re-validation off.
pub const REVALIDATE_OFF: &str = "0s";

/// How long a session due for re-validation is kept while the IdP cannot be asked
/// (`spec.session.revalidateGrace`, `GATEHOUSE_REVALIDATE_GRACE`): 1s to 168h (a week).
pub const REVALIDATE_GRACE: DurationBounds = DurationBounds {
    min: std::time::Duration::from_secs(1),
    max: std::time::Duration::from_secs(168 * 3600),
    min_text: "1s",
    max_text: "168h",
};

/// Whether `text` is a valid `revalidateInterval`: within [`REVALIDATE_INTERVAL`], or zero (off).
/// Spelled with a unit as the schema's pattern requires (`0s`, not `0`).
pub fn check_revalidate_interval(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit())
        && text.ends_with(['s', 'm', 'h'])
        && parse_go_duration(text).is_some_and(|d| d.is_zero() || REVALIDATE_INTERVAL.contains(d))
}

/// CEL for [`check_revalidate_interval`].
pub fn revalidate_interval_cel() -> String {
    format!(
        "duration(self) == duration('0s') || ({})",
        REVALIDATE_INTERVAL.cel()
    )
}

pub const MSG_REQUEST_BODY_TIMEOUT: &str =
    "timeouts.requestBody must be a duration between 1s and 1h, such as 60s";
pub const MSG_SEND_TIMEOUT: &str =
    "timeouts.send must be a duration between 1s and 1h, such as 60s";
pub const MSG_UPSTREAM_RESPONSE_TIMEOUT: &str =
    "timeouts.upstreamResponse must be a duration between 1s and 1h, such as 5m";
pub const MSG_REVOCATION_STALENESS: &str =
    "revocationStaleness must be a duration between 1s and 24h, such as 5m";
pub const MSG_REVALIDATE_INTERVAL: &str =
    "revalidateInterval must be 0s (off) or a duration between 1s and 24h, such as 15m";
pub const MSG_REVALIDATE_GRACE: &str =
    "revalidateGrace must be a duration between 1s and 168h, such as 1h";

pub const MSG_DELETE_AFTER_INACTIVE_TTL: &str = "deleteAfterInactive must be at least the session ttl (default 12h): inactivity counts from the user's last sign-in or re-validation, so a shorter limit could delete a user whose session is still open";

/// CEL on the SsoConfig's spec for [`check_delete_after_inactive_ttl`]: `deleteAfterInactive`, when
/// set, is at least `session.ttl`, or [`DEFAULT_SESSION_TTL`] when that is unset.
pub fn delete_after_inactive_ttl_cel() -> String {
    format!(
        "!has(self.provisioning) || !has(self.provisioning.deleteAfterInactive) || duration(self.provisioning.deleteAfterInactive) >= duration(has(self.session) && has(self.session.ttl) ? self.session.ttl : '{DEFAULT_SESSION_TTL}')"
    )
}

pub const MSG_SCIM_NEEDS_TOKEN: &str = "provisioning mode scim needs provisioning.scim.tokenSecretRef: the Secret (in this namespace) whose key token holds the bearer token the identity provider sends";
pub const MSG_SCIM_NEEDS_MODE: &str =
    "provisioning.scim is only used with provisioning mode scim: set mode: scim, or remove scim";
pub const MSG_SCIM_ONE_PROVIDER: &str = "provisioning mode scim with more than one provider needs exclusiveProvider: it names the provider the users pushed over SCIM sign in with (one identity provider per SCIM-enabled SsoConfig)";

/// Fewest characters of a SCIM bearer token (`token`, `previousToken`; `SCIM_TOKEN`,
/// `SCIM_PREVIOUS_TOKEN`).
pub const MIN_SCIM_TOKEN_LEN: usize = 16;
pub const MSG_SCIM_TOKEN: &str = "the SCIM bearer token must be at least 16 characters (generate one with `openssl rand -base64 32`)";

/// A SCIM bearer token: at least [`MIN_SCIM_TOKEN_LEN`] characters. The message never holds the
/// value.
pub fn check_scim_token(token: &str) -> Result<(), &'static str> {
    (token.chars().count() >= MIN_SCIM_TOKEN_LEN)
        .then_some(())
        .ok_or(MSG_SCIM_TOKEN)
}

/// CEL on the SsoConfig's spec for [`MSG_SCIM_ONE_PROVIDER`]: in `scim` mode, an OIDC config
/// with more than one provider (okta, entra, entries of `providers.oidc`) names
/// `exclusiveProvider`. SAML has one provider.
pub fn scim_one_provider_cel() -> String {
    "!has(self.provisioning) || !has(self.provisioning.mode) || self.provisioning.mode != 'scim' || self.protocol != 'oidc' || has(self.exclusiveProvider) || !has(self.providers) || (has(self.providers.okta) ? 1 : 0) + (has(self.providers.entra) ? 1 : 0) + (has(self.providers.oidc) ? size(self.providers.oidc) : 0) <= 1".to_owned()
}

/// Whether `provisioning.deleteAfterInactive` (`delete_after`) is at least the session lifetime
/// (`session.ttl`, [`DEFAULT_SESSION_TTL`] when unset). Inactivity counts from the last time
/// the identity provider vouched for the user (a sign-in, a re-validation), and a session lasts
/// `ttl` from its sign-in, so with this no session outlives its user's deletion. Values that do
/// not parse pass here: their own checks report them.
pub fn check_delete_after_inactive_ttl(
    delete_after: &str,
    ttl: Option<&str>,
) -> Result<(), &'static str> {
    let ttl = parse_go_duration(ttl.unwrap_or(DEFAULT_SESSION_TTL));
    match (parse_go_duration(delete_after), ttl) {
        (Some(delete_after), Some(ttl)) if delete_after < ttl => Err(MSG_DELETE_AFTER_INACTIVE_TTL),
        _ => Ok(()),
    }
}

/// A duration as the sidecar's variables take it: whole hours, minutes and seconds (`12h`,
/// `1h30m`), milliseconds when there is a fraction of a second. `1.5h` becomes `1h30m`.
pub fn duration_env(duration: std::time::Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let secs = millis / 1000;
    let mut out = String::new();
    for (amount, unit) in [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")] {
        if amount != 0 {
            out.push_str(&format!("{amount}{unit}"));
        }
    }
    out
}

// ---- spec.access -------------------------------------------------------------------------------

pub const MSG_RULE_NAMES_UNIQUE: &str = "access rule names must be unique";
pub const MSG_RULE_NAME: &str = "an access rule's name must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit";
pub const MSG_TOO_MANY_RULES: &str = "at most 64 access rules";
pub const MSG_TOO_MANY_ENTRIES: &str = "at most 16 entries in each of from, to and when";
pub const MSG_RULE_VALUES: &str = "each list of a from or to entry holds 1 to 64 values";
pub const MSG_EMPTY_PRINCIPAL: &str = "a from entry needs at least one field (authenticated, roles, groups, emails, emailDomains, users, providers, principalTypes, serviceAccounts or clients); to match every request, leave from out";
pub const MSG_AUTHENTICATED_TRUE: &str =
    "authenticated can only be true; a rule without from already matches anonymous requests";
pub const MSG_EMPTY_OPERATION: &str = "a to entry needs at least one of hosts, paths or methods; to match every request, leave to out";
pub const MSG_RULE_PATH: &str = "paths must be paths such as /admin or /api/: '/' then only letters, digits and -._~!$&'()*+=:@/ (no '//', no '.' or '..' segment, no query, '%', ',' or ';')";
pub const MSG_RULE_EMAIL: &str =
    "emails must be whole addresses with exactly one '@', such as ada@example.com";
pub const MSG_RULE_DOMAIN: &str =
    "emailDomains and hosts must be DNS names such as example.com (hosts in lower case, no port)";
pub const MSG_RULE_NAME_LIST: &str = "users, providers and clients must be Kubernetes names (lowercase letters, digits, '-', users also '.')";
pub const MSG_RULE_SERVICE_ACCOUNT: &str =
    "serviceAccounts must be namespace/name, such as ci/deployer";
pub const MSG_WHEN_VALUES_OR_PRESENT: &str =
    "a when condition needs exactly one of values and present";
pub const MSG_WHEN_CLAIM: &str = "a when condition's claim must be a claim name or dotted path (letters, digits, '_', '.', ':', '-'; at most 128)";

/// CEL: `self` is a claim name or dotted path ([`is_claim_name`]).
pub const CEL_CLAIM_NAME: &str = r#"self.matches("^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")"#;
pub const MSG_GROUPS_CLAIM: &str = "groupsClaim must be a claim name or dotted path (letters, digits, '_', '.', ':', '-'; at most 128)";

pub const MSG_MACHINE_ISSUERS_UNIQUE: &str =
    "machineAuth issuers must have unique names and unique issuer URLs";
pub const MSG_MACHINE_ISSUER_NAME: &str = "a machineAuth issuer cannot be named kubernetes: the name is reserved for ServiceAccount tokens";

/// CEL: every element of the list `self` is plain text ([`is_plain_text`]).
pub const CEL_ALL_PLAIN_TEXT: &str = r#"self.all(v, v.matches("^[^\\x00-\\x1f\\x7f-\\x9f\\pZ]([^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x1f\\x7f-\\x9f\\pZ])?$"))"#;

/// `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$` (with `.` too when `dots`), at most `max` bytes.
fn is_k8s_name(s: &str, max: usize, dots: bool) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || (dots && *c == b'.')
        })
}

/// A DNS name: dot-separated labels of letters, digits and inner `-`; lower case only when
/// `lower`.
pub fn is_dns_name(s: &str, lower: bool) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| {
                    (c.is_ascii_alphanumeric() || *c == b'-') && !(lower && c.is_ascii_uppercase())
                })
        })
}

/// An email address a rule names: exactly one `@`, something on each side, no whitespace.
pub fn is_rule_email(s: &str) -> bool {
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    (3..=254).contains(&s.len())
        && !local.is_empty()
        && !domain.is_empty()
        && !s.chars().any(char::is_whitespace)
}

/// Every problem of an access policy, as (field path under `spec.access`, message): what the
/// CRD's schema refuses at apply time, checked again by the operator and by the sidecar when it
/// reads `GATEHOUSE_ACCESS`.
pub fn check_access(access: &crate::access::AccessSpec) -> Vec<(String, &'static str)> {
    use crate::access::MAX_RULE_VALUES;
    let mut problems = Vec::new();
    let mut push = |field: String, message: &'static str| problems.push((field, message));
    if access.rules.len() > crate::access::MAX_ACCESS_RULES {
        push("rules".into(), MSG_TOO_MANY_RULES);
    }
    for (i, rule) in access.rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        if !is_k8s_name(&rule.name, 63, false) {
            push(format!("{at}.name"), MSG_RULE_NAME);
        }
        if access.rules[..i].iter().any(|r| r.name == rule.name) {
            push(format!("{at}.name"), MSG_RULE_NAMES_UNIQUE);
        }
        let max = crate::access::MAX_RULE_ENTRIES;
        if rule.from.len() > max || rule.to.len() > max || rule.when.len() > max {
            push(at.clone(), MSG_TOO_MANY_ENTRIES);
        }
        for (j, p) in rule.from.iter().enumerate() {
            let at = format!("{at}.from[{j}]");
            let lists = [
                p.roles.len(),
                p.groups.len(),
                p.emails.len(),
                p.email_domains.len(),
                p.users.len(),
                p.providers.len(),
                p.principal_types.len(),
                p.service_accounts.len(),
                p.clients.len(),
            ];
            if p.authenticated.is_none() && lists.iter().all(|n| *n == 0) {
                push(at.clone(), MSG_EMPTY_PRINCIPAL);
            }
            if p.authenticated == Some(false) {
                push(format!("{at}.authenticated"), MSG_AUTHENTICATED_TRUE);
            }
            if lists.iter().any(|n| *n > MAX_RULE_VALUES) {
                push(at.clone(), MSG_RULE_VALUES);
            }
            if !p.groups.iter().all(|g| is_plain_text(g) && g.len() <= 256) {
                push(format!("{at}.groups"), MSG_PLAIN_TEXT);
            }
            if !p.emails.iter().all(|e| is_rule_email(e)) {
                push(format!("{at}.emails"), MSG_RULE_EMAIL);
            }
            if !p.email_domains.iter().all(|d| is_dns_name(d, false)) {
                push(format!("{at}.emailDomains"), MSG_RULE_DOMAIN);
            }
            if !p.users.iter().all(|u| is_k8s_name(u, 253, true))
                || !p.providers.iter().all(|u| is_k8s_name(u, 32, false))
                || !p.clients.iter().all(|u| is_k8s_name(u, 63, false))
            {
                push(at.clone(), MSG_RULE_NAME_LIST);
            }
            let service_account = |s: &String| {
                s.split_once('/').is_some_and(|(ns, name)| {
                    is_k8s_name(ns, 63, false) && is_k8s_name(name, 253, true)
                })
            };
            if !p.service_accounts.iter().all(service_account) {
                push(format!("{at}.serviceAccounts"), MSG_RULE_SERVICE_ACCOUNT);
            }
        }
        for (j, o) in rule.to.iter().enumerate() {
            let at = format!("{at}.to[{j}]");
            if o.hosts.is_empty() && o.paths.is_empty() && o.methods.is_empty() {
                push(at.clone(), MSG_EMPTY_OPERATION);
            }
            if [o.hosts.len(), o.paths.len()]
                .iter()
                .any(|n| *n > MAX_RULE_VALUES)
                || o.methods.len() > 16
            {
                push(at.clone(), MSG_RULE_VALUES);
            }
            if !o.hosts.iter().all(|h| is_dns_name(h, true)) {
                push(format!("{at}.hosts"), MSG_RULE_DOMAIN);
            }
            if !o.paths.iter().all(|p| p.len() <= 256 && is_route_path(p)) {
                push(format!("{at}.paths"), MSG_RULE_PATH);
            }
        }
        for (j, w) in rule.when.iter().enumerate() {
            let at = format!("{at}.when[{j}]");
            if w.values.is_empty() == w.present.is_none() {
                push(at.clone(), MSG_WHEN_VALUES_OR_PRESENT);
            }
            if !is_claim_name(&w.claim) {
                push(format!("{at}.claim"), MSG_WHEN_CLAIM);
            }
            if w.values.len() > MAX_RULE_VALUES
                || !w.values.iter().all(|v| is_plain_text(v) && v.len() <= 256)
            {
                push(format!("{at}.values"), MSG_PLAIN_TEXT);
            }
        }
    }
    problems
}

/// Every problem of `spec.machineAuth`, as (field path under `spec.machineAuth`, message): what
/// the CRD's schema refuses, checked again by the operator and by the sidecar when it reads
/// `GATEHOUSE_MACHINE_AUTH`. `insecure`: the SsoConfig's `allowInsecureHttp`.
pub fn check_machine_auth(
    machine: &crate::access::MachineAuthSpec,
    insecure: bool,
) -> Vec<(String, &'static str)> {
    let mut problems = Vec::new();
    if machine.issuers.len() > crate::access::MAX_MACHINE_ISSUERS {
        problems.push(("issuers".to_owned(), "at most 8 machineAuth issuers"));
    }
    for (i, m) in machine.issuers.iter().enumerate() {
        let at = format!("issuers[{i}]");
        if !is_k8s_name(&m.name, 63, false) {
            problems.push((format!("{at}.name"), MSG_PROVIDER_ID));
        } else if m.name == "kubernetes" {
            problems.push((format!("{at}.name"), MSG_MACHINE_ISSUER_NAME));
        }
        if machine.issuers[..i]
            .iter()
            .any(|o| o.name == m.name || o.issuer == m.issuer)
        {
            problems.push((at.clone(), MSG_MACHINE_ISSUERS_UNIQUE));
        }
        for (field, url) in [
            ("issuer", Some(&m.issuer)),
            ("jwksUri", m.jwks_uri.as_ref()),
        ] {
            let Some(url) = url else { continue };
            match check_issuer(url) {
                Ok(IssuerScheme::LoopbackHttp) if !insecure => {
                    problems.push((format!("{at}.{field}"), MSG_ISSUER_HTTPS));
                }
                Ok(_) => {}
                Err(message) => problems.push((format!("{at}.{field}"), message)),
            }
        }
        if m.audiences.is_empty()
            || m.audiences.len() > 16
            || !m
                .audiences
                .iter()
                .all(|a| is_plain_text(a) && a.len() <= 512)
        {
            problems.push((format!("{at}.audiences"), MSG_MACHINE_AUDIENCES));
        }
        if m.role_claim.as_deref().is_some_and(|c| !is_claim_name(c)) {
            problems.push((format!("{at}.roleClaim"), MSG_MACHINE_ROLE_CLAIM));
        }
        if m.role_map
            .iter()
            .any(|r| check_role_value(&r.value).is_err())
        {
            problems.push((format!("{at}.roleMap"), MSG_ROLE_VALUE));
        }
    }
    if let Some(k) = &machine.kubernetes {
        if k.audiences.is_empty()
            || k.audiences.len() > 16
            || !k
                .audiences
                .iter()
                .all(|a| is_plain_text(a) && a.len() <= 512)
        {
            problems.push(("kubernetes.audiences".to_owned(), MSG_MACHINE_AUDIENCES));
        }
        if k.audiences
            .iter()
            .any(|a| API_SERVER_AUDIENCES.contains(&a.as_str()))
        {
            problems.push(("kubernetes.audiences".to_owned(), MSG_API_SERVER_AUDIENCE));
        }
        let service_account = |s: &str| {
            s.split_once('/').is_some_and(|(ns, name)| {
                is_k8s_name(ns, 63, false) && is_k8s_name(name, 253, true)
            })
        };
        if !k.service_accounts.iter().all(|s| service_account(&s.name)) {
            problems.push((
                "kubernetes.serviceAccounts".to_owned(),
                MSG_RULE_SERVICE_ACCOUNT,
            ));
        }
    }
    problems
}

/// Audiences the API server accepts (kubeadm, EKS, most distributions): a ServiceAccount token
/// for one is a credential to the API server, never a client's to an app.
pub const API_SERVER_AUDIENCES: [&str; 2] = [
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
];
pub const MSG_API_SERVER_AUDIENCE: &str = "machineAuth.kubernetes.audiences must not name the API server's own audience (https://kubernetes.default.svc…): its tokens are credentials to the API server";
pub const MSG_MACHINE_ROLE_CLAIM: &str = "roleClaim must be a claim name or dotted path (letters, digits, '_', '.', ':', '-'; at most 128)";
pub const MSG_MACHINE_AUDIENCES: &str =
    "a machineAuth issuer needs 1 to 16 audiences, each plain text of at most 512 characters";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_urls_are_https_without_query_fragment_or_credentials() {
        for ok in [
            "https://graph.microsoft.com",
            "https://graph.microsoft.us/",
            "https://microsoftgraph.chinacloudapi.cn",
        ] {
            assert_eq!(check_graph_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://graph.microsoft.com",
            "http://127.0.0.1:8080",
            "https://graph.microsoft.com?x=1",
            "https://graph.microsoft.com#x",
            "https://user:pw@graph.microsoft.com",
            "https://graph.microsoft.com /",
            "graph.microsoft.com",
            "",
        ] {
            assert_eq!(check_graph_url(bad), Err(MSG_GRAPH_URL), "{bad}");
        }
    }

    #[test]
    fn route_paths() {
        for ok in [
            "/",
            "/healthz",
            "/public/",
            "/@vite/client",
            "/a..b",
            "/.well-known/x",
            "/users/sign_in",
            "/x:y@z!$&'()*+=",
        ] {
            assert!(is_route_path(ok), "{ok:?}");
        }
        for bad in [
            "", "healthz", "//x", "/a//b", "/a/../b", "/..", "/./a", "/a/.", "/a%2e", "/a?b",
            "/a#b", "/a,b", "/a;b", "/a b", "/a\\b", "/café", "/a\n",
        ] {
            assert!(!is_route_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_four_known_mismatches_are_decided() {
        // Refused: `/` would skip authentication for every path.
        assert_eq!(check_skip_auth("/"), Err(MSG_SKIP_AUTH));
        // Accepted: `@` is an ordinary path character that matching keeps as written.
        assert_eq!(check_skip_auth("/@vite/client"), Ok(()));
        // Refused: the sidecar serves its own login page there.
        assert_eq!(check_app_login_path("/login"), Err(MSG_APP_LOGIN_PATH));
        assert_eq!(check_app_login_path("/login/sso"), Ok(()));
        // Refused: no single issuer, and any tenant could grant roles.
        for alias in ["common", "Organizations", "CONSUMERS"] {
            assert_eq!(check_entra_tenant(alias), Err(MSG_TENANT_ID), "{alias}");
        }
        assert_eq!(
            check_entra_tenant("0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90"),
            Ok(())
        );
        assert_eq!(check_entra_tenant("acme.onmicrosoft.com"), Ok(()));
        assert_eq!(check_entra_tenant("-acme"), Err(MSG_TENANT_ID));
    }

    #[test]
    fn skip_auth_and_login_paths_stay_off_the_sidecars_routes() {
        for bad in ["/api/auth", "/api/auth/", "/api/auth/session"] {
            assert_eq!(check_skip_auth(bad), Err(MSG_SKIP_AUTH), "{bad}");
            assert_eq!(check_app_login_path(bad), Err(MSG_APP_LOGIN_PATH), "{bad}");
        }
        assert_eq!(check_skip_auth("/api/authors"), Ok(()));
        assert_eq!(check_hook_path("/"), Ok(()));
        assert_eq!(check_hook_path("/hook?x=1"), Err(MSG_HOOK_PATH));
    }

    #[test]
    fn provider_ids() {
        for reserved in RESERVED_PROVIDER_IDS {
            assert_eq!(check_provider_id(reserved), Err(MSG_RESERVED_ID));
        }
        assert_eq!(check_provider_id("auth0"), Ok(()));
        for bad in ["", "Auth0", "-a", "a-", "a_b", &"a".repeat(33)] {
            assert_eq!(check_provider_id(bad), Err(MSG_PROVIDER_ID), "{bad:?}");
        }
    }

    #[test]
    fn issuers() {
        assert_eq!(
            check_issuer("https://acme.okta.com"),
            Ok(IssuerScheme::Https)
        );
        assert_eq!(
            check_issuer("http://127.0.0.1:4444/"),
            Ok(IssuerScheme::LoopbackHttp)
        );
        assert_eq!(
            check_issuer("http://localhost/realms/x"),
            Ok(IssuerScheme::LoopbackHttp)
        );
        assert_eq!(
            check_issuer("http://keycloak.dev.svc"),
            Err(MSG_ISSUER_HTTPS)
        );
        for bad in [
            "acme.okta.com",
            "https://acme.okta.com?x=1",
            "https://acme.okta.com/#x",
            " https://acme.okta.com",
            "https://acme.okta.com\t",
            "ftp://acme.okta.com",
            "https://",
            "HTTPS://acme.okta.com",
        ] {
            assert_eq!(check_issuer(bad), Err(MSG_ISSUER_URL), "{bad:?}");
        }
        // Loopback as written: the CRD's rule reads the text, not a parsed address.
        for refused in [
            "http://127.1/",
            "http://LOCALHOST/",
            "http://u@localhost/",
            "http://127.0.0.2/",
        ] {
            assert_eq!(check_issuer(refused), Err(MSG_ISSUER_HTTPS), "{refused:?}");
        }
        assert_eq!(
            check_issuer("http://[::1]:9000/"),
            Ok(IssuerScheme::LoopbackHttp)
        );
    }

    #[test]
    fn plain_text_and_role_values() {
        assert!(is_plain_text("acme portal"));
        for bad in ["", " a", "a ", "a\u{a0}", "a\nb", "a\u{0}"] {
            assert!(!is_plain_text(bad), "{bad:?}");
        }
        assert_eq!(check_role_value("CN=admins"), Ok(()));
        assert_eq!(
            check_role_value("cn=hr-admins,ou=groups,dc=example,dc=com"),
            Ok(())
        );
        assert_eq!(check_role_value(" a"), Err(MSG_ROLE_VALUE));
    }

    #[test]
    fn attribute_mappings_use_each_attribute_once() {
        assert_eq!(
            check_attribute_mappings([("dept", "department"), ("org.unit", "unit")]),
            Ok(())
        );
        assert_eq!(
            check_attribute_mappings([("dept", "department"), ("division", "department")]),
            Err(MSG_ATTRIBUTE_MAPPINGS)
        );
        assert_eq!(
            check_attribute_mappings([("9x", "a")]),
            Err(MSG_ATTRIBUTE_MAPPINGS)
        );
    }

    #[test]
    fn duration_messages_name_the_bounds_they_check() {
        for (bounds, messages) in [
            (
                IO_TIMEOUT,
                &[
                    MSG_REQUEST_BODY_TIMEOUT,
                    MSG_SEND_TIMEOUT,
                    MSG_UPSTREAM_RESPONSE_TIMEOUT,
                ][..],
            ),
            (REVOCATION_STALENESS, &[MSG_REVOCATION_STALENESS][..]),
            (REVALIDATE_INTERVAL, &[MSG_REVALIDATE_INTERVAL][..]),
            (REVALIDATE_GRACE, &[MSG_REVALIDATE_GRACE][..]),
        ] {
            assert_eq!(parse_go_duration(bounds.min_text), Some(bounds.min));
            assert_eq!(parse_go_duration(bounds.max_text), Some(bounds.max));
            for message in messages {
                assert!(message.contains(&bounds.text()), "{message}");
            }
        }
        assert!(IO_TIMEOUT.check("1s") && IO_TIMEOUT.check("1h") && !IO_TIMEOUT.check("90m"));
        assert!(!IO_TIMEOUT.check("999ms") && !IO_TIMEOUT.check("soon"));
        assert!(REVOCATION_STALENESS.check("5m") && !REVOCATION_STALENESS.check("25h"));
        assert!(REVALIDATE_GRACE.check("1h") && !REVALIDATE_GRACE.check("169h"));
    }

    #[test]
    fn revalidate_interval_takes_zero_as_off_and_nothing_else_outside_its_bounds() {
        for ok in [REVALIDATE_OFF, "0m", "1s", "15m", "24h"] {
            assert!(check_revalidate_interval(ok), "{ok}");
        }
        for bad in ["999ms", "24h0m1s", "-1s", "+1s", "0", "off", ""] {
            assert!(!check_revalidate_interval(bad), "{bad}");
        }
        assert!(revalidate_interval_cel().contains(&REVALIDATE_INTERVAL.cel()));
    }

    #[test]
    fn durations_render_in_a_form_the_sidecar_reads() {
        let d = |s: &str| duration_env(parse_go_duration(s).expect(s));
        assert_eq!(d("12h"), "12h");
        assert_eq!(d("1.5h"), "1h30m");
        assert_eq!(d("90m"), "1h30m");
        assert_eq!(d("720h"), "720h");
        assert_eq!(d("5m0.5s"), "300500ms");
        assert_eq!(d("1h0m1s"), "1h1s");
    }
}
