//! `cargo xtask bench`: authenticated requests through the sidecar versus straight to the
//! upstream, in one run, with wrk.
//!
//! Release builds of the sidecar and the sample app; a real session obtained through the fixture
//! IdP's form (by `gatehouse-stack bench`); wrk at 32 connections and at 1 connection; sidecar
//! CPU per request from /proc/<pid>/stat; resident memory idle and under load from
//! /proc/<pid>/status. A wrk Lua script counts every response that is not a 200 carrying the
//! sample app's marker header, and any such response fails the run (a lost session answering a
//! fast 302 must not count as throughput).
//!
//! When nginx is installed (`cargo xtask setup` installs Debian's `nginx-light`), the same load
//! also goes through a bare nginx reverse proxy in front of the same upstream, so the figures have
//! a reference measured on the same machine at the same time: what any proxy costs here. A second
//! sidecar in optional mode, sent no session, shows what the sidecar costs with nothing to
//! authenticate, so the report can say which part of its cost is authentication. A third, the
//! authenticated sidecar's twin with a 20-rule access policy (`gatehouse_tests::bench_access`),
//! sent the same session cookie, shows what the rules cost per request (issue 28); it runs right
//! before or after the authenticated sidecar in every round. So does a fourth, the twin admitting
//! machine clients (`gatehouse_tests::bench_machine`), sent a client-credentials bearer token
//! instead of the cookie: what a machine request costs with its issuer's key cached (issue 28).
//!
//! When Apache and mod_auth_openidc are installed (`cargo xtask setup` installs Debian's
//! `apache2` and `libapache2-mod-auth-openidc`), the same load also goes through Apache
//! authenticating with mod_auth_openidc: signed in once through the same fixture IdP, with its
//! encrypted session cookie on every request, before the same upstream (see
//! `gatehouse_tests::apache`; `gatehouse-stack bench` starts it and checks that it refuses a
//! request without the cookie and passes the user's claims to the app with it).
//!
//! The other parts of the report are measured by their own modules ([`provisioning`], [`scale`],
//! [`signin`], [`session_end`], [`startup`]); `--only <part>` runs one of them alone, and `--only requests`
//! this part alone.

mod common;
mod provisioning;
mod scale;
mod session_end;
mod signin;
mod startup;

