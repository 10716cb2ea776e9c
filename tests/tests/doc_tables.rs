//! The tables of the docs that are generated from the code, so that they stay true: the
//! sidecar's and the operator's metrics (from their registries: name, type, labels, and the HELP
//! text as meaning) and the troubleshooting tables of reasons (from the one vocabulary of each:
//! sign-in errors, session refusals, re-validation outcomes).
//!
//! Each table is a generated region of its doc ([`check_region`]); after a change to the code,
//! `GATEHOUSE_UPDATE_DOCS=1 cargo test -p gatehouse-tests --test doc_tables` rewrites them.
//! Every registered metric and every reason the code can emit is a row by construction: the rows
//! come from the registry's exposition and from the vocabularies' exhaustive lists, not from a
//! list kept here.

use std::collections::BTreeMap;

use gatehouse_sidecar::error::SignInError;
use gatehouse_sidecar::judge::Refusal;
use gatehouse_sidecar::metrics::{Metrics as SidecarMetrics, RevalidationOutcome};
use gatehouse_tests::generated::check_region;

/// The provider id the sidecar's registry is built with; its label is shown as a provider id.
const PROVIDER: &str = "PROVIDER";
/// A label value the operator's registry is exercised with: shown as the label's name only.
const ANY: &str = "ANY";
/// Most label values listed in the metrics table; longer vocabularies link to their table.
const MOST_VALUES: usize = 8;

/// One metric family of an exposition: what its HELP and TYPE lines say, and its samples' labels.
#[derive(Debug)]
struct Family {
    name: String,
    kind: String,
    help: String,
    /// Label names in order of appearance, each with its values in order of appearance.
    labels: Vec<(String, Vec<String>)>,
    samples: usize,
}

/// Reads the families of a Prometheus (OpenMetrics) text exposition, in registration order.
fn families(exposition: &str) -> Vec<Family> {
    let mut found: Vec<Family> = Vec::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            found.push(Family {
                name: name.to_owned(),
                kind: String::new(),
                help: help.replace("\\n", "\n").replace("\\\\", "\\"),
                labels: Vec::new(),
                samples: 0,
            });
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            let family = found.last_mut().expect("TYPE after HELP");
            assert_eq!(family.name, name, "TYPE of another family than its HELP");
            kind.clone_into(&mut family.kind);
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let family = found.last_mut().expect("a sample after HELP");
            assert!(
                line.starts_with(&family.name),
                "sample `{line}` outside its family `{}`",
                family.name
            );
            family.samples += 1;
            for (name, value) in sample_labels(line) {
                if name == "le" {
                    continue;
                }
                let at = match family.labels.iter().position(|(n, _)| *n == name) {
                    Some(at) => at,
                    None => {
                        family.labels.push((name, Vec::new()));
                        family.labels.len() - 1
                    }
                };
                let values = &mut family.labels[at].1;
                if !values.contains(&value) {
                    values.push(value);
                }
            }
        }
    }
    found
}

/// The labels of one sample line (`name{a="x",b="y"} 1`).
fn sample_labels(line: &str) -> Vec<(String, String)> {
    let Some((_, rest)) = line.split_once('{') else {
        return Vec::new();
    };
    let (set, _) = rest.rsplit_once('}').expect("a closing brace");
    let mut labels = Vec::new();
    let mut rest = set;
    while let Some((name, after)) = rest.split_once("=\"") {
        let end = after.find('"').expect("a closing quote");
        labels.push((
            name.trim_start_matches(',').to_owned(),
            after[..end].to_owned(),
        ));
        rest = &after[end + 1..];
    }
    labels
}

/// How the metrics table shows label values.
struct LabelStyle {
    /// List each label's values (a registry built with every series); else names only.
    values: bool,
    /// Where a long vocabulary is explained, by metric name.
    links: &'static [(&'static str, &'static str)],
}

/// A markdown table of a registry's families: every family a row, in registration order.
fn metrics_table(exposition: &str, style: &LabelStyle) -> String {
    let mut table =
        String::from("| metric | type | labels | what it says |\n| --- | --- | --- | --- |\n");
    for family in families(exposition) {
        assert!(
            family.samples > 0,
            "`{}` has no series in the registry the docs are generated from: create its \
             label values there (or record one in this test)",
            family.name
        );
        let name = match family.kind.as_str() {
            "counter" => format!("{}_total", family.name),
            _ => family.name.clone(),
        };
        let labels = family
            .labels
            .iter()
            .map(|(label, values)| label_cell(&family.name, label, values, style))
            .collect::<Vec<_>>()
            .join(", ");
        table.push_str(&format!(
            "| `{name}` | {} | {} | {} |\n",
            family.kind,
            labels,
            cell(&family.help)
        ));
    }
    table
}

fn label_cell(family: &str, label: &str, values: &[String], style: &LabelStyle) -> String {
    if values.iter().all(|v| v == PROVIDER) {
        return format!("`{label}` (a provider id)");
    }
    if !style.values || values.iter().all(|v| v == ANY) {
        return format!("`{label}`");
    }
    if values.len() > MOST_VALUES
        && let Some((_, link)) = style.links.iter().find(|(f, _)| *f == family)
    {
        return format!("`{label}` ({} values: {link})", values.len());
    }
    // Sorted: a family's series come out in no particular order.
    let mut sorted = values.to_vec();
    sorted.sort();
    let listed: Vec<String> = sorted.iter().map(|v| format!("`{v}`")).collect();
    format!("`{label}` ({})", listed.join(", "))
}

/// Text for a table cell: one line, no column separator.
fn cell(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.replace('|', "\\|")
}

