//! Value parsers: one variable's text (or a few related variables) → a checked value, with the
//! contract's shared [`rules`] where the operator applies the same check. Each error names the
//! variable it is about.

use gatehouse_auth::claims::{Role, RolePolicy, RoleRule};
use gatehouse_crds::rules;
use gatehouse_crds::rules::is_loopback_host;

use super::env::{ConfigError, Env};
use super::vars::{self, Variable};

/// A size in bytes: a whole number, optionally with a `Ki`, `Mi` or `Gi` suffix (as Kubernetes
/// writes quantities), at least 1 KiB.
pub(crate) fn parse_byte_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = if let Some(d) = text.strip_suffix("Gi") {
        (d, 30)
    } else if let Some(d) = text.strip_suffix("Mi") {
        (d, 20)
    } else if let Some(d) = text.strip_suffix("Ki") {
        (d, 10)
    } else {
        (text, 0)
    };
    let wrong =
        || format!("must be a size in bytes, like 1048576, 512Ki, 64Mi or 1Gi (got {text:?})");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(wrong());
    }
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(wrong)?;
    if bytes < 1024 {
        return Err(format!("must be at least 1Ki (got {text:?})"));
    }
    Ok(bytes)
}

/// `claim=attribute,…` → pairs, in order. Claim names are exact names or dotted paths (as the
/// SsoConfig's CEL rule allows); attribute names are letters, digits, `_`, `.`, `-`.
pub(crate) fn parse_attribute_mappings(list: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let var = vars::GATEHOUSE_ATTRIBUTE_MAPPINGS.name;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((claim, attribute)) = item.split_once('=') else {
            return Err(ConfigError::new(
                var,
                format!("`{item}` is not `claim=attribute`"),
            ));
        };
        pairs.push((claim.trim().to_owned(), attribute.trim().to_owned()));
    }
    // The shared rule's message, and the first pair it stops at.
    for end in 1..=pairs.len() {
        let prefix = pairs[..end].iter().map(|(c, a)| (c.as_str(), a.as_str()));
        if let Err(message) = rules::check_attribute_mappings(prefix) {
            let (claim, attribute) = &pairs[end - 1];
            return Err(ConfigError::new(
                var,
                format!("{message} (at `{claim}={attribute}`)"),
            ));
        }
    }
    Ok(pairs)
}

/// Parses an issuer URL: https, or http on a loopback host (local tests, the demo), as
/// [`rules::check_issuer`] decides for the operator too.
pub(crate) fn parse_issuer(var: &Variable, value: &str) -> Result<String, ConfigError> {
    rules::check_issuer(value).map_err(|message| ConfigError::new(var.name, message))?;
    // Issuers are compared byte for byte with `iss`; keep what the user wrote.
    Ok(value.to_owned())
}

/// https anywhere; http only for loopback hosts.
pub(crate) fn check_https_or_loopback(var: &str, url: &url::Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(url) => Ok(()),
        "http" => Err(ConfigError::new(
            var,
            "must be https (plain http is accepted only for localhost)",
        )),
        _ => Err(ConfigError::new(var, "must be an https URL")),
    }
}

