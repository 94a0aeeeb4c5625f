//! `finchgate dev seed-ledger`: seeds a development database, with a progress bar on stderr.

use std::time::Instant;

use super::args::SeedLedgerArgs;
use super::{CliError, migrated_pool};
use crate::config::DatabaseSettings;
use crate::console::seed::{self, SLUG_PREFIX, SeedError};

/// Tenants, their connections, then the ledger in batches; then fresh statistics.
pub(super) async fn seed_ledger(args: SeedLedgerArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let pool = migrated_pool(&args.database).await?;
    let mut conn = pool.get().await?;
    let plan = seed::Plan {
        tenants: args.tenants,
        rows: args.rows,
        batch_size: args.batch_size,
    };
    seed::seed_tenants(&mut conn, &plan).await?;
    let bar = indicatif::ProgressBar::new(plan.rows);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} ledger rows ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    seed::seed_ledger(&mut conn, &plan, |done| bar.set_position(done)).await?;
    bar.finish();
    drop(conn);
    let database = DatabaseSettings::parse(args.database.database_url.as_deref())?;
    seed::refresh_statistics(&database.url).await?;
    println!(
        "Seeded {} tenant(s) ({SLUG_PREFIX}0001…) and {} ledger row(s) in {:.1} s.",
        args.tenants,
        plan.rows,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

impl From<SeedError> for CliError {
    fn from(error: SeedError) -> Self {
        match error {
            SeedError::TooManyTenants(_) => Self::Refused("--tenants is too large".into()),
            other => Self::Runtime(other.into()),
        }
    }
}
