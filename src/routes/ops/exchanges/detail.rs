//! `GET /ops/exchanges/{id}`: one attempt — its timeline, Finch's answer, what the tenant admin was
//! shown, its review, and other attempts of the same tenant.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::console::ledger::{self, ListRow};
use crate::console::review::Review;
use crate::db::Scope;
use crate::db::models::attempts::Attempt;
use crate::db::models::{flows, tenants, users};
use crate::domain::failure;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Operator, PageContext, render};

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

pub(super) fn parse_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound)
}

pub async fn show(
    operator: Operator,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id(&id)?;
    let found = crate::db::run(&state.db, Scope::Operator, async |conn| {
        let Some(attempt) = ledger::find(conn, id).await? else {
            return Ok(None);
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
    let Some((attempt, tenant, flow, reviewer, related)) = found else {
        return Err(AppError::NotFound);
    };
    render(&ExchangePage {
        page: PageContext::new(&session, &operator.0, None)?,
        steps: timeline(&attempt, flow.as_ref()),
        failure: attempt.category.as_deref().and_then(failure::by_category),
        is_failure: attempt.outcome.as_deref().is_some_and(|o| o != "succeeded"),
        attempt,
        tenant,
        flow,
        reviewer,
        related,
    })
}
