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
