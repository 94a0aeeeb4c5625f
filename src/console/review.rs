//! Triage: acknowledge, resolve (with a note) or reopen one failure, or resolve every failure of
//! a filtered set at once; each an audit event in the same transaction as the change.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::console::filter::Filter;
use crate::console::ledger;
use crate::db::models::attempts::Attempt;
use crate::db::models::audit;
use crate::db::prelude::*;
use crate::db::schema::exchange_attempts;
use crate::db::{Pool, Scope};
use crate::error::AppError;

/// Longest review note.
pub const MAX_NOTE: usize = 2000;

/// Checks a note: required to resolve, at most [`MAX_NOTE`] characters, control characters
/// (other than line breaks) dropped.
pub fn parse_note(raw: &str, required: bool) -> Result<Option<String>, AppError> {
    let note: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    if note.chars().count() > MAX_NOTE {
        return Err(AppError::BadRequest(format!(
            "A note has at most {MAX_NOTE} characters."
        )));
    }
    if note.is_empty() {
        if required {
            return Err(AppError::BadRequest(
                "Resolving needs a note: say what was done or why nothing needs doing.".into(),
            ));
        }
        return Ok(None);
    }
    Ok(Some(note))
}

/// Who reviews: an operator, from a client address, at a time.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub user_id: Uuid,
    pub ip: Option<String>,
    pub now: DateTime<Utc>,
}

/// A triage step on one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Acknowledge,
    Resolve,
    Reopen,
}

impl Review {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "acknowledge" => Some(Self::Acknowledge),
            "resolve" => Some(Self::Resolve),
            "reopen" => Some(Self::Reopen),
            _ => None,
        }
    }

    /// The review state it leads to.
    pub fn target(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledged",
            Self::Resolve => "resolved",
            Self::Reopen => "open",
        }
    }

    /// The states it may start from.
    pub fn from_states(self) -> &'static [&'static str] {
        match self {
            Self::Acknowledge => &["open"],
            Self::Resolve => &["open", "acknowledged"],
            Self::Reopen => &["acknowledged", "resolved"],
        }
    }

    /// The audit action.
    pub fn action(self) -> &'static str {
        match self {
            Self::Acknowledge => "exchange.acknowledged",
            Self::Resolve => "exchange.resolved",
            Self::Reopen => "exchange.reopened",
        }
    }
}

/// Applies `review` to a finished failure if its current state allows it; returns the row as it
/// was before (None: no such failure, or the step does not apply to its state).
async fn apply(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    review: Review,
    reviewer: Uuid,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<Option<Attempt>> {
    use exchange_attempts::dsl as a;
    // Lock the row so that the state read for the audit event is the one replaced.
    let Some(before) = a::exchange_attempts
        .find(id)
        .filter(a::outcome.ne("succeeded"))
        .filter(a::review_state.eq_any(review.from_states()))
        .select(Attempt::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    diesel::update(a::exchange_attempts.find(id))
        .set((
            a::review_state.eq(review.target()),
            a::reviewed_by.eq(Some(reviewer)),
            a::reviewed_at.eq(Some(now)),
            a::review_note.eq(note),
        ))
        .execute(conn)
        .await?;
    Ok(Some(before))
}

/// Reviews the failure `id` with `step` and audits it; returns the row as it was before (`None`:
/// no such failure, or the step does not apply to its state).
pub async fn review_one(
    pool: &Pool,
    id: Uuid,
    step: Review,
    note: Option<&str>,
    reviewer: &Reviewer,
) -> Result<Option<Attempt>, AppError> {
    let reviewed = crate::db::run(pool, Scope::Operator, async |conn| {
        let Some(before) = apply(conn, id, step, reviewer.user_id, note, reviewer.now).await?
        else {
            return Ok(None);
        };
        let event = audit::Event::new("operator", Some(reviewer.user_id), step.action())
            .tenant(before.tenant_id)
            .target("exchange_attempt", id)
            .details(serde_json::json!({
                "from": before.review_state,
                "to": step.target(),
                "category": before.category,
                "note": note,
            }))
            .ip(reviewer.ip.clone());
        audit::record(conn, event).await?;
        Ok(Some(before))
    })
    .await?;
    Ok(reviewed)
}

/// Resolves every open or acknowledged failure matching `filter` that started at or before
/// `as_of` (what the operator saw), with one note and one audit event carrying the count and the
/// filter. Returns the count.
pub async fn resolve_matching(
    pool: &Pool,
    filter: &Filter,
    as_of: DateTime<Utc>,
    note: &str,
    reviewer: &Reviewer,
) -> Result<i64, AppError> {
    let query = filter.query_string();
    let count = crate::db::run(pool, Scope::Operator, async |conn| {
        let count =
            ledger::resolve_all(conn, filter, as_of, reviewer.user_id, note, reviewer.now).await?;
        // Many rows, so a kind of target and no one id.
        let event = audit::Event {
            target_type: Some("exchange_attempt"),
            ..audit::Event::new("operator", Some(reviewer.user_id), "exchange.bulk_resolved")
        }
        .details(serde_json::json!({
            "count": count,
            "filter": query,
            "as_of": as_of,
            "note": note,
        }))
        .ip(reviewer.ip.clone());
        audit::record(conn, event).await?;
        Ok(count)
    })
    .await?;
    Ok(count)
}
