//! `finchgate keys …`: what each subcommand prints, and its exit status.
//!
//! Results go to stdout, progress and warnings to stderr. Refusals are one line and exit 2,
//! like configuration errors; failures while running exit 1.

use std::io::IsTerminal as _;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use secrecy::ExposeSecret as _;

use super::retire::{RetireError, Retired};
use super::rotate::{self, Observer, Outcome, Progress, Report, RowFailure};
use super::{KeyUsage, PerTable, Table, WRAP_COUNT_WARNING};
use crate::cli::CliError;
use crate::cli::args::{KeyringArgs, KeysArgs, KeysCommand, RetireArgs, RotateArgs};
use crate::config::{ConfigError, DatabaseSettings};
use crate::db::models::{audit, keyring as keyring_rows};
use crate::db::{Pool, Scope, transaction};
use crate::vault::{KekId, Keyring, Vault};

/// How often a rotation without a terminal on stderr prints a progress line.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);

/// Runs one `finchgate keys` subcommand.
pub async fn run(args: KeysArgs) -> Result<(), CliError> {
    match args.command {
        KeysCommand::Generate { id } => generate(id.as_deref()),
        KeysCommand::Status(args) => status(&args).await,
        KeysCommand::Rotate(args) => rotate(args).await,
        KeysCommand::Retire(args) => retire(args).await,
    }
}

/// Prints a fresh key as `id:base64` on stdout and how to install it on stderr.
fn generate(id: Option<&str>) -> Result<(), CliError> {
    let id = match id {
        Some(raw) => KekId::parse(raw).map_err(|e| ConfigError::new("--id", e.to_string()))?,
        None => KekId::parse(&format!("k{}", Utc::now().format("%Y%m%d")))
            .map_err(|e| ConfigError::new("--id", e.to_string()))?,
    };
    let key = Keyring::generate_key().map_err(anyhow::Error::from)?;
    {
        use std::io::Write as _;
        // Unlike other output, a key that never reached stdout is a failure.
        writeln!(std::io::stdout().lock(), "{id}:{}", key.expose_secret())
            .map_err(|e| anyhow::anyhow!("cannot write the key to stdout: {e}"))?;
    }
    eprintln!(
        "Append this line to FINCHGATE_MASTER_KEYS (comma-separated) on every instance: the last listed key becomes active (unless FINCHGATE_ACTIVE_KEY_ID names another); then run `finchgate keys rotate`."
    );
    Ok(())
}

/// The database and the configured keys, checked: reachable, migrated, boot check passed.
struct Opened {
    pool: Pool,
    vault: Vault,
}

async fn open(args: &KeyringArgs) -> Result<Opened, CliError> {
    let mut database = DatabaseSettings::parse(args.database.database_url.as_deref())?;
    database.max_connections = 2;
    let keyring =
        crate::config::parse_keyring(args.master_keys.as_deref(), args.active_key_id.as_deref())?;
    crate::db::check_reachable(&database)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string()))?;
    let pool = crate::db::pool(&database)?;
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", crate::db::describe_pool_error(&e)))?;
    check_migrated(&mut conn).await?;
    let vault = Vault::new(keyring);
    let check = transaction(&mut conn, Scope::System, async |conn| {
        super::register_and_verify(conn, &vault).await
    })
    .await?;
    drop(conn);
    for (id, rows) in &check.retired_in_use {
        warn(&format!(
            "retired key \"{id}\" still wraps {rows} stored secret(s); `finchgate keys rotate` moves them to the active key"
        ));
    }
    Ok(Opened { pool, vault })
}

/// Refuses a database that is not a fully migrated finchgate database.
async fn check_migrated(conn: &mut AsyncPgConnection) -> Result<(), CliError> {
    let missing = crate::db::migrations::missing_versions(conn)
        .await
        .map_err(|e| {
            ConfigError::new(
                "DATABASE_URL",
                format!("not a migrated finchgate database ({e}); run `finchgate migrate`"),
            )
        })?
        .len();
    if missing > 0 {
        return Err(ConfigError::new(
            "DATABASE_URL",
            format!("{missing} migration(s) not applied; run `finchgate migrate`"),
        )
        .into());
    }
    Ok(())
}

async fn connection(pool: &Pool) -> Result<crate::db::PooledConnection, CliError> {
    pool.get()
        .await
        .map_err(|e| CliError::Runtime(anyhow::anyhow!(crate::db::describe_pool_error(&e))))
}

/// Writes a line to stdout; a closed stdout (`| head`) is not worth a panic.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    drop(writeln!(std::io::stdout().lock(), "{line}"));
}

fn warn(message: &str) {
    eprintln!("finchgate: warning: {message}");
}

/// One line of `keys status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    pub kek_id: String,
    pub configured: bool,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub wrap_count: i64,
    pub rows: PerTable,
}

