//! The callback: validate the state, claim the flow (one winner), write the ledger row, exchange
//! the code with the flow's own tenant credentials, verify, store, finish the ledger row.
//!
//! Order matters (SECURITY.md OA-2, OA-4, RL-2, LG-3): nothing is sent to Finch before the state
//! validated against this tenant and this browser session, the flow was claimed atomically, and the
//! ledger row is committed; the tenant, credentials and redirect URI come only from the flow row.

use std::time::Duration;

use actix_session::Session;
use chrono::Utc;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use super::{CredentialsProblem, open_credentials};
use crate::db::models::{attempts, audit, connections, flows, keyring, rate_limits, tokens};
use crate::db::{Scope, transaction};
use crate::domain::failure::{self, Failure};
use crate::error::AppError;
use crate::finch::client::FinchError;
use crate::finch::wire::{TokenRequest, TokenResponse};
use crate::primitives::sha256;
use crate::state::AppState;
use crate::vault::{Purpose, RowContext};
use crate::web::{SessionData, TenantAdmin};

/// What arrived on the callback, before any check.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackInput {
    pub code: Option<SecretString>,
    pub state: Option<SecretString>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Where the browser goes after the callback.
#[derive(Debug)]
pub enum Outcome {
    /// The connection is stored: show it.
    Connected { connection_id: Uuid },
    /// The attempt failed (or finished earlier): show its ledger row.
    Attempt { attempt_id: Uuid },
    /// Another request is exchanging this flow right now.
    InProgress { flow_id: Uuid },
}

const STATE_LEN: usize = 43;
const MAX_CODE_LEN: usize = 256;
/// Database write attempts for a received token that the database refuses (an error answer),
/// before giving up; the exchange is never repeated.
const STORE_ATTEMPTS: u32 = 3;
/// How long the write of a received token is retried while the database cannot be reached at
/// all: long enough for a restart or failover, well inside the reaper's
/// [`EXCHANGE_DEADLINE`](super::reaper::EXCHANGE_DEADLINE) together with the exchange's timeout.
const STORE_DEADLINE: Duration = Duration::from_secs(15);
/// The first pause between write attempts; it doubles up to [`MAX_STORE_PAUSE`].
const FIRST_STORE_PAUSE: Duration = Duration::from_millis(100);
const MAX_STORE_PAUSE: Duration = Duration::from_secs(2);

