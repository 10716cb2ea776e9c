//! Child processes of the harness: started with captured logs, killed on drop.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// Lines a child printed, stdout and stderr interleaved as read.
#[derive(Debug, Clone, Default)]
pub struct Logs(Arc<Mutex<std::collections::VecDeque<String>>>);

impl Logs {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            // Bounded: a runaway child must not eat the machine's memory.
            if lines.len() >= 50_000 {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|l| l.iter().map(String::as_str).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Whether any captured line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.0
            .lock()
            .map(|l| l.iter().any(|line| line.contains(needle)))
            .unwrap_or(false)
    }

    /// The captured lines that contain `needle`, joined by newlines.
    pub fn matching(&self, needle: &str) -> String {
        self.0
            .lock()
            .map(|l| {
                l.iter()
                    .filter(|line| line.contains(needle))
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

/// A running child process; killed (and reaped) when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    pub name: String,
    child: Child,
    pub logs: Logs,
}

impl ChildProcess {
    /// Spawns `cmd` with stdout/stderr captured. When `first_line` is set, waits for the first
    /// stdout line (a JSON announcement) and returns it; later stdout lines go to the logs.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        first_line_timeout: Option<Duration>,
    ) -> Result<(Self, Option<String>)> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        let logs = Logs::default();
        let stderr = child.stderr.take().context("stderr")?;
        let stdout = child.stdout.take().context("stdout")?;
        {
            let logs = logs.clone();
            let prefix = format!("[{name} stderr]");
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.push(format!("{prefix} {line}"));
                }
            });
        }
        let mut proc = Self {
            name: name.to_owned(),
            child,
            logs,
        };
        let first = match first_line_timeout {
            Some(timeout) => Some(proc.read_first_line(stdout, timeout)?),
            None => {
                proc.pump_stdout(BufReader::new(stdout));
                None
            }
        };
        Ok((proc, first))
    }

    fn pump_stdout(&self, reader: BufReader<ChildStdout>) {
        let logs = self.logs.clone();
        let prefix = format!("[{} stdout]", self.name);
        thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                logs.push(format!("{prefix} {line}"));
            }
        });
    }

    fn read_first_line(&mut self, stdout: ChildStdout, timeout: Duration) -> Result<String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = self.logs.clone();
        let prefix = format!("[{} stdout]", self.name);
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let ok = reader.read_line(&mut first).map(|n| n > 0).unwrap_or(false);
            let _ = tx.send(ok.then_some(first));
            for line in reader.lines().map_while(Result::ok) {
                logs.push(format!("{prefix} {line}"));
            }
        });
        match rx.recv_timeout(timeout) {
            Ok(Some(line)) => Ok(line.trim().to_owned()),
            Ok(None) => {
                // Give stderr a moment to be captured before reporting.
                thread::sleep(Duration::from_millis(200));
                bail!(
                    "{} exited before announcing itself; its output:\n{}",
                    self.name,
                    self.logs.text()
                )
            }
            Err(_) => bail!(
                "{} did not announce itself within {timeout:?}; its output:\n{}",
                self.name,
                self.logs.text()
            ),
        }
    }

    /// `Some(status)` when the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The operating system's id of the process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The workspace root (the tests crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Directory holding the fixture IdP's node project.
pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idp")
}

/// Finds a workspace binary built by cargo: `$GATEHOUSE_<NAME>_BIN` if set, else next to the
/// running test executable (target/<profile>/), else under target/debug.
pub fn cargo_binary(name: &str) -> Result<PathBuf> {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Ok(path) = std::env::var(&var) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("{var} points at {} which is not a file", path.display());
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/debug/deps/<test> → target/debug/<name>
        for dir in exe.ancestors().skip(1).take(2) {
            candidates.push(dir.join(name));
        }
    }
    candidates.push(workspace_root().join("target/debug").join(name));
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    bail!(
        "binary `{name}` not found (looked at {}). Build it first: `cargo build -p {name}` \
         (`cargo xtask test` does this for you), or set {var}.",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Ports handed out by [`free_port`]: below Linux's ephemeral range (32768–60999 by default), so
/// the kernel never gives one of them to an outgoing connection as its source port between our
/// check and the child process binding it.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Ports this test process has handed out already. Tests of one binary run on parallel threads,
/// and a port is free between the check below and the child binding it: two tests drawing the
/// same port in that window made one sidecar exit with "Address already in use" (a CI failure).
/// A port is therefore handed out at most once per process.
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A free TCP port on 127.0.0.1 for a child process to bind: picked at random outside the
/// ephemeral range, never one this process handed out before, and checked by binding it.
/// (Binding port 0 would return an ephemeral port, which any concurrent outgoing connection can
/// take before the child binds it.)
pub fn free_port() -> Result<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..200 {
        let port = rand::random_range(TEST_PORTS);
        if handed_out.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// 32 random bytes from the kernel, base64-encoded (a cookie key for the sidecar).
pub fn random_key_b64() -> Result<String> {
    use base64::Engine as _;
    use std::io::Read as _;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests on parallel threads each draw ports for their sidecars; none may get another's.
    /// (2,000 random draws from 12,000 ports repeat one almost surely without the bookkeeping.)
    #[test]
    fn ports_drawn_on_parallel_threads_are_never_handed_out_twice() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..500)
                        .map(|_| free_port().expect("a free port"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let drawn: Vec<u16> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        let distinct: std::collections::BTreeSet<_> = drawn.iter().collect();
        assert_eq!(distinct.len(), drawn.len(), "a port was handed out twice");
        assert!(drawn.iter().all(|p| TEST_PORTS.contains(p)));
    }
}
