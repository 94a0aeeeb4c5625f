//! The ledger rows of Connect attempts: how a failure is classified and written, in one place for
//! the start of a flow, its callback and the reaper.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::Actor;
use crate::db::models::{attempts, flows};
use crate::db::transaction;
use crate::domain::failure::{self, Failure};
use crate::domain::text;
use crate::error::AppError;
use crate::finch::client::FinchError;

/// Longest message (Finch's, or our own detail) kept on a ledger row.
const MAX_MESSAGE: usize = 1000;

/// Classifies a failed call to Finch.
pub fn failure_of(error: &FinchError) -> Failure {
    match error {
        FinchError::Api { status, body, .. } => {
            let name = body.as_ref().map(|b| b.name.as_str()).unwrap_or_default();
            match (*status, name) {
                (_, "invalid_grant_error") => failure::INVALID_GRANT,
                (_, "invalid_client_error") => failure::INVALID_CLIENT,
                (401, _) | (403, _) => failure::INVALID_CLIENT,
                (429, _) => failure::RATE_LIMITED,
                (400 | 404 | 422, _) => failure::FINCH_BAD_REQUEST,
                (500..=599, _) => failure::FINCH_SERVER_ERROR,
                _ => failure::FINCH_UNEXPECTED,
            }
        }
        FinchError::Unreachable { .. } => failure::FINCH_UNREACHABLE,
        FinchError::Timeout { .. } => failure::FINCH_TIMEOUT,
        FinchError::ConnectionLost { .. } => failure::FINCH_CONNECTION_LOST,
        FinchError::Malformed { .. } => failure::FINCH_MALFORMED,
        FinchError::Redirected { .. } => failure::FINCH_REDIRECTED,
    }
}

/// What the tenant admin is shown for a failure: its title and the next step.
pub fn shown(failure: Failure) -> String {
    format!("{} {}", failure.title, failure.next_step)
}

/// Milliseconds for `latency_ms`, saturating.
pub fn millis(latency: Duration) -> i32 {
    i32::try_from(latency.as_millis()).unwrap_or(i32::MAX)
}

/// How a failed attempt's ledger row ends: the failure's classification, Finch's error when
/// there was one (status, name, code, sanitized message, request id, latency), otherwise a
/// sanitized detail of ours, and what the admin was shown.
pub struct FailedRow<'a> {
    failure: Failure,
    error: Option<&'a FinchError>,
    message: Option<String>,
    shown: String,
}

impl<'a> FailedRow<'a> {
    /// A failure with nothing from Finch (yet).
    pub fn new(failure: Failure) -> Self {
        Self {
            failure,
            error: None,
            message: None,
            shown: shown(failure),
        }
    }

    /// A failed call to Finch, classified.
    pub fn from_finch(error: &'a FinchError) -> Self {
        Self::new(failure_of(error)).finch_error(error)
    }

    /// Finch's error: its message wins over any detail.
    #[must_use]
    pub fn finch_error(mut self, error: &'a FinchError) -> Self {
        self.error = Some(error);
        self.message = Some(match error.body() {
            Some(body) => text::sanitize(&body.message, MAX_MESSAGE),
            None => self.message.take().unwrap_or_else(|| error.to_string()),
        });
        self
    }

    /// Our own words for what happened, when Finch said nothing.
    #[must_use]
    pub fn detail(mut self, detail: &str) -> Self {
        if self.error.and_then(FinchError::body).is_none() {
            self.message = Some(text::sanitize(detail, MAX_MESSAGE));
        }
        self
    }

    pub fn failure(&self) -> Failure {
        self.failure
    }

    /// Finch's latency, when its answer (or the timeout) was measured.
    pub fn latency(&self) -> Option<Duration> {
        self.error.and_then(FinchError::latency)
    }

    /// The row's closing columns at `now`; `sent_at` when the request reached the wire (then the
    /// time Finch answered is `now`, if it answered with a status at all).
    pub fn finish(
        &self,
        now: DateTime<Utc>,
        sent_at: Option<DateTime<Utc>>,
    ) -> attempts::Finish<'_> {
        let status = self.error.and_then(FinchError::status);
        let body = self.error.and_then(FinchError::body);
        attempts::Finish {
            exchange_sent_at: sent_at,
            answered_at: sent_at.and(status).map(|_| now),
            finished_at: Some(now),
            latency_ms: self.latency().map(millis),
            outcome: Some("failed"),
            category: Some(self.failure.category),
            actor: Some(self.failure.actor.as_str()),
            finch_status: status.and_then(|s| i16::try_from(s).ok()),
            finch_error_name: body.map(|b| b.name.as_str()),
            finch_code: body.and_then(|b| b.finch_code.as_deref()),
            message: self.message.as_deref(),
            shown_to_user: Some(&self.shown),
            finch_request_id: self.error.and_then(FinchError::request_id),
            ..Default::default()
        }
    }
}

