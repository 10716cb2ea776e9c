//! SAML on loopback: the fixture IdPs, the forged-response tool, a sidecar configured for SAML,
//! and the sign-in flow over HTTP.
//!
//! - [`SamlIdp`]: `tests/fixtures/saml-idp/idp.py` (pysaml2; signs with Debian's xmlsec1), run
//!   by the pinned virtualenv `target/saml-venv` that `cargo xtask setup` installs.
//! - [`SamlIdp2`]: `tests/fixtures/saml-idp2/idp.mjs` (npm samlify), a second implementation.
//! - [`forge`]: `tests/fixtures/saml-forge/forge.py` (signxml + lxml), every attack of the
//!   verification rules, from a genuine response of the fixture IdP.
//! - [`SamlStack`]: IdP, sample app and the sidecar binary with `SAML_*` variables.
//! - [`SamlKubeStack`]: the sidecar in process with Kubernetes provisioning on the in-memory
//!   API, to see what a sign-in provisions.
//! - [`SamlFlow`]: `GET /api/auth/saml/start` → the IdP's form → the IdP's auto-posting form
//!   → `POST /api/auth/saml/acs`, with one browser's cookie jar.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use gatehouse_crds::SsoUser;
use gatehouse_directory::kubernetes::UserCacheFeeder;
use kube::{Api, api::ListParams, runtime::watcher};
use kube_fake_client::ClientBuilder;
use reqwest::{
    StatusCode, Url,
    cookie::{CookieStore, Jar},
    header::{ACCEPT, COOKIE},
};
use serde::Deserialize;

use crate::{
    flow::{Answer, Session, session_from_headers},
    process::{ChildProcess, free_port, workspace_root},
    sample::{MARKER_HEADER, SeenRequest},
    stack::{ORG_ID, SampleApp, Sidecar, StackOptions, sidecar_env},
};

/// Password of every fixture account (the OIDC fixture's too).
pub const PASSWORD: &str = crate::idp::PASSWORD;
/// The LDAP group DN that maps to admin (a value with commas: the JSON role map carries it).
pub const ADMIN_DN: &str = "cn=hr-admins,ou=groups,dc=example,dc=com";
/// The SAML attribute holding role values.
pub const ROLE_ATTRIBUTE: &str = "memberOf";
/// `SAML_ROLE_MAP` of every SAML stack: the DN → admin, `staff` → member.
pub const ROLE_MAP: &str = r#"[{"value":"cn=hr-admins,ou=groups,dc=example,dc=com","role":"admin"},{"value":"staff","role":"member"}]"#;
/// The sidecar's ACS path.
pub const ACS_PATH: &str = "/api/auth/saml/acs";
/// The sidecar's SP metadata path.
pub const METADATA_PATH: &str = "/api/auth/saml/metadata";
/// The sidecar's SP-initiated start path.
pub const START_PATH: &str = "/api/auth/saml/start";
/// Provider id of SAML sign-ins (metrics, audit, `X-Forwarded-Provider`, SsoUser).
pub const PROVIDER: &str = "saml";

/// One account of the fixture IdPs (tests/fixtures/saml-idp/idp.py).
#[derive(Debug, Clone, Copy)]
pub struct FixtureUser {
    pub login: &'static str,
    /// Persistent NameID (the SsoUser's subject).
    pub name_id: &'static str,
    /// The role the stacks' role map gives, `None` = denied.
    pub role: Option<&'static str>,
}

impl FixtureUser {
    /// The `mail` attribute.
    pub fn email(&self) -> String {
        format!("{}@example.com", self.login)
    }
}

/// Role values `cn=hr-admins,…` and `staff`: admin.
pub const ADMIN: FixtureUser = FixtureUser {
    login: "admin",
    name_id: "p-admin-7c1e4b",
    role: Some("admin"),
};
/// Role value `staff`: member.
pub const MEMBER: FixtureUser = FixtureUser {
    login: "member",
    name_id: "p-member-2d9a60",
    role: Some("member"),
};
/// Role value `guests`, which no rule maps: denied.
pub const NOBODY: FixtureUser = FixtureUser {
    login: "nobody",
    name_id: "p-nobody-b81f07",
    role: None,
};
/// No role attribute at all: denied.
pub const NOROLE: FixtureUser = FixtureUser {
    login: "norole",
    name_id: "p-norole-44aa12",
    role: None,
};
/// A member whose NameID extends the admin's (`p-admin-7c1e4b.evil`): the comment-injection
/// attack makes it read as the admin's to a careless parser.
pub const MALLORY: FixtureUser = FixtureUser {
    login: "mallory",
    name_id: "p-admin-7c1e4b.evil",
    role: Some("member"),
};

fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests/fixtures")
}

/// The SAML fixtures' Python: `$GATEHOUSE_SAML_PYTHON`, else the virtualenv `saml-venv` in the
/// target directory `cargo xtask setup` installed it into. A clear error when it is missing.
pub fn python() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("GATEHOUSE_SAML_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("saml-venv/bin/python"));
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/debug/deps/<test> or target/debug/<bin> → target/saml-venv
        for target in exe.ancestors().skip(2).take(2) {
            candidates.push(target.join("saml-venv/bin/python"));
        }
    }
    candidates.push(workspace_root().join("target/saml-venv/bin/python"));
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "the SAML fixtures' Python virtualenv is missing (looked at {}): run \
                 `cargo xtask setup` (it installs tests/fixtures/saml-idp/requirements.txt into \
                 target/saml-venv), or set GATEHOUSE_SAML_PYTHON",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

#[derive(Debug, Deserialize)]
struct Announce {
    port: u16,
    base: String,
    entity_id: String,
    metadata_url: String,
    sso_url: String,
    #[serde(default)]
    slo_url: Option<String>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    cert_file: Option<PathBuf>,
}

