//! `cargo xtask fuzz`: the fuzz targets of `fuzz/` under AFL++, each for a bounded time.
//!
//! AFL++ comes through `cargo-afl` from crates.io (installed here when missing, pinned to the
//! `afl` crate's version), which builds AFL++ itself with make and a C compiler and instruments
//! Rust code with rustc's own SanitizerCoverage on the stable toolchain — no nightly, no LLVM
//! plugins. The targets are built with `cargo afl build --release --features afl` into
//! `target/afl/` (instrumented, so apart from the ordinary builds), and each runs from its seed
//! corpus `fuzz/corpus/<target>/` into `target/fuzz/<target>/`. A crash is copied to
//! `fuzz/regressions/<target>/`, where `fuzz/tests/corpus.rs` replays it in every
//! `cargo test`, and the run fails.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use crate::suite::Outcome;
use crate::workspace::{cargo_command, root, target_dir};

/// The cargo-afl release matching the `afl` crate in the workspace's `Cargo.lock`.
const CARGO_AFL_VERSION: &str = "0.18.2";

/// What to fuzz and for how long.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Seconds each target is fuzzed.
    #[arg(long, default_value_t = 60)]
    pub time: u64,
    /// Only this target (repeatable); all of `fuzz/src/bin/` by default.
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// Use the instrumented binaries already built in target/afl/.
    #[arg(long)]
    pub no_build: bool,
}

/// How one target's run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub target: String,
    pub execs: u64,
    pub execs_per_sec: f64,
    pub corpus: u64,
    pub crashes: u64,
    pub hangs: u64,
    /// Crash files copied to `fuzz/regressions/<target>/` by this run.
    pub kept: Vec<PathBuf>,
}

/// Why fuzzing did not happen at all.
#[derive(Debug)]
pub enum Unavailable {
    /// AFL++ or cargo-afl cannot be had here, or afl-fuzz refuses this environment.
    Environment(String),
    /// Anything else (a build error, a target crashing on its seeds): a failure.
    Failure(anyhow::Error),
}

impl From<anyhow::Error> for Unavailable {
    fn from(e: anyhow::Error) -> Self {
        Unavailable::Failure(e)
    }
}

/// `cargo xtask fuzz`: fuzzes, prints the table, fails when a target crashed.
pub fn run(args: &FuzzArgs) -> Result<()> {
    let reports = match fuzz(args) {
        Ok(reports) => reports,
        Err(Unavailable::Environment(why)) => bail!("fuzzing cannot run here: {why}"),
        Err(Unavailable::Failure(e)) => return Err(e),
    };
    eprintln!("{}", table(&reports));
    let crashed: Vec<&str> = reports
        .iter()
        .filter(|r| r.crashes > 0)
        .map(|r| r.target.as_str())
        .collect();
    if !crashed.is_empty() {
        bail!(
            "crashes in {}: kept under fuzz/regressions/ (replay one with `cargo run -p \
             gatehouse-fuzz --bin <target> -- <file>`)",
            crashed.join(", ")
        );
    }
    Ok(())
}

/// The `fuzz` suite of `cargo xtask test`: every target for `secs` seconds. NOT RUN (with the
/// reason) when AFL++ cannot run here; FAILED on a crash or a build error.
pub fn suite(secs: u64) -> Result<Outcome> {
    let args = FuzzArgs {
        time: secs,
        targets: Vec::new(),
        no_build: false,
    };
    match fuzz(&args) {
        Ok(reports) => {
            eprintln!("{}", table(&reports));
            let crashed: Vec<String> = reports
                .iter()
                .filter(|r| r.crashes > 0)
                .map(|r| format!("{} ({} crash(es))", r.target, r.crashes))
                .collect();
            if crashed.is_empty() {
                Ok(Outcome::Passed)
            } else {
                Ok(Outcome::Failed(format!(
                    "crashes in {}; kept under fuzz/regressions/",
                    crashed.join(", ")
                )))
            }
        }
        Err(Unavailable::Environment(why)) => Ok(Outcome::NotRun(why)),
        Err(Unavailable::Failure(e)) => Ok(Outcome::Failed(format!("{e:#}"))),
    }
}

/// The targets: the binaries of `fuzz/src/bin/`, sorted.
pub fn all_targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz/src/bin");
    let mut targets: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    targets.sort();
    Ok(targets)
}

