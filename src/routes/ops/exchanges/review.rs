//! `POST /ops/exchanges/{id}/review` (acknowledge, resolve with a note, or reopen one failure)
//! and `POST /ops/exchanges/resolve` (resolve every open or acknowledged failure of the filtered
//! set as the operator saw it: failures newer than the page are left alone). Each is audited
//! ([`crate::console::review`]).

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::bad_filter;
use super::detail::parse_id;
use crate::console::filter::{self, Filter, FilterError, RawFilter};
use crate::console::ledger;
use crate::console::review::{self, Review, Reviewer};
use crate::db::Scope;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Operator, client_ip, flash, see_other};

/// Every field defaults, so a malformed body never answers before the `Operator` check does.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReviewForm {
    action: String,
    note: String,
}

pub async fn one(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    form: web::Form<ReviewForm>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&id)?;
    let Some(step) = Review::parse(&form.action) else {
        return Err(AppError::BadRequest(
            "Unknown review action: use acknowledge, resolve or reopen.".into(),
        ));
    };
    let note = review::parse_note(&form.note, step == Review::Resolve)?;
    let reviewer = Reviewer {
        user_id: operator.0.id,
        ip: client_ip(&req),
        now: state.clock.now(),
    };
    let reviewed = review::review_one(&state.db, id, step, note.as_deref(), &reviewer).await?;
    if reviewed.is_some() {
        flash(&session, "ok", format!("Marked {}.", step.target()))?;
        return Ok(see_other(format!("/ops/exchanges/{id}")));
    }
    // No such failure, or the step does not apply to its current state (someone else was
    // quicker, or a double submit): say so on the attempt's page if it exists.
    let attempt = crate::db::run(&state.db, Scope::Operator, async |conn| {
        ledger::find(conn, id).await
    })
    .await?
    .ok_or(AppError::NotFound)?;
    let state_now = if attempt.outcome.as_deref() == Some("succeeded") {
        "a success".to_owned()
    } else {
        attempt.review_state
    };
    let message = format!(
        "Nothing changed: this attempt is {state_now} and cannot be {}.",
        step.target()
    );
    flash(&session, "error", message)?;
    Ok(see_other(format!("/ops/exchanges/{id}")))
}

/// The filter's fields, the note and the time the page was rendered.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResolveForm {
    #[serde(flatten)]
    filter: RawFilter,
    note: String,
    as_of: String,
}

pub async fn matching(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<ResolveForm>,
) -> Result<HttpResponse, AppError> {
    let filter = Filter::parse(&form.filter).map_err(bad_filter)?;
    let note = review::parse_note(&form.note, true)?.unwrap_or_default();
    let now = state.clock.now();
    let as_of = match form.as_of.trim() {
        "" => now,
        raw => DateTime::parse_from_rfc3339(raw)
            .map_err(|_| FilterError::Time {
                param: "as_of",
                value: raw.chars().take(40).collect(),
            })
            .and_then(|t| filter::in_range("as_of", raw, t.with_timezone(&Utc)))
            .map_err(bad_filter)?,
    };
    let reviewer = Reviewer {
        user_id: operator.0.id,
        ip: client_ip(&req),
        now,
    };
    let count = review::resolve_matching(&state.db, &filter, as_of, &note, &reviewer).await?;
    flash(
        &session,
        "ok",
        format!("Resolved {count} failure(s) matching the filter."),
    )?;
    Ok(see_other(format!(
        "/ops/exchanges?{}",
        filter.query_string()
    )))
}
