//! The fixture identity providers (tests/fixtures/idp/idp.mjs): one node process, five issuers
//! (Okta-, Entra- and Auth0-shaped, and two more generic ones).

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::process::{ChildProcess, idp_dir};

/// Password of every fixture account.
pub const PASSWORD: &str = "gatehouse-demo";
/// Client id registered at every fixture issuer.
pub const CLIENT_ID: &str = "gatehouse-test";
/// Path segment (and `OIDC_PROVIDER_ID`) of the generic provider.
pub const OIDC_ID: &str = "auth0";
/// Path segments (and provider ids) of the fixture's further generic issuers: same accounts and
/// `sub`s as [`OIDC_ID`]'s, their own keys.
pub const EXTRA_OIDC_IDS: &[&str] = &["partner", "contractors"];
/// Entra tenant of the fixture.
pub const TENANT: &str = "0c9e2b71-4a3d-4f6e-9b8a-2d7c5e1f3a90";

/// Ways the fixture can corrupt the next ID token it issues (see idp.mjs).
pub const TAMPER_MODES: &[&str] = &[
    "flip-signature",
    "alg-none",
    "hs256-public-key",
    "wrong-iss",
    "wrong-aud",
    "extra-aud",
    "expired",
    "iat-future",
    "wrong-nonce",
    "no-nonce",
    "no-sub",
    "unknown-kid",
];

#[derive(Debug, Deserialize)]
struct Announce {
    port: u16,
    okta: IssuerInfo,
    entra: EntraInfo,
    oidc: OidcInfo,
    #[serde(rename = "extraOidc")]
    extra_oidc: Vec<OidcInfo>,
    admin: String,
}

#[derive(Debug, Deserialize)]
struct IssuerInfo {
    issuer: String,
}

#[derive(Debug, Deserialize)]
struct EntraInfo {
    issuer: String,
    tenant: String,
}

#[derive(Debug, Deserialize)]
struct OidcInfo {
    id: String,
    issuer: String,
}

/// A running fixture IdP.
#[derive(Debug)]
pub struct Idp {
    pub process: ChildProcess,
    pub port: u16,
    pub okta_issuer: String,
    pub entra_issuer: String,
    pub entra_tenant: String,
    pub oidc_id: String,
    pub oidc_issuer: String,
    /// The further generic issuers: (id, issuer), in [`EXTRA_OIDC_IDS`]' order.
    pub extra_oidc: Vec<(String, String)>,
    pub client_id: String,
    pub client_secret: String,
    admin: String,
}

/// Checks that `npm ci` has been run for the fixture, with a clear message if not.
pub fn ensure_node_modules(dir: &Path) -> Result<()> {
    if !dir
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        bail!(
            "the fixture IdP's node modules are missing: run `cargo xtask setup` \
             (or `npm ci --prefix {}`)",
            dir.display()
        );
    }
    Ok(())
}

impl Idp {
    /// Starts the IdP on `port` (0 = any free port), registering the clients' redirect URIs for
    /// every sidecar base URL in `public_urls`.
    pub fn start(public_urls: &[String], client_secret: &str, port: u16) -> Result<Self> {
        let dir = idp_dir();
        ensure_node_modules(&dir)?;
        let mut cmd = Command::new(node_binary());
        cmd.current_dir(&dir)
            .arg("idp.mjs")
            .arg("--port")
            .arg(port.to_string())
            .arg("--client-id")
            .arg(CLIENT_ID)
            .arg("--oidc-id")
            .arg(OIDC_ID)
            .arg("--tenant")
            .arg(TENANT)
            .env("IDP_EXTRA_OIDC_IDS", EXTRA_OIDC_IDS.join(","))
            .env("IDP_CLIENT_SECRET", client_secret)
            .env("IDP_EXIT_ON_STDIN_CLOSE", "1");
        for url in public_urls {
            cmd.arg("--public-url").arg(url);
        }
        let (process, line) = ChildProcess::spawn("idp", cmd, Some(Duration::from_secs(30)))?;
        let line = line.context("idp announcement")?;
        let a: Announce = serde_json::from_str(&line)
            .with_context(|| format!("parsing the IdP's announcement {line:?}"))?;
        Ok(Self {
            process,
            port: a.port,
            okta_issuer: a.okta.issuer,
            entra_issuer: a.entra.issuer,
            entra_tenant: a.entra.tenant,
            oidc_id: a.oidc.id,
            oidc_issuer: a.oidc.issuer,
            extra_oidc: a.extra_oidc.into_iter().map(|o| (o.id, o.issuer)).collect(),
            client_id: CLIENT_ID.to_owned(),
            client_secret: client_secret.to_owned(),
            admin: a.admin,
        })
    }

