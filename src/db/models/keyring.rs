//! `keyring`: metadata of master keys (never the key material) and their key-check values.

use crate::db::prelude::*;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::db::schema::keyring;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = keyring, check_for_backend(diesel::pg::Pg))]
pub struct KeyRecord {
    pub kek_id: String,
    pub check_value: Vec<u8>,
    pub wrap_count: i64,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<KeyRecord>> {
    keyring::table
        .select(KeyRecord::as_select())
        .order(keyring::created_at)
        .load(conn)
        .await
}

/// Records a key the first time it is seen; an existing row is left as it is.
pub async fn insert_if_missing(
    conn: &mut AsyncPgConnection,
    kek_id: &str,
    check_value: &[u8],
) -> QueryResult<usize> {
    diesel::insert_into(keyring::table)
        .values((
            keyring::kek_id.eq(kek_id),
            keyring::check_value.eq(check_value),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

/// Counts one more data key wrapped under `kek_id` (NIST SP 800-38D bound on random nonces).
pub async fn count_wrap(conn: &mut AsyncPgConnection, kek_id: &str) -> QueryResult<usize> {
    diesel::update(keyring::table.find(kek_id))
        .set(keyring::wrap_count.eq(keyring::wrap_count + 1))
        .execute(conn)
        .await
}
