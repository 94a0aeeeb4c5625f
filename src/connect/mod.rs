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
pub mod link;
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

/// Who starts and finishes a Connect flow: a tenant admin (signed in), or the customer holding
/// one of the tenant's connect links (no account: the link cookie binds the browser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub tenant_id: Uuid,
    /// The admin, when an admin acts.
    pub user_id: Option<Uuid>,
    /// The connect link, when a link's customer acts.
    pub link_id: Option<Uuid>,
}

impl Actor {
    /// The customer of connect link `link_id` of tenant `tenant_id`.
    pub fn link(tenant_id: Uuid, link_id: Uuid) -> Self {
        Self {
            tenant_id,
            user_id: None,
            link_id: Some(link_id),
        }
    }

    /// The scope of the actor's transactions: their tenant's rows only.
    pub fn scope(self) -> Scope {
        Scope::Tenant(self.tenant_id)
    }

    /// Whom rate limits and refusal counters are kept for: the admin, or the link.
    fn key(self) -> String {
        match (self.user_id, self.link_id) {
            (Some(user_id), _) => user_id.to_string(),
            (None, Some(link_id)) => format!("link:{link_id}"),
            (None, None) => format!("tenant:{}", self.tenant_id),
        }
    }

    /// The audit trail's actor kind.
    fn audit_kind(self) -> &'static str {
        if self.user_id.is_some() {
            "tenant_admin"
        } else {
            "anonymous"
        }
    }
}

impl From<Admin> for Actor {
    fn from(admin: Admin) -> Self {
        Self {
            tenant_id: admin.tenant_id,
            user_id: Some(admin.user_id),
            link_id: None,
        }
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
