//! A browser as the load sees one: its own session cookie, over one shared HTTP client (so the
//! app and the baseline are driven by the same client and connection pool). Plus the emulator's
//! authorize page, submitted as a person approving would.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use url::Url;

pub const COOKIE_NAME: &str = "finchgate_session";

/// The load generator's HTTP client: no redirects followed, no cookie store (browsers keep their
/// own), generous pools.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(2048)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// One signed-in (or not yet) browser of a finchgate server.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Mutex<Option<String>>,
}

impl Browser {
    pub fn new(http: &reqwest::Client, base: &str) -> Self {
        Self {
            http: http.clone(),
            base: base.trim_end_matches('/').to_owned(),
            cookie: Mutex::new(None),
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let cookie = self.cookie.lock().ok().and_then(|c| c.clone());
        match cookie {
            Some(c) => request.header(COOKIE, format!("{COOKIE_NAME}={c}")),
            None => request,
        }
    }

    fn absorb(&self, response: &reqwest::Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let Ok(header) = header.to_str() else {
                continue;
            };
            let pair = header.split(';').next().unwrap_or_default();
            if let Some(value) = pair.strip_prefix(&format!("{COOKIE_NAME}="))
                && let Ok(mut cookie) = self.cookie.lock()
            {
                *cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        let response = self
            .with_cookie(self.http.get(self.url(path)))
            .send()
            .await?;
        self.absorb(&response);
        Ok(response)
    }

    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Result<reqwest::Response> {
        let response = self
            .with_cookie(self.http.post(self.url(path)).form(form))
            .send()
            .await?;
        self.absorb(&response);
        Ok(response)
    }

    /// The session's CSRF token, from the hidden field of the page at `path`.
    pub async fn csrf(&self, path: &str) -> anyhow::Result<String> {
        let page = self.get(path).await?.text().await?;
        csrf_token_in(&page).with_context(|| format!("no csrf_token on {path}"))
    }

    /// Signs in: `GET /login`, then `POST /login`. `Ok(true)` on the 303 of a success.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<bool> {
        let csrf = self.csrf("/login").await?;
        let response = self
            .post_form(
                "/login",
                &[
                    ("email", email),
                    ("password", password),
                    ("csrf_token", &csrf),
                ],
            )
            .await?;
        Ok(response.status() == reqwest::StatusCode::SEE_OTHER)
    }

    /// Forgets the session (the next request starts a new one).
    pub fn clear(&self) {
        if let Ok(mut cookie) = self.cookie.lock() {
            *cookie = None;
        }
    }
}

pub fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(LOCATION)?
        .to_str()
        .ok()
        .map(str::to_owned)
}

fn csrf_token_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Opens an emulator Connect URL, approves with provider `gusto`, and returns where the browser
/// is sent (the redirect URI with `code` and `state`).
pub async fn approve_in_emulator(
    http: &reqwest::Client,
    connect_url: &str,
) -> anyhow::Result<String> {
    let url = Url::parse(connect_url)?;
    let page = http.get(url.clone()).send().await?.text().await?;
    let mut fields = hidden_inputs(&page);
    fields.retain(|(k, _)| k != "decision" && k != "provider");
    fields.push(("decision".into(), "approve".into()));
    fields.push(("provider".into(), "gusto".into()));
    let response = http
        .post(url.join("authorize")?)
        .form(&fields)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_redirection(),
        "the emulator answered {} to the approval",
        response.status()
    );
    location(&response).context("the emulator's redirect has no Location")
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    const START: &str = r#"<input type="hidden" name=""#;
    html.split(START)
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let rest = rest.strip_prefix(r#" value=""#)?;
            let (value, _) = rest.split_once('"')?;
            Some((name.to_owned(), html_unescape(value)))
        })
        .collect()
}

fn html_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("&#") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find(';') else { break };
        if let Some(c) = after[..end].parse().ok().and_then(char::from_u32) {
            out.push(c);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}
