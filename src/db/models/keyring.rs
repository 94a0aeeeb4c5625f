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
///
/// Call it in the transaction that stores the new envelope. It refuses a retired key (or one
/// never registered) with an error, so an instance still running with a key that `keys retire`
/// has since retired cannot store new data under it: `retire` locks the key's row and counts its
/// rows in one transaction, and this update waits for that lock, then finds the key retired.
pub async fn count_wrap(conn: &mut AsyncPgConnection, kek_id: &str) -> QueryResult<usize> {
    add_wraps(conn, kek_id, 1).await
}

/// Counts `n` more data keys wrapped under `kek_id` (a rotation batch); refuses like [`count_wrap`].
pub async fn add_wraps(conn: &mut AsyncPgConnection, kek_id: &str, n: i64) -> QueryResult<usize> {
    let updated = diesel::update(
        keyring::table
            .find(kek_id)
            .filter(keyring::retired_at.is_null()),
    )
    .set(keyring::wrap_count.eq(keyring::wrap_count + n))
    .execute(conn)
    .await?;
    if updated == 0 {
        return Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(format!(
                "master key \"{kek_id}\" is retired or unknown: no new data key may be wrapped under it"
            )),
        ));
    }
    Ok(updated)
}

/// Locks `kek_id`'s row against concurrent wraps (`FOR NO KEY UPDATE`: rows referencing the key
/// can still be inserted) until the transaction ends. `None` if the key is unknown or retired.
pub async fn lock_for_wrapping(
    conn: &mut AsyncPgConnection,
    kek_id: &str,
) -> QueryResult<Option<String>> {
    keyring::table
        .find(kek_id)
        .filter(keyring::retired_at.is_null())
        .select(keyring::kek_id)
        .for_no_key_update()
        .first(conn)
        .await
        .optional()
}

/// Locks `kek_id`'s row exclusively (`FOR UPDATE`) until the transaction ends. This waits for every
/// in-flight transaction that inserted a row referencing the key (their foreign-key checks hold
/// a `KEY SHARE` lock on it), so a count taken afterwards sees their rows.
pub async fn lock_for_retiring(
    conn: &mut AsyncPgConnection,
    kek_id: &str,
) -> QueryResult<Option<KeyRecord>> {
    keyring::table
        .find(kek_id)
        .select(KeyRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Marks `kek_id` retired now; returns when.
pub async fn retire(conn: &mut AsyncPgConnection, kek_id: &str) -> QueryResult<DateTime<Utc>> {
    diesel::update(keyring::table.find(kek_id))
        .set(keyring::retired_at.eq(diesel::dsl::now))
        .returning(keyring::retired_at.assume_not_null())
        .get_result(conn)
        .await
}
