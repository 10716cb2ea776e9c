//! The session-end part of `cargo xtask bench` (alone: `cargo xtask bench --only session-end`):
//! runs `gatehouse-stack session-end-bench` and renders its two measurements, every round and
//! the median, each beside a baseline from the same run: the time from a logout at the IdP
//! (back-channel logout) to the first refused request on the other replica, and what a
//! re-validation adds to the request that triggers it.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::common::{BenchArgs, release_binaries, stack_figures, write_section_alone};

/// Logouts per round.
const TRIALS: usize = 6;
/// Due sessions (and as many fresh ones) per round.
const SESSIONS: usize = 20;
/// Heading of the section; `--only session-end` replaces the file's section from here to the
/// next one.
const HEADING: &str = "## Sessions that follow the IdP: back-channel logout and re-validation";
/// The revocation goal: a session ended is refused on every replica within this, ms.
const REVOCATION_GOAL_MS: f64 = 2000.0;
/// "No added cost": within this factor of the baseline.
const SAME_COST: f64 = 1.10;

/// `cargo xtask bench --only session-end`: builds the release binaries, measures, and replaces
/// only this section of the written file.
pub fn run_alone(args: &BenchArgs) -> Result<()> {
    let section = section(&release_binaries()?, args.rounds)?;
    write_section_alone(args, HEADING, &section)
}