fn fuzz(args: &FuzzArgs) -> Result<Vec<Report>, Unavailable> {
    let all = all_targets()?;
    let targets = if args.targets.is_empty() {
        all
    } else {
        if let Some(unknown) = args.targets.iter().find(|t| !all.contains(t)) {
            return Err(anyhow::anyhow!(
                "--target {unknown}: no such target (targets: {})",
                all.join(", ")
            )
            .into());
        }
        args.targets.clone()
    };
    if args.time == 0 {
        return Err(anyhow::anyhow!("--time must be at least 1 second").into());
    }
    ensure_cargo_afl()?;
    // One fuzzing run at a time per checkout: each target's output directory is removed and
    // rewritten, so a second run would pull it away from under the first.
    let _lock = lock_runs()?;
    if !args.no_build {
        build()?;
    }
    let mut reports = Vec::new();
    for target in &targets {
        reports.push(fuzz_one(target, args.time)?);
    }
    Ok(reports)
}

/// An exclusive lock on `target/fuzz/.lock`, held until dropped; waits for another run.
fn lock_runs() -> Result<std::fs::File> {
    let dir = target_dir().join("fuzz");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        eprintln!("xtask fuzz: waiting for another cargo xtask fuzz in this checkout to finish");
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(file)
}

/// The `cargo afl` version line, when cargo-afl is installed.
fn cargo_afl_version() -> Option<String> {
    let out = cargo_command(&["afl", "--version"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// cargo-afl, and the AFL++ it builds, installed (from crates.io) when missing. Needs make and a
/// C compiler; without them (or without crates.io) fuzzing cannot run here.
pub fn ensure_cargo_afl() -> Result<(), Unavailable> {
    let version = match cargo_afl_version() {
        Some(v) if v.contains(CARGO_AFL_VERSION) => v,
        _ => {
            for tool in ["make", "cc"] {
                if !crate::workspace::on_path(tool) {
                    return Err(Unavailable::Environment(format!(
                        "`{tool}` is not installed (cargo-afl builds AFL++ with make and a C \
                         compiler; Debian: apt-get install make gcc)"
                    )));
                }
            }
            eprintln!("xtask fuzz: installing cargo-afl {CARGO_AFL_VERSION} (builds AFL++)");
            let status = cargo_command(&[
                "install",
                "cargo-afl",
                "--locked",
                "--version",
                &format!("={CARGO_AFL_VERSION}"),
            ])
            .status()
            .context("running cargo install cargo-afl")?;
            if !status.success() {
                return Err(Unavailable::Environment(format!(
                    "`cargo install cargo-afl` failed ({status}): is crates.io reachable?"
                )));
            }
            cargo_afl_version().ok_or_else(|| {
                Unavailable::Environment("cargo-afl installed but `cargo afl` does not run".into())
            })?
        }
    };
    if !version.contains("AFL++ version") {
        // cargo-afl builds AFL++ on first use; do it now, once, rather than inside a timed run.
        let status = cargo_command(&["afl", "config", "--build"])
            .status()
            .context("running cargo afl config --build")?;
        if !status.success() {
            return Err(Unavailable::Environment(format!(
                "`cargo afl config --build` failed ({status}): AFL++ could not be built"
            )));
        }
    }
    eprintln!("xtask fuzz: {version}");
    Ok(())
}

/// Where the instrumented binaries go.
fn afl_target_dir() -> PathBuf {
    target_dir().join("afl")
}

/// `cargo afl build --release -p gatehouse-fuzz --features afl --bins` into `target/afl/`.
/// No LTO: fourteen instrumented binaries link much faster without it, and coverage does not
/// need it.
fn build() -> Result<()> {
    let status = cargo_command(&[
        "afl",
        "build",
        "--release",
        "-p",
        "gatehouse-fuzz",
        "--features",
        "afl",
        "--bins",
    ])
    .env("CARGO_TARGET_DIR", afl_target_dir())
    .env("CARGO_PROFILE_RELEASE_LTO", "false")
    .status()
    .context("running cargo afl build")?;
    if !status.success() {
        bail!("`cargo afl build` failed: {status}");
    }
    Ok(())
}

/// Runs one target for `secs` seconds from its seed corpus.
fn fuzz_one(target: &str, secs: u64) -> Result<Report, Unavailable> {
    let input = root().join("fuzz/corpus").join(target);
    let output = target_dir().join("fuzz").join(target);
    let binary = afl_target_dir().join("release").join(target);
    if !binary.is_file() {
        return Err(anyhow::anyhow!(
            "{} is missing: build first (without --no-build)",
            binary.display()
        )
        .into());
    }
    if output.exists() {
        std::fs::remove_dir_all(&output)
            .with_context(|| format!("removing {}", output.display()))?;
    }
    std::fs::create_dir_all(&output).with_context(|| format!("creating {}", output.display()))?;
    let secs_text = secs.to_string();
    let mut afl_args: Vec<String> = vec![
        "afl".into(),
        "fuzz".into(),
        "-i".into(),
        input.display().to_string(),
        "-o".into(),
        output.display().to_string(),
        "-V".into(),
        secs_text,
        // A parser that takes a second on one input is a finding, not noise; `+` skips seeds
        // that time out instead of refusing to start.
        "-t".into(),
        "1000+".into(),
    ];
    let dict = root().join("fuzz/dicts").join(format!("{target}.dict"));
    if dict.is_file() {
        afl_args.push("-x".into());
        afl_args.push(dict.display().to_string());
    }
    afl_args.push("--".into());
    afl_args.push(binary.display().to_string());
    let arg_refs: Vec<&str> = afl_args.iter().map(String::as_str).collect();
    let log_path = output.join("afl-fuzz.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    eprintln!(
        "xtask fuzz: {target}: {secs} s (log: {})",
        log_path.display()
    );
    let status = cargo_command(&arg_refs)
        // afl-fuzz's plain log instead of its screen; no CPU-governor or core_pattern checks
        // (containers cannot change either; a crash is still seen, by the exit signal); no CPU
        // pinning (the machine is shared); quicker calibration for short runs.
        .env("AFL_NO_UI", "1")
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .env("AFL_NO_AFFINITY", "1")
        .env("AFL_FAST_CAL", "1")
        .stdout(log.try_clone().context("log file")?)
        .stderr(log)
        .stdin(Stdio::null())
        .status()
        .context("running cargo afl fuzz")?;
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let stats_path = output.join("default/fuzzer_stats");
    let Ok(stats) = std::fs::read_to_string(&stats_path) else {
        let why = abort_reason(&log_text).unwrap_or_else(|| format!("afl-fuzz exited {status}"));
        return Err(classify_abort(target, &why, &log_path));
    };
    let stat = |key: &str| stat_value(&stats, key);
    let kept = keep_crashes(target, &output.join("default/crashes"))?;
    let report = Report {
        target: target.to_owned(),
        execs: stat("execs_done").unwrap_or(0.0) as u64,
        execs_per_sec: stat("execs_per_sec").unwrap_or(0.0),
        corpus: stat("corpus_count").unwrap_or(0.0) as u64,
        crashes: stat("saved_crashes").unwrap_or(0.0) as u64,
        hangs: stat("saved_hangs").unwrap_or(0.0) as u64,
        kept,
    };
    eprintln!(
        "xtask fuzz: {target}: {} execs ({:.0}/s), corpus {}, crashes {}, hangs {}",
        report.execs, report.execs_per_sec, report.corpus, report.crashes, report.hangs
    );
    if report.hangs > 0 {
        eprintln!(
            "xtask fuzz: {target}: WARNING: {} input(s) took over 1 s: {}",
            report.hangs,
            output.join("default/hangs").display()
        );
    }
    if report.execs == 0 {
        return Err(Unavailable::Failure(anyhow::anyhow!(
            "{target}: afl-fuzz ran no input (see {})",
            log_path.display()
        )));
    }
    Ok(report)
}

/// A numeric field of afl-fuzz's `fuzzer_stats` (`name : value` lines).
pub fn stat_value(stats: &str, key: &str) -> Option<f64> {
    stats.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == key).then(|| value.trim().parse().ok())?
    })
}

