//! Regression tests for the defects an outside review found (issue 13): each is named after its
//! defect, failed on 02489ba, and passes now (docs/security.md, "Defects found in review").

use std::collections::BTreeSet;

use diesel_async::RunQueryDsl as _;
use finchgate::db::{Scope, transaction};

use crate::helpers::{TestApp, TestDatabase, count, random_master_keys, spawn_app, spawn_app_with};

/// The Prometheus exposition, as a scraper on the metrics listener reads it.
async fn scrape(app: &TestApp) -> String {
    let response = app.metrics().await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The values of `label` in the `http_*` series of an exposition.
fn label_values(exposition: &str, label: &str) -> BTreeSet<String> {
    let marker = format!("{label}=\"");
    exposition
        .lines()
        .filter(|line| line.starts_with("http_"))
        .filter_map(|line| {
            let start = line.find(&marker)? + marker.len();
            let end = line[start..].find('"')? + start;
            Some(line[start..end].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn defect_3_metrics_labels_are_bounded_and_metrics_are_not_public() {
    let app = spawn_app().await;
    // 200 requests, each with a method of its own 4,000 characters long, half of them to paths
    // that match no route: before the fix, each made a series of its own.
    for i in 0..200 {
        let method =
            reqwest::Method::from_bytes(format!("M{i:03}{}", "X".repeat(4_000)).as_bytes())
                .unwrap();
        let path = if i % 2 == 0 {
            "/healthz".to_owned()
        } else {
            format!("/no/such/page-{i}")
        };
        let response = app
            .client
            .request(method, format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let exposition = scrape(&app).await;
    let methods = label_values(&exposition, "method");
    let known: BTreeSet<String> = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert!(
        methods.is_subset(&known),
        "method labels outside the fixed set: {} of them, the longest {} characters",
        methods.difference(&known).count(),
        methods.iter().map(String::len).max().unwrap_or(0)
    );
    assert!(methods.contains("other"), "{methods:?}");
    let routes = label_values(&exposition, "route");
    assert!(routes.contains("unmatched"), "{routes:?}");
    for route in &routes {
        assert!(
            route == "unmatched" || (route.starts_with('/') && route.len() <= 64),
            "a route label that is not a pattern of the route table: {route:?}"
        );
        assert!(!route.contains("page-"), "{route}");
    }
    assert!(
        exposition.len() < 4 * 1024 * 1024,
        "the exposition is {} bytes",
        exposition.len()
    );

    // The public listener does not serve metrics.
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), 404);
    assert!(!public.text().await.unwrap().contains("http_requests_total"));
    app.stop().await;
}

#[tokio::test]
async fn defect_7_a_date_out_of_range_is_a_400_naming_the_parameter_not_a_panic() {
    let app = spawn_app().await;
    let operator = app.create_user("operator@finchgate.test", None).await;
    app.login(&operator).await;
    for (query, param) in [
        ("to=-262143-01-05", "to"),
        ("view=trends&to=-262143-01-05", "to"),
        ("from=%2B262142-01-01", "from"),
        ("from=1999-12-31T23:00:00Z&view=groups", "from"),
    ] {
        for path in ["/ops/exchanges", "/ops/exchanges.csv"] {
            let response = app.get(&format!("{path}?{query}")).await;
            assert_eq!(response.status(), 400, "{path}?{query}");
            let page = response.text().await.unwrap();
            assert!(
                page.contains(&format!("{param}=")) && page.contains("2000-01-01 to 2100-12-31"),
                "{path}?{query}: {page}"
            );
        }
    }
    // The edges of the range, and a trend window at its end, work.
    let response = app
        .get("/ops/exchanges?view=trends&from=2000-01-01&to=2100-12-31")
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.get("/ops/exchanges?view=trends&to=2100-12-31")
            .await
            .status(),
        200
    );
    // A forged cursor far in the past is refused too (PostgreSQL cannot hold that time).
    let cursor = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "{}.{}",
            i64::MIN / 2,
            uuid::Uuid::nil().simple()
        ))
    };
    let response = app.get(&format!("/ops/exchanges?cursor={cursor}")).await;
    assert_eq!(response.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn defect_8_a_nul_byte_is_a_400_naming_the_field_before_any_handler() {
    let app = spawn_app().await;
    let operator = app.create_user("operator@finchgate.test", None).await;

    // Sign-in: not a 500 (PostgreSQL refuses 0x00 in text), not the generic 401 either.
    let browser = app.new_browser();
    let response = app.login_with(&browser, "a\0", "whatever-password").await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("“email”") && page.contains("NUL character"),
        "{page}"
    );
    assert!(!page.contains("whatever-password"));

    app.login(&operator).await;
    for path in ["/ops/exchanges?q=%00", "/ops/exchanges?q=a%01b&status=all"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert!(response.text().await.unwrap().contains("“q”"), "{path}");
    }
    // The CSV is refused before it starts streaming: a page, not a file cut short.
    let response = app.get("/ops/exchanges.csv?q=%00").await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("content-disposition").is_none());
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // A review note may hold line breaks (a multi-line field), not a NUL.
    let csrf = app.csrf_of(&app.client, "/ops/exchanges").await;
    let response = app
        .client
        .post(format!("{}/ops/exchanges/resolve", app.address))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("note", "fixed\0"),
            ("status", "all"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("“note”"));
    let response = app
        .client
        .post(format!("{}/ops/exchanges/resolve", app.address))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("note", "rotated the secret\r\nand reconnected"),
            ("status", "all"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);

    // The embedded callback's JSON body: a JSON answer, as its script reads it.
    let tenant = app.create_tenant("acme").await;
    let admin = app.create_user("admin@acme.test", Some(tenant)).await;
    let admin_browser = app.new_browser();
    assert_eq!(
        app.login_with(&admin_browser, &admin.email, &admin.password)
            .await
            .status(),
        303
    );
    let csrf = app.csrf_of(&admin_browser, "/t/acme/connect").await;
    let response = admin_browser
        .post(format!("{}/t/acme/finch/callback", app.address))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({
            "error": "access_denied",
            "error_description": "denied\u{0}",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("“error_description”"), "{message}");
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM exchange_attempts").await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn defect_10_keys_status_writes_nothing_and_names_a_new_configured_key() {
    let db = TestDatabase::migrated().await;
    let url = secrecy::ExposeSecret::expose_secret(&db.url).to_owned();
    let k1 = random_master_keys("k1");
    let k2 = random_master_keys("k2");
    // k1 is known to the database (a server ran with it); k2 was just appended.
    let pool = finchgate::db::pool(&finchgate::config::DatabaseSettings {
        url: db.url.clone(),
        max_connections: 2,
    })
    .unwrap();
    let vault =
        finchgate::vault::Vault::new(finchgate::config::parse_keyring(Some(&k1), None).unwrap());
    let mut conn = pool.get().await.unwrap();
    transaction(&mut conn, Scope::System, async |conn| {
        finchgate::keys::register_and_check(conn, &vault).await
    })
    .await
    .unwrap();
    drop(conn);
    let snapshot = async || {
        let mut conn = db.connect().await;
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            text: String,
        }
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT coalesce(string_agg(k::text, ';' ORDER BY k.kek_id), '') || '|' ||
                    (SELECT count(*) FROM audit_events)::text || '|' ||
                    (SELECT count(*) FROM keyring_wraps)::text AS text
               FROM keyring k",
        )
        .load(&mut conn)
        .await
        .unwrap();
        rows
    };
    let before = snapshot().await;

    let out = crate::keys::run(
        &["keys", "status"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("FINCHGATE_MASTER_KEYS", &format!("{k1},{k2}")),
        ],
    );
    assert_eq!(out.code, 0, "{:?}", out.stderr);
    assert_eq!(
        snapshot().await,
        before,
        "keys status wrote to the database"
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM keyring WHERE kek_id = 'k2'").await,
        0
    );
    assert!(
        out.stdout.contains(
            "Key \"k2\": configured, not yet registered (registered at the next start of `serve`)."
        ),
        "{}",
        out.stdout
    );
    let k2_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("k2 "))
        .unwrap_or_else(|| panic!("no line for k2 in\n{}", out.stdout));
    assert!(
        k2_line.split_whitespace().nth(1) == Some("yes"),
        "{k2_line}"
    );
}

