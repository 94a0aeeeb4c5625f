//! The vault as stored in PostgreSQL (SECURITY.md T20, T21, T24): an envelope moved to another
//! row, altered or cut short in the database is never used; nonces and data keys never repeat
//! under a key, and every wrap is counted per key.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use finchgate::vault::{Purpose, RowContext, Vault};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use uuid::Uuid;

use crate::helpers::{TestApp, connection_id_from, count, random_bytes, spawn_app};

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

/// Wraps under `kek` counted in `keyring_wraps`, and sealed values stored under it.
async fn wraps_and_stored_values(app: &TestApp, kek: &str) -> (i64, i64) {
    let wraps = count(
        &app.db,
        &format!(
            "SELECT coalesce(sum(wrap_count), 0)::bigint AS n FROM keyring_wraps WHERE kek_id = '{kek}'"
        ),
    )
    .await;
    let stored = count(
        &app.db,
        &format!(
            "SELECT (SELECT count(*) FROM connection_tokens WHERE kek_id = '{kek}')
                  + (SELECT count(*) FROM finch_credentials WHERE secret_kek_id = '{kek}') AS n"
        ),
    )
    .await;
    (wraps, stored)
}

#[tokio::test]
async fn t24_every_stored_sealed_value_counts_one_wrap_for_its_key_in_the_database() {
    let app = spawn_app().await;
    let kek = app.vault().active_kek_id().as_str().to_owned();
    assert_eq!(wraps_and_stored_values(&app, &kek).await, (0, 0));
    connected(&app, "acme", &app.new_browser()).await;
    assert_eq!(
        wraps_and_stored_values(&app, &kek).await,
        (2, 2),
        "the client secret and the token"
    );
    connected(&app, "globex", &app.new_browser()).await;
    assert_eq!(wraps_and_stored_values(&app, &kek).await, (4, 4));
    app.stop().await;
}

/// The fields of a stored envelope, read by the layout documented in `src/vault/envelope.rs`
/// rather than by the vault's own parser, so a parser bug cannot hide a sealing bug.
#[derive(Debug, PartialEq, Eq)]
struct EnvelopeFields {
    dek_nonce: [u8; 12],
    wrapped_dek: [u8; 48],
    value_nonce: [u8; 12],
    value_ciphertext: Vec<u8>,
}

fn fields_of(envelope: &[u8]) -> EnvelopeFields {
    assert_eq!(envelope[0], 1, "format version");
    let at = 2 + usize::from(envelope[1]);
    EnvelopeFields {
        dek_nonce: envelope[at..at + 12].try_into().unwrap(),
        wrapped_dek: envelope[at + 12..at + 60].try_into().unwrap(),
        value_nonce: envelope[at + 60..at + 72].try_into().unwrap(),
        value_ciphertext: envelope[at + 72..].to_vec(),
    }
}

const T24_KEK: &str = "t24";

/// A vault over a master key of the test's own, configured the way the application reads
/// `FINCHGATE_MASTER_KEYS`; and that key's bytes.
fn configured_vault() -> (Vault, [u8; 32]) {
    let key = random_bytes::<32>();
    let keys = format!("{T24_KEK}:{}", STANDARD.encode(key));
    let keyring = finchgate::config::parse_keyring(Some(&keys), None).unwrap();
    (Vault::new(keyring), key)
}

/// The data key inside `fields`, unwrapped with the master key directly (ring, not the vault),
/// with the wrap AAD rebuilt by the layout documented in `src/vault/aad.rs`.
fn data_key_of(master_key: &[u8; 32], ctx: &RowContext, fields: &EnvelopeFields) -> [u8; 32] {
    fn prefixed(aad: &mut Vec<u8>, field: &[u8]) {
        aad.push(u8::try_from(field.len()).unwrap());
        aad.extend_from_slice(field);
    }
    let mut aad = Vec::new();
    prefixed(&mut aad, b"finchgate.vault.dek-wrap");
    aad.push(1);
    prefixed(&mut aad, ctx.purpose().label().as_bytes());
    aad.extend_from_slice(ctx.tenant_id().as_bytes());
    aad.extend_from_slice(ctx.row_id().as_bytes());
    prefixed(&mut aad, T24_KEK.as_bytes());
    let kek = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, master_key).unwrap());
    let mut wrapped = fields.wrapped_dek;
    let dek = kek
        .open_in_place(
            Nonce::assume_unique_for_key(fields.dek_nonce),
            Aad::from(aad),
            &mut wrapped,
        )
        .expect("the wrapped data key opens under the master key");
    dek.try_into().unwrap()
}

#[test]
fn t24_one_value_sealed_twice_in_one_row_shares_no_nonce_data_key_or_ciphertext() {
    let (vault, master_key) = configured_vault();
    let ctx = RowContext::new(Purpose::AccessToken, Uuid::new_v4(), Uuid::new_v4());
    let first = fields_of(&vault.seal(&ctx, b"sandbox-token").unwrap().envelope);
    let second = fields_of(&vault.seal(&ctx, b"sandbox-token").unwrap().envelope);
    assert_ne!(first.dek_nonce, second.dek_nonce, "wrap nonce reused");
    assert_ne!(
        first.wrapped_dek, second.wrapped_dek,
        "wrapped data key repeated"
    );
    assert_ne!(
        data_key_of(&master_key, &ctx, &first),
        data_key_of(&master_key, &ctx, &second),
        "data key reused"
    );
    assert_ne!(first.value_nonce, second.value_nonce, "value nonce reused");
    assert_ne!(
        first.value_ciphertext, second.value_ciphertext,
        "same ciphertext for the same value"
    );
    for fields in [&first, &second] {
        assert_ne!(
            fields.dek_nonce, fields.value_nonce,
            "one nonce used for both layers"
        );
    }
}

#[test]
fn t24_five_thousand_seals_under_one_key_never_repeat_a_nonce_or_a_data_key() {
    const SEALS: usize = 5_000;
    let (vault, master_key) = configured_vault();
    let ctx = RowContext::new(Purpose::AccessToken, Uuid::new_v4(), Uuid::new_v4());
    let mut wrap_nonces = HashSet::with_capacity(SEALS);
    let mut value_nonces = HashSet::with_capacity(SEALS);
    let mut data_keys = HashSet::with_capacity(SEALS);
    for i in 0..SEALS {
        let fields = fields_of(&vault.seal(&ctx, b"sandbox-token").unwrap().envelope);
        assert!(
            wrap_nonces.insert(fields.dek_nonce),
            "wrap nonce repeated at seal {i}"
        );
        assert!(
            value_nonces.insert(fields.value_nonce),
            "value nonce repeated at seal {i}"
        );
        assert!(
            data_keys.insert(data_key_of(&master_key, &ctx, &fields)),
            "data key repeated at seal {i}"
        );
    }
    // Both nonces come from one random draw per seal: a wrap nonce coming back as a value nonce
    // would mean the draw is split wrongly or repeats.
    assert!(wrap_nonces.is_disjoint(&value_nonces));
}
