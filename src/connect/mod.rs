//! The core flows: start a Finch Connect attempt, handle its callback (claim the state, exchange the
//! code, verify, store, write the ledger), and the reaper for attempts a crash left behind.

pub mod callback;
pub mod reaper;
pub mod start;

use uuid::Uuid;

use crate::db::models::credentials;
use crate::error::AppError;
use crate::state::AppState;
use crate::vault::{Purpose, RowContext};

/// How long a Connect session (and so the flow row) lives: the user's time inside Finch Connect.
pub const FLOW_MINUTES: i32 = 30;

/// A tenant's current Finch credentials with the secret opened.
pub struct OpenCredentials {
    pub version: i32,
    pub client_id: String,
    pub client_secret: secrecy::SecretString,
}

/// Why the tenant's credentials cannot be used.
pub enum CredentialsProblem {
    Missing,
    Unreadable,
}

/// Loads and opens the tenant's credentials of `version` (or the current ones).
pub async fn open_credentials(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    tenant_id: Uuid,
) -> Result<Result<OpenCredentials, CredentialsProblem>, AppError> {
    let current = crate::db::transaction(conn, crate::db::Scope::Tenant(tenant_id), async |conn| {
        credentials::current(conn, tenant_id).await
    })
    .await?;
    let Some(row) = current else {
        return Ok(Err(CredentialsProblem::Missing));
    };
    let Some(envelope) = row.secret_envelope.as_deref() else {
        return Ok(Err(CredentialsProblem::Missing));
    };
    match state.vault.open_string(
        &RowContext::new(Purpose::FinchClientSecret, tenant_id, row.id),
        envelope,
    ) {
        Ok(secret) => Ok(Ok(OpenCredentials {
            version: row.version,
            client_id: row.client_id,
            client_secret: secret,
        })),
        Err(error) => {
            tracing::error!(%tenant_id, error = %error, "stored Finch credentials do not open");
            Ok(Err(CredentialsProblem::Unreadable))
        }
    }
}