/// `GATEHOUSE_PUBLIC_URL` (required): an http or https origin, without path, query, fragment or
/// credentials.
pub(crate) fn parse_public_url(env: &Env<'_>) -> Result<url::Url, ConfigError> {
    const VAR: &str = vars::GATEHOUSE_PUBLIC_URL.name;
    let value = env.required(
        &vars::GATEHOUSE_PUBLIC_URL,
        "the URL users open, like https://app.example.com",
    )?;
    let url =
        url::Url::parse(&value).map_err(|e| ConfigError::new(VAR, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ConfigError::new(VAR, "must be an http or https URL"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            VAR,
            "must be an origin like https://app.example.com (no path, query or fragment)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(VAR, "must not contain credentials"));
    }
    Ok(url)
}

/// `GATEHOUSE_UPSTREAM` (default `http://127.0.0.1:8080`): a plain http URL without path, query
/// or credentials; its authority.
pub(crate) fn parse_upstream(env: &Env<'_>) -> Result<http::uri::Authority, ConfigError> {
    const VAR: &str = vars::GATEHOUSE_UPSTREAM.name;
    let value = env.value_or_default(&vars::GATEHOUSE_UPSTREAM)?;
    let uri: http::Uri = value
        .parse()
        .map_err(|e| ConfigError::new(VAR, format!("not a URL ({e})")))?;
    if uri.scheme_str() != Some("http") {
        return Err(ConfigError::new(
            VAR,
            "must be a plain http:// URL (the app runs in the same pod)",
        ));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(ConfigError::new(VAR, "must not have a path or query"));
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| ConfigError::new(VAR, "has no host"))?;
    if authority.as_str().contains('@') {
        return Err(ConfigError::new(VAR, "must not contain credentials"));
    }
    Ok(authority)
}

/// Parses a role map (`OIDC_ROLE_MAP`, `SAML_ROLE_MAP`): the JSON array the operator renders, or
/// the older `value=role,…` form.
pub(crate) fn parse_role_map(var: &Variable, value: &str) -> Result<Vec<RoleRule>, ConfigError> {
    gatehouse_crds::parse_role_map(value).map_err(|e| ConfigError::new(var.name, e.to_string()))
}

/// Builds generic provider `slot`'s role policy from `OIDC_ROLE_CLAIM`, `OIDC_ROLE_MAP`,
/// `OIDC_DEFAULT_ROLE` (numbered for providers 2 and up).
pub(crate) fn claim_role_policy(env: &Env<'_>, slot: usize) -> Result<RolePolicy, ConfigError> {
    role_policy(
        env,
        &vars::for_oidc_slot(vars::OIDC_ROLE_CLAIM, slot),
        &vars::for_oidc_slot(vars::OIDC_ROLE_MAP, slot),
        &vars::for_oidc_slot(vars::OIDC_DEFAULT_ROLE, slot),
    )
}

/// A rule-based role policy from its three variables (the claim or attribute read, the ordered
/// rules, the default role): OIDC's and SAML's are the same rules.
pub(crate) fn role_policy(
    env: &Env<'_>,
    claim_var: &Variable,
    map_var: &Variable,
    default_var: &Variable,
) -> Result<RolePolicy, ConfigError> {
    let claim = env.get(claim_var);
    let rules = env
        .get(map_var)
        .map(|m| parse_role_map(map_var, &m))
        .transpose()?;
    let default = env
        .get(default_var)
        .map(|r| {
            Role::parse(&r)
                .ok_or_else(|| ConfigError::new(default_var.name, "must be `admin` or `member`"))
        })
        .transpose()?;
    match (&claim, &rules, default) {
        (None, Some(_), _) => Err(ConfigError::new(
            claim_var.name,
            format!("missing; {map_var} needs the claim it reads"),
        )),
        (Some(_), None, None) => Err(ConfigError::new(
            map_var.name,
            format!("missing; {claim_var} is set but no rules map it (and no {default_var})"),
        )),
        (None, None, None) => Err(ConfigError::new(
            claim_var.name,
            format!(
                "missing; set {claim_var} and {map_var}, or {default_var}, or every user is denied"
            ),
        )),
        _ => Ok(RolePolicy::Claim {
            claim,
            rules: rules.unwrap_or_default(),
            default,
        }),
    }
}

/// A provider's groups claim: the variable, else `groups`; a claim name or dotted path (the
/// operator refuses the same at apply time, with the same message).
pub(super) fn groups_claim(env: &Env<'_>, var: &Variable) -> Result<String, ConfigError> {
    let claim = env.value_or_default(var)?;
    if !gatehouse_crds::rules::is_claim_name(&claim) {
        return Err(ConfigError::new(
            var.name,
            gatehouse_crds::rules::MSG_GROUPS_CLAIM,
        ));
    }
    Ok(claim)
}
