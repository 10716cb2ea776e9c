//! The injected pod, run as a podman pod: `render` prints the Deployment of
//! `examples/sample-app.yaml` with the sidecar injected; its pod template becomes a podman pod
//! with the same containers, environment, mounts and securityContext, and a user signs in
//! through it in Chromium at the fixture OIDC IdP.
//!
//! Why a podman pod and not `podman kube play`: Debian's podman (4.3) has no native sidecars (an
//! init container with `restartPolicy: Always` would have to finish before the app starts) and
//! crashes on `secret` volumes. So each field of the rendered pod spec is translated here, and a
//! field this module does not know fails the check rather than being dropped silently.
//!
//! What differs from a cluster, and why (each changed value is named in the output):
//! - the inputs are `examples/okta.yaml` (the SsoConfig `sample-app.yaml` names) and
//!   `examples/sample-app.yaml`, pointed at this machine: the fixture IdP's issuer and client,
//!   a loopback plain-http public URL (`allowInsecureHttp`), no exclusive provider (the browser picks Okta on the login page), and
//!   free ports (the SsoConfig's `upstream.port`, the sidecar's port annotations with
//!   `spec.sidecar.allowPodOverrides`), because the pod shares the host's network;
//! - the Secret values the cluster fills in: the cookie key the operator generates at apply time,
//!   the config UID the API server assigns, the token the token controller writes;
//! - `GATEHOUSE_PROVISIONING=off`: there is no API server here to provision `SsoUser`s in;
//! - the app container runs the tests' sample app instead of `registry.example.com/acme/portal`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::common::{container_logs, cookie_key};
use crate::image::{self, SIDECAR, container_tool, images_dir, output};
use crate::setup::{CHROMIUM, IDP_DIR};
use crate::workspace::{root, target_dir};

/// The pod's name under podman.
const POD: &str = "gatehouse-rendered-pod";
/// The image the app container runs instead of the example's placeholder image.
pub const SAMPLE_APP_IMAGE: &str = "localhost/gatehouse-sample-app:test";
/// The fixture IdP's client id (tests/src/idp.rs) and the password of its accounts.
const CLIENT_ID: &str = "gatehouse-test";
const PASSWORD: &str = "gatehouse-demo";
/// What the API server would assign as the SsoConfig's UID.
const CONFIG_UID: &str = "3f0c6a8e-5b1d-4e27-9c4a-0d8e2f6b7a91";
/// Placeholders `render` prints where the cluster fills a value in (operator/src/render.rs,
/// operator/src/desired.rs).
const GENERATED_PLACEHOLDER: &str = "<generated at apply time>";
const UID_PLACEHOLDER: &str = "<uid assigned by the API server>";

/// Runs the check; removes the pod whatever happens.
pub fn rendered_pod_signs_in() -> Result<()> {
    let work = images_dir().join("pod");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    remove_pod();
    let result = run(&work);
    remove_pod();
    result
}

