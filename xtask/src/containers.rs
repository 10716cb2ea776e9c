//! The container suite of `cargo xtask test`: the images `cargo xtask image` builds, run by
//! podman as the chart runs them.
//!
//! - each image: user 65532, no shell in it, runs with a read-only root filesystem and every
//!   capability dropped; sizes reported (sidecar under [`SIDECAR_MAX_BYTES`]);
//! - the sidecar image in front of the sample app: the end-to-end sign-in tests (browser and
//!   HTTP, OIDC and SAML, real fixture IdPs; the forged SAML responses) pointed at the
//!   container;
//! - the operator image's `render -f examples/` prints what the host binary prints;
//! - the pod `render` prints for `examples/sample-app.yaml`, run as a podman pod, signs a user in
//!   ([`pod`]).

mod common;
mod pod;

use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::image::{self, IMAGES, NONROOT_UID, OPERATOR, SIDECAR, container_tool, output};
use crate::suite::Outcome;
use crate::workspace::{cargo_command, root, target_dir};
use common::cookie_key;

/// The sidecar image stays under this: it is pulled onto every node that runs a protected
/// workload. It was 30 MB until SAML: the XML-DSig library (libxmlsec1) brings libxml2, which
/// Debian links with ICU, whose data file alone is 31 MB; the binary and those libraries make
/// about 70 MB. A libxml2 without ICU would bring it back under 35 MB.
pub const SIDECAR_MAX_BYTES: u64 = 75_000_000;
/// The harness variable that runs the sidecar as a container (tests/src/stack.rs).
const SIDECAR_IMAGE_VAR: &str = "GATEHOUSE_TEST_SIDECAR_IMAGE";
/// Shells and shell-providing multi-call binaries none of the images may carry.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "zsh", "busybox", "toybox"];
/// The end-to-end test binaries run against the sidecar image: every sign-in over HTTP and in
/// Chromium, OIDC and SAML, and the forged SAML responses, so the XML-DSig verification that runs
/// is the image's own libxmlsec1 and libxml2. (`saml_provisioning` runs the sidecar in process.)
const E2E_TESTS: [&str; 5] = [
    "oidc_signin",
    "browser",
    "saml_signin",
    "saml_browser",
    "saml_attacks",
];

/// Runs the suite. It builds the images first (`cargo xtask image`).
pub fn suite() -> Result<Outcome> {
    let missing = image::missing_tools();
    if !missing.is_empty() {
        return Ok(Outcome::NotRun(format!(
            "{missing:?} not installed: `cargo xtask setup` as root installs {}",
            image::PACKAGES.join(" ")
        )));
    }
    image::run(false).context("cargo xtask image")?;
    let mut failures = Vec::new();
    let mut check = |what: &str, result: Result<()>| match result {
        Ok(()) => eprintln!("xtask test: containers: ok: {what}"),
        Err(e) => {
            eprintln!("xtask test: containers: FAILED: {what}: {e:#}");
            failures.push(what.to_owned());
        }
    };
    for image in IMAGES {
        check(
            &format!("{} runs as {NONROOT_UID} with no shell", image.name),
            image_is_locked_down(image),
        );
    }
    check("image sizes", sizes());
    check(
        "sidecar runs read-only, no capabilities, as 65532",
        sidecar_runs_unprivileged(),
    );
    check(
        "operator image renders examples/ like the host binary",
        operator_render_matches_host(),
    );
    check(
        "end-to-end sign-ins through the sidecar image",
        end_to_end_through_the_image(),
    );
    check(
        "the pod render prints for examples/sample-app.yaml runs under podman; a user signs in",
        pod::rendered_pod_signs_in(),
    );
    if failures.is_empty() {
        Ok(Outcome::Passed)
    } else {
        Ok(Outcome::Failed(failures.join("; ")))
    }
}

