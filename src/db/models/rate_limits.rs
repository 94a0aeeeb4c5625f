//! `rate_limits`: fixed-window counters shared by every instance (per-IP login failures, …).

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::db::prelude::*;
use crate::db::schema::rate_limits;

/// Whether `key` is currently blocked (its window's hits reached the limit).
pub async fn is_blocked(
    conn: &mut AsyncPgConnection,
    key: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let blocked: Option<Option<DateTime<Utc>>> = rate_limits::table
        .find(key)
        .select(rate_limits::blocked_until)
        .first(conn)
        .await
        .optional()?;
    Ok(blocked.flatten().is_some_and(|until| until > now))
}

/// Counts one hit in the current window (starting a new window when the old one is over) and
/// blocks the key until the window ends once `limit` hits are reached. Returns the hit count.
pub async fn hit(
    conn: &mut AsyncPgConnection,
    key: &str,
    now: DateTime<Utc>,
    window: chrono::Duration,
    limit: i32,
) -> QueryResult<i32> {
    let window_starts_after = now - window;
    let hits: i32 = diesel::sql_query(
        "INSERT INTO rate_limits AS r (key, window_start, hits) VALUES ($1, $2, 1)
         ON CONFLICT (key) DO UPDATE SET
             window_start = CASE WHEN r.window_start <= $3 THEN $2 ELSE r.window_start END,
             hits = CASE WHEN r.window_start <= $3 THEN 1 ELSE r.hits + 1 END
         RETURNING hits",
    )
    .bind::<diesel::sql_types::Text, _>(key)
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .bind::<diesel::sql_types::Timestamptz, _>(window_starts_after)
    .get_result::<Hits>(conn)
    .await?
    .hits;
    if hits >= limit {
        diesel::sql_query(
            "UPDATE rate_limits SET blocked_until = window_start + $2 WHERE key = $1",
        )
        .bind::<diesel::sql_types::Text, _>(key)
        .bind::<diesel::sql_types::Interval, _>(diesel::data_types::PgInterval::from_microseconds(
            window.num_microseconds().unwrap_or(i64::MAX),
        ))
        .execute(conn)
        .await?;
    }
    Ok(hits)
}

#[derive(diesel::QueryableByName)]
struct Hits {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    hits: i32,
}

/// Counts one hit in `key`'s current fixed window (a new window starts when the old one is
/// over) and returns the hits so far and when the window started; nothing is blocked here, the
/// caller compares the count with its limit.
pub async fn count_hit(
    conn: &mut AsyncPgConnection,
    key: &str,
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> QueryResult<(i32, DateTime<Utc>)> {
    let row: HitsInWindow = diesel::sql_query(
        "INSERT INTO rate_limits AS r (key, window_start, hits) VALUES ($1, $2, 1)
         ON CONFLICT (key) DO UPDATE SET
             window_start = CASE WHEN r.window_start <= $3 THEN $2 ELSE r.window_start END,
             hits = CASE WHEN r.window_start <= $3 THEN 1 ELSE r.hits + 1 END
         RETURNING hits, window_start",
    )
    .bind::<diesel::sql_types::Text, _>(key)
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .bind::<diesel::sql_types::Timestamptz, _>(now - window)
    .get_result(conn)
    .await?;
    Ok((row.hits, row.window_start))
}

#[derive(diesel::QueryableByName)]
struct HitsInWindow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    hits: i32,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    window_start: DateTime<Utc>,
}

/// Deletes counters whose window started before `cutoff` and that block nothing any more.
pub async fn purge_spent(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::delete(
        rate_limits::table
            .filter(rate_limits::window_start.lt(cutoff))
            .filter(
                rate_limits::blocked_until
                    .is_null()
                    .or(rate_limits::blocked_until.lt(cutoff)),
            ),
    )
    .execute(conn)
    .await
}
