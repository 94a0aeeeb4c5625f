//! `GET /ops/exchanges/{id}`: one attempt — its timeline, Finch's answer, what the tenant admin was
//! shown, its review, and other attempts of the same tenant; `POST /ops/exchanges/{id}/review`:
//! acknowledge, resolve (with a note) or reopen it, audited.

use actix_session::Session;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::console::ledger::{self, ListRow, Review};
use crate::db::models::attempts::Attempt;
use crate::db::models::{audit, flows, tenants, users};
use crate::db::{Scope, transaction};
use crate::domain::failure;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Operator, PageContext, flash};

/// Longest review note.
pub const MAX_NOTE: usize = 2000;

/// One step of the attempt's timeline.
struct Step {
    when: DateTime<Utc>,
    what: &'static str,
    detail: String,
}

fn timeline(attempt: &Attempt, flow: Option<&flows::Flow>) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(flow) = flow {
        steps.push(Step {
            when: flow.created_at,
            what: "Flow started",
            detail: format!(
                "{} flow{}, products {}",
                flow.flow,
                if flow.reauth_connection_id.is_some() {
                    " (reconnect)"
                } else {
                    ""
                },
                flow.products.join(", ")
            ),
        });
        if let Some(at) = flow.finch_session_created_at {
            steps.push(Step {
                when: at,
                what: "Connect session created",
                detail: format!("valid {} minutes", flow.minutes_to_expire),
            });
        }
    }
    if let Some(at) = attempt.callback_received_at {
        steps.push(Step {
            when: at,
            what: "Callback received",
            detail: if attempt.state_missing {
                "without a state parameter (matched by browser session)".to_owned()
            } else {
                String::new()
            },
        });
    }
    steps.push(Step {
        when: attempt.started_at,
        what: "Ledger row written",
        detail: format!("stage {}", attempt.stage),
    });
    if let Some(at) = attempt.exchange_sent_at {
        steps.push(Step {
            when: at,
            what: "Exchange sent",
            detail: "POST /auth/token".to_owned(),
        });
    }
    if let Some(at) = attempt.answered_at {
        steps.push(Step {
            when: at,
            what: "Finch answered",
            detail: attempt
                .finch_status
                .map(|s| format!("HTTP {s}"))
                .unwrap_or_default(),
        });
    }
    if let Some(at) = attempt.finished_at {
        let outcome = attempt.outcome.as_deref().unwrap_or_default();
        steps.push(Step {
            when: at,
            what: if outcome == "succeeded" {
                "Stored"
            } else {
                "Failed"
            },
            detail: attempt
                .category
                .clone()
                .unwrap_or_else(|| outcome.to_owned()),
        });
    }
    steps.sort_by_key(|s| s.when);
    steps
}

#[derive(Template)]
#[template(path = "ops/exchange.html")]
struct ExchangePage {
    page: PageContext,
    attempt: Attempt,
    tenant: tenants::Tenant,
    flow: Option<flows::Flow>,
    steps: Vec<Step>,
    failure: Option<failure::Failure>,
    reviewer: Option<String>,
    related: Vec<ListRow>,
    is_failure: bool,
}

impl ExchangePage {
    fn when(&self, t: &DateTime<Utc>) -> String {
        t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
    }

    fn can(&self, review: &str) -> bool {
        self.is_failure
            && Review::parse(review).is_some_and(|r| {
                r.from_states()
                    .contains(&self.attempt.review_state.as_str())
            })
    }
}

fn parse_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound)
}

pub async fn show(
    operator: Operator,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&id)?;
    let mut conn = state.db.get().await?;
    let found = transaction(&mut conn, Scope::Operator, async |conn| {
        let Some(attempt) = ledger::find(conn, id).await? else {
            return Ok::<_, diesel::result::Error>(None);
        };
        let Some(tenant) = tenants::find(conn, attempt.tenant_id).await? else {
            return Ok(None);
        };
        let flow = match attempt.flow_id {
            Some(flow_id) => flows::find(conn, attempt.tenant_id, flow_id).await?,
            None => None,
        };
        let reviewer = match attempt.reviewed_by {
            Some(user) => users::find(conn, user).await?.map(|u| u.email),
            None => None,
        };
        let related = ledger::related(conn, &attempt, 10).await?;
        Ok(Some((attempt, tenant, flow, reviewer, related)))
    })
    .await?;
    drop(conn);
    let Some((attempt, tenant, flow, reviewer, related)) = found else {
        return Err(AppError::NotFound);
    };
    let page = ExchangePage {
        page: PageContext::new(&session, &operator.0, None)?,
        steps: timeline(&attempt, flow.as_ref()),
        failure: attempt.category.as_deref().and_then(failure::by_category),
        is_failure: attempt.outcome.as_deref().is_some_and(|o| o != "succeeded"),
        attempt,
        tenant,
        flow,
        reviewer,
        related,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(AppError::internal)?))
}

/// Every field defaults, so a malformed body never answers before the `Operator` check does.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReviewForm {
    action: String,
    note: String,
}

/// Checks a note: required to resolve, at most [`MAX_NOTE`] characters, control characters
/// (other than line breaks) dropped.
pub(super) fn parse_note(raw: &str, required: bool) -> Result<Option<String>, AppError> {
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

pub async fn review(
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
    let note = parse_note(&form.note, step == Review::Resolve)?;
    let now = state.clock.now();
    let reviewer = operator.0.id;
    let ip = super::tenants::client_ip(&req);
    let mut conn = state.db.get().await?;
    let reviewed = transaction(&mut conn, Scope::Operator, async |conn| {
        let Some(before) = ledger::review(conn, id, step, reviewer, note.as_deref(), now).await?
        else {
            return Ok::<_, diesel::result::Error>(None);
        };
        audit::record(
            conn,
            audit::Event::new("operator", Some(reviewer), step.action())
                .tenant(before.tenant_id)
                .target("exchange_attempt", id)
                .details(serde_json::json!({
                    "from": before.review_state,
                    "to": step.target(),
                    "category": before.category,
                    "note": note,
                }))
                .ip(ip.clone()),
        )
        .await?;
        Ok(Some(before))
    })
    .await?;
    if reviewed.is_none() {
        // No such failure, or the step does not apply to its current state (someone else was
        // quicker, or a double submit): say so on the attempt's page if it exists.
        let exists = transaction(&mut conn, Scope::Operator, async |conn| {
            ledger::find(conn, id).await
        })
        .await?;
        let Some(attempt) = exists else {
            return Err(AppError::NotFound);
        };
        flash(
            &session,
            "error",
            format!(
                "Nothing changed: this attempt is {} and cannot be {}.",
                if attempt.outcome.as_deref() == Some("succeeded") {
                    "a success".to_owned()
                } else {
                    attempt.review_state.clone()
                },
                step.target()
            ),
        )?;
    } else {
        flash(&session, "ok", format!("Marked {}.", step.target()))?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("/ops/exchanges/{id}")))
        .finish())
}
