//! `cargo xtask image`: the operator and sidecar images, built offline with buildah from the
//! root `Dockerfile`'s `*-prebuilt` targets, tagged `localhost/<name>:<version>` and saved as OCI
//! archives under `target/images/`.
//!
//! This machine has no Docker daemon and no registry: `buildah build --pull=never --network=none`
//! builds, and when the published distroless base is not in local storage a stand-in base is
//! assembled from the machine's own Debian files (libc, libgcc_s, the CA bundle, `/etc/passwd`
//! with user 65532) — said loudly, since it is not the base the published images run on.

use std::{
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::workspace::{cargo, on_path, root, target_dir};

/// The workspace version: xtask inherits it (`version.workspace = true`). It is the chart's
/// `appVersion` and the images' tag (tested below).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The base the Dockerfile's runtime stage names (and the published images run on).
pub const PUBLISHED_BASE: &str = "gcr.io/distroless/cc-debian12:nonroot";
/// The local stand-in for [`PUBLISHED_BASE`], built from this machine's Debian files.
pub const STANDIN_BASE: &str = "localhost/gatehouse-base-standin:debian12";
/// The unprivileged user of distroless' `nonroot` tag, and of both images.
pub const NONROOT_UID: u32 = 65532;

/// One image of the Dockerfile.
#[derive(Debug, Clone, Copy)]
pub struct Image {
    /// Repository name (also the binary's name).
    pub name: &'static str,
    /// The Dockerfile target that copies the release binary from `target/release`.
    pub prebuilt_target: &'static str,
}

impl Image {
    /// `localhost/<name>:<version>`.
    pub fn tag(self) -> String {
        format!("localhost/{}:{VERSION}", self.name)
    }

    /// Where its OCI archive is saved.
    pub fn archive(self) -> PathBuf {
        images_dir().join(format!("{}-{VERSION}.oci.tar", self.name))
    }
}

pub const OPERATOR: Image = Image {
    name: "gatehouse-operator",
    prebuilt_target: "operator-prebuilt",
};
pub const SIDECAR: Image = Image {
    name: "gatehouse-sidecar",
    prebuilt_target: "sidecar-prebuilt",
};
pub const IMAGES: [Image; 2] = [OPERATOR, SIDECAR];

/// `target/images/`: OCI archives, the stand-in base's root filesystem, podman's config.
pub fn images_dir() -> PathBuf {
    target_dir().join("images")
}

/// The Debian packages the container tasks need (podman runs containers with runc; slirp4netns,
/// uidmap and fuse-overlayfs are what podman's networking and storage use).
pub const PACKAGES: [&str; 7] = [
    "podman",
    "buildah",
    "skopeo",
    "runc",
    "slirp4netns",
    "uidmap",
    "fuse-overlayfs",
];

/// The commands [`PACKAGES`] provide that the container tasks call.
pub fn missing_tools() -> Vec<&'static str> {
    ["podman", "buildah", "runc"]
        .into_iter()
        .filter(|tool| !on_path(tool))
        .collect()
}

/// podman's and buildah's configuration, written under `target/` and passed by
/// `CONTAINERS_CONF` rather than edited into /etc: runc (crun fails on this machine's mixed cgroup
/// set-up), ulimits that fit the sandbox (podman's defaults exceed them), and no network unless a
/// command asks for one (never the default bridge, which would add interfaces and NAT rules).
const CONTAINERS_CONF: &str = r#"# Written by `cargo xtask` (xtask/src/image.rs); passed to podman and buildah by CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"

[engine]
runtime = "runc"
events_logger = "file"
"#;

