//! A tenant's Finch application credentials: the input rules ([`input`]), sealed storage and
//! opening (here), and the "Test credentials" check against Finch ([`check`]).
//!
//! The client secret is write-only (SECURITY.md AC-4): it is sealed through the vault, bound to
//! its own `finch_credentials` row, and only its last four characters are kept in the clear for
//! display. Saving a new secret stores a new version and erases the previous envelope
//! ([`credentials::replace`]).
//!
//! Sits between the routes and the database: it validates input, seals through the vault and
//! calls the query functions in [`crate::db::models`]; it renders nothing. [`store`] runs in the
//! caller's transaction; [`save::save`] (the settings form) and [`check::run`] ("Test
//! credentials") are whole flows with transactions of their own.

pub mod check;
pub mod input;
pub mod save;

use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::db::models::credentials::{self, Credentials, NewCredentials};
use crate::db::models::keyring;
use crate::vault::{Purpose, RowContext, Vault, VaultError};

pub use check::{TestOutcome, TestRequest, test};
pub use input::{Change, InputError, last_four, parse_client_id, parse_client_secret, plan};

/// Storing or opening credentials failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("sealing or opening the client secret failed: {0}")]
    Vault(#[from] VaultError),
    #[error("this credentials version has no secret any more (it was replaced)")]
    Erased,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Seals `secret` for a new credentials row of `tenant_id`, stores it as the new current
/// version (erasing the previous envelope) and counts the key wrap. Returns the new version.
/// Call inside a transaction whose scope covers the tenant.
pub async fn store(
    conn: &mut diesel_async::AsyncPgConnection,
    vault: &Vault,
    tenant_id: Uuid,
    client_id: &str,
    secret: &SecretString,
    created_by: Option<Uuid>,
) -> Result<i32, CredentialsError> {
    let row_id = Uuid::new_v4();
    let sealed = vault.seal(
        &row_context(tenant_id, row_id),
        secret.expose_secret().as_bytes(),
    )?;
    let version = credentials::replace(
        conn,
        &NewCredentials {
            id: row_id,
            tenant_id,
            client_id,
            secret_kek_id: sealed.kek_id.as_str(),
            secret_envelope: &sealed.envelope,
            secret_last4: &last_four(secret),
            created_by,
        },
    )
    .await?;
    keyring::count_wrap(conn, sealed.kek_id.as_str()).await?;
    Ok(version)
}

/// A credentials version with its client secret opened.
pub struct Opened {
    pub version: i32,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Opens the client secret of a credentials row.
pub fn open_secret(vault: &Vault, row: &Credentials) -> Result<SecretString, CredentialsError> {
    let envelope = row
        .secret_envelope
        .as_deref()
        .ok_or(CredentialsError::Erased)?;
    Ok(vault.open_string(&row_context(row.tenant_id, row.id), envelope)?)
}

/// Opens a credentials row: its version and client id with the secret.
pub fn open(vault: &Vault, row: Credentials) -> Result<Opened, CredentialsError> {
    Ok(Opened {
        client_secret: open_secret(vault, &row)?,
        version: row.version,
        client_id: row.client_id,
    })
}

/// The AAD identity of a client secret: its own credentials row, so an envelope copied to
/// another row (or tenant) does not open.
pub fn row_context(tenant_id: Uuid, row_id: Uuid) -> RowContext {
    RowContext::new(Purpose::FinchClientSecret, tenant_id, row_id)
}
