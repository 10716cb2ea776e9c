//! The real sign-in flow over HTTP: sidecar start route → IdP form → sidecar callback.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use reqwest::{
    StatusCode, Url,
    cookie::{CookieStore, Jar},
    header::{HeaderMap, LOCATION, SET_COOKIE},
};

use crate::stack::{
    ProviderKind, REFRESH_COOKIE, REFRESH_COOKIE_HOST, SESSION_COOKIE, SESSION_COOKIE_HOST, Stack,
};

/// A signed-in session: the sidecar's session cookie and, when the sign-in set one beside it, its
/// refresh cookie (the IdP's sealed refresh token, for re-validation). A browser sends both back.
#[derive(Debug, Clone)]
pub struct Session {
    /// Name of the session cookie.
    pub cookie_name: String,
    /// Value of the session cookie (empty once a response deleted it).
    pub cookie_value: String,
    /// The refresh cookie as `(name, value)`, if the sidecar set one.
    pub refresh: Option<(String, String)>,
}

impl Session {
    /// A session of the session cookie `name=value` alone (no refresh cookie).
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            cookie_name: name.into(),
            cookie_value: value.into(),
            refresh: None,
        }
    }

    /// `name=value` of every cookie it carries, session cookie first, for a `Cookie` header.
    pub fn cookie_header(&self) -> String {
        let session = (!self.cookie_value.is_empty())
            .then(|| format!("{}={}", self.cookie_name, self.cookie_value));
        let refresh = self
            .refresh
            .as_ref()
            .map(|(name, value)| format!("{name}={value}"));
        session
            .into_iter()
            .chain(refresh)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The refresh cookie's value, if it carries one.
    pub fn refresh_value(&self) -> Option<&str> {
        self.refresh.as_ref().map(|(_, value)| value.as_str())
    }

    /// The same session without its refresh cookie, as a browser that kept only the session
    /// cookie sends it (nothing can re-validate it).
    pub fn without_refresh(&self) -> Self {
        Self {
            refresh: None,
            ..self.clone()
        }
    }

    /// Applies a response's `Set-Cookie` headers as a browser would, to the cookies a session
    /// carries (the session and the refresh cookie, either spelling; others are ignored): a new
    /// value replaces the old one, a deleted cookie (empty value or `Max-Age` ≤ 0) is dropped. A
    /// deleted session cookie leaves [`Session::cookie_value`] empty, and
    /// [`Session::cookie_header`] then leaves it out. Returns the names of the cookies that
    /// changed, in header order.
    pub fn apply_set_cookies(&mut self, headers: &HeaderMap) -> Vec<String> {
        let mut changed = Vec::new();
        for line in headers.get_all(SET_COOKIE) {
            let Some(cookie) = line.to_str().ok().and_then(SetCookie::parse) else {
                continue;
            };
            if cookie.is_session() {
                let value = if cookie.deleted { "" } else { cookie.value };
                if self.cookie_name != cookie.name || self.cookie_value != value {
                    self.cookie_name = cookie.name.to_owned();
                    self.cookie_value = value.to_owned();
                    changed.push(cookie.name.to_owned());
                }
            } else if cookie.is_refresh() {
                let new =
                    (!cookie.deleted).then(|| (cookie.name.to_owned(), cookie.value.to_owned()));
                if self.refresh != new {
                    self.refresh = new;
                    changed.push(cookie.name.to_owned());
                }
            }
        }
        changed
    }
}

/// One `Set-Cookie` header, as far as a [`Session`] cares.
struct SetCookie<'a> {
    name: &'a str,
    value: &'a str,
    /// Empty value, or `Max-Age` zero or less: the browser drops the cookie.
    deleted: bool,
}

impl<'a> SetCookie<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let mut parts = line.split(';');
        let (name, value) = parts.next()?.trim().split_once('=')?;
        let expired = parts.any(|attribute| {
            attribute.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("max-age")
                    && v.trim().parse::<i64>().is_ok_and(|age| age <= 0)
            })
        });
        Some(Self {
            name: name.trim(),
            value: value.trim(),
            deleted: expired || value.trim().is_empty(),
        })
    }

    fn is_session(&self) -> bool {
        self.name == SESSION_COOKIE || self.name == SESSION_COOKIE_HOST
    }

    fn is_refresh(&self) -> bool {
        self.name == REFRESH_COOKIE || self.name == REFRESH_COOKIE_HOST
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

/// Finds a session cookie with a non-empty value among `Set-Cookie` headers, with the refresh
/// cookie set beside it (if any).
pub fn session_from_headers(headers: &HeaderMap) -> Option<Session> {
    let set = || {
        headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().and_then(SetCookie::parse))
            .filter(|c| !c.deleted)
    };
    let session = set().find(SetCookie::is_session)?;
    let refresh = set()
        .find(SetCookie::is_refresh)
        .map(|c| (c.name.to_owned(), c.value.to_owned()));
    Some(Session {
        refresh,
        ..Session::new(session.name, session.value)
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

    /// The same sign-in, returning from the IdP to `public_url` (`http://host:port`): for a
    /// sidecar that listens elsewhere than its public URL (the benchmark's twin sidecar), so that
    /// [`LoginFlow::authenticate`] stops at the callback there instead of visiting it; the caller
    /// delivers it to that sidecar.
    pub fn returning_to(mut self, public_url: &str) -> Result<Self> {
        self.sidecar = Url::parse(public_url)?;
        Ok(self)
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
