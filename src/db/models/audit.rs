//! `audit_events`: who changed what. Field names, never secret values.

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::audit_events;

/// One audit event to record.
#[derive(Debug, Default)]
pub struct Event<'a> {
    pub tenant_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    /// anonymous | operator | tenant_admin | system | cli | api_key
    pub actor_kind: &'a str,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl<'a> Event<'a> {
    /// `action`, done by an actor of `actor_kind` (and, when a person did it, that user).
    pub fn new(actor_kind: &'a str, actor_user_id: Option<Uuid>, action: &'a str) -> Self {
        Self {
            actor_kind,
            actor_user_id,
            action,
            ..Self::default()
        }
    }

    /// `action`, done through the command line.
    pub fn cli(action: &'a str) -> Self {
        Self::new("cli", None, action)
    }

    /// The tenant the event belongs to.
    #[must_use]
    pub fn tenant(mut self, tenant_id: impl Into<Option<Uuid>>) -> Self {
        self.tenant_id = tenant_id.into();
        self
    }

    /// What was acted on: a kind (`user`, `connection`, …) and its id.
    #[must_use]
    pub fn target(mut self, kind: &'a str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    /// Field names and non-secret values that say what changed.
    #[must_use]
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// The client address the request came from.
    #[must_use]
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
}

pub async fn record(conn: &mut AsyncPgConnection, event: Event<'_>) -> QueryResult<usize> {
    let details = if event.details.is_null() {
        serde_json::json!({})
    } else {
        event.details
    };
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::tenant_id.eq(event.tenant_id),
            audit_events::actor_user_id.eq(event.actor_user_id),
            audit_events::actor_kind.eq(event.actor_kind),
            audit_events::action.eq(event.action),
            audit_events::target_type.eq(event.target_type),
            audit_events::target_id.eq(event.target_id),
            audit_events::details.eq(details),
            audit_events::ip.eq(event.ip),
            audit_events::request_id.eq(event
                .request_id
                .or_else(crate::telemetry::current_request_id)),
        ))
        .execute(conn)
        .await
}

/// Deletes events that occurred before `cutoff` (their retention ended), at most `batch`.
pub async fn purge_before(
    conn: &mut AsyncPgConnection,
    cutoff: chrono::DateTime<chrono::Utc>,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM audit_events WHERE id IN (
            SELECT id FROM audit_events WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2)",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
    .await
}
