//! Every master key the database knows, with how the configuration and the stored data use it:
//! what `finchgate keys status` shows.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::{PerTable, WRAP_COUNT_WARNING};
use crate::db::models::keyring as keyring_rows;
use crate::vault::Vault;

/// One key of the `keyring` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub kek_id: String,
    /// Listed in the configured master keys.
    pub configured: bool,
    /// The configured active key.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    /// Data keys wrapped under it so far.
    pub wrap_count: i64,
    /// Stored envelopes under it now.
    pub rows: PerTable,
}

impl KeyStatus {
    /// Not active, not yet retired, and wrapping nothing: it may be retired.
    pub fn is_retirable(&self) -> bool {
        !self.active && self.retired_at.is_none() && self.rows.total() == 0
    }

    /// Past [`WRAP_COUNT_WARNING`] wraps.
    pub fn is_due_for_rotation(&self) -> bool {
        self.wrap_count > WRAP_COUNT_WARNING
    }
}

/// Every key the database knows, in `keyring` order, as `vault`'s configuration sees it.
pub async fn list(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
) -> Result<Vec<KeyStatus>, diesel::result::Error> {
    let records = keyring_rows::all(conn).await?;
    let usage = super::usage_by_table(conn).await?;
    Ok(records
        .into_iter()
        .map(|r| KeyStatus {
            configured: vault.kek_ids().iter().any(|k| k.as_str() == r.kek_id),
            active: vault.active_kek_id().as_str() == r.kek_id,
            rows: super::rows_of(&usage, &r.kek_id),
            kek_id: r.kek_id,
            created_at: r.created_at,
            retired_at: r.retired_at,
            wrap_count: r.wrap_count,
        })
        .collect())
}
