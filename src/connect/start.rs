//! Starting a Connect attempt: a flow row with a fresh state, then a Finch Connect session.

use actix_session::Session;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{CredentialsProblem, FLOW_MINUTES, open_credentials};
use crate::db::models::{attempts, flows, redirect_uris};
use crate::db::transaction;
use crate::domain::failure::{self, Failure};
use crate::error::AppError;
use crate::finch::client::{AppCredentials, FinchError};
use crate::finch::wire::{
    CreateConnectSessionRequest, Product, ReauthenticateSessionRequest, SandboxMode,
};
use crate::primitives::sha256;
use crate::state::AppState;
use crate::web::{SessionData, TenantAdmin};

/// Which Connect flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// Finch redirects the browser to one of the tenant's whitelisted URIs (chosen by id).
    Redirect { redirect_uri_id: Uuid },
    /// Connect opens in an iframe on finchgate's page and hands the code to it.
    Embedded,
}

/// What the tenant admin asked for.
pub struct StartRequest {
    pub products: Vec<Product>,
    pub flow: FlowKind,
    pub customer_id: String,
    pub customer_name: String,
    pub sandbox: Option<SandboxMode>,
    /// Reconnect this connection (Finch connection id) instead of creating a new one.
    pub reauth: Option<(Uuid, String)>,
}

/// Where the browser goes next.
pub enum Started {
    /// 303 to Finch Connect.
    Redirect { location: String },
    /// Render the embedded-flow page.
    Embedded {
        flow_id: Uuid,
        session_id: String,
        state: String,
    },
    /// The attempt failed before Connect opened; show its ledger row.
    Failed { attempt_id: Uuid },
}

pub async fn start(
    state: &AppState,
    admin: &TenantAdmin,
    session: &Session,
    request: StartRequest,
) -> Result<Started, AppError> {
    let tenant_id = admin.tenant.id;
    let now = state.clock.now();
    let mut conn = state.db.get().await?;

    // The redirect URI comes only from the tenant's whitelist, by id, byte for byte.
    let redirect_uri = match request.flow {
        FlowKind::Redirect { redirect_uri_id } => {
            let whitelist = transaction(&mut conn, admin.scope(), async |conn| {
                redirect_uris::list(conn, tenant_id).await
            })
            .await?;
            let Some(entry) = whitelist.into_iter().find(|u| u.id == redirect_uri_id) else {
                return Err(AppError::BadRequest(
                    "Choose a redirect URI from this workspace's whitelist (Settings).".into(),
                ));
            };
            Some(entry)
        }
        FlowKind::Embedded => None,
    };

    let credentials = match open_credentials(state, &mut conn, tenant_id).await? {
        Ok(credentials) => credentials,
        Err(problem) => {
            let failure = match problem {
                CredentialsProblem::Missing => failure::CREDENTIALS_MISSING,
                CredentialsProblem::Unreadable => failure::CREDENTIALS_UNREADABLE,
            };
            let attempt_id =
                record_failure(&mut conn, admin, None, "session", failure, None, now, None).await?;
            return Ok(Started::Failed { attempt_id });
        }
    };

    let state_token = crate::primitives::random_token()?;
    let binding = SessionData(session).flow_binding()?;
    let products: Vec<String> = request
        .products
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    let flow_id = Uuid::new_v4();
    let kind = if redirect_uri.is_some() {
        "redirect"
    } else {
        "embedded"
    };
    let sandbox = request.sandbox.map(|s| s.as_str());
    let new = flows::NewFlow {
        id: flow_id,
        tenant_id,
        user_id: Some(admin.user.id),
        session_binding: &sha256(&binding),
        state_hash: &sha256(&state_token),
        flow: kind,
        redirect_uri_id: redirect_uri.as_ref().map(|u| u.id),
        redirect_uri: redirect_uri.as_ref().map(|u| u.uri.as_str()),
        products: &products,
        customer_id: &request.customer_id,
        customer_name: &request.customer_name,
        sandbox,
        minutes_to_expire: FLOW_MINUTES,
        credentials_version: credentials.version,
        reauth_connection_id: request.reauth.as_ref().map(|(id, _)| *id),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(i64::from(FLOW_MINUTES)),
    };
    let flow = transaction(&mut conn, admin.scope(), async |conn| {
        flows::insert(conn, &new).await
    })
    .await?;

    let app = AppCredentials {
        client_id: &credentials.client_id,
        client_secret: &credentials.client_secret,
    };
    let redirect = redirect_uri.as_ref().map(|u| u.uri.clone());
    let answer = match &request.reauth {
        Some((_, finch_connection_id)) => {
            state
                .finch
                .reauthenticate_session(
                    &app,
                    &ReauthenticateSessionRequest {
                        connection_id: finch_connection_id.clone(),
                        redirect_uri: redirect.clone(),
                        minutes_to_expire: u32::try_from(FLOW_MINUTES).ok(),
                        products: Some(request.products.clone()),
                    },
                )
                .await
        }
        None => {
            state
                .finch
                .create_connect_session(
                    &app,
                    &CreateConnectSessionRequest {
                        customer_id: request.customer_id.clone(),
                        customer_name: request.customer_name.clone(),
                        products: request.products.clone(),
                        customer_email: None,
                        redirect_uri: redirect.clone(),
                        minutes_to_expire: u32::try_from(FLOW_MINUTES).ok(),
                        sandbox: request.sandbox,
                        manual: None,
                        integration: None,
                        recordkeeping: None,
                    },
                )
                .await
        }
    };
    match answer {
        Ok(answer) => {
            let session_id = answer.value.session_id.clone();
            transaction(&mut conn, admin.scope(), async |conn| {
                flows::set_finch_session(conn, flow.id, &session_id, state.clock.now()).await
            })
            .await?;
            match redirect {
                Some(_) => {
                    let mut location = url::Url::parse(&answer.value.connect_url).map_err(|_| {
                        AppError::Unavailable("Finch returned a Connect link finchgate cannot use. Try again later.".into())
                    })?;
                    location
                        .query_pairs_mut()
                        .append_pair("state", &state_token);
                    Ok(Started::Redirect {
                        location: location.to_string(),
                    })
                }
                None => Ok(Started::Embedded {
                    flow_id: flow.id,
                    session_id,
                    state: state_token,
                }),
            }
        }
        Err(error) => {
            let failure = failure::from_finch_error(&error);
            transaction(&mut conn, admin.scope(), async |conn| {
                flows::finish(
                    conn,
                    flow.id,
                    "pending",
                    "failed",
                    Some(failure.category),
                    None,
                    state.clock.now(),
                )
                .await
            })
            .await?;
            let attempt_id = record_failure(
                &mut conn,
                admin,
                Some(&flow),
                "session",
                failure,
                Some(&error),
                now,
                None,
            )
            .await?;
            Ok(Started::Failed { attempt_id })
        }
    }
}

