//! The Tokio runtime the binary runs on, sized by `GATEHOUSE_WORKER_THREADS`.
//!
//! A sidecar shares its pod's CPU with the app it protects, and one proxied request is a few tens
//! of microseconds of work, so the default is a single thread: the `current_thread` runtime, with
//! no work-stealing, no cross-thread wake-ups and no atomics contention. One such thread proxies
//! well over ten thousand requests per second. `GATEHOUSE_WORKER_THREADS=N` (N ≥ 2) switches to
//! the multi-threaded runtime with N workers, for an app whose traffic needs more than one core of
//! proxying; measure before raising it, since on a machine whose cores are busy with the app the
//! extra threads mostly add scheduling overhead (see `docs/benchmarks.md`).

use std::time::Duration;

/// The variable that sets the number of runtime threads.
pub const WORKER_THREADS: &str = crate::config::vars::GATEHOUSE_WORKER_THREADS.name;
/// Threads when [`WORKER_THREADS`] is unset.
pub const DEFAULT_WORKER_THREADS: usize = 1;
/// Smallest and largest accepted [`WORKER_THREADS`]: the configuration's catalogue holds them.
pub use crate::config::vars::{MAX_WORKER_THREADS, MIN_WORKER_THREADS};

/// Parses a [`WORKER_THREADS`] value (`None`: unset). The error reads
/// `GATEHOUSE_WORKER_THREADS: <what is wrong>`, like every configuration error.
pub fn worker_threads(value: Option<&str>) -> Result<usize, String> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_WORKER_THREADS);
    };
    match text.parse::<usize>() {
        Ok(n) if (MIN_WORKER_THREADS..=MAX_WORKER_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{WORKER_THREADS}: must be a whole number from {MIN_WORKER_THREADS} to {MAX_WORKER_THREADS} (got {text:?})"
        )),
    }
}

/// [`worker_threads`] of the process environment.
pub fn worker_threads_from_env() -> Result<usize, String> {
    match std::env::var(WORKER_THREADS) {
        Ok(v) => worker_threads(Some(&v)),
        Err(std::env::VarError::NotPresent) => worker_threads(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("{WORKER_THREADS}: must be a whole number"))
        }
    }
}

/// A runtime with `threads` threads: `current_thread` for 1, multi-threaded above.
pub fn build(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all().build()
}

/// Period of [`keep_timer_armed`].
const TIMER_ANCHOR_PERIOD: Duration = Duration::from_secs(5);

/// Keeps one timer pending at all times, due sooner than any per-request timer.
///
/// hyper arms a header-read timer (the slowloris limit) for every request. Tokio wakes its own
/// driver — an eventfd write and an extra `epoll_wait` — whenever a newly armed timer is due
/// before every other pending one, which with no other timer pending is every request on a
/// quiet connection. With this timer always due within [`TIMER_ANCHOR_PERIOD`] (well under
/// [`gatehouse_proxy::listener::HEADER_READ_TIMEOUT`]), arming a request's timer never needs that wake-up.
/// The cost is one timer firing every few seconds.
pub async fn keep_timer_armed() {
    let mut tick = tokio::time::interval(TIMER_ANCHOR_PERIOD);
    loop {
        tick.tick().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_default_and_bounds() {
        assert_eq!(worker_threads(None), Ok(1));
        assert_eq!(worker_threads(Some("")), Ok(1));
        assert_eq!(worker_threads(Some("2")), Ok(2));
        assert_eq!(worker_threads(Some(" 4 ")), Ok(4));
        for bad in ["0", "-1", "two", "65", "1.5"] {
            let e = worker_threads(Some(bad)).expect_err(bad);
            assert!(e.starts_with("GATEHOUSE_WORKER_THREADS: "), "{e}");
        }
    }

    #[test]
    fn both_flavours_run() {
        for threads in [1, 2] {
            let rt = build(threads).expect("runtime");
            assert_eq!(
                rt.block_on(async { tokio::spawn(async { 7 }).await }).ok(),
                Some(7)
            );
        }
    }
}