fn remove_pod() {
    if let Ok(mut cmd) = container_tool("podman") {
        let _ = cmd
            .args(["pod", "rm", "--force", "--time", "0", POD])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Ports the pod uses on the host's network.
#[derive(Debug, Clone, Copy)]
struct Ports {
    public: u16,
    admin: u16,
    app: u16,
}

fn run(work: &Path) -> Result<()> {
    let ports = Ports {
        public: free_port()?,
        admin: free_port()?,
        app: free_port()?,
    };
    let public_url = format!("http://127.0.0.1:{}", ports.public);
    let client_secret = cookie_key()?.replace(['+', '/', '='], "");
    let idp = Idp::start(&public_url, &client_secret)?;

    let rendered = render(work, &ports, &public_url, &idp.okta_issuer, &client_secret)?;
    let deployment = rendered
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "portal")
        .context("render printed no Deployment `portal`")?;
    let secrets: BTreeMap<String, BTreeMap<String, String>> = rendered
        .iter()
        .filter(|d| d["kind"] == "Secret")
        .filter_map(|d| {
            let name = d["metadata"]["name"].as_str()?.to_owned();
            let data = d["stringData"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            Some((name, data))
        })
        .collect();
    let secrets = fill_in_cluster_values(secrets)?;
    let spec = &deployment["spec"]["template"]["spec"];

    build_sample_app_image()?;
    // The rendered image reference, unchanged: the local image under the name the chart deploys.
    let rendered_sidecar = sidecar_container(spec)?["image"]
        .as_str()
        .context("the sidecar has no image")?
        .to_owned();
    output(container_tool("podman")?.args(["tag", &SIDECAR.tag(), &rendered_sidecar]))?;

    // No infra container (Debian's podman has no pause binary, catatonit, to build one); every
    // container joins the host's network, as the pod's `hostNetwork` would.
    output(container_tool("podman")?.args(["pod", "create", "--name", POD, "--infra=false"]))?;
    let volumes = write_volumes(work, spec, &secrets)?;
    for container in pod_containers(spec)? {
        start_container(container, &volumes, &secrets)?;
    }
    wait_ready(ports.admin)?;
    eprintln!("xtask test: containers: the rendered pod is ready; signing in with Chromium");

    let outcome = browser_sign_in(&format!("{public_url}/dashboard"))?;
    let identity = &outcome["identity"];
    ensure!(
        outcome["status"] == 200
            && identity["x-forwarded-email"] == "ada@example.com"
            && identity["x-forwarded-provider"] == "okta",
        "the sign-in through the rendered pod did not reach the app as ada: {outcome}"
    );
    ensure!(
        outcome["finalUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with(&public_url)),
        "the browser ended away from the pod: {outcome}"
    );
    Ok(())
}

/// A free port on loopback (the OS picks; released for the pod to bind).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Reads a YAML file's documents as JSON values.
fn read_documents(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_saphyr::from_multiple(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `render --show-secrets` of the examples, pointed at this machine; returns its documents.
fn render(
    work: &Path,
    ports: &Ports,
    public_url: &str,
    issuer: &str,
    client_secret: &str,
) -> Result<Vec<Value>> {
    let examples = root().join("examples");
    let input = work.join("input");
    std::fs::create_dir_all(&input)?;
    let mut okta = read_documents(&examples.join("okta.yaml"))?;
    for doc in &mut okta {
        match doc["kind"].as_str() {
            Some("Secret") => {
                doc["stringData"]["client-id"] = json!(CLIENT_ID);
                doc["stringData"]["client-secret"] = json!(client_secret);
            }
            Some("SsoConfig") => {
                let spec = &mut doc["spec"];
                spec["publicUrl"] = json!(public_url);
                spec["allowInsecureHttp"] = json!(true);
                spec["providers"]["okta"]["issuer"] = json!(issuer);
                if let Some(spec) = spec.as_object_mut() {
                    spec.remove("exclusiveProvider");
                }
                spec["upstream"]["port"] = json!(ports.app);
                spec["sidecar"]["allowPodOverrides"] = json!(true);
            }
            _ => {}
        }
    }
    let mut app = read_documents(&examples.join("sample-app.yaml"))?;
    for doc in &mut app {
        if doc["kind"] == "Deployment" {
            let template = &mut doc["spec"]["template"];
            template["metadata"]["annotations"] = json!({
                "gatehouse.dev/sidecar-port": ports.public.to_string(),
                "gatehouse.dev/sidecar-admin-port": ports.admin.to_string(),
            });
            template["spec"]["containers"][0]["args"] =
                json!(["--listen", format!("127.0.0.1:{}", ports.app)]);
        }
    }
    for (name, docs) in [("okta.json", &okta), ("sample-app.json", &app)] {
        // JSON is YAML; one document per file.
        for (i, doc) in docs.iter().enumerate() {
            std::fs::write(
                input.join(format!("{i}-{name}")),
                serde_json::to_vec_pretty(doc)?,
            )?;
        }
    }
    let out = output(
        Command::new(target_dir().join("release/gatehouse-operator"))
            .args(["render", "--show-secrets", "-f"])
            .arg(&input),
    )
    .context("gatehouse-operator render")?;
    std::fs::write(work.join("rendered.yaml"), &out)?;
    serde_saphyr::from_multiple(&out).context("parsing render's output")
}

/// The values a cluster fills in: the generated cookie key, the SsoConfig's UID, the token
/// controller's token; and provisioning off (no API server here).
fn fill_in_cluster_values(
    mut secrets: BTreeMap<String, BTreeMap<String, String>>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let key = cookie_key()?;
    for (name, data) in &mut secrets {
        for (k, v) in data.iter_mut() {
            if v == GENERATED_PLACEHOLDER {
                eprintln!("xtask test: containers: {name}/{k}: a generated cookie key");
                *v = key.clone();
            } else if v == UID_PLACEHOLDER {
                *v = CONFIG_UID.to_owned();
            }
        }
        if let Some(p) = data.get_mut("GATEHOUSE_PROVISIONING") {
            eprintln!(
                "xtask test: containers: {name}/GATEHOUSE_PROVISIONING: {p} -> off (no API server)"
            );
            *p = "off".to_owned();
        }
        if name.ends_with("-token") && data.is_empty() {
            data.insert("token".into(), "not-a-real-token".into());
            data.insert("namespace".into(), "demo".into());
            data.insert("ca.crt".into(), String::new());
        }
    }
    Ok(secrets)
}

/// The injected sidecar: the native sidecar among the init containers, or the plain container
/// named `gatehouse`.
fn sidecar_container(spec: &Value) -> Result<&Value> {
    pod_containers(spec)?
        .into_iter()
        .find(|c| c["name"] == "gatehouse")
        .context("the rendered pod has no `gatehouse` container")
}

/// The containers that run for the pod's life: native sidecars (init containers with
/// `restartPolicy: Always`) first, then the app's. Other init containers are refused: nothing
/// here needs them.
fn pod_containers(spec: &Value) -> Result<Vec<&Value>> {
    let mut out = Vec::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        ensure!(
            c["restartPolicy"] == "Always",
            "init container {} is not a native sidecar; not supported here",
            c["name"]
        );
        out.push(c);
    }
    out.extend(spec["containers"].as_array().into_iter().flatten());
    let pod_keys = ["containers", "initContainers", "volumes"];
    if let Some(obj) = spec.as_object() {
        let unknown: Vec<&String> = obj
            .keys()
            .filter(|k| !pod_keys.contains(&k.as_str()))
            .collect();
        ensure!(
            unknown.is_empty(),
            "pod spec fields not translated to podman: {unknown:?}"
        );
    }
    Ok(out)
}

/// Writes each `secret` volume's files (mode `defaultMode`) under `work/volumes/`; returns
/// volume name → host directory.
fn write_volumes(
    work: &Path,
    spec: &Value,
    secrets: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut volumes = BTreeMap::new();
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().context("a volume without a name")?;
        let secret = &v["secret"];
        ensure!(
            secret.is_object(),
            "volume {name} is not a secret volume; not supported here"
        );
        let secret_name = secret["secretName"].as_str().context("secretName")?;
        let data = secrets
            .get(secret_name)
            .with_context(|| format!("volume {name}: render printed no Secret {secret_name}"))?;
        let mode = secret["defaultMode"].as_u64().unwrap_or(0o644) as u32;
        let dir = work.join("volumes").join(name);
        std::fs::create_dir_all(&dir)?;
        for (k, value) in data {
            let file = dir.join(k);
            std::fs::write(&file, value)?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))?;
        }
        volumes.insert(name.to_owned(), dir);
    }
    Ok(volumes)
}

/// `podman run --pod` of one rendered container: its image, command, env, envFrom, mounts and
/// securityContext, field by field.
fn start_container(
    c: &Value,
    volumes: &BTreeMap<String, PathBuf>,
    secrets: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<()> {
    let name = c["name"].as_str().context("a container without a name")?;
    const KNOWN: [&str; 16] = [
        "name",
        "image",
        "imagePullPolicy",
        "command",
        "args",
        "env",
        "envFrom",
        "ports",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "resources",
        "restartPolicy",
        "securityContext",
        "terminationMessagePolicy",
        "volumeMounts",
    ];
    if let Some(obj) = c.as_object() {
        let unknown: Vec<&String> = obj
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()))
            .collect();
        ensure!(
            unknown.is_empty(),
            "container {name}: fields not translated to podman: {unknown:?}"
        );
    }
    let mut image = c["image"].as_str().context("image")?.to_owned();
    if name == "app" {
        eprintln!("xtask test: containers: app container: {image} -> {SAMPLE_APP_IMAGE}");
        image = SAMPLE_APP_IMAGE.to_owned();
    }
    let mut cmd = container_tool("podman")?;
    cmd.args([
        "run",
        "--detach",
        "--pod",
        POD,
        "--pull=never",
        "--network=host",
    ])
    .arg(format!("--name={POD}-{name}"));

    // Environment: values go in podman's own environment, `--env NAME` copies each.
    let mut env: Vec<(String, String)> = Vec::new();
    for from in c["envFrom"].as_array().into_iter().flatten() {
        let secret = from["secretRef"]["name"]
            .as_str()
            .with_context(|| format!("container {name}: only envFrom secretRef is supported"))?;
        let data = secrets
            .get(secret)
            .with_context(|| format!("container {name}: no rendered Secret {secret}"))?;
        env.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let key = e["name"].as_str().context("env name")?;
        let value = e["value"]
            .as_str()
            .with_context(|| format!("container {name}: env {key} has no literal value"))?;
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value.to_owned()));
    }
    for (k, v) in &env {
        cmd.arg(format!("--env={k}")).env(k, v);
    }

    for m in c["volumeMounts"].as_array().into_iter().flatten() {
        let volume = m["name"].as_str().context("volumeMount name")?;
        let path = m["mountPath"].as_str().context("mountPath")?;
        let dir = volumes
            .get(volume)
            .with_context(|| format!("container {name}: no volume {volume}"))?;
        let ro = if m["readOnly"] == true { ":ro" } else { "" };
        cmd.arg(format!("--volume={}:{path}{ro}", dir.display()));
    }

    security_context(name, &c["securityContext"], &mut cmd)?;
    if let Some(memory) = c["resources"]["limits"]["memory"].as_str() {
        let bytes = memory
            .strip_suffix("Mi")
            .and_then(|n| n.parse::<u64>().ok())
            .with_context(|| format!("container {name}: memory limit {memory:?} not in Mi"))?;
        cmd.arg(format!("--memory={}m", bytes));
    }
    if let Some(command) = c["command"].as_array() {
        cmd.arg(format!("--entrypoint={}", Value::Array(command.clone())));
    }
    cmd.arg(&image);
    for a in c["args"].as_array().into_iter().flatten() {
        cmd.arg(a.as_str().context("args are strings")?);
    }
    output(&mut cmd).with_context(|| format!("starting container {name}"))?;
    Ok(())
}

