//! The real sign-in flow over HTTP: sidecar start route → IdP form → sidecar callback.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use reqwest::{
    StatusCode, Url,
    cookie::{CookieStore, Jar},
    header::{HeaderMap, LOCATION, SET_COOKIE},
};

use crate::stack::{ProviderKind, SESSION_COOKIE, SESSION_COOKIE_HOST, Stack};

/// A signed-in session: the sidecar's session cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie_name: String,
    pub cookie_value: String,
}

impl Session {
    /// `name=value`, for a `Cookie` header.
    pub fn cookie_header(&self) -> String {
        format!("{}={}", self.cookie_name, self.cookie_value)
    }
}

/// One HTTP answer, fully read.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    async fn read(res: reqwest::Response) -> Result<Self> {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    /// The `Location` header, if any.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The sidecar session cookie this answer sets (non-empty value), if any.
    pub fn session_cookie(&self) -> Option<Session> {
        session_from_headers(&self.headers)
    }

    /// All `Set-Cookie` values.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

/// Finds a session cookie with a non-empty value among `Set-Cookie` headers.
pub fn session_from_headers(headers: &HeaderMap) -> Option<Session> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let s = v.to_str().ok()?;
        let pair = s.split(';').next()?.trim();
        let (name, value) = pair.split_once('=')?;
        let deleted = s.to_ascii_lowercase().contains("max-age=0");
        ((name == SESSION_COOKIE || name == SESSION_COOKIE_HOST) && !value.is_empty() && !deleted)
            .then(|| Session {
                cookie_name: name.to_owned(),
                cookie_value: value.to_owned(),
            })
    })
}

/// What happened at the callback of one sign-in attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The callback URL the IdP sent the browser to (code, state, iss).
    pub callback_url: Url,
    /// The `Cookie` header the browser sent with the callback (state cookie included).
    pub callback_cookies: String,
    /// The sidecar's answer to the callback.
    pub callback: Answer,
    /// The session it set, if any.
    pub session: Option<Session>,
}

/// A sign-in in progress, with its own cookie jar (a fresh browser).
#[derive(Debug)]
pub struct LoginFlow {
    client: reqwest::Client,
    jar: Arc<Jar>,
    /// The relying party (normally the sidecar) the sign-in returns to.
    sidecar: Url,
    /// Where the sidecar's start route sent us (the IdP's authorization URL).
    pub authorize_url: Url,
}

impl LoginFlow {
    /// `GET /api/auth/oauth2/start/{provider}?rd=…` on the sidecar; expects a redirect to the IdP.
    pub async fn start(stack: &Stack, provider: ProviderKind, rd: Option<&str>) -> Result<Self> {
        Self::start_at(&stack.sidecar.url, provider, rd).await
    }

    /// [`LoginFlow::start`] against the sidecar at `sidecar_url` (`http://host:port`).
    pub async fn start_at(
        sidecar_url: &str,
        provider: ProviderKind,
        rd: Option<&str>,
    ) -> Result<Self> {
        let jar = Arc::new(Jar::default());
        let client = crate::client_builder()
            .cookie_provider(jar.clone())
            .build()?;
        let sidecar = Url::parse(sidecar_url)?;
        let mut start = sidecar.join(&format!("/api/auth/oauth2/start/{}", provider.segment()))?;
        if let Some(rd) = rd {
            start.query_pairs_mut().append_pair("rd", rd);
        }
        let res = client.get(start.clone()).send().await?;
        let answer = Answer::read(res).await?;
        if !answer.status.is_redirection() {
            bail!(
                "GET {start} should redirect to the IdP, got {} {}",
                answer.status,
                answer.body.chars().take(300).collect::<String>()
            );
        }
        let authorize_url = start.join(
            answer
                .location()
                .context("start redirect without Location")?,
        )?;
        Ok(Self {
            client,
            jar,
            sidecar,
            authorize_url,
        })
    }

