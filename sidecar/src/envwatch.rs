//! Applying a changed SsoConfig to a running sidecar.
//!
//! The operator injects the env Secret twice: as the environment (read once, at start) and as files
//! under `GATEHOUSE_ENV_DIR` (refreshed by the kubelet). Secrets are read from the files and
//! rotate in place (see [`crate::config`]). Any other variable can only change by restarting the
//! process, so when a file's content differs from the environment this process started with, the
//! sidecar shuts down gracefully and the kubelet starts it again with the new environment. Each
//! replica waits a random delay first, so the replicas of an app do not all restart at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_crds::env::{all_rendered_variables, is_secret};
use tokio::sync::Notify;

use crate::config::EnvSource;

/// The non-secret variables whose file under `dir` differs from `current` (added, changed or
/// removed). A file that cannot be read for another reason than not existing is an error.
pub fn changed_variables(
    dir: &Path,
    current: &dyn EnvSource,
) -> std::io::Result<Vec<&'static str>> {
    let mut changed = Vec::new();
    for &name in all_rendered_variables().iter().filter(|n| !is_secret(n)) {
        let file = match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if file != current.var(name) {
            changed.push(name);
        }
    }
    Ok(changed)
}

/// How often the files are compared, and the longest random wait before restarting.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Between comparisons.
    pub interval: Duration,
    /// Upper bound of the random wait once a change is seen.
    pub spread: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            spread: Duration::from_secs(30),
        }
    }
}

/// Compares `dir` with `current` until a change has lasted through the random wait, then
/// notifies `restart` once and returns.
pub async fn watch(
    dir: PathBuf,
    current: Arc<dyn EnvSource + Send + Sync>,
    timing: Timing,
    restart: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(timing.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !changed(&dir, current.as_ref()).await {
            continue;
        }
        let spread_ms = u64::try_from(timing.spread.as_millis()).unwrap_or(u64::MAX);
        let wait = Duration::from_millis(rand::random_range(0..=spread_ms));
        tokio::time::sleep(wait).await;
        // Still different after the wait (not a half-updated directory): apply it.
        if changed(&dir, current.as_ref()).await {
            restart.notify_one();
            return;
        }
    }
}

async fn changed(dir: &Path, current: &(dyn EnvSource + Send + Sync)) -> bool {
    let dir_owned = dir.to_path_buf();
    // The comparison reads a few small files; keep it off the request threads.
    let snapshot: Vec<(&'static str, Option<String>)> = all_rendered_variables()
        .iter()
        .map(|&n| (n, current.var(n)))
        .collect();
    let result = tokio::task::spawn_blocking(move || {
        let lookup = |name: &str| {
            snapshot
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.clone())
        };
        changed_variables(&dir_owned, &lookup)
    })
    .await;
    match result {
        Ok(Ok(names)) if !names.is_empty() => {
            tracing::info!(
                variables = %names.join(","),
                "the SsoConfig's environment changed; restarting the sidecar to apply it"
            );
            true
        }
        Ok(Ok(_)) => false,
        Ok(Err(e)) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot compare the mounted environment");
            false
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn dir_with(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-envwatch-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        for (name, value) in files {
            std::fs::write(dir.join(name), value).expect("write");
        }
        // What a Kubernetes Secret volume also holds.
        std::fs::create_dir_all(dir.join("..2026_11_23_10_00_00.1")).expect("dir");
        dir
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_non_secret_differences_count() {
        let started_with = env(&[
            ("OKTA_ISSUER", "https://acme.okta.com"),
            ("OKTA_CLIENT_SECRET", "old-secret"),
            ("GATEHOUSE_SKIP_AUTH", "/healthz"),
        ]);
        let lookup = |name: &str| started_with.get(name).cloned();
        let same = dir_with(&[
            ("OKTA_ISSUER", "https://acme.okta.com"),
            ("OKTA_CLIENT_SECRET", "rotated-secret"),
            ("GATEHOUSE_SKIP_AUTH", "/healthz"),
        ]);
        assert_eq!(
            changed_variables(&same, &lookup).expect("readable"),
            Vec::<&str>::new(),
            "a rotated secret is read from its file, no restart"
        );
        let changed = dir_with(&[
            ("OKTA_ISSUER", "https://acme.okta.com"),
            ("OKTA_CLIENT_SECRET", "old-secret"),
            ("GATEHOUSE_AUTH_MODE", "optional"),
        ]);
        assert_eq!(
            changed_variables(&changed, &lookup).expect("readable"),
            ["GATEHOUSE_AUTH_MODE", "GATEHOUSE_SKIP_AUTH"],
            "an added and a removed variable"
        );
        for dir in [same, changed] {
            std::fs::remove_dir_all(dir).ok();
        }
    }

    #[tokio::test]
    async fn a_lasting_change_requests_one_restart() {
        let started_with = env(&[("GATEHOUSE_SESSION_TTL", "12h")]);
        let current: Arc<dyn EnvSource + Send + Sync> =
            Arc::new(move |name: &str| started_with.get(name).cloned());
        let dir = dir_with(&[("GATEHOUSE_SESSION_TTL", "12h")]);
        let restart = Arc::new(Notify::new());
        let timing = Timing {
            interval: Duration::from_millis(20),
            spread: Duration::from_millis(20),
        };
        let task = tokio::spawn(watch(dir.clone(), current, timing, restart.clone()));
        // Unchanged: no restart.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!task.is_finished(), "no restart while nothing changed");
        std::fs::write(dir.join("GATEHOUSE_SESSION_TTL"), "8h").expect("write");
        tokio::time::timeout(Duration::from_secs(10), restart.notified())
            .await
            .expect("a restart is requested after the change");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the watch ends")
            .expect("no panic");
        std::fs::remove_dir_all(dir).ok();
    }
}
