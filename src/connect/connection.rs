//! Managing a stored connection: find it, refresh its status from Finch (`/introspect`), build the
//! request that reconnects it (Finch's reauthentication session), and disconnect it (`/disconnect`,
//! then the token is deleted and the connection marked disconnected).
//!
//! The access token is opened only here, just before it is sent to Finch, and never leaves.

use secrecy::SecretString;
use uuid::Uuid;

use super::Admin;
use super::start::{FlowKind, StartRequest};
use crate::db::models::connections::{self, Connection};
use crate::db::models::{audit, tokens};
use crate::error::AppError;
use crate::finch::client::FinchError;
use crate::finch::wire::{ConnectionStatusType, Product};
use crate::state::AppState;
use crate::vault::{Purpose, RowContext};

/// Who acts on a connection: an admin in the console, or a tenant's backend with an API key.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Admin(Admin),
    ApiKey { tenant_id: Uuid, key_id: Uuid },
}

impl From<Admin> for Actor {
    fn from(admin: Admin) -> Self {
        Self::Admin(admin)
    }
}

impl Actor {
    fn tenant_id(self) -> Uuid {
        match self {
            Self::Admin(admin) => admin.tenant_id,
            Self::ApiKey { tenant_id, .. } => tenant_id,
        }
    }

    fn scope(self) -> crate::db::Scope {
        crate::db::Scope::Tenant(self.tenant_id())
    }

    /// An audit event by this actor about its tenant.
    fn event(self, action: &str) -> audit::Event<'_> {
        match self {
            Self::Admin(admin) => audit::Event::new("tenant_admin", Some(admin.user_id), action),
            Self::ApiKey { key_id, .. } => audit::Event::new("api_key", None, action)
                .details(serde_json::json!({ "api_key_id": key_id })),
        }
        .tenant(self.tenant_id())
    }
}

/// The connection `id` of `admin`'s tenant (another tenant's is not found).
pub async fn find(state: &AppState, admin: Admin, id: Uuid) -> Result<Connection, AppError> {
    let tenant_id = admin.tenant_id;
    crate::db::run(&state.db, admin.scope(), async |conn| {
        connections::find(conn, tenant_id, id).await
    })
    .await?
    .ok_or(AppError::NotFound)
}

/// The connection's token, opened (bound to tenant and connection); `None` when none is stored.
/// A token that fails its integrity check is never used: operators are alerted and the admin is
/// told to reconnect.
async fn open_token(
    state: &AppState,
    actor: impl Into<Actor>,
    connection_id: Uuid,
) -> Result<Option<SecretString>, AppError> {
    let actor = actor.into();
    let tenant_id = actor.tenant_id();
    let row = crate::db::run(&state.db, actor.scope(), async |conn| {
        tokens::find(conn, tenant_id, connection_id).await
    })
    .await?;
    let Some(row) = row else { return Ok(None) };
    let opened = state.vault.open_string(
        &RowContext::new(Purpose::AccessToken, tenant_id, connection_id),
        &row.envelope,
    );
    let error = match opened {
        Ok(token) => return Ok(Some(token)),
        Err(error) => error,
    };
    // Altered, truncated or copied from another row: never used, and operators told.
    tracing::error!(
        alert = "token_integrity",
        %tenant_id,
        %connection_id,
        error = %error,
        "a stored access token failed its integrity check"
    );
    let mut details = serde_json::json!({ "error": error.to_string() });
    if let Actor::ApiKey { key_id, .. } = actor {
        details["api_key_id"] = serde_json::json!(key_id);
    }
    crate::db::run(&state.db, actor.scope(), async |conn| {
        audit::record(
            conn,
            actor
                .event("connection.token_integrity_failed")
                .target("connection", connection_id)
                .details(details),
        )
        .await
    })
    .await?;
    Err(AppError::Conflict(
        "The stored access token of this connection failed its integrity check (it was \
         altered or moved), so it was not used. Reconnect to replace it; your operator \
         has been alerted."
            .into(),
    ))
}

