//! `finchgate serve`, `migrate` and `sandbox`: the long-running commands, the boot-time key check
//! and graceful shutdown.

use super::args::{DatabaseArgs, SandboxArgs, ServerArgs};
use super::{CliError, LOG_TARGET};
use crate::config::ConfigError;

pub(super) async fn serve(args: ServerArgs) -> Result<(), CliError> {
    let settings = args.raw().validate()?;
    crate::db::check_reachable(&settings.database)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string()))?;
    let applied = crate::db::migrations::run_pending(&settings.database.url).await?;
    if !applied.is_empty() {
        tracing::info!(target: LOG_TARGET, count = applied.len(), "applied migrations");
    }
    let pool = crate::db::pool(&settings.database)?;
    crate::db::check_connection(&pool)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string()))?;
    check_keys(&pool, &settings).await?;
    let app = crate::startup::Application::build(settings, pool, Default::default())?;
    tracing::info!(target: LOG_TARGET, port = app.port(), "finchgate is listening");
    run_until_signal(app).await
}

/// The boot-time key check: refuse to start with keys that do not match the database.
pub(super) async fn check_keys(
    pool: &crate::db::Pool,
    settings: &crate::config::Settings,
) -> Result<(), CliError> {
    let vault = crate::vault::Vault::new(settings.keyring.clone());
    let mut conn = pool.get().await?;
    crate::db::transaction(&mut conn, crate::db::Scope::System, async |conn| {
        crate::keys::register_and_check(conn, &vault).await
    })
    .await
    .map_err(CliError::from)
}

/// Serves until Ctrl-C or SIGTERM, then stops gracefully.
pub(super) async fn run_until_signal(app: crate::startup::Application) -> Result<(), CliError> {
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    shutdown_signal().await;
    tracing::info!(target: LOG_TARGET, "shutting down");
    handle.stop(true).await;
    server
        .await
        .map_err(|e| anyhow::anyhow!("server task failed: {e}"))?
        .map_err(|e| anyhow::anyhow!("server failed: {e}"))?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub(super) async fn shutdown_signal() {
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

pub(super) async fn migrate(args: DatabaseArgs) -> Result<(), CliError> {
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

pub(super) async fn sandbox(args: SandboxArgs) -> Result<(), CliError> {
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
