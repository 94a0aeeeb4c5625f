//! Master keys against the database: the boot-time key check, and the logic behind
//! `finchgate keys status | rotate | retire`.
//!
//! Every configured key is recorded in `keyring` with a key-check value sealed under it; at start
//! every configured key must open its recorded check value, every key that still wraps data must
//! be configured, the active key must not be retired, and no retired key may still wrap data.
//! Otherwise finchgate refuses to start, before it writes anything.
//!
//! Rotation ([`rotate`]) re-wraps data keys to the active master key online, in batches;
//! retirement ([`retire`]) marks a key no row uses any more, after which it may leave the
//! configuration; [`status`] lists every key with its use. The command line (`cli::keys`) prints
//! what they return.

pub mod retire;
pub mod rotate;
pub mod status;

use std::fmt;

use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::db::models::keyring as keyring_rows;
use crate::vault::{KekId, Vault};

/// Past this many wraps a key is due for rotation: half of the 2^32 random-nonce bound of
/// NIST SP 800-38D §8.3, which leaves room for the time a rotation takes to be scheduled.
pub const WRAP_COUNT_WARNING: i64 = 1 << 31;

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
    #[error(
        "FINCHGATE_MASTER_KEYS: key \"{id}\" is retired but {rows} stored secret(s) are still wrapped under it; keep it configured and run `finchgate keys rotate`"
    )]
    RetiredInUse { id: String, rows: i64 },
    #[error(
        "FINCHGATE_ACTIVE_KEY_ID: the active key \"{0}\" is retired; append a new key (`finchgate keys generate`) or make another configured key active"
    )]
    RetiredActive(String),
    #[error("the key check could not run: {0}")]
    Vault(#[from] crate::vault::VaultError),
    #[error("the key check could not read the database: {0}")]
    Database(#[from] diesel::result::Error),
}

/// The tables that store envelopes. The names are the tables', and appear in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Tenants' Finch client secrets (`secret_envelope`).
    FinchCredentials,
    /// Connections' access tokens (`envelope`).
    ConnectionTokens,
    /// Users' two-factor (TOTP) secrets (`secret_envelope`), one row per user.
    UserTotp,
}

impl Table {
    pub const ALL: [Self; 3] = [
        Self::FinchCredentials,
        Self::ConnectionTokens,
        Self::UserTotp,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::FinchCredentials => "finch_credentials",
            Self::ConnectionTokens => "connection_tokens",
            Self::UserTotp => "user_totp",
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A number per envelope table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerTable {
    pub finch_credentials: u64,
    pub connection_tokens: u64,
    pub user_totp: u64,
}

impl PerTable {
    pub fn get(&self, table: Table) -> u64 {
        match table {
            Table::FinchCredentials => self.finch_credentials,
            Table::ConnectionTokens => self.connection_tokens,
            Table::UserTotp => self.user_totp,
        }
    }

    pub fn add(&mut self, table: Table, n: u64) {
        match table {
            Table::FinchCredentials => self.finch_credentials += n,
            Table::ConnectionTokens => self.connection_tokens += n,
            Table::UserTotp => self.user_totp += n,
        }
    }

    pub fn total(&self) -> u64 {
        self.finch_credentials + self.connection_tokens + self.user_totp
    }
}

/// "1 finch_credentials row(s), 3 connection_tokens row(s) and 0 user_totp row(s)".
impl fmt::Display for PerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [first, second, last] = Table::ALL;
        write!(
            f,
            "{} {first} row(s), {} {second} row(s) and {} {last} row(s)",
            self.get(first),
            self.get(second),
            self.get(last)
        )
    }
}

/// How many stored envelopes one key wraps, per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub kek_id: String,
    pub rows: PerTable,
}

#[derive(QueryableByName)]
struct KeyUseRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kek_id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    finch_credentials: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    connection_tokens: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    user_totp: i64,
}

/// Rows per key id and table, for every key that wraps at least one stored envelope.
pub async fn usage_by_table(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<KeyUsage>, diesel::result::Error> {
    let rows: Vec<KeyUseRow> = diesel::sql_query(
        "SELECT kek_id, sum(c)::bigint AS finch_credentials, sum(t)::bigint AS connection_tokens,
                sum(u)::bigint AS user_totp
           FROM (
             SELECT secret_kek_id AS kek_id, count(*) AS c, 0::bigint AS t, 0::bigint AS u
               FROM finch_credentials
              WHERE secret_kek_id IS NOT NULL GROUP BY 1
             UNION ALL
             SELECT kek_id, 0::bigint, count(*), 0::bigint FROM connection_tokens GROUP BY 1
             UNION ALL
             SELECT secret_kek_id, 0::bigint, 0::bigint, count(*) FROM user_totp GROUP BY 1
           ) u
          GROUP BY kek_id ORDER BY kek_id",
    )
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| KeyUsage {
            kek_id: r.kek_id,
            rows: PerTable {
                finch_credentials: u64::try_from(r.finch_credentials).unwrap_or(0),
                connection_tokens: u64::try_from(r.connection_tokens).unwrap_or(0),
                user_totp: u64::try_from(r.user_totp).unwrap_or(0),
            },
        })
        .collect())
}

