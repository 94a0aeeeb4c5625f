//! The callback: validate the state, claim the flow (one winner), write the ledger row, exchange
//! the code with the flow's own tenant credentials, verify, store, finish the ledger row.
//!
//! Order matters (SECURITY.md OA-2, OA-4, RL-2, LG-3): nothing is sent to Finch before the state
//! validated against this tenant and this browser session, the flow was claimed atomically, and the
//! ledger row is committed; the tenant, credentials and redirect URI come only from the flow row.
//! The jobs live apart: [`input`] (shape checks), [`claim`] (find, check, claim + ledger row),
//! [`store`] (verify the customer, store with retries).

pub mod claim;
pub mod input;
pub mod store;

use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use self::claim::Claim;
use self::store::Exchange;
use super::ledger::{self, FailedRow};
use super::link::{self, Finish as LinkFinish};
use super::{Actor, Version, open_credentials};
use crate::db::Scope;
use crate::db::models::rate_limits;
use crate::domain::failure::{self, Failure};
use crate::domain::text;
use crate::error::AppError;
use crate::finch::wire::TokenRequest;
use crate::primitives::sha256;
use crate::state::AppState;

pub use input::{CallbackInput, check_shape};

/// Where the browser goes after the callback.
#[derive(Debug)]
pub enum Outcome {
    /// The connection is stored: show it.
    Connected { connection_id: Uuid },
    /// The attempt failed (or finished earlier): show its ledger row.
    Attempt { attempt_id: Uuid },
    /// Another request is exchanging this flow right now.
    InProgress { flow_id: Uuid },
    /// A code without a state: nothing was done. The admin must confirm (a same-origin,
    /// CSRF-protected POST) that it finishes this, the session's one pending redirect flow; the
    /// code is kept for that step by the caller, never stored here.
    Confirm { flow_id: Uuid, code: SecretString },
}

/// Longest `error_description` kept (it is Finch Connect's text, or an attacker's).
const MAX_ERROR_DESCRIPTION: usize = 500;

/// Refused callbacks (malformed, unknown or foreign state) one admin may cause per window before
/// further callbacks are answered 429 without a lookup (RFC 6819 §4.4.1.12: no guessing codes or
/// states at our expense).
pub const REFUSED_CALLBACK_LIMIT: i32 = 20;
pub const REFUSED_CALLBACK_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

fn rejected(failure: Failure) -> AppError {
    AppError::BadRequest(format!("{} — {}", failure.title, failure.next_step))
}

/// Handles one callback of `actor`'s browser session (bound by `binding`, the session's flow
/// binding), throttling an admin whose callbacks keep being refused.
pub async fn handle(
    state: &AppState,
    actor: Actor,
    binding: &str,
    input: CallbackInput,
) -> Result<Outcome, AppError> {
    let key = format!("callback-refused:{}", actor.key());
    let now = state.clock.now();
    let blocked = crate::db::run(&state.db, Scope::System, async |conn| {
        rate_limits::is_blocked(conn, &key, now).await
    })
    .await?;
    if blocked {
        tracing::warn!(who = %actor.key(), "callbacks throttled after repeated refusals");
        return Err(AppError::TooManyRequests);
    }
    let result = handle_unthrottled(state, actor, binding, input).await;
    if let Err(AppError::BadRequest(_) | AppError::Forbidden(_)) = &result {
        crate::db::run(&state.db, Scope::System, async |conn| {
            let (window, limit) = (REFUSED_CALLBACK_WINDOW, REFUSED_CALLBACK_LIMIT);
            rate_limits::hit(conn, &key, now, window, limit).await
        })
        .await?;
    }
    result
}