async fn status(args: &KeyringArgs) -> Result<(), CliError> {
    let opened = open(args).await?;
    let vault = &opened.vault;
    let mut conn = connection(&opened.pool).await?;
    let rows = transaction(&mut conn, Scope::System, async |conn| {
        status_rows(conn, vault).await
    })
    .await?;
    say(format_args!("{}", render_status(&rows).trim_end()));
    let active = vault.active_kek_id().as_str();
    let elsewhere: u64 = rows
        .iter()
        .filter(|r| !r.active)
        .map(|r| r.rows.total())
        .sum();
    if elsewhere > 0 {
        say(format_args!(
            "{elsewhere} stored secret(s) are under keys other than the active key \"{active}\": run `finchgate keys rotate`."
        ));
    } else {
        say(format_args!(
            "Every stored secret is under the active key \"{active}\"."
        ));
    }
    print_retirable(&rows);
    for row in &rows {
        if let Some(message) = wrap_count_warning(row) {
            warn(&message);
        }
    }
    Ok(())
}

fn usage_of(usage: &[KeyUsage], kek_id: &str) -> PerTable {
    usage
        .iter()
        .find(|u| u.kek_id == kek_id)
        .map(|u| u.rows)
        .unwrap_or_default()
}

/// Keys that wrap nothing, are not active and not yet retired.
fn print_retirable(rows: &[StatusRow]) {
    for row in rows {
        if !row.active && row.retired_at.is_none() && row.rows.total() == 0 {
            say(format_args!(
                "Key \"{}\" wraps nothing: retire it with `finchgate keys retire {}`.",
                row.kek_id, row.kek_id
            ));
        }
    }
}

/// The warning for a key past [`WRAP_COUNT_WARNING`] wraps, if it is.
pub fn wrap_count_warning(row: &StatusRow) -> Option<String> {
    if row.wrap_count <= WRAP_COUNT_WARNING {
        return None;
    }
    let what = if row.active {
        "rotate now: append a new key (`finchgate keys generate`) and run `finchgate keys rotate`"
    } else {
        "it is no longer active, so it wraps nothing new; rotate its rows away and retire it"
    };
    Some(format!(
        "key \"{}\" has wrapped {} data keys, past 2^31 (half the 2^32 random-nonce bound of NIST SP 800-38D); {what}",
        row.kek_id, row.wrap_count
    ))
}

/// The `keys status` table, one key per line, columns padded to fit.
pub fn render_status(rows: &[StatusRow]) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let time = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut table: Vec<[String; 8]> = vec![[
        "key".into(),
        "configured".into(),
        "active".into(),
        "created".into(),
        "retired".into(),
        "wrap_count".into(),
        Table::FinchCredentials.name().into(),
        Table::ConnectionTokens.name().into(),
    ]];
    for row in rows {
        table.push([
            row.kek_id.clone(),
            yes_no(row.configured),
            yes_no(row.active),
            time(&row.created_at),
            row.retired_at.as_ref().map_or_else(|| "-".into(), time),
            row.wrap_count.to_string(),
            row.rows.finch_credentials.to_string(),
            row.rows.connection_tokens.to_string(),
        ]);
    }
    let mut widths = [0usize; 8];
    for line in &table {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

async fn rotate(args: RotateArgs) -> Result<(), CliError> {
    let opened = open(&args.keys).await?;
    let vault = &opened.vault;
    let active = vault.active_kek_id();
    let mut conn = connection(&opened.pool).await?;
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
    if report.rewrapped.total() > 0 || !report.failures.is_empty() || report.relabelled > 0 {
        transaction(&mut conn, Scope::System, async |conn| {
            audit::record(conn, rotation_event(&report)).await
        })
        .await?;
    }
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
                status_rows(conn, vault).await
            })
            .await?;
            print_retirable(&rows);
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

async fn status_rows(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
) -> Result<Vec<StatusRow>, diesel::result::Error> {
    let records = keyring_rows::all(conn).await?;
    let usage = super::usage_by_table(conn).await?;
    Ok(records
        .into_iter()
        .map(|r| StatusRow {
            configured: vault.kek_ids().iter().any(|k| k.as_str() == r.kek_id),
            active: vault.active_kek_id().as_str() == r.kek_id,
            rows: usage_of(&usage, &r.kek_id),
            kek_id: r.kek_id,
            created_at: r.created_at,
            retired_at: r.retired_at,
            wrap_count: r.wrap_count,
        })
        .collect())
}

fn print_dry_run(active: &KekId, pending: &[KeyUsage]) {
    let mut total = PerTable::default();
    for usage in pending {
        for table in Table::ALL {
            total.add(table, usage.rows.get(table));
        }
    }
    say(format_args!(
        "Dry run: {} row(s) would be re-wrapped to key \"{active}\": {} {}, {} {}.",
        total.total(),
        total.finch_credentials,
        Table::FinchCredentials,
        total.connection_tokens,
        Table::ConnectionTokens
    ));
    for usage in pending {
        say(format_args!(
            "  from \"{}\": {} {}, {} {}",
            usage.kek_id,
            usage.rows.finch_credentials,
            Table::FinchCredentials,
            usage.rows.connection_tokens,
            Table::ConnectionTokens
        ));
    }
}

