//! The sign-in part of `cargo xtask bench` (alone: `cargo xtask bench --only signin`): runs
//! `gatehouse-stack signin-bench`, which signs in through the fixture OIDC IdP and the pysaml2
//! SAML IdP in alternating rounds, and renders the sidecar's own SAML ACS handling next to its
//! OIDC callback handling from the same run, every round and the median.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::common::{BenchArgs, release_binaries, stack_figures, write_section_alone};

/// Sign-ins per protocol per round.
const SIGN_INS: usize = 20;
/// Heading of the section; `--only signin` replaces the file's section from here to the next
/// one.
const HEADING: &str = "## Sign-in handling: SAML ACS against the OIDC callback";

/// `cargo xtask bench --only signin`: builds the release binaries, measures, and replaces only
/// this section of the written file.
pub fn run_alone(args: &BenchArgs) -> Result<()> {
    crate::saml_fixtures::venv()?;
    let section = section(&release_binaries()?, args.rounds)?;
    write_section_alone(args, HEADING, &section)
}

/// Measures with the release `gatehouse-stack` in `release` and renders the section.
pub fn section(release: &Path, rounds: u32) -> Result<String> {
    eprintln!("xtask bench: sign-ins, SAML ACS against OIDC callback ({rounds} rounds)");
    let figures = stack_figures(
        release,
        "signin-bench",
        &[
            "--rounds".into(),
            rounds.to_string(),
            "--sign-ins".into(),
            SIGN_INS.to_string(),
        ],
        "warn",
    )?;
    Ok(render(&figures))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The markdown section.
fn render(f: &Value) -> String {
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let ms = |v: &Value| num(v) / 1000.0;
    let rounds = f["rounds"].as_array().cloned().unwrap_or_default();
    let mut out = format!("\n{HEADING}\n\n");
    out.push_str(&format!(
        "Produced by `gatehouse-stack signin-bench` (release build; `cargo xtask bench --only \
         signin`): two sidecars side by side, one signing in through the fixture OIDC IdP \
         (Okta), one through the pysaml2 SAML IdP. Each round makes {} sign-ins through the \
         OIDC one, then {} through the SAML one. The handling figures are each sidecar's own \
         time, the mean per sign-in of the round read from its histogram \
         `gatehouse_sign_in_callback_handling_seconds`: for OIDC the callback without the token \
         round trip to the IdP; for SAML the ACS post (body read, XML-DSig verification, \
         attribute mapping, session). The IdPs' own work is in neither. The client-side figures \
         are the whole callback or ACS post as the client sees it (p50).\n\n",
        f["sign_ins"], f["sign_ins"]
    ));
    out.push_str(
        "| round | OIDC callback handling | SAML ACS handling | ratio SAML / OIDC | OIDC callback, client p50 | SAML ACS post, client p50 |\n",
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    let row = |label: String, oidc: f64, saml: f64, oidc_total: f64, saml_total: f64| {
        format!(
            "| {label} | {oidc:.2} ms | {saml:.2} ms | {:.2} | {oidc_total:.2} ms | {saml_total:.2} ms |\n",
            saml / oidc
        )
    };
    for (i, r) in rounds.iter().enumerate() {
        out.push_str(&row(
            format!("{}", i + 1),
            ms(&r["oidc_handling_mean_us"]),
            ms(&r["saml_handling_mean_us"]),
            ms(&r["oidc_total"]["p50_us"]),
            ms(&r["saml_total"]["p50_us"]),
        ));
    }
    let column = |field: &dyn Fn(&Value) -> f64| median(rounds.iter().map(field).collect());
    out.push_str(&row(
        "**median**".to_owned(),
        column(&|r| ms(&r["oidc_handling_mean_us"])),
        column(&|r| ms(&r["saml_handling_mean_us"])),
        column(&|r| ms(&r["oidc_total"]["p50_us"])),
        column(&|r| ms(&r["saml_total"]["p50_us"])),
    ));
    out.push_str("\nThe median row's ratio is that of the two medians.\n");
    out.push_str(&acs_targets(&rounds));
    out
}

/// Issue 27's SAML targets: the ACS's own handling at most 1 ms at p50 and 2 ms at p99 (the
/// IdP excluded), per round (each sign-in's handling read from the histogram) and the median
/// of the rounds.
const ACS_P50_TARGET_MS: f64 = 1.0;
const ACS_P99_TARGET_MS: f64 = 2.0;

fn acs_targets(rounds: &[Value]) -> String {
    let ms = |v: &Value| v.as_f64().unwrap_or(f64::NAN) / 1000.0;
    let mut out = format!(
        "\nTargets (issue 27): the SAML ACS's own handling at most {ACS_P50_TARGET_MS} ms at \
         p50 and {ACS_P99_TARGET_MS} ms at p99 (bench: `signin`), each sign-in's handling read \
         from the histogram before and after it.\n\n| round | SAML ACS handling p50 | p99 |\n| --- | ---: | ---: |\n"
    );
    for (i, r) in rounds.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {:.2} ms | {:.2} ms |\n",
            i + 1,
            ms(&r["saml_handling"]["p50_us"]),
            ms(&r["saml_handling"]["p99_us"])
        ));
    }
    let p50 = median(
        rounds
            .iter()
            .map(|r| ms(&r["saml_handling"]["p50_us"]))
            .collect(),
    );
    let p99 = median(
        rounds
            .iter()
            .map(|r| ms(&r["saml_handling"]["p99_us"]))
            .collect(),
    );
    let verdict = |value: f64, target: f64| {
        if value <= target { "met" } else { "NOT met" }
    };
    out.push_str(&format!(
        "| **median** | {p50:.2} ms | {p99:.2} ms |\n\np50 {p50:.2} ms against {ACS_P50_TARGET_MS} ms: {}; p99 {p99:.2} ms against {ACS_P99_TARGET_MS} ms: {}.\n",
        verdict(p50, ACS_P50_TARGET_MS),
        verdict(p99, ACS_P99_TARGET_MS),
    ));
    out.push_str(ACS_PROFILE);
    out
}