async fn handle_unthrottled(
    state: &AppState,
    actor: Actor,
    binding: &str,
    input: CallbackInput,
) -> Result<Outcome, AppError> {
    let received_at = state.clock.now();
    // 1. Shape checks: nothing malformed goes further (no lookup, no ledger row, no Finch call).
    let shaped = input::check_shape(input).map_err(rejected)?;
    let binding = sha256(binding);
    let mut conn = state.db.get().await?;

    // 2. Without a state, nothing here is verified (another site may have sent the browser):
    // no flow changes and no exchange; a code waits for the admin's confirmation.
    let Some(raw_state) = shaped.state else {
        let pending = claim::single_pending(&mut conn, actor, &binding, received_at).await?;
        return match (shaped.code, shaped.error) {
            (Some(code), _) => Ok(Outcome::Confirm {
                flow_id: pending.id,
                code,
            }),
            (None, _) => Err(AppError::BadRequest(UNVERIFIED_ERROR.into())),
        };
    };
    // 3. Find the flow by its state; 4. it must be this tenant's and this browser session's;
    // 5. a flow that already moved on lands on its result.
    let flow = claim::find(&mut conn, raw_state).await?;
    claim::check_owner(&mut conn, actor, &flow, &binding).await?;
    if let Some(outcome) = claim::settled(&mut conn, actor, &flow, received_at).await? {
        return Ok(outcome);
    }
    let finish = Finish {
        flow: &flow,
        received_at,
        state_missing: false,
        code: shaped.code,
        error: shaped.error.map(|e| (e, shaped.error_description)),
    };
    finish_flow(state, actor, conn, finish).await
}

/// What a callback that carries a link cookie turned out to be.
pub enum LinkCallback {
    /// Its state names no flow of a connect link (or it has no state): the admin path handles
    /// it, with the input given back untouched.
    NotALink(CallbackInput),
    /// A link's flow: where its customer goes now.
    Done(LinkFinish),
}

/// A link's flow that is no longer the link's to finish.
const LINK_FLOW_GONE: &str = "This connection attempt can no longer be finished here: the link     was continued in another browser or window, or it no longer works. Nothing was sent to Finch.";

/// Handles one callback of a connect link's customer, in tenant `tenant_id` (from the path),
/// whose browser carries `binding` in its link cookie. Only the link's current flow (the last
/// Continue) of that browser is finished; anything else is refused before any exchange.
pub async fn handle_link(
    state: &AppState,
    tenant_id: Uuid,
    binding: &str,
    input: CallbackInput,
) -> Result<LinkCallback, AppError> {
    let received_at = state.clock.now();
    let Some(hash) = input.state.as_ref().map(|s| sha256(s.expose_secret())) else {
        return Ok(LinkCallback::NotALink(input));
    };
    let flow = crate::db::run(&state.db, Scope::System, async |conn| {
        crate::db::models::flows::find_by_state_hash(conn, &hash).await
    })
    .await?;
    let Some((flow, link_id)) = flow.and_then(|f| f.link_id.map(|l| (f, l))) else {
        return Ok(LinkCallback::NotALink(input));
    };
    let actor = Actor::link(tenant_id, link_id);
    let key = format!("callback-refused:{}", actor.key());
    let blocked = crate::db::run(&state.db, Scope::System, async |conn| {
        rate_limits::is_blocked(conn, &key, received_at).await
    })
    .await?;
    if blocked {
        tracing::warn!(%link_id, "link callbacks throttled after repeated refusals");
        return Err(AppError::TooManyRequests);
    }
    let result = finish_link_flow(state, actor, binding, &flow, input, received_at).await;
    if let Err(AppError::BadRequest(_) | AppError::Forbidden(_)) = &result {
        crate::db::run(&state.db, Scope::System, async |conn| {
            let (window, limit) = (REFUSED_CALLBACK_WINDOW, REFUSED_CALLBACK_LIMIT);
            rate_limits::hit(conn, &key, received_at, window, limit).await
        })
        .await?;
    }
    let outcome = result?;
    let finish = link::after_callback(state, tenant_id, link_id, &outcome).await?;
    Ok(LinkCallback::Done(finish))
}