/// The reason afl-fuzz gave when it aborted (`[-] PROGRAM ABORT : <reason>`), colours removed.
pub fn abort_reason(log: &str) -> Option<String> {
    let plain = strip_ansi(log);
    let line = plain
        .lines()
        .find(|l| l.contains("PROGRAM ABORT") || l.contains("SYSTEM ERROR"))?;
    let reason = line.split_once(':').map(|(_, r)| r).unwrap_or(line).trim();
    Some(reason.to_owned())
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether afl-fuzz refused to start because of this machine (shared memory, the fork server's
/// environment) rather than because of the target: only those make fuzzing NOT RUN. A target
/// that crashes or hangs on its own seeds, or has no instrumentation, is a failure.
fn classify_abort(target: &str, why: &str, log: &Path) -> Unavailable {
    let environment = [
        "shmget",
        "shmat",
        "shm_open",
        "core_pattern",
        "No more free CPU cores",
        "Unable to create",
        "fork()",
        "Out of memory",
    ];
    let message = format!("{target}: afl-fuzz aborted: {why} (log: {})", log.display());
    if environment.iter().any(|e| why.contains(e)) {
        Unavailable::Environment(message)
    } else {
        Unavailable::Failure(anyhow::anyhow!(message))
    }
}

/// Copies the crashes of one run to `fuzz/regressions/<target>/` (skipping any whose bytes are
/// already kept); the new files.
fn keep_crashes(target: &str, crashes: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(crashes) else {
        return Ok(Vec::new());
    };
    let dir = root().join("fuzz/regressions").join(target);
    let mut kept = Vec::new();
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("id:"))
        })
        .collect();
    files.sort();
    for file in files {
        let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let existing = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if existing
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|d| d == data))
        {
            continue;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = crash_file_name(&file.file_name().unwrap_or_default().to_string_lossy());
        let dest = dir.join(name);
        std::fs::copy(&file, &dest).with_context(|| format!("copying {}", file.display()))?;
        eprintln!("xtask fuzz: {target}: crash kept as {}", dest.display());
        kept.push(dest);
    }
    Ok(kept)
}

