//! `users`: operators (platform-wide) and tenant admins (one tenant each).

use crate::db::prelude::*;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::schema::users;

pub const ROLE_OPERATOR: &str = "operator";
pub const ROLE_TENANT_ADMIN: &str = "tenant_admin";

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: Option<String>,
    pub role: String,
    pub tenant_id: Option<Uuid>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub role: &'a str,
    pub tenant_id: Option<Uuid>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(new)
        .returning(User::as_returning())
        .get_result(conn)
        .await
}

/// Looks a user up by email, case-insensitively (the unique index is on `lower(email)`).
pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = lower(")
                .bind::<diesel::sql_types::Text, _>(email)
                .sql(")"),
        )
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// A user as operators see it: never the password hash, only whether one is set.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct Member {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    #[diesel(select_expression = users::password_hash.is_not_null())]
    #[diesel(select_expression_type = diesel::dsl::IsNotNull<users::password_hash>)]
    pub has_password: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The users of a tenant, by email.
pub async fn list_for_tenant(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
) -> QueryResult<Vec<Member>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .order(users::email)
        .select(Member::as_select())
        .load(conn)
        .await
}

/// One user of a tenant (`None` for a user of another tenant, or an operator).
pub async fn find_in_tenant(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Member>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .select(Member::as_select())
        .first(conn)
        .await
        .optional()
}

/// Disables a user of a tenant. Returns 0 when there is no such enabled user (already disabled
/// users keep their original `disabled_at`).
pub async fn disable_in_tenant(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq(id))
            .filter(users::disabled_at.is_null()),
    )
    .set((users::disabled_at.eq(at), users::updated_at.eq(at)))
    .execute(conn)
    .await
}

/// Sets the first password of an invited user (one who has none yet) and records the sign-in
/// that follows. Returns 0 if the user already has a password or is disabled.
pub async fn set_initial_password(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    hash: &str,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::password_hash.is_null())
            .filter(users::disabled_at.is_null()),
    )
    .set((
        users::password_hash.eq(hash),
        users::failed_logins.eq(0),
        users::locked_until.eq(None::<DateTime<Utc>>),
        users::last_login_at.eq(at),
        users::updated_at.eq(at),
    ))
    .execute(conn)
    .await
}

/// Records a failed sign-in: one more failure and, past the free attempts, a lock until `until`.
pub async fn record_failed_login(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    until: Option<DateTime<Utc>>,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::failed_logins.eq(users::failed_logins + 1),
            users::locked_until.eq(until),
        ))
        .execute(conn)
        .await
}

/// Records a successful sign-in (and, when given, the upgraded password hash).
pub async fn record_login(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    at: DateTime<Utc>,
    new_hash: Option<&str>,
) -> QueryResult<usize> {
    let updated = diesel::update(users::table.find(id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<DateTime<Utc>>),
            users::last_login_at.eq(at),
        ))
        .execute(conn)
        .await?;
    if let Some(hash) = new_hash {
        diesel::update(users::table.find(id))
            .set((users::password_hash.eq(hash), users::updated_at.eq(at)))
            .execute(conn)
            .await?;
    }
    Ok(updated)
}

/// Clears the failure count and lock after a correct code (the account is not signed in by it).
pub async fn clear_failed_logins(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await
}

/// Sets a new password (already hashed) for an enabled user: a change or a reset. The failure
/// count and any lock are cleared. Returns 0 for a disabled or missing user.
pub async fn set_password(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    hash: &str,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::disabled_at.is_null()),
    )
    .set((
        users::password_hash.eq(hash),
        users::failed_logins.eq(0),
        users::locked_until.eq(None::<DateTime<Utc>>),
        users::updated_at.eq(at),
    ))
    .execute(conn)
    .await
}

/// Replaces the password hash with a stronger one of the same password (sign-in rehash).
pub async fn set_password_hash(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    hash: &str,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(at)))
        .execute(conn)
        .await
}