async fn finish_link_flow(
    state: &AppState,
    actor: Actor,
    binding: &str,
    flow: &crate::db::models::flows::Flow,
    input: CallbackInput,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome, AppError> {
    let shaped = input::check_shape(input).map_err(rejected)?;
    let mut conn = state.db.get().await?;
    // The browser that pressed Continue (its cookie), for this tenant.
    claim::check_owner(&mut conn, actor, flow, &sha256(binding)).await?;
    // A refresh after the end lands on the same result; a superseded flow is expired.
    if let Some(outcome) = claim::settled(&mut conn, actor, flow, received_at).await? {
        return Ok(outcome);
    }
    let Some(link_id) = actor.link_id else {
        return Err(rejected(failure::STATE_INVALID));
    };
    if !link::may_finish(state, actor.tenant_id, link_id, flow.id).await? {
        let gone = crate::db::models::flows::Transition::to("pending", "expired")
            .category(failure::STATE_EXPIRED.category);
        let (tenant_id, flow_id) = (actor.tenant_id, flow.id);
        crate::db::transaction(&mut conn, actor.scope(), async |conn| {
            crate::db::models::flows::finish(conn, tenant_id, flow_id, gone, received_at).await
        })
        .await?;
        return Err(AppError::Forbidden(LINK_FLOW_GONE.into()));
    }
    let finish = Finish {
        flow,
        received_at,
        state_missing: false,
        code: shaped.code,
        error: shaped.error.map(|e| (e, shaped.error_description)),
    };
    finish_flow(state, actor, conn, finish).await
}

/// What Finch Connect said about an unverified (stateless) error: nothing is recorded.
const UNVERIFIED_ERROR: &str = "Finch Connect ended without connecting, and this page cannot tell \
    which attempt it belongs to, so nothing was changed. Start a new connection when you are ready.";

/// The flow a stateless callback's code was offered to, for the confirmation page: still this
/// session's pending, unexpired redirect flow of `actor`'s tenant, or refused (start again).
/// Reads only.
pub async fn confirmable(
    state: &AppState,
    actor: Actor,
    binding: &str,
    flow_id: Uuid,
) -> Result<crate::db::models::flows::Flow, AppError> {
    let binding = sha256(binding);
    let mut conn = state.db.get().await?;
    let flow = claim::single_pending(&mut conn, actor, &binding, state.clock.now()).await?;
    if flow.id != flow_id {
        return Err(rejected(failure::STATE_INVALID));
    }
    Ok(flow)
}

/// Finishes a stateless callback's code once the admin confirmed it belongs to `flow_id` (the
/// session's one pending redirect flow): the flow is claimed and the code exchanged, and the
/// ledger records that the state was missing.
pub async fn confirm(
    state: &AppState,
    actor: Actor,
    binding: &str,
    flow_id: Uuid,
    code: SecretString,
) -> Result<Outcome, AppError> {
    let received_at = state.clock.now();
    let binding = sha256(binding);
    let mut conn = state.db.get().await?;
    let flow = claim::find_by_id(&mut conn, actor, flow_id).await?;
    claim::check_owner(&mut conn, actor, &flow, &binding).await?;
    if let Some(outcome) = claim::settled(&mut conn, actor, &flow, received_at).await? {
        return Ok(outcome);
    }
    let finish = Finish {
        flow: &flow,
        received_at,
        state_missing: true,
        code: Some(code),
        error: None,
    };
    finish_flow(state, actor, conn, finish).await
}

/// A verified callback for a pending flow: Finch's code, or Finch's error and its description.
struct Finish<'a> {
    flow: &'a crate::db::models::flows::Flow,
    received_at: chrono::DateTime<chrono::Utc>,
    state_missing: bool,
    code: Option<SecretString>,
    error: Option<(String, Option<String>)>,
}

