//! The log canary (SECURITY.md T19): a whole sign-in, settings, connect, failure, disconnect and
//! console run with every log line captured at TRACE (both log formats, every crate, `log`
//! records included). Afterwards no password, session id, code, state, access token, API key or
//! client secret of the run appears in the logs, in any page or `Location` served, or anywhere in the
//! database in plaintext (or base64 / hex of it).
//!
//! A test binary of its own: the capturing subscriber is process-global.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should fail loudly at the line that broke"
)]

#[path = "../api/helpers.rs"]
#[expect(
    dead_code,
    reason = "shared with the api tests; this test uses part of it"
)]
mod helpers;

use std::sync::{Arc, Mutex};

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use finchgate::config::LogFormat;
use finchgate::sandbox::{Endpoint, Fault, FaultKind};
use secrecy::{ExposeSecret as _, SecretString};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use helpers::{
    TestApp, approve_in_emulator, csrf_token_in, decide_in_emulator, spawn_app_with_vault,
};

/// Every log line written, in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A browser that keeps every page and `Location` it was served.
struct Recorder<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    served: Vec<String>,
    session_ids: Vec<String>,
}

impl<'a> Recorder<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: app.new_browser(),
            served: Vec::new(),
            session_ids: Vec::new(),
        }
    }

    async fn keep(&mut self, response: reqwest::Response) -> (u16, Option<String>, String) {
        let status = response.status().as_u16();
        for cookie in response.headers().get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
            if value.len() >= 8 {
                self.session_ids.push(value.to_owned());
            }
        }
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        // The redirect to Finch Connect must carry the state; every other Location is checked.
        if let Some(location) = &location
            && !location.starts_with(self.app.sandbox.base_url().as_str())
        {
            self.served.push(location.clone());
        }
        let body = response.text().await.unwrap();
        self.served.push(body.clone());
        (status, location, body)
    }

    async fn get(&mut self, path: &str) -> (u16, Option<String>, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.app.address))
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }

    /// Goes where Finch sent the browser back to (the callback, with code and state).
    async fn follow(&mut self, url: &str) -> (u16, Option<String>, String) {
        let response = self.client.get(url).send().await.unwrap();
        self.keep(response).await
    }

    /// POSTs a form with the CSRF token read from `page`.
    async fn post(
        &mut self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let (_, _, html) = self.get(page).await;
        let csrf = csrf_token_in(&html);
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &csrf));
        let response = self
            .client
            .post(format!("{}{action}", self.app.address))
            .form(&form)
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
}

/// The code and state Finch sent the browser back with.
fn code_and_state(url: &url::Url) -> (String, String) {
    let get = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("{name} in {url}"))
    };
    (get("code"), get("state"))
}

