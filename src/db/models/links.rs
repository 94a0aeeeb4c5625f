//! `connect_links`: a tenant's links for one customer to connect without a finchgate account.
//! The token is stored only as its SHA-256; the status is derived from the row (see
//! [`Link::status`]).

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::db::prelude::*;
use crate::db::schema::connect_links;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = connect_links, check_for_backend(diesel::pg::Pg))]
pub struct Link {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub token_hash: Vec<u8>,
    pub customer_id: String,
    pub customer_name: String,
    pub products: Vec<String>,
    pub sandbox: Option<String>,
    pub flow: String,
    pub redirect_uri_id: Option<Uuid>,
    pub return_uri: Option<String>,
    pub reconnect_connection_id: Option<Uuid>,
    pub created_by_user: Option<Uuid>,
    pub created_by_key: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub opened_at: Option<DateTime<Utc>>,
    pub current_flow_id: Option<Uuid>,
    pub completed_at: Option<DateTime<Utc>>,
    pub connection_id: Option<Uuid>,
    pub failed_attempt_id: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<Uuid>,
}

impl Link {
    /// `revoked`, `completed`, `expired`, `failed` (the last attempt failed; the link can still
    /// be used), `opened` or `open`, in that order of precedence, at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.completed_at.is_some() {
            "completed"
        } else if self.expires_at <= now {
            "expired"
        } else if self.failed_attempt_id.is_some() {
            "failed"
        } else if self.opened_at.is_some() {
            "opened"
        } else {
            "open"
        }
    }

    /// Whether a customer may still start Finch Connect from it.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        matches!(self.status(now), "open" | "opened" | "failed")
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = connect_links)]
pub struct NewLink<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub token_hash: &'a [u8],
    pub customer_id: &'a str,
    pub customer_name: &'a str,
    pub products: &'a [String],
    pub sandbox: Option<&'a str>,
    pub flow: &'a str,
    pub redirect_uri_id: Option<Uuid>,
    pub return_uri: Option<&'a str>,
    pub reconnect_connection_id: Option<Uuid>,
    pub created_by_user: Option<Uuid>,
    pub created_by_key: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewLink<'_>) -> QueryResult<Link> {
    diesel::insert_into(connect_links::table)
        .values(new)
        .returning(Link::as_returning())
        .get_result(conn)
        .await
}

