//! Online rotation: re-wrap every data key that is not under the active master key.
//!
//! Values are never re-encrypted: [`Vault::rewrap`] authenticates the row (both layers) and
//! seals its DEK under the active key; the value ciphertext is carried over byte for byte.
//!
//! Each batch is one transaction in the system scope:
//!
//! 1. lock the active key's `keyring` row (`FOR NO KEY UPDATE`), so rotators take their batches
//!    in turn. Writers of envelopes are not held up: they take `FOR KEY SHARE` on that row (in
//!    `count_wrap` and their foreign-key checks), which this lock does not conflict with;
//! 2. take the next window of `batch_size` rows in primary-key order and lock those still under
//!    another key with `FOR UPDATE SKIP LOCKED`, so rows a request (or another rotator) holds are
//!    left for later instead of waited for;
//! 3. re-wrap each one and write them back with one `UPDATE … FROM unnest(…)` per table;
//! 4. add the batch's re-wraps to the active key's wrap count, on the rotation's own shard row of
//!    `keyring_wraps` (requests count on the other shards, so a batch never waits for one while
//!    holding its envelope rows); commit.
//!
//! A batch never waits for a lock while holding envelope rows (they are taken with `SKIP LOCKED`
//! and the rotation shard is its alone), so rotation cannot deadlock with the server.
//!
//! When a pass has walked every table, rows still under old keys (skipped because they were
//! held, or stored behind the walk) are counted, and another pass picks them up.
//!
//! The state lives in the rows themselves (each envelope names its key), so rotation is resumable
//! by construction: a crash loses at most the uncommitted batch, and running it again walks the
//! tables again, re-wrapping what is left. A row that fails to open is reported (table and row
//! id, never bytes), left as it is, and skipped for the rest of the run.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bytea, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use super::{PerTable, Table};
use crate::db::models::keyring as keyring_rows;
use crate::db::{Scope, transaction};
use crate::vault::{KekId, Purpose, Rewrap, RowContext, Vault, VaultError};

/// The default number of rows per batch (per transaction).
pub const DEFAULT_BATCH_SIZE: u32 = 500;

/// How long rows held by other transactions are waited for, in total, before a run gives up
/// on them (they stay under their old key; the next run picks them up).
const LOCKED_ROWS_PATIENCE: Duration = Duration::from_secs(30);
const LOCKED_ROWS_POLL: Duration = Duration::from_millis(100);

/// A row that could not be re-wrapped. Holds no ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    pub table: Table,
    pub row_id: Uuid,
    pub error: VaultError,
}

/// Where a run stands after each batch.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Rows under other keys when the run started (another rotator may take some of them).
    pub total: u64,
    /// Rows this run re-wrapped, in committed batches.
    pub rewrapped: PerTable,
    /// Rows that failed to open, so far.
    pub failed: u64,
    /// Committed batches.
    pub batches: u64,
    pub started: Instant,
}

impl Progress {
    /// Rows this run has dealt with: re-wrapped or failed.
    pub fn done(&self) -> u64 {
        self.rewrapped.total() + self.failed
    }

    /// Re-wrapped rows per second since the start.
    pub fn rate(&self) -> f64 {
        let seconds = self.started.elapsed().as_secs_f64();
        if seconds > 0.0 {
            self.rewrapped.total() as f64 / seconds
        } else {
            0.0
        }
    }
}

/// What a run wants to hear about, and its chance to stop one. The defaults do nothing.
pub trait Observer {
    /// A row failed to open and was skipped.
    fn row_failed(&mut self, _failure: &RowFailure) {}

    /// Batch number `batch` (from 1) is written but not committed. `Break` rolls it back and
    /// ends the run, exactly as a crash at this point would (tests use it as fault injection).
    fn before_commit(&mut self, _batch: u64) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    /// A batch is committed; `progress` includes it. `Break` ends the run here (resumable).
    fn committed(&mut self, _progress: &Progress) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// An observer that hears nothing and never stops a run.
impl Observer for () {}

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No row is left under another key, except the failed ones.
    Finished,
    /// The observer stopped the run (after a commit, or by rolling a batch back).
    Stopped,
    /// Some rows stayed locked by other transactions for too long; run again later.
    RowsLocked(u64),
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub active: KekId,
    pub outcome: Outcome,
    /// Rows re-wrapped to the active key (committed).
    pub rewrapped: PerTable,
    /// Rows whose key column named an old key while their envelope was already under the
    /// active one: the column was corrected, nothing was wrapped.
    pub relabelled: u64,
    pub failures: Vec<RowFailure>,
    pub batches: u64,
    pub elapsed: Duration,
}

