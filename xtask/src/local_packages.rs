//! Packages installed into the workspace rather than the system: a node project's modules
//! (`npm ci`) and virtualenvs of pinned Python packages under the target directory. `cargo xtask
//! setup` installs the fixture IdP's with them, and the SAML fixtures and the Python test tools
//! theirs.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

use anyhow::{Context, Result, bail};

use crate::workspace::{root, target_dir};

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `npm ci` when node_modules is absent or older than the lockfile.
pub fn npm_ci(dir: &Path) -> Result<()> {
    let lock = dir.join("package-lock.json");
    // npm writes this file on every install; its age is the install's age.
    let installed = dir.join("node_modules/.package-lock.json");
    let fresh = match (modified(&installed), modified(&lock)) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    eprintln!("xtask setup: npm ci in {}", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .context("running npm ci (is npm installed? `cargo xtask setup` as root installs it)")?;
    if !status.success() {
        bail!("npm ci in {} failed: {status}", dir.display());
    }
    Ok(())
}

/// `target/<dir>`: a virtualenv holding the pinned packages of `requirements` (relative to the
/// workspace root), made when missing and re-installed when that file changes; its path.
/// `purpose` names it in the progress line.
pub fn pinned_venv(dir: &str, requirements: &str, purpose: &str) -> Result<PathBuf> {
    let requirements = root().join(requirements);
    let venv = target_dir().join(dir);
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    if !python.is_file() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("running python3 -m venv")?;
        if !status.success() {
            bail!(
                "python3 -m venv {} failed; install Debian's python3-venv \
                 (apt-get install -y python3-venv)",
                venv.display()
            );
        }
    }
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("xtask: installing {purpose} into {}", venv.display());
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements)
            .status()
            .context("running pip")?;
        if !status.success() {
            bail!("pip install -r {} failed", requirements.display());
        }
        std::fs::write(&stamp, &wanted)?;
    }
    Ok(venv)
}
