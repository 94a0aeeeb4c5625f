//! `GET /ops/tenants`: every tenant with its health (sortable, worst first by default), and the
//! form to create one; `POST /ops/tenants` creates it.

pub mod detail;
pub mod disable_user;
pub mod invite;
pub mod user_recovery;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::health::{self, Sort, TenantHealth};
use crate::db::{Scope, transaction};
use crate::domain::Slug;
use crate::error::AppError;
use crate::onboarding::{self, Actor, OnboardingError};
use crate::state::AppState;
use crate::web::{Operator, PageContext, flash, render_with, see_other};

#[derive(Template)]
#[template(path = "ops/tenants.html")]
struct TenantsPage<'a> {
    page: PageContext,
    tenants: Vec<TenantHealth>,
    sort: &'static str,
    slug: &'a str,
    name: &'a str,
    error: Option<String>,
}

async fn render(
    status: StatusCode,
    operator: &Operator,
    state: &AppState,
    session: &Session,
    form: &CreateForm,
    error: Option<String>,
    sort: Sort,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let all = crate::db::run(&state.db, Scope::Operator, async |conn| {
        health::list(conn, now, None, sort).await
    })
    .await?;
    let page = TenantsPage {
        page: PageContext::new(session, &operator.0, None)?,
        tenants: all,
        sort: sort.as_str(),
        slug: &form.slug,
        name: &form.name,
        error,
    };
    render_with(status, &page)
}

/// `?sort=worst|open|slug`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    sort: String,
}

pub async fn list(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let sort = web::Query::<ListQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| Sort::parse(q.sort.trim()))
        .ok_or_else(|| {
            AppError::BadRequest("Unknown sort order: use worst, open or slug.".into())
        })?;
    render(
        StatusCode::OK,
        &operator,
        &state,
        &session,
        &CreateForm::default(),
        None,
        sort,
    )
    .await
}

/// Every field defaults, so a malformed body never answers before the `Operator` check does.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateForm {
    slug: String,
    name: String,
}

pub async fn create(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let parsed = Slug::parse(&form.slug)
        .map_err(|e| e.to_string())
        .and_then(|slug| {
            onboarding::parse_tenant_name(&form.name)
                .map(|name| (slug, name))
                .map_err(|e| e.to_string())
        });
    let (slug, name) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => {
            return render(
                StatusCode::BAD_REQUEST,
                &operator,
                &state,
                &session,
                &form,
                Some(problem),
                Sort::default(),
            )
            .await;
        }
    };
    let actor = Actor::operator(operator.0.id, crate::web::client_ip(&req));
    let mut conn = state.db.get().await?;
    let created = transaction(&mut conn, Scope::Operator, async |conn| {
        onboarding::create_tenant(conn, &slug, &name, &actor).await
    })
    .await;
    drop(conn);
    match created {
        Ok(tenant) => {
            flash(
                &session,
                "ok",
                format!(
                    "Created tenant {}. Invite its first admin below.",
                    tenant.slug
                ),
            )?;
            Ok(see_other(format!("/ops/tenants/{}", tenant.slug)))
        }
        Err(e @ OnboardingError::SlugTaken(_)) => {
            let status = StatusCode::CONFLICT;
            render(
                status,
                &operator,
                &state,
                &session,
                &form,
                Some(e.to_string()),
                Sort::default(),
            )
            .await
        }
        Err(e) => Err(AppError::internal(e)),
    }
}
