//! The sidecar's HTML: the login page, the access-denied page, and error pages. Plain, accessible
//! HTML and CSS, no JavaScript; every dynamic value is escaped; every message is chosen from a fixed
//! table by reason code, so nothing a client or IdP sends is ever reflected verbatim.

use std::fmt::Write;

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Query-string encoding of one value.
pub fn encode_query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The title and sentence shown for a reason code, or `None` for codes we do not know.
pub fn message_for(reason: &str) -> Option<(&'static str, &'static str)> {
    Some(match reason {
        "role_claim_missing" => (
            "No access",
            "Your account has no role for this application. Ask your administrator to give you access.",
        ),
        "role_claim_invalid" => (
            "No access",
            "Your identity provider sent your role in a form this application does not accept. Ask your administrator to check the role settings.",
        ),
        "role_not_mapped" => (
            "No access",
            "Your account does not have a role that grants access to this application. Ask your administrator for access.",
        ),
        "user_suspended" => (
            "Access suspended",
            "Your access to this application has been suspended. Contact your administrator.",
        ),
        "user_not_declared" => (
            "No account",
            "This application only admits users who have been given an account in advance, and you do not have one yet. Ask your administrator for access.",
        ),
        "user_not_provisioned" => (
            "No access",
            "Your identity provider has not given you access to this application. Ask your administrator to assign it to you.",
        ),
        "user_conflict" => (
            "Account conflict",
            "Another identity already holds the account this sign-in maps to. Ask your administrator to check your account.",
        ),
        "directory_contended" => (
            "Sign-in busy",
            "Your account was being updated by another sign-in at the same moment. Please try again.",
        ),
        "directory_unavailable" => (
            "Sign-in unavailable",
            "Sign-in is temporarily unavailable. Please try again in a minute.",
        ),
        "access_claims_too_large" => (
            "Sign-in failed",
            "Your identity provider sent more about you than this application can keep in a session. Ask your administrator to check the access rules.",
        ),
        "groups_unavailable" => (
            "Sign-in unavailable",
            "Your group memberships could not be read from your identity provider just now. Please try again in a minute.",
        ),
        "provision_hook_failed" => (
            "Sign-in incomplete",
            "The application could not set up your account. Please try again later.",
        ),
        "state_invalid" => (
            "Sign-in expired",
            "Your sign-in attempt expired or was started in another browser. Please sign in again.",
        ),
        "state_replayed" => (
            "Sign-in already used",
            "This sign-in response was already used. Please sign in again.",
        ),
        "idp_denied" => (
            "Sign-in cancelled",
            "Sign-in was cancelled or refused at your identity provider.",
        ),
        "idp_error" | "issuer_mismatch" => (
            "Sign-in failed",
            "Your identity provider reported a problem with this sign-in. Please try again.",
        ),
        "exchange_failed" => (
            "Sign-in failed",
            "We could not complete sign-in with your identity provider. Please try again.",
        ),
        "saml_nameid_transient" => (
            "No stable account",
            "Your identity provider sent a one-time identifier, so no account can be kept for you. Ask your administrator to send a persistent NameID.",
        ),
        "saml_algorithm_refused" => (
            "Sign-in failed",
            "Your identity provider signed the sign-in with an algorithm this application no longer accepts (SHA-1). Ask your administrator to switch the identity provider to SHA-256.",
        ),
        "saml_unsolicited" => (
            "Sign-in failed",
            "This application only accepts sign-ins it started. Please sign in from the application.",
        ),
        "saml_response_too_large"
        | "saml_response_malformed"
        | "saml_doctype_refused"
        | "saml_assertion_count"
        | "saml_signature_invalid"
        | "saml_issuer_mismatch"
        | "saml_destination_mismatch"
        | "saml_audience_mismatch"
        | "saml_recipient_mismatch"
        | "saml_expired"
        | "saml_not_yet_valid"
        | "saml_nameid_missing" => (
            "Sign-in failed",
            "The sign-in response from your identity provider could not be verified. Please sign in again.",
        ),
        "provider_unavailable" => (
            "Sign-in unavailable",
            "Sign-in with this provider is not available right now. Please try again shortly.",
        ),
        "signed_out" => ("Signed out", "You have signed out."),
        r if r.starts_with("token_") => (
            "Sign-in failed",
            "We could not verify the answer from your identity provider. Please try again; if this keeps happening, contact your administrator.",
        ),
        _ => return None,
    })
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f5f6f8;color:#1d2330;margin:0}\
main{max-width:24rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.4rem;margin:0 0 1rem}p{line-height:1.5}\
ul{list-style:none;padding:0;margin:1.5rem 0 0}li{margin:.6rem 0}\
.button{display:block;text-align:center;padding:.75rem 1rem;border-radius:.5rem;background:#1f4fd1;color:#fff;text-decoration:none;font-weight:600}\
button.button{width:100%;border:0;font:inherit;cursor:pointer}form{margin:1.5rem 0 0}\
.button:hover{background:#163da6}.button:focus{outline:3px solid #f2b400;outline-offset:2px}\
.note{border-left:4px solid #c0392b;padding:.5rem .75rem;background:#fdf0ee}\
.info{border-left:4px solid #1f4fd1;padding:.5rem .75rem;background:#eef3fd}\
.secondary{margin-top:1.5rem;font-size:.95rem}";

/// A complete HTML document.
pub fn document(title: &str, body: &str) -> String {
    document_with_referrer(title, body, "no-referrer")
}

/// A complete HTML document whose referrer policy is `referrer` (a fixed value, not escaped).
fn document_with_referrer(title: &str, body: &str, referrer: &'static str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"{referrer}\">\
<title>{}</title><style>{STYLE}</style></head>\
<body><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// Where sign-in with provider `id` starts: SAML's own path, or the OIDC start path of the id
/// (`saml` is a reserved id no OIDC provider can take).
pub fn start_path(id: &str) -> String {
    use gatehouse_crds::consts::{OIDC_START_PREFIX, PROVIDER_SAML, SAML_START_PATH};
    if id == PROVIDER_SAML {
        SAML_START_PATH.to_owned()
    } else {
        format!("{OIDC_START_PREFIX}{id}")
    }
}

/// A button on the login page.
#[derive(Debug, Clone)]
pub struct ProviderButton<'a> {
    /// Provider id (path segment).
    pub id: &'a str,
    /// Label.
    pub label: &'a str,
}

/// The login page.
#[derive(Debug, Clone)]
pub struct LoginPage<'a> {
    /// Host name shown in the heading.
    pub app: &'a str,
    /// One button per provider offered.
    pub providers: Vec<ProviderButton<'a>>,
    /// Sanitized path to return to.
    pub rd: &'a str,
    /// A reason code to explain (unknown codes are ignored).
    pub reason: Option<&'a str>,
    /// Link to the app's own login page.
    pub app_login: Option<String>,
}

impl LoginPage<'_> {
    /// Renders the page.
    pub fn render(&self) -> String {
        let mut body = String::new();
        let _ = write!(body, "<h1>Sign in to {}</h1>", escape(self.app));
        if let Some((title, text)) = self.reason.and_then(message_for) {
            let class = if self.reason == Some("signed_out") {
                "info"
            } else {
                "note"
            };
            let _ = write!(
                body,
                "<p class=\"{class}\" role=\"status\"><strong>{}.</strong> {}</p>",
                escape(title),
                escape(text)
            );
        }
        body.push_str("<nav aria-label=\"Sign-in methods\"><ul>");
        for p in &self.providers {
            let _ = write!(
                body,
                "<li><a class=\"button\" href=\"{}?rd={}\">Sign in with {}</a></li>",
                escape(&start_path(p.id)),
                escape(&encode_query_value(self.rd)),
                escape(p.label)
            );
        }
        body.push_str("</ul></nav>");
        if let Some(href) = &self.app_login {
            let _ = write!(
                body,
                "<p class=\"secondary\"><a href=\"{}\">Sign in with your application account instead</a></p>",
                escape(href)
            );
        }
        document(&format!("Sign in to {}", self.app), &body)
    }
}

/// The page explaining a refused or failed sign-in, with a way back to the login page.
pub fn problem_page(reason: &str, retry_href: &str) -> String {
    let (title, text) =
        message_for(reason).unwrap_or(("Something went wrong", "Please try again."));
    let body = format!(
        "<h1>{}</h1><p class=\"note\" role=\"alert\">{}</p><p class=\"secondary\"><a href=\"{}\">Back to sign-in</a></p>",
        escape(title),
        escape(text),
        escape(retry_href)
    );
    document(title, &body)
}

/// A plain error page without a sign-in link (404, 405, 502…).
pub fn plain_page(title: &str, text: &str) -> String {
    document(
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text)),
    )
}

/// The HTML of [`sign_out_confirmation`].
fn sign_out_confirmation_page(app: &str, logout_path: &str) -> String {
    let body = format!(
        "<h1>Sign out of {app}?</h1>\
<form method=\"post\" action=\"{path}\"><button class=\"button\" type=\"submit\">Sign out</button></form>\
<p class=\"secondary\"><a href=\"/\">Stay signed in</a></p>",
        app = escape(app),
        path = escape(logout_path),
    );
    document_with_referrer(&format!("Sign out of {app}?"), &body, "same-origin")
}

/// The page that asks before signing out, for a request to the logout path another site may
/// have made (or whose browser did not say): a form that POSTs back to `logout_path` from this
/// origin, and a way back to the app. `status` is 200 for a link followed, 403 for a refused POST.
///
/// Its referrer policy is `same-origin` (not the other pages' `no-referrer`), so that the form's
/// POST carries this page's origin in `Origin`, which a browser without fetch metadata sends as
/// `null` under `no-referrer`; the page is never framed (`frame-ancestors 'none'`, `DENY`), so
/// another site cannot trick the click. Its policy has no `form-action`: browsers apply that to
/// the redirects answering a form too, and the logout's answer is a redirect on to the identity
/// provider (end-session, single logout) and back; the page has nothing a form could carry off.
pub fn sign_out_confirmation(status: StatusCode, app: &str, logout_path: &str) -> Response<Body> {
    let mut response = html_response(status, sign_out_confirmation_page(app, logout_path));
    let h = response.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}

/// An HTML response with the sidecar's protective headers.
pub fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    protective_headers(h);
    response
}

