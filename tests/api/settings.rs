//! Tenant settings: Finch credentials (write-only, sealed, versioned, testable) and the
//! redirect-URI whitelist (SECURITY.md AC-1, AC-4, OA-1, LG-1, T20, T25).

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use finchgate::credentials::{self as creds, CredentialsError};
use finchgate::db::models::credentials;
use finchgate::db::{Scope, transaction};
use finchgate::sandbox::{Endpoint, Fault, FaultKind, SandboxApp, ServerErrorStatus};
use finchgate::vault::{Vault, VaultError};
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::helpers::{
    TestApp, TestUser, assert_nowhere_in_database, find_in_database, spawn_app_with_vault,
};

/// A signed-in admin of tenant `acme`, the app, and its vault.
struct Fixture {
    app: TestApp,
    vault: Vault,
    tenant: Uuid,
    admin: TestUser,
    csrf: String,
}

async fn signed_in_admin() -> Fixture {
    let (app, vault) = spawn_app_with_vault().await;
    let tenant = app.create_tenant("acme").await;
    let admin = app.create_user("admin@acme.test", Some(tenant)).await;
    app.login(&admin).await;
    let csrf = app.csrf_of(&app.client, "/t/acme/settings").await;
    Fixture {
        app,
        vault,
        tenant,
        admin,
        csrf,
    }
}

/// A long, unique secret: the needle for database and page scans.
fn new_secret() -> String {
    format!("fsk_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

impl Fixture {
    /// POSTs a form (plus the CSRF token) as the signed-in admin.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", &self.csrf)];
        form.extend_from_slice(fields);
        self.app
            .client
            .post(format!("{}{path}", self.app.address))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Saves the Finch form; asserts POST → 303 → the settings page, and returns that page.
    async fn save(&self, fields: &[(&str, &str)]) -> String {
        let response = self.post("/t/acme/settings/finch", fields).await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/t/acme/settings");
        self.page().await
    }

    async fn save_credentials(&self, client_id: &str, secret: &str) -> String {
        self.save(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("sandbox", "finch"),
            ("products", "company"),
            ("products", "directory"),
        ])
        .await
    }

    async fn page(&self) -> String {
        let response = self.app.get("/t/acme/settings").await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Adds a redirect URI; returns the page after the redirect.
    async fn add_uri(&self, uri: &str) -> String {
        let response = self
            .post("/t/acme/settings/redirect-uris", &[("uri", uri)])
            .await;
        assert_eq!(response.status(), 303, "adding {uri:?}");
        self.page().await
    }

    async fn test_credentials(&self) -> String {
        let response = self.post("/t/acme/settings/finch/test", &[]).await;
        assert_eq!(response.status(), 303);
        self.page().await
    }

    async fn all_credentials(&self) -> Vec<credentials::Credentials> {
        let mut conn = self.app.db.connect().await;
        use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};
        use finchgate::db::schema::finch_credentials as fc;
        fc::table
            .filter(fc::tenant_id.eq(self.tenant))
            .order(fc::version)
            .select(credentials::Credentials::as_select())
            .load(&mut conn)
            .await
            .unwrap()
    }

    async fn current(&self) -> Option<credentials::Credentials> {
        current_of(&self.app, self.tenant).await
    }

    async fn uris(&self, tenant: Uuid) -> Vec<String> {
        let mut conn = self.app.pool.get().await.unwrap();
        transaction(&mut conn, Scope::Tenant(tenant), async |conn| {
            finchgate::db::models::redirect_uris::list(conn, tenant).await
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri)
        .collect()
    }
}

async fn current_of(app: &TestApp, tenant: Uuid) -> Option<credentials::Credentials> {
    let mut conn = app.pool.get().await.unwrap();
    transaction(&mut conn, Scope::Tenant(tenant), async |conn| {
        credentials::current(conn, tenant).await
    })
    .await
    .unwrap()
}

#[derive(QueryableByName, Debug)]
struct AuditRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    action: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    details: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Text)]
    whole: String,
}

async fn audit_rows(app: &TestApp, tenant: Uuid) -> Vec<AuditRow> {
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "SELECT action, details, row_to_json(a)::text AS whole FROM audit_events a
          WHERE tenant_id = $1 AND action NOT LIKE 'login%' ORDER BY occurred_at, id",
    )
    .bind::<diesel::sql_types::Uuid, _>(tenant)
    .load(&mut conn)
    .await
    .unwrap()
}