use std::{
    io::{BufRead, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::setup;
use crate::workspace::{on_path, root, target_dir};
pub use common::BenchArgs;
use common::release_binaries;

/// Header and value the sample app's `/static` answers with.
const MARKER_HEADER: &str = "x-sample-app";
const MARKER_VALUE: &str = "static";
/// Environment variable that hands the session cookie to wrk's Lua script (not on argv, so it
/// does not show in the process list).
const COOKIE_VAR: &str = "GATEHOUSE_BENCH_COOKIE";
/// Environment variable that hands a machine client's bearer token to wrk's Lua script (not on
/// argv either).
const BEARER_VAR: &str = "GATEHOUSE_BENCH_BEARER";

const LUA: &str = r#"
local cookie = os.getenv("GATEHOUSE_BENCH_COOKIE")
if cookie ~= nil and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end
local bearer = os.getenv("GATEHOUSE_BENCH_BEARER")
if bearer ~= nil and bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
end
wrk.headers["Accept"] = "text/plain"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  bad = 0
end

function response(status, headers, body)
  local marker = nil
  for k, v in pairs(headers) do
    if string.lower(k) == "MARKER_HEADER" then marker = v end
  end
  if status == 200 and marker == "MARKER_VALUE" then
    ok = ok + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'GATEHOUSE_RESULT {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"p50_us":%d,"p99_us":%d,"socket_errors":%d,"status_errors":%d}\n',
    summary.requests, summary.duration, total_ok, total_bad,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"#;

/// One wrk run.
#[derive(Debug, Clone)]
struct Run {
    requests: u64,
    rps: f64,
    ok: u64,
    bad: u64,
    p50_us: f64,
    p99_us: f64,
    socket_errors: u64,
}

/// One wrk run and the CPU time the measured process (upstream, nginx or sidecar) spent on it.
#[derive(Debug, Clone)]
struct Measured {
    run: Run,
    cpu_us_per_request: f64,
    /// The user-space part of `cpu_us_per_request`; the rest is kernel time.
    user_us_per_request: f64,
}

impl Measured {
    /// The median of each figure over the rounds; response counts are summed, so that a bad
    /// response in any round is seen.
    fn median(all: &[Measured]) -> Measured {
        let median = |f: &dyn Fn(&Measured) -> f64| {
            let mut v: Vec<f64> = all.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            match v.len() {
                0 => 0.0,
                n if n % 2 == 1 => v[n / 2],
                n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
            }
        };
        let sum = |f: &dyn Fn(&Run) -> u64| all.iter().map(|m| f(&m.run)).sum::<u64>();
        Measured {
            run: Run {
                requests: sum(&|r| r.requests),
                rps: median(&|m| m.run.rps),
                ok: sum(&|r| r.ok),
                bad: sum(&|r| r.bad),
                p50_us: median(&|m| m.run.p50_us),
                p99_us: median(&|m| m.run.p99_us),
                socket_errors: sum(&|r| r.socket_errors),
            },
            cpu_us_per_request: median(&|m| m.cpu_us_per_request),
            user_us_per_request: median(&|m| m.user_us_per_request),
        }
    }
}

/// Runs `load` and charges `pid`'s CPU time over it to the requests it completed.
fn measure(pid: u64, clk_tck: u64, load: impl FnOnce() -> Result<Run>) -> Result<Measured> {
    measure_ticks(|| cpu_ticks(pid), clk_tck, load)
}

/// Runs `load` and charges the CPU time `ticks` counts over it to the requests it completed.
fn measure_ticks(
    ticks: impl Fn() -> Result<Ticks>,
    clk_tck: u64,
    load: impl FnOnce() -> Result<Run>,
) -> Result<Measured> {
    let before = ticks()?;
    let run = load()?;
    let after = ticks()?;
    let per_request =
        |ticks: u64| ticks as f64 * 1_000_000.0 / clk_tck as f64 / (run.requests.max(1) as f64);
    Ok(Measured {
        cpu_us_per_request: per_request(after.total() - before.total()),
        user_us_per_request: per_request(after.user - before.user),
        run,
    })
}

/// One load level: direct to the upstream, through nginx (when installed) and through the sidecar.
#[derive(Debug)]
struct Level {
    connections: u32,
    /// Straight to the upstream; its CPU figures are the upstream's own (for scale).
    direct: Measured,
    through: Measured,
    /// The same load through a second sidecar in optional mode, sent no session: the proxy with
    /// nothing to authenticate.
    anonymous: Measured,
    /// The same load, with the same session, through the authenticated sidecar's twin with a
    /// 20-rule access policy.
    ruled: Measured,
    /// The same load through the authenticated sidecar's twin admitting machine clients, with a
    /// bearer token instead of the cookie.
    machine: Measured,
    /// The same load through nginx, when it is installed.
    reference: Option<Measured>,
    /// The same load through Apache with mod_auth_openidc (with its session), when installed;
    /// CPU figures are its parent's and child's together.
    apache: Option<Measured>,
    rss_load_kib: u64,
    /// Medians of the streamed-response runs, where measured.
    streamed: Option<Streamed>,
    /// Every round's own figures, in the order they ran (the fields above are their medians).
    rounds: Vec<Round>,
}

/// The runs of one round at one load level: each target once, back to back.
#[derive(Debug, Clone)]
struct Round {
    direct: Measured,
    through: Measured,
    anonymous: Measured,
    ruled: Measured,
    machine: Measured,
    reference: Option<Measured>,
    apache: Option<Measured>,
    /// The sidecar's largest resident set sampled during its run.
    rss_load_kib: u64,
    /// The same load on `/stream` (the same body without a length), direct and through the
    /// sidecar; measured at [`STREAMED_AT`] connections only.
    streamed: Option<Streamed>,
}

/// Connections at which streamed responses are measured.
const STREAMED_AT: u32 = 32;

/// A streamed response (no `Content-Length`), direct and through the sidecar.
#[derive(Debug, Clone)]
struct Streamed {
    direct: Measured,
    through: Measured,
}

impl Level {
    /// Medians over `rounds` (which must not be empty).
    fn from_rounds(connections: u32, rounds: Vec<Round>) -> Self {
        let all = |f: &dyn Fn(&Round) -> Option<&Measured>| -> Option<Measured> {
            let runs: Vec<Measured> = rounds.iter().filter_map(|r| f(r).cloned()).collect();
            (!runs.is_empty()).then(|| Measured::median(&runs))
        };
        let median = |f: &dyn Fn(&Round) -> &Measured| {
            Measured::median(&rounds.iter().map(|r| f(r).clone()).collect::<Vec<_>>())
        };
        Level {
            connections,
            direct: median(&|r| &r.direct),
            through: median(&|r| &r.through),
            anonymous: median(&|r| &r.anonymous),
            ruled: median(&|r| &r.ruled),
            machine: median(&|r| &r.machine),
            reference: all(&|r| r.reference.as_ref()),
            apache: all(&|r| r.apache.as_ref()),
            rss_load_kib: rounds.iter().map(|r| r.rss_load_kib).max().unwrap_or(0),
            streamed: all(&|r| r.streamed.as_ref().map(|s| &s.direct))
                .zip(all(&|r| r.streamed.as_ref().map(|s| &s.through)))
                .map(|(direct, through)| Streamed { direct, through }),
            rounds,
        }
    }
}

/// What one bench round measures, in the order of the first round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Direct,
    Nginx,
    Apache,
    Anonymous,
    Sidecar,
    /// The authenticated sidecar's twin with access rules; always right before or after
    /// [`Target::Sidecar`].
    Ruled,
    /// The authenticated sidecar's twin admitting machine clients, sent a bearer token; always
    /// right after or before [`Target::Sidecar`].
    Machine,
    DirectStreamed,
    SidecarStreamed,
}

/// Pause before each run.
const SETTLE: Duration = Duration::from_millis(500);

/// The order of round `round` (from 1), so that no target always runs first, last, or right after
/// the same neighbour: round r starts at target r - 1 and walks the list with a stride coprime
/// to its length (1, 2, 3, … skipping strides that share a factor with it), so every round is a
/// permutation and successive rounds pair different neighbours. The sidecar with access rules and
/// the machine-client sidecar are compared with the sidecar, so each runs right beside it: in odd
/// rounds the machine client right before it and the rules right after it, in even ones the other
/// way round, so that what changes on the machine between runs falls on each pair alike and
/// neither of a pair always follows the other.
fn round_order(round: u32, streamed: bool) -> Vec<Target> {
    let mut targets = vec![
        Target::Direct,
        Target::Nginx,
        Target::Apache,
        Target::Anonymous,
        Target::Sidecar,
    ];
    if streamed {
        targets.extend([Target::DirectStreamed, Target::SidecarStreamed]);
    }
    let n = targets.len();
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let strides: Vec<usize> = (1..n.max(2)).filter(|s| gcd(*s, n) == 1).collect();
    let r = round.saturating_sub(1) as usize;
    let (start, stride) = (r % n, strides[r % strides.len()]);
    let beside = if r.is_multiple_of(2) {
        [Target::Machine, Target::Sidecar, Target::Ruled]
    } else {
        [Target::Ruled, Target::Sidecar, Target::Machine]
    };
    (0..n)
        .flat_map(|i| match targets[(start + i * stride) % n] {
            Target::Sidecar => beside.to_vec(),
            t => vec![t],
        })
        .collect()
}

/// A round's runs as they come in.
#[derive(Default)]
struct RoundSlots {
    direct: Option<Measured>,
    through: Option<Measured>,
    anonymous: Option<Measured>,
    ruled: Option<Measured>,
    machine: Option<Measured>,
    reference: Option<Measured>,
    apache: Option<Measured>,
    rss_load_kib: u64,
    direct_streamed: Option<Measured>,
    through_streamed: Option<Measured>,
}

impl RoundSlots {
    fn finish(self) -> Result<Round> {
        Ok(Round {
            direct: self.direct.context("no direct run")?,
            through: self.through.context("no sidecar run")?,
            anonymous: self.anonymous.context("no run without a session")?,
            ruled: self.ruled.context("no run with access rules")?,
            machine: self.machine.context("no run of a machine client")?,
            reference: self.reference,
            apache: self.apache,
            rss_load_kib: self.rss_load_kib,
            streamed: self
                .direct_streamed
                .zip(self.through_streamed)
                .map(|(direct, through)| Streamed { direct, through }),
        })
    }
}

/// The `/stream` twin of a `/static` URL.
fn streamed(url: &str) -> String {
    match url.strip_suffix("/static") {
        Some(base) => format!("{base}/stream"),
        None => url.to_owned(),
    }
}

/// A bare nginx reverse proxy in front of the upstream: one process (`master_process off`, one
/// worker's work), keep-alive to the upstream as the sidecar's pool does, no access log. Killed
/// when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Nginx {
    fn start(binary: &Path, direct: &str) -> Result<Self> {
        let rest = direct
            .strip_prefix("http://")
            .context("direct url is not http")?;
        let (upstream, path) = rest.split_once('/').context("direct url has no path")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("gatehouse-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log stderr warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             upstream app {{ server {upstream}; keepalive 64; }}\n  \
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      \
             proxy_pass http://app;\n      proxy_http_version 1.1;\n      \
             proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting nginx")?;
        let nginx = Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}/{path}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(nginx);
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!("nginx did not listen on 127.0.0.1:{port} within 5 s (its errors are above)")
    }

    fn pid(&self) -> u64 {
        u64::from(self.child.id())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills the stack when dropped.
struct StackGuard(Child);

impl Drop for StackGuard {
    fn drop(&mut self) {
        // Closing stdin asks gatehouse-stack to stop (it then kills its children).
        drop(self.0.stdin.take());
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.only.as_deref() == Some("requests") {
        return run_requests(args);
    }
    if args.only.as_deref() == Some("scale") {
        return scale::run_alone(args);
    }
    if args.only.as_deref() == Some("signin") {
        return signin::run_alone(args);
    }
    if args.only.as_deref() == Some("session-end") {
        return session_end::run_alone(args);
    }
    if args.only.as_deref() == Some("startup") {
        return startup::run_alone(args);
    }
    let (release, requests) = requests(args)?;
    let provisioning = provisioning::run(&release)?;
    let mut report = requests.report.clone();
    report.push_str(&provisioning::render(&provisioning));
    report.push_str(&scale::section(&release, args.rounds)?);
    report.push_str(&signin::section(&release, args.rounds)?);
    report.push_str(&session_end::section(&release, args.rounds)?);
    report.push_str(&startup::section(&release, args.rounds)?);
    println!("{report}");
    requests.valid()?;
    if !args.no_write {
        let out = root().join(&args.out);
        std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("xtask bench: wrote {}", out.display());
    }
    Ok(())
}

/// `cargo xtask bench --only requests`: this part alone (no provisioning, scale, sign-in or
/// session-end figures); replaces only its part of the written file (up to the first section
/// after "Each round").
fn run_requests(args: &BenchArgs) -> Result<()> {
    let (_, requests) = requests(args)?;
    println!("{}", requests.report);
    requests.valid()?;
    if !args.no_write {
        let out = root().join(&args.out);
        let doc = std::fs::read_to_string(&out).unwrap_or_default();
        std::fs::write(&out, replace_requests_part(&doc, &requests.report))
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!(
            "xtask bench: replaced the requests part of {}",
            out.display()
        );
    }
    Ok(())
}

/// `doc` with its requests part (from the start up to the first `## ` section after "Each
/// round") replaced by `part`; the other parts stay as they are.
fn replace_requests_part(doc: &str, part: &str) -> String {
    let rest = doc
        .find("\n## Each round")
        .and_then(|at| doc[at + 1..].find("\n## ").map(|next| at + 1 + next))
        .map_or("", |end| &doc[end..]);
    format!("{part}{rest}")
}

/// The requests part's report, and what made its figures invalid (if anything did).
struct Requests {
    report: String,
    problems: Vec<String>,
}

impl Requests {
    /// Fails when a counted response was not the upstream's.
    fn valid(&self) -> Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        bail!(
            "benchmark invalid, figures not written:\n  {}",
            self.problems.join("\n  ")
        )
    }
}

/// Builds the release binaries, measures the requests part and renders it; returns the release
/// directory too, for the other parts.
fn requests(args: &BenchArgs) -> Result<(PathBuf, Requests)> {
    setup::run(setup::Needs {
        chromium: false,
        wrk: true,
        nginx: true,
        apache: true,
        python_venv: false,
        containers: false,
        shellcheck: false,
        fuzz: false,
    })?;
    if !on_path("wrk") {
        bail!(
            "wrk is not installed: run `apt-get install -y wrk` (or `cargo xtask setup` as root)"
        );
    }
    let release = release_binaries()?;

    let apache = setup::apache_with_oidc();
    let mut stack = Command::new(release.join("gatehouse-stack"));
    match &apache {
        Some((binary, modules)) => {
            stack
                .env("GATEHOUSE_BENCH_APACHE", binary)
                .env("GATEHOUSE_BENCH_APACHE_MODULES", modules)
                .env(
                    "GATEHOUSE_BENCH_APACHE_DIR",
                    target_dir().join("bench-apache"),
                );
        }
        None => eprintln!(
            "xtask bench: WARNING: Apache with mod_auth_openidc is not installed, so the \
             authenticating peer is not measured (`apt-get install -y apache2 \
             libapache2-mod-auth-openidc`, or `cargo xtask setup` as root)"
        ),
    }
    let mut child = stack
        .arg("bench")
        .env("GATEHOUSE_SIDECAR_BIN", release.join("gatehouse-sidecar"))
        .env(
            "GATEHOUSE_SAMPLE_APP_BIN",
            release.join("gatehouse-sample-app"),
        )
        .env("GATEHOUSE_TEST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting gatehouse-stack bench")?;
    let stdout = child.stdout.take().context("stack stdout")?;
    let guard = StackGuard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the stack's announcement")?;
    let info: Value = serde_json::from_str(line.trim())
        .context("the benchmark stack did not start (see its errors above)")?;
    let direct = info["direct"].as_str().context("direct url")?.to_owned();
    let through = info["through"].as_str().context("through url")?.to_owned();
    let cookie = info["cookie"].as_str().context("cookie")?.to_owned();
    let sidecar_pid = info["sidecar_pid"].as_u64().context("sidecar pid")?;
    let app_pid = info["app_pid"].as_u64().context("app pid")?;
    let anonymous = info["anonymous"]
        .as_str()
        .context("anonymous url")?
        .to_owned();
    let anonymous_pid = info["anonymous_pid"].as_u64().context("anonymous pid")?;
    let ruled = info["ruled"].as_str().context("ruled url")?.to_owned();
    let ruled_pid = info["ruled_pid"].as_u64().context("ruled pid")?;
    let machine = info["machine"].as_str().context("machine url")?.to_owned();
    let machine_pid = info["machine_pid"].as_u64().context("machine pid")?;
    let bearer = info["bearer"].as_str().context("bearer token")?.to_owned();
    // Apache's URL, parent pid and session cookie, when it runs.
    let apache = match (
        info["apache"].as_str(),
        info["apache_pid"].as_u64(),
        info["apache_cookie"].as_str(),
    ) {
        (Some(url), Some(pid), Some(cookie)) => Some((url.to_owned(), pid, cookie.to_owned())),
        _ if apache.is_some() => bail!("the benchmark stack did not start Apache: {line}"),
        _ => None,
    };
    let apache_version = apache.as_ref().map(|_| apache_version());

    let script = std::env::temp_dir().join(format!("gatehouse-bench-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        LUA.replace("MARKER_HEADER", MARKER_HEADER)
            .replace("MARKER_VALUE", MARKER_VALUE),
    )?;
    let clk_tck = clock_ticks_per_second();

    let nginx = match setup::nginx_binary() {
        Some(binary) => Some(Nginx::start(&binary, &direct)?),
        None => {
            eprintln!(
                "xtask bench: WARNING: nginx is not installed, so the reference proxy is not \
                 measured (`apt-get install -y nginx-light`, or `cargo xtask setup` as root)"
            );
            None
        }
    };
    let nginx_version = nginx.as_ref().map(|_| nginx_version());

    let load_before = load_average();
    let steal = Steal::start();
    let rss_idle = rss_kib(sidecar_pid)?;
    let rss_idle_parts = rss_parts(sidecar_pid).ok();
    let threads = thread_count(sidecar_pid);
    eprintln!("xtask bench: warming up");
    wrk(&script, &direct, Credential::None, 8, 2)?;
    wrk(&script, &through, Credential::Cookie(&cookie), 8, 2)?;
    wrk(&script, &anonymous, Credential::None, 8, 2)?;
    wrk(&script, &ruled, Credential::Cookie(&cookie), 8, 2)?;
    wrk(&script, &machine, Credential::Bearer(&bearer), 8, 2)?;
    if let Some(n) = &nginx {
        wrk(&script, &n.url, Credential::None, 8, 2)?;
    }
    if let Some((url, _, cookie)) = &apache {
        wrk(&script, url, Credential::Cookie(cookie), 8, 2)?;
    }

    let mut levels = Vec::new();
    for connections in [32u32, 1] {
        // Each round runs every target back to back, so that a change in what else the machine
        // is doing falls on all alike, each round in another order (see `round_order`); the
        // report gives every round's figures and their medians.
        let mut rounds = Vec::new();
        for round in 1..=args.rounds {
            eprintln!(
                "xtask bench: {connections} connection(s), round {round}/{}",
                args.rounds
            );
            let mut slot = RoundSlots::default();
            for target in round_order(round, connections == STREAMED_AT) {
                // A pause between runs, so that what one target leaves behind (connections
                // closing, Apache's threads winding down) does not fall on the next.
                thread::sleep(SETTLE);
                let run = |url: &str, credential: Credential<'_>| {
                    wrk(&script, url, credential, connections, args.duration)
                };
                match target {
                    Target::Direct => {
                        slot.direct = Some(measure(app_pid, clk_tck, || {
                            run(&direct, Credential::None)
                        })?);
                    }
                    Target::Nginx => {
                        if let Some(n) = &nginx {
                            slot.reference =
                                Some(measure(n.pid(), clk_tck, || run(&n.url, Credential::None))?);
                        }
                    }
                    Target::Apache => {
                        if let Some((url, pid, cookie)) = &apache {
                            slot.apache = Some(measure_ticks(
                                || tree_ticks(*pid),
                                clk_tck,
                                || run(url, Credential::Cookie(cookie)),
                            )?);
                        }
                    }
                    Target::Anonymous => {
                        slot.anonymous = Some(measure(anonymous_pid, clk_tck, || {
                            run(&anonymous, Credential::None)
                        })?);
                    }
                    Target::Sidecar => {
                        let sampler = RssSampler::start(sidecar_pid);
                        slot.through = Some(measure(sidecar_pid, clk_tck, || {
                            run(&through, Credential::Cookie(&cookie))
                        })?);
                        slot.rss_load_kib = sampler.stop();
                    }
                    Target::Ruled => {
                        slot.ruled = Some(measure(ruled_pid, clk_tck, || {
                            run(&ruled, Credential::Cookie(&cookie))
                        })?);
                    }
                    Target::Machine => {
                        slot.machine = Some(measure(machine_pid, clk_tck, || {
                            run(&machine, Credential::Bearer(&bearer))
                        })?);
                    }
                    Target::DirectStreamed => {
                        let url = streamed(&direct);
                        slot.direct_streamed =
                            Some(measure(app_pid, clk_tck, || run(&url, Credential::None))?);
                    }
                    Target::SidecarStreamed => {
                        let url = streamed(&through);
                        slot.through_streamed = Some(measure(sidecar_pid, clk_tck, || {
                            run(&url, Credential::Cookie(&cookie))
                        })?);
                    }
                }
            }
            rounds.push(slot.finish()?);
        }
        levels.push(Level::from_rounds(connections, rounds));
    }
    drop(nginx);
    let _ = std::fs::remove_file(&script);
    drop(guard);

    // Every counted response must have come from the upstream.
    let mut problems = Vec::new();
    for l in &levels {
        let runs = [
            Some(("direct", &l.direct.run)),
            Some(("through the sidecar", &l.through.run)),
            Some(("through the sidecar without a session", &l.anonymous.run)),
            Some(("through the sidecar with access rules", &l.ruled.run)),
            Some((
                "through the sidecar with a machine client's bearer token",
                &l.machine.run,
            )),
            l.reference.as_ref().map(|r| ("through nginx", &r.run)),
            l.apache
                .as_ref()
                .map(|a| ("through Apache with mod_auth_openidc", &a.run)),
            l.streamed
                .as_ref()
                .map(|s| ("direct, streamed response", &s.direct.run)),
            l.streamed
                .as_ref()
                .map(|s| ("through the sidecar, streamed response", &s.through.run)),
        ];
        for (what, r) in runs.into_iter().flatten() {
            if r.bad > 0 || r.ok == 0 {
                problems.push(format!(
                    "{} connection(s) {what}: {} responses were not the upstream's 200 (ok {})",
                    l.connections, r.bad, r.ok
                ));
            }
        }
    }
    let load_after = load_average();
    let steal_percent = steal.finish();
    let report = render(&Rendered {
        levels: &levels,
        rss_idle_kib: rss_idle,
        rss_idle_parts: rss_idle_parts.as_ref(),
        duration: args.duration,
        load_before: &load_before,
        load_after: &load_after,
        steal_percent,
        rounds: args.rounds,
        threads,
        nginx_version: nginx_version.as_deref(),
        apache_version: apache_version.as_deref(),
    });
    Ok((release, Requests { report, problems }))
}

/// What a run's requests carry, handed to wrk's Lua script through the environment.
#[derive(Debug, Clone, Copy)]
enum Credential<'a> {
    /// Nothing.
    None,
    /// A session cookie (`Cookie`).
    Cookie(&'a str),
    /// A machine client's token (`Authorization: Bearer`).
    Bearer(&'a str),
}

fn wrk(
    script: &Path,
    url: &str,
    credential: Credential<'_>,
    connections: u32,
    seconds: u64,
) -> Result<Run> {
    let threads = connections.clamp(1, 2);
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .env_remove(COOKIE_VAR)
        .env_remove(BEARER_VAR);
    match credential {
        Credential::None => {}
        Credential::Cookie(c) => {
            cmd.env(COOKIE_VAR, c);
        }
        Credential::Bearer(b) => {
            cmd.env(BEARER_VAR, b);
        }
    }
    let out = cmd.output().context("running wrk")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("GATEHOUSE_RESULT "))
        .with_context(|| format!("wrk printed no result:\n{stdout}"))?;
    let v: Value = serde_json::from_str(json)?;
    let num = |k: &str| v[k].as_f64().unwrap_or(0.0);
    let duration_s = num("duration_us") / 1_000_000.0;
    Ok(Run {
        requests: num("requests") as u64,
        rps: num("requests") / duration_s.max(1e-9),
        ok: num("ok") as u64,
        bad: num("bad") as u64 + num("status_errors") as u64,
        p50_us: num("p50_us"),
        p99_us: num("p99_us"),
        socket_errors: num("socket_errors") as u64,
    })
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// CPU time of a process, in clock ticks.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    user: u64,
    system: u64,
}

impl Ticks {
    fn total(self) -> u64 {
        self.user + self.system
    }
}

/// utime and stime of a process, in clock ticks.
fn cpu_ticks(pid: u64) -> Result<Ticks> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (did the sidecar exit?)"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(Ticks {
        user: utime,
        system: stime,
    })
}