/// Measures with the release `gatehouse-stack` in `release` and renders the section.
pub fn section(release: &Path, rounds: u32) -> Result<String> {
    eprintln!("xtask bench: sessions that follow the IdP ({rounds} rounds)");
    let mut figures = stack_figures(
        release,
        "session-end-bench",
        &[
            "--rounds".into(),
            rounds.to_string(),
            "--trials".into(),
            TRIALS.to_string(),
            "--sessions".into(),
            SESSIONS.to_string(),
        ],
        "warn",
    )?;
    // The sidecar process inherits it (see `gatehouse_tests::stack::Sidecar::start`).
    figures["revalidation"]["worker_threads"] = std::env::var("GATEHOUSE_WORKER_THREADS")
        .ok()
        .map_or(Value::Null, Value::from);
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

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn ms(v: &Value) -> f64 {
    num(v) / 1000.0
}

/// The markdown section.
fn render(f: &Value) -> String {
    let mut out = format!("\n{HEADING}\n\n");
    out.push_str(&render_logout(&f["logout"]));
    out.push_str(&render_revalidation(&f["revalidation"]));
    out
}

fn render_logout(f: &Value) -> String {
    let rounds = f["rounds"].as_array().cloned().unwrap_or_default();
    let mut out = format!(
        "Produced by `gatehouse-stack session-end-bench` (release build; `cargo xtask bench \
         --only session-end`).\n\n\
         ### Logout at the IdP → first refused request on the other replica\n\n\
         Two sidecar replicas run in process on kube-fake-client's in-memory Kubernetes API and \
         sign in through the fixture Okta IdP. Each round signs in {} times at replica 1, each \
         time in a browser of its own (a new IdP session), checks that replica 2 admits the \
         session (the baseline request), and confirms the logout at the IdP; the IdP sends its \
         back-channel logout to replica 1 before answering, and replica 1 records the session in \
         the SsoUser's `status.revokedSessions`. The in-memory API has no streaming watch, so the \
         harness stands in for it: it reads the SsoUser every millisecond and, as soon as the \
         revocation is there, delivers the SsoUser to replica 2's watch cache; then it sends the \
         session's request to replica 2, which must refuse it (and replica 1 must too).\n\n\
         The clock starts when the browser's confirmation leaves the client, a little before the \
         IdP sends the back-channel request, and stops when replica 2's refusal arrives. It \
         includes the IdP's own handling of the confirmation, replica 1 checking the logout \
         token and writing the SsoUser, up to a millisecond of polling, the harness delivering \
         the SsoUser and the refused request. It does not include a real API server delivering \
         the watch event (normally well under a second), which the harness's delivery stands in \
         for.\n\n",
        f["trials"]
    );
    out.push_str(
        "| round | logout → refused on replica 2, p50 | max | of which: → revocation written, p50 | watch stand-in, p50 | refused request, p50 | baseline: admitted request on replica 2, p50 | refused ÷ admitted | IdP's answer to the browser, p50 |\n",
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let cells = |r: &Value| {
        [
            ms(&r["total"]["p50_us"]),
            ms(&r["total"]["max_us"]),
            ms(&r["recorded"]["p50_us"]),
            ms(&r["delivery"]["p50_us"]),
            ms(&r["refused_request"]["p50_us"]),
            ms(&r["admitted_request"]["p50_us"]),
            ms(&r["idp_answer"]["p50_us"]),
        ]
    };
    let row = |label: String, c: [f64; 7]| {
        format!(
            "| {label} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} | {:.2} ms |\n",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[4] / c[5],
            c[6]
        )
    };
    let all: Vec<[f64; 7]> = rounds.iter().map(cells).collect();
    for (i, c) in all.iter().enumerate() {
        out.push_str(&row(format!("{}", i + 1), *c));
    }
    let mut medians = [0.0; 7];
    for (k, m) in medians.iter_mut().enumerate() {
        *m = median(all.iter().map(|c| c[k]).collect());
    }
    out.push_str(&row("**median**".to_owned(), medians));
    let slowest = all.iter().map(|c| c[1]).fold(f64::NAN, f64::max);
    out.push_str(&format!(
        "\nThe median row gives the median of each column over the rounds (its ratio is that of \
         the two medians). Target (the revocation goal): a session ended is refused on every \
         replica within 2 s. Slowest logout to refusal on the other replica: {slowest:.2} ms, \
         {}; the rest of the 2 s is the API server's watch delivery, not measured here.\n\n",
        if slowest < REVOCATION_GOAL_MS {
            "met"
        } else {
            "NOT met"
        }
    ));
    out
}

fn render_revalidation(f: &Value) -> String {
    let rounds = f["rounds"].as_array().cloned().unwrap_or_default();
    let delay_ms = num(&f["token_delay_ms"]);
    let mut out = format!(
        "### What a re-validation adds to the request that triggers it\n\n\
         One sidecar (the release binary, a process of its own) with \
         `GATEHOUSE_REVALIDATE_INTERVAL={interval}s` in front of the sample app (`/static`), \
         signing in through the fixture Okta IdP, whose token endpoint answers {delay_ms:.0} ms \
         late while requests are timed (a request that waited for the refresh would take at \
         least that). Each round signs in {sessions} sessions and waits until they are due, then \
         {sessions} times: signs in a fresh session, and times one request of it (the baseline: \
         nothing to re-validate) and one request of a due session (which starts the refresh at \
         the IdP), alternating which goes first, one connection, the same sidecar. The sidecar \
         must then count exactly {sessions} refreshes (`gatehouse_revalidations_total{{outcome=\
         \"refreshed\"}}`, counted from when the previous round's last refreshes have landed; \
         any other outcome, or a refresh too many or too few, fails the run), and each due \
         session's next response must carry its renewed session cookie. The \
         interval is {interval} s, not 1 s, because the sidecar keeps when a session was \
         validated in whole seconds: with 1 s a session signed in late in a second is due within \
         milliseconds, and the baseline would not be fresh for sure. {threads}\n\n",
        interval = f["interval_s"],
        sessions = f["sessions"],
        threads = match f["worker_threads"].as_str() {
            Some(n) => format!("The sidecar ran with `GATEHOUSE_WORKER_THREADS={n}`."),
            None => "The sidecar ran with its default single runtime thread \
                     (`GATEHOUSE_WORKER_THREADS` unset), which the refresh's own work shares \
                     with the requests; the refresh leaves once the app has answered the \
                     request that started it."
                .to_owned(),
        },
    );
    out.push_str(
        "| round | fresh session, p50 | p90 | triggering a refresh, p50 | p90 | slowest triggering | ratio p50 | ratio p90 | refreshes counted |\n",
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let cells = |r: &Value| {
        [
            ms(&r["fresh"]["p50_us"]),
            ms(&r["fresh"]["p90_us"]),
            ms(&r["triggering"]["p50_us"]),
            ms(&r["triggering"]["p90_us"]),
            ms(&r["triggering"]["max_us"]),
            num(&r["refreshed"]),
        ]
    };
    let row = |label: String, c: [f64; 6]| {
        format!(
            "| {label} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.2} | {:.2} | {} |\n",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[2] / c[0],
            c[3] / c[1],
            if c[5].is_nan() {
                "–".to_owned()
            } else {
                format!("{:.0}", c[5])
            }
        )
    };
    let all: Vec<[f64; 6]> = rounds.iter().map(cells).collect();
    for (i, c) in all.iter().enumerate() {
        out.push_str(&row(format!("{}", i + 1), *c));
    }
    let mut medians = [0.0; 6];
    for (k, m) in medians.iter_mut().enumerate() {
        *m = median(all.iter().map(|c| c[k]).collect());
    }
    out.push_str(&row("**median**".to_owned(), medians));
    let slowest = all.iter().map(|c| c[4]).fold(f64::NAN, f64::max);
    let (ratio_p50, ratio_p90) = (medians[2] / medians[0], medians[3] / medians[1]);
    let same = ratio_p50 <= SAME_COST && ratio_p90 <= SAME_COST;
    out.push_str(&format!(
        "\nThe median row gives the median of each column over the rounds (its ratios are those \
         of the medians). Target: none added, the refresh runs off the request path. The \
         triggering request does not wait for the IdP (slowest of all rounds {slowest:.2} ms \
         against the {delay_ms:.0} ms token delay): {}. Latency as a fresh session's request \
         (within 10 % at p50 and p90): ×{ratio_p50:.2} and ×{ratio_p90:.2}, {}.\n",
        if slowest < delay_ms { "met" } else { "NOT met" },
        if same { "met" } else { "NOT met" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(p50: f64, p90: f64, max: f64) -> Value {
        serde_json::json!({ "p50_us": p50, "p90_us": p90, "max_us": max })
    }

    fn figures() -> Value {
        let logout = |total: f64, refused: f64, admitted: f64| {
            serde_json::json!({
                "total": spread(total, total, total * 2.0),
                "recorded": spread(total / 2.0, 0.0, 0.0),
                "delivery": spread(100.0, 0.0, 0.0),
                "refused_request": spread(refused, 0.0, 0.0),
                "admitted_request": spread(admitted, 0.0, 0.0),
                "idp_answer": spread(total, 0.0, 0.0),
            })
        };
        let reval = |fresh: f64, triggering: f64| {
            serde_json::json!({
                "fresh": spread(fresh, fresh * 2.0, fresh * 3.0),
                "triggering": spread(triggering, triggering * 2.0, triggering * 3.0),
                "refreshed": 20,
            })
        };
        serde_json::json!({
            "logout": {
                "trials": 6,
                "rounds": [
                    logout(10_000.0, 200.0, 400.0),
                    logout(30_000.0, 300.0, 300.0),
                    logout(20_000.0, 400.0, 200.0),
                ],
            },
            "revalidation": {
                "sessions": 20,
                "interval_s": 2,
                "token_delay_ms": 200,
                "rounds": [reval(400.0, 420.0), reval(500.0, 600.0), reval(300.0, 300.0)],
            },
        })
    }

    #[test]
    fn render_lists_every_round_and_the_medians_with_their_ratios() {
        let md = render(&figures());
        assert!(md.starts_with(&format!("\n{HEADING}\n")), "{md}");
        // Logout: every round, then the medians (the ratio is that of the medians).
        assert!(
            md.contains(
                "| 1 | 10.00 ms | 20.00 ms | 5.00 ms | 0.10 ms | 0.20 ms | 0.40 ms | 0.50 | 10.00 ms |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| **median** | 20.00 ms | 40.00 ms | 10.00 ms | 0.10 ms | 0.30 ms | 0.30 ms | 1.00 | 20.00 ms |"
            ),
            "{md}"
        );
        assert!(md.contains("Slowest logout to refusal on the other replica: 60.00 ms, met"));
        // Re-validation: every round, the medians and the verdicts.
        assert!(
            md.contains(
                "| 2 | 0.500 ms | 1.000 ms | 0.600 ms | 1.200 ms | 1.800 ms | 1.20 | 1.20 | 20 |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| **median** | 0.400 ms | 0.800 ms | 0.420 ms | 0.840 ms | 1.260 ms | 1.05 | 1.05 | 20 |"
            ),
            "{md}"
        );
        assert!(md.contains("(slowest of all rounds 1.80 ms against the 200 ms token delay): met"));
        assert!(md.contains("×1.05 and ×1.05, met"), "{md}");
        assert!(md.contains("default single runtime thread"), "{md}");
        let mut two = figures();
        two["revalidation"]["worker_threads"] = Value::from("2");
        assert!(render(&two).contains("ran with `GATEHOUSE_WORKER_THREADS=2`."));
    }

    #[test]
    fn render_says_not_met_when_a_request_waited_or_cost_more() {
        let mut f = figures();
        f["revalidation"]["rounds"][0]["triggering"] = spread(900.0, 205_000.0, 210_000.0);
        f["logout"]["rounds"][1]["total"]["max_us"] = serde_json::json!(2_500_000.0);
        let md = render(&f);
        assert!(
            md.contains("210.00 ms against the 200 ms token delay): NOT met"),
            "{md}"
        );
        assert!(md.contains(", NOT met.\n"), "{md}");
        assert!(md.contains("2500.00 ms, NOT met"), "{md}");
    }

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
