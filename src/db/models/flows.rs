//! `connect_flows`: one row per Connect attempt started; the state machine lives in the `UPDATE`s.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::connect_flows;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = connect_flows, check_for_backend(diesel::pg::Pg))]
pub struct Flow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    pub session_binding: Vec<u8>,
    pub state_hash: Vec<u8>,
    pub flow: String,
    pub redirect_uri_id: Option<Uuid>,
    pub redirect_uri: Option<String>,
    pub products: Vec<String>,
    pub customer_id: String,
    pub customer_name: String,
    pub sandbox: Option<String>,
    pub minutes_to_expire: i32,
    pub credentials_version: i32,
    pub reauth_connection_id: Option<Uuid>,
    pub finch_session_id: Option<String>,
    pub finch_session_created_at: Option<DateTime<Utc>>,
    pub status: String,
    pub failure_category: Option<String>,
    pub connection_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The connect link this flow was started from (no admin: the link cookie binds it).
    pub link_id: Option<Uuid>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = connect_flows)]
pub struct NewFlow<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    pub session_binding: &'a [u8],
    pub state_hash: &'a [u8],
    pub flow: &'a str,
    pub redirect_uri_id: Option<Uuid>,
    pub redirect_uri: Option<&'a str>,
    pub products: &'a [String],
    pub customer_id: &'a str,
    pub customer_name: &'a str,
    pub sandbox: Option<&'a str>,
    pub minutes_to_expire: i32,
    pub credentials_version: i32,
    pub reauth_connection_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub link_id: Option<Uuid>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewFlow<'_>) -> QueryResult<Flow> {
    diesel::insert_into(connect_flows::table)
        .values(new)
        .returning(Flow::as_returning())
        .get_result(conn)
        .await
}

/// The one flow lookup without a tenant: the state names the flow (it is 256 random bits, stored
/// hashed), and the callback then refuses a flow of another tenant or browser session.
pub async fn find_by_state_hash(
    conn: &mut AsyncPgConnection,
    state_hash: &[u8],
) -> QueryResult<Option<Flow>> {
    connect_flows::table
        .filter(connect_flows::state_hash.eq(state_hash))
        .select(Flow::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Flow>> {
    connect_flows::table
        .filter(connect_flows::tenant_id.eq(tenant_id))
        .filter(connect_flows::id.eq(id))
        .select(Flow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The browser session's pending redirect flows of a tenant (the missing-state fallback).
pub async fn pending_redirect_flows_of_session(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    session_binding: &[u8],
) -> QueryResult<Vec<Flow>> {
    connect_flows::table
        .filter(connect_flows::tenant_id.eq(tenant_id))
        .filter(connect_flows::session_binding.eq(session_binding))
        .filter(connect_flows::status.eq("pending"))
        .filter(connect_flows::flow.eq("redirect"))
        .select(Flow::as_select())
        .load(conn)
        .await
}

pub async fn set_finch_session(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    session_id: &str,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        connect_flows::table
            .filter(connect_flows::tenant_id.eq(tenant_id))
            .filter(connect_flows::id.eq(id)),
    )
    .set((
        connect_flows::finch_session_id.eq(session_id),
        connect_flows::finch_session_created_at.eq(at),
    ))
    .execute(conn)
    .await
}

/// `pending → exchanging`, only if still pending and unexpired: exactly one caller wins.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<Option<Flow>> {
    diesel::update(
        connect_flows::table
            .filter(connect_flows::tenant_id.eq(tenant_id))
            .filter(connect_flows::id.eq(id))
            .filter(connect_flows::status.eq("pending"))
            .filter(connect_flows::expires_at.gt(now)),
    )
    .set((
        connect_flows::status.eq("exchanging"),
        connect_flows::claimed_at.eq(now),
    ))
    .returning(Flow::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// A move of a flow from one status to a final one.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub failure_category: Option<&'a str>,
    pub connection_id: Option<Uuid>,
}

impl<'a> Transition<'a> {
    /// `from` → `to`, with nothing to record.
    pub fn to(from: &'a str, to: &'a str) -> Self {
        Self {
            from,
            to,
            failure_category: None,
            connection_id: None,
        }
    }

    /// `from` → `failed`, because of `category`.
    pub fn failed(from: &'a str, category: &'a str) -> Self {
        Self::to(from, "failed").category(category)
    }

    /// `exchanging` → `completed`, with the stored connection.
    pub fn completed(connection_id: Uuid) -> Self {
        Self {
            connection_id: Some(connection_id),
            ..Self::to("exchanging", "completed")
        }
    }

    /// The failure category recorded with the move.
    #[must_use]
    pub fn category(self, category: &'a str) -> Self {
        Self {
            failure_category: Some(category),
            ..self
        }
    }
}

/// Moves a flow along `transition` if it is still in its `from` status; returns whether it did.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    transition: Transition<'_>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        connect_flows::table
            .filter(connect_flows::tenant_id.eq(tenant_id))
            .filter(connect_flows::id.eq(id))
            .filter(connect_flows::status.eq(transition.from)),
    )
    .set((
        connect_flows::status.eq(transition.to),
        connect_flows::failure_category.eq(transition.failure_category),
        connect_flows::connection_id.eq(transition.connection_id),
        connect_flows::finished_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Pending flows past their expiry become `expired`.
pub async fn expire_pending(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        connect_flows::table
            .filter(connect_flows::status.eq("pending"))
            .filter(connect_flows::expires_at.le(now)),
    )
    .set((
        connect_flows::status.eq("expired"),
        connect_flows::finished_at.eq(now),
    ))
    .execute(conn)
    .await
}

/// Flows stuck in `exchanging` since before `cutoff` (the process died mid-exchange).
pub async fn stuck_exchanging(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<Vec<Flow>> {
    connect_flows::table
        .filter(connect_flows::status.eq("exchanging"))
        .filter(connect_flows::claimed_at.le(cutoff))
        .select(Flow::as_select())
        .load(conn)
        .await
}

/// Serializes the starts of one tenant's flows until the transaction ends, so that counting the
/// open flows and adding one cannot interleave (the caps of issue 13 hold under concurrency).
pub async fn lock_starts(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('connect-start:' || $1::text, 0))",
    )
    .bind::<diesel::sql_types::Uuid, _>(tenant_id)
    .execute(conn)
    .await
    .map(drop)
}

/// A tenant's unexpired pending flows: of `user_id` (none without a user), and of the whole
/// tenant.
pub async fn count_open(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    user_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> QueryResult<(i64, i64)> {
    let open = connect_flows::table
        .filter(connect_flows::tenant_id.eq(tenant_id))
        .filter(connect_flows::status.eq("pending"))
        .filter(connect_flows::expires_at.gt(now));
    let mine = match user_id {
        Some(user_id) => {
            open.filter(connect_flows::user_id.eq(user_id))
                .count()
                .get_result(conn)
                .await?
        }
        None => 0,
    };
    let all = open.count().get_result(conn).await?;
    Ok((mine, all))
}

/// Deletes finished flows (not pending, not exchanging) that finished before `cutoff`; their
/// ledger rows stay, unlinked. At most `batch` per call. Returns how many.
pub async fn purge_finished(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM connect_flows WHERE id IN (
            SELECT id FROM connect_flows
             WHERE finished_at < $1 AND status NOT IN ('pending', 'exchanging')
             LIMIT $2)",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
    .await
}

pub async fn count_pending(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> QueryResult<i64> {
    connect_flows::table
        .filter(connect_flows::status.eq("pending"))
        .filter(connect_flows::expires_at.gt(now))
        .count()
        .get_result(conn)
        .await
}
