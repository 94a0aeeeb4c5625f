//! End to end in a real browser: headless Chromium driven through chromedriver (WebDriver, with
//! fantoccini) against the real server and the Finch emulator on loopback ports. Each scenario
//! saves screenshots under `target/e2e/`.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run` installs them); without
//! them these tests fail, they do not skip. Scenarios run one at a time (a browser is two
//! processes and the machine may have two cores).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should fail loudly at the line that broke"
)]

#[path = "../api/helpers.rs"]
#[expect(
    dead_code,
    reason = "shared with the api tests; these tests use part of it"
)]
mod helpers;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use finchgate::sandbox::{Endpoint, Fault, FaultKind, SandboxApp};
use hyper_util::client::legacy::connect::HttpConnector;
use secrecy::SecretString;
use tokio::process::{Child, Command};

use helpers::{TestApp, spawn_app_with_vault};

/// One scenario at a time.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A chromedriver process of this test; dropping it kills chromedriver and every browser it
/// started (a failed test never closes its session, and Chromium outlives a killed chromedriver).
struct Driver {
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
    async fn start() -> Self {
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

    /// A new browser (its own profile: its own cookies).
    async fn browser(&self, name: &'static str) -> Browser {
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
            name,
            shots: std::cell::Cell::new(0),
        }
    }
}

/// A browser of one scenario.
struct Browser {
    client: Client,
    name: &'static str,
    shots: std::cell::Cell<u32>,
}