/// CPU time of a process and its children (Apache's parent and the child that serves).
fn tree_ticks(pid: u64) -> Result<Ticks> {
    let mut total = cpu_ticks(pid)?;
    for child in children(pid) {
        if let Ok(t) = cpu_ticks(child) {
            total.user += t.user;
            total.system += t.system;
        }
    }
    Ok(total)
}

/// The processes whose parent is `pid`.
fn children(pid: u64) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                // Field 4 (ppid) is the second after the parenthesised command name.
                stat.rfind(')')
                    .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
                    .and_then(|f| f.parse::<u64>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Threads of a process (its runtime's workers and helpers), 0 if unknown.
fn thread_count(pid: u64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Resident set size in KiB.
fn rss_kib(pid: u64) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS missing")
}

/// Where a process's resident memory lies: anonymous pages (heap, stacks, written data), the
/// executable's own file pages, and each shared library's file pages (clean, shared with every
/// other process that maps the same file).
#[derive(Debug, Clone, Default, PartialEq)]
struct RssParts {
    anonymous_kib: u64,
    executable_kib: u64,
    /// Library file name and its resident file pages, largest first.
    libraries: Vec<(String, u64)>,
}

/// Reads [`RssParts`] from `/proc/<pid>/smaps`.
fn rss_parts(pid: u64) -> Result<RssParts> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    Ok(parse_smaps(&smaps, &exe.to_string_lossy()))
}

fn parse_smaps(smaps: &str, executable: &str) -> RssParts {
    fn kib(line: &str, field: &str) -> Option<u64> {
        line.strip_prefix(field)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
    let mut parts = RssParts::default();
    let mut libraries: std::collections::BTreeMap<String, u64> = Default::default();
    // The current mapping's file (None for heap, stacks and other anonymous mappings).
    let mut file: Option<String> = None;
    let mut rss = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && first.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            file = fields
                .nth(4)
                .filter(|p| p.starts_with('/'))
                .map(str::to_owned);
        } else if let Some(v) = kib(line, "Rss:") {
            rss = v;
        } else if let Some(anon) = kib(line, "Anonymous:") {
            // `Rss` precedes `Anonymous` in every mapping's block.
            parts.anonymous_kib += anon;
            let file_pages = rss.saturating_sub(anon);
            match &file {
                Some(path) if path == executable => parts.executable_kib += file_pages,
                Some(path) => {
                    let name = path.rsplit('/').next().unwrap_or(path).to_owned();
                    *libraries.entry(name).or_default() += file_pages;
                }
                None => parts.anonymous_kib += file_pages,
            }
        }
    }
    parts.libraries = libraries.into_iter().filter(|(_, k)| *k > 0).collect();
    parts
        .libraries
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    parts
}

