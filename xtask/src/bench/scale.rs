//! The scale part of `cargo xtask bench` (alone: `cargo xtask bench --only scale`): runs
//! `gatehouse-stack scale-bench` with a small, a large and a huge SsoUser cache, alternating, and
//! renders the large and huge ones' figures next to the small one's from the same run.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::common::{BenchArgs, release_binaries, stack_figures, write_section_alone};

/// Users in the baseline cache.
const SMALL: usize = 10;
/// Users in the measured cache.
const LARGE: usize = 10_000;
/// Users in the larger measured cache (issue 27: "at most 32 MiB with 100,000").
const HUGE: usize = 100_000;
/// Issue 27's memory budgets: the sidecar with [`LARGE`] and with [`HUGE`] users, MiB.
const LARGE_BUDGET_MIB: f64 = 16.0;
const HUGE_BUDGET_MIB: f64 = 32.0;
/// Issue 27: the cache is ready within this long of the list, s.
const READY_BUDGET_S: f64 = 10.0;
/// Requests per measurement.
const REQUESTS: usize = 20_000;
/// Heading of the section; `--only scale` replaces the file's section from here to the next one.
const HEADING: &str = "## Scale: the sidecar with 10,000 and 100,000 SsoUsers";

/// `cargo xtask bench --only scale`: builds the release binaries, measures, and replaces only
/// this section of the written file.
pub fn run_alone(args: &BenchArgs) -> Result<()> {
    let section = section(&release_binaries()?, args.rounds)?;
    write_section_alone(args, HEADING, &section)
}

fn measure(release: &Path, users: usize) -> Result<Value> {
    eprintln!("xtask bench: the sidecar with {users} SsoUsers cached");
    stack_figures(
        release,
        "scale-bench",
        &[
            "--users".into(),
            users.to_string(),
            "--requests".into(),
            REQUESTS.to_string(),
        ],
        "error",
    )
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
    let (mut small, mut large, mut huge) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        small.push(measure(release, SMALL)?);
        large.push(measure(release, LARGE)?);
        huge.push(measure(release, HUGE)?);
    }
    Ok(render(&small, &large, &huge, rounds))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// What the list added to the process's resident memory (the cache's share), max over rounds.
fn cache_share_mib(runs: &[Value]) -> f64 {
    mib(max(runs, |f| {
        num(&f["rss_filled_kib"]) - num(&f["rss_started_kib"])
    }))
}

