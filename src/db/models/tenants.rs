//! `tenants`: the companies using finchgate, with their Finch settings.

use crate::db::prelude::*;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::schema::tenants;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub finch_sandbox: String,
    pub default_products: Vec<String>,
    pub credentials_version: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its admins must enrol in two-factor sign-in before they reach anything but their account.
    pub require_two_factor: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tenants)]
pub struct NewTenant<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub finch_sandbox: &'a str,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewTenant<'_>) -> QueryResult<Tenant> {
    diesel::insert_into(tenants::table)
        .values(new)
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
}

pub async fn find_by_slug(conn: &mut AsyncPgConnection, slug: &str) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::slug.eq(slug))
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Tenant>> {
    tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

/// Sets the Finch sandbox mode and default products used for new Connect sessions.
pub async fn update_finch_settings(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    finch_sandbox: &str,
    default_products: &[String],
) -> QueryResult<usize> {
    diesel::update(tenants::table.find(id))
        .set((
            tenants::finch_sandbox.eq(finch_sandbox),
            tenants::default_products.eq(default_products),
            tenants::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
}

/// Every tenant visible in the current scope, by slug.
pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Tenant>> {
    tenants::table
        .order(tenants::slug)
        .select(Tenant::as_select())
        .load(conn)
        .await
}

/// Sets whether the tenant's admins must use two-factor sign-in. Returns the rows changed (0 when
/// the setting already had that value).
pub async fn set_require_two_factor(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    required: bool,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        tenants::table
            .find(id)
            .filter(tenants::require_two_factor.ne(required)),
    )
    .set((
        tenants::require_two_factor.eq(required),
        tenants::updated_at.eq(at),
    ))
    .execute(conn)
    .await
}
