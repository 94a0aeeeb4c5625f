//! `user_totp` (one sealed TOTP secret per user, with the last accepted time step) and
//! `recovery_codes` (their one-time recovery codes, stored as SHA-256).

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::{recovery_codes, user_totp};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_totp, check_for_backend(diesel::pg::Pg))]
pub struct Totp {
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub secret_kek_id: String,
    pub secret_envelope: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_step: Option<i64>,
}

impl Totp {
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

pub async fn find(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Option<Totp>> {
    user_totp::table
        .find(user_id)
        .select(Totp::as_select())
        .first(conn)
        .await
        .optional()
}

/// Whether the user has a confirmed secret (is enrolled).
pub async fn is_enrolled(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        user_totp::table
            .filter(user_totp::user_id.eq(user_id))
            .filter(user_totp::confirmed_at.is_not_null()),
    ))
    .get_result(conn)
    .await
}

/// Whether the user must enrol before reaching anything but their account page: an operator,
/// or an admin of a tenant that requires two-factor sign-in, without a confirmed secret. One
/// statement, since every signed-in request asks.
pub async fn must_enrol(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Answer {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        must_enrol: bool,
    }
    diesel::sql_query(
        "SELECT (u.role = 'operator' OR COALESCE(t.require_two_factor, false))
                AND NOT EXISTS (SELECT 1 FROM user_totp x
                                 WHERE x.user_id = u.id AND x.confirmed_at IS NOT NULL)
                AS must_enrol
           FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id
          WHERE u.id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .get_result::<Answer>(conn)
    .await
    .map(|answer| answer.must_enrol)
}

/// Stores a new, unconfirmed secret for the user, replacing an unconfirmed one. Returns 0 (and
/// changes nothing) when the user already has a confirmed secret.
pub async fn put_pending(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    tenant_id: Option<Uuid>,
    kek_id: &str,
    envelope: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO user_totp (user_id, tenant_id, secret_kek_id, secret_envelope, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id) DO UPDATE
            SET secret_kek_id = EXCLUDED.secret_kek_id,
                secret_envelope = EXCLUDED.secret_envelope,
                created_at = EXCLUDED.created_at,
                last_step = NULL
          WHERE user_totp.confirmed_at IS NULL",
    )
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(tenant_id)
    .bind::<diesel::sql_types::Text, _>(kek_id)
    .bind::<diesel::sql_types::Bytea, _>(envelope)
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .execute(conn)
    .await
}

/// Records `step` as accepted, only if it is later than the last accepted one: one statement, so
/// two requests with the same code cannot both pass. Confirms a pending secret at `now`.
/// Returns false when the step was already used (a replay).
pub async fn accept_step(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    step: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        user_totp::table.find(user_id).filter(
            user_totp::last_step
                .is_null()
                .or(user_totp::last_step.lt(step)),
        ),
    )
    .set((
        user_totp::last_step.eq(step),
        user_totp::confirmed_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("coalesce(confirmed_at, ")
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .sql(")")),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Removes the user's secret and recovery codes (disabling or clearing two-factor). Returns
/// whether a secret was there.
pub async fn remove(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<bool> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    let removed = diesel::delete(user_totp::table.find(user_id))
        .execute(conn)
        .await?;
    Ok(removed == 1)
}

/// Replaces the user's recovery codes with these hashes.
pub async fn replace_recovery_codes(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    tenant_id: Option<Uuid>,
    hashes: &[Vec<u8>],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)
        .await?;
    let rows: Vec<_> = hashes
        .iter()
        .map(|hash| {
            (
                recovery_codes::user_id.eq(user_id),
                recovery_codes::tenant_id.eq(tenant_id),
                recovery_codes::code_hash.eq(hash.as_slice()),
                recovery_codes::created_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(recovery_codes::table)
        .values(rows)
        .execute(conn)
        .await
}

/// Uses up the user's unused recovery code with this hash: one statement, so a code works once.
pub async fn use_recovery_code(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// How many of the user's recovery codes are still unused.
pub async fn unused_recovery_codes(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<i64> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// The users of a tenant enrolled in two-factor sign-in.
pub async fn enrolled_in_tenant(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
) -> QueryResult<Vec<Uuid>> {
    user_totp::table
        .filter(user_totp::tenant_id.eq(tenant_id))
        .filter(user_totp::confirmed_at.is_not_null())
        .select(user_totp::user_id)
        .load(conn)
        .await
}