/// "2.0 MiB anonymous (…), 10.0 MiB the executable's pages, 4.4 MiB shared libraries (libc 1.5, …)".
fn rss_parts_text(p: &RssParts) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    let total: u64 = p.libraries.iter().map(|(_, k)| k).sum();
    let named: Vec<String> = p
        .libraries
        .iter()
        .filter(|(_, k)| *k >= 100)
        .map(|(name, k)| format!("{name} {:.1}", mib(*k)))
        .collect();
    format!(
        "{:.1} MiB anonymous (heap, stacks, written data), {:.1} MiB the executable's own file \
         pages, {:.1} MiB shared libraries' file pages ({})",
        mib(p.anonymous_kib),
        mib(p.executable_kib),
        mib(total),
        named.join(", ")
    )
}

/// Samples a process's RSS every 50 ms; [`RssSampler::stop`] returns the maximum.
struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    handle: thread::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, max) = (stop.clone(), max.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(kib) = rss_kib(pid) {
                        max.fetch_max(kib, Ordering::Relaxed);
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self { stop, max, handle }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
        self.max.load(Ordering::Relaxed)
    }
}

fn machine() -> String {
    let cpus = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cpus} CPU(s), {model}")
}

fn wrk_version() -> String {
    Command::new("wrk")
        .arg("-v")
        .output()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines().next().unwrap_or("wrk").trim().to_owned()
        })
        .unwrap_or_else(|_| "wrk".to_owned())
}

/// Steal time over the run: CPU time the hypervisor gave to other guests.
struct Steal(Option<(u64, u64)>);

impl Steal {
    /// (steal, total) jiffies from /proc/stat's `cpu` line.
    fn read() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        Some((*fields.get(7)?, fields.iter().take(8).sum()))
    }

    fn start() -> Self {
        Self(Self::read())
    }

    /// Percent of all CPU time since `start` that was stolen.
    fn finish(self) -> Option<f64> {
        let (steal0, total0) = self.0?;
        let (steal1, total1) = Self::read()?;
        let total = total1.checked_sub(total0)?;
        (total > 0).then(|| (steal1.saturating_sub(steal0)) as f64 * 100.0 / total as f64)
    }
}

fn nginx_version() -> String {
    setup::nginx_binary()
        .and_then(|b| Command::new(b).arg("-v").output().ok())
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "nginx".to_owned())
}

/// `apache2 -v` and the mod_auth_openidc package's version.
fn apache_version() -> String {
    let apache = Command::new(setup::APACHE_BINARY)
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("Server version:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "Apache httpd".to_owned());
    let module = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "libapache2-mod-auth-openidc"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .map_or_else(
            || "mod_auth_openidc".to_owned(),
            |v| format!("mod_auth_openidc {v}"),
        );
    format!("{apache}, {module}")
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// The 1-, 5- and 15-minute load averages (other work on the machine skews the figures).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Everything the report shows.
struct Rendered<'a> {
    levels: &'a [Level],
    rss_idle_kib: u64,
    /// Where the idle resident memory lies, when `/proc/<pid>/smaps` could be read.
    rss_idle_parts: Option<&'a RssParts>,
    duration: u64,
    rounds: u32,
    load_before: &'a str,
    load_after: &'a str,
    /// Share of the machine's CPU time taken by the hypervisor for other guests during the run.
    steal_percent: Option<f64>,
    threads: usize,
    /// `nginx -v`, when the reference proxy ran.
    nginx_version: Option<&'a str>,
    /// Apache's and mod_auth_openidc's versions, when the authenticating peer ran.
    apache_version: Option<&'a str>,
}

fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(1e-9)
}

fn cpu_cell(m: &Measured) -> String {
    format!(
        "{:.1} µs ({:.1} user + {:.1} kernel)",
        m.cpu_us_per_request,
        m.user_us_per_request,
        m.cpu_us_per_request - m.user_us_per_request
    )
}

/// The authenticating peer's table and how the sidecar compares with it.
fn render_apache(r: &Rendered<'_>, line: &mut impl FnMut(String)) {
    let Some(version) = r.apache_version else {
        line(
            "Authenticating peer: Apache with mod_auth_openidc was not installed, so it was not \
             measured in this run."
                .into(),
        );
        line(String::new());
        return;
    };
    line(format!(
        "Authenticating peer, same run: the same load through Apache httpd with mod_auth_openidc \
         ({version}), the most widely deployed certified OpenID Connect relying party, in front \
         of the same upstream. Its configuration is written by the benchmark: event MPM with one \
         child process (64 threads, which may use both cores), encrypted-cookie sessions \
         (`OIDCSessionType client-cookie`), the claims passed to the app as `OIDC_CLAIM_*` \
         headers, a keep-alive reverse proxy to the upstream, no access log. It was signed in \
         once through the same fixture IdP's form and every request carried its session \
         cookie; before the run it was checked to redirect a browser without the cookie to the \
         IdP, to refuse an API client without it, and to pass the signed-in user's email claim \
         to the app with it. Its CPU figures are its parent's and child's together."
    ));
    line(String::new());
    line("| connections | Apache req/s | ratio to direct | ratio to nginx | Apache p50 / p99 | Apache CPU per request | sidecar ÷ Apache throughput | sidecar CPU ÷ Apache CPU |".into());
    line("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |".into());
    for l in r.levels {
        if let Some(a) = &l.apache {
            let to_nginx = l.reference.as_ref().map_or("–".to_owned(), |n| {
                format!("{:.2}", ratio(a.run.rps, n.run.rps))
            });
            line(format!(
                "| {} | {:.0} | {:.2} | {to_nginx} | {:.0} µs / {:.0} µs | {} | {:.2} | {:.2} |",
                l.connections,
                a.run.rps,
                ratio(a.run.rps, l.direct.run.rps),
                a.run.p50_us,
                a.run.p99_us,
                cpu_cell(a),
                ratio(l.through.run.rps, a.run.rps),
                ratio(l.through.cpu_us_per_request, a.cpu_us_per_request),
            ));
        }
    }
    line(String::new());
    if let Some(l) = r.levels.iter().find(|l| l.connections == 32)
        && let Some(a) = &l.apache
    {
        line(format!(
            "How Gatehouse compares: at 32 connections the sidecar served {:.2} × Apache with \
             mod_auth_openidc's authenticated throughput and spent {:.2} × its CPU per request \
             ({:.1} µs against {:.1} µs).",
            ratio(l.through.run.rps, a.run.rps),
            ratio(l.through.cpu_us_per_request, a.cpu_us_per_request),
            l.through.cpu_us_per_request,
            a.cpu_us_per_request,
        ));
        line(String::new());
    }
}

/// One figure of every round, and in how many of them it met its target: "; per round: 0.81,
/// 0.83, 0.80 (met in 0 of 3)". Empty when no round has the figure.
fn per_round(values: &[Option<(String, bool)>]) -> String {
    let known: Vec<&(String, bool)> = values.iter().flatten().collect();
    if known.is_empty() {
        return String::new();
    }
    let met = known.iter().filter(|(_, ok)| *ok).count();
    let shown: Vec<&str> = known.iter().map(|(v, _)| v.as_str()).collect();
    format!(
        "; per round: {} (met in {met} of {})",
        shown.join(", "),
        known.len()
    )
}