/// Claims the flow with its ledger row, then records Finch's error or exchanges the code and
/// stores the token.
async fn finish_flow(
    state: &AppState,
    actor: Actor,
    mut conn: crate::db::PooledConnection,
    finish: Finish<'_>,
) -> Result<Outcome, AppError> {
    let Finish {
        flow,
        received_at,
        state_missing,
        code,
        error,
    } = finish;
    let claim = |stage| Claim {
        flow,
        received_at,
        state_missing,
        stage,
    };

    // 6. Finch reported an error (the user cancelled or denied): a failed attempt, no exchange.
    if let Some((error, description)) = error {
        let claimed =
            claim::claim_and_open(&mut conn, actor, claim("callback"), state.clock.now()).await?;
        let Some(attempt_id) = claimed else {
            return Ok(Outcome::InProgress { flow_id: flow.id });
        };
        let detail = match description.as_deref() {
            Some(d) => format!(
                "Finch Connect returned error={error}: {}",
                text::sanitize(d, MAX_ERROR_DESCRIPTION)
            ),
            None => format!("Finch Connect returned error={error}"),
        };
        let row = FailedRow::new(failure::USER_DENIED).detail(&detail);
        let now = state.clock.now();
        ledger::finish_failed(&mut conn, actor, flow.id, attempt_id, &row, None, now).await?;
        return Ok(Outcome::Attempt { attempt_id });
    }
    let Some(code) = code else {
        return Err(rejected(failure::STATE_INVALID));
    };

    // 7. Claim the flow and commit the ledger row in one transaction; no row, no exchange.
    let attempt_id = match claim::claim_and_open(
        &mut conn,
        actor,
        claim("exchange"),
        state.clock.now(),
    )
    .await
    {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(Outcome::InProgress { flow_id: flow.id }),
        Err(error) => {
            tracing::error!(flow_id = %flow.id, error = %error, "the ledger row could not be written; not exchanging");
            return Err(AppError::Unavailable(
                    "finchgate could not record this attempt, so it did not contact Finch. Your code is still unused: reload this page in a minute to try again.".into(),
                ));
        }
    };

    // 8. The credentials the flow started with, of the flow's tenant (never anything from the
    // request): Finch issued the code to that client, whatever was saved since.
    let version = Version::Of(flow.credentials_version);
    let credentials = match open_credentials(state, &mut conn, flow.tenant_id, version).await? {
        Ok(credentials) => credentials,
        Err(failure) => {
            let row = FailedRow::new(failure);
            let now = state.clock.now();
            ledger::finish_failed(&mut conn, actor, flow.id, attempt_id, &row, None, now).await?;
            return Ok(Outcome::Attempt { attempt_id });
        }
    };
    drop(conn);

    // 9. The exchange: redirect_uri only for redirect-flow codes, identical to the one used.
    let sent_at = state.clock.now();
    let request = TokenRequest {
        code: code.expose_secret(),
        client_id: &credentials.client_id,
        client_secret: credentials.client_secret.expose_secret(),
        redirect_uri: flow
            .redirect_uri
            .as_deref()
            .filter(|_| flow.flow == "redirect"),
    };
    let answer = match state.finch.exchange_code(&request).await {
        Ok(answer) => answer,
        Err(error) => {
            let mut conn = state.db.get().await?;
            let row = FailedRow::from_finch(&error);
            let now = state.clock.now();
            ledger::finish_failed(
                &mut conn,
                actor,
                flow.id,
                attempt_id,
                &row,
                Some(sent_at),
                now,
            )
            .await?;
            return Ok(Outcome::Attempt { attempt_id });
        }
    };
    let exchange = Exchange {
        actor,
        flow,
        attempt_id,
        sent_at,
        latency: answer.latency,
        request_id: answer.request_id,
    };

    // 10. The token is for the customer this flow was started for, or it is discarded.
    if let Some(outcome) = store::refuse_other_customer(state, &exchange, &answer.value).await? {
        return Ok(outcome);
    }
    // 11. Store connection + encrypted token + finished ledger row in one transaction.
    Ok(store::store_with_retries(state, &exchange, answer.value).await)
}