/// Writes the config and returns its path.
pub fn containers_conf() -> Result<PathBuf> {
    let dir = images_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("containers.conf");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(CONTAINERS_CONF) {
        std::fs::write(&path, CONTAINERS_CONF)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(path)
}

/// `program` (podman, buildah, skopeo) with the project's containers.conf.
pub fn container_tool(program: &str) -> Result<Command> {
    let mut cmd = Command::new(program);
    cmd.env("CONTAINERS_CONF", containers_conf()?);
    Ok(cmd)
}

/// Runs `cmd`; fails with its stderr on a non-zero exit; returns its stdout.
pub fn output(cmd: &mut Command) -> Result<String> {
    let what = format!("{:?}", cmd);
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with inherited output; fails on a non-zero exit.
fn status(cmd: &mut Command) -> Result<()> {
    let what = format!("{:?}", cmd);
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed: {status}");
    }
    Ok(())
}

/// Whether local container storage holds `image`.
pub fn image_exists(image: &str) -> Result<bool> {
    Ok(container_tool("podman")?
        .args(["image", "exists", image])
        .status()
        .context("running podman image exists")?
        .success())
}

/// An image's size in bytes, as podman reports it (uncompressed layers).
pub fn image_size(image: &str) -> Result<u64> {
    let text = output(container_tool("podman")?.args([
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        image,
    ]))?;
    text.trim()
        .parse()
        .with_context(|| format!("podman's size of {image}: {text:?}"))
}

/// `cargo xtask image`; with `context_only`, only [`prepare_context`] (for `docker build`).
pub fn run(context_only: bool) -> Result<()> {
    if context_only {
        prepare_context()?;
        eprintln!(
            "xtask image: target/release holds what the Dockerfile's `*-prebuilt` targets copy; \
             now `docker build --target operator-prebuilt .` and `--target sidecar-prebuilt .`"
        );
        return Ok(());
    }
    let missing = missing_tools();
    if !missing.is_empty() {
        bail!(
            "cargo xtask image needs {missing:?}: run `cargo xtask setup` as root, or \
             `apt-get install -y {}`",
            PACKAGES.join(" ")
        );
    }
    prepare_context()?;
    let base = runtime_base()?;
    for image in IMAGES {
        build(image, &base)?;
    }
    eprintln!("xtask image: built on {base}");
    for image in IMAGES {
        eprintln!(
            "xtask image: {} {:.1} MB, saved as {}",
            image.tag(),
            image_size(&image.tag())? as f64 / 1e6,
            image.archive().display()
        );
    }
    Ok(())
}

/// The base to build on: the published distroless base when local storage has it, else the
/// stand-in (assembled and built here).
fn runtime_base() -> Result<String> {
    if image_exists(PUBLISHED_BASE)? {
        eprintln!("xtask image: using the published base {PUBLISHED_BASE} from local storage");
        return Ok(PUBLISHED_BASE.to_owned());
    }
    eprintln!(
        "xtask image: {PUBLISHED_BASE} is not in local storage and there is no registry to pull \
         it from; building on a STAND-IN base ({STANDIN_BASE}) assembled from this machine's \
         Debian files (glibc, libgcc_s, CA bundle, /etc/passwd with nonroot = {NONROOT_UID}). \
         The published images run on {PUBLISHED_BASE}."
    );
    let dir = images_dir().join("standin-base");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    assemble_standin(&dir.join("rootfs"))?;
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "# A stand-in for {PUBLISHED_BASE}, written by cargo xtask image.\n\
             FROM scratch\n\
             COPY rootfs/ /\n\
             COPY --chown={NONROOT_UID}:{NONROOT_UID} home/ /home/\n\
             LABEL dev.gatehouse.stand-in-for=\"{PUBLISHED_BASE}\"\n\
             USER {NONROOT_UID}:{NONROOT_UID}\n\
             WORKDIR /home/nonroot\n"
        ),
    )?;
    std::fs::create_dir_all(dir.join("home/nonroot"))?;
    status(
        container_tool("buildah")?
            .args(["build", "--quiet", "--pull=never", "--network=none", "-t"])
            .arg(STANDIN_BASE)
            .arg(&dir),
    )?;
    Ok(STANDIN_BASE.to_owned())
}

