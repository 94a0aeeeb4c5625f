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
//!
//! The passes are driven here; one batch is in `batch`, its SQL in `sql`.

mod batch;
mod sql;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use self::batch::{Batch, Run};
use super::{PerTable, Table};
use crate::db::models::audit;
use crate::db::{Scope, transaction};
use crate::vault::{KekId, Vault, VaultError};

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

/// Records a run that changed anything as one `keys.rotated` audit event (its own transaction);
/// a run that changed nothing leaves no trace.
pub async fn record(
    conn: &mut AsyncPgConnection,
    report: &Report,
) -> Result<(), diesel::result::Error> {
    if report.rewrapped.total() == 0 && report.failures.is_empty() && report.relabelled == 0 {
        return Ok(());
    }
    let outcome = match report.outcome {
        Outcome::Finished => "finished",
        Outcome::Stopped => "stopped",
        Outcome::RowsLocked(_) => "rows_locked",
    };
    let event = audit::Event::cli("keys.rotated")
        .target("master_key", report.active.as_str())
        .details(serde_json::json!({
            "rewrapped": {
                Table::FinchCredentials.name(): report.rewrapped.finch_credentials,
                Table::ConnectionTokens.name(): report.rewrapped.connection_tokens,
                Table::UserTotp.name(): report.rewrapped.user_totp,
            },
            "relabelled": report.relabelled,
            "failed": report.failures.len(),
            "batches": report.batches,
            "outcome": outcome,
        }));
    transaction(conn, Scope::System, async |conn| {
        audit::record(conn, event).await
    })
    .await
    .map(drop)
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
    let mut run = Run::new(vault, &active, batch_size, total);
    let mut pass_wrote = false;
    // Since when passes have found only rows other transactions hold.
    let mut stuck_since: Option<Instant> = None;
    let outcome = loop {
        match run.next_batch(conn, observer).await? {
            Batch::Committed { wrote } => {
                pass_wrote |= wrote;
                if observer.committed(run.progress()).is_break() {
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
                run.restart_pass();
            }
        }
    };
    Ok(run.into_report(outcome))
}