fn print_report(report: &Report) {
    say(format_args!(
        "Re-wrapped {} row(s) to key \"{}\" in {:.1} s ({:.0} rows/s): {} {}, {} {}.",
        report.rewrapped.total(),
        report.active,
        report.elapsed.as_secs_f64(),
        report.rate(),
        report.rewrapped.finch_credentials,
        Table::FinchCredentials,
        report.rewrapped.connection_tokens,
        Table::ConnectionTokens
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

fn rotation_event(report: &Report) -> audit::Event<'static> {
    let outcome = match report.outcome {
        Outcome::Finished => "finished",
        Outcome::Stopped => "stopped",
        Outcome::RowsLocked(_) => "rows_locked",
    };
    audit::Event::cli("keys.rotated")
        .target("master_key", report.active.as_str())
        .details(serde_json::json!({
            "rewrapped": {
                Table::FinchCredentials.name(): report.rewrapped.finch_credentials,
                Table::ConnectionTokens.name(): report.rewrapped.connection_tokens,
            },
            "relabelled": report.relabelled,
            "failed": report.failures.len(),
            "batches": report.batches,
            "outcome": outcome,
        }))
}

/// Shows progress (a bar on a terminal, a line every few seconds otherwise), reports failed
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

async fn retire(args: RetireArgs) -> Result<(), CliError> {
    let id = KekId::parse(&args.id).map_err(|e| ConfigError::new("ID", e.to_string()))?;
    let opened = open(&args.keys).await?;
    let mut conn = connection(&opened.pool).await?;
    match super::retire::retire(&mut conn, &opened.vault, &id).await {
        Ok(Retired::Now(at)) => {
            say(format_args!(
                "Retired key \"{id}\" at {}. It may now be removed from FINCHGATE_MASTER_KEYS on every instance; keep it with your backups for as long as you may restore one taken before the rotation.",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
            Ok(())
        }
        Ok(Retired::Already(at)) => {
            say(format_args!(
                "Key \"{id}\" was already retired at {}; nothing changed.",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
            Ok(())
        }
        Err(RetireError::Database(e)) => Err(e.into()),
        Err(refusal) => Err(CliError::Refused(refusal.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kek_id: &str, active: bool, wrap_count: i64) -> StatusRow {
        StatusRow {
            kek_id: kek_id.into(),
            configured: true,
            active,
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
            retired_at: None,
            wrap_count,
            rows: PerTable {
                finch_credentials: 12,
                connection_tokens: 3456,
            },
        }
    }

    #[test]
    fn the_status_table_has_a_header_and_aligned_columns() {
        let mut old = row("k2026-old", false, 3468);
        old.configured = false;
        old.retired_at = DateTime::from_timestamp(1_800_086_400, 0);
        let table = render_status(&[old, row("k2", true, 7)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("key        configured  active  created"),
            "{table}"
        );
        assert!(
            lines[1].starts_with(
                "k2026-old  no          no      2027-01-15 08:00 UTC  2027-01-16 08:00 UTC  3468"
            ),
            "{table}"
        );
        assert!(
            lines[2].starts_with("k2         yes         yes"),
            "{table}"
        );
        let column = |line: &str| line.find("3456");
        assert_eq!(
            column(lines[1]),
            column(lines[2]),
            "columns line up:\n{table}"
        );
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn a_key_is_due_for_rotation_only_past_2_to_the_31_wraps() {
        assert_eq!(
            wrap_count_warning(&row("k1", true, WRAP_COUNT_WARNING)),
            None
        );
        let active = wrap_count_warning(&row("k1", true, WRAP_COUNT_WARNING + 1));
        assert!(active.is_some_and(|m| m.contains("rotate now") && m.contains("2147483649")));
        let inactive = wrap_count_warning(&row("k0", false, WRAP_COUNT_WARNING + 1));
        assert!(inactive.is_some_and(|m| m.contains("no longer active")));
    }

    #[test]
    fn key_check_refusals_become_one_line_configuration_errors_naming_the_variable() {
        let cases = [
            (
                crate::keys::KeyCheckError::RetiredInUse {
                    id: "k1".into(),
                    rows: 3,
                },
                "configuration error: FINCHGATE_MASTER_KEYS: key \"k1\" is retired but 3 stored secret(s)",
            ),
            (
                crate::keys::KeyCheckError::RetiredActive("k2".into()),
                "configuration error: FINCHGATE_ACTIVE_KEY_ID: the active key \"k2\" is retired",
            ),
            (
                crate::keys::KeyCheckError::Mismatch("k1".into()),
                "configuration error: FINCHGATE_MASTER_KEYS: key \"k1\" is not the key",
            ),
        ];
        for (error, start) in cases {
            let cli = CliError::from(error);
            assert!(matches!(cli, CliError::Config(_)));
            let line = cli.to_string();
            assert!(line.starts_with(start), "{line}");
            assert!(!line.contains('\n'));
        }
    }
}