/// A browser that keeps its session cookie by hand, as reqwest's jar does not send a `Secure`
/// cookie over the tests' plain http (finchgate's public URL is https in this test).
struct HandJar {
    address: String,
    client: reqwest::Client,
    cookie: std::sync::Mutex<Option<String>>,
}

impl HandJar {
    fn new(app: &TestApp) -> Self {
        Self {
            address: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: std::sync::Mutex::new(None),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie = self.cookie.lock().unwrap().clone();
        let request = match cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.unwrap();
        if let Some(set) = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("__Host-finchgate="))
        {
            let pair = set.split(';').next().unwrap().to_owned();
            *self.cookie.lock().unwrap() = Some(pair);
        }
        response
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.send(self.client.get(format!("{}{path}", self.address)))
            .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(
            self.client
                .post(format!("{}{path}", self.address))
                .form(form),
        )
        .await
    }
}

/// The flash message of a page (`<p class="flash …" role="status">`).
fn flash_of(page: &str) -> String {
    let start = page.find("role=\"status\">").map_or(0, |i| i + 14);
    let end = page[start..].find("</p>").map_or(start, |i| start + i);
    page[start..end]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
}

/// Adds `uri` to acme's whitelist with `post`, then returns the flash the settings page shows.
async fn add_uri(
    get: impl AsyncFn(&str) -> String,
    post: impl AsyncFn(&str, &str) -> u16,
    uri: &str,
) -> String {
    let status = post("/t/acme/settings/redirect-uris", uri).await;
    assert_eq!(status, 303, "adding {uri}");
    flash_of(&get("/t/acme/settings").await)
}