/// The throughput target in one round: the sidecar's share of nginx's throughput.
fn round_throughput(r: &Round) -> Option<(String, bool)> {
    let n = r.reference.as_ref()?;
    let share = ratio(r.through.run.rps, n.run.rps);
    Some((format!("{share:.2}"), share >= 0.9))
}

/// The CPU target in one round: the sidecar's CPU per request over nginx's.
fn round_cpu(r: &Round) -> Option<(String, bool)> {
    let n = r.reference.as_ref()?;
    let cpu = ratio(r.through.cpu_us_per_request, n.cpu_us_per_request);
    Some((format!("{cpu:.2} ×"), cpu <= 1.2))
}

/// The latency target in one round: p50 added by the sidecar and by nginx over direct.
fn round_latency(r: &Round) -> Option<(String, bool)> {
    let n = r.reference.as_ref()?;
    let added = r.through.run.p50_us - r.direct.run.p50_us;
    let nginx_added = n.run.p50_us - r.direct.run.p50_us;
    Some((
        format!("{added:.0} vs {nginx_added:.0} µs"),
        added <= nginx_added + 20.0,
    ))
}

/// Issue 28: the sidecar with a 20-rule access policy, and a machine request with its issuer's
/// key cached, each spend at most this many times the CPU per request of the sidecar's
/// authenticated request.
const TWIN_CPU_TARGET: f64 = 1.05;

/// A twin of the authenticated sidecar that runs right beside it in every round, judged on its
/// CPU per request over the sidecar's (issue 28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Twin {
    /// With the 20-rule access policy, sent the same cookie.
    Rules,
    /// Admitting machine clients, sent a bearer token instead of the cookie.
    Machine,
}

impl Twin {
    /// Its run in round `r`.
    fn of(self, r: &Round) -> &Measured {
        match self {
            Twin::Rules => &r.ruled,
            Twin::Machine => &r.machine,
        }
    }

    /// Its medians at level `l`.
    fn of_level(self, l: &Level) -> &Measured {
        match self {
            Twin::Rules => &l.ruled,
            Twin::Machine => &l.machine,
        }
    }

    /// Its tables' words: the column name, the ratio, and its side of the p50 column.
    fn words(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Twin::Rules => ("with 20 rules", "rules ÷ none", "with rules"),
            Twin::Machine => ("machine request", "machine ÷ cookie", "machine request"),
        }
    }
}

/// A twin's target in one round: its CPU per request over the sidecar's.
fn round_twin_cpu(twin: Twin, r: &Round) -> Option<(String, bool)> {
    let cpu = twin_cpu_ratio(twin, r);
    Some((format!("{cpu:.3} ×"), cpu <= TWIN_CPU_TARGET))
}

/// One round's CPU per request of the twin over the sidecar's (the two ran back to back).
fn twin_cpu_ratio(twin: Twin, r: &Round) -> f64 {
    ratio(twin.of(r).cpu_us_per_request, r.through.cpu_us_per_request)
}

/// One round's throughput of the twin over the sidecar's.
fn twin_throughput_ratio(twin: Twin, r: &Round) -> f64 {
    ratio(twin.of(r).run.rps, r.through.run.rps)
}

/// The median of `values` (0 when empty).
fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median over a level's rounds of each round's own CPU ratio, the twin's over the sidecar's:
/// the figure the twin's target is judged on. Each round's pair ran back to back, so its ratio
/// is what changes on the machine disturbs least; a ratio of the two medians could set one
/// round's figure against another's.
fn twin_cpu_median(twin: Twin, l: &Level) -> f64 {
    median_of(l.rounds.iter().map(|r| twin_cpu_ratio(twin, r)).collect())
}

/// What a 20-rule access policy costs per request: the sidecar with rules beside the sidecar,
/// every round and the median, at each load level.
fn render_access(levels: &[Level], line: &mut impl FnMut(String)) {
    line(
        "Access rules, same run (issue 28): a third sidecar, the authenticated one's twin (the \
         same binary and configuration: public URL, config name, namespace and cookie key, so \
         the same session cookie is valid there) with `GATEHOUSE_ACCESS` holding 20 rules, sent \
         the same load with the same cookie. The rules are an internal portal's \
         (`gatehouse_tests::bench_access`): 10 `Deny` and 10 `Allow` on paths, methods, hosts, \
         roles, groups, emails, email domains, providers and claims (`when`). No `Deny` rule \
         matches the request, and the one `Allow` rule that admits it is the last one tried \
         (`Allow` rules are tried in name order), so every request is decided only after all 20 \
         rules were evaluated. The session was signed in at the sidecar with rules (the IdP's \
         callback delivered to it), so it carries what they name: the user's `userType` and \
         `department` claims (no groups: the fixture Okta sends none) and the fingerprint of \
         the facts the rules name, without which a session is asked to sign in again under \
         them; the sidecar without rules ignores those fields, so both read the same cookie. \
         In every round the two ran back to back, the sidecar first \
         in odd rounds and second in even ones, so each round's ratio sets two runs under the \
         same conditions against each other. The median row gives each column's median over \
         the rounds; for the ratios, the median of the rounds' own ratios, on which the target \
         is judged: CPU per request with rules at most 1.05 × without."
            .into(),
    );
    line(String::new());
    render_twin_rounds(Twin::Rules, levels, line);
}

/// A twin's figures beside the sidecar's, every round and the median, at each load level.
fn render_twin_rounds(twin: Twin, levels: &[Level], line: &mut impl FnMut(String)) {
    let (name, per, p50) = twin.words();
    let row = |label: String,
               (plain, other): (&Measured, &Measured),
               (throughput, cpu): (f64, f64)| {
        format!(
            "| {label} | {:.0} | {:.0} | {throughput:.3} | {:.1} µs | {:.1} µs | {cpu:.3} | {:.0} µs / {:.0} µs |",
            plain.run.rps,
            other.run.rps,
            plain.cpu_us_per_request,
            other.cpu_us_per_request,
            plain.run.p50_us,
            other.run.p50_us,
        )
    };
    for l in levels {
        line(format!("{} connection(s):", l.connections));
        line(String::new());
        line(format!(
            "| round | sidecar req/s | {name} req/s | throughput: {per} | sidecar CPU per request | {name} CPU per request | CPU: {per} (target ≤ {TWIN_CPU_TARGET:.2}) | p50: sidecar / {p50} |"
        ));
        line("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |".into());
        for (i, r) in l.rounds.iter().enumerate() {
            line(row(
                (i + 1).to_string(),
                (&r.through, twin.of(r)),
                (twin_throughput_ratio(twin, r), twin_cpu_ratio(twin, r)),
            ));
        }
        let throughput = median_of(
            l.rounds
                .iter()
                .map(|r| twin_throughput_ratio(twin, r))
                .collect(),
        );
        line(row(
            "median".into(),
            (&l.through, twin.of_level(l)),
            (throughput, twin_cpu_median(twin, l)),
        ));
        line(String::new());
    }
}

/// What a machine request costs beside a browser's: the machine-client sidecar beside the
/// sidecar, every round and the median, at each load level.
fn render_machine(levels: &[Level], line: &mut impl FnMut(String)) {
    line(
        "Machine clients, same run (issue 28): a fourth sidecar, the authenticated one's twin \
         with `GATEHOUSE_MACHINE_AUTH` naming one client-credentials issuer, sent the same load \
         with `Authorization: Bearer` and an access token of that issuer instead of the cookie. \
         The issuer is served on loopback by the benchmark stack \
         (`gatehouse_tests::bench_machine`; the fixture IdPs issue no client-credentials \
         tokens), shaped like an Okta custom authorization server: discovery and a JWKS of one \
         RS256 key of 2048 bits. The token carries an Okta client-credentials access token's \
         claims, its `scp` maps to a role, and it is valid for the whole run. The sidecar \
         fetched the issuer's keys at the check before the run (where it also refused the token \
         with one character of its signature changed), so every request found the key cached; \
         a verified token is then remembered by its SHA-256 digest for at most 60 s, so a \
         request pays for the digest and a lookup, and once a minute for the RS256 signature \
         again. A machine request takes its own path, not the session's plus something: no \
         cookie to unseal and no SsoUser to consult, the token's principal instead. In every \
         round the two ran back to back, the sidecar second in odd rounds and first in even \
         ones. The median row as above; the target: CPU per request of the machine request at \
         most 1.05 × the session's."
            .into(),
    );
    line(String::new());
    render_twin_rounds(Twin::Machine, levels, line);
}

/// The memory target in one round.
fn round_memory(r: &Round) -> Option<(String, bool)> {
    let mib = r.rss_load_kib as f64 / 1024.0;
    Some((format!("{mib:.1} MiB"), mib <= 16.0))
}