    async fn admin_post(&self, path: &str, query: &[(&str, &str)]) -> Result<serde_json::Value> {
        self.admin_post_json(path, query, &serde_json::json!({}))
            .await
    }

    async fn admin_post_json(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let url = format!("{}/{path}", self.admin);
        let res = crate::http_client()?
            .post(&url)
            .query(query)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await?;
        if !status.is_success() {
            bail!("IdP admin {path} failed: {status} {body}");
        }
        Ok(body)
    }

    /// Makes the next ID token issued by `provider` (`okta`, `entra` or `oidc`) corrupt.
    pub async fn tamper_next_token(&self, provider: &str, mode: &str) -> Result<()> {
        self.admin_post("tamper", &[("provider", provider), ("mode", mode)])
            .await
            .map(drop)
    }

    /// Changes the claims of fixture account `login` at `provider` (`okta`, `entra` or `oidc`):
    /// `changes` is merged in, a null value removes a claim. Applies to the next sign-in.
    pub async fn set_claims(
        &self,
        provider: &str,
        login: &str,
        changes: &serde_json::Value,
    ) -> Result<()> {
        self.admin_post_json(
            "claims",
            &[("provider", provider), ("login", login)],
            changes,
        )
        .await
        .map(drop)
    }

    /// Makes the ID tokens of account `login` at `provider` leave out `claims` (UserInfo still
    /// releases them). Applies to the next sign-in.
    pub async fn set_userinfo_only(
        &self,
        provider: &str,
        login: &str,
        claims: &[&str],
    ) -> Result<()> {
        self.admin_post_json(
            "userinfo-only",
            &[("provider", provider), ("login", login)],
            &serde_json::json!(claims),
        )
        .await
        .map(drop)
    }

    /// Switches fixture account `login` at `provider` off (`disabled`) or back on: a disabled
    /// account cannot sign in, and its refresh tokens answer `invalid_grant`.
    pub async fn set_disabled(&self, provider: &str, login: &str, disabled: bool) -> Result<()> {
        let action = if disabled { "disable" } else { "enable" };
        self.admin_post(action, &[("provider", provider), ("login", login)])
            .await
            .map(drop)
    }

    /// Revokes every grant fixture account `login` gave at `provider` (an admin revoking the
    /// app's access); returns how many there were. Its refresh tokens then answer
    /// `invalid_grant`.
    pub async fn revoke_grants(&self, provider: &str, login: &str) -> Result<u64> {
        let body = self
            .admin_post("revoke-grants", &[("provider", provider), ("login", login)])
            .await?;
        body["revoked"]
            .as_u64()
            .context("revoke-grants answer without a count")
    }

    /// Makes `provider` answer authorization requests that ask for `offline_access` with
    /// `invalid_scope` (`refuse`), as Okta does for an app without the refresh-token grant.
    pub async fn set_refuse_offline_access(&self, provider: &str, refuse: bool) -> Result<()> {
        let on = if refuse { "true" } else { "false" };
        self.admin_post("refuse-offline", &[("provider", provider), ("on", on)])
            .await
            .map(drop)
    }

    /// Makes every refresh of `provider` rotate the refresh token with no reuse interval: a second
    /// use of a consumed token answers `invalid_grant` and revokes the grant.
    pub async fn set_refresh_rotation(&self, provider: &str, rotate: bool) -> Result<()> {
        let on = if rotate { "true" } else { "false" };
        self.admin_post("rotate-refresh", &[("provider", provider), ("on", on)])
            .await
            .map(drop)
    }

    /// Makes `provider`'s token endpoint answer 503 (`down`) or work again.
    pub async fn set_token_outage(&self, provider: &str, down: bool) -> Result<()> {
        let on = if down { "true" } else { "false" };
        self.admin_post("outage", &[("provider", provider), ("on", on)])
            .await
            .map(drop)
    }

    /// Makes `provider`'s token endpoint answer `delay` late (zero: at once).
    pub async fn set_token_delay(&self, provider: &str, delay: std::time::Duration) -> Result<()> {
        let ms = delay.as_millis().to_string();
        self.admin_post("token-delay", &[("provider", provider), ("ms", &ms)])
            .await
            .map(drop)
    }

    /// Replaces `provider`'s signing key; returns the new key id.
    pub async fn rotate_key(&self, provider: &str) -> Result<String> {
        let body = self.admin_post("rotate", &[("provider", provider)]).await?;
        body["kid"]
            .as_str()
            .map(str::to_owned)
            .context("rotate answer without kid")
    }
}

/// The node executable (`$NODE` or `node` on PATH).
pub fn node_binary() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "node".to_owned())
}
