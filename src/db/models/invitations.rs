//! `invitations`: one-time setup links for new tenant admins. Only the SHA-256 of a token is stored.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::{invitations, tenants, users};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = invitations, check_for_backend(diesel::pg::Pg))]
pub struct Invitation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: Vec<u8>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = invitations)]
pub struct NewInvitation<'a> {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: &'a [u8],
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewInvitation<'_>,
) -> QueryResult<Invitation> {
    diesel::insert_into(invitations::table)
        .values(new)
        .returning(Invitation::as_returning())
        .get_result(conn)
        .await
}

/// Uses up the invitation with this token hash, if it is still usable: one statement, so two
/// concurrent uses cannot both succeed. Needs the system scope (the token is all we know).
pub async fn claim(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<Option<Invitation>> {
    diesel::update(
        invitations::table
            .filter(invitations::token_hash.eq(token_hash))
            .filter(invitations::used_at.is_null())
            .filter(invitations::expires_at.gt(now)),
    )
    .set(invitations::used_at.eq(now))
    .returning(Invitation::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// What the setup page shows about a usable invitation.
#[derive(Debug, Clone, Queryable)]
pub struct Usable {
    pub invitation_id: Uuid,
    pub email: String,
    pub tenant_name: String,
}

/// The invitation with this token hash, if it can still be used (without using it up): unused,
/// unexpired, for an enabled user without a password, in an active tenant.
pub async fn find_usable(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<Option<Usable>> {
    invitations::table
        .inner_join(users::table.on(users::id.eq(invitations::user_id)))
        .inner_join(tenants::table.on(tenants::id.eq(invitations::tenant_id)))
        .filter(invitations::token_hash.eq(token_hash))
        .filter(invitations::used_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .filter(users::password_hash.is_null())
        .filter(users::disabled_at.is_null())
        .filter(tenants::status.eq("active"))
        .select((invitations::id, users::email, tenants::name))
        .first(conn)
        .await
        .optional()
}

/// Deletes a user's unused invitations (a new link replaces the old; a disabled user has none).
pub async fn delete_unused_for_user(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    user_id: Uuid,
) -> QueryResult<usize> {
    diesel::delete(
        invitations::table
            .filter(invitations::tenant_id.eq(tenant_id))
            .filter(invitations::user_id.eq(user_id))
            .filter(invitations::used_at.is_null()),
    )
    .execute(conn)
    .await
}

/// An unused, unexpired invitation as listed to operators (no hash).
#[derive(Debug, Clone, Queryable)]
pub struct Pending {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The tenant's pending invitations, newest first.
pub async fn list_pending(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Pending>> {
    invitations::table
        .inner_join(users::table.on(users::id.eq(invitations::user_id)))
        .filter(invitations::tenant_id.eq(tenant_id))
        .filter(invitations::used_at.is_null())
        .filter(invitations::expires_at.gt(now))
        .order(invitations::created_at.desc())
        .select((
            invitations::id,
            users::email,
            invitations::created_at,
            invitations::expires_at,
        ))
        .load(conn)
        .await
}