/// The visible text of the page's flash message (askama escapes `'` and `&`; none of the
/// asserted messages contain them).
fn flash_of(page: &str) -> &str {
    let start = page.find("role=\"status\">").map_or(0, |i| i + 14);
    let end = page[start..].find("</p>").map_or(start, |i| start + i);
    &page[start..end]
}

#[tokio::test]
async fn the_database_scan_finds_a_needle_in_each_form_it_looks_for() {
    use base64::Engine as _;
    let db = crate::helpers::TestDatabase::migrated().await;
    let needle = new_secret();
    assert!(find_in_database(&db, &needle).await.is_empty());
    let hex: String = needle.bytes().map(|b| format!("{b:02X}")).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&needle);
    let mut conn = db.connect().await;
    diesel::sql_query(
        "INSERT INTO keyring (kek_id, check_value) VALUES ('plain', $1), ('b64', $2)",
    )
    .bind::<diesel::sql_types::Bytea, _>(format!("x{needle}y").into_bytes())
    .bind::<diesel::sql_types::Bytea, _>(b64.clone().into_bytes())
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query("INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, now(), 1)")
        .bind::<diesel::sql_types::Text, _>(format!("upper-case hex {hex}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let found = find_in_database(&db, &needle).await;
    let expected = [
        "\"public\".\"keyring\".\"check_value\" (plaintext, 1 rows)",
        "\"public\".\"keyring\".\"check_value\" (base64, 1 rows)",
        "\"public\".\"rate_limits\".\"key\" (hex, 1 rows)",
    ];
    for place in expected {
        assert!(found.iter().any(|f| f == place), "{place} in {found:?}");
    }
    // The URL-safe alphabet differs only in `+` and `/`, so it may match the same row too.
    let url_safe = "\"public\".\"keyring\".\"check_value\" (base64url, 1 rows)";
    assert!(
        found
            .iter()
            .all(|f| expected.contains(&f.as_str()) || f == url_safe),
        "{found:?}"
    );
}

#[tokio::test]
async fn saving_credentials_stores_the_secret_only_as_ciphertext() {
    let f = signed_in_admin().await;
    let secret = new_secret();
    let page = f.save_credentials("client-acme-1", &secret).await;
    assert!(
        flash_of(&page).contains("Saved the client ID, client secret"),
        "{}",
        flash_of(&page)
    );

    let row = f.current().await.expect("credentials are stored");
    assert_eq!(row.version, 1);
    assert_eq!(row.client_id, "client-acme-1");
    assert_eq!(row.secret_last4, &secret[secret.len() - 4..]);
    assert_eq!(row.secret_kek_id.as_deref(), Some("test1"));
    let envelope = row.secret_envelope.clone().expect("an envelope");
    assert!(
        !envelope
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    );
    assert_nowhere_in_database(&f.app.db, &secret).await;
    // The ciphertext is the secret, sealed for exactly this row.
    let opened = creds::open_secret(&f.vault, &row).unwrap();
    assert_eq!(opened.expose_secret(), secret);
    // And the scan does find what is there, so its silence above means something.
    assert!(
        !find_in_database(&f.app.db, "client-acme-1")
            .await
            .is_empty()
    );
    f.app.stop().await;
}

#[tokio::test]
async fn the_settings_page_never_shows_the_secret_only_its_last_four_characters() {
    let f = signed_in_admin().await;
    let before = f.page().await;
    assert!(before.contains("No credentials are stored yet"));
    let secret = new_secret();
    let page = f.save_credentials("client-acme-1", &secret).await;
    let last4 = &secret[secret.len() - 4..];
    assert!(
        page.contains(&format!("••••{last4}")),
        "masked secret shown"
    );
    assert!(page.contains("client-acme-1"));
    assert!(page.contains("admin@acme.test"), "who saved it");
    assert!(!page.contains(&secret));
    assert!(
        !page.contains(&secret[..secret.len() - 4]),
        "no part but the last four characters"
    );
    // Nor on a later visit, nor in the form's fields.
    let again = f.page().await;
    assert!(!again.contains(&secret[..12]));
    assert!(again.contains("Leave blank to keep the current secret"));
    f.app.stop().await;
}

#[tokio::test]
async fn a_new_secret_bumps_the_version_and_erases_the_old_envelope() {
    let f = signed_in_admin().await;
    let (first, second) = (new_secret(), new_secret());
    f.save_credentials("client-acme-1", &first).await;
    let page = f.save_credentials("client-acme-1", &second).await;
    assert!(
        flash_of(&page).contains("Saved the client secret. The credentials are now version 2."),
        "{}",
        flash_of(&page)
    );

    let rows = f.all_credentials().await;
    assert_eq!(rows.len(), 2);
    let (old, new) = (&rows[0], &rows[1]);
    assert_eq!((old.version, new.version), (1, 2));
    assert!(old.secret_envelope.is_none() && old.secret_kek_id.is_none());
    assert!(
        old.replaced_at.is_some(),
        "the old version is kept as history"
    );
    assert!(new.secret_envelope.is_some() && new.replaced_at.is_none());
    assert_eq!(f.current().await.map(|c| c.version), Some(2));
    assert!(matches!(
        creds::open_secret(&f.vault, old),
        Err(CredentialsError::Erased)
    ));
    assert_eq!(
        creds::open_secret(&f.vault, new).unwrap().expose_secret(),
        second
    );
    assert_nowhere_in_database(&f.app.db, &first).await;
    assert_nowhere_in_database(&f.app.db, &second).await;

    // Every seal was counted against the key (NIST SP 800-38D bound).
    let mut conn = f.app.pool.get().await.unwrap();
    let keys = transaction(&mut conn, Scope::System, async |conn| {
        finchgate::db::models::keyring::all(conn).await
    })
    .await
    .unwrap();
    assert_eq!(keys[0].wrap_count, 2);
    assert!(page.contains("<dt>Version</dt><dd>2,"));
    f.app.stop().await;
}

#[tokio::test]
async fn a_blank_secret_keeps_the_current_one_unless_the_client_id_changes() {
    let f = signed_in_admin().await;
    let secret = new_secret();
    f.save_credentials("client-acme-1", &secret).await;

    // Same client id, blank secret: only the other settings change.
    let page = f
        .save(&[
            ("client_id", "client-acme-1"),
            ("client_secret", ""),
            ("sandbox", "provider"),
            ("products", "company"),
            ("products", "directory"),
        ])
        .await;
    assert_eq!(flash_of(&page), "Saved the sandbox mode.");
    assert_eq!(f.current().await.map(|c| c.version), Some(1));

    // A new client id needs its own secret.
    let page = f
        .save(&[
            ("client_id", "client-acme-2"),
            ("client_secret", ""),
            ("sandbox", "provider"),
            ("products", "company"),
        ])
        .await;
    assert!(
        flash_of(&page).contains("Enter the client secret that belongs to the new client ID"),
        "{}",
        flash_of(&page)
    );
    let current = f.current().await.unwrap();
    assert_eq!(
        (current.version, current.client_id.as_str()),
        (1, "client-acme-1")
    );

    // Nothing changed: nothing saved, nothing audited.
    let audits = audit_rows(&f.app, f.tenant).await.len();
    let page = f
        .save(&[
            ("client_id", "client-acme-1"),
            ("client_secret", ""),
            ("sandbox", "provider"),
            ("products", "directory"),
            ("products", "company"),
        ])
        .await;
    assert_eq!(flash_of(&page), "Nothing changed.");
    assert_eq!(audit_rows(&f.app, f.tenant).await.len(), audits);
    f.app.stop().await;
}

#[tokio::test]
async fn bad_credentials_input_is_refused_with_a_clear_message_and_nothing_is_saved() {
    let f = signed_in_admin().await;
    let long_id = "i".repeat(256);
    let long_secret = "s".repeat(1025);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("client_id", "client-1"),
                ("client_secret", ""),
                ("sandbox", "none"),
                ("products", "company"),
            ],
            "Enter the client secret from the Finch dashboard.",
        ),
        (
            vec![
                ("client_id", " "),
                ("client_secret", "abcdefgh"),
                ("sandbox", "none"),
                ("products", "company"),
            ],
            "Enter the client ID from the Finch dashboard.",
        ),
        (
            vec![
                ("client_id", &long_id),
                ("client_secret", "abcdefgh"),
                ("sandbox", "none"),
                ("products", "company"),
            ],
            "The client ID is 256 characters long; the limit is 255.",
        ),
        (
            vec![
                ("client_id", "client-1"),
                ("client_secret", &long_secret),
                ("sandbox", "none"),
                ("products", "company"),
            ],
            "The client secret is 1025 characters long; the limit is 1024.",
        ),
        (
            vec![
                ("client_id", "client-1"),
                ("client_secret", "abcdefgh"),
                ("sandbox", "none"),
            ],
            "Choose at least one product.",
        ),
        (
            vec![
                ("client_id", "client-1"),
                ("client_secret", "abcdefgh"),
                ("sandbox", "none"),
                ("products", "benefits"),
                ("products", "deduction"),
            ],
            "Choose benefits or deduction, not both",
        ),
        (
            vec![
                ("client_id", "client-1"),
                ("client_secret", "abcdefgh"),
                ("sandbox", "sometimes"),
                ("products", "company"),
            ],
            "Choose a sandbox mode",
        ),
    ];
    for (fields, expected) in cases {
        let page = f.save(&fields).await;
        let flash = flash_of(&page);
        assert!(flash.starts_with("Nothing was saved."), "{flash}");
        assert!(flash.contains(expected), "{fields:?}: {flash}");
    }
    // A control character is refused at the edge, before the form is read (issue 13, defect 8):
    // a 400 page naming the field, never its value.
    for (field, fields) in [
        (
            "client_secret",
            [("client_id", "client-1"), ("client_secret", "abcd\nefgh")],
        ),
        (
            "client_id",
            [("client_id", "client\t1"), ("client_secret", "abcdefgh")],
        ),
    ] {
        let mut fields = fields.to_vec();
        fields.extend([("sandbox", "none"), ("products", "company")]);
        let response = f.post("/t/acme/settings/finch", &fields).await;
        assert_eq!(response.status(), 400, "{field}");
        let page = response.text().await.unwrap();
        assert!(page.contains(&format!("“{field}”")), "{field}: {page}");
        assert!(!page.contains("efgh"), "{page}");
    }
    assert!(f.all_credentials().await.is_empty());
    assert!(audit_rows(&f.app, f.tenant).await.is_empty());
    f.app.stop().await;
}

