//! Master-key bookkeeping against the database: the boot-time key check.
//!
//! Every configured key is recorded in `keyring` with a key-check value sealed under it; at start
//! every configured key must open its recorded check value, and every key that still wraps data
//! must be configured. Otherwise finchgate refuses to start, before it writes anything.

use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::db::models::keyring as keyring_rows;
use crate::vault::{KekId, Vault};

/// Why the configured keys cannot be used with this database.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(
        "FINCHGATE_MASTER_KEYS: key \"{0}\" is not the key this database knows under that id (its key-check value does not open); restore the original key"
    )]
    Mismatch(String),
    #[error(
        "FINCHGATE_MASTER_KEYS: key \"{id}\" is missing but {rows} stored secret(s) are wrapped under it; add it back (or restore from backup)"
    )]
    Missing { id: String, rows: i64 },
    #[error("the key check could not run: {0}")]
    Vault(#[from] crate::vault::VaultError),
    #[error("the key check could not read the database: {0}")]
    Database(#[from] diesel::result::Error),
}

#[derive(QueryableByName)]
struct KeyUse {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kek_id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

/// Rows per key id across every table that stores envelopes.
pub async fn usage(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<(String, i64)>, diesel::result::Error> {
    let rows: Vec<KeyUse> = diesel::sql_query(
        "SELECT kek_id, sum(n)::bigint AS rows FROM (
             SELECT secret_kek_id AS kek_id, count(*) AS n FROM finch_credentials
              WHERE secret_kek_id IS NOT NULL GROUP BY 1
             UNION ALL
             SELECT kek_id, count(*) FROM connection_tokens GROUP BY 1
         ) u GROUP BY kek_id ORDER BY kek_id",
    )
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kek_id, r.rows)).collect())
}

/// Records configured keys seen for the first time and verifies the others; refuses keys that
/// do not match, and data wrapped under keys that are not configured. Run it in the system scope:
/// in any other, row-level security would hide the rows that use a missing key.
pub async fn register_and_check(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
) -> Result<(), KeyCheckError> {
    let known = keyring_rows::all(conn).await?;
    for id in vault.kek_ids() {
        match known.iter().find(|k| k.kek_id == id.as_str()) {
            Some(record) => vault
                .verify_key_check(id, &record.check_value)
                .map_err(|_| KeyCheckError::Mismatch(id.as_str().to_owned()))?,
            None => {
                let check_value = vault.key_check_value(id)?;
                keyring_rows::insert_if_missing(conn, id.as_str(), &check_value).await?;
            }
        }
    }
    let configured: Vec<&KekId> = vault.kek_ids();
    for (id, rows) in usage(conn).await? {
        if rows > 0 && !configured.iter().any(|k| k.as_str() == id) {
            return Err(KeyCheckError::Missing { id, rows });
        }
    }
    Ok(())
}
