//! `cargo xtask setup`: system packages and the fixture IdP's node modules.

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};

use crate::local_packages::npm_ci;
use crate::workspace::{on_path, root};

/// What a task needs beyond node and npm (always needed).
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// Debian `chromium`, for the browser end-to-end tests.
    pub chromium: bool,
    /// Debian `wrk`, for the benchmark.
    pub wrk: bool,
    /// Debian `nginx-light`, the benchmark's reference proxy.
    pub nginx: bool,
    /// Debian `apache2` and `libapache2-mod-auth-openidc`, the benchmark's authenticating peer.
    pub apache: bool,
    /// Debian `python3-venv`, for the virtualenvs of `xtask test`'s Python tools, of the SAML
    /// test fixtures and of the SCIM conformance suite (the latter two installed too when set).
    pub python_venv: bool,
    /// podman, buildah, runc and friends, for `cargo xtask image` and the container suite.
    pub containers: bool,
    /// Debian `shellcheck`: actionlint checks the workflows' `run:` scripts with it.
    pub shellcheck: bool,
    /// cargo-afl from crates.io (it builds AFL++ with make and a C compiler), for the fuzz suite.
    pub fuzz: bool,
}

impl Needs {
    /// Everything.
    pub fn all() -> Self {
        Self {
            chromium: true,
            wrk: true,
            nginx: true,
            apache: true,
            python_venv: true,
            containers: true,
            shellcheck: true,
            fuzz: true,
        }
    }
}

/// Where the fixture IdP's node project lives, relative to the workspace root.
pub const IDP_DIR: &str = "tests/fixtures/idp";
/// Apache httpd as Debian's `apache2` installs it.
pub const APACHE_BINARY: &str = "/usr/sbin/apache2";
/// Where Debian installs Apache's modules.
pub const APACHE_MODULES: &str = "/usr/lib/apache2/modules";
/// The OpenID Connect module (Debian `libapache2-mod-auth-openidc`), in [`APACHE_MODULES`].
pub const APACHE_OIDC_MODULE: &str = "mod_auth_openidc.so";
/// Chromium's path as Debian installs it (the browser tests use it).
pub const CHROMIUM: &str = "/usr/bin/chromium";

pub fn run(needs: Needs) -> Result<()> {
    install_packages(needs)?;
    npm_ci(&root().join(IDP_DIR))?;
    if needs.python_venv {
        crate::saml_fixtures::install()?;
        crate::scim_fixtures::install()?;
    }
    if needs.fuzz {
        crate::fuzz::setup();
    }
    Ok(())
}

/// Debian packages that are missing, by the commands/files they provide.
fn missing_packages(needs: Needs) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !on_path("node") {
        missing.push("nodejs");
    }
    if !on_path("npm") {
        missing.push("npm");
    }
    // The sidecar's SAML signature checks (samael) link libxmlsec1 and libxml2, found with
    // pkg-config, and generate their bindings with bindgen, which loads libclang; the SAML test
    // fixtures sign with the `xmlsec1` command.
    if !on_path("pkg-config") {
        missing.push("pkg-config");
    }
    if !pkg_config_has("xmlsec1") {
        missing.push("libxmlsec1-dev");
    }
    if !has_libclang() {
        missing.push("libclang-dev");
    }
    if !on_path("xmlsec1") {
        missing.push("xmlsec1");
    }
    if needs.chromium && !Path::new(CHROMIUM).is_file() {
        missing.push("chromium");
    }
    if needs.wrk && !on_path("wrk") {
        missing.push("wrk");
    }
    if needs.nginx && nginx_binary().is_none() {
        missing.push("nginx-light");
    }
    if needs.apache {
        if !Path::new(APACHE_BINARY).is_file() {
            missing.push("apache2");
        }
        if !Path::new(APACHE_MODULES).join(APACHE_OIDC_MODULE).is_file() {
            missing.push("libapache2-mod-auth-openidc");
        }
    }
    if needs.python_venv && !python_has_venv() {
        missing.push("python3-venv");
    }
    if needs.shellcheck && !on_path("shellcheck") {
        missing.push("shellcheck");
    }
    // cargo-afl builds AFL++ with make and a C compiler (no LLVM: the stable toolchain's own
    // SanitizerCoverage instruments the Rust code).
    if needs.fuzz && !on_path("make") {
        missing.push("make");
    }
    if needs.fuzz && !on_path("cc") {
        missing.push("gcc");
    }
    if needs.containers && !crate::image::missing_tools().is_empty() {
        missing.extend(crate::image::PACKAGES);
    }
    missing
}

