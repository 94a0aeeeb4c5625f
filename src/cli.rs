//! The command line: clap subcommands, every flag also readable from the environment.
//!
//! Configuration values are taken as strings and validated by [`crate::config`], so that every
//! problem is reported as one line naming the variable, with a non-zero exit code.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigError, LogFormat, RawServerSettings};

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
    /// Master keys: generate one, show their use, rotate data keys to the active one, retire one.
    Keys(KeysArgs),
    /// Development helpers (not for production databases).
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Fill the database with seeded tenants (seed-0001, …), connections and ledger rows over the
    /// last 30 days, for demos and benchmarks.
    SeedLedger(SeedLedgerArgs),
}

#[derive(Debug, Args)]
pub struct SeedLedgerArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// How many tenants to create (existing seed-NNNN tenants are kept).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=9999))]
    pub tenants: u32,
    /// How many ledger rows to add.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub rows: u64,
    /// Rows per INSERT (one transaction each).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub batch_size: u32,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator (asks for the password twice on the terminal, or reads --password-stdin).
    Create(OperatorCreateArgs),
}

#[derive(Debug, Args)]
pub struct OperatorCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The operator's email address (their sign-in name).
    #[arg(long)]
    pub email: String,
    /// Read the password from standard input (one trailing line break is dropped).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create(TenantCreateArgs),
    /// Invite an admin to a tenant: prints a one-time setup link (valid 72 hours).
    Invite(TenantInviteArgs),
}

#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// URL name of the tenant: a-z, 0-9 and -, at most 63 characters, e.g. acme-payroll.
    #[arg(long)]
    pub slug: String,
    /// Display name, e.g. "Acme Payroll Co.".
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TenantInviteArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Slug of the tenant.
    #[arg(long)]
    pub tenant: String,
    /// Email address of the admin to invite.
    #[arg(long)]
    pub email: String,
    /// The URL browsers use to reach finchgate; the link is built on it.
    #[arg(long, env = "FINCHGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL, e.g. postgres://postgres@127.0.0.1:5432/finchgate.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "FINCHGATE_BIND")]
    pub bind: Option<String>,
    /// The URL browsers use to reach finchgate, e.g. https://finchgate.example.com.
    #[arg(long, env = "FINCHGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Master keys: id:base64-of-32-bytes, comma-separated.
    #[arg(long, env = "FINCHGATE_MASTER_KEYS", hide_env_values = true)]
    pub master_keys: Option<String>,
    /// Id of the master key used for new encryptions [default: the last listed].
    #[arg(long, env = "FINCHGATE_ACTIVE_KEY_ID")]
    pub active_key_id: Option<String>,
    /// Base64 of at least 64 random bytes, for session cookies.
    #[arg(long, env = "FINCHGATE_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
    /// Finch API base URL [default: https://api.tryfinch.com].
    #[arg(long, env = "FINCH_API_URL")]
    pub finch_api_url: Option<String>,
    /// Finch Connect base URL [default: https://connect.tryfinch.com].
    #[arg(long, env = "FINCH_CONNECT_URL")]
    pub finch_connect_url: Option<String>,
}

impl ServerArgs {
    fn raw(&self) -> RawServerSettings {
        RawServerSettings {
            database_url: self.database.database_url.clone(),
            bind: self.bind.clone(),
            public_url: self.public_url.clone(),
            master_keys: self.master_keys.clone(),
            active_key_id: self.active_key_id.clone(),
            session_secret: self.session_secret.clone(),
            finch_api_url: self.finch_api_url.clone(),
            finch_connect_url: self.finch_connect_url.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// PostgreSQL connection URL; the database is created if missing.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = crate::demo::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Address of the finchgate server.
    #[arg(long, env = "FINCHGATE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Address of the in-process Finch sandbox emulator.
    #[arg(long, env = "FINCHGATE_SANDBOX_BIND", default_value = "127.0.0.1:8090")]
    pub sandbox_bind: String,
    /// Where the development keys and demo logins are kept (created on first run).
    #[arg(
        long,
        env = "FINCHGATE_DEV_FILE",
        default_value = ".finchgate-dev/demo.json"
    )]
    pub dev_file: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, env = "FINCHGATE_SANDBOX_BIND", default_value = "127.0.0.1:8090")]
    pub bind: String,
    /// Base URL that Connect links point at [default: http://<bind>].
    #[arg(long, env = "FINCHGATE_SANDBOX_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Registered applications: client_id:client_secret, comma-separated.
    #[arg(long = "apps", env = "FINCHGATE_SANDBOX_APPS", hide_env_values = true)]
    pub apps: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random master key as id:base64 (needs no database).
    Generate {
        /// Key id [default: k<YYYYMMDD>, today in UTC].
        #[arg(long)]
        id: Option<String>,
    },
    /// Run the key check, then show every key: configured, active, wraps, rows using it.
    Status(KeyringArgs),
    /// Re-wrap every data key that is not under the active key (online, in batches, resumable).
    Rotate(RotateArgs),
    /// Record that no stored secret uses a key any more, so it may leave FINCHGATE_MASTER_KEYS.
    Retire(RetireArgs),
}