/// A container's securityContext as podman flags; an unknown field or value fails.
fn security_context(name: &str, sc: &Value, cmd: &mut Command) -> Result<()> {
    let Some(obj) = sc.as_object() else {
        return Ok(());
    };
    for (k, v) in obj {
        match k.as_str() {
            "runAsUser" => {}
            "runAsGroup" => {}
            "runAsNonRoot" => {
                ensure!(
                    v != true || sc["runAsUser"].as_u64().is_some_and(|u| u != 0),
                    "container {name}: runAsNonRoot without a non-zero runAsUser"
                );
            }
            "readOnlyRootFilesystem" => {
                if v == true {
                    cmd.arg("--read-only");
                }
            }
            "allowPrivilegeEscalation" => {
                if v == false {
                    cmd.arg("--security-opt=no-new-privileges");
                }
            }
            "privileged" => ensure!(v == false, "container {name}: privileged"),
            "capabilities" => {
                for cap in v["drop"].as_array().into_iter().flatten() {
                    cmd.arg(format!("--cap-drop={}", cap.as_str().unwrap_or_default()));
                }
                for cap in v["add"].as_array().into_iter().flatten() {
                    cmd.arg(format!("--cap-add={}", cap.as_str().unwrap_or_default()));
                }
            }
            // podman's default seccomp profile is the runtime default.
            "seccompProfile" => ensure!(
                v["type"] == "RuntimeDefault",
                "container {name}: seccompProfile {v}"
            ),
            other => bail!("container {name}: securityContext.{other} not translated to podman"),
        }
    }
    if let Some(uid) = sc["runAsUser"].as_u64() {
        let gid = sc["runAsGroup"].as_u64().unwrap_or(uid);
        cmd.arg(format!("--user={uid}:{gid}"));
    }
    Ok(())
}

