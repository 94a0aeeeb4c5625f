//! Embedded migrations and the one function that runs them (`serve`, `demo`, `migrate`, tests).

use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};
use secrecy::{ExposeSecret as _, SecretString};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

type SyncPg = AsyncConnectionWrapper<AsyncPgConnection>;

/// Every migration version compiled into this binary, oldest first.
pub fn embedded_versions() -> anyhow::Result<Vec<String>> {
    let migrations = diesel::migration::MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("cannot read the embedded migrations: {e}"))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// Runs every pending migration and returns the versions applied.
///
/// diesel's migration harness is synchronous, so it runs on the blocking pool over an
/// [`AsyncConnectionWrapper`] of its own connection.
pub async fn run_pending(database_url: &SecretString) -> anyhow::Result<Vec<String>> {
    let url = database_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = establish(&url)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await?
}

/// Reverts every applied migration (newest first). Used by the migration tests.
pub async fn revert_all(database_url: &SecretString) -> anyhow::Result<Vec<String>> {
    let url = database_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = establish(&url)?;
        let reverted = conn
            .revert_all_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("reverting migrations failed: {e}"))?;
        Ok(reverted.iter().map(ToString::to_string).collect())
    })
    .await?
}

/// Versions embedded in this binary but not applied to the database.
pub async fn pending_versions(database_url: &SecretString) -> anyhow::Result<Vec<String>> {
    let url = database_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = establish(&url)?;
        let pending = conn
            .pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("cannot read the applied migrations: {e}"))?;
        Ok(pending
            .iter()
            .map(|m| m.name().version().to_string())
            .collect())
    })
    .await?
}

/// Versions embedded in this binary that the database of `conn` has not applied, oldest first:
/// empty for a fully migrated finchgate database. Fails on a database with no migrations table.
pub async fn missing_versions(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<String>, diesel::result::Error> {
    use diesel_async::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let applied: Vec<Applied> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load(conn)
        .await?;
    // Reading embedded migrations cannot fail in practice (they are a static list).
    let embedded =
        embedded_versions().map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
    Ok(embedded
        .into_iter()
        .filter(|v| !applied.iter().any(|a| &a.version == v))
        .collect())
}

fn establish(url: &SecretString) -> anyhow::Result<SyncPg> {
    use diesel::Connection as _;
    SyncPg::establish(url.expose_secret())
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))
}