/// finchgate's status for a connection status Finch reports.
fn status_of(status: ConnectionStatusType) -> &'static str {
    match status {
        ConnectionStatusType::Connected => "active",
        ConnectionStatusType::Reauth => "reauth_required",
        ConnectionStatusType::Pending => "pending",
        ConnectionStatusType::Processing => "processing",
        _ => "error",
    }
}

/// What refreshing a connection's status found.
pub enum Refreshed {
    /// Finch reports this status (now stored).
    Status(&'static str),
    /// No token is stored: only reconnecting helps.
    NoToken,
    /// Finch no longer accepts the token: marked `reauth_required`.
    Revoked,
    /// Finch could not answer; nothing changed.
    Failed(FinchError),
}

/// Asks Finch for the connection's status (`/introspect`) and stores it.
pub async fn refresh_status(
    state: &AppState,
    admin: Admin,
    connection: &Connection,
) -> Result<Refreshed, AppError> {
    let Some(token) = open_token(state, admin, connection.id).await? else {
        return Ok(Refreshed::NoToken);
    };
    let (status, message, refreshed) = match state.finch.introspect(&token).await {
        Ok(answer) => {
            let status = status_of(answer.value.connection_status.status);
            let message = answer.value.connection_status.message;
            (status, message, Refreshed::Status(status))
        }
        Err(FinchError::Api { status: 401, .. }) => (
            "reauth_required",
            Some("Finch no longer accepts the token".to_owned()),
            Refreshed::Revoked,
        ),
        Err(error) => return Ok(Refreshed::Failed(error)),
    };
    let (tenant_id, now) = (admin.tenant_id, state.clock.now());
    crate::db::run(&state.db, admin.scope(), async |conn| {
        connections::set_status(
            conn,
            tenant_id,
            connection.id,
            status,
            message.as_deref(),
            now,
        )
        .await
    })
    .await?;
    Ok(refreshed)
}

/// The request that reconnects `connection` (Finch's reauthentication session) with its own
/// products and customer; a connection that recorded none gets the tenant's own identity.
pub fn reconnect_request(
    connection: &Connection,
    flow: FlowKind,
    tenant_slug: &str,
    tenant_name: &str,
) -> StartRequest {
    let products: Vec<Product> = connection
        .products
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    StartRequest {
        products: if products.is_empty() {
            vec![Product::Company]
        } else {
            products
        },
        flow,
        customer_id: connection
            .customer_id
            .clone()
            .unwrap_or_else(|| tenant_slug.to_owned()),
        customer_name: connection
            .customer_name
            .clone()
            .unwrap_or_else(|| tenant_name.to_owned()),
        sandbox: None,
        reauth: Some((connection.id, connection.finch_connection_id.clone())),
    }
}

/// Disconnects at Finch, then deletes the token and marks the connection disconnected (audited).
/// If Finch may still have the connection, nothing is changed here: `Err` carries Finch's error
/// so the admin (or the API client) can retry.
pub async fn disconnect(
    state: &AppState,
    actor: impl Into<Actor>,
    connection: &Connection,
) -> Result<Result<(), FinchError>, AppError> {
    let actor = actor.into();
    if let Some(token) = open_token(state, actor, connection.id).await? {
        match state.finch.disconnect(&token).await {
            Ok(_) => {}
            // Finch no longer knows the token (an earlier disconnect went through but its answer
            // was lost, or it was revoked): there is nothing left to disconnect at Finch.
            Err(FinchError::Api { status: 401, .. }) => {}
            Err(error) => return Ok(Err(error)),
        }
    }
    let (tenant_id, now) = (actor.tenant_id(), state.clock.now());
    crate::db::run(&state.db, actor.scope(), async |conn| {
        tokens::delete(conn, tenant_id, connection.id).await?;
        connections::set_status(conn, tenant_id, connection.id, "disconnected", None, now).await?;
        audit::record(
            conn,
            actor
                .event("connection.disconnected")
                .target("connection", connection.id),
        )
        .await
    })
    .await?;
    Ok(Ok(()))
}
