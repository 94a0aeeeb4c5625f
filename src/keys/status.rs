//! Every master key the database knows, with how the configuration and the stored data use it,
//! and the configured keys it does not know yet: what `finchgate keys status` shows. Reads only.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::{PerTable, WRAP_COUNT_WARNING};
use crate::db::models::keyring as keyring_rows;
use crate::vault::Vault;

/// One key of the `keyring` table, or a configured key not recorded there yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub kek_id: String,
    /// Listed in the configured master keys.
    pub configured: bool,
    /// The configured active key.
    pub active: bool,
    /// When it was recorded in `keyring`; `None`: configured, not yet registered (the next start
    /// of `serve`, or `keys rotate`, records it).
    pub created_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    /// Data keys wrapped under it so far.
    pub wrap_count: i64,
    /// Stored envelopes under it now.
    pub rows: PerTable,
}

impl KeyStatus {
    /// Recorded in `keyring`.
    pub fn is_registered(&self) -> bool {
        self.created_at.is_some()
    }

    /// Registered, not active, not yet retired, and wrapping nothing: it may be retired.
    pub fn is_retirable(&self) -> bool {
        self.is_registered() && !self.active && self.retired_at.is_none() && self.rows.total() == 0
    }

    /// Past [`WRAP_COUNT_WARNING`] wraps.
    pub fn is_due_for_rotation(&self) -> bool {
        self.wrap_count > WRAP_COUNT_WARNING
    }
}

/// Every key the database knows, in `keyring` order, as `vault`'s configuration sees it, then the
/// configured keys it does not know yet, in configuration order. Writes nothing.
pub async fn list(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
) -> Result<Vec<KeyStatus>, diesel::result::Error> {
    let records = keyring_rows::all(conn).await?;
    let usage = super::usage_by_table(conn).await?;
    let active = vault.active_kek_id().as_str();
    let unregistered: Vec<KeyStatus> = vault
        .kek_ids()
        .into_iter()
        .filter(|id| !records.iter().any(|r| r.kek_id == id.as_str()))
        .map(|id| KeyStatus {
            kek_id: id.as_str().to_owned(),
            configured: true,
            active: id.as_str() == active,
            created_at: None,
            retired_at: None,
            wrap_count: 0,
            rows: super::rows_of(&usage, id.as_str()),
        })
        .collect();
    let mut keys: Vec<KeyStatus> = records
        .into_iter()
        .map(|r| KeyStatus {
            configured: vault.kek_ids().iter().any(|k| k.as_str() == r.kek_id),
            active: active == r.kek_id,
            rows: super::rows_of(&usage, &r.kek_id),
            kek_id: r.kek_id,
            created_at: Some(r.created_at),
            retired_at: r.retired_at,
            wrap_count: r.wrap_count,
        })
        .collect();
    keys.extend(unregistered);
    Ok(keys)
}
