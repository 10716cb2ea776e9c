//! The scale part of `cargo xtask bench` (alone: `cargo xtask bench --only scale`): runs
//! `gatehouse-stack scale-bench` with a small and a large SsoUser cache, alternating, and renders
//! the large one's figures next to the small one's from the same run.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::common::{BenchArgs, release_binaries, write_section_alone};

/// Users in the baseline cache.
const SMALL: usize = 10;
/// Users in the measured cache.
const LARGE: usize = 10_000;
/// Requests per measurement.
const REQUESTS: usize = 20_000;
/// Heading of the section; `--only scale` replaces the file's section from here to the next one.
const HEADING: &str = "## Scale: the sidecar with 10,000 SsoUsers";

/// `cargo xtask bench --only scale`: builds the release binaries, measures, and replaces only
/// this section of the written file.
pub fn run_alone(args: &BenchArgs) -> Result<()> {
    let section = section(&release_binaries()?, args.rounds)?;
    write_section_alone(args, HEADING, &section)
}

fn measure(release: &Path, users: usize) -> Result<Value> {
    eprintln!("xtask bench: the sidecar with {users} SsoUsers cached");
    let output = Command::new(release.join("gatehouse-stack"))
        .args(["scale-bench", "--users", &users.to_string()])
        .args(["--requests", &REQUESTS.to_string()])
        .env("GATEHOUSE_TEST_LOG", "warn")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running gatehouse-stack scale-bench")?;
    if !output.status.success() {
        bail!("gatehouse-stack scale-bench failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no figures from scale-bench")?;
    serde_json::from_str(line).context("parsing the scale figures")
}

fn median(runs: &[Value], field: impl Fn(&Value) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(field).collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn max(runs: &[Value], field: impl Fn(&Value) -> f64) -> f64 {
    runs.iter().map(field).fold(f64::NAN, f64::max)
}

/// Measures `rounds` times each size, alternating, and renders the section.
pub fn section(release: &Path, rounds: u32) -> Result<String> {
    let (mut small, mut large) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        small.push(measure(release, SMALL)?);
        large.push(measure(release, LARGE)?);
    }
    Ok(render(&small, &large, rounds))
}

fn render(small: &[Value], large: &[Value], rounds: u32) -> String {
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mib = |kib: f64| kib / 1024.0;
    let rows: [(&str, f64, f64, &str); 6] = [
        (
            "resident memory, cache filled (max over rounds)",
            mib(max(small, |f| num(&f["rss_filled_kib"]))),
            mib(max(large, |f| num(&f["rss_filled_kib"]))),
            "MiB",
        ),
        (
            "resident memory after the requests (max over rounds)",
            mib(max(small, |f| num(&f["rss_after_requests_kib"]))),
            mib(max(large, |f| num(&f["rss_after_requests_kib"]))),
            "MiB",
        ),
        (
            "request round trip, p50",
            median(small, |f| num(&f["request"]["p50_us"])),
            median(large, |f| num(&f["request"]["p50_us"])),
            "µs",
        ),
        (
            "request round trip, p99",
            median(small, |f| num(&f["request"]["p99_us"])),
            median(large, |f| num(&f["request"]["p99_us"])),
            "µs",
        ),
        (
            "CPU per request (client, sidecar and app together)",
            median(small, |f| num(&f["cpu_us_per_request"])),
            median(large, |f| num(&f["cpu_us_per_request"])),
            "µs",
        ),
        (
            "full list applied to the cache (Init … InitDone)",
            median(small, |f| num(&f["fill_us"])) / 1000.0,
            median(large, |f| num(&f["fill_us"])) / 1000.0,
            "ms",
        ),
    ];
    let mut out = format!("\n{HEADING}\n\n");
    out.push_str(&format!(
        "Produced by `cargo xtask bench` (alone: `cargo xtask bench --only scale`) with \
         `gatehouse-stack scale-bench` (release build): one process per measurement holding the \
         sidecar (Kubernetes provisioning on kube-fake-client's in-memory API), a small app and a \
         client. The SsoUser cache is filled through the sidecar's watch path with a full list \
         of SsoUsers shaped as the API server returns them (labels, status, managed fields); \
         then {REQUESTS} requests, one at a time, carry the session of one of those users. \
         {SMALL} and {LARGE} users alternate, {rounds} round(s) each; memory is the process's \
         resident set (the client and the app included), timings are medians over the rounds.\n\n"
    ));
    out.push_str(&format!(
        "| measurement | {SMALL} users (baseline) | {LARGE} users | ratio |\n"
    ));
    out.push_str("| --- | ---: | ---: | ---: |\n");
    for (what, base, big, unit) in rows {
        out.push_str(&format!(
            "| {what} | {base:.2} {unit} | {big:.2} {unit} | {:.2} |\n",
            big / base
        ));
    }
    let memory = mib(max(large, |f| num(&f["rss_after_requests_kib"])));
    let p50_ratio = median(large, |f| num(&f["request"]["p50_us"]))
        / median(small, |f| num(&f["request"]["p50_us"]));
    let cpu_ratio = median(large, |f| num(&f["cpu_us_per_request"]))
        / median(small, |f| num(&f["cpu_us_per_request"]));
    out.push_str(&format!(
        "\nTargets: under 32 MiB with {LARGE} SsoUsers cached: {memory:.1} MiB, {}. Request cost \
         unchanged (within 10 % of the {SMALL}-user cache in the same run): round trip ×{p50_ratio:.2}, \
         CPU ×{cpu_ratio:.2}, {}.\n",
        if memory < 32.0 { "met" } else { "NOT met" },
        if p50_ratio <= 1.10 && cpu_ratio <= 1.10 {
            "met"
        } else {
            "NOT met"
        },
    ));
    out.push_str(
        "\nThe operator's memory and time to settle with 1,000 SsoConfigs and 10,000 SsoUsers are \
         not measured by this bench yet.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scale_section_is_replaced() {
        let doc = format!("# Benchmarks\n\n## A\n\na\n\n{HEADING}\n\nold\n\n## B\n\nb\n");
        let new = format!("\n{HEADING}\n\nnew\n");
        let got = crate::bench::common::replace_section(&doc, HEADING, &new);
        assert_eq!(
            got,
            format!("# Benchmarks\n\n## A\n\na\n\n{HEADING}\n\nnew\n\n## B\n\nb\n")
        );
        let appended =
            crate::bench::common::replace_section("# Benchmarks\n\n## A\n\na\n", HEADING, &new);
        assert!(appended.ends_with(&new), "{appended}");
        assert_eq!(
            crate::bench::common::replace_section(&appended, HEADING, &new),
            appended,
            "idempotent"
        );
    }
}