impl Report {
    /// Re-wrapped rows per second over the whole run.
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.rewrapped.total() as f64 / seconds
        } else {
            0.0
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(
        "the active key \"{0}\" is retired or not registered; run the key check (`finchgate keys status`)"
    )]
    ActiveUnavailable(KekId),
    #[error("database error during rotation: {0}")]
    Database(#[from] diesel::result::Error),
}

/// Rows per table (and per old key) that a rotation would re-wrap now.
pub async fn pending(
    conn: &mut AsyncPgConnection,
    active: &KekId,
) -> Result<Vec<super::KeyUsage>, diesel::result::Error> {
    Ok(super::usage_by_table(conn)
        .await?
        .into_iter()
        .filter(|u| u.kek_id != active.as_str())
        .collect())
}

/// Re-wraps, batch by batch, every stored data key that is not under `vault`'s active key.
///
/// `batch_size` (rows examined per transaction) is clamped to at least 1. Run the key check
/// first ([`super::register_and_verify`]): rows under keys that are not configured fail to open
/// and are reported as failures.
pub async fn rotate<O: Observer + ?Sized>(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
    batch_size: u32,
    observer: &mut O,
) -> Result<Report, RotateError> {
    let active = vault.active_kek_id().clone();
    let total = transaction(conn, Scope::System, async |conn| {
        pending(conn, &active).await
    })
    .await?
    .iter()
    .map(|u| u.rows.total())
    .sum();
    let mut run = Run {
        vault,
        active: &active,
        batch_size: i64::from(batch_size.max(1)),
        scans: [Scan::default(), Scan::default()],
        progress: Progress {
            total,
            rewrapped: PerTable::default(),
            failed: 0,
            batches: 0,
            started: Instant::now(),
        },
        relabelled: 0,
        failures: Vec::new(),
    };
    let mut pass_wrote = false;
    // Since when passes have found only rows other transactions hold.
    let mut stuck_since: Option<Instant> = None;
    let outcome = loop {
        match run.next_batch(conn, observer).await? {
            Batch::Committed { wrote } => {
                pass_wrote |= wrote;
                if observer.committed(&run.progress).is_break() {
                    break Outcome::Stopped;
                }
            }
            Batch::RolledBack => break Outcome::Stopped,
            Batch::EndOfPass { remaining: 0 } => break Outcome::Finished,
            Batch::EndOfPass { remaining } => {
                // Rows the pass skipped because another transaction held them, or that were
                // stored under an old key behind the walk: walk again. A pass that moved
                // nothing means they are all held; wait for them, for a while.
                if pass_wrote {
                    stuck_since = None;
                } else {
                    let since = *stuck_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= LOCKED_ROWS_PATIENCE {
                        break Outcome::RowsLocked(remaining);
                    }
                    tokio::time::sleep(LOCKED_ROWS_POLL).await;
                }
                pass_wrote = false;
                for scan in &mut run.scans {
                    scan.restart();
                }
            }
        }
    };
    Ok(Report {
        active: active.clone(),
        outcome,
        rewrapped: run.progress.rewrapped,
        relabelled: run.relabelled,
        failures: run.failures,
        batches: run.progress.batches,
        elapsed: run.progress.started.elapsed(),
    })
}

/// Where the walk through one table stands. Batches take windows of consecutive primary keys,
/// so each pass reads every row once, whatever the share of rows still to do: looking rows up
/// by key id instead would re-read, in every batch, the index entries of the rows already moved.
#[derive(Default)]
struct Scan {
    /// The last id of the previous window (nil before the first: no row has the nil UUID).
    after: Uuid,
    /// The last window came back short: this pass is through the table.
    done: bool,
    /// Rows that failed to open, skipped for the rest of the run.
    failed: Vec<Uuid>,
}

impl Scan {
    fn restart(&mut self) {
        self.after = Uuid::nil();
        self.done = false;
    }
}

const fn slot(table: Table) -> usize {
    match table {
        Table::FinchCredentials => 0,
        Table::ConnectionTokens => 1,
    }
}

struct Run<'a> {
    vault: &'a Vault,
    active: &'a KekId,
    batch_size: i64,
    /// Indexed by [`slot`].
    scans: [Scan; 2],
    progress: Progress,
    relabelled: u64,
    failures: Vec<RowFailure>,
}

enum Batch {
    /// `wrote`: some row was re-wrapped or relabelled.
    Committed {
        wrote: bool,
    },
    RolledBack,
    /// Every table has been walked through; `remaining` rows are still under old keys (not
    /// counting this run's failures).
    EndOfPass {
        remaining: u64,
    },
}

/// What a batch transaction did.
enum Step {
    Written(Written),
    EndOfPass { remaining: u64 },
}

/// What one batch wrote, applied to the run only once it committed.
#[derive(Default)]
struct Written {
    rewrapped: PerTable,
    relabelled: u64,
}

