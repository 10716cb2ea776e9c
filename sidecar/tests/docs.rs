//! Every variable the sidecar reads is in its catalogue (`gatehouse_sidecar::config::vars`), from
//! which `docs/sidecar.md`'s environment tables are generated (`cargo test -p gatehouse-tests
//! --test doc_env`). The readers take catalogue entries, so the configuration cannot read one that
//! is not there; these tests catch a variable read some other way: any variable-like name in the
//! sidecar's source, and every name of the environment contract the operator renders.

use std::path::{Path, PathBuf};

use gatehouse_sidecar::config::vars;

/// The prefixes of the sidecar's variables.
const PREFIXES: [&str; 6] = ["OKTA_", "ENTRA_", "OIDC_", "SAML_", "GATEHOUSE_", "AUTH_"];

/// Names in the source with those prefixes that are Rust constants, not variables: the route
/// paths of `gatehouse_crds::consts` and the SAML button's label.
const NOT_VARIABLES: [&str; 8] = [
    "OIDC_BACKCHANNEL_LOGOUT_PREFIX",
    "OIDC_PROVIDER_VARIABLES",
    "OIDC_CALLBACK_PREFIX",
    "OIDC_START_PREFIX",
    "SAML_ACS_PATH",
    "SAML_METADATA_PATH",
    "SAML_START_PATH",
    "SAML_LABEL",
];

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The text of every `.rs` file under `dir`.
fn rust_sources(dir: &Path, into: &mut String) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push_str(&read(&path));
            into.push('\n');
        }
    }
}

/// Upper-case identifiers with one of [`PREFIXES`] (`OKTA_ISSUER`, `GATEHOUSE_LISTEN`, …) in `text`.
fn variable_names(text: &str) -> Vec<&str> {
    let mut names: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|word| {
            PREFIXES
                .iter()
                .any(|p| word.starts_with(p) && word.len() > p.len())
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[test]
fn every_variable_named_in_the_sidecars_source_is_catalogued() {
    let mut sources = String::new();
    rust_sources(&manifest_path("src"), &mut sources);
    // The contract's names, including those only injection sets (listeners, the env directory).
    sources.push_str(&read(&manifest_path("../crds/src/env.rs")));
    let names = variable_names(&sources);
    assert!(
        names.len() > 40,
        "found only {} variable names",
        names.len()
    );
    for not_variable in NOT_VARIABLES {
        assert!(
            names.contains(&not_variable),
            "{not_variable} no longer appears in the source: remove it from NOT_VARIABLES"
        );
        assert!(vars::find(not_variable).is_none(), "{not_variable}");
    }
    for name in names.into_iter().filter(|n| !NOT_VARIABLES.contains(n)) {
        // `<NAME>_FILE` names the file a secret is read from.
        if let Some(base) = name.strip_suffix("_FILE")
            && vars::find(base).is_some_and(|v| v.secret)
        {
            continue;
        }
        // `OIDC_<n>_*`: generic provider n's copy of a catalogued `OIDC_*` variable.
        if gatehouse_crds::env::oidc_slot_of(name.strip_suffix("_FILE").unwrap_or(name))
            .is_some_and(|(plain, _)| vars::find(&plain).is_some())
        {
            continue;
        }
        assert!(
            vars::find(name).is_some(),
            "`{name}` appears in the sidecar's source but not in its catalogue of variables \
             (sidecar/src/config/vars.rs); catalogue it and read it through the entry \
             (or, if it is no variable, add it to NOT_VARIABLES)"
        );
    }
}

#[test]
fn every_variable_the_operator_renders_is_catalogued() {
    for name in gatehouse_crds::env::RENDERED_VARIABLES {
        assert!(
            vars::find(name).is_some(),
            "the operator renders `{name}`, which the sidecar's catalogue lacks"
        );
    }
    for name in gatehouse_crds::env::SECRET_VARIABLES {
        assert!(
            vars::find(name).is_some_and(|v| v.secret),
            "the contract's secret `{name}` is not a secret in the catalogue"
        );
    }
}
