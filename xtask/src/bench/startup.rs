//! The start-up part of `cargo xtask bench` (alone: `cargo xtask bench --only startup`): runs
//! `gatehouse-stack startup-bench`, which spawns the release sidecar with an OIDC configuration
//! whose discovery answers, again and again, and times spawn → `/readyz` 200 (issue 27's target:
//! 200 ms; the chart's readiness probe and rolling updates wait for it).

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::common::{BenchArgs, release_binaries, stack_figures, write_section_alone};

/// Starts per round.
const STARTS_PER_ROUND: u32 = 10;
/// Issue 27: from process start to `/readyz` 200 within this many milliseconds.
const TARGET_MS: f64 = 200.0;
/// Heading of the section; `--only startup` replaces the file's section from here to the next.
const HEADING: &str = "## Start-up: spawn to ready";

/// `cargo xtask bench --only startup`: builds the release binaries, measures, and replaces only
/// this section of the written file.
pub fn run_alone(args: &BenchArgs) -> Result<()> {
    let section = section(&release_binaries()?, args.rounds)?;
    write_section_alone(args, HEADING, &section)
}

/// Measures with the release `gatehouse-stack` in `release` and renders the section.
pub fn section(release: &Path, rounds: u32) -> Result<String> {
    let starts = rounds * STARTS_PER_ROUND;
    eprintln!("xtask bench: start-up, spawn to /readyz ({starts} starts)");
    let figures = stack_figures(
        release,
        "startup-bench",
        &["--starts".into(), starts.to_string()],
        "warn",
    )?;
    Ok(render(&figures))
}

/// The value at `q` (0..=1) of `values`, nearest rank.
fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = (q * values.len() as f64).ceil().max(1.0) as usize;
    values[rank.min(values.len()) - 1]
}

/// The markdown section.
fn render(f: &Value) -> String {
    let starts = f["starts"].as_array().cloned().unwrap_or_default();
    let field = |name: &str| -> Vec<f64> {
        starts
            .iter()
            .map(|s| s[name].as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let (ready, serving) = (field("ready_ms"), field("serving_ms"));
    let providers: Vec<&str> = f["providers"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = format!("\n{HEADING}\n\n");
    out.push_str(&format!(
        "Produced by `gatehouse-stack startup-bench` (release build; `cargo xtask bench --only \
         startup`): the release sidecar spawned {} times with an OIDC configuration ({}) whose \
         discovery answers (the fixture IdP, warm), each time timed from the spawn to the first \
         200 of its admin port's `/readyz` (discovery document and keys loaded, asked every \
         millisecond), and to the first 200 of `/healthz` (the process serves). No peer: the \
         target is absolute.\n\n",
        starts.len(),
        providers.join(", ")
    ));
    out.push_str("| | p50 | p90 | max |\n| --- | ---: | ---: | ---: |\n");
    for (label, values) in [
        ("spawn to `/healthz` 200", &serving),
        ("spawn to `/readyz` 200", &ready),
    ] {
        out.push_str(&format!(
            "| {label} | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            quantile(values.clone(), 0.5),
            quantile(values.clone(), 0.9),
            quantile(values.clone(), 1.0),
        ));
    }
    let p50 = quantile(ready.clone(), 0.5);
    let max = quantile(ready.clone(), 1.0);
    let within = ready.iter().filter(|ms| **ms <= TARGET_MS).count();
    out.push_str(&format!(
        "\n- start-up to `/readyz` 200 within {TARGET_MS:.0} ms: {p50:.1} ms (p50), {} ({within} \
         of {} starts within it; the slowest {max:.1} ms)\n",
        if p50 <= TARGET_MS { "met" } else { "NOT met" },
        ready.len(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_gives_quantiles_and_judges_the_median_against_the_target() {
        let starts: Vec<Value> = [(3.0, 40.0), (4.0, 60.0), (5.0, 250.0), (2.0, 50.0)]
            .iter()
            .map(|(s, r)| serde_json::json!({"serving_ms": s, "ready_ms": r}))
            .collect();
        let md = render(&serde_json::json!({"providers": ["Okta"], "starts": starts}));
        assert!(md.contains(&format!("\n{HEADING}\n")), "{md}");
        assert!(
            md.contains("| spawn to `/readyz` 200 | 50.0 ms | 250.0 ms | 250.0 ms |"),
            "{md}"
        );
        assert!(
            md.contains("| spawn to `/healthz` 200 | 3.0 ms | 5.0 ms | 5.0 ms |"),
            "{md}"
        );
        assert!(md.contains("50.0 ms (p50), met (3 of 4 starts"), "{md}");
        let slow: Vec<Value> = [300.0, 400.0]
            .iter()
            .map(|r| serde_json::json!({"serving_ms": 1.0, "ready_ms": r}))
            .collect();
        let md = render(&serde_json::json!({"providers": ["Okta"], "starts": slow}));
        assert!(md.contains("NOT met (0 of 2 starts"), "{md}");
    }
}
