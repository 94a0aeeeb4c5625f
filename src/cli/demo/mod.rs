//! `finchgate demo`: everything on one machine with only PostgreSQL running.
//!
//! Creates the database if missing, migrates, keeps development keys and demo logins in a local
//! file (created once, reused after), seeds an operator and two tenants (each with an admin, its
//! own sandbox app credentials, a whitelisted redirect URI and an API key with every scope), starts the Finch sandbox emulator
//! in-process and the server, and prints the URL and the logins. Running it again reuses all of it.

mod dev_file;
mod seed;

use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;

use base64::Engine as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use secrecy::{ExposeSecret as _, SecretBox, SecretString};

use self::dev_file::{DevFile, WARNING};
use super::CliError;
use super::args::DemoArgs;
use super::serve::{check_keys, run_until_signal};
use crate::config::{ConfigError, DatabaseSettings, FinchSettings, Settings};
use crate::sandbox::{Sandbox, SandboxApp, SandboxConfig};
use crate::vault::Vault;

/// The database `finchgate demo` uses unless told otherwise (created if missing).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/finchgate";

/// Sets everything up, prints the banner, and serves until Ctrl-C or SIGTERM.
pub(super) async fn run(args: DemoArgs) -> Result<(), CliError> {
    let database = DatabaseSettings::parse(Some(&args.database_url))?;
    let bind = crate::config::parse_bind(
        "FINCHGATE_BIND",
        Some(&args.bind),
        crate::config::DEFAULT_BIND,
    )?;
    let metrics_bind = crate::config::parse_bind(
        "FINCHGATE_METRICS_BIND",
        Some(&args.metrics_bind),
        crate::config::DEFAULT_DEMO_METRICS_BIND,
    )?;
    crate::config::check_metrics_bind(metrics_bind, bind)?;
    let sandbox_bind = crate::config::parse_bind(
        "FINCHGATE_SANDBOX_BIND",
        Some(&args.sandbox_bind),
        "127.0.0.1:8090",
    )?;

    create_database_if_missing(&database).await?;
    crate::db::migrations::run_pending(&database.url)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", format!("{e:#}")))?;

    let dev = dev_file::load_or_create(&args.dev_file)?;
    // The target `demo` had before it moved under `cli`, for log filters written for it.
    tracing::warn!(target: "finchgate::demo", file = %args.dev_file.display(), "{WARNING}");

    let sandbox_listener = TcpListener::bind(sandbox_bind).map_err(|e| {
        ConfigError::new(
            "FINCHGATE_SANDBOX_BIND",
            format!("cannot listen on {sandbox_bind}: {e}"),
        )
    })?;
    let app_listener = TcpListener::bind(bind)
        .map_err(|e| ConfigError::new("FINCHGATE_BIND", format!("cannot listen on {bind}: {e}")))?;
    let app_addr = app_listener.local_addr().map_err(anyhow::Error::from)?;
    let sandbox_addr = sandbox_listener.local_addr().map_err(anyhow::Error::from)?;
    let sandbox_url =
        url::Url::parse(&format!("http://{sandbox_addr}")).map_err(anyhow::Error::from)?;
    let public_url = url::Url::parse(&format!("http://{app_addr}")).map_err(anyhow::Error::from)?;

    let settings = Settings {
        database,
        bind: app_addr,
        metrics_bind: Some(metrics_bind),
        public_url: public_url.clone(),
        keyring: crate::config::parse_keyring(Some(&dev.master_keys), None)?,
        session_secret: SecretBox::new(Box::new(
            base64::engine::general_purpose::STANDARD
                .decode(&dev.session_secret)
                .map_err(|_| {
                    ConfigError::new("FINCHGATE_DEV_FILE", "session_secret is not base64")
                })?,
        )),
        finch: FinchSettings::new(sandbox_url.clone(), sandbox_url.clone()),
        limits: Default::default(),
        retention: Default::default(),
    };

    let apps = dev
        .tenants
        .iter()
        .map(|t| SandboxApp {
            client_id: t.finch_client_id.clone(),
            client_secret: SecretString::from(t.finch_client_secret.clone()),
        })
        .collect();
    let sandbox = Sandbox::start(SandboxConfig {
        listener: sandbox_listener,
        public_url: None,
        apps,
        code_ttl: std::time::Duration::from_secs(600),
    })
    .await?;

    let pool = crate::db::pool(&settings.database)?;
    check_keys(&pool, &settings).await?;
    let vault = Vault::new(settings.keyring.clone());
    seed::seed(&pool, &vault, &dev, &public_url).await?;

    let app = crate::startup::Application::build_with_listener(
        settings,
        app_listener,
        pool,
        Default::default(),
    )?;
    let metrics_url = app.metrics_port().map(|port| {
        format!(
            "http://{}/metrics",
            std::net::SocketAddr::new(metrics_bind.ip(), port)
        )
    });
    print_banner(
        &public_url,
        &sandbox_url,
        metrics_url.as_deref(),
        &dev,
        &args.dev_file,
    );
    let result = run_until_signal(app).await;
    sandbox.stop().await;
    result
}

fn print_banner(
    public_url: &url::Url,
    sandbox_url: &url::Url,
    metrics_url: Option<&str>,
    dev: &DevFile,
    file: &Path,
) {
    let base = public_url.as_str().trim_end_matches('/');
    println!();
    println!("finchgate demo is running: {base}/login");
    println!(
        "Finch sandbox emulator:     {}",
        sandbox_url.as_str().trim_end_matches('/')
    );
    if let Some(metrics_url) = metrics_url {
        println!("Metrics (Prometheus):       {metrics_url}");
    }
    println!();
    println!(
        "  operator        {}  /  {}",
        dev.operator.email, dev.operator.password
    );
    for tenant in &dev.tenants {
        println!(
            "  admin of {:<6} {}  /  {}",
            tenant.slug, tenant.admin.email, tenant.admin.password
        );
    }
    println!();
    for tenant in &dev.tenants {
        println!("  API key of {:<6} {}", tenant.slug, tenant.api_key);
    }
    if let Some(first) = dev.tenants[..].first() {
        println!();
        println!(
            "  curl -H 'Authorization: Bearer {}' {base}/api/v1/connections",
            first.api_key
        );
    }
    println!();
    println!(
        "Development keys and these logins are kept in {} — for development only.",
        file.display()
    );
    println!("Press Ctrl-C to stop.");
    drop(std::io::stdout().flush());
}

/// Connects to the server's `postgres` database and creates ours if it does not exist.
async fn create_database_if_missing(database: &DatabaseSettings) -> Result<(), CliError> {
    let name = database
        .database_name()
        .ok_or_else(|| ConfigError::new("DATABASE_URL", "the URL names no database"))?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ConfigError::new(
            "DATABASE_URL",
            "the demo creates only databases named with letters, digits and _",
        )
        .into());
    }
    if AsyncPgConnection::establish(database.url.expose_secret())
        .await
        .is_ok()
    {
        return Ok(());
    }
    let maintenance = database.with_database("postgres");
    let mut conn = AsyncPgConnection::establish(maintenance.expose_secret())
        .await
        .map_err(|e| {
            ConfigError::new(
                "DATABASE_URL",
                format!("cannot connect to the PostgreSQL server: {e}"),
            )
        })?;
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let exists: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)
            .await
            .map_err(anyhow::Error::from)?;
    if !exists.exists {
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(|e| {
                ConfigError::new(
                    "DATABASE_URL",
                    format!("cannot create database {name}: {e}"),
                )
            })?;
        println!("Created database {name}.");
    }
    Ok(())
}