/// The tests' sample app (debug build) on the same base as the images.
fn build_sample_app_image() -> Result<()> {
    let binary = target_dir().join("debug/gatehouse-sample-app");
    ensure!(
        binary.is_file(),
        "{} is missing (cargo test --workspace builds it)",
        binary.display()
    );
    let dir = images_dir().join("sample-app");
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("gatehouse-sample-app");
    let _ = std::fs::remove_file(&copy);
    std::fs::hard_link(&binary, &copy).or_else(|_| std::fs::copy(&binary, &copy).map(|_| ()))?;
    let base = if image::image_exists(image::PUBLISHED_BASE)? {
        image::PUBLISHED_BASE
    } else {
        image::STANDIN_BASE
    };
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "FROM {base}\nCOPY gatehouse-sample-app /usr/local/bin/gatehouse-sample-app\n\
             ENTRYPOINT [\"/usr/local/bin/gatehouse-sample-app\"]\n"
        ),
    )?;
    output(
        container_tool("buildah")?
            .args(["build", "--quiet", "--pull=never", "--network=none", "-t"])
            .arg(SAMPLE_APP_IMAGE)
            .arg(&dir),
    )?;
    Ok(())
}

/// Polls the sidecar's `/readyz` until it answers 200 (plain HTTP over TCP; no client library in
/// xtask).
fn wait_ready(admin_port: u16) -> Result<()> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", admin_port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
            last = answer.lines().next().unwrap_or_default().to_owned();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs = container_logs(&format!("{POD}-gatehouse"));
    bail!(
        "the rendered pod's sidecar was not ready within 30s (last /readyz: {last:?}); its logs:\n{logs}"
    )
}

