//! The suite's own databases: created fresh and migrated, dropped at the end (also on failure).

use anyhow::Context as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use secrecy::SecretString;
use url::Url;

/// The PostgreSQL server to use (any database on it: the suite creates its own).
pub fn server_url() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn url_for(database: &str) -> anyhow::Result<String> {
    let mut url = Url::parse(&server_url()).context("BENCH_DATABASE_URL is not a URL")?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

async fn maintenance() -> anyhow::Result<AsyncPgConnection> {
    AsyncPgConnection::establish(&url_for("postgres")?)
        .await
        .context("cannot reach PostgreSQL (set BENCH_DATABASE_URL; see README)")
}

/// A migrated database of the suite's own.
pub struct BenchDb {
    pub name: String,
    pub url: String,
    dropped: bool,
}

impl BenchDb {
    pub async fn create(label: &str) -> anyhow::Result<Self> {
        let name = format!(
            "finchgate_bench_{label}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut conn = maintenance().await?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("create database {name}"))?;
        let db = Self {
            url: url_for(&name)?,
            name,
            dropped: false,
        };
        finchgate::db::migrations::run_pending(&SecretString::from(db.url.clone()))
            .await
            .context("migrate the benchmark database")?;
        Ok(db)
    }

    pub fn secret_url(&self) -> SecretString {
        SecretString::from(self.url.clone())
    }

    /// A plain (superuser) connection, for seeding in bulk.
    pub async fn connect(&self) -> anyhow::Result<AsyncPgConnection> {
        Ok(AsyncPgConnection::establish(&self.url).await?)
    }

    /// Transactions committed in this database and WAL flushes in the cluster so far
    /// (`pg_stat_database.xact_commit`, `pg_stat_wal.wal_sync`), after letting PostgreSQL publish
    /// its backends' counters (they report at most once a second).
    pub async fn work_done(&self) -> anyhow::Result<DbWork> {
        tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
        let mut conn = self.connect().await?;
        diesel::sql_query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut conn)
            .await?;
        Ok(diesel::sql_query(
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) \
                        AS commits, \
                    (SELECT wal_sync FROM pg_stat_wal) AS wal_syncs",
        )
        .get_result(&mut conn)
        .await?)
    }

    pub async fn drop_now(mut self) {
        drop_database(&self.name).await;
        self.dropped = true;
    }
}

/// Counters of [`BenchDb::work_done`].
#[derive(Debug, Clone, Copy, diesel::QueryableByName)]
pub struct DbWork {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub commits: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub wal_syncs: i64,
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let name = self.name.clone();
        // Drop may run inside the runtime: use a thread with a runtime of its own.
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(drop_database(&name)))
        })
        .join();
        drop(done);
    }
}

async fn drop_database(name: &str) {
    if let Ok(mut conn) = maintenance().await {
        let dropped = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        if let Err(e) = dropped {
            eprintln!("could not drop database {name}: {e}");
        }
    }
}
