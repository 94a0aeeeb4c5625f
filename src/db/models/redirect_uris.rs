//! `redirect_uris`: a tenant's whitelist of redirect URIs, matched byte-for-byte.

use crate::db::prelude::*;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::schema::redirect_uris;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = redirect_uris, check_for_backend(diesel::pg::Pg))]
pub struct RedirectUriRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub uri: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// Adds a URI to the tenant's whitelist and returns the new entry's id; an existing identical
/// entry is kept and `None` returned.
pub async fn add(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    uri: &str,
    created_by: Option<Uuid>,
) -> QueryResult<Option<Uuid>> {
    diesel::insert_into(redirect_uris::table)
        .values((
            redirect_uris::tenant_id.eq(tenant_id),
            redirect_uris::uri.eq(uri),
            redirect_uris::created_by.eq(created_by),
        ))
        .on_conflict((redirect_uris::tenant_id, redirect_uris::uri))
        .do_nothing()
        .returning(redirect_uris::id)
        .get_result(conn)
        .await
        .optional()
}

/// Removes one of the tenant's entries and returns it; `None` if the tenant has no such entry.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<RedirectUriRow>> {
    diesel::delete(
        redirect_uris::table
            .filter(redirect_uris::tenant_id.eq(tenant_id))
            .filter(redirect_uris::id.eq(id)),
    )
    .returning(RedirectUriRow::as_returning())
    .get_result(conn)
    .await
    .optional()
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
) -> QueryResult<Vec<RedirectUriRow>> {
    redirect_uris::table
        .filter(redirect_uris::tenant_id.eq(tenant_id))
        .order(redirect_uris::created_at)
        .select(RedirectUriRow::as_select())
        .load(conn)
        .await
}
