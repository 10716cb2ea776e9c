//! The environment tables of `docs/sidecar.md`, generated from the sidecar's catalogue of
//! variables (`gatehouse_sidecar::config::vars`, which its configuration reads through): one row
//! per variable with its default and meaning, the bounds written in from the constants the readers
//! check. After a change to the catalogue,
//! `GATEHOUSE_UPDATE_DOCS=1 cargo test -p gatehouse-tests --test doc_env` rewrites them.
//!
//! And the defaults the CRD reference (`docs/configuration.md`, from the CRD's descriptions) states
//! for the fields the operator renders into those variables are the catalogue's: the operator
//! leaves such a variable out when its field is unset, so the sidecar's default is the field's.

use gatehouse_sidecar::config::vars::{self, DefaultValue, Table, Variable};
use gatehouse_tests::generated::check_region;
use gatehouse_tests::process::workspace_root;

const PAGE: &str = "docs/sidecar.md";

/// A table cell: `|` escaped, as GitHub tables need even inside code spans.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The variable column: the name, and for a secret the file variable it may come from instead.
fn variable_cell(var: &Variable) -> String {
    if var.secret {
        format!("`{}` or `{}`", var.name, var.file_variable())
    } else {
        format!("`{}`", var.name)
    }
}

/// The rows of `table`, in the catalogue's order.
fn markdown_table(table: Table) -> String {
    let mut out = String::from("| variable | default | meaning |\n| --- | --- | --- |\n");
    for var in vars::ALL.iter().filter(|v| v.table == table) {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            variable_cell(var),
            cell(&var.default.shown()),
            cell(&var.meaning_text())
        ));
    }
    out
}

/// One test for the three regions: with `GATEHOUSE_UPDATE_DOCS=1` each rewrites the page, which
/// tests running in parallel would do over each other.
#[test]
fn the_environment_tables_are_generated_from_the_catalogue() {
    for (region, table) in [
        ("sidecar-env-providers", Table::Providers),
        ("sidecar-env-saml", Table::Saml),
        ("sidecar-env-general", Table::General),
    ] {
        check_region(PAGE, region, &markdown_table(table));
    }
}

/// The SsoConfig fields a meaning names (`` `spec.session.ttl` ``).
fn spec_fields(meaning: &str) -> Vec<&str> {
    meaning
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|code| code.starts_with("spec.") && !code.contains(' '))
        .collect()
}

#[test]
fn the_crd_reference_states_the_catalogues_defaults_for_the_fields_behind_the_variables() {
    let path = workspace_root().join("docs/configuration.md");
    let reference = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut compared = 0;
    for var in vars::ALL {
        for field in spec_fields(var.meaning) {
            let start = format!("| `{field}` |");
            let row = reference
                .lines()
                .find(|l| l.starts_with(&start))
                .unwrap_or_else(|| {
                    panic!(
                        "{} names `{field}`, which docs/configuration.md does not list",
                        var.name
                    )
                });
            let stated = match var.default {
                DefaultValue::Text(text) => {
                    row.contains(&format!("Default `{text}`"))
                        || row.contains(&format!("Default {text}"))
                }
                DefaultValue::Bytes(_) => row.contains(&format!("Default {}", var.default.shown())),
                DefaultValue::Unset => row.contains("Unset"),
                DefaultValue::Required | DefaultValue::Derived(_) => continue,
            };
            assert!(
                stated,
                "docs/configuration.md's row of `{field}` does not state the default of {} ({}); \
                 the operator leaves {} out when the field is unset, so they must agree:\n{row}",
                var.name,
                var.default.shown(),
                var.name
            );
            compared += 1;
        }
    }
    assert!(compared >= 8, "only {compared} defaults compared");
}
