//! The reaper: flows a crash left in `exchanging` become `unknown_outcome` (never re-exchanged),
//! expired pending flows become `expired`, replaced client secrets no flow uses any more are
//! erased, expired sessions are purged, and records past their retention go (audit events and
//! finished flows per [`Retention`], spent rate-limit windows after a day, idempotent API answers after 24 hours). Runs on every
//! instance; every step is an idempotent conditional update or a bounded delete.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Retention;
use crate::db::models::flows::{self, Transition};
use crate::db::models::{attempts, credentials};
use crate::db::models::{audit, idempotency_keys, rate_limits};
use crate::db::{Pool, Scope, transaction};
use crate::domain::failure;

/// How long after its claim an `exchanging` flow is considered abandoned: the exchange's total
/// timeout (30 s), the write retries, and a margin.
pub const EXCHANGE_DEADLINE: chrono::Duration = chrono::Duration::minutes(2);

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    pub unknown_outcome: usize,
    pub expired: usize,
    pub sessions_purged: usize,
    /// Replaced client secrets erased once no unfinished flow used them.
    pub secrets_erased: usize,
    /// Rows deleted for their age: audit events, finished flows, spent rate-limit windows.
    pub retention_deleted: usize,
}

/// Rows one pass deletes per table at most, so that a pass stays a short transaction (the
/// backlog of a first run goes in steps, a minute apart).
const RETENTION_BATCH: i64 = 10_000;

/// One pass at time `now`.
pub async fn reap(
    pool: &Pool,
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<Reaped, crate::db::DbError> {
    let mut conn = pool.get().await?;
    let reaped = transaction(&mut conn, Scope::System, async |conn| {
        let mut reaped = Reaped::default();
        for flow in flows::stuck_exchanging(conn, now - EXCHANGE_DEADLINE).await? {
            let failure = failure::UNKNOWN_OUTCOME;
            let transition = Transition::to("exchanging", "unknown_outcome").category(failure.category);
            if !flows::finish(conn, flow.tenant_id, flow.id, transition, now).await? {
                continue;
            }
            if let Some(open) = attempts::latest_of_flow(conn, flow.tenant_id, flow.id).await?.filter(|a| a.finished_at.is_none()) {
                let shown = super::ledger::shown(failure);
                attempts::finish(
                    conn,
                    flow.tenant_id,
                    open.id,
                    &attempts::Finish {
                        finished_at: Some(now),
                        outcome: Some("unknown_outcome"),
                        category: Some(failure.category),
                        actor: Some(failure.actor.as_str()),
                        message: Some("the exchange did not finish before the deadline (process stopped?)"),
                        shown_to_user: Some(&shown),
                        ..Default::default()
                    },
                )
                .await?;
            }
            tracing::error!(flow_id = %flow.id, tenant_id = %flow.tenant_id, "exchange abandoned: unknown outcome");
            crate::telemetry::record_attempt("unknown_outcome", failure.category, None);
            reaped.unknown_outcome += 1;
        }
        reaped.expired = flows::expire_pending(conn, now).await?;
        reaped.secrets_erased = credentials::erase_unused(conn, None).await?;
        reaped.sessions_purged = crate::auth::session_store::purge_expired(conn, now).await?;
        reaped.retention_deleted = audit::purge_before(conn, now - retention.audit_events, RETENTION_BATCH).await?
            + flows::purge_finished(conn, now - retention.finished_flows, RETENTION_BATCH).await?
            + rate_limits::purge_spent(conn, now - chrono::Duration::days(1)).await?
            + idempotency_keys::purge_before(conn, now - crate::api::idempotency::RETENTION, RETENTION_BATCH).await?;
        let open = flows::count_pending(conn, now).await?;
        metrics::gauge!("finchgate_open_flows").set(open as f64);
        Ok::<_, diesel::result::Error>(reaped)
    })
    .await?;
    Ok(reaped)
}

/// Runs [`reap`] every `every` until the process ends.
pub fn spawn(
    pool: Pool,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    retention: Retention,
    every: Duration,
) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            if let Err(error) = reap(&pool, clock.now(), &retention).await {
                tracing::warn!(error = %error, "reaper pass failed");
            }
        }
    });
}