#[tokio::test]
async fn test_credentials_reports_success_for_credentials_finch_knows() {
    let f = signed_in_admin().await;
    let secret = new_secret();
    f.app.sandbox.register_app(SandboxApp {
        client_id: "client-acme-1".into(),
        client_secret: SecretString::from(secret.clone()),
    });
    f.save_credentials("client-acme-1", &secret).await;
    let page = f.test_credentials().await;
    let flash = flash_of(&page);
    assert!(
        flash.starts_with("Finch accepted these credentials. Finch request id: "),
        "{flash}"
    );
    assert!(page.contains("class=\"flash ok\""));
    assert_eq!(f.app.sandbox.count("POST", "/connect/sessions"), 1);
    let request_id = &f.app.sandbox.requests()[0].request_id;
    assert!(flash.contains(request_id.as_str()));
    f.app.stop().await;
}

#[tokio::test]
async fn test_credentials_says_in_plain_words_when_finch_rejects_them() {
    let f = signed_in_admin().await;
    f.app.sandbox.register_app(SandboxApp {
        client_id: "client-acme-1".into(),
        client_secret: SecretString::from(new_secret()),
    });
    f.save_credentials("client-acme-1", &new_secret()).await;
    let page = f.test_credentials().await;
    let flash = flash_of(&page);
    assert!(
        flash.starts_with(
            "Finch rejected the client ID or secret — check them in the Finch dashboard. \
             Finch request id: "
        ),
        "{flash}"
    );
    assert!(page.contains("class=\"flash error\""));
    assert_eq!(f.app.sandbox.count("POST", "/connect/sessions"), 1);
    f.app.stop().await;
}