/// Files of these Debian packages that are shared libraries go into the stand-in base: what
/// distroless `cc` carries (glibc and libgcc_s).
const BASE_PACKAGES: [&str; 2] = ["libc6", "libgcc-s1"];
/// The CA bundle (Debian `ca-certificates`), where distroless has it too.
const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// Assembles the stand-in base's root filesystem in `rootfs`.
fn assemble_standin(rootfs: &Path) -> Result<()> {
    let listing = output(Command::new("dpkg").arg("-L").args(BASE_PACKAGES)).context(
        "listing the files of Debian's libc6 and libgcc-s1 for the stand-in base (this needs a \
         Debian machine)",
    )?;
    let mut copied = 0;
    for path in listing.lines().map(Path::new) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let is_library = name.contains(".so")
            && path.starts_with("/")
            && !path.starts_with("/etc")
            && !path.components().any(|c| {
                let c = c.as_os_str();
                c == "gconv" || c == "audit"
            });
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if !is_library || meta.is_dir() {
            continue;
        }
        let dest = rootfs.join(path.strip_prefix("/")?);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if meta.file_type().is_symlink() {
            symlink(std::fs::read_link(path)?, &dest)?;
        } else {
            std::fs::copy(path, &dest)
                .with_context(|| format!("copying {} into the stand-in base", path.display()))?;
        }
        copied += 1;
    }
    if copied == 0 {
        bail!("found no shared libraries of {BASE_PACKAGES:?} for the stand-in base");
    }
    let ca = Path::new("/").join(CA_BUNDLE);
    if !ca.is_file() {
        bail!(
            "{} is missing: install Debian's ca-certificates for the stand-in base",
            ca.display()
        );
    }
    std::fs::create_dir_all(rootfs.join("etc/ssl/certs"))?;
    std::fs::copy(&ca, rootfs.join(CA_BUNDLE))?;
    std::fs::write(
        rootfs.join("etc/passwd"),
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
             nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
        ),
    )?;
    std::fs::write(
        rootfs.join("etc/group"),
        format!("root:x:0:\nnobody:x:65534:\nnonroot:x:{NONROOT_UID}:\n"),
    )?;
    std::fs::write(rootfs.join("etc/nsswitch.conf"), "hosts: files dns\n")?;
    let tmp = rootfs.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;
    Ok(())
}

/// Everything the Dockerfile's `*-prebuilt` targets copy from `target/release` ([`PREBUILT_COPIES`]):
/// the release binaries, and the shared libraries the sidecar links beyond the base's.
pub fn prepare_context() -> Result<()> {
    // One build of both packages: a single feature resolution, shared dependencies built once.
    cargo(&[
        "build",
        "--release",
        "--locked",
        "-p",
        "gatehouse-operator",
        "-p",
        "gatehouse-sidecar",
    ])?;
    let release = target_dir().join("release");
    for image in IMAGES {
        if !release.join(image.name).is_file() {
            bail!("{} is missing after the release build", image.name);
        }
    }
    stage_libraries(&release.join(SIDECAR.name), &release.join(SIDECAR_LIBS))?;
    for copied in PREBUILT_COPIES {
        if !root().join(copied).exists() {
            bail!("{copied} is missing: the Dockerfile's prebuilt targets copy it");
        }
    }
    Ok(())
}

/// What [`prepare_context`] leaves in `target/release` for the `*-prebuilt` targets to copy.
pub const PREBUILT_COPIES: [&str; 3] = [
    "target/release/gatehouse-operator",
    "target/release/gatehouse-sidecar",
    "target/release/sidecar-libs/",
];

/// Where [`stage_libraries`] puts the shared libraries the sidecar's `-prebuilt` target copies.
pub const SIDECAR_LIBS: &str = "sidecar-libs";

/// Shared libraries of the base itself (glibc and libgcc_s): never copied into an image.
const BASE_LIBRARIES: [&str; 8] = [
    "linux-vdso.so",
    "ld-linux",
    "libc.so",
    "libm.so",
    "libgcc_s.so",
    "libpthread.so",
    "libdl.so",
    "librt.so",
];