/// Where the ACS's time goes: a profile taken once (not measured by this run), kept beside the
/// figures it explains. Re-take it when the verification path changes.
const ACS_PROFILE: &str = "
### SAML ACS profile

Taken on 2026-12-08 with `perf record --call-graph dwarf` of \
`target/release/examples/saml_verify_cost` (the verification alone, in a loop, on the fuzz \
corpus's genuine Response whose Response and Assertion are both signed; 3.7 KB): 0.78–0.87 ms per \
verification on this machine. Share of the verification's time (inclusive):

| part | share | what it is |
| --- | ---: | --- |
| samael `reduce_xml_to_signed` | 93 % | libxml2 parse, XML-DSig verification and the reduction to what is signed |
| ├ loading the IdP certificate as an xmlsec key | 30 % | `xmlSecOpenSSLAppKeyLoadMemory`: the DER certificate decoded again for every signature and every trusted certificate; most of it is OpenSSL 3's decoder set-up (`OSSL_DECODER_CTX_new_for_pkey`, 24 %) |
| ├ building the reduced document | 27 % | samael's `build_keep_state`: hash sets of node paths cloned per node (`collect_matching_node_inner`) |
| ├ signature verification | 23 % | `xmlSecDSigCtxVerify`: canonicalisation 7 %, RSA 7 %, transforms |
| └ libxml2 parse | 6 % | `xmlReadMemory` |
| Gatehouse's own checks | 5 % | roxmltree parses of the document and of the signed copy, DOCTYPE scans, the assertion's conditions |

What stands between the ACS and 1 ms is inside samael 0.0.22: it takes certificates as DER and \
loads each one per signature (a key loaded once per metadata would save about 30 %), and its \
reduction keeps per-node hash sets (about 27 %). Neither can be changed from Gatehouse without \
replacing or patching the crate; the sidecar's own part of the ACS (attempt cookie, session, \
answer) is the OIDC callback's 0.2 ms. The rest of the gap between this loop and the ACS's \
handling above is pysaml2's larger responses (its signatures embed the certificate) and the \
hand-off to the blocking thread the verification runs on.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Value {
        let round = |oidc: f64, saml: f64| {
            serde_json::json!({
                "oidc_handling_mean_us": oidc,
                "saml_handling_mean_us": saml,
                "oidc_total": { "p50_us": oidc * 4.0 },
                "saml_total": { "p50_us": saml * 2.0 },
                "saml_handling": { "p50_us": saml * 0.9, "p99_us": saml * 1.5 },
            })
        };
        serde_json::json!({
            "sign_ins": 20,
            "rounds": [round(1000.0, 3000.0), round(2000.0, 5000.0), round(1500.0, 4000.0)],
        })
    }

    #[test]
    fn render_lists_every_round_and_the_medians_with_their_ratio() {
        let md = render(&figures());
        assert!(md.contains(&format!("\n{HEADING}\n")), "{md}");
        assert!(md.contains("| 1 | 1.00 ms | 3.00 ms | 3.00 |"), "{md}");
        assert!(md.contains("| 2 | 2.00 ms | 5.00 ms | 2.50 |"), "{md}");
        assert!(
            md.contains("| **median** | 1.50 ms | 4.00 ms | 2.67 | 6.00 ms | 8.00 ms |"),
            "{md}"
        );
    }

    #[test]
    fn render_holds_the_acs_percentiles_to_the_targets() {
        let md = render(&figures());
        // Rounds' p50: 2.7, 4.5, 3.6 ms; p99: 4.5, 7.5, 6.0 ms.
        assert!(md.contains("| 2 | 4.50 ms | 7.50 ms |"), "{md}");
        assert!(md.contains("| **median** | 3.60 ms | 6.00 ms |"), "{md}");
        assert!(md.contains("p50 3.60 ms against 1 ms: NOT met"), "{md}");
        let fast = serde_json::json!({"rounds": [
            {"saml_handling": {"p50_us": 800.0, "p99_us": 1900.0}}
        ]});
        let rounds = fast["rounds"].as_array().cloned().unwrap_or_default();
        let md = acs_targets(&rounds);
        assert!(
            md.contains("against 1 ms: met; p99 1.90 ms against 2 ms: met"),
            "{md}"
        );
    }

    #[test]
    fn replace_section_replaces_only_its_own_section() {
        let doc = format!("# B\n\n## Other\n\nkeep\n\n{HEADING}\n\nold\n\n## Last\n\nkeep too\n");
        let new =
            crate::bench::common::replace_section(&doc, HEADING, &format!("\n{HEADING}\n\nnew\n"));
        assert!(new.contains("new") && !new.contains("old"), "{new}");
        assert!(
            new.contains("keep\n") && new.contains("## Last\n\nkeep too"),
            "{new}"
        );
        let appended = crate::bench::common::replace_section(
            "# B\n",
            HEADING,
            &format!("\n{HEADING}\n\nnew\n"),
        );
        assert!(appended.ends_with("new\n"), "{appended}");
    }
}
