//! `finchgate keys rotate`: a dry run's counts, or a run with progress on stderr, its report
//! on stdout, and an exit status that says whether every row moved.

use std::io::IsTerminal as _;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::{Registration, open, say};
use crate::cli::CliError;
use crate::cli::args::RotateArgs;
use crate::db::{Scope, transaction};
use crate::keys::rotate::{self, Observer, Outcome, Progress, Report, RowFailure};
use crate::keys::{KeyUsage, PerTable, Table};
use crate::vault::KekId;

/// How often a rotation without a terminal on stderr prints a progress line.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);

/// Counts (`--dry-run`) or rotates, records the run in the audit trail, and prints its report.
pub(super) async fn run(args: RotateArgs) -> Result<(), CliError> {
    let opened = open(&args.keys, Registration::Register).await?;
    let vault = &opened.vault;
    let active = vault.active_kek_id();
    let mut conn = opened.pool.get().await?;
    if args.dry_run {
        let pending = transaction(&mut conn, Scope::System, async |conn| {
            rotate::pending(conn, active).await
        })
        .await?;
        print_dry_run(active, &pending);
        return Ok(());
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let interrupted = interrupted.clone();
        async move {
            crate::cli::serve::shutdown_signal().await;
            interrupted.store(true, Ordering::SeqCst);
        }
    });
    let mut observer = CliObserver::new(args.max_batches, interrupted.clone());
    let result = rotate::rotate(&mut conn, vault, args.batch_size, &mut observer).await;
    watcher.abort();
    observer.finish();
    let report = result.map_err(anyhow::Error::from)?;
    rotate::record(&mut conn, &report).await?;
    print_report(&report);
    let mut problems = Vec::new();
    if !report.failures.is_empty() {
        problems.push(format!(
            "{} row(s) could not be re-wrapped and were left under their old key (listed above)",
            report.failures.len()
        ));
    }
    match report.outcome {
        Outcome::Finished => {
            let rows = transaction(&mut conn, Scope::System, async |conn| {
                crate::keys::status::list(conn, vault).await
            })
            .await?;
            super::status::print_retirable(&rows);
        }
        Outcome::Stopped if interrupted.load(Ordering::SeqCst) => {
            problems.push("interrupted; run `finchgate keys rotate` again to continue".into());
        }
        Outcome::Stopped => say(format_args!(
            "Stopped after {} batch(es) as asked (--max-batches); run `finchgate keys rotate` again to continue.",
            report.batches
        )),
        Outcome::RowsLocked(n) => problems.push(format!(
            "{n} row(s) stayed locked by other transactions; run `finchgate keys rotate` again later"
        )),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Runtime(anyhow::anyhow!(problems.join("; "))))
    }
}

fn print_dry_run(active: &KekId, pending: &[KeyUsage]) {
    let mut total = PerTable::default();
    for usage in pending {
        for table in Table::ALL {
            total.add(table, usage.rows.get(table));
        }
    }
    say(format_args!(
        "Dry run: {} row(s) would be re-wrapped to key \"{active}\": {}.",
        total.total(),
        by_table(&total)
    ));
    for usage in pending {
        say(format_args!(
            "  from \"{}\": {}",
            usage.kek_id,
            by_table(&usage.rows)
        ));
    }
}

/// "1 finch_credentials, 3 connection_tokens, 2 user_totp".
fn by_table(rows: &PerTable) -> String {
    Table::ALL
        .iter()
        .map(|&table| format!("{} {table}", rows.get(table)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_report(report: &Report) {
    say(format_args!(
        "Re-wrapped {} row(s) to key \"{}\" in {:.1} s ({:.0} rows/s): {}.",
        report.rewrapped.total(),
        report.active,
        report.elapsed.as_secs_f64(),
        report.rate(),
        by_table(&report.rewrapped)
    ));
    if report.relabelled > 0 {
        say(format_args!(
            "Corrected the key column of {} row(s) whose envelope was already under \"{}\".",
            report.relabelled, report.active
        ));
    }
    if report.outcome == Outcome::Finished && report.failures.is_empty() {
        say(format_args!(
            "Every stored secret is under the active key \"{}\".",
            report.active
        ));
    }
}

/// rows, and stops the run after `--max-batches` or on Ctrl-C / SIGTERM (after the current batch).
struct CliObserver {
    bar: Option<ProgressBar>,
    last_line: Instant,
    max_batches: Option<u64>,
    interrupted: Arc<AtomicBool>,
}

impl CliObserver {
    fn new(max_batches: Option<u64>, interrupted: Arc<AtomicBool>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "re-wrapping [{bar:30}] {pos}/{len} rows  {rate}  eta {eta}",
            ) {
                bar.set_style(
                    style
                        .with_key(
                            "rate",
                            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                                let _ = write!(w, "{:.0} rows/s", state.per_sec());
                            },
                        )
                        .progress_chars("=> "),
                );
            }
            bar
        });
        Self {
            bar,
            last_line: Instant::now(),
            max_batches,
            interrupted,
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{message}")),
            None => eprintln!("{message}"),
        }
    }
}

impl Observer for CliObserver {
    fn row_failed(&mut self, failure: &RowFailure) {
        self.line(&format!(
            "finchgate: cannot re-wrap {} row {}: {}",
            failure.table, failure.row_id, failure.error
        ));
    }

    fn committed(&mut self, progress: &Progress) -> ControlFlow<()> {
        match &self.bar {
            Some(bar) => {
                bar.set_length(progress.total);
                bar.set_position(progress.done());
            }
            None if self.last_line.elapsed() >= PROGRESS_LINE_EVERY => {
                self.last_line = Instant::now();
                eprintln!(
                    "finchgate: rotate: {} of {} row(s) done, {:.0} rows/s",
                    progress.done(),
                    progress.total,
                    progress.rate()
                );
            }
            None => {}
        }
        let enough = self.max_batches.is_some_and(|max| progress.batches >= max);
        if enough || self.interrupted.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}