enum BatchError {
    Database(diesel::result::Error),
    ActiveUnavailable,
    /// The observer asked for a rollback.
    Abort,
}

impl From<diesel::result::Error> for BatchError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error)
    }
}

impl Run<'_> {
    async fn next_batch<O: Observer + ?Sized>(
        &mut self,
        conn: &mut AsyncPgConnection,
        observer: &mut O,
    ) -> Result<Batch, RotateError> {
        let batch_number = self.progress.batches + 1;
        let result = transaction(conn, Scope::System, async |conn| {
            if keyring_rows::lock_for_wrapping(conn, self.active.as_str())
                .await?
                .is_none()
            {
                return Err(BatchError::ActiveUnavailable);
            }
            let old_keys = old_keys(conn, self.active).await?;
            let mut written = Written::default();
            let mut examined = 0;
            for table in Table::ALL {
                let scan = &mut self.scans[slot(table)];
                if scan.done || examined >= self.batch_size {
                    continue;
                }
                let limit = self.batch_size - examined;
                let window = window_ids(conn, table, scan.after, limit).await?;
                let len = i64::try_from(window.len()).unwrap_or(i64::MAX);
                examined += len;
                scan.done = len < limit;
                let Some(&last) = window.last() else {
                    continue;
                };
                scan.after = last;
                let rows = lock_rows(conn, table, &old_keys, &window, &scan.failed).await?;
                let updates = self.rewrap_rows(table, rows, &mut written, observer);
                write_rows(conn, table, self.active, updates).await?;
            }
            if examined == 0 {
                let remaining = count_old_rows(conn, &old_keys, &self.scans).await?;
                return Ok(Step::EndOfPass { remaining });
            }
            let wraps = i64::try_from(written.rewrapped.total()).unwrap_or(i64::MAX);
            if wraps > 0 {
                keyring_rows::add_rotation_wraps(conn, self.active.as_str(), wraps).await?;
            }
            if observer.before_commit(batch_number).is_break() {
                return Err(BatchError::Abort);
            }
            Ok(Step::Written(written))
        })
        .await;
        match result {
            Ok(Step::Written(written)) => {
                // Counted only once committed.
                for table in Table::ALL {
                    self.progress
                        .rewrapped
                        .add(table, written.rewrapped.get(table));
                }
                self.relabelled += written.relabelled;
                self.progress.batches = batch_number;
                let wrote = written.rewrapped.total() + written.relabelled > 0;
                Ok(Batch::Committed { wrote })
            }
            Ok(Step::EndOfPass { remaining }) => Ok(Batch::EndOfPass { remaining }),
            Err(BatchError::Abort) => Ok(Batch::RolledBack),
            Err(BatchError::ActiveUnavailable) => {
                Err(RotateError::ActiveUnavailable(self.active.clone()))
            }
            Err(BatchError::Database(e)) => Err(e.into()),
        }
    }

    /// Re-wraps the rows of one table; returns the `(id, envelope)` pairs to write back.
    fn rewrap_rows<O: Observer + ?Sized>(
        &mut self,
        table: Table,
        rows: Vec<LockedRow>,
        written: &mut Written,
        observer: &mut O,
    ) -> Vec<(Uuid, Vec<u8>)> {
        let purpose = match table {
            Table::FinchCredentials => Purpose::FinchClientSecret,
            Table::ConnectionTokens => Purpose::AccessToken,
        };
        let mut updates = Vec::with_capacity(rows.len());
        for row in rows {
            let ctx = RowContext::new(purpose, row.tenant_id, row.bound_id);
            match self.vault.rewrap(&ctx, &row.envelope) {
                Ok(Rewrap::Rewrapped(sealed)) => {
                    written.rewrapped.add(table, 1);
                    updates.push((row.id, sealed.envelope));
                }
                Ok(Rewrap::AlreadyActive) => {
                    written.relabelled += 1;
                    updates.push((row.id, row.envelope));
                }
                Err(error) => {
                    let failure = RowFailure {
                        table,
                        row_id: row.id,
                        error,
                    };
                    observer.row_failed(&failure);
                    self.scans[slot(table)].failed.push(row.id);
                    self.progress.failed += 1;
                    self.failures.push(failure);
                }
            }
        }
        updates
    }
}

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    tenant_id: Uuid,
    /// The row id the envelope's AAD binds: the credentials row's own id, the token's connection.
    #[diesel(sql_type = SqlUuid)]
    bound_id: Uuid,
    #[diesel(sql_type = Bytea)]
    envelope: Vec<u8>,
}

