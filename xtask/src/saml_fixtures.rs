//! The SAML test fixtures' packages: a virtualenv with the pinned Python packages of the fixture
//! IdP and the forged-response tool (`tests/fixtures/saml-idp/requirements.txt`: pysaml2,
//! signxml, lxml), and the node modules of the second IdP (`tests/fixtures/saml-idp2`: samlify,
//! and playwright-core for the SAML browser driver). Debian's `xmlsec1`, which pysaml2 signs
//! with, is one of the set-up's apt packages.

use std::path::PathBuf;

use anyhow::Result;

use crate::local_packages::{npm_ci, pinned_venv};
use crate::workspace::root;

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
    npm_ci(&root().join(IDP2_DIR))
}

/// `target/saml-venv` with the pinned requirements; its path.
pub fn venv() -> Result<PathBuf> {
    pinned_venv(VENV, REQUIREMENTS, "the SAML fixtures' Python packages")
}