/// Whether pkg-config knows `module` (false without pkg-config).
fn pkg_config_has(module: &str) -> bool {
    Command::new("pkg-config")
        .args(["--exists", module])
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a libclang shared library is installed where bindgen looks on Debian. `libclang-cpp`
/// (the C++ interface, which other packages pull in) does not count: bindgen cannot load it.
fn has_libclang() -> bool {
    let Ok(entries) = std::fs::read_dir("/usr/lib") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        e.file_name().to_string_lossy().starts_with("llvm-")
            && std::fs::read_dir(e.path().join("lib")).is_ok_and(|libs| {
                libs.filter_map(Result::ok)
                    .any(|l| is_libclang(&l.file_name().to_string_lossy()))
            })
    })
}

/// Whether `file` is the C interface library bindgen loads: `libclang.so*` or `libclang-<version>.so*`.
fn is_libclang(file: &str) -> bool {
    file.strip_prefix("libclang").is_some_and(|rest| {
        rest.starts_with(".so")
            || rest
                .strip_prefix('-')
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()) && v.contains(".so"))
    })
}

fn install_packages(needs: Needs) -> Result<()> {
    let missing = missing_packages(needs);
    if missing.is_empty() {
        return Ok(());
    }
    let line = format!("apt-get install -y {}", missing.join(" "));
    if !Path::new("/etc/debian_version").is_file() {
        eprintln!("xtask setup: WARNING: missing {missing:?}; not Debian, install them yourself");
        return Ok(());
    }
    if !is_root() {
        eprintln!("xtask setup: WARNING: missing {missing:?}; run as root: {line}");
        return Ok(());
    }
    eprintln!("xtask setup: installing {}", missing.join(" "));
    let update = Command::new("apt-get")
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get update")?;
    if !update.success() {
        bail!("apt-get update failed: {update}");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !status.success() {
        bail!("`{line}` failed: {status}");
    }
    Ok(())
}

/// Apache with mod_auth_openidc, when both are installed: (binary, modules directory).
pub fn apache_with_oidc() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let modules = Path::new(APACHE_MODULES);
    (Path::new(APACHE_BINARY).is_file() && modules.join(APACHE_OIDC_MODULE).is_file())
        .then(|| (APACHE_BINARY.into(), modules.to_path_buf()))
}

/// Debian's nginx binary (in /usr/sbin, which is not on every user's PATH).
pub fn nginx_binary() -> Option<std::path::PathBuf> {
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.is_file() {
        return Some(sbin.to_path_buf());
    }
    on_path("nginx").then(|| "nginx".into())
}

/// Whether `python3 -m venv` can work: Debian ships `ensurepip` (which venv needs) only in
/// `python3-venv`, so its absence is the sign the package is missing.
fn python_has_venv() -> bool {
    Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::is_libclang;

    #[test]
    fn only_the_c_interface_counts_as_libclang() {
        for found in [
            "libclang.so",
            "libclang-14.so.1",
            "libclang.so.1",
            "libclang-16.so.16",
        ] {
            assert!(is_libclang(found), "{found} is what bindgen loads");
        }
        // Debian's libclang-cpp14 comes with other packages; bindgen cannot use it, so a machine
        // holding only it still needs libclang-dev.
        for other in [
            "libclang-cpp.so.14",
            "libclang-cpp.so",
            "libclangBasic.a",
            "libclangTidy.so",
        ] {
            assert!(
                !is_libclang(other),
                "{other} is not the libclang bindgen loads"
            );
        }
    }
}