/// What a response without a length costs through the sidecar, against the fixed-length one.
fn render_streamed(levels: &[Level], line: &mut impl FnMut(String)) {
    let Some(l) = levels.iter().find(|l| l.streamed.is_some()) else {
        return;
    };
    line(format!(
        "Streamed responses, same run, {} connections: the sample app's `/stream` sends the same \
         body without a `Content-Length` (chunked), as apps that stream do. Through the sidecar \
         such a response is registered with the live-connection registry, so that it can be \
         closed when its session ends; a response with a length is not. Each round measured it \
         right after the fixed-length runs.",
        l.connections
    ));
    line(String::new());
    line("| round | direct req/s: fixed / streamed | sidecar req/s: fixed / streamed | sidecar CPU per request: fixed / streamed | sidecar streamed ÷ fixed CPU | upstream streamed ÷ fixed CPU |".into());
    line("| ---: | ---: | ---: | ---: | ---: | ---: |".into());
    let row = |label: String, direct: &Measured, through: &Measured, s: &Streamed| {
        format!(
            "| {label} | {:.0} / {:.0} | {:.0} / {:.0} | {:.1} µs / {:.1} µs | {:.2} | {:.2} |",
            direct.run.rps,
            s.direct.run.rps,
            through.run.rps,
            s.through.run.rps,
            through.cpu_us_per_request,
            s.through.cpu_us_per_request,
            ratio(s.through.cpu_us_per_request, through.cpu_us_per_request),
            ratio(s.direct.cpu_us_per_request, direct.cpu_us_per_request),
        )
    };
    for (i, r) in l.rounds.iter().enumerate() {
        if let Some(s) = &r.streamed {
            line(row((i + 1).to_string(), &r.direct, &r.through, s));
        }
    }
    if let Some(s) = &l.streamed {
        line(row("median".into(), &l.direct, &l.through, s));
    }
    line(String::new());
}

/// Every round's own figures, one table per load level.
fn render_rounds(levels: &[Level], line: &mut impl FnMut(String)) {
    line("## Each round".into());
    line(String::new());
    line(
        "The figures of every round, in the order they ran (the tables above give their medians, \
         and the targets are judged on the medians). Within a round each target ran back to back, \
         so the ratios of one row share the machine's conditions."
            .into(),
    );
    line(String::new());
    let cell = |m: Option<&Measured>, f: &dyn Fn(&Measured) -> String| m.map_or("–".to_owned(), f);
    for l in levels {
        line(format!("{} connection(s):", l.connections));
        line(String::new());
        line("| round | direct req/s | nginx req/s | Apache req/s | sidecar without a session req/s | sidecar req/s | sidecar ÷ nginx throughput | sidecar CPU per request | sidecar CPU ÷ nginx CPU | p50 added: sidecar / nginx | sidecar memory |".into());
        line(
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |".into(),
        );
        for (i, r) in l.rounds.iter().enumerate() {
            let rps = |m: &Measured| format!("{:.0}", m.run.rps);
            let nginx = r.reference.as_ref();
            line(format!(
                "| {} | {:.0} | {} | {} | {:.0} | {:.0} | {} | {:.1} µs | {} | {} | {:.1} MiB |",
                i + 1,
                r.direct.run.rps,
                cell(nginx, &rps),
                cell(r.apache.as_ref(), &rps),
                r.anonymous.run.rps,
                r.through.run.rps,
                cell(nginx, &|n| format!(
                    "{:.2}",
                    ratio(r.through.run.rps, n.run.rps)
                )),
                r.through.cpu_us_per_request,
                cell(nginx, &|n| format!(
                    "{:.2}",
                    ratio(r.through.cpu_us_per_request, n.cpu_us_per_request)
                )),
                cell(nginx, &|n| format!(
                    "{:.0} µs / {:.0} µs",
                    r.through.run.p50_us - r.direct.run.p50_us,
                    n.run.p50_us - r.direct.run.p50_us
                )),
                r.rss_load_kib as f64 / 1024.0,
            ));
        }
        line(String::new());
    }
}

