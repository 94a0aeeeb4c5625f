//! `GET /t/{slug}/`: the tenant's connections.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::db::models::connections;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{PageContext, TenantAdmin, render};

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
    let tenant_id = admin.tenant.id;
    let list = crate::db::run(&state.db, admin.scope(), async |conn| {
        connections::list(conn, tenant_id).await
    })
    .await?;
    render(&HomePage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        connections: list,
    })
}
