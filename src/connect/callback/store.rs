//! After Finch answered with a token: verify it is for this flow's customer, then store the
//! connection, the sealed token and the finished ledger row in one transaction, retrying the
//! write (never the exchange, SECURITY.md RL-4); if it cannot be stored, record that and let the
//! token go.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use super::Outcome;
use crate::connect::Actor;
use crate::connect::ledger::{millis, shown};
use crate::db::models::flows::{self, Flow, Transition};
use crate::db::models::{attempts, audit, connections, keyring, tokens};
use crate::db::{Scope, transaction};
use crate::domain::failure::{self, Failure};
use crate::error::AppError;
use crate::finch::wire::TokenResponse;
use crate::state::AppState;
use crate::vault::{Purpose, RowContext};

/// Database write attempts for a received token that the database refuses (an error answer),
/// before giving up; the exchange is never repeated.
const STORE_ATTEMPTS: u32 = 3;
/// How long the write of a received token is retried while the database cannot be reached at
/// all: long enough for a restart or failover, well inside the reaper's
/// [`EXCHANGE_DEADLINE`](crate::connect::reaper::EXCHANGE_DEADLINE) together with the exchange's
/// timeout.
const STORE_DEADLINE: Duration = Duration::from_secs(15);
/// The first pause between write attempts; it doubles up to [`MAX_STORE_PAUSE`].
const FIRST_STORE_PAUSE: Duration = Duration::from_millis(100);
const MAX_STORE_PAUSE: Duration = Duration::from_secs(2);

/// The facts of an exchange Finch answered with a token (the token itself travels apart, so that
/// it can be dropped while these are still recorded).
pub struct Exchange<'a> {
    pub actor: Actor,
    pub flow: &'a Flow,
    pub attempt_id: Uuid,
    pub sent_at: DateTime<Utc>,
    pub latency: Duration,
    pub request_id: Option<String>,
}

impl Exchange<'_> {
    /// The closing columns of the ledger row of an exchange Finch answered with a token.
    fn answered(&self, now: DateTime<Utc>, outcome: &'static str) -> attempts::Finish<'_> {
        attempts::Finish {
            exchange_sent_at: Some(self.sent_at),
            answered_at: Some(now),
            finished_at: Some(now),
            latency_ms: Some(millis(self.latency)),
            outcome: Some(outcome),
            finch_status: Some(200),
            finch_request_id: self.request_id.as_deref(),
            ..Default::default()
        }
    }

    /// Ends the ledger row (`finish`, for `failure`) and the flow as `outcome`, in one
    /// transaction.
    async fn give_up(
        &self,
        conn: &mut AsyncPgConnection,
        now: DateTime<Utc>,
        failure: Failure,
        finish: attempts::Finish<'_>,
    ) -> Result<(), crate::db::DbError> {
        let shown = shown(failure);
        let outcome = finish.outcome.unwrap_or("failed");
        let finish = attempts::Finish {
            category: Some(failure.category),
            actor: Some(failure.actor.as_str()),
            shown_to_user: Some(&shown),
            ..finish
        };
        let (tenant_id, attempt_id, flow_id) =
            (self.actor.tenant_id, self.attempt_id, self.flow.id);
        let to = Transition::to("exchanging", outcome).category(failure.category);
        transaction(conn, self.actor.scope(), async |conn| {
            attempts::finish(conn, tenant_id, attempt_id, &finish).await?;
            flows::finish(conn, tenant_id, flow_id, to, now).await
        })
        .await?;
        Ok(())
    }
}

/// The token is for the customer this flow was started for, or it is discarded and the attempt
/// fails (SECURITY.md OA-3). Returns the outcome when it was discarded.
pub async fn refuse_other_customer(
    state: &AppState,
    exchange: &Exchange<'_>,
    token: &TokenResponse,
) -> Result<Option<Outcome>, AppError> {
    if token
        .customer_id
        .as_deref()
        .is_none_or(|c| c == exchange.flow.customer_id)
    {
        return Ok(None);
    }
    tracing::error!(flow_id = %exchange.flow.id, finch_connection_id = %token.connection_id, "customer_id mismatch; token discarded");
    let failure = failure::CUSTOMER_MISMATCH;
    let mut conn = state.db.get().await?;
    let now = state.clock.now();
    let finish = attempts::Finish {
        message: Some("Finch returned a token for a different customer_id than this flow's"),
        provider_id: Some(&token.provider_id),
        finch_connection_id: Some(&token.connection_id),
        ..exchange.answered(now, "failed")
    };
    exchange.give_up(&mut conn, now, failure, finish).await?;
    crate::telemetry::record_attempt("failed", failure.category, Some(exchange.latency));
    Ok(Some(Outcome::Attempt {
        attempt_id: exchange.attempt_id,
    }))
}

