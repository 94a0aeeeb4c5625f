//! `exchange_attempts`: the ledger. A row is written before Finch is called and finished after;
//! finished rows are immutable (a trigger enforces it). Never a code, state, token or secret.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::exchange_attempts;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = exchange_attempts, check_for_backend(diesel::pg::Pg))]
pub struct Attempt {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub flow_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub stage: String,
    pub flow_kind: Option<String>,
    pub is_reauth: bool,
    pub state_missing: bool,
    pub credentials_version: Option<i32>,
    pub callback_received_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub exchange_sent_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub latency_ms: Option<i32>,
    pub outcome: Option<String>,
    pub category: Option<String>,
    pub actor: Option<String>,
    pub finch_status: Option<i16>,
    pub finch_error_name: Option<String>,
    pub finch_code: Option<String>,
    pub message: Option<String>,
    pub shown_to_user: Option<String>,
    pub finch_request_id: Option<String>,
    pub provider_id: Option<String>,
    pub finch_connection_id: Option<String>,
    pub connection_id: Option<Uuid>,
    pub review_state: String,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub review_note: Option<String>,
}

/// The opening of a ledger row.
#[derive(Debug, Insertable)]
#[diesel(table_name = exchange_attempts)]
pub struct NewAttempt<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub flow_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub stage: &'a str,
    pub flow_kind: Option<&'a str>,
    pub is_reauth: bool,
    pub state_missing: bool,
    pub credentials_version: Option<i32>,
    pub callback_received_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
}

/// How a ledger row ends.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = exchange_attempts)]
pub struct Finish<'a> {
    pub exchange_sent_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub latency_ms: Option<i32>,
    pub outcome: Option<&'a str>,
    pub category: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub finch_status: Option<i16>,
    pub finch_error_name: Option<&'a str>,
    pub finch_code: Option<&'a str>,
    pub message: Option<&'a str>,
    pub shown_to_user: Option<&'a str>,
    pub finch_request_id: Option<&'a str>,
    pub provider_id: Option<&'a str>,
    pub finch_connection_id: Option<&'a str>,
    pub connection_id: Option<Uuid>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewAttempt<'_>) -> QueryResult<usize> {
    diesel::insert_into(exchange_attempts::table)
        .values(new)
        .execute(conn)
        .await
}

/// Finishes an open row (a finished row is left untouched: returns 0).
pub async fn finish(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    finish: &Finish<'_>,
) -> QueryResult<usize> {
    diesel::update(
        exchange_attempts::table
            .filter(exchange_attempts::tenant_id.eq(tenant_id))
            .filter(exchange_attempts::id.eq(id))
            .filter(exchange_attempts::finished_at.is_null()),
    )
    .set(finish)
    .execute(conn)
    .await
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Attempt>> {
    exchange_attempts::table
        .filter(exchange_attempts::tenant_id.eq(tenant_id))
        .filter(exchange_attempts::id.eq(id))
        .select(Attempt::as_select())
        .first(conn)
        .await
        .optional()
}

/// The latest ledger row of a flow.
pub async fn latest_of_flow(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    flow_id: Uuid,
) -> QueryResult<Option<Attempt>> {
    exchange_attempts::table
        .filter(exchange_attempts::tenant_id.eq(tenant_id))
        .filter(exchange_attempts::flow_id.eq(flow_id))
        .order(exchange_attempts::started_at.desc())
        .select(Attempt::as_select())
        .first(conn)
        .await
        .optional()
}

/// A tenant's attempts, newest first.
pub async fn list_for_tenant(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    limit: i64,
) -> QueryResult<Vec<Attempt>> {
    exchange_attempts::table
        .filter(exchange_attempts::tenant_id.eq(tenant_id))
        .order((
            exchange_attempts::started_at.desc(),
            exchange_attempts::id.desc(),
        ))
        .limit(limit)
        .select(Attempt::as_select())
        .load(conn)
        .await
}

/// One page of the tenant's ledger, newest first, after the row `(started_at, id)` (keyset
/// pagination).
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<Attempt>> {
    let mut query = exchange_attempts::table
        .filter(exchange_attempts::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some((started_at, id)) = after {
        query = query.filter(
            exchange_attempts::started_at
                .lt(started_at)
                .or(exchange_attempts::started_at
                    .eq(started_at)
                    .and(exchange_attempts::id.lt(id))),
        );
    }
    query
        .order((
            exchange_attempts::started_at.desc(),
            exchange_attempts::id.desc(),
        ))
        .limit(limit)
        .select(Attempt::as_select())
        .load(conn)
        .await
}
