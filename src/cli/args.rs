//! The arguments of each subcommand. Configuration values are kept as strings here, for
//! [`crate::config`] to validate.

use clap::{Args, Subcommand};

use crate::config::RawServerSettings;

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
pub enum ApiKeyCommand {
    /// Create an API key for a tenant: prints the key once on standard output.
    Create(ApiKeyCreateArgs),
    /// List a tenant's API keys (never the keys themselves).
    List(ApiKeyListArgs),
    /// Revoke one of a tenant's API keys.
    Revoke(ApiKeyRevokeArgs),
}

#[derive(Debug, Args)]
pub struct ApiKeyCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Slug of the tenant.
    #[arg(long)]
    pub tenant: String,
    /// A name saying what uses the key, e.g. "billing backend".
    #[arg(long)]
    pub name: String,
    /// A scope (repeat, or separate with spaces): connections:read, connections:write,
    /// links:write, finch:proxy, finch:jobs, finch:forward.
    #[arg(long = "scope", required = true, num_args = 1..)]
    pub scopes: Vec<String>,
    /// Days until the key expires [default: never].
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ApiKeyListArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Slug of the tenant.
    #[arg(long)]
    pub tenant: String,
}

#[derive(Debug, Args)]
pub struct ApiKeyRevokeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Slug of the tenant.
    #[arg(long)]
    pub tenant: String,
    /// The key's id (from `api-key list`).
    #[arg(long)]
    pub id: String,
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

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Issue a one-time password reset link for a user (valid 24 hours); ends their sessions.
    Reset(UserResetArgs),
    /// Remove a user's two-factor sign-in (they enrol again at their next sign-in if required).
    ClearTwoFactor(UserEmailArgs),
}

#[derive(Debug, Args)]
pub struct UserResetArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Email address of the user.
    #[arg(long)]
    pub email: String,
    /// The URL browsers use to reach finchgate; the link is built on it.
    #[arg(long, env = "FINCHGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserEmailArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Email address of the user.
    #[arg(long)]
    pub email: String,
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
    /// Address to serve GET /metrics on, apart from the public listener [default: not served].
    #[arg(long, env = "FINCHGATE_METRICS_BIND")]
    pub metrics_bind: Option<String>,
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
    /// Unfinished Connect flows one admin may have open [default: 10].
    #[arg(long, env = "FINCHGATE_PENDING_FLOWS_PER_ADMIN")]
    pub pending_flows_per_admin: Option<String>,
    /// Unfinished Connect flows one tenant may have open [default: 100].
    #[arg(long, env = "FINCHGATE_PENDING_FLOWS_PER_TENANT")]
    pub pending_flows_per_tenant: Option<String>,
    /// Days audit events are kept [default: 400].
    #[arg(long, env = "FINCHGATE_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<String>,
    /// Days finished Connect flows are kept (their ledger rows stay) [default: 90].
    #[arg(long, env = "FINCHGATE_FLOW_RETENTION_DAYS")]
    pub flow_retention_days: Option<String>,
    /// Requests one API key may send per minute, across all instances [default: 600].
    #[arg(long, env = "FINCHGATE_API_RATE_PER_MINUTE")]
    pub api_rate_per_minute: Option<String>,
}

impl ServerArgs {
    pub(super) fn raw(&self) -> RawServerSettings {
        RawServerSettings {
            database_url: self.database.database_url.clone(),
            bind: self.bind.clone(),
            metrics_bind: self.metrics_bind.clone(),
            public_url: self.public_url.clone(),
            master_keys: self.master_keys.clone(),
            active_key_id: self.active_key_id.clone(),
            session_secret: self.session_secret.clone(),
            finch_api_url: self.finch_api_url.clone(),
            finch_connect_url: self.finch_connect_url.clone(),
            pending_flows_per_admin: self.pending_flows_per_admin.clone(),
            pending_flows_per_tenant: self.pending_flows_per_tenant.clone(),
            audit_retention_days: self.audit_retention_days.clone(),
            flow_retention_days: self.flow_retention_days.clone(),
            api_rate_per_minute: self.api_rate_per_minute.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// PostgreSQL connection URL; the database is created if missing.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = super::demo::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Address of the finchgate server.
    #[arg(long, env = "FINCHGATE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Address to serve GET /metrics on (not on the public address).
    #[arg(long, env = "FINCHGATE_METRICS_BIND", default_value = crate::config::DEFAULT_DEMO_METRICS_BIND)]
    pub metrics_bind: String,
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