fn render(small: &[Value], large: &[Value], huge: &[Value], rounds: u32) -> String {
    type Figure = fn(&[Value]) -> f64;
    let rows: [(&str, Figure, &str); 8] = [
        (
            "resident memory, cache filled (max over rounds)",
            |r| mib(max(r, |f| num(&f["rss_filled_kib"]))),
            "MiB",
        ),
        (
            "of which the list added (filled − started, max over rounds)",
            cache_share_mib,
            "MiB",
        ),
        (
            "resident memory after the requests (max over rounds)",
            |r| mib(max(r, |f| num(&f["rss_after_requests_kib"]))),
            "MiB",
        ),
        (
            "request round trip, p50",
            |r| median(r, |f| num(&f["request"]["p50_us"])),
            "µs",
        ),
        (
            "request round trip, p99",
            |r| median(r, |f| num(&f["request"]["p99_us"])),
            "µs",
        ),
        (
            "CPU per request (client, sidecar and app together)",
            |r| median(r, |f| num(&f["cpu_us_per_request"])),
            "µs",
        ),
        (
            "list delivered → cache holds every user (decode and apply, Init … InitDone)",
            |r| median(r, |f| num(&f["ready_us"])) / 1000.0,
            "ms",
        ),
        (
            "of which applying the decoded objects to the cache",
            |r| median(r, |f| num(&f["apply_us"])) / 1000.0,
            "ms",
        ),
    ];
    let mut out = format!("\n{HEADING}\n\n");
    out.push_str(&format!(
        "Produced by `cargo xtask bench` (alone: `cargo xtask bench --only scale`) with \
         `gatehouse-stack scale-bench` (release build): one process per measurement holding the \
         sidecar (Kubernetes provisioning on kube-fake-client's in-memory API), a small app and a \
         client. The SsoUser cache is filled through the sidecar's watch path with a full list \
         of SsoUsers shaped as the API server returns them (labels, status, managed fields), in \
         pages of 500 as the watcher lists them: each page's JSON is decoded as kube decodes a \
         list response and applied to the cache; writing the JSON (the API server's part) is \
         outside the clock. Then {REQUESTS} requests, one at a time, carry the session of one of \
         those users. {SMALL}, {LARGE} and {HUGE} users alternate, {rounds} round(s) each; memory \
         is the process's resident set (the client and the app included), timings are medians \
         over the rounds.\n\n"
    ));
    out.push_str(&format!(
        "| measurement | {SMALL} users (baseline) | {LARGE} users | ratio | {HUGE} users | ratio |\n"
    ));
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (what, figure, unit) in rows {
        let (base, big, bigger) = (figure(small), figure(large), figure(huge));
        out.push_str(&format!(
            "| {what} | {base:.2} {unit} | {big:.2} {unit} | {:.2} | {bigger:.2} {unit} | {:.2} |\n",
            big / base,
            bigger / base,
        ));
    }
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let memory = |r: &[Value]| mib(max(r, |f| num(&f["rss_after_requests_kib"])));
    let baseline = memory(small);
    let (large_memory, huge_memory) = (memory(large), memory(huge));
    let ready_s = |r: &[Value]| max(r, |f| num(&f["ready_us"])) / 1e6;
    let (large_ready, huge_ready) = (ready_s(large), ready_s(huge));
    out.push_str(&format!(
        "\nTargets (issue 27). Memory: at most {LARGE_BUDGET_MIB:.0} MiB with {LARGE} SsoUsers and \
         {HUGE_BUDGET_MIB:.0} MiB with {HUGE}, the sidecar in all. This process holds the app and \
         the client beside the sidecar ({baseline:.1} MiB with {SMALL} users), so what this bench \
         can hold to the budget is what the users add: {:.1} MiB with {LARGE} users \
         ({large_memory:.1} MiB in all), {:.1} MiB with {HUGE} ({huge_memory:.1} MiB in all). The \
         whole process is within the budget with {LARGE} users: {}; with {HUGE}: {}. The budget \
         leaves the sidecar's own memory without users {:.1} MiB with {LARGE} users and {:.1} MiB \
         with {HUGE}. Ready within {READY_BUDGET_S:.0} s of the list (slowest round): \
         {large_ready:.2} s with {LARGE} users, {}; {huge_ready:.2} s with {HUGE}, {}.",
        large_memory - baseline,
        huge_memory - baseline,
        met(large_memory <= LARGE_BUDGET_MIB),
        met(huge_memory <= HUGE_BUDGET_MIB),
        LARGE_BUDGET_MIB - (large_memory - baseline),
        HUGE_BUDGET_MIB - (huge_memory - baseline),
        met(large_ready <= READY_BUDGET_S),
        met(huge_ready <= READY_BUDGET_S),
    ));
    let p50_ratio = median(large, |f| num(&f["request"]["p50_us"]))
        / median(small, |f| num(&f["request"]["p50_us"]));
    let cpu_ratio = median(large, |f| num(&f["cpu_us_per_request"]))
        / median(small, |f| num(&f["cpu_us_per_request"]));
    out.push_str(&format!(
        " Request cost unchanged with {LARGE} users (within 10 % of the {SMALL}-user cache in the \
         same run): round trip ×{p50_ratio:.2}, CPU ×{cpu_ratio:.2}, {}.\n",
        met(p50_ratio <= 1.10 && cpu_ratio <= 1.10),
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

    #[test]
    fn the_section_reports_every_size_the_ready_time_and_the_budgets() {
        let run = |users: usize, kib: f64, ready_us: f64| {
            serde_json::json!({
                "users": users, "rss_started_kib": 18_000.0, "rss_filled_kib": kib,
                "rss_after_requests_kib": kib, "ready_us": ready_us, "apply_us": ready_us / 2.0,
                "request": {"p50_us": 100.0, "p99_us": 200.0}, "cpu_us_per_request": 100.0,
            })
        };
        let section = render(
            &[run(SMALL, 10_240.0, 1_000.0)],
            &[run(LARGE, 14_336.0, 500_000.0)],
            &[run(HUGE, 40_960.0, 12_000_000.0)],
            1,
        );
        assert!(section.starts_with(&format!("\n{HEADING}\n")), "{section}");
        assert!(
            section
                .contains("| 10 users (baseline) | 10000 users | ratio | 100000 users | ratio |"),
            "{section}"
        );
        assert!(
            section.contains("| 500.00 ms | 500.00 | 12000.00 ms |"),
            "{section}"
        );
        assert!(
            section.contains("4.0 MiB with 10000 users (14.0 MiB in all)"),
            "{section}"
        );
        assert!(
            section.contains("with 10000 users: met; with 100000: NOT met"),
            "{section}"
        );
        assert!(
            section.contains("0.50 s with 10000 users, met; 12.00 s with 100000, NOT met"),
            "{section}"
        );
    }
}