/// The database and the configured master keys.
#[derive(Debug, Args)]
pub struct KeyringArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Master keys: id:base64-of-32-bytes, comma-separated.
    #[arg(long, env = "FINCHGATE_MASTER_KEYS", hide_env_values = true)]
    pub master_keys: Option<String>,
    /// Id of the active master key [default: the last listed].
    #[arg(long, env = "FINCHGATE_ACTIVE_KEY_ID")]
    pub active_key_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub keys: KeyringArgs,
    /// Rows per transaction (each is re-wrapped if it is under another key).
    #[arg(
        long,
        env = "FINCHGATE_ROTATE_BATCH_SIZE",
        default_value_t = crate::keys::rotate::DEFAULT_BATCH_SIZE,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub batch_size: u32,
    /// Only count the rows that would be re-wrapped.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop after N committed batches, as a crash would (re-running continues).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batches: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    #[command(flatten)]
    pub keys: KeyringArgs,
    /// The id of the key to retire.
    pub id: String,
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
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Sandbox(args) => sandbox(args).await,
        Command::Operator(OperatorCommand::Create(args)) => {
            crate::onboarding::commands::operator_create(args).await
        }
        Command::Tenant(TenantCommand::Create(args)) => {
            crate::onboarding::commands::tenant_create(args).await
        }
        Command::Tenant(TenantCommand::Invite(args)) => {
            crate::onboarding::commands::tenant_invite(args).await
        }
        Command::Keys(args) => crate::keys::command::run(args).await,
        Command::Dev(DevCommand::SeedLedger(args)) => crate::console::seed::run(args).await,
    }
}

async fn serve(args: ServerArgs) -> Result<(), CliError> {
    let settings = args.raw().validate()?;
    crate::db::check_reachable(&settings.database)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string()))?;
    let applied = crate::db::migrations::run_pending(&settings.database.url).await?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied migrations");
    }
    let pool = crate::db::pool(&settings.database)?;
    crate::db::check_connection(&pool)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string()))?;
    check_keys(&pool, &settings).await?;
    let app = crate::startup::Application::build(settings, pool, Default::default())?;
    tracing::info!(port = app.port(), "finchgate is listening");
    run_until_signal(app).await
}

/// The boot-time key check: refuse to start with keys that do not match the database.
pub async fn check_keys(
    pool: &crate::db::Pool,
    settings: &crate::config::Settings,
) -> Result<(), CliError> {
    let vault = crate::vault::Vault::new(settings.keyring.clone());
    let mut conn = pool
        .get()
        .await
        .map_err(|e| anyhow::anyhow!(crate::db::describe_pool_error(&e)))?;
    crate::db::transaction(&mut conn, crate::db::Scope::System, async |conn| {
        crate::keys::register_and_check(conn, &vault).await
    })
    .await
    .map_err(CliError::from)
}

/// Serves until Ctrl-C or SIGTERM, then stops gracefully.
pub async fn run_until_signal(app: crate::startup::Application) -> Result<(), CliError> {
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.stop(true).await;
    server
        .await
        .map_err(|e| anyhow::anyhow!("server task failed: {e}"))?
        .map_err(|e| anyhow::anyhow!("server failed: {e}"))?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => drop(ctrl_c.await),
        }
    }
    #[cfg(not(unix))]
    drop(ctrl_c.await);
}

async fn migrate(args: DatabaseArgs) -> Result<(), CliError> {
    let database = crate::config::DatabaseSettings::parse(args.database_url.as_deref())?;
    let applied = crate::db::migrations::run_pending(&database.url)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", format!("{e:#}")))?;
    if applied.is_empty() {
        println!("The database is up to date.");
    } else {
        println!(
            "Applied {} migration(s): {}",
            applied.len(),
            applied.join(", ")
        );
    }
    Ok(())
}

async fn sandbox(args: SandboxArgs) -> Result<(), CliError> {
    use crate::sandbox::{SandboxApp, SandboxConfig};
    let bind =
        crate::config::parse_bind("FINCHGATE_SANDBOX_BIND", Some(&args.bind), "127.0.0.1:8090")?;
    let public_url = args
        .public_url
        .as_deref()
        .map(|raw| crate::config::parse_base_url("FINCHGATE_SANDBOX_PUBLIC_URL", raw))
        .transpose()?;
    let apps = match args
        .apps
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(raw) => SandboxApp::parse_list(raw)
            .map_err(|e| ConfigError::new("FINCHGATE_SANDBOX_APPS", e))?,
        None => Vec::new(),
    };
    let listener = std::net::TcpListener::bind(bind).map_err(|e| {
        ConfigError::new(
            "FINCHGATE_SANDBOX_BIND",
            format!("cannot listen on {bind}: {e}"),
        )
    })?;
    crate::sandbox::run(SandboxConfig {
        listener,
        public_url,
        apps,
        code_ttl: std::time::Duration::from_secs(600),
    })
    .await?;
    Ok(())
}