#[tokio::test]
async fn test_credentials_says_finch_could_not_be_reached_on_a_server_error() {
    let f = signed_in_admin().await;
    let secret = new_secret();
    f.app.sandbox.register_app(SandboxApp {
        client_id: "client-acme-1".into(),
        client_secret: SecretString::from(secret.clone()),
    });
    f.save_credentials("client-acme-1", &secret).await;
    f.app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: ServerErrorStatus::ServiceUnavailable,
        })
        .on(Endpoint::ConnectSessions),
    );
    let page = f.test_credentials().await;
    let flash = flash_of(&page);
    assert!(
        flash.starts_with("Finch could not be reached — try again later. Finch request id: "),
        "{flash}"
    );
    assert_eq!(
        f.app.sandbox.count("POST", "/connect/sessions"),
        1,
        "a 5xx is not retried"
    );
    f.app.stop().await;
}

#[tokio::test]
async fn test_credentials_without_stored_credentials_asks_to_save_them_first() {
    let f = signed_in_admin().await;
    let page = f.test_credentials().await;
    assert!(flash_of(&page).contains("save them first"));
    assert_eq!(f.app.sandbox.count("POST", "/connect/sessions"), 0);
    f.app.stop().await;
}

#[tokio::test]
async fn the_redirect_uri_rules_are_applied_when_adding() {
    let f = signed_in_admin().await;
    let over_long = format!("https://app.example.com/{}", "a".repeat(2048));
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("https://app.example.com/callback", None),
        // A trailing slash makes a different URI, kept as typed.
        ("https://app.example.com/callback/", None),
        ("http://127.0.0.1:9/cb", None),
        ("http://localhost:3000/finch/callback", None),
        (
            "http://evil.example",
            Some("http is allowed only for localhost and loopback addresses"),
        ),
        (
            "https://app.example.com/cb#done",
            Some("must not contain a fragment"),
        ),
        (
            "https://user@app.example.com/cb",
            Some("must not contain a user name or password"),
        ),
        (
            "https://good.example@evil.example/cb",
            Some("must not contain a user name or password"),
        ),
        (
            over_long.as_str(),
            Some("characters long; the limit is 2048."),
        ),
        ("/t/acme/finch/callback", Some("must be an absolute URL")),
        ("javascript:alert(1)", Some("must use https")),
        ("", Some("Enter a redirect URI.")),
    ];
    let mut expected = Vec::new();
    for (uri, refusal) in cases {
        let page = f.add_uri(uri).await;
        let flash = flash_of(&page);
        match refusal {
            None => {
                assert!(flash.starts_with("Added "), "{uri}: {flash}");
                expected.push(uri.to_owned());
            }
            Some(reason) => {
                assert!(
                    flash.starts_with("The redirect URI was not added."),
                    "{uri}: {flash}"
                );
                assert!(flash.contains(reason), "{uri}: {flash}");
            }
        }
    }
    assert_eq!(f.uris(f.tenant).await, expected, "stored byte for byte");
    f.app.stop().await;
}

