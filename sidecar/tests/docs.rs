//! `docs/sidecar.md` is the page users read about the sidecar's environment. It carries the
//! variable tables of the `config` module docs word for word, and names every variable the
//! configuration code reads, so a new or changed variable cannot go undocumented.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Upper-case identifiers with one of `prefixes` (`OKTA_ISSUER`, `GATEHOUSE_LISTEN`, …) in `text`.
fn variable_names<'a>(text: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    text.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|word| {
            prefixes
                .iter()
                .any(|p| word.starts_with(p) && word.len() > p.len())
        })
        .collect()
}

#[test]
fn the_sidecar_page_carries_the_config_tables_word_for_word() {
    let config = read("src/config/mod.rs") + &read("src/config/saml.rs");
    let page = read("../docs/sidecar.md");
    let rows: Vec<&str> = config
        .lines()
        .filter_map(|l| l.strip_prefix("//! "))
        .filter(|l| l.starts_with("| `"))
        .collect();
    assert!(
        rows.len() > 30,
        "found only {} variable rows in the config module",
        rows.len()
    );
    for row in rows {
        assert!(
            page.lines().any(|l| l == row),
            "docs/sidecar.md lacks this row of the config docs (copy it over):\n{row}"
        );
    }
}

#[test]
fn every_variable_the_configuration_reads_is_on_the_sidecar_page() {
    let page = read("../docs/sidecar.md");
    let sources = [
        "src/config/mod.rs",
        "src/runtime.rs",
        "src/config/okta.rs",
        "src/config/entra.rs",
        "src/config/oidc.rs",
        "src/config/saml.rs",
    ]
    .map(read)
    .join("\n");
    let mut names = variable_names(
        &sources,
        &["OKTA_", "ENTRA_", "OIDC_", "AUTH_", "GATEHOUSE_", "SAML_"],
    );
    // The shared names the code reads through `gatehouse_crds::env` constants.
    names.extend(gatehouse_crds::env::RENDERED_VARIABLES.iter().copied());
    names.sort_unstable();
    names.dedup();
    assert!(
        names.len() > 30,
        "found only {} variable names",
        names.len()
    );
    for name in names {
        // `<VAR>_FILE` is documented once for all secrets.
        if name.ends_with("_FILE") && name != "GATEHOUSE_ENV_DIR" {
            continue;
        }
        assert!(
            page.contains(&format!("`{name}`")),
            "docs/sidecar.md does not document `{name}`"
        );
    }
}
