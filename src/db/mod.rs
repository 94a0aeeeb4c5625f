//! The database: the connection pool, the generated schema, embedded migrations and per-table queries.
//!
//! Connections use diesel-async over tokio-postgres (no libpq at run time). Routes never build SQL:
//! they call the query functions in [`models`], which take the tenant id for tenant-owned tables.

pub mod migrations;
pub mod models;
pub mod schema;
pub mod scope;

pub use scope::{Scope, transaction};

/// diesel's query-building traits without its synchronous `RunQueryDsl` (we use diesel-async's).
pub mod prelude {
    pub use diesel::{
        AsChangeset, BoolExpressionMethods, ExpressionMethods, Identifiable, Insertable, JoinOnDsl,
        NullableExpressionMethods, OptionalExtension, QueryDsl, QueryResult, Queryable, Selectable,
        SelectableHelper,
    };
}

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

/// The application's connection pool.
pub type Pool = DeadPool<AsyncPgConnection>;
/// A connection checked out of the pool.
pub type PooledConnection = Object<AsyncPgConnection>;
/// Why a connection could not be checked out.
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

/// How long a request waits for a pooled connection (or for a new one to open) before giving up.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the pool. Connections open lazily, so this succeeds even while the database is down:
/// `/readyz` reports that, and start-up checks it explicitly with [`check_connection`].
pub fn pool(settings: &DatabaseSettings) -> anyhow::Result<Pool> {
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(|url| Box::pin(establish_as_app_role(url.to_owned())));
    // No test query on every checkout (the default, `Verified`, sent `SELECT 1` each time: one
    // round trip per transaction, measured in docs/benchmarks.md). A connection the server closed
    // (a restart, a failover, a killed backend) is still refused at checkout, because `Fast`
    // checks that it is open and not inside a broken transaction.
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        settings.url.expose_secret(),
        config,
    );
    let pool = DeadPool::builder(manager)
        .max_size(settings.max_connections)
        .wait_timeout(Some(ACQUIRE_TIMEOUT))
        .create_timeout(Some(ACQUIRE_TIMEOUT))
        .recycle_timeout(Some(ACQUIRE_TIMEOUT))
        .runtime(deadpool_runtime())
        .build()?;
    Ok(pool)
}

/// The role pool connections switch to: no superuser, no BYPASSRLS, so row-level security holds.
pub const APP_ROLE: &str = "finchgate_app";

/// Opens a connection and drops its privileges to [`APP_ROLE`].
async fn establish_as_app_role(url: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    use diesel_async::{AsyncConnection as _, SimpleAsyncConnection as _};
    let mut conn = AsyncPgConnection::establish(&url).await?;
    conn.batch_execute(&format!("SET ROLE {APP_ROLE}"))
        .await
        .map_err(|e| {
            diesel::ConnectionError::BadConnection(format!("cannot switch to role {APP_ROLE}: {e}"))
        })?;
    Ok(conn)
}

/// Pool timeouts need a timer; deadpool gets tokio's.
fn deadpool_runtime() -> deadpool::Runtime {
    deadpool::Runtime::Tokio1
}

/// Errors while talking to the database, worded for a person reading a log line or `/readyz`.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl From<PoolError> for DbError {
    fn from(error: PoolError) -> Self {
        Self::Unavailable(describe_pool_error(&error))
    }
}

/// Checks out a connection and runs `work` in one transaction with `scope` set: the unit of
/// database work of a request that needs a single transaction. Work that needs several on one
/// connection checks out once and calls [`transaction`] for each.
pub async fn run<R>(
    pool: &Pool,
    scope: Scope,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> diesel::QueryResult<R>,
) -> Result<R, DbError> {
    let mut conn = pool.get().await?;
    Ok(transaction(&mut conn, scope, work).await?)
}

/// A pool error in one line, without the connection string.
pub fn describe_pool_error(error: &PoolError) -> String {
    match error {
        PoolError::Timeout(_) => "timed out waiting for a database connection".to_owned(),
        PoolError::Backend(e) => e.to_string(),
        PoolError::Closed => "the connection pool is closed".to_owned(),
        PoolError::NoRuntimeSpecified => "no async runtime configured for the pool".to_owned(),
        PoolError::PostCreateHook(e) => e.to_string(),
    }
}

/// Opens one plain connection (no pool, no role switch): is the server there and does it let us in?
pub async fn check_reachable(settings: &DatabaseSettings) -> Result<(), DbError> {
    use diesel_async::AsyncConnection as _;
    AsyncPgConnection::establish(settings.url.expose_secret())
        .await
        .map(drop)
        .map_err(|e| DbError::Unavailable(e.to_string()))
}

/// Checks out a connection and runs `SELECT 1`.
pub async fn check_connection(pool: &Pool) -> Result<(), DbError> {
    use diesel_async::RunQueryDsl as _;
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}
