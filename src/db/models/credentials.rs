//! `finch_credentials`: a tenant's versioned Finch client id and envelope-encrypted client secret.

use crate::db::prelude::*;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::schema::{finch_credentials, tenants};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = finch_credentials, check_for_backend(diesel::pg::Pg))]
pub struct Credentials {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub version: i32,
    pub client_id: String,
    pub secret_kek_id: Option<String>,
    pub secret_envelope: Option<Vec<u8>>,
    pub secret_last4: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub replaced_at: Option<DateTime<Utc>>,
}

/// What a new version of the credentials is made of; `id` is chosen before sealing, because the
/// envelope's associated data binds it to this row.
pub struct NewCredentials<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: &'a str,
    pub secret_kek_id: &'a str,
    pub secret_envelope: &'a [u8],
    pub secret_last4: &'a str,
    pub created_by: Option<Uuid>,
}

/// The tenant's current credentials, if any.
pub async fn current(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
) -> QueryResult<Option<Credentials>> {
    finch_credentials::table
        .inner_join(
            tenants::table.on(tenants::id
                .eq(finch_credentials::tenant_id)
                .and(tenants::credentials_version.eq(finch_credentials::version.nullable()))),
        )
        .filter(finch_credentials::tenant_id.eq(tenant_id))
        .select(Credentials::as_select())
        .first(conn)
        .await
        .optional()
}

/// A tenant's credentials of `version` (current or replaced).
pub async fn by_version(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    version: i32,
) -> QueryResult<Option<Credentials>> {
    finch_credentials::table
        .filter(finch_credentials::tenant_id.eq(tenant_id))
        .filter(finch_credentials::version.eq(version))
        .select(Credentials::as_select())
        .first(conn)
        .await
        .optional()
}

/// Erases (crypto-shreds) the secret of every replaced version that no unfinished Connect flow
/// (`pending` or `exchanging`) still uses, keeping its metadata; of one tenant, or of all.
/// Returns how many were erased.
pub async fn erase_unused(
    conn: &mut AsyncPgConnection,
    tenant_id: Option<Uuid>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE finch_credentials c SET secret_envelope = NULL, secret_kek_id = NULL
          WHERE c.replaced_at IS NOT NULL AND c.secret_envelope IS NOT NULL
            AND ($1::uuid IS NULL OR c.tenant_id = $1)
            AND NOT EXISTS (
                SELECT 1 FROM connect_flows f
                 WHERE f.tenant_id = c.tenant_id AND f.credentials_version = c.version
                   AND f.status IN ('pending', 'exchanging'))",
    )
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(tenant_id)
    .execute(conn)
    .await
}

/// Stores a new version and makes it current. The previous secret stays sealed while a Connect
/// flow started under it may still exchange a code (Finch issued the code to that client), and is
/// erased as soon as none does ([`erase_unused`], here and in every housekeeping pass). Call
/// inside a transaction.
pub async fn replace(conn: &mut AsyncPgConnection, new: &NewCredentials<'_>) -> QueryResult<i32> {
    let version: i32 = finch_credentials::table
        .filter(finch_credentials::tenant_id.eq(new.tenant_id))
        .select(diesel::dsl::max(finch_credentials::version))
        .first::<Option<i32>>(conn)
        .await?
        .map_or(1, |v| v + 1);
    diesel::update(
        finch_credentials::table
            .filter(finch_credentials::tenant_id.eq(new.tenant_id))
            .filter(finch_credentials::replaced_at.is_null()),
    )
    .set(finch_credentials::replaced_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    diesel::insert_into(finch_credentials::table)
        .values((
            finch_credentials::id.eq(new.id),
            finch_credentials::tenant_id.eq(new.tenant_id),
            finch_credentials::version.eq(version),
            finch_credentials::client_id.eq(new.client_id),
            finch_credentials::secret_kek_id.eq(new.secret_kek_id),
            finch_credentials::secret_envelope.eq(new.secret_envelope),
            finch_credentials::secret_last4.eq(new.secret_last4),
            finch_credentials::created_by.eq(new.created_by),
        ))
        .execute(conn)
        .await?;
    diesel::update(tenants::table.find(new.tenant_id))
        .set((
            tenants::credentials_version.eq(version),
            tenants::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    erase_unused(conn, Some(new.tenant_id)).await?;
    Ok(version)
}