/// Stores the connection, retrying the write: a few times when the database answers with an
/// error, for as long as a restart or failover takes when it cannot be reached. If the token
/// cannot be stored, records `token_not_persisted` and lets the token go.
pub async fn store_with_retries(
    state: &AppState,
    exchange: &Exchange<'_>,
    token: TokenResponse,
) -> Outcome {
    let write_started = std::time::Instant::now();
    let mut pause = FIRST_STORE_PAUSE;
    let mut refused = 0;
    let mut last_error = None;
    for write in 1.. {
        let attempt = match state.db.get().await {
            Ok(mut conn) => store(state, &mut conn, exchange, &token)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(crate::db::describe_pool_error(&error)),
        };
        match attempt {
            Ok(connection_id) => return connected(exchange, connection_id),
            Err(error) => {
                tracing::warn!(flow_id = %exchange.flow.id, write, error = %error, "storing the connection failed");
                last_error = Some(error);
            }
        }
        match flow_after_failed_write(state, exchange).await {
            // The commit went through although its answer was lost.
            AfterFailedWrite::Completed(connection_id) => {
                return connected(exchange, connection_id);
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
        flow_id = %exchange.flow.id,
        finch_connection_id = %token.connection_id,
        error = ?last_error,
        "token received but not persisted; it has been discarded"
    );
    drop(token);
    not_persisted(state, exchange).await
}

fn connected(exchange: &Exchange<'_>, connection_id: Uuid) -> Outcome {
    crate::telemetry::record_attempt("succeeded", "none", Some(exchange.latency));
    Outcome::Connected { connection_id }
}

/// Records that a received token was not stored (it is gone already).
async fn not_persisted(state: &AppState, exchange: &Exchange<'_>) -> Outcome {
    let failure = failure::TOKEN_NOT_PERSISTED;
    let outcome = "token_not_persisted";
    let recorded = match state.db.get().await {
        Ok(mut conn) => {
            let now = state.clock.now();
            let finish = exchange.answered(now, outcome);
            exchange.give_up(&mut conn, now, failure, finish).await
        }
        Err(error) => Err(error.into()),
    };
    if recorded.is_err() {
        tracing::error!(flow_id = %exchange.flow.id, attempt_id = %exchange.attempt_id, "token_not_persisted could not be recorded either; the reaper will mark the flow");
    }
    crate::telemetry::record_attempt(outcome, failure.category, Some(exchange.latency));
    Outcome::Attempt {
        attempt_id: exchange.attempt_id,
    }
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

async fn flow_after_failed_write(state: &AppState, exchange: &Exchange<'_>) -> AfterFailedWrite {
    let (tenant_id, flow_id) = (exchange.actor.tenant_id, exchange.flow.id);
    let flow = crate::db::run(&state.db, exchange.actor.scope(), async |conn| {
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

/// One transaction: upsert the connection, seal and store the token (bound to tenant and
/// connection), finish the ledger row, complete the flow, audit.
async fn store(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    exchange: &Exchange<'_>,
    token: &TokenResponse,
) -> Result<Uuid, StoreError> {
    let now = state.clock.now();
    let flow = exchange.flow;
    let tenant_id = flow.tenant_id;
    let client_type = serde_json::to_value(token.client_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    let connection_type = serde_json::to_value(token.connection_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    transaction(conn, Scope::Tenant(tenant_id), async |conn| {
        let connection = connections::upsert(
            conn,
            &connections::Upsert {
                tenant_id,
                finch_connection_id: &token.connection_id,
                provider_id: &token.provider_id,
                company_id: token.company_id.as_deref(),
                customer_id: token.customer_id.as_deref().or(Some(&flow.customer_id)),
                customer_name: token.customer_name.as_deref().or(Some(&flow.customer_name)),
                products: &token.products,
                entity_ids: &token.entity_ids,
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
        let finish = attempts::Finish {
            shown_to_user: Some("Connected."),
            provider_id: Some(&token.provider_id),
            finch_connection_id: Some(&token.connection_id),
            connection_id: Some(connection.id),
            ..exchange.answered(now, "succeeded")
        };
        if attempts::finish(conn, tenant_id, exchange.attempt_id, &finish).await? != 1 {
            return Err(StoreError::Conflict("the ledger row was already finished"));
        }
        let completed = Transition::completed(connection.id);
        if !flows::finish(conn, tenant_id, flow.id, completed, now).await? {
            return Err(StoreError::Conflict("the flow was no longer exchanging"));
        }
        let action = if flow.reauth_connection_id.is_some() {
            "connection.reconnected"
        } else {
            "connection.connected"
        };
        audit::record(
            conn,
            audit::Event::new(exchange.actor.audit_kind(), exchange.actor.user_id, action)
                .tenant(tenant_id)
                .target("connection", connection.id)
                .details(
                    serde_json::json!({ "provider_id": token.provider_id, "flow": flow.flow }),
                ),
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
