//! `idempotency_keys`: the answers of POSTs sent with an `Idempotency-Key`, per API key, for 24 h.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::idempotency_keys;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys, check_for_backend(diesel::pg::Pg))]
pub struct IdempotencyRow {
    pub api_key_id: Uuid,
    pub idempotency_key: String,
    pub tenant_id: Uuid,
    pub request_hash: Vec<u8>,
    pub response_status: Option<i16>,
    pub response_body: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Claims `(api_key_id, key)` for a request: `true` when this call inserted the row (and so does
/// the work), `false` when a row is already there. A row older than `expired_before` is
/// replaced, as if it had been purged.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    api_key_id: Uuid,
    key: &str,
    request_hash: &[u8],
    now: DateTime<Utc>,
    expired_before: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::api_key_id.eq(api_key_id))
            .filter(idempotency_keys::idempotency_key.eq(key))
            .filter(idempotency_keys::created_at.lt(expired_before)),
    )
    .execute(conn)
    .await?;
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::api_key_id.eq(api_key_id),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::tenant_id.eq(tenant_id),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    api_key_id: Uuid,
    key: &str,
) -> QueryResult<Option<IdempotencyRow>> {
    idempotency_keys::table
        .filter(idempotency_keys::api_key_id.eq(api_key_id))
        .filter(idempotency_keys::idempotency_key.eq(key))
        .select(IdempotencyRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Stores the answer of the claimed request.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    api_key_id: Uuid,
    key: &str,
    status: i16,
    body: &str,
) -> QueryResult<usize> {
    diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::api_key_id.eq(api_key_id))
            .filter(idempotency_keys::idempotency_key.eq(key)),
    )
    .set((
        idempotency_keys::response_status.eq(status),
        idempotency_keys::response_body.eq(body),
    ))
    .execute(conn)
    .await
}

/// Forgets a claim whose work failed without an answer worth replaying (a retry may run it again).
pub async fn release(
    conn: &mut AsyncPgConnection,
    api_key_id: Uuid,
    key: &str,
) -> QueryResult<usize> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::api_key_id.eq(api_key_id))
            .filter(idempotency_keys::idempotency_key.eq(key))
            .filter(idempotency_keys::response_status.is_null()),
    )
    .execute(conn)
    .await
}

/// Deletes rows created before `cutoff` (their 24 hours are over), at most `batch`.
pub async fn purge_before(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM idempotency_keys WHERE (api_key_id, idempotency_key) IN (
            SELECT api_key_id, idempotency_key FROM idempotency_keys
             WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
    .await
}
