//! Retiring a master key: recorded once no stored envelope uses it, so that it may leave the
//! configuration (and stay in backups for the restore window).

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::PerTable;
use crate::db::models::{audit, keyring as keyring_rows};
use crate::db::{Scope, transaction};
use crate::vault::{KekId, Vault};

/// What `retire` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// Retired now.
    Now(DateTime<Utc>),
    /// It already was, since then; nothing changed.
    Already(DateTime<Utc>),
}

/// Why a key cannot be retired. Each message is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error(
        "refusing to retire key \"{0}\": this database has no key by that id (see `finchgate keys status`)"
    )]
    Unknown(KekId),
    #[error(
        "refusing to retire key \"{0}\": it is the active key; append a newer key to FINCHGATE_MASTER_KEYS (or set FINCHGATE_ACTIVE_KEY_ID), run `finchgate keys rotate`, then retire it"
    )]
    Active(KekId),
    #[error(
        "refusing to retire key \"{id}\": {rows} still use it; run `finchgate keys rotate` first"
    )]
    InUse { id: KekId, rows: PerTable },
    #[error("database error while retiring a key: {0}")]
    Database(#[from] diesel::result::Error),
}

/// Retires `id` unless it is `vault`'s active key or any stored envelope still uses it, and
/// records an audit event. The key's `keyring` row is locked first (`FOR UPDATE`), which waits
/// for transactions that are storing rows under it, so none slips in between the count and the
/// retirement; after it, `count_wrap` refuses the key, so an instance still running with it
/// active can store nothing more under it.
pub async fn retire(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
    id: &KekId,
) -> Result<Retired, RetireError> {
    if vault.active_kek_id() == id {
        return Err(RetireError::Active(id.clone()));
    }
    transaction(conn, Scope::System, async |conn| {
        let retired_at = keyring_rows::lock_for_retiring(conn, id.as_str())
            .await?
            .ok_or_else(|| RetireError::Unknown(id.clone()))?;
        if let Some(at) = retired_at {
            return Ok(Retired::Already(at));
        }
        let rows = super::rows_of(&super::usage_by_table(conn).await?, id.as_str());
        if rows.total() > 0 {
            return Err(RetireError::InUse {
                id: id.clone(),
                rows,
            });
        }
        let at = keyring_rows::retire(conn, id.as_str()).await?;
        audit::record(
            conn,
            audit::Event::cli("keys.retired")
                .target("master_key", id.as_str())
                .details(serde_json::json!({ "active_key": vault.active_kek_id().as_str() })),
        )
        .await?;
        Ok(Retired::Now(at))
    })
    .await
}