fn render(r: &Rendered<'_>) -> String {
    let (levels, duration, rounds) = (r.levels, r.duration, r.rounds);
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line("# Benchmarks".into());
    line(String::new());
    line("Authenticated requests through the Gatehouse sidecar versus the same load sent straight to the".into());
    line(
        "upstream, through a bare nginx reverse proxy and through Apache httpd authenticating with"
            .into(),
    );
    line("mod_auth_openidc, measured in one run. Produced by:".into());
    line(String::new());
    line("```sh".into());
    line(format!(
        "cargo xtask bench --duration {duration} --rounds {rounds}"
    ));
    line("```".into());
    line(String::new());
    let steal = r
        .steal_percent
        .map_or(String::new(), |p| format!("; the hypervisor took {p:.1}% of the machine's CPU time for other guests during the run"));
    line(format!(
        "Machine: {} (load average {} when the run started, {} when it ended{steal}; wrk, the \
         sidecar, nginx and the upstream share these cores). Load generator: {} ({duration} s per \
         run, up to 2 threads). Each load level ran {rounds} round(s) of direct, nginx, Apache \
         with mod_auth_openidc, the sidecar without a session, the sidecar, the sidecar with a \
         20-rule access policy and the sidecar sent a machine client's bearer token back to \
         back, so that changes in what else the machine does fall on all alike, each round in a \
         different order (another first target and other neighbours; the sidecar with rules and \
         the machine client's always right before or after the sidecar) and with a 0.5 s pause \
         before each run; the \
         tables give the median over the rounds, and [each round](#each-round) has its own \
         figures at the end of this part. Release builds of `gatehouse-sidecar` and the \
         sample app (`/static`, a small fixed body). The session cookie was obtained by signing in \
         through the fixture Okta IdP's form, at the sidecar with access rules (below); the \
         same cookie went to the sidecar and the sidecar with rules. Every counted response was checked by a wrk Lua \
         script to be the upstream's 200 with its `{MARKER_HEADER}` marker; the run fails \
         otherwise. The sidecar ran with {} thread(s) in all (`GATEHOUSE_WORKER_THREADS` unset \
         means one runtime thread).",
        machine(),
        r.load_before,
        r.load_after,
        wrk_version(),
        r.threads,
    ));
    line(String::new());
    line("| connections | direct req/s | through req/s | ratio | direct p50 / p99 | through p50 / p99 | sidecar CPU per request |".into());
    line("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |".into());
    for l in levels {
        let (d, t) = (&l.direct.run, &l.through.run);
        line(format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} µs / {:.0} µs | {:.0} µs / {:.0} µs | {} |",
            l.connections,
            d.rps,
            t.rps,
            ratio(t.rps, d.rps),
            d.p50_us,
            d.p99_us,
            t.p50_us,
            t.p99_us,
            cpu_cell(&l.through),
        ));
    }
    line(String::new());
    line(format!(
        "CPU per request is the process's user + system time from /proc over a run, divided by the \
         requests wrk completed; kernel time is mostly loopback TCP, of which a proxy has twice \
         the upstream's (client side and upstream side). For scale, the upstream itself used {} of \
         CPU per request in the direct runs.",
        levels
            .iter()
            .map(|l| format!(
                "{:.1} µs at {} connection(s)",
                l.direct.cpu_us_per_request, l.connections
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    line(String::new());
    if let Some(version) = r.nginx_version {
        line(format!(
            "Reference, same run: the same load through a bare nginx reverse proxy with no \
             authentication ({version}) in front of the same upstream: `master_process off`, so \
             one process does all the work, as the sidecar's one runtime thread does; keep-alive \
             to the upstream; no access log."
        ));
        line(String::new());
        line("| connections | nginx req/s | ratio to direct | nginx p50 / p99 | nginx CPU per request | sidecar CPU ÷ nginx CPU |".into());
        line("| ---: | ---: | ---: | ---: | ---: | ---: |".into());
        for l in levels {
            if let Some(n) = &l.reference {
                line(format!(
                    "| {} | {:.0} | {:.2} | {:.0} µs / {:.0} µs | {} | {:.2} |",
                    l.connections,
                    n.run.rps,
                    ratio(n.run.rps, l.direct.run.rps),
                    n.run.p50_us,
                    n.run.p99_us,
                    cpu_cell(n),
                    ratio(l.through.cpu_us_per_request, n.cpu_us_per_request),
                ));
            }
        }
    } else {
        line(
            "Reference: nginx was not installed, so the same load through a bare nginx proxy was \
              not measured in this run."
                .into(),
        );
    }
    line(String::new());
    line(
        "Where the sidecar's time goes, same run: the same binary started a second time with \
         `GATEHOUSE_AUTH_MODE=optional` and sent the same load without a session cookie. It does \
         all of the proxying (both HTTP/1.1 legs, pooling, header rules) but has no session to \
         open and no identity headers to add; the difference to the authenticated figures is \
         what authentication costs."
            .into(),
    );
    line(String::new());
    line("| connections | without a session req/s | ratio to direct | CPU per request | authenticated CPU ÷ this |".into());
    line("| ---: | ---: | ---: | ---: | ---: |".into());
    for l in levels {
        let a = &l.anonymous;
        line(format!(
            "| {} | {:.0} | {:.2} | {} | {:.2} |",
            l.connections,
            a.run.rps,
            ratio(a.run.rps, l.direct.run.rps),
            cpu_cell(a),
            ratio(l.through.cpu_us_per_request, a.cpu_us_per_request),
        ));
    }
    line(String::new());
    render_access(levels, &mut line);
    render_machine(levels, &mut line);
    render_apache(r, &mut line);
    render_streamed(levels, &mut line);
    let rss_load = levels.iter().map(|l| l.rss_load_kib).max().unwrap_or(0);
    line(format!(
        "Sidecar resident memory: {:.1} MiB idle (after sign-in), {:.1} MiB at most under load.{}",
        r.rss_idle_kib as f64 / 1024.0,
        rss_load as f64 / 1024.0,
        r.rss_idle_parts.map_or(String::new(), |p| format!(
            " Idle, it is {}. The SAML verification libraries (libxml2, libxmlsec1, libxslt, \
             ICU, OpenSSL's libcrypto and the C++ runtime ICU needs) are linked into every \
             sidecar, so their pages count here even when OIDC is the protocol in use.",
            rss_parts_text(p)
        )),
    ));
    let errors: u64 = levels
        .iter()
        .flat_map(|l| {
            [
                Some(&l.direct),
                Some(&l.through),
                Some(&l.anonymous),
                Some(&l.ruled),
                Some(&l.machine),
                l.reference.as_ref(),
                l.apache.as_ref(),
            ]
        })
        .flatten()
        .map(|m| m.run.socket_errors)
        .sum();
    line(format!("Socket errors reported by wrk: {errors}."));
    line(String::new());
    line("Targets (ratios to the bare nginx measured in the same run):".into());
    line(String::new());
    let at = |c: u32| levels.iter().find(|l| l.connections == c);
    match at(32).and_then(|l| l.reference.as_ref().map(|n| (l, n))) {
        Some((l, n)) => {
            let share = ratio(l.through.run.rps, n.run.rps);
            let apache_share = l.apache.as_ref().map_or(String::new(), |a| {
                format!(
                    " (Apache with mod_auth_openidc: {:.2} of nginx's)",
                    ratio(a.run.rps, n.run.rps)
                )
            });
            line(format!(
                "- authenticated throughput at least 0.9 of nginx's at 32 connections (moonshot: \
                 equal): {share:.2}{apache_share}, {}{}",
                verdict(share >= 0.9),
                per_round(&l.rounds.iter().map(round_throughput).collect::<Vec<_>>()),
            ));
            let cpu = ratio(l.through.cpu_us_per_request, n.cpu_us_per_request);
            let apache_cpu = l.apache.as_ref().map_or(String::new(), |a| {
                format!(
                    " (Apache with mod_auth_openidc: {:.2} ×, {:.1} µs)",
                    ratio(a.cpu_us_per_request, n.cpu_us_per_request),
                    a.cpu_us_per_request
                )
            });
            line(format!(
                "- sidecar CPU per authenticated request at most 1.2 × nginx's at 32 connections: \
                 {cpu:.2} × ({:.1} µs vs {:.1} µs){apache_cpu}, {}{}",
                l.through.cpu_us_per_request,
                n.cpu_us_per_request,
                verdict(cpu <= 1.2),
                per_round(&l.rounds.iter().map(round_cpu).collect::<Vec<_>>()),
            ));
        }
        None => line("- throughput and CPU against nginx: not measured (nginx missing)".into()),
    }
    match at(1).and_then(|l| l.reference.as_ref().map(|n| (l, n))) {
        Some((l, n)) => {
            let added = l.through.run.p50_us - l.direct.run.p50_us;
            let nginx_added = n.run.p50_us - l.direct.run.p50_us;
            let apache_added = l.apache.as_ref().map_or(String::new(), |a| {
                format!(
                    "; Apache with mod_auth_openidc: {:.0} µs",
                    a.run.p50_us - l.direct.run.p50_us
                )
            });
            line(format!(
                "- latency added at 1 connection (p50 through minus p50 direct) at most nginx's \
                 + 20 µs: {added:.0} µs (nginx: {nginx_added:.0} µs{apache_added}), {}{}",
                verdict(added <= nginx_added + 20.0),
                per_round(&l.rounds.iter().map(round_latency).collect::<Vec<_>>()),
            ));
        }
        None => line("- latency added against nginx: not measured (nginx missing)".into()),
    }
    line(format!(
        "- at most 16 MiB resident under load: {:.1} MiB, {}{}",
        rss_load as f64 / 1024.0,
        verdict((rss_load as f64) <= 16.0 * 1024.0),
        per_round(
            &levels
                .iter()
                .flat_map(|l| l.rounds.iter().map(round_memory))
                .collect::<Vec<_>>()
        ),
    ));
    line(String::new());
    line(
        "Access rules (issue 28; ratios to the same sidecar without rules, measured in the same \
         run):"
            .into(),
    );
    line(String::new());
    for l in levels {
        let cpu = twin_cpu_median(Twin::Rules, l);
        line(format!(
            "- a 20-rule access policy adds under 5 % CPU per request (at most \
             {TWIN_CPU_TARGET:.2} ×) at {} connection(s): {cpu:.3} × (the median of the \
             rounds' ratios; medians {:.1} µs with rules, {:.1} µs without), {}{}",
            l.connections,
            l.ruled.cpu_us_per_request,
            l.through.cpu_us_per_request,
            verdict(cpu <= TWIN_CPU_TARGET),
            per_round(
                &l.rounds
                    .iter()
                    .map(|r| round_twin_cpu(Twin::Rules, r))
                    .collect::<Vec<_>>()
            ),
        ));
    }
    line(String::new());
    line(
        "Machine clients (issue 28; ratios to the same sidecar's requests with the session \
         cookie, measured in the same run):"
            .into(),
    );
    line(String::new());
    for l in levels {
        let cpu = twin_cpu_median(Twin::Machine, l);
        line(format!(
            "- a machine request with a cached key adds under 5 % CPU per request (at most \
             {TWIN_CPU_TARGET:.2} ×) at {} connection(s): {cpu:.3} × (the median of the \
             rounds' ratios; medians {:.1} µs with the bearer token, {:.1} µs with the session \
             cookie), {}{}",
            l.connections,
            l.machine.cpu_us_per_request,
            l.through.cpu_us_per_request,
            verdict(cpu <= TWIN_CPU_TARGET),
            per_round(
                &l.rounds
                    .iter()
                    .map(|r| round_twin_cpu(Twin::Machine, r))
                    .collect::<Vec<_>>()
            ),
        ));
    }
    line(String::new());
    line("Earlier targets (ratios to direct):".into());
    line(String::new());
    if let Some(l) = levels.iter().find(|l| l.connections == 32) {
        let through = ratio(l.through.run.rps, l.direct.run.rps);
        let anonymous = ratio(l.anonymous.run.rps, l.direct.run.rps);
        let reference = l.reference.as_ref().map_or(String::new(), |n| {
            format!(
                "; nginx, no authentication: {:.2}, so the sidecar reaches {:.2} of nginx's \
                 throughput",
                ratio(n.run.rps, l.direct.run.rps),
                ratio(l.through.run.rps, n.run.rps)
            )
        });
        line(format!(
            "- at least 0.4 of direct throughput at 32 connections: {through:.2} (the sidecar \
             without a session: {anonymous:.2}{reference}), {}",
            verdict(through >= 0.4)
        ));
    }
    for l in levels {
        let reference = l.reference.as_ref().map_or(String::new(), |n| {
            format!(
                " (nginx, no authentication: {:.1} µs)",
                n.cpu_us_per_request
            )
        });
        line(format!(
            "- under 30 µs of sidecar CPU per request at {} connection(s): {:.1} µs{reference}, {}",
            l.connections,
            l.through.cpu_us_per_request,
            verdict(l.through.cpu_us_per_request < 30.0)
        ));
    }
    line(format!(
        "- under 20 MiB resident under load: {:.1} MiB, {}",
        rss_load as f64 / 1024.0,
        verdict((rss_load as f64) < 20.0 * 1024.0)
    ));
    line(String::new());
    render_rounds(levels, &mut line);
    let _ = std::io::stdout().flush();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(rps: f64, cpu: f64, p50: f64) -> Measured {
        Measured {
            run: Run {
                requests: 1000,
                rps,
                ok: 1000,
                bad: 0,
                p50_us: p50,
                p99_us: p50 * 10.0,
                socket_errors: 0,
            },
            cpu_us_per_request: cpu,
            user_us_per_request: cpu / 2.0,
        }
    }

    /// A round where the sidecar does `share` of nginx's 10,000 requests per second.
    fn round(share: f64, rss_kib: u64) -> Round {
        Round {
            direct: measured(30_000.0, 10.0, 100.0),
            through: measured(10_000.0 * share, 30.0, 200.0),
            anonymous: measured(9_000.0, 28.0, 190.0),
            ruled: measured(10_000.0 * share * 0.98, 30.6, 204.0),
            machine: measured(10_000.0 * share * 0.99, 30.9, 202.0),
            reference: Some(measured(10_000.0, 27.0, 190.0)),
            apache: None,
            rss_load_kib: rss_kib,
            streamed: Some(Streamed {
                direct: measured(28_000.0, 11.0, 110.0),
                through: measured(9_000.0 * share, 33.0, 210.0),
            }),
        }
    }

    #[test]
    fn resident_memory_is_split_into_anonymous_executable_and_library_pages() {
        let smaps = "\
5581a000-5581b000 r--p 00000000 fd:01 42 /opt/gatehouse-sidecar
Size:                  4 kB
Rss:                 400 kB
Anonymous:           100 kB
7f00a000-7f00b000 r-xp 00000000 fd:01 43 /usr/lib/x86_64-linux-gnu/libxml2.so.2.9.14
Rss:                 300 kB
Anonymous:             0 kB
7f00c000-7f00d000 rw-p 00000000 fd:01 43 /usr/lib/x86_64-linux-gnu/libxml2.so.2.9.14
Rss:                  20 kB
Anonymous:            12 kB
7f00e000-7f00f000 r-xp 00000000 fd:01 44 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 500 kB
Anonymous:             0 kB
7f010000-7f011000 rw-p 00000000 00:00 0 [heap]
Rss:                 256 kB
Anonymous:           256 kB
7f012000-7f013000 rw-p 00000000 00:00 0
Rss:                  64 kB
Anonymous:            64 kB
";
        let parts = parse_smaps(smaps, "/opt/gatehouse-sidecar");
        assert_eq!(parts.anonymous_kib, 100 + 12 + 256 + 64);
        assert_eq!(parts.executable_kib, 300);
        assert_eq!(
            parts.libraries,
            vec![
                ("libc.so.6".to_owned(), 500),
                ("libxml2.so.2.9.14".to_owned(), 308)
            ]
        );
        let text = rss_parts_text(&parts);
        assert!(text.contains("0.8 MiB shared libraries"), "{text}");
        assert!(
            text.contains("libc.so.6 0.5, libxml2.so.2.9.14 0.3"),
            "{text}"
        );
    }

    #[test]
    fn each_round_changes_the_order_and_the_neighbours() {
        let first = round_order(1, true);
        assert_eq!(first.len(), 9);
        assert_eq!(first[0], Target::Direct);
        let follows = |o: &[Target], t: Target| {
            o[(o.iter().position(|x| *x == t).expect("listed") + 1) % o.len()]
        };
        for streamed in [false, true] {
            let rounds: Vec<Vec<Target>> = (1..=3).map(|r| round_order(r, streamed)).collect();
            for order in &rounds {
                let mut sorted = order.clone();
                sorted.sort_by_key(|t| first.iter().position(|f| f == t));
                sorted.dedup();
                assert_eq!(sorted.len(), order.len(), "a permutation: {order:?}");
            }
            // The sidecar and its twins run after a different target in each of the first three
            // rounds.
            let twins = [Target::Sidecar, Target::Ruled, Target::Machine];
            let before: Vec<Target> = rounds
                .iter()
                .map(|o| {
                    o[(o.iter().position(|x| twins.contains(x)).expect("listed") + o.len() - 1)
                        % o.len()]
                })
                .collect();
            assert!(
                before[0] != before[1] && before[1] != before[2] && before[0] != before[2],
                "{before:?}"
            );
            assert_ne!(
                follows(&rounds[0], Target::Apache),
                follows(&rounds[1], Target::Apache)
            );
        }
        assert!(!round_order(1, false).contains(&Target::SidecarStreamed));
    }

    #[test]
    fn each_twin_runs_beside_the_sidecar_first_and_second_in_turn() {
        for streamed in [false, true] {
            for round in 1..=6 {
                let order = round_order(round, streamed);
                let at = |t: Target| order.iter().position(|x| *x == t).expect("listed");
                let (plain, ruled, machine) =
                    (at(Target::Sidecar), at(Target::Ruled), at(Target::Machine));
                if round % 2 == 1 {
                    assert_eq!(ruled, plain + 1, "round {round}: {order:?}");
                    assert_eq!(plain, machine + 1, "round {round}: {order:?}");
                } else {
                    assert_eq!(plain, ruled + 1, "round {round}: {order:?}");
                    assert_eq!(machine, plain + 1, "round {round}: {order:?}");
                }
            }
        }
    }

    #[test]
    fn a_twins_target_is_judged_on_the_median_of_each_rounds_own_ratio() {
        // Three rounds on a machine whose load changed: each pair ran under its own conditions.
        let pair = |plain: f64, other: f64| Round {
            through: measured(10_000.0, plain, 200.0),
            ruled: measured(10_000.0, other, 200.0),
            machine: measured(10_000.0, other * 0.9, 200.0),
            ..round(0.9, 1024)
        };
        let level = Level::from_rounds(
            32,
            vec![pair(30.0, 31.0), pair(60.0, 61.0), pair(40.0, 50.0)],
        );
        // The rounds' ratios are 1.033, 1.017 and 1.25, so their median is 1.033; the ratio of
        // the two medians (50 µs over 40 µs) would be 1.25.
        assert!((twin_cpu_median(Twin::Rules, &level) - 31.0 / 30.0).abs() < 1e-9);
        assert!((twin_cpu_median(Twin::Machine, &level) - 0.9 * 31.0 / 30.0).abs() < 1e-9);
        assert_eq!(median_of(vec![3.0, 1.0, 2.0, 4.0]), 2.5);
        assert_eq!(median_of(Vec::new()), 0.0);
    }

    #[test]
    fn the_requests_part_alone_replaces_only_its_part_of_the_file() {
        let doc = "# Benchmarks\n\nold figures\n\n## Each round\n\nold rounds\n\n\n## Provisioning and revocation\n\nkept\n\n## Scale\n\nkept too\n";
        let part = "# Benchmarks\n\nnew figures\n\n## Each round\n\nnew rounds\n\n";
        assert_eq!(
            replace_requests_part(doc, part),
            "# Benchmarks\n\nnew figures\n\n## Each round\n\nnew rounds\n\n\n## Provisioning and revocation\n\nkept\n\n## Scale\n\nkept too\n"
        );
        // A file with nothing after the requests part, or none at all, is the part alone.
        assert_eq!(replace_requests_part(part, part), part);
        assert_eq!(replace_requests_part("", part), part);
    }

    #[test]
    fn a_level_is_the_median_of_its_rounds_and_keeps_each_round() {
        let level = Level::from_rounds(
            32,
            vec![
                round(0.80, 13 * 1024),
                round(0.95, 17 * 1024),
                round(0.85, 12 * 1024),
            ],
        );
        assert_eq!(level.rounds.len(), 3);
        assert!((level.through.run.rps - 8_500.0).abs() < 1e-6);
        assert_eq!(level.rss_load_kib, 17 * 1024);
        assert!(level.apache.is_none());
        assert!(level.reference.is_some());
    }

    #[test]
    fn each_target_names_every_round_and_how_many_met_it() {
        let rounds = [round(0.80, 13 * 1024), round(0.95, 17 * 1024)];
        let throughput = per_round(&rounds.iter().map(round_throughput).collect::<Vec<_>>());
        assert_eq!(throughput, "; per round: 0.80, 0.95 (met in 1 of 2)");
        let memory = per_round(&rounds.iter().map(round_memory).collect::<Vec<_>>());
        assert_eq!(memory, "; per round: 13.0 MiB, 17.0 MiB (met in 1 of 2)");
        // Without nginx there is nothing to compare with.
        let mut alone = round(0.9, 1024);
        alone.reference = None;
        assert_eq!(per_round(&[round_cpu(&alone)]), "");
    }

    #[test]
    fn the_report_has_a_row_for_every_round() {
        let levels = vec![
            Level::from_rounds(32, vec![round(0.80, 13 * 1024), round(0.92, 14 * 1024)]),
            Level::from_rounds(
                1,
                [round(0.70, 12 * 1024), round(0.75, 12 * 1024)]
                    .map(|r| Round {
                        streamed: None,
                        ..r
                    })
                    .into(),
            ),
        ];
        let report = render(&Rendered {
            levels: &levels,
            rss_idle_kib: 10 * 1024,
            rss_idle_parts: None,
            duration: 5,
            rounds: 2,
            load_before: "1 1 1",
            load_after: "1 1 1",
            steal_percent: None,
            threads: 1,
            nginx_version: Some("nginx/test"),
            apache_version: None,
        });
        let rounds = &report[report.find("## Each round").expect("rounds section")..];
        assert_eq!(rounds.matches("\n| 1 | ").count(), 2, "{rounds}");
        assert_eq!(rounds.matches("\n| 2 | ").count(), 2, "{rounds}");
        assert!(
            rounds.contains("| 8000 |") && rounds.contains("| 9200 |"),
            "{rounds}"
        );
        assert!(
            report.contains("per round: 0.80, 0.92 (met in 1 of 2)"),
            "{report}"
        );
        // Access rules: each round, then the median, at each level; the target beside them.
        let access = &report[report
            .find("Access rules, same run")
            .expect("access section")
            ..report
                .find("Machine clients, same run")
                .expect("machine section")];
        assert_eq!(access.matches("| 1.020 |").count(), 6, "{access}");
        assert_eq!(access.matches("| median |").count(), 2, "{access}");
        assert!(
            report.contains(
                "- a 20-rule access policy adds under 5 % CPU per request (at most 1.05 ×) at 32 \
                 connection(s): 1.020 × (the median of the rounds' ratios; medians 30.6 µs with \
                 rules, 30.0 µs without), met; per round: 1.020 ×, 1.020 × (met in 2 of 2)"
            ),
            "{report}"
        );
        // Machine clients: the same, beside the sidecar's cookie requests.
        let machine = &report[report
            .find("Machine clients, same run")
            .expect("machine section")
            ..report.find("Authenticating peer").expect("apache section")];
        assert!(
            machine.contains(
                "| round | sidecar req/s | machine request req/s | throughput: machine ÷ cookie |"
            ),
            "{machine}"
        );
        assert_eq!(machine.matches("| 1.030 |").count(), 6, "{machine}");
        assert_eq!(machine.matches("| median |").count(), 2, "{machine}");
        assert!(
            report.contains(
                "- a machine request with a cached key adds under 5 % CPU per request (at most \
                 1.05 ×) at 1 connection(s): 1.030 × (the median of the rounds' ratios; medians \
                 30.9 µs with the bearer token, 30.0 µs with the session cookie), met; per round: \
                 1.030 ×, 1.030 × (met in 2 of 2)"
            ),
            "{report}"
        );
        // Streamed responses: each round, then the median, at 32 connections only.
        let streamed = &report[report.find("Streamed responses").expect("streamed section")
            ..report.find("## Each round").expect("rounds section")];
        assert_eq!(streamed.matches("| 1.10 | 1.10 |").count(), 3, "{streamed}");
        assert!(
            streamed.contains("| median | 30000 / 28000 |"),
            "{streamed}"
        );
    }
}
