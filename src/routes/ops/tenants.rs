//! `GET /ops/tenants`: every tenant.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::db::models::tenants;
use crate::db::{Scope, transaction};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Operator, PageContext};

#[derive(Template)]
#[template(path = "ops/tenants.html")]
struct TenantsPage {
    page: PageContext,
    tenants: Vec<tenants::Tenant>,
}

pub async fn list(
    operator: Operator,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db.get().await.map_err(crate::db::DbError::from)?;
    let all = transaction(&mut conn, Scope::Operator, async |conn| {
        tenants::list(conn).await
    })
    .await
    .map_err(crate::db::DbError::from)?;
    let page = TenantsPage {
        page: PageContext::new(&session, &operator.0, None)?,
        tenants: all,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(AppError::internal)?))
}