/// The one link lookup without a tenant: the token names the link (256 random bits, stored
/// hashed). Runs in the system scope, from the public page.
pub async fn find_by_token_hash(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<Option<Link>> {
    connect_links::table
        .filter(connect_links::token_hash.eq(token_hash))
        .select(Link::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Link>> {
    connect_links::table
        .filter(connect_links::tenant_id.eq(tenant_id))
        .filter(connect_links::id.eq(id))
        .select(Link::as_select())
        .first(conn)
        .await
        .optional()
}

/// [`find`], locking the row until the transaction ends (Continue, the callback, revoke).
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Link>> {
    connect_links::table
        .filter(connect_links::tenant_id.eq(tenant_id))
        .filter(connect_links::id.eq(id))
        .select(Link::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// What a page of links may be narrowed to (the API's filters).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub customer_id: Option<String>,
    /// One of [`Link::status`]'s values, as of `now`.
    pub status: Option<String>,
}

/// A page of the tenant's links, newest first: at most `limit` after the sort key `after`
/// (`(created_at, id)`, exclusive). The status filter is [`Link::status`] in SQL, as of `now`.
pub async fn page(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    filter: &Filter,
    now: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<Link>> {
    use connect_links as l;
    let mut query = l::table.filter(l::tenant_id.eq(tenant_id)).into_boxed();
    if let Some(customer_id) = &filter.customer_id {
        query = query.filter(l::customer_id.eq(customer_id.clone()));
    }
    if let Some(status) = filter.status.as_deref() {
        if status == "revoked" {
            query = query.filter(l::revoked_at.is_not_null());
        } else {
            query = query.filter(l::revoked_at.is_null());
            if status == "completed" {
                query = query.filter(l::completed_at.is_not_null());
            } else {
                query = query.filter(l::completed_at.is_null());
                if status == "expired" {
                    query = query.filter(l::expires_at.le(now));
                } else {
                    query = query.filter(l::expires_at.gt(now));
                    query = match status {
                        "failed" => query.filter(l::failed_attempt_id.is_not_null()),
                        "opened" => query
                            .filter(l::failed_attempt_id.is_null())
                            .filter(l::opened_at.is_not_null()),
                        _ => query
                            .filter(l::failed_attempt_id.is_null())
                            .filter(l::opened_at.is_null()),
                    };
                }
            }
        }
    }
    if let Some((created_at, id)) = after {
        query = query.filter(
            l::created_at
                .lt(created_at)
                .or(l::created_at.eq(created_at).and(l::id.lt(id))),
        );
    }
    query
        .order((l::created_at.desc(), l::id.desc()))
        .limit(limit)
        .select(Link::as_select())
        .load(conn)
        .await
}

/// The tenant's links, newest first, at most `limit`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    limit: i64,
) -> QueryResult<Vec<Link>> {
    connect_links::table
        .filter(connect_links::tenant_id.eq(tenant_id))
        .order((connect_links::created_at.desc(), connect_links::id.desc()))
        .limit(limit)
        .select(Link::as_select())
        .load(conn)
        .await
}

/// The customer opened the page: `opened_at` is set once.
pub async fn mark_opened(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        connect_links::table
            .filter(connect_links::tenant_id.eq(tenant_id))
            .filter(connect_links::id.eq(id))
            .filter(connect_links::opened_at.is_null()),
    )
    .set(connect_links::opened_at.eq(now))
    .execute(conn)
    .await
}

/// The flow the last "Continue" started: the only one that may finish.
pub async fn set_current_flow(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    flow_id: Uuid,
) -> QueryResult<usize> {
    diesel::update(
        connect_links::table
            .filter(connect_links::tenant_id.eq(tenant_id))
            .filter(connect_links::id.eq(id)),
    )
    .set(connect_links::current_flow_id.eq(flow_id))
    .execute(conn)
    .await
}

/// The link's flow stored a connection: the link is completed (once).
pub async fn complete(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    connection_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        connect_links::table
            .filter(connect_links::tenant_id.eq(tenant_id))
            .filter(connect_links::id.eq(id))
            .filter(connect_links::completed_at.is_null()),
    )
    .set((
        connect_links::completed_at.eq(now),
        connect_links::connection_id.eq(connection_id),
    ))
    .execute(conn)
    .await
}

/// The link's last attempt failed.
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    attempt_id: Uuid,
) -> QueryResult<usize> {
    diesel::update(
        connect_links::table
            .filter(connect_links::tenant_id.eq(tenant_id))
            .filter(connect_links::id.eq(id))
            .filter(connect_links::completed_at.is_null()),
    )
    .set(connect_links::failed_attempt_id.eq(attempt_id))
    .execute(conn)
    .await
}

/// Revokes a link that is not revoked or completed yet; returns whether it did.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    by: Option<Uuid>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        connect_links::table
            .filter(connect_links::tenant_id.eq(tenant_id))
            .filter(connect_links::id.eq(id))
            .filter(connect_links::revoked_at.is_null())
            .filter(connect_links::completed_at.is_null()),
    )
    .set((
        connect_links::revoked_at.eq(now),
        connect_links::revoked_by.eq(by),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(now: DateTime<Utc>) -> Link {
        Link {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            token_hash: vec![0; 32],
            customer_id: "c".into(),
            customer_name: "C".into(),
            products: vec!["company".into()],
            sandbox: None,
            flow: "embedded".into(),
            redirect_uri_id: None,
            return_uri: None,
            reconnect_connection_id: None,
            created_by_user: None,
            created_by_key: None,
            created_at: now,
            expires_at: now + chrono::Duration::days(7),
            opened_at: None,
            current_flow_id: None,
            completed_at: None,
            connection_id: None,
            failed_attempt_id: None,
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn the_status_follows_the_row_in_order_of_precedence() {
        let now = Utc::now();
        let mut l = link(now);
        assert_eq!(l.status(now), "open");
        l.opened_at = Some(now);
        assert_eq!(l.status(now), "opened");
        l.failed_attempt_id = Some(Uuid::nil());
        assert_eq!(l.status(now), "failed");
        assert!(l.is_usable(now), "a failed attempt may be tried again");
        assert_eq!(l.status(now + chrono::Duration::days(8)), "expired");
        l.completed_at = Some(now);
        assert_eq!(l.status(now + chrono::Duration::days(8)), "completed");
        assert!(!l.is_usable(now));
        l.revoked_at = Some(now);
        assert_eq!(l.status(now), "revoked");
    }
}
