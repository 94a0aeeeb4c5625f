//! Tenants' health for the console: last successful exchange, failure rates over 24 hours and 7
//! days, open failures, connections by status. One aggregate query for all tenants (no query per
//! tenant); the per-tenant lookups it needs are index probes (see migration 000004).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use super::sql::Sql;
use crate::db::prelude::QueryResult;

/// One tenant's health.
#[derive(Debug, Clone, QueryableByName)]
pub struct TenantHealth {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub slug: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_success: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub attempts_24h: i64,
    #[diesel(sql_type = BigInt)]
    pub failures_24h: i64,
    #[diesel(sql_type = BigInt)]
    pub attempts_7d: i64,
    #[diesel(sql_type = BigInt)]
    pub failures_7d: i64,
    #[diesel(sql_type = BigInt)]
    pub open_failures: i64,
    #[diesel(sql_type = BigInt)]
    pub connections_active: i64,
    #[diesel(sql_type = BigInt)]
    pub connections_reauth: i64,
    #[diesel(sql_type = BigInt)]
    pub connections_disconnected: i64,
    #[diesel(sql_type = BigInt)]
    pub connections_other: i64,
}

impl TenantHealth {
    /// Failed share of finished attempts in the last 24 hours, if there were any.
    pub fn rate_24h(&self) -> Option<f64> {
        rate(self.failures_24h, self.attempts_24h)
    }

    pub fn rate_7d(&self) -> Option<f64> {
        rate(self.failures_7d, self.attempts_7d)
    }

    /// "12.5 % (3 of 24)" or "no attempts".
    pub fn rate_24h_text(&self) -> String {
        rate_text(self.failures_24h, self.attempts_24h)
    }

    pub fn rate_7d_text(&self) -> String {
        rate_text(self.failures_7d, self.attempts_7d)
    }

    /// Whether the last 24 hours look bad enough to stand out (half or more failed).
    pub fn is_unhealthy(&self) -> bool {
        self.rate_24h().is_some_and(|r| r >= 0.5)
    }

    pub fn last_success_text(&self) -> String {
        self.last_success.map_or_else(
            || "never".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    }

    pub fn connections_total(&self) -> i64 {
        self.connections_active
            + self.connections_reauth
            + self.connections_disconnected
            + self.connections_other
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52; a rate is shown rounded"
)]
fn rate(failures: i64, attempts: i64) -> Option<f64> {
    (attempts > 0).then(|| failures as f64 / attempts as f64)
}

fn rate_text(failures: i64, attempts: i64) -> String {
    match rate(failures, attempts) {
        Some(r) => format!("{:.1} % ({failures} of {attempts})", r * 100.0),
        None => "no attempts".to_owned(),
    }
}

/// How the tenants table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Highest 24-hour failure rate first, then most open failures, then the 7-day rate.
    #[default]
    Worst,
    /// Most open failures first.
    Open,
    /// By slug.
    Slug,
}

impl Sort {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "" | "worst" => Some(Self::Worst),
            "open" => Some(Self::Open),
            "slug" => Some(Self::Slug),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worst => "worst",
            Self::Open => "open",
            Self::Slug => "slug",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Self::Worst => {
                " ORDER BY failures_24h::float8 / nullif(attempts_24h, 0) DESC NULLS LAST, \
                 open_failures DESC, failures_7d::float8 / nullif(attempts_7d, 0) DESC NULLS LAST, slug"
            }
            Self::Open => " ORDER BY open_failures DESC, failures_24h DESC, slug",
            Self::Slug => " ORDER BY slug",
        }
    }
}

/// Appends ` AND <column> = $n` when the health of one tenant is asked for.
fn only(sql: Sql, column: &str, tenant: Option<Uuid>) -> Sql {
    match tenant {
        Some(id) => sql
            .push(" AND ")
            .push(column)
            .push(" = ")
            .bind::<SqlUuid, _>(id),
        None => sql,
    }
}

/// The health of every tenant (or of `tenant` only), ordered by `sort`, as of `now`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    tenant: Option<Uuid>,
    sort: Sort,
) -> QueryResult<Vec<TenantHealth>> {
    let day = now - TimeDelta::hours(24);
    let week = now - TimeDelta::days(7);
    let sql = Sql::new(
        "SELECT * FROM (SELECT t.id, t.slug, t.name, t.status, t.created_at, \
           (SELECT s.started_at FROM exchange_attempts s \
             WHERE s.tenant_id = t.id AND s.outcome = 'succeeded' \
             ORDER BY s.started_at DESC LIMIT 1) AS last_success, \
           coalesce(r.attempts_24h, 0) AS attempts_24h, coalesce(r.failures_24h, 0) AS failures_24h, \
           coalesce(r.attempts_7d, 0) AS attempts_7d, coalesce(r.failures_7d, 0) AS failures_7d, \
           coalesce(o.open_failures, 0) AS open_failures, \
           coalesce(c.active, 0) AS connections_active, coalesce(c.reauth, 0) AS connections_reauth, \
           coalesce(c.disconnected, 0) AS connections_disconnected, coalesce(c.other, 0) AS connections_other \
         FROM tenants t \
         LEFT JOIN (SELECT a.tenant_id, \
                count(*) FILTER (WHERE a.started_at >= ",
    )
    .bind::<Timestamptz, _>(day)
    .push(
        ") AS attempts_24h, \
                count(*) FILTER (WHERE a.started_at >= ",
    )
    .bind::<Timestamptz, _>(day)
    .push(
        " AND a.outcome <> 'succeeded') AS failures_24h, \
                count(*) AS attempts_7d, \
                count(*) FILTER (WHERE a.outcome <> 'succeeded') AS failures_7d \
              FROM exchange_attempts a WHERE a.outcome IS NOT NULL AND a.started_at >= ",
    )
    .bind::<Timestamptz, _>(week);
    let sql = only(sql, "a.tenant_id", tenant).push(
        " GROUP BY a.tenant_id) r ON r.tenant_id = t.id \
         LEFT JOIN (SELECT a.tenant_id, count(*) AS open_failures FROM exchange_attempts a \
              WHERE a.outcome <> 'succeeded' AND a.review_state <> 'resolved'",
    );
    let sql = only(sql, "a.tenant_id", tenant).push(
        " GROUP BY a.tenant_id) o ON o.tenant_id = t.id \
         LEFT JOIN (SELECT n.tenant_id, \
                count(*) FILTER (WHERE n.status = 'active') AS active, \
                count(*) FILTER (WHERE n.status = 'reauth_required') AS reauth, \
                count(*) FILTER (WHERE n.status = 'disconnected') AS disconnected, \
                count(*) FILTER (WHERE n.status NOT IN ('active', 'reauth_required', 'disconnected')) AS other \
              FROM connections n WHERE TRUE",
    );
    let sql = only(sql, "n.tenant_id", tenant)
        .push(" GROUP BY n.tenant_id) c ON c.tenant_id = t.id WHERE TRUE");
    only(sql, "t.id", tenant)
        .push(") h")
        .push(sort.order_by())
        .into_query()
        .load(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_reads_as_a_percentage_with_its_counts() {
        assert_eq!(rate_text(1, 8), "12.5 % (1 of 8)");
        assert_eq!(rate_text(0, 0), "no attempts");
    }
}
