//! `GET /t/{slug}/attempts` (the tenant's exchange history), `/attempts/{id}` (one attempt's
//! result: what happened and the next step), `/flows/{id}` (an attempt still in progress).

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use crate::db::models::{attempts, flows};
use crate::domain::failure;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{PageContext, TenantAdmin, render, see_other};

#[derive(Template)]
#[template(path = "tenant/attempts.html")]
struct ListPage {
    page: PageContext,
    attempts: Vec<attempts::Attempt>,
}

pub async fn list(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let tenant_id = admin.tenant.id;
    let rows = crate::db::run(&state.db, admin.scope(), async |conn| {
        attempts::list_for_tenant(conn, tenant_id, 200).await
    })
    .await?;
    render(&ListPage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        attempts: rows,
    })
}

#[derive(Template)]
#[template(path = "tenant/attempt.html")]
struct AttemptPage {
    page: PageContext,
    attempt: attempts::Attempt,
    title: String,
    next_step: String,
    who: &'static str,
}

pub async fn show(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let (tenant_id, id) = (admin.tenant.id, path.1);
    let attempt = crate::db::run(&state.db, admin.scope(), async |conn| {
        attempts::find(conn, tenant_id, id).await
    })
    .await?
    .ok_or(AppError::NotFound)?;
    let classified = attempt.category.as_deref().and_then(failure::by_category);
    let (title, next_step, who) = match (attempt.outcome.as_deref(), classified) {
        (Some("succeeded"), _) => (
            "Connected".to_owned(),
            "The connection is active.".to_owned(),
            "",
        ),
        (_, Some(f)) => (
            f.title.to_owned(),
            f.next_step.to_owned(),
            who_acts(f.actor),
        ),
        (None, _) => (
            "In progress".to_owned(),
            "This attempt has not finished yet.".to_owned(),
            "",
        ),
        _ => (
            "The attempt failed".to_owned(),
            "Connect again.".to_owned(),
            "",
        ),
    };
    render(&AttemptPage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        attempt,
        title,
        next_step,
        who,
    })
}

fn who_acts(actor: failure::Actor) -> &'static str {
    match actor {
        failure::Actor::EndUser => "You can fix this by connecting again.",
        failure::Actor::TenantAdmin => "A workspace admin needs to act.",
        failure::Actor::Operator => "finchgate's operators have been alerted.",
        failure::Actor::Nobody => "Nobody needs to change anything; try again later.",
    }
}

#[derive(Template)]
#[template(path = "tenant/flow.html")]
struct FlowPage {
    page: PageContext,
}

pub async fn in_progress(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let (tenant_id, id) = (admin.tenant.id, path.1);
    let (flow, attempt) = crate::db::run(&state.db, admin.scope(), async |conn| {
        let flow = flows::find(conn, tenant_id, id).await?;
        let attempt = attempts::latest_of_flow(conn, tenant_id, id).await?;
        Ok((flow, attempt))
    })
    .await?;
    let flow = flow.ok_or(AppError::NotFound)?;
    let slug = &admin.tenant.slug;
    let location = match (flow.status.as_str(), flow.connection_id, attempt) {
        ("completed", Some(connection_id), _) => {
            Some(format!("/t/{slug}/connections/{connection_id}"))
        }
        ("exchanging" | "pending", _, _) => None,
        (_, _, Some(attempt)) => Some(format!("/t/{slug}/attempts/{}", attempt.id)),
        _ => Some(format!("/t/{slug}/connect")),
    };
    if let Some(location) = location {
        return Ok(see_other(location));
    }
    let mut response = render(&FlowPage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
    })?;
    response.headers_mut().insert(
        actix_web::http::header::REFRESH,
        actix_web::http::header::HeaderValue::from_static("2"),
    );
    Ok(response)
}