/// Copies the shared libraries `binary` links beyond the base's (for the sidecar: libxmlsec1,
/// libxml2 and what they link — distroless `cc` has none of them) into `dir`, as `ldd` resolves
/// them on this machine, which is the Debian release of the runtime base.
fn stage_libraries(binary: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let listing = output(Command::new("ldd").arg(binary))?;
    for line in listing.lines() {
        // `libxml2.so.2 => /lib/x86_64-linux-gnu/libxml2.so.2 (0x…)`
        let mut words = line.split_whitespace();
        let (Some(soname), Some("=>"), Some(path)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        if BASE_LIBRARIES.iter().any(|base| soname.starts_with(base)) {
            continue;
        }
        std::fs::copy(path, dir.join(soname))
            .with_context(|| format!("copying {path} (linked by {})", binary.display()))?;
    }
    Ok(())
}

/// Builds one image from its prebuilt target on `base` and saves its OCI archive.
fn build(image: Image, base: &str) -> Result<()> {
    let tag = image.tag();
    eprintln!(
        "xtask image: building {tag} (Dockerfile target {})",
        image.prebuilt_target
    );
    status(
        container_tool("buildah")?
            .args([
                "build",
                "--quiet",
                "--pull=never",
                "--network=none",
                "--target",
                image.prebuilt_target,
                "--build-arg",
            ])
            .arg(format!("RUNTIME_BASE={base}"))
            .arg("--build-arg")
            .arg(format!("VERSION={VERSION}"))
            .args(["-f", "Dockerfile", "-t"])
            .arg(&tag)
            .arg(".")
            .current_dir(root()),
    )?;
    let archive = image.archive();
    if archive.exists() {
        std::fs::remove_file(&archive)?;
    }
    status(
        container_tool("podman")?
            .args(["save", "--quiet", "--format", "oci-archive", "-o"])
            .arg(&archive)
            .arg(&tag),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of a top-level `key: value` line of a YAML file (quotes removed).
    fn yaml_scalar(text: &str, key: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.trim().trim_matches('"').to_owned())
    }

    #[test]
    fn workspace_version_is_the_chart_app_version_and_the_image_tag() {
        let chart = std::fs::read_to_string(root().join("charts/gatehouse/Chart.yaml"))
            .expect("Chart.yaml");
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
        let workspace_version = manifest
            .lines()
            .skip_while(|l| l.trim() != "[workspace.package]")
            .find_map(|l| l.strip_prefix("version = "))
            .map(|v| v.trim_matches('"').to_owned());
        assert_eq!(workspace_version.as_deref(), Some(VERSION));
        assert_eq!(yaml_scalar(&chart, "appVersion").as_deref(), Some(VERSION));
        for image in IMAGES {
            assert_eq!(image.tag(), format!("localhost/{}:{}", image.name, VERSION));
        }
    }

    #[test]
    fn images_are_the_repositories_the_chart_deploys() {
        let values = std::fs::read_to_string(root().join("charts/gatehouse/values.yaml"))
            .expect("values.yaml");
        for image in IMAGES {
            let repository = format!("repository: ghcr.io/gatehouse-dev/{}", image.name);
            assert!(
                values.lines().any(|l| l.trim() == repository),
                "values.yaml should deploy {repository}"
            );
        }
    }

    #[test]
    fn the_prebuilt_targets_copy_only_what_the_context_preparation_leaves() {
        // `docker build --target sidecar-prebuilt` after a bare `cargo build --release` failed
        // on a COPY of the staged libraries: every source the prebuilt stages copy must be one
        // that `cargo xtask image --context-only` produces, and the docs must name that step.
        let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
        let mut in_prebuilt = false;
        let mut copied = Vec::new();
        for line in dockerfile.lines() {
            if line.starts_with("FROM ") {
                in_prebuilt = line.ends_with("-prebuilt");
            } else if in_prebuilt && let Some(rest) = line.strip_prefix("COPY ") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let sources = &words[..words.len() - 1];
                copied.extend(sources.iter().filter(|s| !s.starts_with("--")).copied());
            }
        }
        assert!(copied.len() >= 3, "found only {copied:?}");
        for source in &copied {
            assert!(
                PREBUILT_COPIES.contains(source),
                "the Dockerfile's prebuilt stages copy {source}, which prepare_context does not make"
            );
        }
        assert!(PREBUILT_COPIES.contains(&format!("target/release/{SIDECAR_LIBS}/").as_str()));
        let install =
            std::fs::read_to_string(root().join("docs/install.md")).expect("docs/install.md");
        assert!(install.contains("cargo xtask image --context-only"));
    }

    #[test]
    fn dockerfile_has_every_target_on_the_distroless_base() {
        let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
        for target in [
            "operator",
            "sidecar",
            "operator-prebuilt",
            "sidecar-prebuilt",
        ] {
            assert!(
                dockerfile
                    .lines()
                    .any(|l| l.starts_with("FROM ") && l.ends_with(&format!(" AS {target}"))),
                "Dockerfile has no `{target}` target"
            );
        }
        assert!(dockerfile.contains(&format!("ARG RUNTIME_BASE={PUBLISHED_BASE}")));
        assert!(dockerfile.contains(&format!("USER {NONROOT_UID}:{NONROOT_UID}")));
        assert!(dockerfile.contains("cargo build --release --locked"));
        for image in IMAGES {
            assert!(
                dockerfile.contains(&format!("COPY target/release/{} ", image.name)),
                "{} has no prebuilt copy",
                image.name
            );
        }
    }
}
