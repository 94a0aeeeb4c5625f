//! The vault as stored in PostgreSQL (SECURITY.md T20, T21, T24): an envelope moved to another
//! row, altered or cut short in the database is never used, and nonces never repeat under a key.

use std::collections::HashSet;

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use finchgate::vault::{Purpose, RowContext};
use uuid::Uuid;

use crate::helpers::{TestApp, connection_id_from, count, spawn_app};

async fn execute(app: &TestApp, sql: &str) {
    let mut conn = app.db.connect().await;
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

/// Connects tenant `slug` through the emulator (its admin in `browser`); returns the connection id.
async fn connected(app: &TestApp, slug: &str, browser: &reqwest::Client) -> Uuid {
    let setup = app.setup_connect_in(slug, browser).await;
    let url = app.redirect_callback_url(browser, &setup).await;
    let response = browser.get(url).send().await.unwrap();
    connection_id_from(response.headers()["location"].to_str().unwrap())
}

/// POSTs "Refresh status" (which opens the stored token) for a connection.
async fn refresh(app: &TestApp, browser: &reqwest::Client, slug: &str, id: Uuid) -> (u16, String) {
    let page = format!("/t/{slug}/connections/{id}");
    let csrf = app.csrf_of(browser, &page).await;
    let response = browser
        .post(format!("{}{page}/refresh", app.address))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The page a tenant admin sees when the stored token does not open, with no plaintext on it.
fn assert_integrity_page(app: &TestApp, status: u16, body: &str) {
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("failed its integrity check"), "{body}");
    assert!(body.contains("Reconnect"), "{body}");
    for issued in app.sandbox.issued_tokens() {
        use secrecy::ExposeSecret as _;
        assert!(!body.contains(issued.access_token.expose_secret()));
    }
}

#[tokio::test]
async fn t20_a_token_envelope_copied_into_another_tenants_row_does_not_open() {
    let app = spawn_app().await;
    let browser_a = app.new_browser();
    let browser_b = app.new_browser();
    let a = connected(&app, "tenant-a", &browser_a).await;
    let b = connected(&app, "tenant-b", &browser_b).await;
    // An attacker with write access to the table copies A's envelope over B's.
    execute(
        &app,
        &format!(
            "UPDATE connection_tokens SET envelope = (SELECT envelope FROM connection_tokens WHERE connection_id = '{a}'),
                    kek_id = (SELECT kek_id FROM connection_tokens WHERE connection_id = '{a}')
              WHERE connection_id = '{b}'"
        ),
    )
    .await;
    let introspections = app.sandbox.count("GET", "/introspect");
    let (status, body) = refresh(&app, &browser_b, "tenant-b", b).await;
    assert_integrity_page(&app, status, &body);
    assert_eq!(
        app.sandbox.count("GET", "/introspect"),
        introspections,
        "A's token was not sent to Finch on B's behalf"
    );
    assert_eq!(
        count(
            &app.db,
            &format!(
                "SELECT count(*) AS n FROM audit_events
                  WHERE action = 'connection.token_integrity_failed' AND target_id = '{b}'"
            )
        )
        .await,
        1,
        "the failure is an audit event operators see"
    );
    // A's own token still works.
    let (status, _) = refresh(&app, &browser_a, "tenant-a", a).await;
    assert_eq!(status, 303);
    app.stop().await;
}

#[tokio::test]
async fn t21_a_stored_envelope_altered_or_cut_short_is_refused_every_time() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let id = connected(&app, "acme", &browser).await;
    let tampering = [
        // One bit of the value ciphertext (the last byte is in the GCM tag).
        "set_byte(envelope, length(envelope) - 20, get_byte(envelope, length(envelope) - 20) # 1)",
        // One bit of the wrapped data key.
        "set_byte(envelope, length(kek_id) + 20, get_byte(envelope, length(kek_id) + 20) # 128)",
        // The version byte.
        "set_byte(envelope, 0, 2)",
        // Truncated, and extended.
        "substring(envelope FROM 1 FOR length(envelope) - 1)",
        "envelope || '\\x00'::bytea",
    ];
    for change in tampering {
        let original = {
            #[derive(QueryableByName)]
            struct Env {
                #[diesel(sql_type = diesel::sql_types::Bytea)]
                envelope: Vec<u8>,
            }
            let mut conn = app.db.connect().await;
            diesel::sql_query(format!(
                "SELECT envelope FROM connection_tokens WHERE connection_id = '{id}'"
            ))
            .get_result::<Env>(&mut conn)
            .await
            .unwrap()
            .envelope
        };
        execute(
            &app,
            &format!(
                "UPDATE connection_tokens SET envelope = {change} WHERE connection_id = '{id}'"
            ),
        )
        .await;
        let (status, body) = refresh(&app, &browser, "acme", id).await;
        assert_integrity_page(&app, status, &body);
        // Put the original back for the next alteration.
        let mut conn = app.db.connect().await;
        diesel::sql_query("UPDATE connection_tokens SET envelope = $1 WHERE connection_id = $2")
            .bind::<diesel::sql_types::Bytea, _>(&original)
            .bind::<diesel::sql_types::Uuid, _>(id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(
        app.sandbox.count("GET", "/introspect"),
        0,
        "no altered token was ever used"
    );
    let (status, _) = refresh(&app, &browser, "acme", id).await;
    assert_eq!(status, 303, "the untouched envelope still opens");
    app.stop().await;
}

#[tokio::test]
async fn t24_a_million_seals_never_repeat_a_nonce_and_wraps_are_counted_per_key() {
    let app = spawn_app().await;
    let vault = app.vault();
    // Under one master key, the nonce that wraps each data key must never repeat (and each data
    // key is fresh, so the value layer's (key, nonce) pairs cannot repeat either).
    let repeated = tokio::task::spawn_blocking(move || {
        let tenant = Uuid::new_v4();
        let row = Uuid::new_v4();
        let ctx = RowContext::new(Purpose::AccessToken, tenant, row);
        let mut seen: HashSet<[u8; 12]> = HashSet::with_capacity(1_000_000);
        let mut repeated = 0_u32;
        for _ in 0..1_000_000 {
            let sealed = vault.seal(&ctx, b"sandbox-token").unwrap();
            let id_len = usize::from(sealed.envelope[1]);
            let nonce: [u8; 12] = sealed.envelope[2 + id_len..14 + id_len].try_into().unwrap();
            if !seen.insert(nonce) {
                repeated += 1;
            }
        }
        (repeated, seen.len())
    })
    .await
    .unwrap();
    assert_eq!(repeated, (0, 1_000_000));
    // Every sealed value the product stores counts one wrap for its key, in the database.
    let browser = app.new_browser();
    connected(&app, "acme", &browser).await;
    let kek = app.vault().active_kek_id().as_str().to_owned();
    assert_eq!(
        count(
            &app.db,
            &format!(
                "SELECT coalesce(sum(wrap_count), 0)::bigint AS n FROM keyring_wraps WHERE kek_id = '{kek}'"
            )
        )
        .await,
        2,
        "the client secret and the token"
    );
    app.stop().await;
}
