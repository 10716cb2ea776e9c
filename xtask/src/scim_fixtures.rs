//! The SCIM conformance check's packages: a virtualenv with the pinned Python packages of
//! `tests/fixtures/scim/conformance.py` (`tests/fixtures/scim/requirements.txt`: the public
//! conformance suite scim2-tester, with scim2-client's httpx2 engine). The end-to-end SCIM test
//! runs it against the sidecar's `/api/auth/scim/v2` (see `tests/src/scim_conformance.rs`).

use std::path::PathBuf;

use anyhow::Result;

use crate::local_packages::pinned_venv;

/// The pinned Python packages of the conformance check, relative to the workspace root.
pub const REQUIREMENTS: &str = "tests/fixtures/scim/requirements.txt";
/// The virtualenv's directory name under the target directory (the tests look for it there).
pub const VENV: &str = "scim-venv";

/// Installs the virtualenv (re-installed when the requirements change).
pub fn install() -> Result<()> {
    venv().map(drop)
}

/// `target/scim-venv` with the pinned requirements; its path.
pub fn venv() -> Result<PathBuf> {
    pinned_venv(
        VENV,
        REQUIREMENTS,
        "the SCIM conformance suite's Python packages",
    )
}