fn valid_state(state: &str) -> bool {
    state.len() == STATE_LEN
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

fn valid_error(error: &str) -> bool {
    !error.is_empty()
        && error.len() <= 64
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// A callback's input that passed the shape checks.
#[derive(Debug)]
pub struct Shaped {
    /// The authorization code (base64url-ish, at most `MAX_CODE_LEN` bytes).
    pub code: Option<SecretString>,
    /// Finch Connect's `error` (lowercase and `_`, at most 64 bytes).
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Exactly `STATE_LEN` base64url characters, or absent (redirect-flow fallback).
    pub state: Option<SecretString>,
}

/// The shape checks (lengths and alphabets of code, state and error; a code or an error must be
/// present): a pure function of the input, so the fuzzer and the proptests can drive it. What
/// fails here is never looked up, recorded or sent anywhere.
pub fn check_shape(input: CallbackInput) -> Result<Shaped, Failure> {
    let code = match input.code {
        Some(code) if valid_code(code.expose_secret()) => Some(code),
        Some(_) => return Err(failure::STATE_INVALID),
        None => None,
    };
    let error = match input.error {
        Some(e) if valid_error(&e) => Some(e),
        Some(_) => return Err(failure::STATE_INVALID),
        None => None,
    };
    if code.is_none() && error.is_none() {
        return Err(failure::STATE_INVALID);
    }
    let state = match input.state {
        Some(state) if valid_state(state.expose_secret()) => Some(state),
        Some(_) => return Err(failure::STATE_INVALID),
        None => None,
    };
    Ok(Shaped {
        code,
        error,
        error_description: input.error_description,
        state,
    })
}

fn rejected(failure: Failure) -> AppError {
    AppError::BadRequest(format!("{} — {}", failure.title, failure.next_step))
}

fn forbidden(failure: Failure) -> AppError {
    AppError::Forbidden(format!("{} — {}", failure.title, failure.next_step))
}

/// Refused callbacks (malformed, unknown or foreign state) one admin may cause per window before
/// further callbacks are answered 429 without a lookup (RFC 6819 §4.4.1.12: no guessing codes or
/// states at our expense).
pub const REFUSED_CALLBACK_LIMIT: i32 = 20;
pub const REFUSED_CALLBACK_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// Handles one callback, throttling an admin whose callbacks keep being refused.
pub async fn handle(
    state: &AppState,
    admin: &TenantAdmin,
    session: &Session,
    input: CallbackInput,
) -> Result<Outcome, AppError> {
    let key = format!("callback-refused:{}", admin.user.id);
    let now = state.clock.now();
    let mut conn = state.db.get().await?;
    let blocked = transaction(&mut conn, Scope::System, async |conn| {
        rate_limits::is_blocked(conn, &key, now).await
    })
    .await?;
    if blocked {
        tracing::warn!(user_id = %admin.user.id, "callbacks throttled after repeated refusals");
        return Err(AppError::TooManyRequests);
    }
    drop(conn);
    let result = handle_unthrottled(state, admin, session, input).await;
    if let Err(AppError::BadRequest(_) | AppError::Forbidden(_)) = &result {
        let mut conn = state.db.get().await?;
        transaction(&mut conn, Scope::System, async |conn| {
            rate_limits::hit(
                conn,
                &key,
                now,
                REFUSED_CALLBACK_WINDOW,
                REFUSED_CALLBACK_LIMIT,
            )
            .await
        })
        .await?;
    }
    result
}

async fn handle_unthrottled(
    state: &AppState,
    admin: &TenantAdmin,
    session: &Session,
    input: CallbackInput,
) -> Result<Outcome, AppError> {
    let received_at = state.clock.now();
    // 1. Shape checks: nothing malformed goes further (no lookup, no ledger row, no Finch call).
    let Shaped {
        code,
        error,
        error_description,
        state: raw_state,
    } = check_shape(input).map_err(rejected)?;
    let binding = sha256(&SessionData(session).flow_binding()?);
    let mut conn = state.db.get().await?;

    // 2. Find the flow: by state, or (redirect flow, no state at all) the session's single pending flow.
    let mut state_missing = false;
    let flow = match raw_state {
        Some(raw) => {
            let hash = sha256(raw.expose_secret());
            transaction(&mut conn, Scope::System, async |conn| {
                flows::find_by_state_hash(conn, &hash).await
            })
            .await?
            .ok_or_else(|| rejected(failure::STATE_INVALID))?
        }
        None => {
            state_missing = true;
            let tenant_id = admin.tenant.id;
            let mut pending = transaction(&mut conn, admin.scope(), async |conn| {
                flows::pending_redirect_flows_of_session(conn, tenant_id, &binding).await
            })
            .await?;
            match pending.len() {
                1 => pending.remove(0),
                0 => return Err(rejected(failure::STATE_INVALID)),
                _ => return Err(rejected(failure::AMBIGUOUS_PENDING)),
            }
        }
    };

    // 3. The flow must be this tenant's and this browser session's.
    if flow.tenant_id != admin.tenant.id {
        audit_refusal(&mut conn, admin, &flow, "callback.state_other_tenant").await?;
        return Err(forbidden(failure::STATE_OTHER_TENANT));
    }
    if !crate::primitives::constant_time_eq(&flow.session_binding, &binding) {
        audit_refusal(&mut conn, admin, &flow, "callback.state_session_mismatch").await?;
        return Err(forbidden(failure::STATE_SESSION_MISMATCH));
    }

    // 4. A flow that already moved on: land on its result (refresh, double click, back button).
    match flow.status.as_str() {
        "pending" => {}
        "exchanging" => return Ok(Outcome::InProgress { flow_id: flow.id }),
        "completed" => {
            if let Some(connection_id) = flow.connection_id {
                return Ok(Outcome::Connected { connection_id });
            }
            return latest_attempt(&mut conn, admin, &flow).await;
        }
        "expired" => return Err(rejected(failure::STATE_EXPIRED)),
        _ => return latest_attempt(&mut conn, admin, &flow).await,
    }
    if flow.expires_at <= received_at {
        let flow_id = flow.id;
        transaction(&mut conn, admin.scope(), async |conn| {
            flows::finish(
                conn,
                flow_id,
                "pending",
                "expired",
                Some(failure::STATE_EXPIRED.category),
                None,
                received_at,
            )
            .await
        })
        .await?;
        return Err(rejected(failure::STATE_EXPIRED));
    }

    // 5. Finch reported an error (the user cancelled or denied): a failed attempt, no exchange.
    if let Some(error) = error {
        let claimed = claim_and_open(
            &mut conn,
            admin,
            &flow,
            received_at,
            state_missing,
            "callback",
        )
        .await?;
        let Some(attempt_id) = claimed else {
            return Ok(Outcome::InProgress { flow_id: flow.id });
        };
        let description = error_description
            .as_deref()
            .map(|d| attempts::sanitize(d, 500));
        let detail = match description {
            Some(d) => format!("Finch Connect returned error={error}: {d}"),
            None => format!("Finch Connect returned error={error}"),
        };
        finish_failed(
            &mut conn,
            admin,
            &flow,
            attempt_id,
            failure::USER_DENIED,
            None,
            Some(&detail),
        )
        .await?;
        return Ok(Outcome::Attempt { attempt_id });
    }
    let Some(code) = code else {
        return Err(rejected(failure::STATE_INVALID));
    };

    // 6. Claim the flow and commit the ledger row in one transaction; no row, no exchange.
    let attempt_id = match claim_and_open(
        &mut conn,
        admin,
        &flow,
        received_at,
        state_missing,
        "exchange",
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

    // 7. Credentials of the flow's tenant (never anything from the request).
    let credentials = match open_credentials(state, &mut conn, flow.tenant_id).await? {
        Ok(credentials) => credentials,
        Err(problem) => {
            let failure = match problem {
                CredentialsProblem::Missing => failure::CREDENTIALS_MISSING,
                CredentialsProblem::Unreadable => failure::CREDENTIALS_UNREADABLE,
            };
            finish_failed(&mut conn, admin, &flow, attempt_id, failure, None, None).await?;
            return Ok(Outcome::Attempt { attempt_id });
        }
    };
    drop(conn);

    // 8. The exchange: redirect_uri only for redirect-flow codes, identical to the one used.
    let sent_at = Utc::now();
    let request = TokenRequest {
        code: code.expose_secret(),
        client_id: &credentials.client_id,
        client_secret: credentials.client_secret.expose_secret(),
        redirect_uri: flow
            .redirect_uri
            .as_deref()
            .filter(|_| flow.flow == "redirect"),
    };
    let result = state.finch.exchange_code(&request).await;
    let answer = match result {
        Ok(answer) => answer,
        Err(error) => {
            let mut conn = state.db.get().await?;
            let failure = failure::from_finch_error(&error);
            finish_failed(
                &mut conn,
                admin,
                &flow,
                attempt_id,
                failure,
                Some((&error, sent_at)),
                None,
            )
            .await?;
            return Ok(Outcome::Attempt { attempt_id });
        }
    };

    // 9. The token is for the customer this flow was started for, or it is discarded.
    let token = answer.value;
    if token
        .customer_id
        .as_deref()
        .is_some_and(|c| c != flow.customer_id)
    {
        tracing::error!(flow_id = %flow.id, finch_connection_id = %token.connection_id, "customer_id mismatch; token discarded");
        let mut conn = state.db.get().await?;
        finish_exchange(
            &mut conn,
            admin,
            attempt_id,
            &token,
            "failed",
            failure::CUSTOMER_MISMATCH,
            sent_at,
            answer.latency,
            answer.request_id.as_deref(),
            None,
        )
        .await?;
        mark_flow(
            &mut conn,
            admin,
            flow.id,
            "failed",
            Some(failure::CUSTOMER_MISMATCH.category),
            None,
        )
        .await?;
        return Ok(Outcome::Attempt { attempt_id });
    }

    // 10. Store connection + encrypted token + finished ledger row in one transaction; retry the
    // write (never the exchange): a few times when the database answers with an error, for as
    // long as a restart or failover takes when it cannot be reached. If the token cannot be
    // stored, record that and let the token go.
    let write_started = std::time::Instant::now();
    let mut pause = FIRST_STORE_PAUSE;
    let mut refused = 0;
    let mut last_error = None;
    for write in 1.. {
        let attempt = match state.db.get().await {
            Ok(mut conn) => store(
                state,
                &mut conn,
                admin,
                &flow,
                attempt_id,
                &token,
                sent_at,
                answer.latency,
                answer.request_id.as_deref(),
            )
            .await
            .map_err(|e| e.to_string()),
            Err(error) => Err(crate::db::describe_pool_error(&error)),
        };
        match attempt {
            Ok(connection_id) => {
                crate::telemetry::record_attempt("succeeded", "none", Some(answer.latency));
                return Ok(Outcome::Connected { connection_id });
            }
            Err(error) => {
                tracing::warn!(flow_id = %flow.id, write, error = %error, "storing the connection failed");
                last_error = Some(error);
            }
        }
        match flow_after_failed_write(state, admin, flow.id).await {
            // The commit went through although its answer was lost.
            AfterFailedWrite::Completed(connection_id) => {
                crate::telemetry::record_attempt("succeeded", "none", Some(answer.latency));
                return Ok(Outcome::Connected { connection_id });
            }
            // Someone else finished the flow (the reaper, after a very long stall): stop.
            AfterFailedWrite::NoLongerExchanging => break,
            AfterFailedWrite::Exchanging => {
                refused += 1;
                if refused >= STORE_ATTEMPTS {
                    break;
                }
            }
            AfterFailedWrite::Unreachable => {
                if write_started.elapsed() + pause > STORE_DEADLINE {
                    break;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_STORE_PAUSE);
    }
    tracing::error!(
        flow_id = %flow.id,
        finch_connection_id = %token.connection_id,
        error = ?last_error,
        "token received but not persisted; it has been discarded"
    );
    drop(token);
    let failure = failure::TOKEN_NOT_PERSISTED;
    let Ok(mut conn) = state.db.get().await else {
        tracing::error!(flow_id = %flow.id, %attempt_id, "token_not_persisted could not be recorded either; the reaper will mark the flow");
        crate::telemetry::record_attempt(
            "token_not_persisted",
            failure.category,
            Some(answer.latency),
        );
        return Ok(Outcome::Attempt { attempt_id });
    };
    let recorded = finish_exchange_minimal(
        &mut conn,
        admin,
        attempt_id,
        failure,
        sent_at,
        answer.latency,
        answer.request_id.as_deref(),
    )
    .await;
    let flow_marked = mark_flow(
        &mut conn,
        admin,
        flow.id,
        "token_not_persisted",
        Some(failure.category),
        None,
    )
    .await;
    if recorded.is_err() || flow_marked.is_err() {
        tracing::error!(flow_id = %flow.id, %attempt_id, "token_not_persisted could not be recorded either; the reaper will mark the flow");
    }
    crate::telemetry::record_attempt(
        "token_not_persisted",
        failure.category,
        Some(answer.latency),
    );
    Ok(Outcome::Attempt { attempt_id })
}

/// Where a flow stands after a failed write of its token.
enum AfterFailedWrite {
    /// Completed after all: a commit whose answer was lost.
    Completed(Uuid),
    /// Still ours to finish: the database refused the write.
    Exchanging,
    /// Finished by someone else.
    NoLongerExchanging,
    /// The database cannot be reached (restarting, failing over).
    Unreachable,
}

async fn flow_after_failed_write(
    state: &AppState,
    admin: &TenantAdmin,
    flow_id: Uuid,
) -> AfterFailedWrite {
    let Ok(mut conn) = state.db.get().await else {
        return AfterFailedWrite::Unreachable;
    };
    let tenant_id = admin.tenant.id;
    let flow = transaction(&mut conn, admin.scope(), async |conn| {
        flows::find(conn, tenant_id, flow_id).await
    })
    .await;
    match flow {
        Ok(Some(flow)) => match (flow.status.as_str(), flow.connection_id) {
            ("completed", Some(connection_id)) => AfterFailedWrite::Completed(connection_id),
            ("exchanging", _) => AfterFailedWrite::Exchanging,
            _ => AfterFailedWrite::NoLongerExchanging,
        },
        Ok(None) => AfterFailedWrite::NoLongerExchanging,
        Err(_) => AfterFailedWrite::Unreachable,
    }
}

async fn latest_attempt(
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    flow: &flows::Flow,
) -> Result<Outcome, AppError> {
    let flow_id = flow.id;
    let attempt = transaction(conn, admin.scope(), async |conn| {
        attempts::latest_of_flow(conn, flow_id).await
    })
    .await?;
    match attempt {
        Some(attempt) => Ok(Outcome::Attempt {
            attempt_id: attempt.id,
        }),
        None => Err(rejected(failure::STATE_EXPIRED)),
    }
}

async fn audit_refusal(
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    flow: &flows::Flow,
    action: &str,
) -> Result<(), AppError> {
    let flow_id = flow.id;
    let flow_tenant = flow.tenant_id;
    transaction(conn, Scope::System, async |conn| {
        audit::record(
            conn,
            audit::Event::new("tenant_admin", Some(admin.user.id), action)
                .tenant(flow_tenant)
                .target("connect_flow", flow_id)
                .details(serde_json::json!({ "request_tenant": admin.tenant.id })),
        )
        .await
    })
    .await?;
    Ok(())
}

/// Claims the pending flow and opens its ledger row, atomically. `None`: another request won.
async fn claim_and_open(
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    flow: &flows::Flow,
    received_at: chrono::DateTime<Utc>,
    state_missing: bool,
    stage: &str,
) -> Result<Option<Uuid>, crate::db::DbError> {
    let attempt_id = Uuid::new_v4();
    let claimed = transaction(conn, admin.scope(), async |conn| {
        let Some(claimed) = flows::claim(conn, flow.id, received_at).await? else {
            return Ok::<_, diesel::result::Error>(None);
        };
        attempts::insert(
            conn,
            &attempts::NewAttempt {
                id: attempt_id,
                tenant_id: claimed.tenant_id,
                flow_id: Some(claimed.id),
                user_id: Some(admin.user.id),
                stage,
                flow_kind: Some(&claimed.flow),
                is_reauth: claimed.reauth_connection_id.is_some(),
                state_missing,
                credentials_version: Some(claimed.credentials_version),
                callback_received_at: Some(received_at),
                started_at: Utc::now(),
            },
        )
        .await?;
        Ok(Some(attempt_id))
    })
    .await?;
    Ok(claimed)
}

async fn mark_flow(
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    flow_id: Uuid,
    to: &str,
    category: Option<&str>,
    connection_id: Option<Uuid>,
) -> Result<(), AppError> {
    transaction(conn, admin.scope(), async |conn| {
        flows::finish(
            conn,
            flow_id,
            "exchanging",
            to,
            category,
            connection_id,
            Utc::now(),
        )
        .await
    })
    .await?;
    Ok(())
}

/// Finishes an open ledger row and the flow as failed.
async fn finish_failed(
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    flow: &flows::Flow,
    attempt_id: Uuid,
    failure: Failure,
    error: Option<(&FinchError, chrono::DateTime<Utc>)>,
    detail: Option<&str>,
) -> Result<(), AppError> {
    let now = Utc::now();
    let finch_error = error.map(|(e, _)| e);
    let message = match (finch_error.and_then(FinchError::body), detail) {
        (Some(body), _) => Some(attempts::sanitize(&body.message, 1000)),
        (None, Some(detail)) => Some(attempts::sanitize(detail, 1000)),
        (None, None) => finch_error.map(|e| e.to_string()),
    };
    let shown = format!("{} {}", failure.title, failure.next_step);
    let latency = finch_error.and_then(FinchError::latency);
    let flow_id = flow.id;
    transaction(conn, admin.scope(), async |conn| {
        attempts::finish(
            conn,
            attempt_id,
            &attempts::Finish {
                exchange_sent_at: error.map(|(_, sent)| sent),
                answered_at: finch_error.and_then(FinchError::status).map(|_| now),
                finished_at: Some(now),
                latency_ms: latency.map(|l| i32::try_from(l.as_millis()).unwrap_or(i32::MAX)),
                outcome: Some("failed"),
                category: Some(failure.category),
                actor: Some(failure.actor.as_str()),
                finch_status: finch_error
                    .and_then(FinchError::status)
                    .and_then(|s| i16::try_from(s).ok()),
                finch_error_name: finch_error
                    .and_then(FinchError::body)
                    .map(|b| b.name.as_str()),
                finch_code: finch_error
                    .and_then(FinchError::body)
                    .and_then(|b| b.finch_code.as_deref()),
                message: message.as_deref(),
                shown_to_user: Some(&shown),
                finch_request_id: finch_error.and_then(FinchError::request_id),
                ..Default::default()
            },
        )
        .await?;
        flows::finish(
            conn,
            flow_id,
            "exchanging",
            "failed",
            Some(failure.category),
            None,
            now,
        )
        .await
    })
    .await?;
    crate::telemetry::record_attempt("failed", failure.category, latency);
    Ok(())
}

#[expect(clippy::too_many_arguments, reason = "the ledger row's columns")]
async fn finish_exchange(
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    attempt_id: Uuid,
    token: &TokenResponse,
    outcome: &str,
    failure: Failure,
    sent_at: chrono::DateTime<Utc>,
    latency: Duration,
    request_id: Option<&str>,
    connection_id: Option<Uuid>,
) -> Result<(), AppError> {
    let now = Utc::now();
    let shown = format!("{} {}", failure.title, failure.next_step);
    transaction(conn, admin.scope(), async |conn| {
        attempts::finish(
            conn,
            attempt_id,
            &attempts::Finish {
                exchange_sent_at: Some(sent_at),
                answered_at: Some(now),
                finished_at: Some(now),
                latency_ms: Some(i32::try_from(latency.as_millis()).unwrap_or(i32::MAX)),
                outcome: Some(outcome),
                category: Some(failure.category),
                actor: Some(failure.actor.as_str()),
                finch_status: Some(200),
                message: Some(
                    "Finch returned a token for a different customer_id than this flow's",
                ),
                shown_to_user: Some(&shown),
                finch_request_id: request_id,
                provider_id: Some(&token.provider_id),
                finch_connection_id: Some(&token.connection_id),
                connection_id,
                ..Default::default()
            },
        )
        .await
    })
    .await?;
    crate::telemetry::record_attempt(outcome, failure.category, Some(latency));
    Ok(())
}

async fn finish_exchange_minimal(
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    attempt_id: Uuid,
    failure: Failure,
    sent_at: chrono::DateTime<Utc>,
    latency: Duration,
    request_id: Option<&str>,
) -> Result<usize, crate::db::DbError> {
    let now = Utc::now();
    let shown = format!("{} {}", failure.title, failure.next_step);
    Ok(transaction(conn, admin.scope(), async |conn| {
        attempts::finish(
            conn,
            attempt_id,
            &attempts::Finish {
                exchange_sent_at: Some(sent_at),
                answered_at: Some(now),
                finished_at: Some(now),
                latency_ms: Some(i32::try_from(latency.as_millis()).unwrap_or(i32::MAX)),
                outcome: Some("token_not_persisted"),
                category: Some(failure.category),
                actor: Some(failure.actor.as_str()),
                finch_status: Some(200),
                shown_to_user: Some(&shown),
                finch_request_id: request_id,
                ..Default::default()
            },
        )
        .await
    })
    .await?)
}

/// One transaction: upsert the connection, seal and store the token (bound to tenant and
/// connection), finish the ledger row, complete the flow.
#[expect(
    clippy::too_many_arguments,
    reason = "everything the stored result is made of"
)]
async fn store(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    admin: &TenantAdmin,
    flow: &flows::Flow,
    attempt_id: Uuid,
    token: &TokenResponse,
    sent_at: chrono::DateTime<Utc>,
    latency: Duration,
    request_id: Option<&str>,
) -> Result<Uuid, StoreError> {
    let now = Utc::now();
    let tenant_id = flow.tenant_id;
    let products = token.products.clone();
    let entity_ids = token.entity_ids.clone();
    let client_type = serde_json::to_value(token.client_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    let connection_type = serde_json::to_value(token.connection_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    let shown = "Connected.";
    transaction(conn, Scope::Tenant(tenant_id), async |conn| {
        let connection = connections::upsert(
            conn,
            &connections::Upsert {
                tenant_id,
                finch_connection_id: &token.connection_id,
                provider_id: &token.provider_id,
                company_id: token.company_id.as_deref(),
                customer_id: token
                    .customer_id
                    .as_deref()
                    .or(Some(flow.customer_id.as_str())),
                customer_name: token
                    .customer_name
                    .as_deref()
                    .or(Some(flow.customer_name.as_str())),
                products: &products,
                entity_ids: &entity_ids,
                client_type: client_type.as_deref(),
                connection_type: connection_type.as_deref(),
                now,
            },
        )
        .await?;
        let sealed = state
            .vault
            .seal(
                &RowContext::new(Purpose::AccessToken, tenant_id, connection.id),
                token.access_token.expose_secret().as_bytes(),
            )
            .map_err(StoreError::Vault)?;
        tokens::upsert(
            conn,
            tenant_id,
            connection.id,
            sealed.kek_id.as_str(),
            &sealed.envelope,
            Some(flow.credentials_version),
        )
        .await?;
        let finished = attempts::finish(
            conn,
            attempt_id,
            &attempts::Finish {
                exchange_sent_at: Some(sent_at),
                answered_at: Some(now),
                finished_at: Some(now),
                latency_ms: Some(i32::try_from(latency.as_millis()).unwrap_or(i32::MAX)),
                outcome: Some("succeeded"),
                finch_status: Some(200),
                shown_to_user: Some(shown),
                finch_request_id: request_id,
                provider_id: Some(&token.provider_id),
                finch_connection_id: Some(&token.connection_id),
                connection_id: Some(connection.id),
                ..Default::default()
            },
        )
        .await?;
        if finished != 1 {
            return Err(StoreError::Conflict("the ledger row was already finished"));
        }
        if !flows::finish(
            conn,
            flow.id,
            "exchanging",
            "completed",
            None,
            Some(connection.id),
            now,
        )
        .await?
        {
            return Err(StoreError::Conflict("the flow was no longer exchanging"));
        }
        audit::record(
            conn,
            audit::Event::new(
                "tenant_admin",
                Some(admin.user.id),
                if flow.reauth_connection_id.is_some() {
                    "connection.reconnected"
                } else {
                    "connection.connected"
                },
            )
            .tenant(tenant_id)
            .target("connection", connection.id)
            .details(serde_json::json!({ "provider_id": token.provider_id, "flow": flow.flow })),
        )
        .await?;
        // Last, just before the commit: this update locks the key's one `keyring` row, which
        // every sealing transaction needs, so it is held for the commit alone instead of for the
        // statements above too (measured in benches/suite, see docs/benchmarks.md).
        keyring::count_wrap(conn, sealed.kek_id.as_str()).await?;
        Ok(connection.id)
    })
    .await
}

/// Why storing a received token failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error("sealing the token failed: {0}")]
    Vault(crate::vault::VaultError),
    #[error("{0}")]
    Conflict(&'static str),
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The callback's query string as actix's `web::Query` reads it.
    fn from_query(raw: &str) -> Option<CallbackInput> {
        serde_urlencoded::from_str(raw).ok()
    }

    proptest! {
        #[test]
        fn any_query_string_parses_or_is_refused_without_panicking(raw in any::<String>()) {
            if let Some(input) = from_query(&raw) {
                let _ = check_shape(input);
            }
        }

        #[test]
        fn any_json_body_parses_or_is_refused_without_panicking(raw in any::<Vec<u8>>()) {
            if let Ok(input) = serde_json::from_slice::<CallbackInput>(&raw) {
                let _ = check_shape(input);
            }
        }

        #[test]
        fn what_passes_has_the_promised_shape(
            code in proptest::option::of(any::<String>()),
            state in proptest::option::of(any::<String>()),
            error in proptest::option::of(any::<String>()),
        ) {
            let input = CallbackInput {
                code: code.map(SecretString::from),
                state: state.map(SecretString::from),
                error,
                error_description: None,
            };
            if let Ok(shaped) = check_shape(input) {
                prop_assert!(shaped.code.is_some() || shaped.error.is_some());
                if let Some(code) = &shaped.code {
                    prop_assert!(valid_code(code.expose_secret()));
                }
                if let Some(state) = &shaped.state {
                    prop_assert_eq!(state.expose_secret().len(), STATE_LEN);
                }
            }
        }

        #[test]
        fn a_well_formed_callback_always_passes(
            code in "[A-Za-z0-9._~-]{1,256}",
            state in "[A-Za-z0-9_-]{43}",
        ) {
            let query = format!("code={code}&state={state}");
            let input = from_query(&query).expect("a plain query parses");
            let shaped = check_shape(input).expect("a well-formed callback passes");
            prop_assert_eq!(shaped.code.map(|c| c.expose_secret().to_owned()), Some(code));
            prop_assert_eq!(shaped.state.map(|s| s.expose_secret().to_owned()), Some(state));
        }

        #[test]
        fn a_state_of_any_other_length_is_refused(state in "[A-Za-z0-9_-]{0,200}") {
            prop_assume!(state.len() != STATE_LEN);
            let input = CallbackInput {
                code: Some(SecretString::from("abc")),
                state: Some(SecretString::from(state)),
                ..CallbackInput::default()
            };
            prop_assert!(check_shape(input).is_err());
        }
    }
}
