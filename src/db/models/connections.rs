//! `connections`: a tenant's Finch connections.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::connections;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = connections, check_for_backend(diesel::pg::Pg))]
pub struct Connection {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub finch_connection_id: String,
    pub provider_id: String,
    pub company_id: Option<String>,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub products: Vec<String>,
    pub entity_ids: Vec<String>,
    pub client_type: Option<String>,
    pub connection_type: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub last_status_check_at: Option<DateTime<Utc>>,
    pub connected_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The tenant's connections, newest first.
pub async fn list(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> QueryResult<Vec<Connection>> {
    connections::table
        .filter(connections::tenant_id.eq(tenant_id))
        .order(connections::created_at.desc())
        .select(Connection::as_select())
        .load(conn)
        .await
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Connection>> {
    connections::table
        .filter(connections::tenant_id.eq(tenant_id))
        .filter(connections::id.eq(id))
        .select(Connection::as_select())
        .first(conn)
        .await
        .optional()
}

/// What `/auth/token` says about a connection.
pub struct Upsert<'a> {
    pub tenant_id: Uuid,
    pub finch_connection_id: &'a str,
    pub provider_id: &'a str,
    pub company_id: Option<&'a str>,
    pub customer_id: Option<&'a str>,
    pub customer_name: Option<&'a str>,
    pub products: &'a [String],
    pub entity_ids: &'a [String],
    pub client_type: Option<&'a str>,
    pub connection_type: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Inserts the connection or, when the tenant already has it (reconnect), refreshes it as active.
pub async fn upsert(conn: &mut AsyncPgConnection, new: &Upsert<'_>) -> QueryResult<Connection> {
    diesel::insert_into(connections::table)
        .values((
            connections::tenant_id.eq(new.tenant_id),
            connections::finch_connection_id.eq(new.finch_connection_id),
            connections::provider_id.eq(new.provider_id),
            connections::company_id.eq(new.company_id),
            connections::customer_id.eq(new.customer_id),
            connections::customer_name.eq(new.customer_name),
            connections::products.eq(new.products),
            connections::entity_ids.eq(new.entity_ids),
            connections::client_type.eq(new.client_type),
            connections::connection_type.eq(new.connection_type),
            connections::status.eq("active"),
            connections::connected_at.eq(new.now),
        ))
        .on_conflict((connections::tenant_id, connections::finch_connection_id))
        .do_update()
        .set((
            connections::provider_id.eq(new.provider_id),
            connections::company_id.eq(new.company_id),
            connections::products.eq(new.products),
            connections::entity_ids.eq(new.entity_ids),
            connections::client_type.eq(new.client_type),
            connections::connection_type.eq(new.connection_type),
            connections::status.eq("active"),
            connections::status_message.eq(None::<String>),
            connections::disconnected_at.eq(None::<DateTime<Utc>>),
            connections::updated_at.eq(new.now),
        ))
        .returning(Connection::as_returning())
        .get_result(conn)
        .await
}

/// Records a status (from `/introspect` or our own disconnect).
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    status: &str,
    message: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let disconnected_at = (status == "disconnected").then_some(now);
    diesel::update(
        connections::table
            .filter(connections::tenant_id.eq(tenant_id))
            .filter(connections::id.eq(id)),
    )
    .set((
        connections::status.eq(status),
        connections::status_message.eq(message),
        connections::last_status_check_at.eq(now),
        connections::disconnected_at.eq(disconnected_at),
        connections::updated_at.eq(now),
    ))
    .execute(conn)
    .await
}

/// What the API's connection list is filtered by.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub customer_id: Option<String>,
    pub status: Option<String>,
    pub provider_id: Option<String>,
}

/// One page of the tenant's connections, newest first, after the row `(created_at, id)`
/// (keyset pagination: no row is skipped or repeated while rows are added).
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    filter: &Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<Connection>> {
    let mut query = connections::table
        .filter(connections::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some(customer_id) = &filter.customer_id {
        query = query.filter(connections::customer_id.eq(customer_id.clone()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(connections::status.eq(status.clone()));
    }
    if let Some(provider_id) = &filter.provider_id {
        query = query.filter(connections::provider_id.eq(provider_id.clone()));
    }
    if let Some((created_at, id)) = after {
        query = query.filter(
            connections::created_at
                .lt(created_at)
                .or(connections::created_at
                    .eq(created_at)
                    .and(connections::id.lt(id))),
        );
    }
    query
        .order((connections::created_at.desc(), connections::id.desc()))
        .limit(limit)
        .select(Connection::as_select())
        .load(conn)
        .await
}