impl Browser {
    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn page(&self) -> String {
        self.client.source().await.unwrap()
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits (up to 15 s) until the page shows `text`.
    async fn wait_for_text(&self, text: &str) {
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
    async fn wait_for_url(&self, part: &str) {
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
    async fn shot(&self, step: &str) {
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

    async fn sign_in(&self, app: &TestApp, email: &str, password: &str) {
        self.goto(&format!("{}/login", app.address)).await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.shot("sign-in").await;
        self.click("form[action='/login'] button[type=submit]")
            .await;
        self.wait_for_text("Sign out").await;
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

/// A tenant with credentials and its callback whitelisted, its admin signed in in `browser`.
async fn connected_tenant_admin(app: &TestApp, driver: &Driver, scenario: &'static str) -> Browser {
    let setup = app.setup_connect(scenario).await;
    let browser = driver.browser(scenario).await;
    browser
        .sign_in(
            app,
            &format!("admin@{}.test", setup.slug),
            &admin_password(app, &setup.slug).await,
        )
        .await;
    browser
}

/// `setup_connect` creates the admin with a random password; give it a known one.
async fn admin_password(app: &TestApp, slug: &str) -> String {
    let password = format!("e2e password for {slug}");
    let hash = finchgate::auth::password::PasswordHasher::new(1)
        .hash(&SecretString::from(password.clone()))
        .await
        .unwrap();
    let mut conn = app.db.connect().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE users SET password_hash = $1 WHERE email = $2")
            .bind::<diesel::sql_types::Text, _>(&hash)
            .bind::<diesel::sql_types::Text, _>(format!("admin@{slug}.test")),
        &mut conn,
    )
    .await
    .unwrap();
    password
}

/// Opens the connect form and starts a redirect flow; the browser ends on Finch's authorize page.
async fn start_redirect_flow(browser: &Browser, app: &TestApp, slug: &str) {
    browser
        .goto(&format!("{}/t/{slug}/connect", app.address))
        .await;
    browser.click("#flow-redirect").await;
    browser.shot("connect-form").await;
    browser.click("#start-connect").await;
    browser.wait_for_text("Connect your payroll provider").await;
    assert!(
        browser
            .url()
            .await
            .starts_with(app.sandbox.base_url().as_str()),
        "at Finch Connect (the emulator)"
    );
    browser.shot("finch-connect").await;
}

#[tokio::test]
async fn an_operator_sets_up_a_tenant_whose_admin_configures_finch() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let operator = app.create_user("ops@platform.test", None).await;
    let ops = driver.browser("setup-operator").await;
    ops.sign_in(&app, &operator.email, &operator.password).await;

    // The operator creates the tenant and invites its first admin.
    ops.goto(&format!("{}/ops/tenants", app.address)).await;
    ops.fill("#slug", "globex").await;
    ops.fill("#name", "Globex Corporation").await;
    ops.shot("create-tenant").await;
    ops.click("form[action='/ops/tenants'] button[type=submit]")
        .await;
    ops.wait_for_text("Globex Corporation").await;
    ops.goto(&format!("{}/ops/tenants/globex", app.address))
        .await;
    ops.fill("#email", "hank@globex.test").await;
    ops.click("form[action='/ops/tenants/globex/invite'] button[type=submit]")
        .await;
    ops.wait_for_text("setup-link").await;
    ops.shot("setup-link").await;
    let link = ops
        .client
        .find(Locator::Css("#setup-link"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .expect("the setup link is shown");
    assert!(link.contains("/invite/"), "{link}");

    // The admin opens the link in their own browser and sets a password.
    let admin = driver.browser("setup-admin").await;
    admin.goto(&link).await;
    admin
        .fill("#password", "correct horse battery staple 7")
        .await;
    admin
        .fill("#password_confirm", "correct horse battery staple 7")
        .await;
    admin.shot("set-password").await;
    admin.click("button[type=submit]").await;
    admin.wait_for_text("Sign out").await;

    // Finch credentials, checked with "Test credentials", and the callback URL.
    let secret = "globex-finch-secret-0123456789";
    app.sandbox.register_app(SandboxApp {
        client_id: "globex-client".to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
    });
    admin
        .goto(&format!("{}/t/globex/settings", app.address))
        .await;
    admin.fill("#client_id", "globex-client").await;
    admin.fill("#client_secret", secret).await;
    admin.shot("credentials").await;
    admin
        .click("form[action='/t/globex/settings/finch'] button[type=submit]")
        .await;
    admin.wait_for_text("••••6789").await;
    admin
        .click("form[action='/t/globex/settings/finch/test'] button[type=submit]")
        .await;
    admin
        .wait_for_text("Finch accepted these credentials.")
        .await;
    admin.shot("credentials-tested").await;
    admin
        .click("form[action='/t/globex/settings/redirect-uris'] button[type=submit]")
        .await;
    let callback = format!("{}/t/globex/finch/callback", app.address);
    admin
        .wait_for_text(&format!("<code class=\"uri\">{callback}</code>"))
        .await;
    admin.shot("redirect-uri").await;
    let page = admin.page().await;
    assert!(!page.contains(secret), "the secret is never shown again");

    ops.close().await;
    admin.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_connects_through_the_redirect_flow_then_refreshes_reconnects_and_disconnects() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let browser = connected_tenant_admin(&app, &driver, "redirect").await;

    start_redirect_flow(&browser, &app, "redirect").await;
    browser.click("#approve").await;
    browser.wait_for_url("/connections/").await;
    browser.wait_for_text("active").await;
    let url = browser.url().await;
    assert!(
        !url.contains("code=") && !url.contains("state="),
        "a clean address after the callback: {url}"
    );
    browser.shot("connected").await;

    browser.click("#refresh").await;
    browser
        .wait_for_text("reports this connection as active")
        .await;
    browser.shot("refreshed").await;

    // Reconnect through the redirect flow.
    browser
        .client
        .find(Locator::Css("select[name=redirect_uri_id]"))
        .await
        .unwrap()
        .select_by_index(1)
        .await
        .unwrap();
    browser.click("#reconnect").await;
    browser
        .wait_for_text("Reconnect your payroll provider")
        .await;
    browser.shot("reconnect-at-finch").await;
    browser.click("#approve").await;
    browser.wait_for_url("/connections/").await;
    browser.wait_for_text("active").await;
    browser.shot("reconnected").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 2);

    browser.click("#disconnect").await;
    browser.wait_for_text("disconnected").await;
    browser.shot("disconnected").await;
    assert_eq!(app.sandbox.count("POST", "/disconnect"), 1);

    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_connects_through_the_embedded_flow() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let browser = connected_tenant_admin(&app, &driver, "embedded").await;

    browser
        .goto(&format!("{}/t/embedded/connect", app.address))
        .await;
    browser.click("#flow-embedded").await;
    browser.click("#start-connect").await;
    browser.wait_for_text("embedded-connect").await;
    // Connect opens in an iframe served by the emulator (Finch's origin).
    browser.wait_for_text("<iframe").await;
    let frame = browser.client.find(Locator::Css("iframe")).await.unwrap();
    browser.shot("embedded-connect").await;
    frame.enter_frame().await.unwrap();
    browser.wait_for_text("Connect your payroll provider").await;
    browser.click("#approve").await;
    browser.client.enter_parent_frame().await.unwrap();
    browser.wait_for_url("/connections/").await;
    browser.wait_for_text("active").await;
    browser.shot("connected").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 1);

    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_denied_connection_and_a_failed_exchange_each_show_a_page_to_act_on() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let browser = connected_tenant_admin(&app, &driver, "failures").await;

    // The payroll administrator denies access at Finch.
    start_redirect_flow(&browser, &app, "failures").await;
    browser.click("#deny").await;
    browser.wait_for_text("The connection was cancelled").await;
    browser
        .wait_for_text("Start again when the payroll administrator is ready to approve.")
        .await;
    browser.shot("denied").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 0);

    // Finch fails the exchange with a server error.
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: Default::default(),
        })
        .on(Endpoint::AuthToken),
    );
    start_redirect_flow(&browser, &app, "failures").await;
    browser.click("#approve").await;
    browser.wait_for_text("Finch had a problem").await;
    browser.wait_for_text("Try again later").await;
    browser.shot("exchange-failed").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 1);
    browser.close().await;

    // An operator finds both failures in the console, filters, opens one and resolves it.
    let operator = app.create_user("ops@platform.test", None).await;
    let ops = driver.browser("failures-operator").await;
    ops.sign_in(&app, &operator.email, &operator.password).await;
    ops.goto(&format!("{}/ops/exchanges", app.address)).await;
    ops.wait_for_text("user_denied").await;
    ops.wait_for_text("finch_server_error").await;
    ops.shot("console").await;
    ops.fill("input[name=tenant]", "failures").await;
    ops.client
        .find(Locator::Css("select[name=category]"))
        .await
        .unwrap()
        .select_by_value("finch_server_error")
        .await
        .unwrap();
    ops.click("form.filters button[type=submit]").await;
    ops.wait_for_url("category=finch_server_error").await;
    let rows = ops
        .client
        .find_all(Locator::Css("table.ledger tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "only the failed exchange matches");
    assert!(rows[0].text().await.unwrap().contains("finch_server_error"));
    ops.shot("console-filtered").await;
    ops.click("table.ledger tbody tr td a").await;
    ops.wait_for_text("Finch had a problem").await;
    ops.shot("attempt").await;
    ops.fill("#note", "Finch had an outage; the tenant connected again.")
        .await;
    ops.click("button[name=action][value=resolve]").await;
    ops.wait_for_text("resolved").await;
    ops.shot("resolved").await;
    let mut conn = app.db.connect().await;
    #[derive(diesel::QueryableByName)]
    struct Review {
        #[diesel(sql_type = diesel::sql_types::Text)]
        review_state: String,
    }
    let states: Vec<Review> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT review_state FROM exchange_attempts WHERE category = 'finch_server_error'",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].review_state, "resolved");
    ops.close().await;
    app.stop().await;
}
