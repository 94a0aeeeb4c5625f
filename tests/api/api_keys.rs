//! API keys made and revoked in the tenant's settings and with `finchgate api-key …`: shown once,
//! stored hashed, audited, and refused once revoked.

use secrecy::ExposeSecret as _;

use crate::api_support::Api;
use crate::helpers::{count, csrf_token_in, html_unescape, spawn_app};

/// The key shown on the page answering the creation.
fn shown_key(html: &str) -> String {
    let marker = "id=\"api-key\" class=\"secret\" type=\"text\" value=\"";
    let start = html.find(marker).expect("the new key is shown") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html_unescape(&html[start..end])
}

async fn key_ids(app: &crate::helpers::TestApp) -> Vec<uuid::Uuid> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    use diesel_async::RunQueryDsl as _;
    let mut conn = app.db.connect().await;
    diesel::sql_query("SELECT id FROM api_keys ORDER BY created_at")
        .load::<Id>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[tokio::test]
async fn an_admin_creates_a_key_in_settings_sees_it_once_and_revokes_it() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let setup = app.setup_connect_in("acme", &browser).await;
    let api = Api::new(&app).await;
    let base = &app.address;

    // Reachable by clicking: settings links to the keys page.
    let settings = browser
        .get(format!("{base}/t/acme/settings"))
        .send()
        .await
        .unwrap();
    assert!(
        settings
            .text()
            .await
            .unwrap()
            .contains("href=\"/t/acme/settings/api-keys\"")
    );
    let page = browser
        .get(format!("{base}/t/acme/settings/api-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_token_in(&page.text().await.unwrap());

    // No scope: refused, nothing made.
    let refused = browser
        .post(format!("{base}/t/acme/settings/api-keys"))
        .form(&[("csrf_token", csrf.as_str()), ("name", "backend")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("at least one scope"));
    assert!(key_ids(&app).await.is_empty());

    let created = browser
        .post(format!("{base}/t/acme/settings/api-keys"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "billing backend"),
            ("scope", "connections:read"),
            ("scope", "connections:write"),
            ("expires_in_days", "30"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let html = created.text().await.unwrap();
    let key = shown_key(&html);
    assert!(key.starts_with("fgk_"), "{key}");
    let (prefix, secret) = finchgate::api::keys::split(&key).expect("a well-formed key");

    let list = api.get(&key, "/api/v1/connections").await;
    assert_eq!(list.status, 200, "{}", list.text);

    // Shown once: the list shows the prefix only, and the database holds no copy.
    let again = browser
        .get(format!("{base}/t/acme/settings/api-keys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains(prefix) && again.contains("billing backend"));
    assert!(!again.contains(secret));
    crate::helpers::assert_nowhere_in_database(&app.db, secret).await;
    assert!(again.contains("connections:read, connections:write"));
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM audit_events WHERE action = 'api_key.created' AND actor_kind = 'tenant_admin'").await,
        1
    );

    // Revoke: the key stops working.
    let id = key_ids(&app).await[0];
    let revoked = browser
        .post(format!("{base}/t/acme/settings/api-keys/{id}/revoke"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 303);
    assert_eq!(revoked.headers()["location"], "/t/acme/settings/api-keys");
    assert_eq!(api.get(&key, "/api/v1/connections").await.status, 401);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM audit_events WHERE action = 'api_key.revoked'"
        )
        .await,
        1
    );
    let _ = setup;
    app.stop().await;
}

pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `finchgate` binary with `args` against the test database.
pub(crate) async fn finchgate(app: &crate::helpers::TestApp, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_finchgate"))
        .args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", app.db.url.expose_secret())
        .output()
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn the_cli_creates_lists_and_revokes_keys_printing_a_key_only_once() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let api = Api::new(&app).await;

    let created = finchgate(
        &app,
        &[
            "api-key",
            "create",
            "--tenant",
            "acme",
            "--name",
            "ci",
            "--scope",
            "connections:read",
            "links:write",
            "--expires-in-days",
            "7",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let key = created.stdout.trim().to_owned();
    assert_eq!(created.stdout.lines().count(), 1, "the key alone on stdout");
    let (prefix, secret) = finchgate::api::keys::split(&key).expect("a key");
    assert!(!created.stderr.contains(secret));
    assert_eq!(api.get(&key, "/api/v1/connections").await.status, 200);
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM audit_events WHERE action = 'api_key.created' AND actor_kind = 'cli'").await,
        1
    );

    let listed = finchgate(&app, &["api-key", "list", "--tenant", "acme"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(
        listed.stdout.contains(prefix) && listed.stdout.contains("connections:read,links:write")
    );
    assert!(listed.stdout.contains("active"));
    assert!(!listed.stdout.contains(secret));

    let id = key_ids(&app).await[0].to_string();
    let revoked = finchgate(
        &app,
        &["api-key", "revoke", "--tenant", "acme", "--id", &id],
    )
    .await;
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert_eq!(api.get(&key, "/api/v1/connections").await.status, 401);
    let listed = finchgate(&app, &["api-key", "list", "--tenant", "acme"]).await;
    assert!(listed.stdout.contains("revoked"));

    // Refusals: one line, exit 2, nothing made.
    for args in [
        &[
            "api-key",
            "create",
            "--tenant",
            "nobody",
            "--name",
            "x",
            "--scope",
            "connections:read",
        ][..],
        &[
            "api-key",
            "create",
            "--tenant",
            "acme",
            "--name",
            "x",
            "--scope",
            "everything",
        ][..],
        &["api-key", "revoke", "--tenant", "acme", "--id", "not-an-id"][..],
    ] {
        let run = finchgate(&app, args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // Another tenant's key id: refused like an unknown one.
    app.create_tenant("globex").await;
    let other = finchgate(
        &app,
        &["api-key", "revoke", "--tenant", "globex", "--id", &id],
    )
    .await;
    assert_eq!(other.code, 2, "{}", other.stderr);
    assert_eq!(key_ids(&app).await.len(), 1);
    app.stop().await;
}
