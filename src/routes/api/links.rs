//! `POST /api/v1/links` (create, under `Idempotency-Key`), `GET /api/v1/links` (list),
//! `GET /api/v1/links/{id}`, `DELETE /api/v1/links/{id}` (revoke). Creating and revoking need
//! `links:write`; reading needs `connections:read` or `links:write` (a backend that makes links
//! may follow them without more).

use std::str::FromStr as _;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ok_json, parse_id};
use crate::api::idempotency::{self, Answer};
use crate::api::model::{
    LINK_STATUSES, LinkCreateIn, LinkCreated, LinkList, LinkListParams, LinkOut,
};
use crate::api::pagination::PageRequest;
use crate::api::problem::{Problem, ProblemBody};
use crate::api::{ApiCaller, ApiJson, ApiQuery};
use crate::connect::link::{self, Author, CreateRequest, LinkError};
use crate::connect::start::FlowKind;
use crate::db::models::{links, redirect_uris};
use crate::domain::ApiScope;
use crate::finch::wire::{Product, SandboxMode};
use crate::state::AppState;

/// Longest filter value accepted.
const MAX_FILTER_CHARS: usize = 255;

impl From<LinkError> for Problem {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::NotFound => Self::not_found(),
            LinkError::Invalid { field, message } => {
                Self::validation(message, vec![field.to_owned()])
            }
            LinkError::App(error) => error.into(),
        }
    }
}

/// Reading links: `connections:read` or `links:write`; a key with neither gets the 403 naming
/// `connections:read`.
fn require_read(caller: &ApiCaller) -> Result<(), Problem> {
    if caller.require(ApiScope::LinksWrite).is_ok() {
        return Ok(());
    }
    caller
        .require(ApiScope::ConnectionsRead)
        .map_err(|mut problem| {
            problem.detail =
                "This API key has neither `connections:read` nor `links:write`; reading \
                          links needs one of them. Create a key with it."
                    .to_owned();
            problem
        })
}

fn invalid(field: &str, detail: impl Into<String>) -> Problem {
    Problem::validation(detail, vec![field.to_owned()])
}

/// The JSON body, checked field by field into what [`link::create`] takes (the redirect URI is
/// resolved against the whitelist there).
fn parse_create(body: &LinkCreateIn) -> Result<(CreateRequest, Option<String>, bool), Problem> {
    let mut products = Vec::with_capacity(body.products.len());
    for name in &body.products {
        products.push(Product::from_str(name).map_err(|_| {
            invalid(
                "products",
                format!("Unknown product; expected: {}.", Product::expected()),
            )
        })?);
    }
    let sandbox = body
        .sandbox
        .as_deref()
        .map(SandboxMode::from_str)
        .transpose()
        .map_err(|_| {
            invalid(
                "sandbox",
                format!(
                    "Unknown sandbox mode; expected: {}.",
                    SandboxMode::expected()
                ),
            )
        })?;
    let redirect = match body.flow.as_deref().unwrap_or("redirect") {
        "redirect" => true,
        "embedded" => {
            if body.redirect_uri.is_some() {
                return Err(invalid(
                    "redirect_uri",
                    "An embedded link has no redirect URI; omit it or use `flow: redirect`.",
                ));
            }
            false
        }
        _ => return Err(invalid("flow", "`flow` must be `redirect` or `embedded`.")),
    };
    let request = CreateRequest {
        customer_id: body.customer_id.clone().unwrap_or_default(),
        customer_name: body.customer_name.clone().unwrap_or_default(),
        products,
        sandbox,
        flow: FlowKind::Embedded,
        return_uri: body.return_uri.clone(),
        expires_in_days: body.expires_in_days,
        reconnect_connection_id: body.reconnect_connection_id,
    };
    Ok((request, body.redirect_uri.clone(), redirect))
}

