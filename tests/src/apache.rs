//! Apache httpd with mod_auth_openidc: the benchmark's authenticating peer, the most widely
//! deployed certified OpenID Connect relying party, in front of the same app as the sidecar.
//!
//! The configuration is written here (never `/etc`): the event MPM with one child process, the
//! modules it needs loaded explicitly, encrypted-cookie sessions (`OIDCSessionType
//! client-cookie`), the fixture IdP's discovery document, the claims passed to the app as
//! `OIDC_CLAIM_*` headers, and a keep-alive reverse proxy to the app. Apache runs in the
//! foreground (`-DFOREGROUND`) and is stopped with SIGTERM, which also ends its child.

use std::{
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use reqwest::header::{ACCEPT, COOKIE};

use crate::{SeenRequest, process::ChildProcess};

/// The header carrying the `email` claim to the app (`OIDCPassClaimsAs headers`).
pub const EMAIL_HEADER: &str = "oidc_claim_email";
/// Path segment of the callback, as the fixture IdP registers it for every relying party.
const CALLBACK_PATH: &str = "/api/auth/oauth2/callback/okta";

/// Modules loaded, by (module name, file in [`ApacheConfig::modules`]).
const MODULES: [(&str, &str); 7] = [
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
    ("auth_openidc_module", "mod_auth_openidc.so"),
];

/// What the Apache peer is configured with.
#[derive(Debug, Clone)]
pub struct ApacheConfig {
    /// Directory for the configuration, pid file and runtime files (created; removed on drop).
    pub dir: PathBuf,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// The OpenID Connect issuer (its `/.well-known/openid-configuration` is read).
    pub issuer: String,
    /// Client registered at the issuer.
    pub client_id: String,
    /// Its secret (written only to the configuration file, mode 0600).
    pub client_secret: String,
    /// Key material for the encrypted session and state cookies.
    pub passphrase: String,
    /// The app, `http://host:port`.
    pub upstream: String,
    /// Whether to name an unprivileged `User`/`Group` (Apache started as root).
    pub as_root: bool,
    /// Directory of Apache's modules (Debian: `/usr/lib/apache2/modules`).
    pub modules: PathBuf,
}

impl ApacheConfig {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The redirect URI registered at the IdP.
    pub fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.url())
    }

    /// The httpd.conf.
    pub fn render(&self) -> String {
        let dir = self.dir.display();
        let mut conf = String::new();
        let mut line = |l: &str| {
            conf.push_str(l);
            conf.push('\n');
        };
        line(&format!("ServerRoot {dir}"));
        line(&format!("DefaultRuntimeDir {dir}"));
        line(&format!("PidFile {dir}/httpd.pid"));
        line(&format!("Listen 127.0.0.1:{}", self.port));
        line("ServerName 127.0.0.1");
        line("ErrorLog /dev/stderr");
        // mod_auth_openidc warns at every start that plain-http URLs should be https.
        line("LogLevel warn auth_openidc:error");
        for (name, file) in MODULES {
            line(&format!(
                "LoadModule {name} {}",
                self.modules.join(file).display()
            ));
        }
        if self.as_root {
            line("User www-data");
            line("Group www-data");
        }
        // One child process (threads inside it), as nginx runs one worker process.
        line("StartServers 1");
        line("ServerLimit 1");
        line("ThreadLimit 64");
        line("ThreadsPerChild 64");
        line("MaxRequestWorkers 64");
        line("MinSpareThreads 1");
        line("MaxSpareThreads 64");
        line("MaxConnectionsPerChild 0");
        // Client keep-alive without a request limit (wrk keeps its connections).
        line("KeepAlive On");
        line("MaxKeepAliveRequests 0");
        line(&format!(
            "OIDCProviderMetadataURL {}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        ));
        line(&format!("OIDCClientID {}", self.client_id));
        line(&format!("OIDCClientSecret {}", self.client_secret));
        line(&format!("OIDCRedirectURI {}", self.redirect_uri()));
        line(&format!("OIDCCryptoPassphrase {}", self.passphrase));
        line("OIDCSessionType client-cookie");
        // The session must outlive a whole benchmark run without being re-issued.
        line("OIDCSessionInactivityTimeout 86400");
        line("OIDCSessionMaxDuration 86400");
        line("OIDCScope \"openid email profile\"");
        line("OIDCPKCEMethod S256");
        line("OIDCProviderTokenEndpointAuth client_secret_basic");
        line("OIDCPassClaimsAs headers");
        line("<Location />");
        line("  AuthType openid-connect");
        line("  Require valid-user");
        line("</Location>");
        // mod_proxy keeps the connections to the app open and reuses them.
        line(&format!(
            "ProxyPass / {}/",
            self.upstream.trim_end_matches('/')
        ));
        conf
    }
}

/// A running Apache peer; stopped (SIGTERM, then SIGKILL) and its directory removed on drop.
#[derive(Debug)]
pub struct Apache {
    pub process: ChildProcess,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    dir: PathBuf,
}

impl Apache {
    /// Writes the configuration and starts `binary` with it; waits until it listens.
    pub fn start(binary: &Path, config: &ApacheConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.dir)
            .with_context(|| format!("creating {}", config.dir.display()))?;
        let conf_path = config.dir.join("httpd.conf");
        let _ = std::fs::remove_file(&conf_path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&conf_path)
            .and_then(|mut f| f.write_all(config.render().as_bytes()))
            .with_context(|| format!("writing {}", conf_path.display()))?;
        let mut cmd = Command::new(binary);
        cmd.arg("-f").arg(&conf_path).arg("-DFOREGROUND");
        let (process, _) = ChildProcess::spawn("apache", cmd, None)?;
        let mut apache = Self {
            process,
            url: config.url(),
            dir: config.dir.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = apache.process.exited() {
                std::thread::sleep(Duration::from_millis(200));
                bail!(
                    "apache exited ({status}) before listening; its output:\n{}",
                    apache.process.logs.text()
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", config.port)).is_ok() {
                return Ok(apache);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        apache.stop();
        bail!(
            "apache did not listen on 127.0.0.1:{} within 10 s; its output:\n{}",
            config.port,
            apache.process.logs.text()
        )
    }

    /// The parent process (its one child does the work).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Checks that Apache authenticates, so that a benchmark cannot measure a peer serving
    /// requests without a session: without a cookie a browser is redirected to the IdP and an
    /// API client is refused; with `cookie` the app is reached and sees the signed-in user's
    /// `email` claim (`expected_email`) in [`EMAIL_HEADER`].
    pub async fn check_authenticates(
        &self,
        issuer: &str,
        cookie: &str,
        expected_email: &str,
    ) -> Result<()> {
        let client = crate::http_client()?;
        let url = format!("{}/", self.url);
        let browser = client.get(&url).header(ACCEPT, "text/html").send().await?;
        let location = browser
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !browser.status().is_redirection() || !location.starts_with(issuer) {
            bail!(
                "apache let a browser without a session through: {} (Location {location:?})",
                browser.status()
            );
        }
        let api = client.get(&url).header(ACCEPT, "text/plain").send().await?;
        if api.status().is_success() {
            bail!(
                "apache answered an API client without a session with {}",
                api.status()
            );
        }
        let signed_in = client
            .get(&url)
            .header(ACCEPT, "application/json")
            .header(COOKIE, cookie)
            .send()
            .await?;
        let status = signed_in.status();
        if !status.is_success() {
            bail!("apache refused the signed-in session: {status}");
        }
        let seen: SeenRequest = signed_in
            .json()
            .await
            .context("the app's echo through apache")?;
        match seen.header(EMAIL_HEADER) {
            Some(email) if email == expected_email => Ok(()),
            other => {
                bail!("through apache the app saw {EMAIL_HEADER} {other:?}, not {expected_email:?}")
            }
        }
    }

    /// SIGTERM (Apache then stops its child), SIGKILL if it has not exited within 5 s.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        if self.process.wait_exit(Duration::from_secs(5)).is_none() {
            self.process.kill();
        }
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ApacheConfig {
        ApacheConfig {
            dir: PathBuf::from("/tmp/apache-test"),
            port: 18080,
            issuer: "http://127.0.0.1:9000/okta/".to_owned(),
            client_id: "client".to_owned(),
            client_secret: "secret".to_owned(),
            passphrase: "passphrase".to_owned(),
            upstream: "http://127.0.0.1:9001".to_owned(),
            as_root: false,
            modules: PathBuf::from("/usr/lib/apache2/modules"),
        }
    }

    #[test]
    fn the_configuration_authenticates_every_path_with_cookie_sessions() {
        let conf = config().render();
        for expected in [
            "OIDCSessionType client-cookie",
            "OIDCProviderMetadataURL http://127.0.0.1:9000/okta/.well-known/openid-configuration",
            "OIDCRedirectURI http://127.0.0.1:18080/api/auth/oauth2/callback/okta",
            "<Location />\n  AuthType openid-connect\n  Require valid-user\n</Location>",
            "ProxyPass / http://127.0.0.1:9001/",
            "LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so",
            "ServerLimit 1",
        ] {
            assert!(conf.contains(expected), "missing {expected:?} in\n{conf}");
        }
        assert!(!conf.contains("User "), "no user switch when not root");
        assert!(config().render().contains("/tmp/apache-test/httpd.pid"));
        let root = ApacheConfig {
            as_root: true,
            ..config()
        };
        assert!(root.render().contains("User www-data\nGroup www-data"));
    }
}