/// The image's configured user is 65532 and its filesystem holds no shell.
fn image_is_locked_down(image: image::Image) -> Result<()> {
    let tag = image.tag();
    let user = output(container_tool("podman")?.args([
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}",
        &tag,
    ]))?;
    ensure!(
        user.trim() == format!("{NONROOT_UID}:{NONROOT_UID}"),
        "{tag} runs as {:?}, not {NONROOT_UID}:{NONROOT_UID}",
        user.trim()
    );
    let shells = shells_in(&tag)?;
    ensure!(shells.is_empty(), "{tag} carries a shell: {shells:?}");
    // And, as an attacker would try it: asking for a shell finds none.
    let status = container_tool("podman")?
        .args(["run", "--rm", "--network=none", "--entrypoint", "/bin/sh"])
        .arg(&tag)
        .args(["-c", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    ensure!(!status.success(), "{tag}: /bin/sh ran");
    Ok(())
}

/// Paths in the image's filesystem whose file name is a shell.
fn shells_in(tag: &str) -> Result<Vec<String>> {
    let created = output(container_tool("podman")?.args(["create", "--network=none", tag]))?;
    let id = created.trim().to_owned();
    let listing = (|| {
        let tar = target_dir().join("images/export.tar");
        output(
            container_tool("podman")?
                .args(["export", "-o"])
                .arg(&tar)
                .arg(&id),
        )?;
        let list = output(Command::new("tar").arg("-tf").arg(&tar));
        let _ = std::fs::remove_file(&tar);
        list
    })();
    let _ = output(container_tool("podman")?.args(["rm", "--force", &id]));
    let listing = listing?;
    ensure!(
        listing.lines().any(|l| l.ends_with(tag_binary(tag))),
        "the export of {tag} does not hold its binary; cannot judge its contents"
    );
    Ok(listing
        .lines()
        .filter(|path| {
            let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            SHELLS.contains(&name)
        })
        .map(str::to_owned)
        .collect())
}

/// The binary an image tag runs (`localhost/gatehouse-sidecar:0.1.0` → `gatehouse-sidecar`).
fn tag_binary(tag: &str) -> &str {
    let name = tag.rsplit('/').next().unwrap_or(tag);
    name.split(':').next().unwrap_or(name)
}

/// Reports both sizes; fails when the sidecar is over budget.
fn sizes() -> Result<()> {
    for image in IMAGES {
        let size = image::image_size(&image.tag())?;
        eprintln!(
            "xtask test: containers: {} is {:.1} MB",
            image.tag(),
            size as f64 / 1e6
        );
        if image.name == SIDECAR.name {
            ensure!(
                size < SIDECAR_MAX_BYTES,
                "the sidecar image is {size} bytes, over the {SIDECAR_MAX_BYTES}-byte budget"
            );
        }
    }
    Ok(())
}

/// Starts the sidecar image detached (read-only root, no capabilities, no network, the image's
/// own user) with a minimal valid environment, and reads from the kernel (`/proc/<pid>/status`)
/// the user, capabilities and no-new-privileges flag of its process once it is serving.
fn sidecar_runs_unprivileged() -> Result<()> {
    let name = format!("gatehouse-xtask-sidecar-{}", std::process::id());
    let env = [
        ("GATEHOUSE_PUBLIC_URL", "http://127.0.0.1:4180".to_owned()),
        ("GATEHOUSE_COOKIE_SECRET", cookie_key()?),
        ("GATEHOUSE_PROVISIONING", "off".to_owned()),
        ("GATEHOUSE_CONFIG", "containers".to_owned()),
        ("GATEHOUSE_NAMESPACE", "default".to_owned()),
        ("OIDC_PROVIDER_ID", "auth0".to_owned()),
        ("OIDC_PROVIDER_NAME", "Auth0".to_owned()),
        ("OIDC_CLIENT_ID", "client".to_owned()),
        ("OIDC_CLIENT_SECRET", "not-a-real-secret".to_owned()),
        ("OIDC_ISSUER", "http://127.0.0.1:1/auth0".to_owned()),
        ("OIDC_ORG_ID", "containers".to_owned()),
        ("OIDC_ROLE_CLAIM", "groups".to_owned()),
        ("OIDC_ROLE_MAP", "staff=member".to_owned()),
        ("OIDC_DEFAULT_ROLE", "member".to_owned()),
    ];
    let mut run = container_tool("podman")?;
    run.args(["run", "--detach", "--name", &name])
        .args(["--network=none", "--read-only", "--cap-drop=all"])
        .arg("--security-opt=no-new-privileges");
    for (k, v) in &env {
        run.arg(format!("--env={k}")).env(k, v);
    }
    run.arg(SIDECAR.tag());
    output(&mut run)?;
    let result = (|| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let logs = output(container_tool("podman")?.args(["logs", &name])).unwrap_or_default();
            let state = output(container_tool("podman")?.args([
                "inspect",
                "--format",
                "{{.State.Status}}",
                &name,
            ]))?;
            ensure!(
                state.trim() == "running",
                "the sidecar container is {}; its output: {logs}",
                state.trim()
            );
            if logs.contains("listening") || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let pid = output(container_tool("podman")?.args([
            "inspect",
            "--format",
            "{{.State.Pid}}",
            &name,
        ]))?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
            .with_context(|| format!("reading the status of the sidecar's process {pid}"))?;
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let uids = field("Uid:");
        ensure!(
            !uids.is_empty() && uids.iter().all(|u| *u == NONROOT_UID.to_string()),
            "the sidecar's process runs as uids {uids:?} (real, effective, saved, fs)"
        );
        for caps in ["CapEff:", "CapPrm:", "CapBnd:"] {
            let set = field(caps);
            ensure!(
                set.len() == 1 && u64::from_str_radix(set[0], 16).ok() == Some(0),
                "the sidecar's process has {caps} {set:?}, not none"
            );
        }
        ensure!(
            field("NoNewPrivs:") == ["1"],
            "the sidecar's process may gain privileges (NoNewPrivs not set)"
        );
        Ok(())
    })();
    let _ = output(container_tool("podman")?.args(["rm", "--force", "--time", "0", &name]));
    result
}