/// A portable name for an AFL++ crash file (`id:000000,sig:06,src:000002,...`): `crash-` and its
/// id, signal and the run's start time, with no `:` or `,`.
pub fn crash_file_name(afl_name: &str) -> String {
    let field = |key: &str| {
        afl_name
            .split(',')
            .find_map(|f| f.strip_prefix(key).map(str::to_owned))
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "crash-{stamp}-{}-sig{}",
        field("id:").unwrap_or_else(|| "x".into()),
        field("sig:").unwrap_or_else(|| "x".into())
    )
}

/// The closing table: one line per target.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::from(
        "xtask fuzz: summary\n  target            execs     execs/s  corpus  crashes  hangs\n",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "  {:<16} {:>9} {:>10.0} {:>7} {:>8} {:>6}",
            r.target, r.execs, r.execs_per_sec, r.corpus, r.crashes, r.hangs
        );
        for file in &r.kept {
            let _ = writeln!(out, "    kept {}", file.display());
        }
    }
    out
}

/// Makes sure `cargo afl` could run the suite, for `cargo xtask setup`: installs cargo-afl when
/// missing; a problem is a warning (the fuzz suite then reports NOT RUN with the reason).
pub fn setup() {
    match ensure_cargo_afl() {
        Ok(()) => {}
        Err(Unavailable::Environment(why)) => eprintln!("xtask setup: WARNING: {why}"),
        Err(Unavailable::Failure(e)) => eprintln!("xtask setup: WARNING: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "start_time        : 1765000000\nexecs_done        : 123456\nexecs_per_sec     : 2057.60\ncorpus_count      : 42\nsaved_crashes     : 1\nsaved_hangs       : 0\n";

    #[test]
    fn fuzzer_stats_fields() {
        assert_eq!(stat_value(STATS, "execs_done"), Some(123_456.0));
        assert_eq!(stat_value(STATS, "execs_per_sec"), Some(2057.6));
        assert_eq!(stat_value(STATS, "saved_crashes"), Some(1.0));
        assert_eq!(stat_value(STATS, "missing"), None);
    }

    #[test]
    fn abort_reasons_and_what_they_mean() {
        let log = "[*] Checking core_pattern...\n\u{1b}[1;91m[-] PROGRAM ABORT : \u{1b}[0mshmget() failed\n         Location : afl_shm_init(), src/afl-sharedmem.c:300\n";
        let why = abort_reason(log).expect("reason");
        assert_eq!(why, "shmget() failed");
        assert!(matches!(
            classify_abort("t", &why, Path::new("log")),
            Unavailable::Environment(_)
        ));
        let crash = "[-] PROGRAM ABORT : Test case 'x' results in a crash\n";
        let why = abort_reason(crash).expect("reason");
        assert!(matches!(
            classify_abort("t", &why, Path::new("log")),
            Unavailable::Failure(_)
        ));
        assert_eq!(abort_reason("all fine\n"), None);
    }

    #[test]
    fn crash_names_are_portable() {
        let name = crash_file_name("id:000003,sig:06,src:000001,time:1234,execs:99,op:havoc,rep:4");
        assert!(
            name.starts_with("crash-") && name.ends_with("-000003-sig06"),
            "{name}"
        );
        assert!(!name.contains(':') && !name.contains(','));
    }
}