/// The rows `kek_id` wraps, per table, in `usage` (none if it is not listed).
fn rows_of(usage: &[KeyUsage], kek_id: &str) -> PerTable {
    usage
        .iter()
        .find(|u| u.kek_id == kek_id)
        .map(|u| u.rows)
        .unwrap_or_default()
}

/// Rows per key id across every table that stores envelopes.
pub async fn usage(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<(String, i64)>, diesel::result::Error> {
    Ok(usage_by_table(conn)
        .await?
        .into_iter()
        .map(|u| (u.kek_id, i64::try_from(u.rows.total()).unwrap_or(i64::MAX)))
        .collect())
}

/// What the key check found that it tolerates in [`register_and_verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyCheck {
    /// Retired keys that still wrap data (only a partial restore, or an instance that wrote
    /// under a key while it was being retired, leaves such rows): `(id, rows)`.
    pub retired_in_use: Vec<(String, i64)>,
    /// Data keys wrapped under the active key so far.
    pub active_wrap_count: i64,
    /// Configured keys the database does not know yet ([`verify`] leaves them so;
    /// [`register_and_verify`] has recorded them).
    pub unregistered: Vec<String>,
}

/// The boot check: records configured keys seen for the first time and verifies the others;
/// refuses keys that do not match, data wrapped under keys that are not configured, a retired
/// active key, and retired keys that still wrap data. A retired key that wraps nothing may be
/// absent from the configuration. Run it in the system scope: in any other, row-level security
/// would hide the rows that use a missing key.
pub async fn register_and_check(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
) -> Result<(), KeyCheckError> {
    let check = register_and_verify(conn, vault).await?;
    if check.active_wrap_count > WRAP_COUNT_WARNING {
        tracing::warn!(
            kek_id = %vault.active_kek_id(),
            wrap_count = check.active_wrap_count,
            "the active master key has wrapped more than 2^31 data keys (half the NIST SP 800-38D random-nonce bound): rotate now"
        );
    }
    match check.retired_in_use.into_iter().next() {
        Some((id, rows)) => Err(KeyCheckError::RetiredInUse { id, rows }),
        None => Ok(()),
    }
}

/// [`register_and_check`] minus one refusal: retired keys that still wrap data are reported, not
/// refused, so that `keys rotate` can move the data off them. Records configured keys seen for
/// the first time.
pub async fn register_and_verify(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
) -> Result<KeyCheck, KeyCheckError> {
    let mut check = verify(conn, vault).await?;
    for id in vault.kek_ids() {
        if check.unregistered.iter().any(|u| u == id.as_str()) {
            let check_value = vault.key_check_value(id)?;
            keyring_rows::insert_if_missing(conn, id.as_str(), &check_value).await?;
        }
    }
    check.unregistered.clear();
    Ok(check)
}

/// [`register_and_verify`] without writing anything: configured keys the database does not know
/// yet are listed in [`KeyCheck::unregistered`] (what `keys status` shows).
pub async fn verify(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
) -> Result<KeyCheck, KeyCheckError> {
    let known = keyring_rows::all(conn).await?;
    let mut unregistered = Vec::new();
    for id in vault.kek_ids() {
        match known.iter().find(|k| k.kek_id == id.as_str()) {
            Some(record) => vault
                .verify_key_check(id, &record.check_value)
                .map_err(|_| KeyCheckError::Mismatch(id.as_str().to_owned()))?,
            None => unregistered.push(id.as_str().to_owned()),
        }
    }
    let active = vault.active_kek_id();
    if let Some(record) = known.iter().find(|k| k.kek_id == active.as_str()) {
        if record.retired_at.is_some() {
            return Err(KeyCheckError::RetiredActive(active.as_str().to_owned()));
        }
    }
    let configured: Vec<&KekId> = vault.kek_ids();
    let mut check = KeyCheck {
        active_wrap_count: known
            .iter()
            .find(|k| k.kek_id == active.as_str())
            .map_or(0, |k| k.wrap_count),
        unregistered,
        ..KeyCheck::default()
    };
    for (id, rows) in usage(conn).await? {
        if rows == 0 {
            continue;
        }
        if !configured.iter().any(|k| k.as_str() == id) {
            return Err(KeyCheckError::Missing { id, rows });
        }
        if known
            .iter()
            .any(|k| k.kek_id == id && k.retired_at.is_some())
        {
            check.retired_in_use.push((id, rows));
        }
    }
    Ok(check)
}
