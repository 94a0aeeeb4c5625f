//! `keyring`: metadata of master keys (never the key material) and their key-check values.

use crate::db::prelude::*;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bytea, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::db::schema::keyring;

/// A key's row with its wrap count summed over its shards.
#[derive(Debug, Clone, QueryableByName)]
pub struct KeyRecord {
    #[diesel(sql_type = Text)]
    pub kek_id: String,
    #[diesel(sql_type = Bytea)]
    pub check_value: Vec<u8>,
    #[diesel(sql_type = BigInt)]
    pub wrap_count: i64,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub retired_at: Option<DateTime<Utc>>,
}

/// Sealing transactions count their wraps on a random one of shards `0..SEALING_SHARDS`.
const SEALING_SHARDS: i16 = 63;
/// Rotation counts its batches on a shard of its own (the table's CHECK allows `0..64`): a batch
/// holds locks on envelope rows when it counts, and a request that went on to write one of them
/// after counting on the same shard would deadlock with it. Rotators take turns (they lock the
/// key's `keyring` row first), so this shard is never contended.
const ROTATION_SHARD: i16 = 63;

pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<KeyRecord>> {
    diesel::sql_query(
        "SELECT k.kek_id, k.check_value, k.created_at, k.retired_at, \
                coalesce((SELECT sum(w.wrap_count) FROM keyring_wraps w WHERE w.kek_id = k.kek_id), 0)::bigint \
                    AS wrap_count \
         FROM keyring k ORDER BY k.created_at",
    )
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
/// has since retired cannot store new data under it.
///
/// The count goes to a random one of the key's shard rows in `keyring_wraps`, so
/// concurrent sealing transactions rarely wait for each other (one shared counter row made
/// sealing commits serial: docs/benchmarks.md). The guard is a `FOR KEY SHARE` lock on the key's
/// `keyring` row, held to the end of the transaction: sealing transactions share it, and it
/// conflicts only with the `FOR UPDATE` lock `retire` takes before counting the key's rows. So
/// either this transaction commits first and `retire` counts its row (and refuses), or `retire`
/// commits first and this statement, having waited for it, finds the key retired.
pub async fn count_wrap(conn: &mut AsyncPgConnection, kek_id: &str) -> QueryResult<usize> {
    add_to_shard(conn, kek_id, None, 1).await
}

/// Counts `n` more data keys wrapped under `kek_id` by a rotation batch; refuses like
/// [`count_wrap`].
pub async fn add_rotation_wraps(
    conn: &mut AsyncPgConnection,
    kek_id: &str,
    n: i64,
) -> QueryResult<usize> {
    add_to_shard(conn, kek_id, Some(ROTATION_SHARD), n).await
}

/// Adds `n` to `kek_id`'s count on `shard`, or on a random sealing shard when `None`.
async fn add_to_shard(
    conn: &mut AsyncPgConnection,
    kek_id: &str,
    shard: Option<i16>,
    n: i64,
) -> QueryResult<usize> {
    let updated = diesel::sql_query(
        "INSERT INTO keyring_wraps (kek_id, shard, wrap_count) \
         SELECT kek_id, coalesce($2, floor(random() * $4)::smallint), $3 FROM keyring \
         WHERE kek_id = $1 AND retired_at IS NULL \
         FOR KEY SHARE \
         ON CONFLICT (kek_id, shard) DO UPDATE SET wrap_count = keyring_wraps.wrap_count + EXCLUDED.wrap_count",
    )
    .bind::<Text, _>(kek_id)
    .bind::<Nullable<SmallInt>, _>(shard)
    .bind::<BigInt, _>(n)
    .bind::<SmallInt, _>(SEALING_SHARDS)
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

/// Locks `kek_id`'s row (`FOR NO KEY UPDATE`) until the transaction ends, so rotation batches
/// take turns; sealing transactions (`FOR KEY SHARE`, and rows referencing the key) are not
/// held up by it. `None` if the key is unknown or retired.
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
/// Returns the key's `retired_at` (`Some(None)`: not retired), `None` if the key is unknown.
pub async fn lock_for_retiring(
    conn: &mut AsyncPgConnection,
    kek_id: &str,
) -> QueryResult<Option<Option<DateTime<Utc>>>> {
    keyring::table
        .find(kek_id)
        .select(keyring::retired_at)
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
