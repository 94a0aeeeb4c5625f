//! `GET /t/{slug}/`: the tenant's connections.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::db::models::connections;
use crate::db::transaction;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{PageContext, TenantAdmin};

#[derive(Template)]
#[template(path = "tenant/home.html")]
struct HomePage {
    page: PageContext,
    connections: Vec<connections::Connection>,
}

pub async fn show(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db.get().await?;
    let tenant_id = admin.tenant.id;
    let list = transaction(&mut conn, admin.scope(), async |conn| {
        connections::list(conn, tenant_id).await
    })
    .await?;
    let page = HomePage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        connections: list,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(AppError::internal)?))
}
