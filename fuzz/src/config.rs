//! The sidecar's environment: `Config::from_source` on variables decoded from the input.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_auth::cookie::KeyRing;
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

/// The variables with each secret replaced by a canary that no output can contain by chance and
/// that reads the same way: a client secret by a unique string, a valid cookie key list by as
/// many unique valid keys, an invalid one by an invalid entry. The canaries, with the variables.
fn with_canaries(vars: &HashMap<String, String>) -> (HashMap<String, String>, Vec<String>) {
    let mut vars = vars.clone();
    let mut canaries = Vec::new();
    for (i, name) in SECRETS.iter().enumerate() {
        let Some(value) = vars.get(*name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let canary = if *name == "GATEHOUSE_COOKIE_SECRET" {
            match KeyRing::parse(value) {
                Ok(ring) => {
                    let keys: Vec<String> = (0..ring.len())
                        .map(|k| {
                            let mut key = *b"gatehouse-fuzz-canary-key-00-xyz";
                            key[26] = b'a' + (k / 26 % 26) as u8;
                            key[27] = b'a' + (k % 26) as u8;
                            STANDARD.encode(key)
                        })
                        .collect();
                    canaries.extend(keys.iter().cloned());
                    keys.join(",")
                }
                Err(_) => {
                    canaries.push("gh-canary-not-a-key".to_owned());
                    "gh-canary-not-a-key".to_owned()
                }
            }
        } else {
            let canary = format!("gh-canary-client-secret-{i}-Zq7xK2");
            canaries.push(canary.clone());
            canary
        };
        vars.insert((*name).to_owned(), canary);
    }
    (vars, canaries)
}

/// What `Config::from_source` shows of `vars`: the accepted configuration's `Debug`, or the
/// error's line.
fn load(vars: &HashMap<String, String>) -> Result<Config, String> {
    let lookup = |name: &str| vars.get(name).cloned();
    Config::from_source(&lookup).map_err(|e| {
        assert!(!e.var.is_empty(), "an error without its variable");
        let line = e.to_string();
        assert!(!line.contains('\n'), "error over several lines: {line:?}");
        line
    })
}

/// Env/config parser: never a panic; an error names its variable on one line; neither an error
/// nor an accepted configuration's `Debug` shows a secret's value (checked with canaries in
/// their place, which read the same way and so must load the same way); an accepted public URL is an
/// origin without credentials; accepted skip-auth prefixes, login page and hook path are their own
/// canonical paths (so matching them against a request's canonical path is exact).
pub fn config(data: &[u8]) {
    let vars = variables(data);
    let result = load(&vars);
    // The same variables with canaries for the secrets: no canary may show.
    let (canaried, canaries) = with_canaries(&vars);
    if !canaries.is_empty() {
        let again = load(&canaried);
        assert_eq!(
            again.is_ok(),
            result.is_ok(),
            "the outcome depends on a secret's value: {:?}",
            again.as_ref().err().or(result.as_ref().err())
        );
        let shown = match again {
            Ok(config) => format!("{config:?}"),
            Err(line) => line,
        };
        for canary in &canaries {
            assert!(
                !shown.contains(canary.as_str()),
                "a secret's value shown: {shown}"
            );
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