/// Writes a finished ledger row for a failure that happened before (or instead of) an exchange.
#[expect(
    clippy::too_many_arguments,
    reason = "one row, many columns; a struct would only rename them"
)]
pub async fn record_failure(
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    flow: Option<&flows::Flow>,
    stage: &str,
    failure: Failure,
    error: Option<&FinchError>,
    started_at: DateTime<Utc>,
    detail: Option<&str>,
) -> Result<Uuid, AppError> {
    let id = Uuid::new_v4();
    let now = Utc::now().max(started_at);
    let message = match (error.and_then(FinchError::body), detail) {
        (Some(body), _) => Some(attempts::sanitize(&body.message, 1000)),
        (None, Some(detail)) => Some(attempts::sanitize(detail, 1000)),
        (None, None) => error.map(|e| e.to_string()),
    };
    let shown = format!("{} {}", failure.title, failure.next_step);
    transaction(conn, admin.scope(), async |conn| {
        attempts::insert(
            conn,
            &attempts::NewAttempt {
                id,
                tenant_id: admin.tenant.id,
                flow_id: flow.map(|f| f.id),
                user_id: Some(admin.user.id),
                stage,
                flow_kind: flow.map(|f| f.flow.as_str()),
                is_reauth: flow.is_some_and(|f| f.reauth_connection_id.is_some()),
                state_missing: false,
                credentials_version: flow.map(|f| f.credentials_version),
                callback_received_at: None,
                started_at,
            },
        )
        .await?;
        attempts::finish(
            conn,
            id,
            &attempts::Finish {
                finished_at: Some(now),
                latency_ms: error
                    .and_then(FinchError::latency)
                    .map(|l| i32::try_from(l.as_millis()).unwrap_or(i32::MAX)),
                outcome: Some("failed"),
                category: Some(failure.category),
                actor: Some(failure.actor.as_str()),
                finch_status: error
                    .and_then(FinchError::status)
                    .and_then(|s| i16::try_from(s).ok()),
                finch_error_name: error.and_then(FinchError::body).map(|b| b.name.as_str()),
                finch_code: error
                    .and_then(FinchError::body)
                    .and_then(|b| b.finch_code.as_deref()),
                message: message.as_deref(),
                shown_to_user: Some(&shown),
                finch_request_id: error.and_then(FinchError::request_id),
                ..Default::default()
            },
        )
        .await
    })
    .await?;
    crate::telemetry::record_attempt("failed", failure.category, None);
    Ok(id)
}