#[tokio::test]
async fn adding_a_listed_redirect_uri_again_is_reported_politely_and_stored_once() {
    let f = signed_in_admin().await;
    f.add_uri("https://app.example.com/callback").await;
    let page = f.add_uri("https://app.example.com/callback").await;
    assert_eq!(
        flash_of(&page),
        "https://app.example.com/callback is already on the whitelist; nothing was added."
    );
    assert!(page.contains("class=\"flash info\""));
    assert_eq!(f.uris(f.tenant).await.len(), 1);
    let added = audit_rows(&f.app, f.tenant)
        .await
        .into_iter()
        .filter(|a| a.action == "redirect_uri.added")
        .count();
    assert_eq!(added, 1, "a duplicate is no change");
    f.app.stop().await;
}

#[tokio::test]
async fn the_add_form_suggests_the_tenants_own_callback_url() {
    let f = signed_in_admin().await;
    let callback = format!("{}/t/acme/finch/callback", f.app.address);
    let page = f.page().await;
    assert!(
        page.contains(&format!("name=\"uri\" value=\"{callback}\"")),
        "pre-filled with {callback}"
    );
    let page = f.add_uri(&callback).await;
    assert!(
        page.contains("name=\"uri\" value=\"\""),
        "no suggestion once it is listed"
    );
    assert_eq!(f.uris(f.tenant).await, [callback]);
    f.app.stop().await;
}

