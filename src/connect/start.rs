//! Starting a Connect attempt: a flow row with a fresh state, then a Finch Connect session.

use uuid::Uuid;

use super::ledger::{self, FailedRow};
use super::{Actor, FLOW_MINUTES, Version, open_credentials};
use crate::config::Limits;
use crate::credentials::Opened;
use crate::db::models::flows::{self, Transition};
use crate::db::models::{rate_limits, redirect_uris};
use crate::db::transaction;
use crate::error::AppError;
use crate::finch::client::{Answer, AppCredentials, FinchError};
use crate::finch::wire::{
    ConnectSessionResponse, CreateConnectSessionRequest, Product, ReauthenticateSessionRequest,
    SandboxMode,
};
use crate::primitives::{random_token, sha256};
use crate::state::AppState;

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
    Redirect { flow_id: Uuid, location: String },
    /// Render the embedded-flow page.
    Embedded {
        flow_id: Uuid,
        session_id: String,
        state: String,
    },
    /// The attempt failed before Connect opened; show its ledger row.
    Failed { attempt_id: Uuid },
}

/// Starts a flow for `actor` in the browser session bound by `binding` (the session's flow
/// binding, stored hashed on the flow so only that session can finish it).
pub async fn start(
    state: &AppState,
    actor: Actor,
    binding: &str,
    request: StartRequest,
) -> Result<Started, AppError> {
    let tenant_id = actor.tenant_id;
    let now = state.clock.now();
    let mut conn = state.db.get().await?;

    // The redirect URI comes only from the tenant's whitelist, by id, byte for byte.
    let redirect_uri = match request.flow {
        FlowKind::Redirect { redirect_uri_id } => {
            let whitelist = transaction(&mut conn, actor.scope(), async |conn| {
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

    let credentials = match open_credentials(state, &mut conn, tenant_id, Version::Current).await? {
        Ok(credentials) => credentials,
        Err(failure) => {
            let row = FailedRow::new(failure);
            let attempt_id = ledger::record_failure(
                &mut conn,
                actor,
                None,
                "session",
                &row,
                now,
                state.clock.now(),
            )
            .await?;
            return Ok(Started::Failed { attempt_id });
        }
    };

    let state_token = random_token()?;
    let products: Vec<String> = request
        .products
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    let new = flows::NewFlow {
        id: Uuid::new_v4(),
        tenant_id,
        user_id: actor.user_id,
        session_binding: &sha256(binding),
        state_hash: &sha256(&state_token),
        flow: if redirect_uri.is_some() {
            "redirect"
        } else {
            "embedded"
        },
        redirect_uri_id: redirect_uri.as_ref().map(|u| u.id),
        redirect_uri: redirect_uri.as_ref().map(|u| u.uri.as_str()),
        products: &products,
        customer_id: &request.customer_id,
        customer_name: &request.customer_name,
        sandbox: request.sandbox.map(|s| s.as_str()),
        minutes_to_expire: FLOW_MINUTES,
        credentials_version: credentials.version,
        reauth_connection_id: request.reauth.as_ref().map(|(id, _)| *id),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(i64::from(FLOW_MINUTES)),
        link_id: actor.link_id,
    };
    let limits = state.settings.limits;
    let flow = transaction(&mut conn, actor.scope(), async |conn| {
        if let Some(refusal) = over_limits(conn, actor, limits, now).await? {
            return Ok(Err(refusal));
        }
        flows::insert(conn, &new).await.map(Ok)
    })
    .await??;

    let redirect = redirect_uri.map(|u| u.uri);
    match create_session(state, &credentials, &request, redirect.clone()).await {
        Ok(answer) => {
            let session_id = answer.value.session_id;
            transaction(&mut conn, actor.scope(), async |conn| {
                flows::set_finch_session(conn, tenant_id, flow.id, &session_id, state.clock.now())
                    .await
            })
            .await?;
            if redirect.is_none() {
                return Ok(Started::Embedded {
                    flow_id: flow.id,
                    session_id,
                    state: state_token,
                });
            }
            let mut location = url::Url::parse(&answer.value.connect_url).map_err(|_| {
                AppError::Unavailable(
                    "Finch returned a Connect link finchgate cannot use. Try again later.".into(),
                )
            })?;
            location
                .query_pairs_mut()
                .append_pair("state", &state_token);
            Ok(Started::Redirect {
                flow_id: flow.id,
                location: location.to_string(),
            })
        }
        Err(error) => {
            let row = FailedRow::from_finch(&error);
            let failed = Transition::failed("pending", row.failure().category);
            transaction(&mut conn, actor.scope(), async |conn| {
                flows::finish(conn, tenant_id, flow.id, failed, state.clock.now()).await
            })
            .await?;
            let attempt_id = ledger::record_failure(
                &mut conn,
                actor,
                Some(&flow),
                "session",
                &row,
                now,
                state.clock.now(),
            )
            .await?;
            Ok(Started::Failed { attempt_id })
        }
    }
}

/// Why a start is refused before anything is asked of Finch, when it is (issue 13, defect 9):
/// too many unfinished flows of this admin or tenant, or too many started in the window. Holds
/// the tenant's start lock until the transaction ends, so concurrent starts are counted one by
/// one.
async fn over_limits(
    conn: &mut diesel_async::AsyncPgConnection,
    actor: Actor,
    limits: Limits,
    now: chrono::DateTime<chrono::Utc>,
) -> diesel::QueryResult<Option<AppError>> {
    let (tenant_id, who) = (actor.tenant_id, actor.key());
    flows::lock_starts(conn, tenant_id).await?;
    // A link has one live flow at a time (a later Continue supersedes the earlier one); the
    // per-admin cap is for admins.
    let (mine, tenant) = flows::count_open(conn, tenant_id, actor.user_id, now).await?;
    let minutes = i64::from(FLOW_MINUTES);
    if mine >= limits.pending_flows_per_admin {
        return Ok(Some(AppError::Limited(format!(
            "You have {mine} connection attempts open. Finish one in Finch Connect, or wait until \
             they expire ({minutes} minutes after they were started), then start again."
        ))));
    }
    if tenant >= limits.pending_flows_per_tenant {
        return Ok(Some(AppError::Limited(format!(
            "This workspace has {tenant} connection attempts open. Wait until some are finished \
             or expire ({minutes} minutes after they were started), then start again."
        ))));
    }
    let window = Limits::WINDOW.num_minutes();
    for (key, limit, whose) in [
        (
            format!("connect-start:{who}"),
            limits.starts_per_admin(),
            "You have",
        ),
        (
            format!("connect-start-tenant:{tenant_id}"),
            limits.starts_per_tenant(),
            "This workspace has",
        ),
    ] {
        if rate_limits::is_blocked(conn, &key, now).await? {
            return Ok(Some(AppError::Limited(format!(
                "{whose} started {limit} connection attempts in the last {window} minutes. Wait \
                 a few minutes, then start again."
            ))));
        }
        rate_limits::hit(conn, &key, now, Limits::WINDOW, limit).await?;
    }
    Ok(None)
}

/// Asks Finch for a Connect session (a reauthentication session when reconnecting), with the
/// tenant's credentials.
async fn create_session(
    state: &AppState,
    credentials: &Opened,
    request: &StartRequest,
    redirect_uri: Option<String>,
) -> Result<Answer<ConnectSessionResponse>, FinchError> {
    let app = AppCredentials {
        client_id: &credentials.client_id,
        client_secret: &credentials.client_secret,
    };
    let minutes_to_expire = u32::try_from(FLOW_MINUTES).ok();
    match &request.reauth {
        Some((_, finch_connection_id)) => {
            let body = ReauthenticateSessionRequest {
                connection_id: finch_connection_id.clone(),
                redirect_uri,
                minutes_to_expire,
                products: Some(request.products.clone()),
            };
            state.finch.reauthenticate_session(&app, &body).await
        }
        None => {
            let body = CreateConnectSessionRequest {
                customer_id: request.customer_id.clone(),
                customer_name: request.customer_name.clone(),
                products: request.products.clone(),
                customer_email: None,
                redirect_uri,
                minutes_to_expire,
                sandbox: request.sandbox,
                manual: None,
                integration: None,
                recordkeeping: None,
            };
            state.finch.create_connect_session(&app, &body).await
        }
    }
}
