//! Finding the flow a callback belongs to, checking that it is this tenant's and this browser
//! session's, and claiming it atomically together with its ledger row (SECURITY.md OA-2, RL-2,
//! LG-3): one winner per state, and no exchange without a committed ledger row.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use super::{Outcome, rejected};
use crate::connect::Actor;
use crate::db::models::flows::{self, Flow, Transition};
use crate::db::models::{attempts, audit};
use crate::db::{Scope, transaction};
use crate::domain::failure;
use crate::error::AppError;
use crate::primitives::{constant_time_eq, sha256};

/// Finds the flow a state names (any tenant's: [`check_owner`] refuses a foreign one).
pub async fn find(conn: &mut AsyncPgConnection, state: SecretString) -> Result<Flow, AppError> {
    let hash = sha256(state.expose_secret());
    transaction(conn, Scope::System, async |conn| {
        flows::find_by_state_hash(conn, &hash).await
    })
    .await?
    .ok_or_else(|| rejected(failure::STATE_INVALID))
}

/// The flow `id` of `actor`'s tenant, for a confirmed stateless callback.
pub async fn find_by_id(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> Result<Flow, AppError> {
    let tenant_id = actor.tenant_id;
    transaction(conn, actor.scope(), async |conn| {
        flows::find(conn, tenant_id, id).await
    })
    .await?
    .ok_or_else(|| rejected(failure::STATE_INVALID))
}

/// The browser session's single pending, unexpired redirect flow of `actor`'s tenant: the only
/// flow a callback without a state may be offered to finish. None or several: start again.
/// Reads only.
pub async fn single_pending(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    binding: &[u8],
    now: DateTime<Utc>,
) -> Result<Flow, AppError> {
    let tenant_id = actor.tenant_id;
    let mut pending = transaction(conn, actor.scope(), async |conn| {
        flows::pending_redirect_flows_of_session(conn, tenant_id, binding).await
    })
    .await?;
    pending.retain(|f| f.expires_at > now);
    match pending.len() {
        1 => Ok(pending.remove(0)),
        0 => Err(rejected(failure::STATE_INVALID)),
        _ => Err(rejected(failure::AMBIGUOUS_PENDING)),
    }
}

/// Refuses a flow of another tenant or another browser session, and records the attempt.
pub async fn check_owner(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    flow: &Flow,
    binding: &[u8],
) -> Result<(), AppError> {
    let refusal = if flow.tenant_id != actor.tenant_id {
        Some(("callback.state_other_tenant", failure::STATE_OTHER_TENANT))
    } else if !constant_time_eq(&flow.session_binding, binding) {
        Some((
            "callback.state_session_mismatch",
            failure::STATE_SESSION_MISMATCH,
        ))
    } else {
        None
    };
    let Some((action, failure)) = refusal else {
        return Ok(());
    };
    let (flow_id, flow_tenant) = (flow.id, flow.tenant_id);
    transaction(conn, Scope::System, async |conn| {
        audit::record(
            conn,
            audit::Event::new(actor.audit_kind(), actor.user_id, action)
                .tenant(flow_tenant)
                .target("connect_flow", flow_id)
                .details(serde_json::json!({ "request_tenant": actor.tenant_id })),
        )
        .await
    })
    .await?;
    Err(AppError::Forbidden(format!(
        "{} — {}",
        failure.title, failure.next_step
    )))
}

/// Where a flow that is no longer pending sends the browser (refresh, double click, back
/// button): `None` while it is pending and still unexpired, so the callback goes on. A pending
/// flow past its expiry is marked expired here.
pub async fn settled(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    flow: &Flow,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, AppError> {
    match flow.status.as_str() {
        "pending" if flow.expires_at > now => Ok(None),
        "pending" => {
            let expired =
                Transition::to("pending", "expired").category(failure::STATE_EXPIRED.category);
            let (tenant_id, flow_id) = (actor.tenant_id, flow.id);
            transaction(conn, actor.scope(), async |conn| {
                flows::finish(conn, tenant_id, flow_id, expired, now).await
            })
            .await?;
            Err(rejected(failure::STATE_EXPIRED))
        }
        "exchanging" => Ok(Some(Outcome::InProgress { flow_id: flow.id })),
        "expired" => Err(rejected(failure::STATE_EXPIRED)),
        status => match (status, flow.connection_id) {
            ("completed", Some(connection_id)) => Ok(Some(Outcome::Connected { connection_id })),
            _ => latest_attempt(conn, actor, flow.id).await.map(Some),
        },
    }
}

/// The result page of a finished flow: its latest ledger row.
async fn latest_attempt(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    flow_id: Uuid,
) -> Result<Outcome, AppError> {
    let tenant_id = actor.tenant_id;
    let attempt = transaction(conn, actor.scope(), async |conn| {
        attempts::latest_of_flow(conn, tenant_id, flow_id).await
    })
    .await?;
    match attempt {
        Some(attempt) => Ok(Outcome::Attempt {
            attempt_id: attempt.id,
        }),
        None => Err(rejected(failure::STATE_EXPIRED)),
    }
}

/// What is known when a callback claims its flow.
pub struct Claim<'a> {
    pub flow: &'a Flow,
    pub received_at: DateTime<Utc>,
    pub state_missing: bool,
    /// `callback` (Finch reported an error) or `exchange` (a code arrived).
    pub stage: &'a str,
}

/// Claims the pending flow and opens its ledger row, atomically. `None`: another request won.
pub async fn claim_and_open(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    claim: Claim<'_>,
    started_at: DateTime<Utc>,
) -> Result<Option<Uuid>, crate::db::DbError> {
    let attempt_id = Uuid::new_v4();
    let tenant_id = actor.tenant_id;
    let claimed = transaction(conn, actor.scope(), async |conn| {
        let Some(claimed) = flows::claim(conn, tenant_id, claim.flow.id, claim.received_at).await?
        else {
            return Ok::<_, diesel::result::Error>(None);
        };
        attempts::insert(
            conn,
            &attempts::NewAttempt {
                id: attempt_id,
                tenant_id: claimed.tenant_id,
                flow_id: Some(claimed.id),
                user_id: actor.user_id,
                stage: claim.stage,
                flow_kind: Some(&claimed.flow),
                is_reauth: claimed.reauth_connection_id.is_some(),
                state_missing: claim.state_missing,
                credentials_version: Some(claimed.credentials_version),
                callback_received_at: Some(claim.received_at),
                started_at,
            },
        )
        .await?;
        Ok(Some(attempt_id))
    })
    .await?;
    Ok(claimed)
}