/// Creates a link for one customer and returns it with its URL, once.
#[utoipa::path(
    post,
    path = "/api/v1/links",
    operation_id = "create_link",
    tag = "links",
    request_body = LinkCreateIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for 24 hours; another body under the same key is a 422")),
    security(("api_key" = ["links:write"])),
    responses(
        (status = 201, description = "The link and its URL (returned only now)", body = LinkCreated),
        (status = 401, description = "No valid key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks links:write", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such connection to reconnect for this key's tenant", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is still being answered; retry", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "A field was refused (named in `fields`), or the Idempotency-Key was used for another request", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    req: HttpRequest,
    caller: ApiCaller,
    state: web::Data<AppState>,
    body: ApiJson<LinkCreateIn>,
) -> Result<HttpResponse, Problem> {
    caller.require(ApiScope::LinksWrite)?;
    let (mut request, redirect_uri, redirect) = parse_create(&body.value)?;
    let tenant_id = caller.tenant_id();
    idempotency::respond(&req, &state, &caller, &body.raw, async || {
        if redirect {
            let whitelist = crate::db::run(&state.db, caller.scope(), async |conn| {
                redirect_uris::list(conn, tenant_id).await
            })
            .await?;
            let chosen = match &redirect_uri {
                Some(uri) => whitelist.iter().find(|u| &u.uri == uri),
                None => whitelist.first(),
            };
            let Some(chosen) = chosen else {
                return Err(invalid(
                    "redirect_uri",
                    "The redirect URI must be one of this workspace's whitelisted redirect URIs \
                     (Settings), exactly; with none whitelisted, use `flow: embedded`.",
                ));
            };
            request.flow = FlowKind::Redirect {
                redirect_uri_id: chosen.id,
            };
        }
        let created = link::create(&state, tenant_id, Author::ApiKey(caller.key_id()), request)
            .await
            .map_err(|error| match error {
                LinkError::Invalid {
                    field: "redirect_uri_id",
                    message,
                } => invalid("redirect_uri", message),
                other => other.into(),
            })?;
        Answer::json(
            StatusCode::CREATED,
            &LinkCreated {
                link: created.link.into(),
                url: created.url,
            },
        )
    })
    .await
}

fn filter_value(name: &str, value: Option<String>) -> Result<Option<String>, Problem> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > MAX_FILTER_CHARS => Err(invalid(
            name,
            format!("`{name}` must be 1 to {MAX_FILTER_CHARS} characters."),
        )),
        other => Ok(other),
    }
}

/// The tenant's links, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/links",
    operation_id = "list_links",
    tag = "links",
    params(LinkListParams),
    security(("api_key" = ["connections:read"]), ("api_key" = ["links:write"])),
    responses(
        (status = 200, description = "A page of links", body = LinkList),
        (status = 401, description = "No valid key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The key has neither connections:read nor links:write", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "A parameter was refused", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    caller: ApiCaller,
    state: web::Data<AppState>,
    query: ApiQuery<LinkListParams>,
) -> Result<HttpResponse, Problem> {
    require_read(&caller)?;
    let params = query.0;
    let page = PageRequest::parse(params.cursor.as_deref(), params.limit)?;
    let status = filter_value("status", params.status)?;
    if let Some(s) = &status
        && !LINK_STATUSES.contains(&s.as_str())
    {
        return Err(invalid(
            "status",
            format!("`status` must be one of: {}.", LINK_STATUSES.join(", ")),
        ));
    }
    let filter = links::Filter {
        customer_id: filter_value("customer_id", params.customer_id)?,
        status,
    };
    let rows = link::page(
        &state,
        caller.tenant_id(),
        &filter,
        page.after,
        page.limit + 1,
    )
    .await?;
    let (rows, next_cursor) = page.finish(rows, |l| (l.created_at, l.id));
    ok_json(&LinkList {
        data: rows.into_iter().map(LinkOut::from).collect(),
        next_cursor,
    })
}

/// One link of the tenant (never its URL).
#[utoipa::path(
    get,
    path = "/api/v1/links/{id}",
    operation_id = "get_link",
    tag = "links",
    params(("id" = uuid::Uuid, Path, description = "The link's id")),
    security(("api_key" = ["connections:read"]), ("api_key" = ["links:write"])),
    responses(
        (status = 200, description = "The link", body = LinkOut),
        (status = 401, description = "No valid key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The key has neither connections:read nor links:write", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such link for this key's tenant", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    caller: ApiCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    require_read(&caller)?;
    let id = parse_id(&path)?;
    let found = link::get(&state, caller.tenant_id(), id).await?;
    ok_json(&LinkOut::from(found))
}

/// Revokes a link: its page no longer works and a flow it started cannot finish. Revoking a
/// revoked or completed link changes nothing and answers the same.
#[utoipa::path(
    delete,
    path = "/api/v1/links/{id}",
    operation_id = "revoke_link",
    tag = "links",
    params(("id" = uuid::Uuid, Path, description = "The link's id")),
    security(("api_key" = ["links:write"])),
    responses(
        (status = 200, description = "The link, now revoked (or as it was, if completed)", body = LinkOut),
        (status = 401, description = "No valid key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks links:write", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such link for this key's tenant", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn revoke(
    caller: ApiCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    caller.require(ApiScope::LinksWrite)?;
    let id = parse_id(&path)?;
    let revoked = link::revoke(
        &state,
        caller.tenant_id(),
        Author::ApiKey(caller.key_id()),
        id,
    )
    .await?;
    ok_json(&LinkOut::from(revoked))
}
