//! `GET /api/v1/connections` (list), `GET /api/v1/connections/{id}`, `DELETE
//! /api/v1/connections/{id}` (disconnect at Finch, shred the token): scopes `connections:read`
//! and `connections:write`.

use actix_web::{HttpResponse, web};

use super::{ok_json, parse_id};
use crate::api::model::{ConnectionList, ConnectionListParams, ConnectionOut};
use crate::api::pagination::PageRequest;
use crate::api::problem::{Problem, ProblemBody};
use crate::api::{ApiCaller, ApiQuery};
use crate::connect::connection::{self, Actor};
use crate::db::models::connections;
use crate::domain::ApiScope;
use crate::state::AppState;

/// Longest filter value accepted.
const MAX_FILTER_CHARS: usize = 255;

fn filter_value(name: &str, value: Option<String>) -> Result<Option<String>, Problem> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > MAX_FILTER_CHARS => {
            Err(Problem::validation(
                format!("`{name}` must be 1 to {MAX_FILTER_CHARS} characters."),
                vec![name.to_owned()],
            ))
        }
        other => Ok(other),
    }
}

/// The tenant's connections, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/connections",
    operation_id = "list_connections",
    tag = "connections",
    params(ConnectionListParams),
    security(("api_key" = ["connections:read"])),
    responses(
        (status = 200, description = "A page of connections", body = ConnectionList),
        (status = 401, description = "No valid key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks connections:read", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "A parameter was refused", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    caller: ApiCaller,
    state: web::Data<AppState>,
    query: ApiQuery<ConnectionListParams>,
) -> Result<HttpResponse, Problem> {
    caller.require(ApiScope::ConnectionsRead)?;
    let params = query.0;
    let page = PageRequest::parse(params.cursor.as_deref(), params.limit)?;
    let status = filter_value("status", params.status)?;
    if let Some(s) = &status
        && !crate::api::model::CONNECTION_STATUSES.contains(&s.as_str())
    {
        return Err(Problem::validation(
            format!(
                "`status` must be one of: {}.",
                crate::api::model::CONNECTION_STATUSES.join(", ")
            ),
            vec!["status".to_owned()],
        ));
    }
    let filter = connections::Filter {
        customer_id: filter_value("customer_id", params.customer_id)?,
        status,
        provider_id: filter_value("provider", params.provider)?,
    };
    let tenant_id = caller.tenant_id();
    let rows = crate::db::run(&state.db, caller.scope(), async |conn| {
        connections::page(conn, tenant_id, &filter, page.after, page.limit + 1).await
    })
    .await?;
    let (rows, next_cursor) = page.finish(rows, |c| (c.created_at, c.id));
    ok_json(&ConnectionList {
        data: rows.into_iter().map(ConnectionOut::from).collect(),
        next_cursor,
    })
}

/// One connection of the tenant.
#[utoipa::path(
    get,
    path = "/api/v1/connections/{id}",
    operation_id = "get_connection",
    tag = "connections",
    params(("id" = uuid::Uuid, Path, description = "finchgate's connection id")),
    security(("api_key" = ["connections:read"])),
    responses(
        (status = 200, description = "The connection", body = ConnectionOut),
        (status = 401, description = "No valid key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks connections:read", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such connection for this key's tenant", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    caller: ApiCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    caller.require(ApiScope::ConnectionsRead)?;
    let id = parse_id(&path)?;
    let tenant_id = caller.tenant_id();
    let found = crate::db::run(&state.db, caller.scope(), async |conn| {
        connections::find(conn, tenant_id, id).await
    })
    .await?
    .ok_or_else(Problem::not_found)?;
    ok_json(&ConnectionOut::from(found))
}

/// Disconnects the connection at Finch and deletes its token. Disconnecting a connection that
/// is already disconnected changes nothing and answers the same.
#[utoipa::path(
    delete,
    path = "/api/v1/connections/{id}",
    operation_id = "disconnect_connection",
    tag = "connections",
    params(("id" = uuid::Uuid, Path, description = "finchgate's connection id")),
    security(("api_key" = ["connections:write"])),
    responses(
        (status = 200, description = "The connection, now disconnected", body = ConnectionOut),
        (status = 401, description = "No valid key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks connections:write", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such connection for this key's tenant", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "Finch did not confirm; nothing changed, retry", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn disconnect(
    caller: ApiCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    caller.require(ApiScope::ConnectionsWrite)?;
    let id = parse_id(&path)?;
    let tenant_id = caller.tenant_id();
    let find = async || {
        crate::db::run(&state.db, caller.scope(), async |conn| {
            connections::find(conn, tenant_id, id).await
        })
        .await?
        .ok_or_else(Problem::not_found)
    };
    let found = find().await?;
    if found.status != "disconnected" {
        let actor = Actor::ApiKey {
            tenant_id,
            key_id: caller.key_id(),
        };
        if let Err(error) = connection::disconnect(&state, actor, &found).await? {
            tracing::warn!(connection_id = %id, error = %error, "disconnect at Finch failed");
            return Err(Problem::new(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "finch_unavailable",
                "Finch did not confirm",
                "Finch did not confirm the disconnection, so nothing was changed. Retry in a moment.",
            ));
        }
    }
    ok_json(&ConnectionOut::from(find().await?))
}