#[test]
fn sidecar_metrics_table_is_generated_from_its_registry() {
    let exposition = SidecarMetrics::with_every_series(&[PROVIDER]).encode();
    let style = LabelStyle {
        values: true,
        links: &[
            (
                "gatehouse_sign_in_denials",
                "[sign-in reasons](troubleshooting.md#sign-in-reasons)",
            ),
            (
                "gatehouse_sessions_refused",
                "[session refusals](troubleshooting.md#session-refusals)",
            ),
        ],
    };
    let table = metrics_table(&exposition, &style);
    check_region("docs/sidecar.md", "sidecar-metrics", &table);
}

#[test]
fn operator_metrics_table_is_generated_from_its_registry() {
    let metrics = gatehouse_operator::metrics::Metrics::default();
    // The families have no series until something is recorded: one each, for their labels.
    metrics.reconciled(ANY, ANY, 0.0);
    metrics.undecodable(ANY, ANY);
    let style = LabelStyle {
        values: false,
        links: &[],
    };
    let table = metrics_table(&metrics.encode(), &style);
    check_region("docs/operations.md", "operator-metrics", &table);
}

/// Rows keyed by label, in order of first appearance; a label met again adds what it says
/// differently (SAML and OIDC share a few).
#[derive(Default)]
struct Rows {
    order: Vec<&'static str>,
    cells: BTreeMap<&'static str, Vec<Vec<String>>>,
}

impl Rows {
    fn add(&mut self, label: &'static str, cells: Vec<String>) {
        let row = self.cells.entry(label).or_insert_with(|| {
            self.order.push(label);
            vec![Vec::new(); cells.len()]
        });
        for (column, value) in row.iter_mut().zip(cells) {
            if !column.contains(&value) {
                column.push(value);
            }
        }
    }

    fn table(&self, header: &[&str], joiners: &[&str]) -> String {
        let mut table = format!(
            "| {} |\n|{}\n",
            header.join(" | "),
            " --- |".repeat(header.len())
        );
        for label in &self.order {
            let columns: Vec<String> = self.cells[label]
                .iter()
                .zip(joiners)
                .map(|(values, joiner)| {
                    values
                        .iter()
                        .map(|v| cell(v))
                        .collect::<Vec<_>>()
                        .join(joiner)
                })
                .collect();
            table.push_str(&format!("| `{label}` | {} |\n", columns.join(" | ")));
        }
        table
    }
}

#[test]
fn sign_in_reasons_table_is_generated_from_the_error_vocabulary() {
    let mut rows = Rows::default();
    for error in SignInError::examples() {
        let label = error.metric_label();
        let page = gatehouse_sidecar::pages::message_for(label)
            .map_or_else(|| "(none)".to_owned(), |(title, _)| format!("\"{title}\""));
        rows.add(
            label,
            vec![
                error.outcome().as_str().to_owned(),
                error.status().as_u16().to_string(),
                page,
                error.explanation().to_owned(),
            ],
        );
    }
    let table = rows.table(
        &[
            "reason",
            "outcome",
            "status",
            "page",
            "what it means, what to do",
        ],
        &[", ", ", ", ", ", "<br>"],
    );
    check_region("docs/troubleshooting.md", "sign-in-reasons", &table);
}

#[test]
fn session_refusal_table_is_generated_from_the_refusal_vocabulary() {
    let mut rows = Rows::default();
    for refusal in Refusal::ALL {
        rows.add(refusal.label(), vec![refusal.explanation().to_owned()]);
    }
    assert_eq!(rows.order.len(), Refusal::ALL.len(), "labels are distinct");
    let table = rows.table(&["reason", "what it means, what to do"], &["<br>"]);
    check_region("docs/troubleshooting.md", "session-refusal-reasons", &table);
}

#[test]
fn revalidation_outcomes_table_is_generated_from_the_outcome_vocabulary() {
    let mut rows = Rows::default();
    for outcome in RevalidationOutcome::ALL {
        rows.add(outcome.label(), vec![outcome.explanation().to_owned()]);
    }
    assert_eq!(rows.order.len(), RevalidationOutcome::ALL.len());
    let table = rows.table(&["outcome", "what it means, what to do"], &["<br>"]);
    check_region("docs/troubleshooting.md", "revalidation-outcomes", &table);
}

#[test]
fn bearer_reasons_table_is_generated_from_the_verifiers_vocabulary() {
    use gatehouse_auth::machine::BearerError;
    let mut rows = Rows::default();
    for error in BearerError::ALL {
        rows.add(error.reason(), vec![error.explanation().to_owned()]);
    }
    assert_eq!(rows.order.len(), BearerError::ALL.len());
    let table = rows.table(&["reason", "what it means, what to do"], &["<br>"]);
    check_region("docs/troubleshooting.md", "bearer-reasons", &table);
}

#[test]
fn the_exposition_reader_finds_families_labels_and_help() {
    let text = "# HELP a_b Things, by kind\\nand more.\n# TYPE a_b counter\n\
                a_b_total{kind=\"x\",class=\"1\"} 0\na_b_total{kind=\"y\",class=\"1\"} 2\n\
                # HELP h Time.\n# TYPE h histogram\nh_sum 0\nh_count 0\nh_bucket{le=\"1.0\"} 0\n# EOF\n";
    let found = families(text);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].name, "a_b");
    assert_eq!(found[0].kind, "counter");
    assert_eq!(found[0].help, "Things, by kind\nand more.");
    assert_eq!(
        found[0].labels,
        [
            ("kind".to_owned(), vec!["x".to_owned(), "y".to_owned()]),
            ("class".to_owned(), vec!["1".to_owned()])
        ]
    );
    assert!(found[1].labels.is_empty(), "`le` is not a label of its own");
    assert_eq!(found[1].samples, 3);
}
