//! `password_resets`: one-time password reset links issued by operators. Only the SHA-256 of a
//! token is stored.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::{password_resets, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = password_resets, check_for_backend(diesel::pg::Pg))]
pub struct PasswordReset {
    pub id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub token_hash: Vec<u8>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = password_resets)]
pub struct NewPasswordReset<'a> {
    pub user_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub token_hash: &'a [u8],
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewPasswordReset<'_>,
) -> QueryResult<PasswordReset> {
    diesel::insert_into(password_resets::table)
        .values(new)
        .returning(PasswordReset::as_returning())
        .get_result(conn)
        .await
}

/// Deletes a user's unused reset links (a new link replaces the old).
pub async fn delete_unused_for_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<usize> {
    diesel::delete(
        password_resets::table
            .filter(password_resets::user_id.eq(user_id))
            .filter(password_resets::used_at.is_null()),
    )
    .execute(conn)
    .await
}

/// The email of the enabled user a usable link (unused, unexpired) is for, without using it.
pub async fn find_usable(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<Option<String>> {
    password_resets::table
        .inner_join(users::table.on(users::id.eq(password_resets::user_id)))
        .filter(password_resets::token_hash.eq(token_hash))
        .filter(password_resets::used_at.is_null())
        .filter(password_resets::expires_at.gt(now))
        .filter(users::disabled_at.is_null())
        .select(users::email)
        .first(conn)
        .await
        .optional()
}

/// Uses up the link with this token hash if it is still usable: one statement, so two uses
/// cannot both succeed.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<Option<PasswordReset>> {
    diesel::update(
        password_resets::table
            .filter(password_resets::token_hash.eq(token_hash))
            .filter(password_resets::used_at.is_null())
            .filter(password_resets::expires_at.gt(now)),
    )
    .set(password_resets::used_at.eq(now))
    .returning(PasswordReset::as_returning())
    .get_result(conn)
    .await
    .optional()
}