/// `render -f examples/` by the operator image (read-only, no network, no capabilities) prints
/// byte for byte what the release binary on the host prints, and exits the same way.
fn operator_render_matches_host() -> Result<()> {
    let host = Command::new(target_dir().join("release").join(OPERATOR.name))
        .args(["render", "-f", "examples/"])
        .current_dir(root())
        .output()
        .context("running the host's gatehouse-operator render")?;
    let examples = root().join("examples");
    let container = container_tool("podman")?
        .args([
            "run",
            "--rm",
            "--network=none",
            "--read-only",
            "--cap-drop=all",
        ])
        .arg(format!(
            "--volume={}:/home/nonroot/examples:ro",
            examples.display()
        ))
        .args(["--workdir", "/home/nonroot"])
        .arg(OPERATOR.tag())
        .args(["render", "-f", "examples/"])
        .output()
        .context("running the operator image's render")?;
    ensure!(
        host.status.code() == container.status.code(),
        "exit codes differ: host {}, container {} ({})",
        host.status,
        container.status,
        String::from_utf8_lossy(&container.stderr).trim()
    );
    ensure!(
        !host.stdout.is_empty(),
        "the host's render printed nothing: {}",
        String::from_utf8_lossy(&host.stderr).trim()
    );
    if host.stdout != container.stdout {
        let host = String::from_utf8_lossy(&host.stdout);
        let container = String::from_utf8_lossy(&container.stdout);
        let first = host
            .lines()
            .zip(container.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| host.lines().count().min(container.lines().count()));
        bail!(
            "outputs differ from line {}: host {:?}, container {:?}",
            first + 1,
            host.lines().nth(first),
            container.lines().nth(first)
        );
    }
    Ok(())
}

/// The end-to-end sign-in tests ([`E2E_TESTS`]) with the harness pointed at the sidecar image.
/// The SAML fixture IdPs and the forge run on the host as in the cargo suite: their virtualenv
/// and node modules are installed first.
fn end_to_end_through_the_image() -> Result<()> {
    crate::saml_fixtures::install().context("the SAML fixtures' packages")?;
    let mut args = vec!["test", "--workspace"];
    for test in E2E_TESTS {
        args.extend(["--test", test]);
    }
    let status = cargo_command(&args)
        .env(SIDECAR_IMAGE_VAR, SIDECAR.tag())
        .env("CONTAINERS_CONF", image::containers_conf()?)
        .status()
        .context("running the end-to-end tests against the sidecar image")?;
    ensure!(status.success(), "cargo test against the image: {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_binary_is_the_repository_name() {
        assert_eq!(
            tag_binary("localhost/gatehouse-sidecar:0.1.0"),
            "gatehouse-sidecar"
        );
        assert_eq!(tag_binary("gatehouse-operator"), "gatehouse-operator");
    }
}
