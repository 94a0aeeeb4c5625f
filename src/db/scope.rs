//! Scoped transactions: every unit of database work declares whose rows it may see.
//!
//! Pool connections run as the `finchgate_app` role, which row-level security confines to the
//! scope set for the current transaction (`set_config(..., true)` lasts until commit/rollback,
//! so nothing leaks to the next user of a pooled connection). See migration 000003.

use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, SimpleAsyncConnection as _, TransactionManager as _,
};
use uuid::Uuid;

/// Whose rows a transaction may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One tenant's rows (a tenant admin's request).
    Tenant(Uuid),
    /// Every tenant's rows except access tokens (the operator console).
    Operator,
    /// Every row (sign-in, sessions, background jobs, CLI).
    System,
}

impl Scope {
    fn settings(self) -> (&'static str, String) {
        match self {
            Self::Tenant(id) => ("tenant", id.to_string()),
            Self::Operator => ("operator", String::new()),
            Self::System => ("system", String::new()),
        }
    }
}

/// Runs `work` in a transaction with `scope` set; commits on `Ok`, rolls back on `Err`.
pub async fn transaction<R, E>(
    conn: &mut AsyncPgConnection,
    scope: Scope,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<R, E>,
) -> Result<R, E>
where
    E: From<diesel::result::Error>,
{
    begin(conn, scope).await?;
    match work(conn).await {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(error) => {
            // The error that matters is the work's; a failed rollback closes the connection anyway.
            drop(AnsiTransactionManager::rollback_transaction(conn).await);
            Err(error)
        }
    }
}

/// Opens a transaction (a savepoint inside another one) with `scope` set.
async fn begin(conn: &mut AsyncPgConnection, scope: Scope) -> diesel::QueryResult<()> {
    let (name, tenant) = scope.settings();
    // Inlining is safe: `name` is one of three constants and `tenant` a UUID's canonical text or
    // empty.
    let set_scope = format!(
        "SELECT set_config('app.scope', '{name}', true), set_config('app.tenant_id', '{tenant}', true)"
    );
    // BEGIN and the scope in one round trip (the simple query protocol takes both statements at
    // once): a request runs several short transactions, and each round trip costs both the
    // server and PostgreSQL CPU (docs/benchmarks.md).
    match AnsiTransactionManager::begin_transaction_sql(conn, &format!("BEGIN; {set_scope}")).await
    {
        Ok(()) => Ok(()),
        Err(diesel::result::Error::AlreadyInTransaction) => {
            AnsiTransactionManager::begin_transaction(conn).await?;
            let set = conn.batch_execute(&set_scope).await;
            if set.is_err() {
                drop(AnsiTransactionManager::rollback_transaction(conn).await);
            }
            set
        }
        // BEGIN may have run without the scope: leave no transaction open on the connection.
        Err(error) => {
            drop(conn.batch_execute("ROLLBACK").await);
            Err(error)
        }
    }
}
