//! `GET /t/{slug}/connections/{id}` and its actions: refresh status, reconnect, disconnect.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use crate::connect::connection::{self, Refreshed};
use crate::connect::start::{FlowKind, start};
use crate::db::models::{connections, redirect_uris};
use crate::domain::text;
use crate::error::AppError;
use crate::finch::client::FinchError;
use crate::state::AppState;
use crate::web::{PageContext, SessionData, TenantAdmin, flash, render, see_other};

#[derive(Template)]
#[template(path = "tenant/connection.html")]
struct ConnectionPage {
    page: PageContext,
    connection: connections::Connection,
    redirect_uris: Vec<redirect_uris::RedirectUriRow>,
}

pub async fn show(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let connection = connection::find(&state, admin.actor(), path.1).await?;
    if query.contains_key("connected") {
        let message = format!("Connected to {}.", connection.provider_id);
        flash(&session, "ok", message)?;
    }
    let tenant_id = admin.tenant.id;
    let uris = crate::db::run(&state.db, admin.scope(), async |conn| {
        redirect_uris::list(conn, tenant_id).await
    })
    .await?;
    render(&ConnectionPage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        connection,
        redirect_uris: uris,
    })
}

fn back(admin: &TenantAdmin, id: Uuid) -> HttpResponse {
    see_other(format!("/t/{}/connections/{id}", admin.tenant.slug))
}

/// A failed call to Finch in a sentence: what failed, Finch's message and request id, and that
/// nothing was changed.
fn finch_problem(action: &str, error: &FinchError) -> String {
    let detail = error
        .body()
        .map(|b| format!(" Finch said: {}", text::sanitize(&b.message, 300)))
        .unwrap_or_default();
    let reference = error
        .request_id()
        .map(|r| format!(" (Finch request id {r})"))
        .unwrap_or_default();
    format!("{action} failed: {error}.{detail}{reference} Nothing was changed.")
}

pub async fn refresh(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let connection = connection::find(&state, admin.actor(), path.1).await?;
    match connection::refresh_status(&state, admin.actor(), &connection).await? {
        Refreshed::Status(status) => flash(
            &session,
            "ok",
            format!("Finch reports this connection as {status}."),
        )?,
        Refreshed::NoToken => flash(
            &session,
            "error",
            "This connection has no stored access; reconnect it.",
        )?,
        Refreshed::Revoked => flash(
            &session,
            "error",
            "Finch no longer accepts this connection's access. Reconnect it.",
        )?,
        Refreshed::Failed(error) => flash(
            &session,
            "error",
            finch_problem("Refreshing the status", &error),
        )?,
    }
    Ok(back(&admin, connection.id))
}

pub async fn reconnect(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let connection = connection::find(&state, admin.actor(), path.1).await?;
    let mut flow = FlowKind::Embedded;
    for (name, value) in url::form_urlencoded::parse(&body) {
        if name == "redirect_uri_id" && !value.is_empty() {
            let redirect_uri_id = Uuid::parse_str(&value).map_err(|_| {
                AppError::BadRequest(
                    "Choose a redirect URI from this workspace's whitelist.".into(),
                )
            })?;
            flow = FlowKind::Redirect { redirect_uri_id };
        }
    }
    let request =
        connection::reconnect_request(&connection, flow, &admin.tenant.slug, &admin.tenant.name);
    let binding = SessionData(&session).flow_binding()?;
    let started = start(&state, admin.actor().into(), &binding, request).await?;
    super::connect::respond(&admin, &state, &session, started)
}

pub async fn disconnect(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let connection = connection::find(&state, admin.actor(), path.1).await?;
    match connection::disconnect(&state, admin.actor(), &connection).await? {
        Ok(()) => flash(
            &session,
            "ok",
            "Disconnected. The access token was deleted.",
        )?,
        // Finch may still have the connection: everything is kept so the admin can retry.
        Err(error) => flash(
            &session,
            "error",
            finch_problem("Disconnecting at Finch", &error),
        )?,
    }
    Ok(back(&admin, connection.id))
}