#[tokio::test]
async fn no_secret_reaches_a_log_line_a_page_or_a_plaintext_column() {
    let logs = Capture::default();
    tracing_subscriber::registry()
        // Everything at TRACE, except the test browser's own cookie jar (reqwest's `cookies`
        // feature, which the product does not use): it logs the cookies it stores, by design.
        .with(tracing_subscriber::EnvFilter::new("trace,cookie_store=off"))
        .with(finchgate::telemetry::layer(LogFormat::Pretty, logs.clone()))
        .with(finchgate::telemetry::layer(LogFormat::Json, logs.clone()))
        .init();

    let (app, _vault) = spawn_app_with_vault().await;
    let mut sentinels: Vec<(&str, String)> = Vec::new();
    let tenant = app.create_tenant("canary").await;
    let admin = app.create_user("admin@canary.test", Some(tenant)).await;
    sentinels.push(("password", admin.password.clone()));
    let secret = format!("canary-client-secret-{}", uuid::Uuid::new_v4().simple());
    sentinels.push(("client secret", secret.clone()));
    app.sandbox.register_app(finchgate::sandbox::SandboxApp {
        client_id: "canary-client".to_owned(),
        client_secret: SecretString::from(secret.clone()),
    });

    // Sign in through the form.
    let mut browser = Recorder::new(&app);
    let (status, _, _) = browser
        .post(
            "/login",
            "/login",
            &[("email", &admin.email), ("password", &admin.password)],
        )
        .await;
    assert_eq!(status, 303, "signed in");

    // Settings: credentials (write-only secret), the test button, the callback URL.
    let (status, _, _) = browser
        .post(
            "/t/canary/settings",
            "/t/canary/settings/finch",
            &[
                ("client_id", "canary-client"),
                ("client_secret", &secret),
                ("sandbox", "finch"),
                ("products", "company"),
                ("products", "directory"),
            ],
        )
        .await;
    assert_eq!(status, 303, "credentials saved");
    let (status, _, _) = browser
        .post("/t/canary/settings", "/t/canary/settings/finch/test", &[])
        .await;
    assert_eq!(status, 303);
    let (_, _, settings) = browser.get("/t/canary/settings").await;
    assert!(
        settings.contains("Finch accepted"),
        "the test passed: {settings}"
    );
    let callback = format!("{}/t/canary/finch/callback", app.address);
    let (status, _, _) = browser
        .post(
            "/t/canary/settings",
            "/t/canary/settings/redirect-uris",
            &[("uri", &callback)],
        )
        .await;
    assert_eq!(status, 303);
    let redirect_uri_id = {
        let mut conn = app.db.connect().await;
        diesel::sql_query("SELECT id FROM redirect_uris")
            .get_result::<IdRow>(&mut conn)
            .await
            .unwrap()
            .id
            .to_string()
    };
    let start_form = [
        ("product", "company"),
        ("flow", "redirect"),
        ("redirect_uri_id", redirect_uri_id.as_str()),
        ("customer_id", "canary"),
        ("customer_name", "Canary Inc"),
        ("sandbox", "finch"),
    ];

    // A connection through the redirect flow.
    let (status, to_finch, _) = browser
        .post("/t/canary/connect", "/t/canary/connect", &start_form)
        .await;
    assert_eq!(status, 303);
    let back = approve_in_emulator(&to_finch.unwrap(), None).await;
    let (code, state) = code_and_state(&back);
    sentinels.push(("code", code));
    sentinels.push(("state", state));
    let (status, landing, _) = browser.follow(back.as_str()).await;
    assert_eq!(status, 303);
    let landing = landing.unwrap();
    let connection = landing.split('?').next().unwrap().to_owned();
    assert!(connection.contains("/connections/"), "{connection}");
    let (_, _, page) = browser.get(&connection).await;
    assert!(page.contains("active"));
    let (status, _, _) = browser
        .post(&connection, &format!("{connection}/refresh"), &[])
        .await;
    assert_eq!(status, 303);

    // The user denies access; then Finch fails an exchange.
    let (_, to_finch, _) = browser
        .post("/t/canary/connect", "/t/canary/connect", &start_form)
        .await;
    let denied = decide_in_emulator(&to_finch.unwrap(), None, "deny").await;
    let (status, _, _) = browser.follow(denied.as_str()).await;
    assert_eq!(status, 303);
    let (_, to_finch, _) = browser
        .post("/t/canary/connect", "/t/canary/connect", &start_form)
        .await;
    let failing = approve_in_emulator(&to_finch.unwrap(), None).await;
    let (code, state) = code_and_state(&failing);
    sentinels.push(("code of the failed exchange", code));
    sentinels.push(("state of the failed exchange", state));
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: Default::default(),
        })
        .on(Endpoint::AuthToken),
    );
    let (status, attempt, _) = browser.follow(failing.as_str()).await;
    assert_eq!(status, 303);
    let (_, _, page) = browser.get(&attempt.unwrap()).await;
    assert!(page.contains("Finch"), "{page}");
    let (_, _, _) = browser.get("/t/canary/attempts").await;

    // A connect link (issue 14): created by the admin (the one page that shows its URL is not
    // kept: it is shown there once, on purpose), then used by a customer in another browser.
    let links_page = browser
        .client
        .get(format!("{}/t/canary/links", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let created = browser
        .client
        .post(format!("{}/t/canary/links", app.address))
        .form(&[
            ("csrf_token", csrf_token_in(&links_page).as_str()),
            ("customer_id", "canary-customer"),
            ("customer_name", "Canary Customer"),
            ("product", "company"),
            ("flow", "redirect"),
            ("redirect_uri_id", redirect_uri_id.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = r#"id="link-url" readonly value=""#;
    let link_url = created
        .split_once(marker)
        .unwrap()
        .1
        .split('"')
        .next()
        .unwrap();
    let link_path = link_url
        .strip_prefix(app.address.as_str())
        .unwrap()
        .to_owned();
    let token = link_path.strip_prefix("/c/").unwrap().to_owned();
    sentinels.push(("link token", token));
    let mut customer = Recorder::new(&app);
    let (status, to_finch, _) = customer.post(&link_path, &link_path, &[]).await;
    assert_eq!(status, 303);
    let back = approve_in_emulator(&to_finch.unwrap(), None).await;
    let (code, state) = code_and_state(&back);
    sentinels.push(("code of the link's flow", code));
    sentinels.push(("state of the link's flow", state));
    let (status, landing, _) = customer.follow(back.as_str()).await;
    assert_eq!(
        (status, landing.as_deref()),
        (303, Some("/c/done?status=connected"))
    );
    assert!(
        !customer.session_ids.is_empty(),
        "the link cookie and the customer's pre-session are sentinels too"
    );
    let (_, _, _) = browser.get("/t/canary/links").await;

    // Disconnect, then sign out.
    let (status, _, _) = browser
        .post(&connection, &format!("{connection}/disconnect"), &[])
        .await;
    assert_eq!(status, 303);
    let (_, _, page) = browser.get(&connection).await;
    assert!(page.contains("disconnected"), "{page}");
    let (status, _, _) = browser.post("/t/canary/", "/logout", &[]).await;
    assert_eq!(status, 303);

    // The tenant API with a key (issue 14): listed, read, refused with a wrong secret.
    let api_key = {
        let new = finchgate::api::keys::NewKey::parse(
            "canary key",
            ["connections:read", "connections:write", "links:write"],
            None,
        )
        .unwrap();
        let mut conn = app.pool.get().await.unwrap();
        let created =
            finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
                finchgate::api::keys::create(
                    conn,
                    tenant,
                    &new,
                    &finchgate::onboarding::Actor::cli(),
                    chrono::Utc::now(),
                )
                .await
            })
            .await
            .unwrap();
        created.key.expose_secret().to_owned()
    };
    let (key_prefix, key_secret) = finchgate::api::keys::split(&api_key).unwrap();
    sentinels.push(("API key", api_key.clone()));
    sentinels.push(("API key secret", key_secret.to_owned()));
    let wrong_key = format!("fgk_{key_prefix}_{}", "B".repeat(key_secret.len()));
    let api = reqwest::Client::new();
    for (key, status) in [(&api_key, 200), (&wrong_key, 401)] {
        for path in ["/api/v1/connections", "/api/v1/attempts"] {
            let response = api
                .get(format!("{}{path}", app.address))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{path}");
            let body = response.text().await.unwrap();
            assert!(!body.contains(key_secret), "the key is in an API answer");
        }
    }
    // A link made by the API (issue 14): its URL is returned once (and by a replay of the same
    // Idempotency-Key); its token is a sentinel, and no later answer repeats it.
    let mut api_link_id = String::new();
    for _ in 0..2 {
        let response = api
            .post(format!("{}/api/v1/links", app.address))
            .bearer_auth(&api_key)
            .header("Idempotency-Key", "canary-link-1")
            .json(&serde_json::json!({
                "customer_id": "canary-api-customer",
                "customer_name": "Canary API Customer",
                "products": ["company"],
                "flow": "embedded",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: serde_json::Value = response.json().await.unwrap();
        let url = created["url"].as_str().unwrap();
        let token = url.rsplit('/').next().unwrap().to_owned();
        sentinels.push(("link token returned by the API", token));
        api_link_id = created["id"].as_str().unwrap().to_owned();
    }
    let api_link_token = sentinels.last().map(|(_, t)| t.clone()).unwrap();
    for path in [
        "/api/v1/links".to_owned(),
        format!("/api/v1/links/{api_link_id}"),
    ] {
        let response = api
            .get(format!("{}{path}", app.address))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains(&api_link_token),
            "{path} repeats the link token"
        );
    }
    let response = api
        .delete(format!("{}/api/v1/links/{api_link_id}", app.address))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // An operator looks at everything.
    let operator = app.create_user("ops@canary.test", None).await;
    sentinels.push(("operator password", operator.password.clone()));
    let operator_secret = app.two_factor_secret_of(&operator.email).await.unwrap();
    sentinels.push((
        "operator's TOTP secret",
        operator_secret.base32().to_string(),
    ));
    let mut console = Recorder::new(&app);
    let (status, location, _) = console
        .post(
            "/login",
            "/login",
            &[("email", &operator.email), ("password", &operator.password)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/login/two-factor"));
    let code = app.code_now(&operator_secret);
    let (status, _, _) = console
        .post("/login/two-factor", "/login/two-factor", &[("code", &code)])
        .await;
    assert_eq!(status, 303, "the second step signs the operator in");

    // Accounts (issue 13): an admin enrols in two-factor sign-in (the secret and the recovery
    // codes are on the pages meant to show them, which this recorder keeps apart), signs in with
    // a recovery code; the operator issues a reset link, which the admin uses.
    let enrolling = app.create_user("enrolling@canary.test", Some(tenant)).await;
    sentinels.push(("second admin's password", enrolling.password.clone()));
    let mut accounts = Recorder::new(&app);
    let (status, _, _) = accounts
        .post(
            "/login",
            "/login",
            &[
                ("email", &enrolling.email),
                ("password", &enrolling.password),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, page) = accounts.get("/account/two-factor").await;
    assert_eq!(status, 200);
    let shown = helpers::data_attribute(&page, "totp-secret").expect("the secret is shown");
    sentinels.push(("admin's TOTP secret", shown.clone()));
    let admin_secret = helpers::secret_from_base32(&shown);
    let code = app.code_now(&admin_secret);
    let (status, _, page) = accounts
        .post(
            "/account/two-factor",
            "/account/two-factor",
            &[("action", "confirm"), ("code", &code)],
        )
        .await;
    assert_eq!(status, 200, "enrolled");
    let recovery_codes = helpers::recovery_codes_in(&page);
    assert_eq!(recovery_codes.len(), 10);
    for code in &recovery_codes {
        sentinels.push(("recovery code", code.clone()));
    }
    let (status, _, _) = accounts.post("/account", "/logout", &[]).await;
    assert_eq!(status, 303);
    let (status, location, _) = accounts
        .post(
            "/login",
            "/login",
            &[
                ("email", &enrolling.email),
                ("password", &enrolling.password),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login/two-factor"))
    );
    let (status, _, _) = accounts
        .post(
            "/login/two-factor",
            "/login/two-factor",
            &[("code", &recovery_codes[0])],
        )
        .await;
    assert_eq!(status, 303, "signed in with a recovery code");
    let (status, _, page) = console
        .post(
            "/ops/tenants/canary",
            &format!("/ops/tenants/canary/users/{}/reset-link", enrolling.id),
            &[],
        )
        .await;
    // The page meant to show the link once: kept apart from the pages checked below.
    console.served.pop();
    assert_eq!(status, 200);
    let link = page
        .split_once("id=\"reset-link\"")
        .and_then(|(_, rest)| rest.split_once("value=\""))
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(link, _)| helpers::html_unescape(link))
        .expect("the reset link is shown");
    let token = link.rsplit('/').next().unwrap().to_owned();
    sentinels.push(("reset token", token.clone()));
    let new_password = format!("canary-new-password-{}", uuid::Uuid::new_v4().simple());
    sentinels.push(("password set through a reset link", new_password.clone()));
    let reset_path = format!("/reset/{token}");
    let (status, _, _) = accounts
        .post(
            &reset_path,
            &reset_path,
            &[
                ("password", &new_password),
                ("password_confirm", &new_password),
            ],
        )
        .await;
    assert_eq!(status, 200, "the reset link sets the password");
    let attempts: Vec<IdRow> = {
        let mut conn = app.db.connect().await;
        diesel::sql_query("SELECT id FROM exchange_attempts")
            .load(&mut conn)
            .await
            .unwrap()
    };
    assert!(attempts.len() >= 3, "a success, a denial and a failure");
    let mut pages: Vec<String> = [
        "/ops/tenants",
        "/ops/tenants/canary",
        "/ops/exchanges?status=all",
        "/ops/exchanges?status=all&view=groups",
        "/ops/exchanges?status=all&view=trends",
        "/ops/exchanges.csv?status=all",
    ]
    .map(str::to_owned)
    .to_vec();
    pages.extend(attempts.iter().map(|a| format!("/ops/exchanges/{}", a.id)));
    for page in &pages {
        let (status, _, _) = console.get(page).await;
        assert_eq!(status, 200, "{page}");
    }
    let (status, _, _) = console
        .post(
            "/ops/exchanges?status=all",
            &format!("/ops/exchanges/{}/review", attempts[0].id),
            &[("action", "acknowledge"), ("note", "seen")],
        )
        .await;
    assert_eq!(status, 303);

    for issued in app.sandbox.issued_tokens() {
        sentinels.push((
            "access token",
            issued.access_token.expose_secret().to_owned(),
        ));
    }
    assert!(
        sentinels
            .iter()
            .filter(|(k, _)| *k == "access token")
            .count()
            >= 2,
        "tokens were issued"
    );
    for id in browser
        .session_ids
        .iter()
        .chain(&console.session_ids)
        .chain(&accounts.session_ids)
        .chain(&customer.session_ids)
    {
        sentinels.push(("session id", id.clone()));
    }
    assert!(
        browser.session_ids.len() >= 2,
        "pre-login and signed-in sessions"
    );

    let logs = logs.text();
    assert!(
        logs.contains("TRACE") && logs.contains("/t/canary/finch/callback"),
        "the capture saw the run at TRACE"
    );
    assert!(logs.len() > 100_000, "{} bytes captured", logs.len());
    let pages: Vec<&String> = browser
        .served
        .iter()
        .chain(&console.served)
        .chain(&customer.served)
        .collect();
    for (what, value) in &sentinels {
        if let Some(at) = logs.find(value.as_str()) {
            let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            panic!(
                "the {what} is in the logs: {}",
                logs[line_start..line_end].replace(value.as_str(), "<SENTINEL>")
            );
        }
        let on_page = pages.iter().position(|p| p.contains(value.as_str()));
        assert_eq!(on_page, None, "the {what} is on a page served");
        helpers::assert_nowhere_in_database(&app.db, value).await;
    }
    app.stop().await;
}
