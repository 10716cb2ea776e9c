//! The SAML test fixtures' packages: a virtualenv with the pinned Python packages of the fixture
//! IdP and the forged-response tool (`tests/fixtures/saml-idp/requirements.txt`: pysaml2,
//! signxml, lxml), and the node modules of the second IdP (`tests/fixtures/saml-idp2`: samlify,
//! and playwright-core for the SAML browser driver). Debian's `xmlsec1`, which pysaml2 signs
//! with, is one of the set-up's apt packages.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The pinned Python packages of the SAML fixtures, relative to the workspace root.
pub const REQUIREMENTS: &str = "tests/fixtures/saml-idp/requirements.txt";
/// The second (samlify) IdP's node project, relative to the workspace root.
pub const IDP2_DIR: &str = "tests/fixtures/saml-idp2";
/// The virtualenv's directory name under the target directory (the tests look for it there).
pub const VENV: &str = "saml-venv";

/// Installs both: the virtualenv (re-installed when the requirements change) and the node
/// modules (`npm ci` when older than the lockfile).
pub fn install() -> Result<()> {
    venv()?;
    crate::setup::npm_ci(&crate::root().join(IDP2_DIR))
}

/// `target/saml-venv` with the pinned requirements; its path.
pub fn venv() -> Result<PathBuf> {
    let requirements = crate::root().join(REQUIREMENTS);
    let venv = crate::target_dir().join(VENV);
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    if !python.is_file() {
        let status = std::process::Command::new("python3")
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
        eprintln!(
            "xtask setup: installing the SAML fixtures' Python packages into {}",
            venv.display()
        );
        let status = std::process::Command::new(&python)
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