/// Headers for every response the sidecar writes itself.
pub fn protective_headers(h: &mut http::HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The 404 page.
pub fn not_found_page() -> Response<Body> {
    html_response(
        StatusCode::NOT_FOUND,
        plain_page("Not found", "There is nothing at this address."),
    )
}

/// A redirect to `location` (`/` when it is not a valid header value), never cached, no referrer.
pub fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
        }
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `value` as JSON, never cached.
pub fn json_response(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::from(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_has_one_link_per_provider_and_escapes_everything() {
        let page = LoginPage {
            app: "portal.example.com",
            providers: vec![
                ProviderButton {
                    id: "okta",
                    label: "Okta",
                },
                ProviderButton {
                    id: "auth0",
                    label: "<b>Auth0</b>",
                },
            ],
            rd: "/a?b=1&c=\"x\"",
            reason: Some("role_not_mapped"),
            app_login: Some("/app/login".into()),
        }
        .render();
        assert!(
            page.contains("href=\"/api/auth/oauth2/start/okta?rd=%2Fa%3Fb%3D1%26c%3D%22x%22\""),
            "{page}"
        );
        assert!(page.contains("href=\"/api/auth/oauth2/start/auth0?rd="));
        let saml = LoginPage {
            app: "portal.example.com",
            providers: vec![ProviderButton {
                id: "saml",
                label: "SAML",
            }],
            rd: "/x",
            reason: None,
            app_login: None,
        }
        .render();
        assert!(
            saml.contains("href=\"/api/auth/saml/start?rd=%2Fx\">Sign in with SAML<"),
            "{saml}"
        );
        assert!(page.contains("Sign in with &lt;b&gt;Auth0&lt;/b&gt;"));
        assert!(!page.contains("<b>Auth0"));
        assert!(page.contains("does not have a role"));
        assert!(page.contains("/app/login"));
        assert!(page.contains("<html lang=\"en\">"));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn the_sign_out_confirmation_posts_back_and_escapes_the_app_name() {
        let r = sign_out_confirmation(StatusCode::OK, "<b>portal</b>", "/api/auth/logout");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::REFERRER_POLICY], "same-origin");
        // No `form-action`: the POST's answer redirects on to the identity provider.
        assert!(
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .is_ok_and(|csp| !csp.contains("form-action")
                    && csp.contains("frame-ancestors 'none'")
                    && csp.contains("default-src 'none'"))
        );
        let page = sign_out_confirmation_page("<b>portal</b>", "/api/auth/logout");
        assert!(page.contains("<meta name=\"referrer\" content=\"same-origin\">"));
        assert!(!page.contains("no-referrer"));
        assert!(page.contains(
            "<form method=\"post\" action=\"/api/auth/logout\"><button class=\"button\" type=\"submit\">Sign out</button></form>"
        ));
        assert!(page.contains("Sign out of &lt;b&gt;portal&lt;/b&gt;?"));
        assert!(!page.contains("<b>portal"));
        assert!(!page.contains("<script"));
        assert!(document("t", "").contains("<meta name=\"referrer\" content=\"no-referrer\">"));
    }

    #[test]
    fn unknown_reasons_are_not_reflected() {
        let page = LoginPage {
            app: "x",
            providers: vec![],
            rd: "/",
            reason: Some("<script>alert(1)</script>"),
            app_login: None,
        }
        .render();
        assert!(!page.contains("alert"));
        assert!(problem_page("<img src=x>", "/login").contains("Something went wrong"));
        assert!(!problem_page("<img src=x>", "/login").contains("<img"));
    }

    #[test]
    fn every_reason_code_has_a_message() {
        for reason in [
            "role_claim_missing",
            "role_claim_invalid",
            "role_not_mapped",
            "user_suspended",
            "directory_unavailable",
            "provision_hook_failed",
            "groups_unavailable",
            "state_invalid",
            "state_replayed",
            "idp_denied",
            "idp_error",
            "issuer_mismatch",
            "exchange_failed",
            "provider_unavailable",
            "signed_out",
            "token_expired",
            "token_signature_invalid",
        ] {
            assert!(message_for(reason).is_some(), "{reason}");
        }
    }
}
