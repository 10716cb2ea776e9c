//! The sidecar's environment: `Config::from_source` on variables decoded from the input.

use std::collections::HashMap;

use gatehouse_auth::paths::canonical_path;
use gatehouse_sidecar::Config;

/// The variables whose values are secrets.
const SECRETS: [&str; 4] = [
    "GATEHOUSE_COOKIE_SECRET",
    "OKTA_CLIENT_SECRET",
    "ENTRA_CLIENT_SECRET",
    "OIDC_CLIENT_SECRET",
];

/// The input's `NAME=VALUE` lines as variables (the last of a name wins). `<VAR>_FILE` variables
/// are left out: they name files to read, and a fuzz target reads no files.
pub fn variables(data: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, _)| !name.ends_with("_FILE"))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Whether `secret` (the value of `name`) can be looked for in output: long enough, and not
/// also (part of) another variable's name or value, which the output may rightly show.
fn distinctive(name: &str, secret: &str, vars: &HashMap<String, String>) -> bool {
    let lower = secret.to_ascii_lowercase();
    secret.len() >= 12
        && !secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && vars
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .all(|(n, v)| {
                !v.to_ascii_lowercase().contains(&lower) && !n.to_ascii_lowercase().contains(&lower)
            })
}

/// Env/config parser: never a panic; an error names its variable on one line; neither an error
/// nor an accepted configuration's `Debug` shows a secret's value; an accepted public URL is an
/// origin without credentials; accepted skip-auth prefixes, login page and hook path are their own
/// canonical paths (so matching them against a request's canonical path is exact).
pub fn config(data: &[u8]) {
    let vars = variables(data);
    let lookup = |name: &str| vars.get(name).cloned();
    let result = Config::from_source(&lookup);
    let shown = match &result {
        Ok(config) => format!("{config:?}"),
        Err(e) => {
            assert!(!e.var.is_empty(), "an error without its variable");
            let line = e.to_string();
            assert!(!line.contains('\n'), "error over several lines: {line:?}");
            line
        }
    };
    for name in SECRETS {
        if let Some(secret) = vars.get(name).map(|v| v.trim())
            && distinctive(name, secret, &vars)
        {
            assert!(!shown.contains(secret), "{name}'s value shown");
        }
    }
    let Ok(config) = result else {
        return;
    };
    let url = &config.public_url;
    assert!(matches!(url.scheme(), "https" | "http"));
    assert!(url.path() == "/" && url.query().is_none() && url.fragment().is_none());
    assert!(url.username().is_empty() && url.password().is_none());
    let paths = config
        .skip_auth
        .iter()
        .chain(&config.app_login_path)
        .chain(&config.provision_hook);
    for path in paths {
        assert_eq!(
            canonical_path(path).as_deref(),
            Some(path.as_str()),
            "configured path is not its own canonical form"
        );
    }
}
