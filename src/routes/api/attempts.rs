//! `GET /api/v1/attempts`: the tenant's ledger of exchange attempts, newest first (scope
//! `connections:read`).

use actix_web::{HttpResponse, web};

use super::ok_json;
use crate::api::model::{AttemptList, AttemptOut};
use crate::api::pagination::{PageParams, PageRequest};
use crate::api::problem::{Problem, ProblemBody};
use crate::api::{ApiCaller, ApiQuery};
use crate::db::models::attempts;
use crate::domain::ApiScope;
use crate::state::AppState;

/// A page of the tenant's ledger.
#[utoipa::path(
    get,
    path = "/api/v1/attempts",
    operation_id = "list_attempts",
    tag = "attempts",
    params(PageParams),
    security(("api_key" = ["connections:read"])),
    responses(
        (status = 200, description = "A page of exchange attempts", body = AttemptList),
        (status = 401, description = "No valid key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks connections:read", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "A parameter was refused", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    caller: ApiCaller,
    state: web::Data<AppState>,
    query: ApiQuery<PageParams>,
) -> Result<HttpResponse, Problem> {
    caller.require(ApiScope::ConnectionsRead)?;
    let page = PageRequest::parse(query.0.cursor.as_deref(), query.0.limit)?;
    let tenant_id = caller.tenant_id();
    let rows = crate::db::run(&state.db, caller.scope(), async |conn| {
        attempts::page(conn, tenant_id, page.after, page.limit + 1).await
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |a| (a.started_at, a.id));
    ok_json(&AttemptList {
        data: rows.into_iter().map(AttemptOut::from).collect(),
        next_cursor,
    })
}
