//! The command line: clap subcommands, every flag also readable from the environment.
//!
//! Configuration values are taken as strings ([`args`]) and validated by [`crate::config`], so that
//! every problem is reported as one line naming the variable, with a non-zero exit code.
//!
//! One runner per command group (`serve`, `keys`, `onboarding`, `api_keys`, `dev`, `demo`) parses its
//! arguments, calls the library and prints; the library returns its own errors, which become a
//! [`CliError`] (and so an exit code) here.

mod api_keys;
pub mod args;
mod demo;
mod dev;
mod keys;
mod onboarding;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::args::{
    ApiKeyCommand, DatabaseArgs, DemoArgs, DevCommand, KeysArgs, OperatorCommand, SandboxArgs,
    ServerArgs, TenantCommand, UserCommand,
};
use crate::config::{ConfigError, LogFormat};
use crate::keys::KeyCheckError;

/// The target of the command line's log lines: what it was while `cli` was one file, so that
/// log filters and searches written for it keep working.
const LOG_TARGET: &str = "finchgate::cli";

#[derive(Debug, Parser)]
#[command(
    name = "finchgate",
    version,
    about = "Connect payroll providers through Finch, for many tenants."
)]
pub struct Cli {
    /// Log format: pretty or json.
    #[arg(long, env = "FINCHGATE_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing the server's flags would buy nothing"
)]
pub enum Command {
    /// Run the production server (migrates first).
    Serve(ServerArgs),
    /// Migrate, seed demo data, start the Finch sandbox emulator and the server; print the URL and logins.
    Demo(DemoArgs),
    /// Run pending database migrations.
    Migrate(DatabaseArgs),
    /// Run the Finch sandbox emulator alone.
    Sandbox(SandboxArgs),
    /// Create platform operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Create tenants and invite their admins.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Account recovery: password reset links, clearing two-factor sign-in.
    #[command(subcommand)]
    User(UserCommand),
    /// Master keys: generate one, show their use, rotate data keys to the active one, retire one.
    Keys(KeysArgs),
    /// API keys of a tenant: create (printed once), list, revoke.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Print the OpenAPI 3.1 document of the tenant API (/api/v1) on standard output.
    Openapi,
    /// Development helpers (not for production databases).
    #[command(subcommand)]
    Dev(DevCommand),
}

/// Why a command stopped: bad configuration or a refused operation (exit 2), or a failure
/// while running (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The command refuses to do what was asked; the message says why and what to do instead.
    #[error("{0}")]
    Refused(String),
    #[error("{0:#}")]
    Runtime(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for CliError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Runtime(error.into())
    }
}

/// A connection that cannot be checked out of an open pool is a failure, in one line without
/// the connection string.
impl From<crate::db::PoolError> for CliError {
    fn from(error: crate::db::PoolError) -> Self {
        Self::Runtime(anyhow::anyhow!(crate::db::describe_pool_error(&error)))
    }
}

impl From<KeyCheckError> for CliError {
    /// Configuration problems name their variable and exit 2; the rest are runtime failures.
    fn from(error: KeyCheckError) -> Self {
        let var = match &error {
            KeyCheckError::Mismatch(_)
            | KeyCheckError::Missing { .. }
            | KeyCheckError::RetiredInUse { .. } => "FINCHGATE_MASTER_KEYS",
            KeyCheckError::RetiredActive(_) => "FINCHGATE_ACTIVE_KEY_ID",
            KeyCheckError::Vault(_) | KeyCheckError::Database(_) => {
                return Self::Runtime(error.into());
            }
        };
        let message = error.to_string();
        let problem = message
            .strip_prefix(var)
            .and_then(|m| m.strip_prefix(": "))
            .unwrap_or(&message);
        Self::Config(ConfigError::new(var, problem))
    }
}

/// Parses the command line, runs the command, and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match LogFormat::parse(cli.log_format.as_deref()) {
        Ok(format) => format,
        Err(e) => return report(&CliError::Config(e)),
    };
    crate::telemetry::init(format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return report(&CliError::Runtime(anyhow::anyhow!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn report(error: &CliError) -> ExitCode {
    // One line on stderr, whatever the logger is doing.
    let line = error.to_string().replace('\n', " ");
    eprintln!("finchgate: {line}");
    match error {
        CliError::Config(_) | CliError::Refused(_) => ExitCode::from(2),
        CliError::Runtime(_) => ExitCode::from(1),
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Migrate(args) => serve::migrate(args).await,
        Command::Sandbox(args) => serve::sandbox(args).await,
        Command::Operator(OperatorCommand::Create(args)) => onboarding::operator_create(args).await,
        Command::Tenant(TenantCommand::Create(args)) => onboarding::tenant_create(args).await,
        Command::Tenant(TenantCommand::Invite(args)) => onboarding::tenant_invite(args).await,
        Command::User(UserCommand::Reset(args)) => onboarding::user_reset(args).await,
        Command::User(UserCommand::ClearTwoFactor(args)) => {
            onboarding::user_clear_two_factor(args).await
        }
        Command::Keys(args) => keys::run(args).await,
        Command::Dev(DevCommand::SeedLedger(args)) => dev::seed_ledger(args).await,
        Command::ApiKey(ApiKeyCommand::Create(args)) => api_keys::create(args).await,
        Command::ApiKey(ApiKeyCommand::List(args)) => api_keys::list(args).await,
        Command::ApiKey(ApiKeyCommand::Revoke(args)) => api_keys::revoke(args).await,
        Command::Openapi => {
            println!("{}", crate::api::openapi::json());
            Ok(())
        }
    }
}

/// Migrates the database of `args`, like `finchgate migrate`, then opens a one-connection pool
/// (its connections drop to the application role, like the server's): the database of the
/// bootstrap and development commands.
async fn migrated_pool(args: &DatabaseArgs) -> Result<crate::db::Pool, CliError> {
    let mut database = crate::config::DatabaseSettings::parse(args.database_url.as_deref())?;
    crate::db::migrations::run_pending(&database.url)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", format!("{e:#}")))?;
    database.max_connections = 1;
    let pool = crate::db::pool(&database)?;
    crate::db::check_connection(&pool)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string()))?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_check_refusals_become_one_line_configuration_errors_naming_the_variable() {
        let cases = [
            (
                KeyCheckError::RetiredInUse {
                    id: "k1".into(),
                    rows: 3,
                },
                "configuration error: FINCHGATE_MASTER_KEYS: key \"k1\" is retired but 3 stored secret(s)",
            ),
            (
                KeyCheckError::RetiredActive("k2".into()),
                "configuration error: FINCHGATE_ACTIVE_KEY_ID: the active key \"k2\" is retired",
            ),
            (
                KeyCheckError::Mismatch("k1".into()),
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
