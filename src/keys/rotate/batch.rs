//! One batch of a rotation: a transaction that takes the next window of each table, re-wraps
//! the rows in it that are under an old key, writes them back and counts the wraps.

use std::time::Instant;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::sql::{LockedRow, count_old_rows, lock_rows, old_keys, window_ids, write_rows};
use super::{Observer, Outcome, PerTable, Progress, Report, RotateError, RowFailure, Table};
use crate::db::models::keyring as keyring_rows;
use crate::db::{Scope, transaction};
use crate::vault::{KekId, Purpose, Rewrap, RowContext, Vault};

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
        Table::UserTotp => 2,
    }
}

pub(super) struct Run<'a> {
    vault: &'a Vault,
    active: &'a KekId,
    batch_size: i64,
    /// Indexed by [`slot`].
    scans: [Scan; 3],
    progress: Progress,
    relabelled: u64,
    failures: Vec<RowFailure>,
}

pub(super) enum Batch {
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

impl<'a> Run<'a> {
    pub(super) fn new(vault: &'a Vault, active: &'a KekId, batch_size: u32, total: u64) -> Self {
        Self {
            vault,
            active,
            batch_size: i64::from(batch_size.max(1)),
            scans: [Scan::default(), Scan::default(), Scan::default()],
            progress: Progress {
                total,
                rewrapped: PerTable::default(),
                failed: 0,
                batches: 0,
                started: Instant::now(),
            },
            relabelled: 0,
            failures: Vec::new(),
        }
    }

    pub(super) fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Starts the next pass through every table from its first row.
    pub(super) fn restart_pass(&mut self) {
        for scan in &mut self.scans {
            scan.restart();
        }
    }

    pub(super) fn into_report(self, outcome: Outcome) -> Report {
        Report {
            active: self.active.clone(),
            outcome,
            rewrapped: self.progress.rewrapped,
            relabelled: self.relabelled,
            failures: self.failures,
            batches: self.progress.batches,
            elapsed: self.progress.started.elapsed(),
        }
    }

    pub(super) async fn next_batch<O: Observer + ?Sized>(
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
                let remaining = count_old_rows(
                    conn,
                    &old_keys,
                    &self.scans[slot(Table::FinchCredentials)].failed,
                    &self.scans[slot(Table::ConnectionTokens)].failed,
                    &self.scans[slot(Table::UserTotp)].failed,
                )
                .await?;
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
            Table::UserTotp => Purpose::TotpSecret,
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