    /// Starts sign-in at another relying party (the benchmark's Apache peer): `GET protected`
    /// as a browser would, which must redirect to the IdP; that relying party's redirect URI is
    /// under `/api/auth/oauth2/callback/` at the same origin, as the sidecar's is.
    pub async fn start_protected(protected: &str) -> Result<Self> {
        let jar = Arc::new(Jar::default());
        let client = crate::client_builder()
            .cookie_provider(jar.clone())
            .build()?;
        let url = Url::parse(protected)?;
        let res = client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "text/html")
            .send()
            .await?;
        let answer = Answer::read(res).await?;
        if !answer.status.is_redirection() {
            bail!(
                "GET {url} without a session should redirect to the IdP, got {} {}",
                answer.status,
                answer.body.chars().take(300).collect::<String>()
            );
        }
        let authorize_url = url.join(answer.location().context("redirect without Location")?)?;
        Ok(Self {
            client,
            jar,
            sidecar: url,
            authorize_url,
        })
    }

    /// Follows the IdP's redirects and submits its login form; returns the callback URL the IdP
    /// redirects to (not yet visited).
    pub async fn authenticate(&self, user: &str, password: &str) -> Result<Url> {
        let mut url = self.authorize_url.clone();
        for _ in 0..12 {
            if self.is_callback(&url) {
                return Ok(url);
            }
            let answer = Answer::read(self.client.get(url.clone()).send().await?).await?;
            if answer.status.is_redirection() {
                url = url.join(answer.location().context("redirect without Location")?)?;
                continue;
            }
            if answer.status == StatusCode::OK && answer.body.contains("name=\"password\"") {
                let action = form_action(&answer.body).context("login form without action")?;
                let post = url.join(&action)?;
                let res = self
                    .client
                    .post(post.clone())
                    .form(&[("login", user), ("password", password)])
                    .send()
                    .await?;
                let answer = Answer::read(res).await?;
                if !answer.status.is_redirection() {
                    bail!(
                        "the IdP refused {user}: {} {}",
                        answer.status,
                        answer.body.chars().take(300).collect::<String>()
                    );
                }
                url = post.join(answer.location().context("redirect without Location")?)?;
                continue;
            }
            bail!(
                "unexpected IdP answer at {url}: {} {}",
                answer.status,
                answer.body.chars().take(500).collect::<String>()
            );
        }
        bail!("too many redirects at the IdP")
    }

    fn is_callback(&self, url: &Url) -> bool {
        url.origin() == self.sidecar.origin()
            && url.path().starts_with("/api/auth/oauth2/callback/")
    }

    /// The `Cookie` header this browser would send to `url`.
    pub fn cookies_for(&self, url: &Url) -> String {
        self.jar
            .cookies(url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Visits `url` (normally the callback) with this browser's cookies; no redirects followed.
    pub async fn visit(&self, url: &Url) -> Result<Answer> {
        Answer::read(self.client.get(url.clone()).send().await?).await
    }

    /// Authenticates at the IdP and visits the callback.
    pub async fn complete(self, user: &str, password: &str) -> Result<Attempt> {
        let callback_url = self.authenticate(user, password).await?;
        self.finish(callback_url).await
    }

    /// Logs this browser out at the IdP: its `end_session_endpoint` (`<issuer>/session/end`),
    /// then "Yes, sign me out" on its confirmation page. The IdP sends its back-channel logout
    /// before it answers.
    pub async fn sign_out_at_idp(&self, issuer: &str) -> Result<Answer> {
        let end = Url::parse(&format!("{issuer}/session/end"))?;
        let page = self.visit(&end).await?;
        if page.status != StatusCode::OK {
            bail!(
                "the IdP's logout page answered {} {}",
                page.status,
                page.body.chars().take(300).collect::<String>()
            );
        }
        let action = form_action(&page.body).context("logout page without a form")?;
        let xsrf = input_value(&page.body, "xsrf").context("logout form without xsrf")?;
        let res = self
            .client
            .post(end.join(&action)?)
            .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
            .send()
            .await?;
        Answer::read(res).await
    }

    /// Visits `callback_url` and records the outcome.
    pub async fn finish(&self, callback_url: Url) -> Result<Attempt> {
        let callback_cookies = self.cookies_for(&callback_url);
        let callback = self.visit(&callback_url).await?;
        let session = callback.session_cookie();
        Ok(Attempt {
            callback_url,
            callback_cookies,
            callback,
            session,
        })
    }
}

/// The `value` of the input called `name` in `html`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let start = tag.find("value=\"")? + "value=\"".len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

/// The `action` of the first form in `html`, HTML entities for `&` undone.
pub fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = form[start..].find('"')? + start;
    Some(form[start..end].replace("&amp;", "&"))
}