/// Writes a finished ledger row for a failure that happened before (or instead of) an exchange:
/// opened and closed in one transaction. Returns its id.
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    flow: Option<&flows::Flow>,
    stage: &str,
    row: &FailedRow<'_>,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Uuid, AppError> {
    let id = Uuid::new_v4();
    let now = now.max(started_at);
    transaction(conn, actor.scope(), async |conn| {
        attempts::insert(
            conn,
            &attempts::NewAttempt {
                id,
                tenant_id: actor.tenant_id,
                flow_id: flow.map(|f| f.id),
                user_id: actor.user_id,
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
        attempts::finish(conn, actor.tenant_id, id, &row.finish(now, None)).await
    })
    .await?;
    crate::telemetry::record_attempt("failed", row.failure().category, None);
    Ok(id)
}

/// Finishes an open ledger row and its exchanging flow as failed, in one transaction.
pub async fn finish_failed(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    flow_id: Uuid,
    attempt_id: Uuid,
    row: &FailedRow<'_>,
    sent_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let tenant_id = actor.tenant_id;
    let category = row.failure().category;
    transaction(conn, actor.scope(), async |conn| {
        attempts::finish(conn, tenant_id, attempt_id, &row.finish(now, sent_at)).await?;
        flows::finish(
            conn,
            tenant_id,
            flow_id,
            flows::Transition::failed("exchanging", category),
            now,
        )
        .await
    })
    .await?;
    crate::telemetry::record_attempt("failed", category, row.latency());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finch::wire::FinchErrorBody;

    fn api_error(status: u16, name: &str) -> FinchError {
        FinchError::Api {
            status,
            body: Some(Box::new(FinchErrorBody {
                code: status,
                name: name.to_owned(),
                finch_code: Some("invalid_request".into()),
                message: "bad\ncode".into(),
                status_code: None,
                status: None,
            })),
            request_id: Some("req-1".into()),
            retry_after_seconds: None,
            latency: Duration::from_millis(42),
        }
    }

    #[test]
    fn finch_errors_are_classified_by_name_then_status() {
        assert_eq!(
            failure_of(&api_error(400, "invalid_grant_error")),
            failure::INVALID_GRANT
        );
        assert_eq!(
            failure_of(&api_error(401, "anything")),
            failure::INVALID_CLIENT
        );
        assert_eq!(
            failure_of(&api_error(429, "rate_limit")),
            failure::RATE_LIMITED
        );
        assert_eq!(
            failure_of(&api_error(503, "server_error")),
            failure::FINCH_SERVER_ERROR
        );
        assert_eq!(
            failure_of(&api_error(418, "teapot")),
            failure::FINCH_UNEXPECTED
        );
        let timeout = FinchError::Timeout {
            timeout: Duration::from_secs(30),
            latency: Duration::from_secs(30),
        };
        assert_eq!(failure_of(&timeout), failure::FINCH_TIMEOUT);
    }

    #[test]
    fn a_failed_row_carries_finchs_answer_sanitized_and_what_the_admin_saw() {
        let error = api_error(400, "invalid_grant_error");
        let row = FailedRow::from_finch(&error).detail("ignored: Finch said why");
        let (now, sent) = (Utc::now(), Utc::now() - chrono::Duration::seconds(1));
        let finish = row.finish(now, Some(sent));
        assert_eq!(finish.outcome, Some("failed"));
        assert_eq!(finish.category, Some("invalid_grant"));
        assert_eq!(finish.finch_status, Some(400));
        assert_eq!(finish.finch_code, Some("invalid_request"));
        assert_eq!(finish.message, Some("bad code"));
        assert_eq!(finish.finch_request_id, Some("req-1"));
        assert_eq!(finish.latency_ms, Some(42));
        assert_eq!(
            (finish.exchange_sent_at, finish.answered_at),
            (Some(sent), Some(now))
        );
        assert!(
            finish
                .shown_to_user
                .is_some_and(|s| s.starts_with(failure::INVALID_GRANT.title))
        );
    }

    #[test]
    fn without_finch_a_failed_row_keeps_our_detail_and_no_answer_time() {
        let row = FailedRow::new(failure::USER_DENIED).detail("error=access_denied\n");
        let finish = row.finish(Utc::now(), None);
        assert_eq!(finish.message, Some("error=access_denied "));
        assert_eq!((finish.finch_status, finish.answered_at), (None, None));
        let unreachable = FinchError::Unreachable {
            detail: "refused".into(),
            attempts: 3,
        };
        let row = FailedRow::from_finch(&unreachable);
        let finish = row.finish(Utc::now(), Some(Utc::now()));
        assert_eq!(finish.answered_at, None, "no status, so no answer");
        assert!(finish.message.is_some_and(|m| !m.is_empty()));
    }
}