/// What pysaml2's metadata parser read from the sidecar's SP metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct SpMetadataSummary {
    pub entity_id: String,
    pub acs: Vec<String>,
    pub acs_bindings: Vec<String>,
    pub slo: Vec<String>,
    pub name_id_formats: Vec<String>,
    pub want_assertions_signed: Option<String>,
    pub authn_requests_signed: Option<String>,
}

/// The pysaml2 fixture IdP.
#[derive(Debug)]
pub struct SamlIdp {
    pub process: ChildProcess,
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub entity_id: String,
    pub metadata_url: String,
    pub sso_url: String,
    pub slo_url: String,
    /// The IdP's signing key and certificate (PEM files): the forge re-signs with them.
    pub key_file: PathBuf,
    pub cert_file: PathBuf,
    http: reqwest::Client,
}

impl SamlIdp {
    /// Starts the IdP on a free port; it fetches the SP metadata from `sp_metadata_url` at the
    /// first sign-in (or [`SamlIdp::load_sp`]).
    pub fn start(sp_metadata_url: &str) -> Result<Self> {
        Self::start_on(sp_metadata_url, 0)
    }

    /// [`SamlIdp::start`] on `port` (0 = any free port).
    pub fn start_on(sp_metadata_url: &str, port: u16) -> Result<Self> {
        let python = python()?;
        let mut cmd = Command::new(python);
        cmd.current_dir(fixtures_dir().join("saml-idp"))
            .args(["-W", "ignore", "idp.py", "--port"])
            .arg(port.to_string())
            .arg("--sp-metadata-url")
            .arg(sp_metadata_url)
            .env("IDP_EXIT_ON_STDIN_CLOSE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let (process, line) = ChildProcess::spawn("saml-idp", cmd, Some(Duration::from_secs(60)))?;
        let line = line.context("saml-idp announcement")?;
        let a: Announce = serde_json::from_str(&line)
            .with_context(|| format!("parsing the SAML IdP's announcement {line:?}"))?;
        Ok(Self {
            process,
            port: a.port,
            base: a.base,
            entity_id: a.entity_id,
            metadata_url: a.metadata_url,
            sso_url: a.sso_url,
            slo_url: a.slo_url.context("announcement without slo_url")?,
            key_file: a.key_file.context("announcement without key_file")?,
            cert_file: a.cert_file.context("announcement without cert_file")?,
            http: crate::http_client()?,
        })
    }

    async fn admin_post(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
        let url = format!("{}/admin/{path}", self.base);
        let res = self.http.post(&url).json(body).send().await?;
        let status = res.status();
        let body: serde_json::Value = res.json().await?;
        if !status.is_success() {
            bail!("SAML IdP admin {path} failed: {status} {body}");
        }
        Ok(body)
    }

    /// Changes how the IdP answers from now on: `name_id_format` (`persistent`, `transient`,
    /// `email`), `sign_response`, `sign_assertion`.
    pub async fn settings(&self, changes: serde_json::Value) -> Result<()> {
        self.admin_post("settings", &changes).await.map(drop)
    }

    /// Fetches the SP metadata now and returns what pysaml2's own metadata parser read.
    pub async fn load_sp(&self) -> Result<SpMetadataSummary> {
        let v = self.admin_post("load-sp", &serde_json::json!({})).await?;
        serde_json::from_value(v).context("the IdP's SP metadata summary")
    }

    /// What happened at the IdP (authn requests, responses, logout requests, canary hits).
    pub async fn events(&self) -> Result<Vec<serde_json::Value>> {
        let url = format!("{}/admin/events", self.base);
        Ok(self
            .http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Makes the IdP start single logout of `login`'s last sign-in: a LogoutRequest to the SP
    /// (with its SessionIndex when `session_index`), genuine or forged as `forge` says
    /// (`unsigned`, `other-key`, `altered`, `expired`, `other-idp`; see idp.py).
    pub async fn idp_logout(
        &self,
        login: &str,
        session_index: bool,
        forge: Option<&str>,
    ) -> Result<IdpLogout> {
        let v = self
            .admin_post(
                "idp-logout",
                &serde_json::json!({
                    "login": login,
                    "session_index": session_index,
                    "forge": forge,
                    "relay_state": "from-the-idp",
                }),
            )
            .await?;
        serde_json::from_value(v).context("the IdP's logout request")
    }

    /// A URL whose fetch the IdP records as a `canary` event named `name`.
    pub fn canary_url(&self, name: &str) -> String {
        format!("{}/canary/{name}", self.base)
    }
}

/// The samlify IdP (a second, independent implementation).
#[derive(Debug)]
pub struct SamlIdp2 {
    pub process: ChildProcess,
    pub port: u16,
    pub entity_id: String,
    pub metadata_url: String,
    pub sso_url: String,
}

impl SamlIdp2 {
    /// Starts it on a free port; it fetches the SP metadata at the first sign-in.
    pub fn start(sp_metadata_url: &str) -> Result<Self> {
        let dir = fixtures_dir().join("saml-idp2");
        if !dir.join("node_modules/samlify/package.json").is_file() {
            bail!(
                "the samlify IdP's node modules are missing: run `cargo xtask setup` \
                 (or `npm ci --prefix {}`)",
                dir.display()
            );
        }
        let mut cmd = Command::new(crate::idp::node_binary());
        cmd.current_dir(&dir)
            .args([
                "idp.mjs",
                "--port",
                "0",
                "--sp-metadata-url",
                sp_metadata_url,
            ])
            .env("IDP_EXIT_ON_STDIN_CLOSE", "1");
        let (process, line) = ChildProcess::spawn("saml-idp2", cmd, Some(Duration::from_secs(60)))?;
        let line = line.context("saml-idp2 announcement")?;
        let a: Announce = serde_json::from_str(&line)
            .with_context(|| format!("parsing the samlify IdP's announcement {line:?}"))?;
        Ok(Self {
            process,
            port: a.port,
            entity_id: a.entity_id,
            metadata_url: a.metadata_url,
            sso_url: a.sso_url,
        })
    }
}

/// One attack the forge knows (`forge.py --list`).
#[derive(Debug, Clone, Deserialize)]
pub struct ForgeAttack {
    pub name: String,
    /// What the genuine response must carry (see forge.py), if anything special.
    pub needs: Option<String>,
    pub what: String,
}

/// Every attack (and control) the forge tool knows.
pub fn forge_attacks() -> Result<Vec<ForgeAttack>> {
    let out = Command::new(python()?)
        .current_dir(fixtures_dir().join("saml-forge"))
        .args(["-W", "ignore", "forge.py", "--list"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .context("running forge.py --list")?;
    if !out.status.success() {
        bail!(
            "forge.py --list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("parsing forge.py --list")
}

/// Extra inputs of some attacks.
#[derive(Debug, Clone, Default)]
pub struct ForgeOptions {
    /// `replay-new-attempt`: the request ID of the fresh attempt.
    pub in_response_to: Option<String>,
    /// `xxe`: the URL the external entity points at.
    pub canary_url: Option<String>,
}

/// Runs `forge.py attack` on `genuine` (a SAMLResponse form value) with the IdP's key; returns
/// the forged form value.
pub fn forge(idp: &SamlIdp, attack: &str, genuine: &str, options: &ForgeOptions) -> Result<String> {
    let mut cmd = Command::new(python()?);
    cmd.current_dir(fixtures_dir().join("saml-forge"))
        .args(["-W", "ignore", "forge.py", attack])
        .arg("--idp-key")
        .arg(&idp.key_file)
        .arg("--idp-cert")
        .arg(&idp.cert_file)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(id) = &options.in_response_to {
        cmd.arg("--in-response-to").arg(id);
    }
    if let Some(url) = &options.canary_url {
        cmd.arg("--canary-url").arg(url);
    }
    let mut child = cmd.spawn().context("running forge.py")?;
    child
        .stdin
        .take()
        .context("forge stdin")?
        .write_all(genuine.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "forge.py {attack} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// The XML inside a SAMLResponse form value.
pub fn decode_response(saml_response: &str) -> Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(saml_response.trim())
        .context("SAMLResponse is not base64")?;
    String::from_utf8(bytes).context("SAMLResponse is not UTF-8")
}

/// The `InResponseTo` of a SAMLResponse form value (the request ID of the attempt it answers).
pub fn in_response_to(saml_response: &str) -> Result<String> {
    let xml = decode_response(saml_response)?;
    let start = xml
        .find("InResponseTo=\"")
        .context("response without InResponseTo")?
        + "InResponseTo=\"".len();
    let end = xml[start..]
        .find('"')
        .context("unterminated InResponseTo")?
        + start;
    Ok(xml[start..end].to_owned())
}

/// What the IdP's auto-posting page would send the browser's form to.
#[derive(Debug, Clone)]
pub struct IdpPost {
    /// The form's action (the sidecar's ACS).
    pub action: Url,
    pub saml_response: String,
    pub relay_state: Option<String>,
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `value` of the `<input>` named `name` in `html`, unescaped.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let needle = format!("name={quote}{name}{quote}");
        if let Some(at) = html.find(&needle) {
            let tag_start = html[..at].rfind('<')?;
            let tag_end = at + html[at..].find('>')?;
            let tag = &html[tag_start..tag_end];
            for q in ['"', '\''] {
                let key = format!("value={q}");
                if let Some(v) = tag.find(&key) {
                    let v = v + key.len();
                    let end = tag[v..].find(q)? + v;
                    return Some(html_unescape(&tag[v..end]));
                }
            }
        }
    }
    None
}

fn form_action(html: &str) -> Option<String> {
    crate::flow::form_action(html).or_else(|| {
        let form = &html[html.find("<form")?..];
        let start = form.find("action='")? + "action='".len();
        let end = form[start..].find('\'')? + start;
        Some(html_unescape(&form[start..end]))
    })
}

/// One SAML sign-in attempt over HTTP, with its own cookie jar (a fresh browser).
#[derive(Debug)]
pub struct SamlFlow {
    client: reqwest::Client,
    jar: Arc<Jar>,
    /// The sidecar's base URL.
    pub sidecar: Url,
    /// Where the start route sent us (the IdP's SSO URL with `SAMLRequest`).
    pub sso_url: Url,
}

impl SamlFlow {
    /// `GET /api/auth/saml/start?rd=…`; expects a redirect to the IdP.
    pub async fn start(sidecar_url: &str, rd: Option<&str>) -> Result<Self> {
        let jar = Arc::new(Jar::default());
        let client = crate::client_builder()
            .cookie_provider(jar.clone())
            .build()?;
        let sidecar = Url::parse(sidecar_url)?;
        let mut start = sidecar.join(START_PATH)?;
        if let Some(rd) = rd {
            start.query_pairs_mut().append_pair("rd", rd);
        }
        let answer = read(client.get(start.clone()).send().await?).await;
        if !answer.status.is_redirection() {
            bail!(
                "GET {start} should redirect to the IdP, got {} {}",
                answer.status,
                answer.body.chars().take(300).collect::<String>()
            );
        }
        let sso_url = start.join(answer.location().context("start without Location")?)?;
        if !sso_url.query_pairs().any(|(k, _)| k == "SAMLRequest") {
            bail!("the start route's redirect carries no SAMLRequest: {sso_url}");
        }
        Ok(Self {
            client,
            jar,
            sidecar,
            sso_url,
        })
    }

    /// Signs in at the IdP's form as `login`; returns the HTTP-POST form the IdP answered with
    /// (not yet posted).
    pub async fn authenticate(&self, login: &str, password: &str) -> Result<IdpPost> {
        let page = read(self.client.get(self.sso_url.clone()).send().await?).await;
        let has_password =
            page.body.contains("name='password'") || page.body.contains("name=\"password\"");
        if page.status != StatusCode::OK || !has_password {
            bail!(
                "the IdP did not show its login form: {} {}",
                page.status,
                page.body.chars().take(500).collect::<String>()
            );
        }
        let action = self
            .sso_url
            .join(&form_action(&page.body).context("login form without action")?)?;
        let key = input_value(&page.body, "key").context("login form without key")?;
        let res = self
            .client
            .post(action)
            .form(&[
                ("key", key.as_str()),
                ("login", login),
                ("password", password),
            ])
            .send()
            .await?;
        let answer = read(res).await;
        let saml_response = input_value(&answer.body, "SAMLResponse").with_context(|| {
            format!(
                "the IdP's answer to {login}'s sign-in holds no SAMLResponse: {} {}",
                answer.status,
                answer.body.chars().take(500).collect::<String>()
            )
        })?;
        let action = self
            .sso_url
            .join(&form_action(&answer.body).context("the IdP's POST form has no action")?)?;
        Ok(IdpPost {
            action,
            saml_response,
            relay_state: input_value(&answer.body, "RelayState"),
        })
    }

    /// POSTs `saml_response` (and `relay_state`) to the sidecar's ACS with this browser's
    /// cookies, as the IdP's page would.
    pub async fn post(&self, saml_response: &str, relay_state: Option<&str>) -> Result<Answer> {
        let acs = self.sidecar.join(ACS_PATH)?;
        let mut form = vec![("SAMLResponse", saml_response)];
        if let Some(rs) = relay_state {
            form.push(("RelayState", rs));
        }
        Ok(read(
            self.client
                .post(acs)
                .header(ACCEPT, "text/html")
                .form(&form)
                .send()
                .await?,
        )
        .await)
    }

    /// POSTs `saml_response` to the ACS with exactly `cookies` as the `Cookie` header (not this
    /// browser's jar): an attacker replaying what they captured.
    pub async fn post_with_cookies(
        &self,
        cookies: &str,
        saml_response: &str,
        relay_state: Option<&str>,
    ) -> Result<Answer> {
        let acs = self.sidecar.join(ACS_PATH)?;
        let mut form = vec![("SAMLResponse", saml_response)];
        if let Some(rs) = relay_state {
            form.push(("RelayState", rs));
        }
        Ok(read(
            crate::http_client()?
                .post(acs)
                .header(ACCEPT, "text/html")
                .header(COOKIE, cookies)
                .form(&form)
                .send()
                .await?,
        )
        .await)
    }

    /// POSTs a raw form body to the ACS (for bodies `reqwest`'s form encoder would not make).
    pub async fn post_raw(&self, body: Vec<u8>) -> Result<Answer> {
        let acs = self.sidecar.join(ACS_PATH)?;
        Ok(read(
            self.client
                .post(acs)
                .header(ACCEPT, "text/html")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await?,
        )
        .await)
    }

    /// POSTs `saml_response` to the ACS as [`SamlFlow::post`] does, over a raw socket that reads
    /// the answer while writing: for a body the sidecar refuses before reading it all, whose
    /// answer an HTTP client library drops when the rest of the write fails.
    pub async fn post_refused_early(
        &self,
        saml_response: &str,
        relay_state: Option<&str>,
    ) -> Result<Answer> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("SAMLResponse", saml_response);
        if let Some(rs) = relay_state {
            form.append_pair("RelayState", rs);
        }
        let body = form.finish();
        let addr = format!(
            "{}:{}",
            self.sidecar
                .host_str()
                .context("sidecar URL without host")?,
            self.sidecar
                .port_or_known_default()
                .context("sidecar URL without port")?
        );
        let mut head = format!(
            "POST {ACS_PATH} HTTP/1.1\r\nAccept: text/html\r\n\
             Content-Type: application/x-www-form-urlencoded"
        );
        let cookies = self.cookies();
        if !cookies.is_empty() {
            head.push_str(&format!("\r\nCookie: {cookies}"));
        }
        let exchange = crate::raw::send_body(&addr, &head, body.as_bytes()).await?;
        let raw = exchange.answer;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &raw.headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        Ok(Answer {
            status: StatusCode::from_u16(raw.status)?,
            headers,
            body: raw.body,
        })
    }

    /// The `Cookie` header this browser sends to the sidecar.
    pub fn cookies(&self) -> String {
        self.jar
            .cookies(&self.sidecar)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Start, sign in at the IdP and post its genuine response: the ACS's answer.
    pub async fn sign_in(sidecar_url: &str, user: FixtureUser) -> Result<(Self, IdpPost, Answer)> {
        let flow = Self::start(sidecar_url, Some("/dashboard")).await?;
        let post = flow.authenticate(user.login, PASSWORD).await?;
        let answer = flow
            .post(&post.saml_response, post.relay_state.as_deref())
            .await?;
        Ok((flow, post, answer))
    }
}

async fn read(res: reqwest::Response) -> Answer {
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

/// The session an ACS answer set, if any.
pub fn session_of(answer: &Answer) -> Option<Session> {
    session_from_headers(&answer.headers)
}

/// `GET path` on the sidecar at `base` as an API client with `session`'s cookie; the answer and
/// what the sample app saw (when it answered).
pub async fn get_app(
    base: &str,
    session: Option<&Session>,
    path: &str,
) -> Result<(Answer, Option<SeenRequest>)> {
    let mut req = crate::http_client()?
        .get(format!("{base}{path}"))
        .header(ACCEPT, "application/json");
    if let Some(s) = session {
        req = req.header(COOKIE, s.cookie_header());
    }
    let answer = read(req.send().await?).await;
    let seen = (answer.headers.contains_key(MARKER_HEADER) && answer.status.is_success())
        .then(|| serde_json::from_str(&answer.body).ok())
        .flatten();
    Ok((answer, seen))
}

/// Which IdP a [`SamlStack`] signs in at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpKind {
    /// pysaml2 (tests/fixtures/saml-idp).
    Pysaml2,
    /// samlify (tests/fixtures/saml-idp2).
    Samlify,
}

/// How to start a [`SamlStack`].
#[derive(Debug, Clone)]
pub struct SamlOptions {
    pub idp: IdpKind,
    /// Extra sidecar environment (applied last).
    pub extra_env: Vec<(String, String)>,
    /// Variables left out of the sidecar's environment.
    pub remove_env: Vec<String>,
    /// Wait this long for `/readyz`.
    pub ready_timeout: Duration,
    /// Fixed public port of the sidecar (0 = any free port).
    pub port: u16,
    /// Fixed admin port of the sidecar (0 = any free port).
    pub admin_port: u16,
}

impl Default for SamlOptions {
    fn default() -> Self {
        Self {
            idp: IdpKind::Pysaml2,
            extra_env: Vec::new(),
            remove_env: Vec::new(),
            ready_timeout: Duration::from_secs(45),
            port: 0,
            admin_port: 0,
        }
    }
}

/// The running IdP of a stack.
#[derive(Debug)]
pub enum RunningIdp {
    Pysaml2(SamlIdp),
    Samlify(SamlIdp2),
}

/// The sidecar's `SAML_*` environment for an IdP whose metadata is at `metadata_url`, with a
/// fresh SP signing key (RSA-2048) and its certificate, as the operator renders them.
pub fn saml_env(metadata_url: &str) -> Result<Vec<(String, String)>> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).context("an RSA key")?;
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())?.self_signed(&key)?;
    Ok([
        ("SAML_IDP_METADATA_URL", metadata_url),
        ("SAML_ROLE_ATTRIBUTE", ROLE_ATTRIBUTE),
        ("SAML_ROLE_MAP", ROLE_MAP),
        ("SAML_ORG_ID", ORG_ID),
        ("SAML_SP_SIGNING_KEY", &key.serialize_pem()),
        ("SAML_SP_SIGNING_CERT", &cert.pem()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect())
}

/// A LogoutRequest the fixture IdP made for the SP: the URL the browser is sent to, and its ID.
#[derive(Debug, Clone, Deserialize)]
pub struct IdpLogout {
    pub url: String,
    pub id: String,
    /// The SessionIndex of the sign-in it ends.
    pub session_index: String,
}

/// A SAML IdP, the sample app and the sidecar binary in front of it, configured for SAML only.
#[derive(Debug)]
pub struct SamlStack {
    pub sidecar: Sidecar,
    pub app: SampleApp,
    pub idp: RunningIdp,
}

impl SamlStack {
    /// Starts IdP, app and sidecar and waits for `/readyz` (the IdP metadata loaded).
    pub async fn start(options: SamlOptions) -> Result<Self> {
        let pick = |p: u16| if p == 0 { free_port() } else { Ok(p) };
        let (port, admin_port) = (pick(options.port)?, pick(options.admin_port)?);
        let url = format!("http://127.0.0.1:{port}");
        let admin = format!("http://127.0.0.1:{admin_port}");
        let sp_metadata = format!("{url}{METADATA_PATH}");
        let app = SampleApp::start()?;
        let (idp, metadata_url) = match options.idp {
            IdpKind::Pysaml2 => {
                let idp = SamlIdp::start(&sp_metadata)?;
                let m = idp.metadata_url.clone();
                (RunningIdp::Pysaml2(idp), m)
            }
            IdpKind::Samlify => {
                let idp = SamlIdp2::start(&sp_metadata)?;
                let m = idp.metadata_url.clone();
                (RunningIdp::Samlify(idp), m)
            }
        };
        let mut extra_env = saml_env(&metadata_url)?;
        extra_env.extend(options.extra_env.iter().cloned());
        let stack_options = StackOptions {
            providers: Vec::new(),
            extra_env,
            remove_env: options.remove_env.clone(),
            ..StackOptions::default()
        };
        let env = sidecar_env(&stack_options, 0, "", &url, port, admin_port, &app.url)?;
        let sidecar = Sidecar::start(env, url, admin)?;
        let mut stack = Self { sidecar, app, idp };
        stack.sidecar.wait_ready(options.ready_timeout).await?;
        wait_provider_ready(&stack.admin("/metrics"), options.ready_timeout).await?;
        Ok(stack)
    }

    /// Starts a stack with the pysaml2 IdP and the default options.
    pub async fn start_default() -> Result<Self> {
        Self::start(SamlOptions::default()).await
    }

    /// The pysaml2 IdP (panics when this stack runs the samlify one).
    pub fn idp(&self) -> &SamlIdp {
        match &self.idp {
            RunningIdp::Pysaml2(idp) => idp,
            RunningIdp::Samlify(_) => panic!("this stack runs the samlify IdP"),
        }
    }

    /// URL on the sidecar's public port.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sidecar.url)
    }

    /// URL on the sidecar's admin port.
    pub fn admin(&self, path: &str) -> String {
        format!("{}{path}", self.sidecar.admin_url)
    }

    /// A complete sign-in of `user` through the IdP's form: the ACS's answer.
    pub async fn attempt(&self, user: FixtureUser) -> Result<Answer> {
        SamlFlow::sign_in(&self.sidecar.url, user)
            .await
            .map(|(_, _, answer)| answer)
    }

    /// A sign-in that must succeed: its session.
    pub async fn sign_in(&self, user: FixtureUser) -> Result<Session> {
        let answer = self.attempt(user).await?;
        session_of(&answer).with_context(|| {
            format!(
                "SAML sign-in of {} gave no session: ACS answered {} {}",
                user.login,
                answer.status,
                answer.body.chars().take(400).collect::<String>()
            )
        })
    }

    /// The sidecar's `/metrics` samples.
    pub async fn metrics(&self) -> Result<crate::MetricSamples> {
        let text = crate::http_client()?
            .get(self.admin("/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(crate::parse_metrics(&text))
    }

    /// Every process's logs, for a failure message.
    pub fn logs(&self) -> String {
        let idp = match &self.idp {
            RunningIdp::Pysaml2(i) => i.process.logs.text(),
            RunningIdp::Samlify(i) => i.process.logs.text(),
        };
        format!(
            "{idp}\n{}\n{}",
            self.app.process.logs.text(),
            self.sidecar.process.logs.text()
        )
    }

    /// Waits up to 5 s for the sidecar to log an audit line of a refused SAML sign-in with
    /// `reason`; returns whether it did.
    pub async fn wait_audit(&self, outcome: &str, reason: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if audit_logged(&self.sidecar.process.logs.text(), outcome, reason) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SamlStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- logs of the SAML stack (sidecar {}) ----\n{}\n---- end of logs ----",
                self.sidecar.url,
                self.logs()
            );
        }
    }
}

/// The metric sample that says the SAML IdP metadata is loaded.
pub const PROVIDER_READY: &str = "gatehouse_provider_ready{provider=\"saml\"}";

/// Waits until the sidecar's `/metrics` at `metrics_url` says the SAML provider is ready (its
/// IdP metadata loaded).
pub async fn wait_provider_ready(metrics_url: &str, timeout: Duration) -> Result<()> {
    let http = crate::http_client()?;
    let deadline = Instant::now() + timeout;
    loop {
        let text = match http.get(metrics_url).send().await {
            Ok(res) => res.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        if crate::parse_metrics(&text).get(PROVIDER_READY) == Some(&1.0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the sidecar did not report {PROVIDER_READY} 1 within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many audit lines of SAML sign-ins with `outcome` and `reason` `logs` holds.
pub fn audit_count(logs: &str, outcome: &str, reason: &str) -> usize {
    logs.lines()
        .filter(|l| {
            l.contains("gatehouse::audit")
                && l.contains(&format!("provider=\"{PROVIDER}\""))
                && l.contains(&format!("outcome=\"{outcome}\""))
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .count()
}

/// Whether `logs` hold an audit line of a SAML sign-in with `outcome` and `reason`.
pub fn audit_logged(logs: &str, outcome: &str, reason: &str) -> bool {
    audit_count(logs, outcome, reason) > 0
}

/// Namespace of a [`SamlKubeStack`]'s SsoConfig.
pub const KUBE_NAMESPACE: &str = "team-a";
/// Name of a [`SamlKubeStack`]'s SsoConfig.
pub const KUBE_CONFIG: &str = "portal";

/// The pysaml2 IdP, the sample app, and the sidecar in process with
/// `GATEHOUSE_PROVISIONING=kubernetes` on kube-fake-client's in-memory API (the SsoUser watch
/// is played by the test: the cache is synced once, empty, at start).
pub struct SamlKubeStack {
    pub idp: SamlIdp,
    pub app: SampleApp,
    pub sidecar: gatehouse_sidecar::Sidecar,
    /// SsoUsers of [`KUBE_NAMESPACE`].
    pub users: Api<SsoUser>,
    feeder: UserCacheFeeder,
    url: String,
    env: BTreeMap<String, String>,
    client: kube::Client,
}

impl std::fmt::Debug for SamlKubeStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlKubeStack")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl SamlKubeStack {
    /// Starts everything and waits until the IdP metadata is loaded.
    pub async fn start() -> Result<Self> {
        let app = SampleApp::start()?;
        let port = free_port()?;
        let public = format!("http://127.0.0.1:{port}");
        let idp = SamlIdp::start(&format!("{public}{METADATA_PATH}"))?;
        let mut extra_env = saml_env(&idp.metadata_url)?;
        extra_env.extend(
            [
                ("GATEHOUSE_PROVISIONING", "kubernetes"),
                ("GATEHOUSE_PROVISIONING_MODE", "jit"),
                ("GATEHOUSE_CONFIG", KUBE_CONFIG),
                ("GATEHOUSE_NAMESPACE", KUBE_NAMESPACE),
                ("GATEHOUSE_ATTRIBUTE_MAPPINGS", "department=department"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let options = StackOptions {
            providers: Vec::new(),
            extra_env,
            ..StackOptions::default()
        };
        let env: BTreeMap<String, String> =
            sidecar_env(&options, 0, "", &public, port, 0, &app.url)?
                .into_iter()
                .collect();
        let client = ClientBuilder::new()
            .with_resource::<SsoUser>()
            .with_status_subresource::<SsoUser>()
            .build()
            .await
            .context("building the in-memory API")?;
        let (sidecar, mut feeder) = crate::kube_stack::start_in_process(&env, &client).await?;
        feeder.apply(Ok(watcher::Event::Init));
        feeder.apply(Ok(watcher::Event::InitDone));
        let stack = Self {
            idp,
            app,
            url: format!("http://{}", sidecar.addr()),
            users: Api::namespaced(client.clone(), KUBE_NAMESPACE),
            sidecar,
            feeder,
            env,
            client,
        };
        stack.wait_ready(Duration::from_secs(45)).await?;
        wait_provider_ready(
            &format!("http://{}/metrics", stack.sidecar.admin_addr()),
            Duration::from_secs(45),
        )
        .await?;
        Ok(stack)
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let http = crate::http_client()?;
        let url = format!("http://{}/readyz", self.sidecar.admin_addr());
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match http.get(&url).send().await {
                Ok(res) if res.status().is_success() => return Ok(()),
                Ok(res) => {
                    last = format!("{} {}", res.status(), res.text().await.unwrap_or_default())
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the in-process SAML sidecar was not ready within {timeout:?}: {last}")
    }

    /// The sidecar's public base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every SsoUser of the namespace.
    pub async fn all_users(&self) -> Result<Vec<SsoUser>> {
        Ok(self.users.list(&ListParams::default()).await?.items)
    }

    /// Starts another replica of the sidecar on the same API, with the same cookie key (its
    /// watch not synced yet: call [`crate::kube_stack::Replica::sync`]).
    pub async fn start_replica(&self) -> Result<crate::kube_stack::Replica> {
        crate::kube_stack::start_replica(
            &self.env,
            &self.client,
            &self.users,
            &crate::http_client()?,
        )
        .await
    }

    /// Delivers SsoUser `name`, as the API holds it now, as a watch event.
    pub async fn deliver_current(&mut self, name: &str) -> Result<()> {
        let user = self.users.get(name).await?;
        self.feeder.apply(Ok(watcher::Event::Apply(user)));
        Ok(())
    }

    /// Delivers what a restarted watch would: the namespace's SsoUsers.
    pub async fn sync(&mut self) -> Result<()> {
        let list = self.all_users().await?;
        self.feeder.apply(Ok(watcher::Event::Init));
        for user in list {
            self.feeder.apply(Ok(watcher::Event::InitApply(user)));
        }
        self.feeder.apply(Ok(watcher::Event::InitDone));
        Ok(())
    }
}

/// One attack of the issue and how the contract says the ACS refuses it.
#[derive(Debug, Clone, Copy)]
pub struct AttackCase {
    /// The forge's attack name (`replay`: the genuine response posted twice).
    pub attack: &'static str,
    /// Whose genuine response the attack starts from.
    pub user: FixtureUser,
    /// HTTP status of the refusal.
    pub status: u16,
    /// Audit `reason` and `gatehouse_sign_in_denials_total` label.
    pub reason: &'static str,
    /// Another reason the contract accepts for this case, if any.
    pub or_reason: Option<&'static str>,
    /// Audit `outcome`.
    pub outcome: &'static str,
}

const fn case(
    attack: &'static str,
    user: FixtureUser,
    status: u16,
    reason: &'static str,
    outcome: &'static str,
) -> AttackCase {
    AttackCase {
        attack,
        user,
        status,
        reason,
        or_reason: None,
        outcome,
    }
}

/// A signature-wrapping case: the wrapped document holds two Assertion elements (the signed
/// original and the evil one), so the sidecar may refuse it for the signature or for the
/// assertion count; both refuse before anything is read.
const fn xsw(attack: &'static str) -> AttackCase {
    AttackCase {
        or_reason: Some("saml_assertion_count"),
        ..case(attack, MEMBER, 400, "saml_signature_invalid", "failed")
    }
}

impl AttackCase {
    /// The reasons the contract accepts for this case.
    pub fn reasons(&self) -> Vec<&'static str> {
        std::iter::once(self.reason).chain(self.or_reason).collect()
    }
}

/// Signature wrapping: the evil assertion names the admin; the genuine one the member.
pub const XSW_CASES: &[AttackCase] = &[
    xsw("xsw1"),
    xsw("xsw2"),
    xsw("xsw3"),
    xsw("xsw4"),
    xsw("xsw5"),
    xsw("xsw6"),
    xsw("xsw7"),
    xsw("xsw8"),
];

/// Signatures missing, by the wrong key, or no longer covering what is read.
pub const SIGNATURE_CASES: &[AttackCase] = &[
    case(
        "signature-removed",
        MEMBER,
        400,
        "saml_signature_invalid",
        "failed",
    ),
    case(
        "unknown-key",
        MEMBER,
        400,
        "saml_signature_invalid",
        "failed",
    ),
    case(
        "unsigned-assertion-in-signed-response",
        MEMBER,
        400,
        "saml_signature_invalid",
        "failed",
    ),
];

/// Validly signed by the IdP, but for another SP, another time or with two assertions.
pub const CONDITION_CASES: &[AttackCase] = &[
    case(
        "wrong-audience",
        MEMBER,
        400,
        "saml_audience_mismatch",
        "failed",
    ),
    case(
        "missing-audience",
        MEMBER,
        400,
        "saml_audience_mismatch",
        "failed",
    ),
    case(
        "wrong-recipient",
        MEMBER,
        400,
        "saml_recipient_mismatch",
        "failed",
    ),
    case(
        "wrong-destination",
        MEMBER,
        400,
        "saml_destination_mismatch",
        "failed",
    ),
    case(
        "wrong-issuer",
        MEMBER,
        400,
        "saml_issuer_mismatch",
        "failed",
    ),
    case("expired", MEMBER, 400, "saml_expired", "failed"),
    case("not-yet-valid", MEMBER, 400, "saml_not_yet_valid", "failed"),
    case(
        "two-assertions",
        MEMBER,
        400,
        "saml_assertion_count",
        "failed",
    ),
];

/// Responses that do not answer this browser's request, or answer it a second time.
pub const REQUEST_CASES: &[AttackCase] = &[
    case(
        "in-response-to-mismatch",
        MEMBER,
        400,
        "state_invalid",
        "failed",
    ),
    case("unsolicited", MEMBER, 400, "saml_unsolicited", "failed"),
    // The admin's IdP-initiated response, the attacker's request ID in its unsigned root.
    case(
        "unsolicited-root-in-response-to",
        ADMIN,
        400,
        "saml_unsolicited",
        "failed",
    ),
    case("replay", MEMBER, 400, "state_replayed", "failed"),
    case(
        "replay-new-attempt",
        MEMBER,
        400,
        "state_replayed",
        "failed",
    ),
];

/// Signed by the IdP's own key, with SHA-1: refused unless `SAML_ALLOW_SHA1=true`
/// (`spec.saml.allowSha1`).
pub const ALGORITHM_CASES: &[AttackCase] = &[
    case(
        "sha1-signature",
        MEMBER,
        400,
        "saml_algorithm_refused",
        "failed",
    ),
    case(
        "sha1-digest",
        MEMBER,
        400,
        "saml_algorithm_refused",
        "failed",
    ),
];

/// Refused before any XML is parsed.
pub const XML_CASES: &[AttackCase] = &[
    case("doctype", MEMBER, 400, "saml_doctype_refused", "failed"),
    case("xxe", MEMBER, 400, "saml_doctype_refused", "failed"),
    case(
        "billion-laughs",
        MEMBER,
        400,
        "saml_doctype_refused",
        "failed",
    ),
    case("oversize", MEMBER, 413, "saml_response_too_large", "failed"),
    case(
        "malformed-base64",
        MEMBER,
        400,
        "saml_response_malformed",
        "failed",
    ),
];

/// A verified user the sidecar must not admit.
pub const IDENTITY_CASES: &[AttackCase] = &[
    case(
        "transient-nameid",
        MEMBER,
        403,
        "saml_nameid_transient",
        "denied",
    ),
    case("role-missing", MEMBER, 403, "role_claim_missing", "denied"),
    case("role-unmapped", MEMBER, 403, "role_not_mapped", "denied"),
];

/// The forge's controls: genuine responses in every signing shape the contract accepts.
pub const CONTROLS: &[&str] = &["genuine", "assertion-signed-only", "response-signed-only"];

/// Every refusal case, in the order the tests run them.
pub fn all_attack_cases() -> Vec<AttackCase> {
    [
        XSW_CASES,
        SIGNATURE_CASES,
        CONDITION_CASES,
        REQUEST_CASES,
        ALGORITHM_CASES,
        XML_CASES,
        IDENTITY_CASES,
    ]
    .concat()
}

/// One performed attack: what the ACS answered to the forged (or replayed) response.
#[derive(Debug)]
pub struct AttackRun {
    pub answer: Answer,
    /// The browser that posted it.
    pub flow: SamlFlow,
}

/// Performs `attack` against the sidecar at `sidecar_url` with a fresh browser: signs
/// `user` in at the fixture IdP, forges from the genuine response, posts the result to the
/// ACS. `replay` posts the genuine response twice (the first must be accepted);
/// `replay-new-attempt` posts a genuine response (accepted), then its IDs re-signed for a fresh
/// attempt. Any other name is one of the forge's attacks or controls.
pub async fn run_attack(
    sidecar_url: &str,
    idp: &SamlIdp,
    attack: &str,
    user: FixtureUser,
) -> Result<AttackRun> {
    let flow = SamlFlow::start(sidecar_url, Some("/dashboard")).await?;
    let genuine = flow.authenticate(user.login, PASSWORD).await?;
    let relay = genuine.relay_state.as_deref();
    match attack {
        "replay" => {
            // The attacker captured the whole POST: the response and the attempt cookie.
            let captured = flow.cookies();
            let first = flow.post(&genuine.saml_response, relay).await?;
            if session_of(&first).is_none() {
                bail!(
                    "replay: the genuine response was not accepted the first time: {} {}",
                    first.status,
                    first.body.chars().take(300).collect::<String>()
                );
            }
            let answer = flow
                .post_with_cookies(&captured, &genuine.saml_response, relay)
                .await?;
            Ok(AttackRun { answer, flow })
        }
        "replay-new-attempt" => {
            let first = flow.post(&genuine.saml_response, relay).await?;
            if session_of(&first).is_none() {
                bail!(
                    "replay-new-attempt: the genuine response was not accepted: {} {}",
                    first.status,
                    first.body.chars().take(300).collect::<String>()
                );
            }
            // A fresh attempt: its request ID, read from the IdP's answer (not posted).
            let second = SamlFlow::start(sidecar_url, Some("/dashboard")).await?;
            let fresh = second.authenticate(user.login, PASSWORD).await?;
            let options = ForgeOptions {
                in_response_to: Some(in_response_to(&fresh.saml_response)?),
                canary_url: None,
            };
            let forged = forge(idp, attack, &genuine.saml_response, &options)?;
            let answer = second.post(&forged, fresh.relay_state.as_deref()).await?;
            Ok(AttackRun {
                answer,
                flow: second,
            })
        }
        _ => {
            let options = ForgeOptions {
                in_response_to: None,
                canary_url: Some(idp.canary_url(attack)),
            };
            let forged = forge(idp, attack, &genuine.saml_response, &options)?;
            let answer = if attack == "oversize" {
                // Refused by its length before the sidecar reads it all.
                flow.post_refused_early(&forged, relay).await?
            } else {
                flow.post(&forged, relay).await?
            };
            Ok(AttackRun { answer, flow })
        }
    }
}

/// What Chromium saw through a SAML sign-in (tests/fixtures/saml-idp2/browser-saml.mjs).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SamlBrowserOutcome {
    /// The page the app's URL led to first (the login page).
    pub login_url: String,
    /// Labels of the SAML sign-in buttons on that page.
    pub buttons: Vec<String>,
    pub final_url: String,
    /// Status of the last non-redirect document response.
    pub status: Option<u16>,
    pub title: String,
    pub text: String,
    /// Identity table of the sample app (header → value).
    pub identity: BTreeMap<String, String>,
    /// Every main-frame navigation: `METHOD STATUS URL`.
    pub navigations: Vec<String>,
    /// Where `/api/auth/logout` led, when asked for.
    pub logout: Option<SamlBrowserLogout>,
}

/// What Chromium saw after visiting `/api/auth/logout`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SamlBrowserLogout {
    /// Navigations after the visit: `METHOD STATUS URL`.
    pub urls: Vec<String>,
    pub final_url: String,
    pub status: Option<u16>,
    pub text: String,
}

/// Opens `url` in a fresh Chromium profile, clicks the SAML button, signs in as `user` at the
/// fixture IdP's form and lets its HTTP-POST form reach the ACS; with `logout`, then visits
/// `/api/auth/logout`. Blocking: call it from `spawn_blocking`.
pub fn browser_sign_in(url: &str, user: FixtureUser, logout: bool) -> Result<SamlBrowserOutcome> {
    crate::browser::run_driver(
        &fixtures_dir().join("saml-idp2"),
        "browser-saml.mjs",
        &format!("saml-{}", user.login),
        |cmd| {
            cmd.args(["--url", url, "--user", user.login, "--password", PASSWORD]);
            if logout {
                cmd.arg("--logout");
            }
        },
    )
}