#[tokio::test]
async fn removing_a_redirect_uri_takes_it_off_the_whitelist() {
    let f = signed_in_admin().await;
    f.add_uri("https://app.example.com/a").await;
    f.add_uri("https://app.example.com/b").await;
    let id = entry_id(&f.app, f.tenant, "https://app.example.com/a").await;
    let response = f
        .post(&format!("/t/acme/settings/redirect-uris/{id}/delete"), &[])
        .await;
    assert_eq!(response.status(), 303);
    let page = f.page().await;
    assert_eq!(
        flash_of(&page),
        "Removed https://app.example.com/a from the whitelist."
    );
    assert_eq!(f.uris(f.tenant).await, ["https://app.example.com/b"]);
    f.app.stop().await;
}

async fn entry_id(app: &TestApp, tenant: Uuid, uri: &str) -> Uuid {
    let mut conn = app.pool.get().await.unwrap();
    transaction(&mut conn, Scope::Tenant(tenant), async |conn| {
        finchgate::db::models::redirect_uris::list(conn, tenant).await
    })
    .await
    .unwrap()
    .into_iter()
    .find(|r| r.uri == uri)
    .map(|r| r.id)
    .expect("the entry exists")
}

async fn add_uri_directly(app: &TestApp, tenant: Uuid, uri: &str) -> Uuid {
    let mut conn = app.pool.get().await.unwrap();
    transaction(&mut conn, Scope::Tenant(tenant), async |conn| {
        finchgate::db::models::redirect_uris::add(conn, tenant, uri, None).await
    })
    .await
    .unwrap()
    .expect("a new entry")
}

