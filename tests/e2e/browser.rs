//! chromedriver and the browsers of a scenario. A [`Browser`] moves only as a person does: it
//! opens finchgate's sign-in page (or a message with a link in it, such as a setup link), and
//! from there every page is a click on a link or a button. Typing any other finchgate address is
//! refused, so a page that no link leads to fails the test that needs it.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::process::{Child, Command};
use url::Url;

use crate::helpers::TestApp;

/// A chromedriver process of this test; dropping it kills chromedriver and every browser it
/// started (a failed test never closes its session, and Chromium outlives a killed chromedriver).
pub struct Driver {
    url: String,
    /// In each browser's `--user-data-dir`, so its processes can be found.
    tag: String,
    _process: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .args(["-f", &self.tag])
            .status();
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&self.tag) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

impl Driver {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "chromedriver runs (install the Debian packages chromium and chromium-driver; \
                 .ci/run does)",
            );
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    url: format!("http://127.0.0.1:{port}"),
                    tag: format!("finchgate-e2e-{}", uuid::Uuid::new_v4().simple()),
                    _process: process,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start listening on port {port}");
    }

    /// A new browser (its own profile: its own cookies) for finchgate at `app`.
    pub async fn browser(&self, name: &'static str, app: &TestApp) -> Browser {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    format!(
                        "--user-data-dir={}/{}-{}",
                        std::env::temp_dir().display(),
                        self.tag,
                        uuid::Uuid::new_v4().simple()
                    ),
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                ],
            }),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("chromedriver opens a Chromium session (is the chromium package installed?)");
        Browser {
            client,
            finchgate: Url::parse(&app.address).unwrap(),
            name,
            shots: std::cell::Cell::new(0),
        }
    }
}

/// Whether a browser may be sent to `url` by typing it: finchgate's sign-in page, or a message
/// page of this harness (`data:`); nothing else.
fn may_type(finchgate: &Url, url: &Url) -> bool {
    let sign_in =
        url.origin() == finchgate.origin() && url.path() == "/login" && url.query().is_none();
    sign_in || url.scheme() == "data"
}

#[test]
fn the_harness_types_no_finchgate_address_but_the_sign_in_page() {
    let finchgate = Url::parse("http://127.0.0.1:4000").unwrap();
    let typed = |s: &str| may_type(&finchgate, &Url::parse(s).unwrap());
    assert!(typed("http://127.0.0.1:4000/login"));
    assert!(typed("data:text/html;base64,PHA+aGk8L3A+"));
    for refused in [
        "http://127.0.0.1:4000/",
        "http://127.0.0.1:4000/login?next=/ops",
        "http://127.0.0.1:4000/t/acme/",
        "http://127.0.0.1:4000/t/acme/connections/00000000-0000-0000-0000-000000000000",
        "http://127.0.0.1:4000/ops/tenants",
        "http://127.0.0.1:4000/invite/AAAA",
        "http://127.0.0.1:4001/login",
        "http://localhost:4000/t/acme/",
    ] {
        assert!(!typed(refused), "{refused} is refused");
    }
}

/// A browser of one scenario. Its WebDriver client stays private to this module: the tests
/// navigate through [`Browser::open_login`], [`Browser::open_message`] and clicks only.
pub struct Browser {
    client: Client,
    /// finchgate's address: the only page of it the browser may be sent to is `/login`.
    finchgate: Url,
    name: &'static str,
    shots: std::cell::Cell<u32>,
}

impl Browser {
    /// The one place the browser is sent to an address. finchgate's `/login` and this harness's
    /// own message pages pass; any other finchgate address (or anything else) is refused.
    async fn goto(&self, url: &Url) {
        assert!(
            may_type(&self.finchgate, url),
            "{}: refused to type {url}: after /login, pages are reached by clicking",
            self.name
        );
        self.client.goto(url.as_str()).await.unwrap();
    }

    /// Opens finchgate's sign-in page: where every walk through finchgate starts.
    pub async fn open_login(&self) {
        self.goto(&self.finchgate.join("/login").unwrap()).await;
    }

    /// Shows a message (as a mail client would) whose one link is `link`, for a person who gets
    /// a link from someone else, such as a setup link; the test then clicks it.
    pub async fn open_message(&self, text: &str, link: &str) {
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('"', "&quot;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let html = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>Message</title><p>{}</p>\
             <p><a id=\"message-link\" href=\"{}\">{}</a></p>",
            escape(text),
            escape(link),
            escape(link)
        );
        let page = format!(
            "data:text/html;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(html)
        );
        self.goto(&Url::parse(&page).unwrap()).await;
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks the element `css` selects (a link, a button, a radio button…).
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: {css}: {e}", self.name))
            .click()
            .await
            .unwrap();
    }

    /// Clicks the link whose text is `text`.
    pub async fn click_link(&self, text: &str) {
        let link = match self.client.find(Locator::LinkText(text)).await {
            Ok(link) => link,
            Err(e) => panic!(
                "{}: no link {text:?} on {}: {e}",
                self.name,
                self.url().await
            ),
        };
        link.click().await.unwrap();
    }

    /// Chooses the option at `index` in the `<select>` `css` selects.
    pub async fn select_index(&self, css: &str, index: usize) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .select_by_index(index)
            .await
            .unwrap();
    }

    /// Chooses the option with value `value` in the `<select>` `css` selects.
    pub async fn select_value(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// The current value of the field `css` selects.
    pub async fn value(&self, css: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
    }

    /// The text of every element `css` selects.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            texts.push(element.text().await.unwrap());
        }
        texts
    }

    /// Moves into the `<iframe>` `css` selects (a page another origin serves inside this one).
    pub async fn enter_frame(&self, css: &str) {
        let frame = self.client.find(Locator::Css(css)).await.unwrap();
        frame.enter_frame().await.unwrap();
    }

    pub async fn leave_frame(&self) {
        self.client.enter_parent_frame().await.unwrap();
    }

    pub async fn page(&self) -> String {
        self.client.source().await.unwrap()
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits (up to 15 s) until the page shows `text`.
    pub async fn wait_for_text(&self, text: &str) {
        for _ in 0..150 {
            if self.page().await.contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = self.page().await;
        self.shot("timeout").await;
        panic!(
            "{}: waited for {text:?} on {}: {page}",
            self.name,
            self.url().await
        );
    }

    /// Waits (up to 15 s) until the address contains `part`.
    pub async fn wait_for_url(&self, part: &str) {
        for _ in 0..150 {
            if self.url().await.contains(part) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shot("timeout").await;
        panic!(
            "{}: waited for an address with {part:?}, at {}",
            self.name,
            self.url().await
        );
    }

    /// Saves a screenshot as `target/e2e/{scenario}-{n}-{step}.png`.
    pub async fn shot(&self, step: &str) {
        self.shots.set(self.shots.get() + 1);
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{}-{:02}-{step}.png", self.name, self.shots.get())),
            png,
        )
        .unwrap();
    }

    /// Opens `/login` and signs in; waits for the signed-in page.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.open_login().await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.shot("sign-in").await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
        self.wait_for_text("Sign out").await;
    }

    /// Signs in with a password and then, at the second step, `code` (a TOTP or recovery code).
    pub async fn sign_in_with_code(&self, email: &str, password: &str, code: &str) {
        self.open_login().await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
        self.wait_for_text("Enter your code").await;
        self.fill("#code", code).await;
        self.shot("second-step").await;
        self.click("form[action='/login/two-factor'] button[type=submit]")
            .await;
        self.wait_for_text("Sign out").await;
    }

    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}
