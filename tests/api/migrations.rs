//! The embedded migrations: up, down, up again, on an empty database.

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;

use crate::helpers::TestDatabase;

#[derive(QueryableByName)]
struct Table {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
}

async fn tables(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    let rows: Vec<Table> = diesel::sql_query(
        "SELECT table_name::text AS table_name FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|t| t.table_name).collect()
}

const DATA_MODEL: &[&str] = &[
    "api_keys",
    "audit_events",
    "connect_flows",
    "connect_links",
    "connection_tokens",
    "connections",
    "exchange_attempts",
    "finch_credentials",
    "idempotency_keys",
    "invitations",
    "keyring",
    "keyring_wraps",
    "password_resets",
    "rate_limits",
    "recovery_codes",
    "redirect_uris",
    "sessions",
    "tenants",
    "user_totp",
    "users",
];

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDatabase::empty().await;
    let applied = finchgate::db::migrations::run_pending(&db.url)
        .await
        .unwrap();
    assert_eq!(
        applied.len(),
        finchgate::db::migrations::embedded_versions()
            .unwrap()
            .len()
    );
    assert_eq!(tables(&db).await, DATA_MODEL);

    let reverted = finchgate::db::migrations::revert_all(&db.url)
        .await
        .unwrap();
    assert_eq!(reverted.len(), applied.len());
    assert!(
        tables(&db).await.is_empty(),
        "every down.sql removes what its up.sql made"
    );

    finchgate::db::migrations::run_pending(&db.url)
        .await
        .unwrap();
    assert_eq!(tables(&db).await, DATA_MODEL);
    assert!(
        finchgate::db::migrations::pending_versions(&db.url)
            .await
            .unwrap()
            .is_empty()
    );
    // Running again applies nothing.
    assert!(
        finchgate::db::migrations::run_pending(&db.url)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_finished_ledger_row_cannot_be_changed_or_deleted() {
    let db = TestDatabase::migrated().await;
    let mut conn = db.connect().await;
    diesel::sql_query(
        "WITH t AS (INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id)
         INSERT INTO exchange_attempts (id, tenant_id, stage, finished_at, outcome, category, actor)
         SELECT '00000000-0000-0000-0000-000000000001', id, 'exchange', now(), 'failed', 'invalid_grant', 'end_user' FROM t",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let id = "'00000000-0000-0000-0000-000000000001'";
    let changed = diesel::sql_query(format!(
        "UPDATE exchange_attempts SET outcome = 'succeeded' WHERE id = {id}"
    ))
    .execute(&mut conn)
    .await;
    assert!(changed.unwrap_err().to_string().contains("immutable"));
    let deleted = diesel::sql_query(format!("DELETE FROM exchange_attempts WHERE id = {id}"))
        .execute(&mut conn)
        .await;
    assert!(deleted.unwrap_err().to_string().contains("immutable"));
    // The operator review fields stay writable.
    let reviewed = diesel::sql_query(format!(
        "UPDATE exchange_attempts SET review_state = 'resolved', review_note = 'fixed creds', reviewed_at = now() WHERE id = {id}"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(reviewed, 1);
}
