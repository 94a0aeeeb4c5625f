//! `redirect_uris`: a tenant's whitelist of redirect URIs (where Finch sends the browser) and
//! return URIs (where a connect link sends the customer afterwards), matched byte-for-byte.

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
    /// [`KIND_REDIRECT`] or [`KIND_RETURN`].
    pub kind: String,
}

/// A redirect URI: Finch Connect sends the browser there with the code.
pub const KIND_REDIRECT: &str = "redirect";
/// A return URI: a connect link sends the customer's browser there afterwards.
pub const KIND_RETURN: &str = "return";

/// Adds a redirect URI to the tenant's whitelist and returns the new entry's id; an existing
/// identical entry is kept and `None` returned.
pub async fn add(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    uri: &str,
    created_by: Option<Uuid>,
) -> QueryResult<Option<Uuid>> {
    add_kind(conn, tenant_id, KIND_REDIRECT, uri, created_by).await
}

/// Adds a URI of `kind` ([`KIND_REDIRECT`] or [`KIND_RETURN`]) to the tenant's whitelist, as
/// [`add`] does.
pub async fn add_kind(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    kind: &str,
    uri: &str,
    created_by: Option<Uuid>,
) -> QueryResult<Option<Uuid>> {
    diesel::insert_into(redirect_uris::table)
        .values((
            redirect_uris::tenant_id.eq(tenant_id),
            redirect_uris::kind.eq(kind),
            redirect_uris::uri.eq(uri),
            redirect_uris::created_by.eq(created_by),
        ))
        .on_conflict((
            redirect_uris::tenant_id,
            redirect_uris::kind,
            redirect_uris::uri,
        ))
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

/// The tenant's redirect URIs (not its return URIs).
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
) -> QueryResult<Vec<RedirectUriRow>> {
    list_kind(conn, tenant_id, KIND_REDIRECT).await
}

/// The tenant's entries of one kind.
pub async fn list_kind(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    kind: &str,
) -> QueryResult<Vec<RedirectUriRow>> {
    redirect_uris::table
        .filter(redirect_uris::tenant_id.eq(tenant_id))
        .filter(redirect_uris::kind.eq(kind))
        .order(redirect_uris::created_at)
        .select(RedirectUriRow::as_select())
        .load(conn)
        .await
}