#[tokio::test]
async fn removing_another_tenants_redirect_uri_is_not_found_and_removes_nothing() {
    let f = signed_in_admin().await;
    let globex = f.app.create_tenant("globex").await;
    let theirs = add_uri_directly(&f.app, globex, "https://globex.example/cb").await;
    for path in [
        format!("/t/acme/settings/redirect-uris/{theirs}/delete"),
        format!("/t/globex/settings/redirect-uris/{theirs}/delete"),
        format!("/t/acme/settings/redirect-uris/{}/delete", Uuid::new_v4()),
        "/t/acme/settings/redirect-uris/not-a-uuid/delete".to_owned(),
    ] {
        let response = f.post(&path, &[]).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(f.uris(globex).await, ["https://globex.example/cb"]);
    assert!(audit_rows(&f.app, globex).await.is_empty());
    assert!(audit_rows(&f.app, f.tenant).await.is_empty());
    f.app.stop().await;
}

#[tokio::test]
async fn an_admin_of_another_tenant_cannot_see_or_change_these_settings() {
    let f = signed_in_admin().await;
    let secret = new_secret();
    f.save_credentials("client-acme-1", &secret).await;
    let acme_uri = add_uri_directly(&f.app, f.tenant, "https://acme.example/cb").await;

    let globex = f.app.create_tenant("globex").await;
    let intruder = f.app.create_user("admin@globex.test", Some(globex)).await;
    let browser = f.app.new_browser();
    assert_eq!(
        f.app
            .login_with(&browser, &intruder.email, &intruder.password)
            .await
            .status(),
        303
    );
    let csrf = f.app.csrf_of(&browser, "/t/globex/settings").await;
    let get = browser
        .get(format!("{}/t/acme/settings", f.app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    let body = get.text().await.unwrap();
    assert!(!body.contains("client-acme-1") && !body.contains("acme.example"));
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/t/acme/settings/finch".into(),
            vec![
                ("client_id", "stolen"),
                ("client_secret", "attacker-secret-123"),
                ("sandbox", "none"),
                ("products", "company"),
            ],
        ),
        ("/t/acme/settings/finch/test".into(), vec![]),
        (
            "/t/acme/settings/redirect-uris".into(),
            vec![("uri", "https://evil.example/cb")],
        ),
        (
            format!("/t/acme/settings/redirect-uris/{acme_uri}/delete"),
            vec![],
        ),
    ];
    for (path, fields) in posts {
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend(fields);
        let response = browser
            .post(format!("{}{path}", f.app.address))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let current = f.current().await.unwrap();
    assert_eq!(
        (current.version, current.client_id.as_str()),
        (1, "client-acme-1")
    );
    assert_eq!(f.uris(f.tenant).await, ["https://acme.example/cb"]);
    assert_eq!(f.app.sandbox.count("POST", "/connect/sessions"), 0);
    assert!(audit_rows(&f.app, globex).await.is_empty());
    f.app.stop().await;
}

#[tokio::test]
async fn audit_events_name_the_changed_fields_and_never_a_value() {
    let f = signed_in_admin().await;
    let secret = new_secret();
    f.app.sandbox.register_app(SandboxApp {
        client_id: "client-acme-1".into(),
        client_secret: SecretString::from(secret.clone()),
    });
    f.save_credentials("client-acme-1", &secret).await;
    f.save(&[
        ("client_id", "client-acme-1"),
        ("client_secret", ""),
        ("sandbox", "none"),
        ("products", "payment"),
    ])
    .await;
    f.test_credentials().await;
    f.add_uri("https://app.example.com/callback").await;
    let id = entry_id(&f.app, f.tenant, "https://app.example.com/callback").await;
    f.post(&format!("/t/acme/settings/redirect-uris/{id}/delete"), &[])
        .await;

    let rows = audit_rows(&f.app, f.tenant).await;
    let summary: Vec<(&str, serde_json::Value)> = rows
        .iter()
        .map(|r| {
            (
                r.action.as_str(),
                r.details
                    .get("fields")
                    .or_else(|| r.details.get("outcome"))
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "finch_settings.updated",
                serde_json::json!(["client_id", "client_secret", "default_products"])
            ),
            (
                "finch_settings.updated",
                serde_json::json!(["finch_sandbox", "default_products"])
            ),
            ("finch_credentials.tested", serde_json::json!("accepted")),
            ("redirect_uri.added", serde_json::json!(["redirect_uris"])),
            ("redirect_uri.removed", serde_json::json!(["redirect_uris"])),
        ]
    );
    for row in &rows {
        assert!(row.whole.contains(&f.admin.id.to_string()), "who did it");
        for value in [
            secret.as_str(),
            "client-acme-1",
            "app.example.com",
            "payment",
        ] {
            assert!(!row.whole.contains(value), "{value} in {}", row.whole);
        }
    }
    assert_nowhere_in_database(&f.app.db, &secret).await;
    f.app.stop().await;
}

#[tokio::test]
async fn an_envelope_copied_into_another_tenants_credentials_row_does_not_open() {
    let (app, vault) = spawn_app_with_vault().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let acme_secret = new_secret();
    let mut conn = app.pool.get().await.unwrap();
    for (tenant, secret) in [(acme, acme_secret.clone()), (globex, new_secret())] {
        transaction(&mut conn, Scope::Tenant(tenant), async |conn| {
            creds::store(
                conn,
                &vault,
                tenant,
                "client",
                &SecretString::from(secret),
                None,
            )
            .await
        })
        .await
        .unwrap();
    }
    let a = current_of(&app, acme).await.unwrap();
    // The attacker's move: tenant A's envelope pasted into tenant B's current row (as a
    // superuser, past every check the application makes).
    let mut admin_conn = app.db.connect().await;
    diesel::sql_query(
        "UPDATE finch_credentials SET secret_envelope = $1, secret_kek_id = $2
          WHERE tenant_id = $3 AND replaced_at IS NULL",
    )
    .bind::<diesel::sql_types::Bytea, _>(a.secret_envelope.clone().unwrap())
    .bind::<diesel::sql_types::Text, _>(a.secret_kek_id.clone().unwrap())
    .bind::<diesel::sql_types::Uuid, _>(globex)
    .execute(&mut admin_conn)
    .await
    .unwrap();

    let b = current_of(&app, globex).await.unwrap();
    assert_eq!(
        b.secret_envelope, a.secret_envelope,
        "the bytes were copied"
    );
    let opened = creds::open_secret(&vault, &b);
    assert!(
        matches!(opened, Err(CredentialsError::Vault(VaultError::Integrity))),
        "{opened:?}"
    );
    // In its own row the same envelope still opens.
    assert_eq!(
        creds::open_secret(&vault, &a).unwrap().expose_secret(),
        acme_secret
    );
    // Same tenant, another row: also bound to the row, not only to the tenant.
    let moved = credentials::Credentials {
        id: Uuid::new_v4(),
        ..a.clone()
    };
    assert!(matches!(
        creds::open_secret(&vault, &moved),
        Err(CredentialsError::Vault(VaultError::Integrity))
    ));
    app.stop().await;
}
