//! `connection_tokens`: the envelope-encrypted access token of a connection.

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::connection_tokens;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = connection_tokens, check_for_backend(diesel::pg::Pg))]
pub struct TokenRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub kek_id: String,
    pub envelope: Vec<u8>,
    pub credentials_version: Option<i32>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Stores the token of a connection, replacing any previous one (reauth) in the same statement.
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    connection_id: Uuid,
    kek_id: &str,
    envelope: &[u8],
    credentials_version: Option<i32>,
) -> QueryResult<usize> {
    diesel::insert_into(connection_tokens::table)
        .values((
            connection_tokens::tenant_id.eq(tenant_id),
            connection_tokens::connection_id.eq(connection_id),
            connection_tokens::kek_id.eq(kek_id),
            connection_tokens::envelope.eq(envelope),
            connection_tokens::credentials_version.eq(credentials_version),
        ))
        .on_conflict(connection_tokens::connection_id)
        .do_update()
        .set((
            connection_tokens::kek_id.eq(kek_id),
            connection_tokens::envelope.eq(envelope),
            connection_tokens::credentials_version.eq(credentials_version),
            connection_tokens::created_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    connection_id: Uuid,
) -> QueryResult<Option<TokenRow>> {
    connection_tokens::table
        .filter(connection_tokens::tenant_id.eq(tenant_id))
        .filter(connection_tokens::connection_id.eq(connection_id))
        .select(TokenRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Deletes the token (crypto-shredding it: its data key existed only in this row).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    connection_id: Uuid,
) -> QueryResult<usize> {
    diesel::delete(
        connection_tokens::table
            .filter(connection_tokens::tenant_id.eq(tenant_id))
            .filter(connection_tokens::connection_id.eq(connection_id)),
    )
    .execute(conn)
    .await
}
