//! The rotation's SQL: windows of primary keys, rows locked with `SKIP LOCKED`, envelopes written
//! back in bulk, and the count of rows still under old keys.

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bytea, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use super::Table;
use crate::vault::KekId;

/// A row under an old key, locked by this batch's transaction.
#[derive(QueryableByName)]
pub(super) struct LockedRow {
    #[diesel(sql_type = SqlUuid)]
    pub(super) id: Uuid,
    /// The nil UUID for rows of no tenant (operators' TOTP secrets), as in their AAD.
    #[diesel(sql_type = SqlUuid)]
    pub(super) tenant_id: Uuid,
    /// The row id the envelope's AAD binds: the credentials row's own id, the token's connection,
    /// the TOTP secret's user (its primary key).
    #[diesel(sql_type = SqlUuid)]
    pub(super) bound_id: Uuid,
    #[diesel(sql_type = Bytea)]
    pub(super) envelope: Vec<u8>,
}

#[derive(QueryableByName)]
struct KeyIdRow {
    #[diesel(sql_type = Text)]
    kek_id: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every registered key but the active one. Envelope key columns reference `keyring`, so these
/// are all the keys a row can be under.
pub(super) async fn old_keys(
    conn: &mut AsyncPgConnection,
    active: &KekId,
) -> Result<Vec<String>, diesel::result::Error> {
    let rows: Vec<KeyIdRow> = diesel::sql_query("SELECT kek_id FROM keyring WHERE kek_id <> $1")
        .bind::<Text, _>(active.as_str())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.kek_id).collect())
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The next `limit` primary keys of `table` after `after`, in order (a range scan of the
/// primary key index).
pub(super) async fn window_ids(
    conn: &mut AsyncPgConnection,
    table: Table,
    after: Uuid,
    limit: i64,
) -> Result<Vec<Uuid>, diesel::result::Error> {
    let sql = match table {
        Table::FinchCredentials => {
            "SELECT id FROM finch_credentials WHERE id > $1 ORDER BY id LIMIT $2"
        }
        Table::ConnectionTokens => {
            "SELECT id FROM connection_tokens WHERE id > $1 ORDER BY id LIMIT $2"
        }
        Table::UserTotp => {
            "SELECT user_id AS id FROM user_totp WHERE user_id > $1 ORDER BY user_id LIMIT $2"
        }
    };
    let rows: Vec<IdRow> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Locks the rows of `window` that are under an old key and not known to fail; skips rows
/// another transaction holds. The key condition is checked again on the locked row version,
/// so a row another rotator has just moved is not taken.
pub(super) async fn lock_rows(
    conn: &mut AsyncPgConnection,
    table: Table,
    old_keys: &[String],
    window: &[Uuid],
    failed: &[Uuid],
) -> Result<Vec<LockedRow>, diesel::result::Error> {
    let sql = match table {
        Table::FinchCredentials => {
            "SELECT id, tenant_id, id AS bound_id, secret_envelope AS envelope
               FROM finch_credentials
              WHERE id = ANY($1) AND secret_kek_id = ANY($2) AND secret_envelope IS NOT NULL
                AND id <> ALL($3)
                FOR UPDATE SKIP LOCKED"
        }
        Table::ConnectionTokens => {
            "SELECT id, tenant_id, connection_id AS bound_id, envelope
               FROM connection_tokens
              WHERE id = ANY($1) AND kek_id = ANY($2) AND id <> ALL($3)
                FOR UPDATE SKIP LOCKED"
        }
        // Operators' secrets have no tenant: their AAD binds the nil UUID (`two_factor::row_context`).
        Table::UserTotp => {
            "SELECT user_id AS id,
                    coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid) AS tenant_id,
                    user_id AS bound_id, secret_envelope AS envelope
               FROM user_totp
              WHERE user_id = ANY($1) AND secret_kek_id = ANY($2) AND user_id <> ALL($3)
                FOR UPDATE SKIP LOCKED"
        }
    };
    diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(window)
        .bind::<Array<Text>, _>(old_keys)
        .bind::<Array<SqlUuid>, _>(failed)
        .load(conn)
        .await
}

/// Writes re-wrapped envelopes back, with their key column set to the active key.
pub(super) async fn write_rows(
    conn: &mut AsyncPgConnection,
    table: Table,
    active: &KekId,
    updates: Vec<(Uuid, Vec<u8>)>,
) -> Result<(), diesel::result::Error> {
    if updates.is_empty() {
        return Ok(());
    }
    let sql = match table {
        Table::FinchCredentials => {
            "UPDATE finch_credentials AS t SET secret_kek_id = $1, secret_envelope = v.envelope
               FROM unnest($2::uuid[], $3::bytea[]) AS v(id, envelope)
              WHERE t.id = v.id"
        }
        Table::ConnectionTokens => {
            "UPDATE connection_tokens AS t SET kek_id = $1, envelope = v.envelope
               FROM unnest($2::uuid[], $3::bytea[]) AS v(id, envelope)
              WHERE t.id = v.id"
        }
        Table::UserTotp => {
            "UPDATE user_totp AS t SET secret_kek_id = $1, secret_envelope = v.envelope
               FROM unnest($2::uuid[], $3::bytea[]) AS v(id, envelope)
              WHERE t.user_id = v.id"
        }
    };
    let expected = updates.len();
    let (ids, envelopes): (Vec<Uuid>, Vec<Vec<u8>>) = updates.into_iter().unzip();
    let updated = diesel::sql_query(sql)
        .bind::<Text, _>(active.as_str())
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Bytea>, _>(envelopes)
        .execute(conn)
        .await?;
    if updated != expected {
        // The rows are locked by this transaction, so this cannot happen; if it does, roll back.
        return Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(format!(
                "{table}: expected to update {expected} locked row(s), updated {updated}"
            )),
        ));
    }
    Ok(())
}

/// Rows still under old keys, not counting this run's failures (row ids per table).
pub(super) async fn count_old_rows(
    conn: &mut AsyncPgConnection,
    old_keys: &[String],
    failed_credentials: &[Uuid],
    failed_tokens: &[Uuid],
    failed_totp: &[Uuid],
) -> Result<u64, diesel::result::Error> {
    let count: Count = diesel::sql_query(
        "SELECT (SELECT count(*) FROM finch_credentials
                  WHERE secret_kek_id = ANY($1) AND id <> ALL($2))
              + (SELECT count(*) FROM connection_tokens
                  WHERE kek_id = ANY($1) AND id <> ALL($3))
              + (SELECT count(*) FROM user_totp
                  WHERE secret_kek_id = ANY($1) AND user_id <> ALL($4)) AS n",
    )
    .bind::<Array<Text>, _>(old_keys)
    .bind::<Array<SqlUuid>, _>(failed_credentials)
    .bind::<Array<SqlUuid>, _>(failed_tokens)
    .bind::<Array<SqlUuid>, _>(failed_totp)
    .get_result(conn)
    .await?;
    Ok(u64::try_from(count.n).unwrap_or(0))
}