#[tokio::test]
async fn defect_11_only_the_canonical_spelling_is_whitelisted_and_http_only_on_a_loopback_instance()
{
    // finchgate on a loopback public URL (development): plain http for loopback hosts, in their
    // canonical spelling only.
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    let admin = app.create_user("admin@acme.test", Some(tenant)).await;
    app.login(&admin).await;
    let csrf = app.csrf_of(&app.client, "/t/acme/settings").await;
    let get = async |path: &str| app.get(path).await.text().await.unwrap();
    let post = async |path: &str, uri: &str| {
        app.client
            .post(format!("{}{path}", app.address))
            .form(&[("csrf_token", csrf.as_str()), ("uri", uri)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    for (spelling, canonical) in [
        ("http://2130706433/cb", "http://127.0.0.1/cb"),
        ("http://0x7f000001/cb", "http://127.0.0.1/cb"),
        ("http://0177.0.0.1/cb", "http://127.0.0.1/cb"),
        ("http://127.1/cb", "http://127.0.0.1/cb"),
        ("http://LOCALHOST:9/cb", "http://localhost:9/cb"),
        ("https://App.Example.com/cb", "https://app.example.com/cb"),
    ] {
        let flash = add_uri(&get, &post, spelling).await;
        assert!(
            flash.starts_with("The redirect URI was not added.") && flash.ends_with(canonical),
            "{spelling}: {flash}"
        );
    }
    let flash = add_uri(&get, &post, "http://127.0.0.1/cb").await;
    assert_eq!(flash, "Added http://127.0.0.1/cb to the whitelist.");
    let flash = add_uri(&get, &post, "http://localhost:9/cb").await;
    assert_eq!(flash, "Added http://localhost:9/cb to the whitelist.");
    let stored = count(
        &app.db,
        "SELECT count(*) AS n FROM redirect_uris WHERE uri NOT IN ('http://127.0.0.1/cb', 'http://localhost:9/cb')",
    )
    .await;
    assert_eq!(stored, 0, "only the canonical spellings were stored");
    app.stop().await;

    // finchgate on https: no plain http at all, not even for localhost.
    let app = spawn_app_with(|s| {
        s.public_url = url::Url::parse("https://finchgate.example").unwrap();
    })
    .await;
    let tenant = app.create_tenant("acme").await;
    let admin = app.create_user("admin@acme.test", Some(tenant)).await;
    let browser = HandJar::new(&app);
    let csrf = crate::helpers::csrf_token_in(&browser.get("/login").await.text().await.unwrap());
    let response = browser
        .post(
            "/login",
            &[
                ("email", admin.email.as_str()),
                ("password", admin.password.as_str()),
                ("csrf_token", csrf.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "signed in over the https settings");
    let csrf =
        crate::helpers::csrf_token_in(&browser.get("/t/acme/settings").await.text().await.unwrap());
    let get = async |path: &str| browser.get(path).await.text().await.unwrap();
    let post = async |path: &str, uri: &str| {
        browser
            .post(path, &[("csrf_token", csrf.as_str()), ("uri", uri)])
            .await
            .status()
            .as_u16()
    };
    for uri in ["http://localhost:9/cb", "http://127.0.0.1:9/cb"] {
        let flash = add_uri(&get, &post, uri).await;
        assert!(
            flash.starts_with("The redirect URI was not added.") && flash.contains("use https"),
            "{uri}: {flash}"
        );
    }
    let flash = add_uri(&get, &post, "https://app.example.com/cb").await;
    assert_eq!(flash, "Added https://app.example.com/cb to the whitelist.");
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM redirect_uris").await,
        1
    );
    app.stop().await;
}