/// The fixture OIDC IdP (tests/fixtures/idp), killed on drop.
struct Idp {
    child: Child,
    okta_issuer: String,
}

impl Idp {
    fn start(public_url: &str, client_secret: &str) -> Result<Self> {
        let mut child = Command::new("node")
            .current_dir(root().join(IDP_DIR))
            .args(["idp.mjs", "--port", "0", "--client-id", CLIENT_ID])
            .args(["--public-url", public_url])
            .env("IDP_CLIENT_SECRET", client_secret)
            .env("IDP_EXIT_ON_STDIN_CLOSE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the fixture IdP (node)")?;
        let stdout = child.stdout.take().context("IdP stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let announce: Value = serde_json::from_str(&line)
            .with_context(|| format!("the IdP's announcement {line:?}"))?;
        let okta_issuer = announce["okta"]["issuer"]
            .as_str()
            .context("the IdP announced no Okta issuer")?
            .to_owned();
        Ok(Self { child, okta_issuer })
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium through the sign-in (tests/fixtures/idp/browser-login.mjs): the login page, the
/// Okta button, the IdP's form, back at the app. Returns the script's JSON outcome.
fn browser_sign_in(url: &str) -> Result<Value> {
    let out = output(
        Command::new("node")
            .current_dir(root().join(IDP_DIR))
            .arg("browser-login.mjs")
            .args(["--url", url, "--provider", "okta", "--user", "ada"])
            .args(["--password", PASSWORD, "--chromium", CHROMIUM]),
    )
    .context("the browser sign-in")?;
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("the browser's outcome {line:?}"))
}