#[derive(QueryableByName)]
struct KeyIdRow {
    #[diesel(sql_type = Text)]
    kek_id: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every registered key but the active one. Envelope key columns reference `keyring`, so these
/// are all the keys a row can be under.
async fn old_keys(
    conn: &mut AsyncPgConnection,
    active: &KekId,
) -> Result<Vec<String>, diesel::result::Error> {
    let rows: Vec<KeyIdRow> = diesel::sql_query("SELECT kek_id FROM keyring WHERE kek_id <> $1")
        .bind::<Text, _>(active.as_str())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.kek_id).collect())
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The next `limit` primary keys of `table` after `after`, in order (a range scan of the
/// primary key index).
async fn window_ids(
    conn: &mut AsyncPgConnection,
    table: Table,
    after: Uuid,
    limit: i64,
) -> Result<Vec<Uuid>, diesel::result::Error> {
    let sql = match table {
        Table::FinchCredentials => {
            "SELECT id FROM finch_credentials WHERE id > $1 ORDER BY id LIMIT $2"
        }
        Table::ConnectionTokens => {
            "SELECT id FROM connection_tokens WHERE id > $1 ORDER BY id LIMIT $2"
        }
    };
    let rows: Vec<IdRow> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Locks the rows of `window` that are under an old key and not known to fail; skips rows
/// another transaction holds. The key condition is checked again on the locked row version,
/// so a row another rotator has just moved is not taken.
async fn lock_rows(
    conn: &mut AsyncPgConnection,
    table: Table,
    old_keys: &[String],
    window: &[Uuid],
    failed: &[Uuid],
) -> Result<Vec<LockedRow>, diesel::result::Error> {
    let sql = match table {
        Table::FinchCredentials => {
            "SELECT id, tenant_id, id AS bound_id, secret_envelope AS envelope
               FROM finch_credentials
              WHERE id = ANY($1) AND secret_kek_id = ANY($2) AND secret_envelope IS NOT NULL
                AND id <> ALL($3)
                FOR UPDATE SKIP LOCKED"
        }
        Table::ConnectionTokens => {
            "SELECT id, tenant_id, connection_id AS bound_id, envelope
               FROM connection_tokens
              WHERE id = ANY($1) AND kek_id = ANY($2) AND id <> ALL($3)
                FOR UPDATE SKIP LOCKED"
        }
    };
    diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(window)
        .bind::<Array<Text>, _>(old_keys)
        .bind::<Array<SqlUuid>, _>(failed)
        .load(conn)
        .await
}

/// Writes re-wrapped envelopes back, with their key column set to the active key.
async fn write_rows(
    conn: &mut AsyncPgConnection,
    table: Table,
    active: &KekId,
    updates: Vec<(Uuid, Vec<u8>)>,
) -> Result<(), diesel::result::Error> {
    if updates.is_empty() {
        return Ok(());
    }
    let sql = match table {
        Table::FinchCredentials => {
            "UPDATE finch_credentials AS t SET secret_kek_id = $1, secret_envelope = v.envelope
               FROM unnest($2::uuid[], $3::bytea[]) AS v(id, envelope)
              WHERE t.id = v.id"
        }
        Table::ConnectionTokens => {
            "UPDATE connection_tokens AS t SET kek_id = $1, envelope = v.envelope
               FROM unnest($2::uuid[], $3::bytea[]) AS v(id, envelope)
              WHERE t.id = v.id"
        }
    };
    let expected = updates.len();
    let (ids, envelopes): (Vec<Uuid>, Vec<Vec<u8>>) = updates.into_iter().unzip();
    let updated = diesel::sql_query(sql)
        .bind::<Text, _>(active.as_str())
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Bytea>, _>(envelopes)
        .execute(conn)
        .await?;
    if updated != expected {
        // The rows are locked by this transaction, so this cannot happen; if it does, roll back.
        return Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(format!(
                "{table}: expected to update {expected} locked row(s), updated {updated}"
            )),
        ));
    }
    Ok(())
}

/// Rows still under old keys, not counting this run's failures.
async fn count_old_rows(
    conn: &mut AsyncPgConnection,
    old_keys: &[String],
    scans: &[Scan; 2],
) -> Result<u64, diesel::result::Error> {
    let count: Count = diesel::sql_query(
        "SELECT (SELECT count(*) FROM finch_credentials
                  WHERE secret_kek_id = ANY($1) AND id <> ALL($2))
              + (SELECT count(*) FROM connection_tokens
                  WHERE kek_id = ANY($1) AND id <> ALL($3)) AS n",
    )
    .bind::<Array<Text>, _>(old_keys)
    .bind::<Array<SqlUuid>, _>(&scans[slot(Table::FinchCredentials)].failed)
    .bind::<Array<SqlUuid>, _>(&scans[slot(Table::ConnectionTokens)].failed)
    .get_result(conn)
    .await?;
    Ok(u64::try_from(count.n).unwrap_or(0))
}
