//! `finchgate keys …`: what each subcommand prints, and its exit status.
//!
//! Results go to stdout, progress and warnings to stderr. Refusals are one line and exit 2,
//! like configuration errors; failures while running exit 1.

mod rotate;
mod status;

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret as _;

use super::CliError;
use super::args::{KeyringArgs, KeysArgs, KeysCommand, RetireArgs};
use crate::config::{ConfigError, DatabaseSettings};
use crate::db::{Pool, Scope, transaction};
use crate::keys::retire::{RetireError, Retired};
use crate::vault::{KekId, Keyring, Vault};

/// Runs one `finchgate keys` subcommand.
pub(super) async fn run(args: KeysArgs) -> Result<(), CliError> {
    match args.command {
        KeysCommand::Generate { id } => generate(id.as_deref()),
        KeysCommand::Status(args) => status::run(&args).await,
        KeysCommand::Rotate(args) => rotate::run(args).await,
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

/// Whether [`open`] records configured keys the database does not know yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// `rotate` and `retire`, which write anyway: as the boot check of `serve` does.
    Register,
    /// `status`: check, write nothing.
    ReadOnly,
}

/// Opens the database of `args` (refusing one that is not fully migrated) and runs the key check
/// with its keys; retired keys that still wrap data are a warning here, not a refusal.
async fn open(args: &KeyringArgs, registration: Registration) -> Result<Opened, CliError> {
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
    let check = transaction(&mut conn, Scope::System, async |conn| match registration {
        Registration::Register => crate::keys::register_and_verify(conn, &vault).await,
        Registration::ReadOnly => {
            read_only(conn).await?;
            crate::keys::verify(conn, &vault).await
        }
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

/// Makes the current transaction read-only: PostgreSQL then refuses any write in it.
async fn read_only(conn: &mut AsyncPgConnection) -> Result<(), diesel::result::Error> {
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query("SET TRANSACTION READ ONLY")
        .execute(conn)
        .await
        .map(drop)
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

/// Writes a line to stdout; a closed stdout (`| head`) is not worth a panic.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    drop(writeln!(std::io::stdout().lock(), "{line}"));
}

fn warn(message: &str) {
    eprintln!("finchgate: warning: {message}");
}

async fn retire(args: RetireArgs) -> Result<(), CliError> {
    let id = KekId::parse(&args.id).map_err(|e| ConfigError::new("ID", e.to_string()))?;
    let opened = open(&args.keys, Registration::Register).await?;
    let mut conn = opened.pool.get().await?;
    match crate::keys::retire::retire(&mut conn, &opened.vault, &id).await {
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
