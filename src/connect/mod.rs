//! The core flows: start a Finch Connect attempt ([`start`]), handle its callback ([`callback`]:
//! claim the state, exchange the code, verify, store, write the ledger), manage a stored
//! connection ([`connection`]: refresh its status, reconnect, disconnect), the ledger rows they
//! write ([`ledger`]), and the reaper for attempts a crash left behind ([`reaper`]).
//!
//! Flows take plain values (who acts, the browser session's binding) and the application state;
//! they know nothing of HTTP requests, sessions or pages.

pub mod callback;
pub mod connection;
pub mod ledger;
pub mod reaper;
pub mod start;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::credentials::{self, CredentialsError, Opened};
use crate::db::models::credentials as credential_rows;
use crate::db::{Scope, transaction};
use crate::domain::failure::{self, Failure};
use crate::error::AppError;
use crate::state::AppState;

/// How long a Connect session (and so the flow row) lives: the user's time inside Finch Connect.
pub const FLOW_MINUTES: i32 = 30;

/// Who acts in a flow: a tenant admin, in their tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

impl Admin {
    /// The scope of this admin's transactions: their tenant's rows only.
    pub fn scope(self) -> Scope {
        Scope::Tenant(self.tenant_id)
    }
}

/// Which version of a tenant's credentials a flow uses.
#[derive(Debug, Clone, Copy)]
enum Version {
    /// The current one: a flow being started.
    Current,
    /// The one a flow started with: Finch issued its code to that client.
    Of(i32),
}

/// The tenant's Finch credentials of `version`, opened; or why a flow cannot use them.
async fn open_credentials(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    version: Version,
) -> Result<Result<Opened, Failure>, AppError> {
    let current = transaction(conn, Scope::Tenant(tenant_id), async |conn| match version {
        Version::Current => credential_rows::current(conn, tenant_id).await,
        Version::Of(version) => credential_rows::by_version(conn, tenant_id, version).await,
    })
    .await?;
    let Some(row) = current else {
        return Ok(Err(failure::CREDENTIALS_MISSING));
    };
    match credentials::open(&state.vault, row) {
        Ok(opened) => Ok(Ok(opened)),
        Err(CredentialsError::Erased) => Ok(Err(failure::CREDENTIALS_MISSING)),
        Err(error) => {
            tracing::error!(%tenant_id, error = %error, "stored Finch credentials do not open");
            Ok(Err(failure::CREDENTIALS_UNREADABLE))
        }
    }
}
