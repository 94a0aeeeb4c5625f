//! `GET /t/{slug}/connections/{id}` and its actions: refresh status, reconnect, disconnect.

use actix_session::Session;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::Utc;
use secrecy::SecretString;
use uuid::Uuid;

use crate::connect::start::{FlowKind, StartRequest, start};
use crate::db::models::{audit, connections, redirect_uris, tokens};
use crate::db::transaction;
use crate::error::AppError;
use crate::finch::client::FinchError;
use crate::finch::wire::{ConnectionStatusType, Product};
use crate::state::AppState;
use crate::vault::{Purpose, RowContext};
use crate::web::{PageContext, TenantAdmin, flash};

#[derive(Template)]
#[template(path = "tenant/connection.html")]
struct ConnectionPage {
    page: PageContext,
    connection: connections::Connection,
    redirect_uris: Vec<redirect_uris::RedirectUriRow>,
}

async fn load(
    state: &AppState,
    admin: &TenantAdmin,
    id: Uuid,
) -> Result<connections::Connection, AppError> {
    let mut conn = state.db.get().await?;
    let tenant_id = admin.tenant.id;
    transaction(&mut conn, admin.scope(), async |conn| {
        connections::find(conn, tenant_id, id).await
    })
    .await?
    .ok_or(AppError::NotFound)
}

pub async fn show(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let connection = load(&state, &admin, path.1).await?;
    if query.contains_key("connected") {
        flash(
            &session,
            "ok",
            format!("Connected to {}.", connection.provider_id),
        )?;
    }
    let mut conn = state.db.get().await?;
    let tenant_id = admin.tenant.id;
    let uris = transaction(&mut conn, admin.scope(), async |conn| {
        redirect_uris::list(conn, tenant_id).await
    })
    .await?;
    let page = ConnectionPage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        connection,
        redirect_uris: uris,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(AppError::internal)?))
}

/// The connection's token, opened (bound to tenant and connection).
async fn open_token(
    state: &AppState,
    admin: &TenantAdmin,
    connection_id: Uuid,
) -> Result<Option<SecretString>, AppError> {
    let mut conn = state.db.get().await?;
    let tenant_id = admin.tenant.id;
    let row = transaction(&mut conn, admin.scope(), async |conn| {
        tokens::find(conn, tenant_id, connection_id).await
    })
    .await?;
    let Some(row) = row else { return Ok(None) };
    let opened = state.vault.open_string(
        &RowContext::new(Purpose::AccessToken, tenant_id, connection_id),
        &row.envelope,
    );
    match opened {
        Ok(token) => Ok(Some(token)),
        Err(error) => {
            // Altered, truncated or copied from another row: never used, and operators told.
            tracing::error!(
                alert = "token_integrity",
                %tenant_id,
                %connection_id,
                error = %error,
                "a stored access token failed its integrity check"
            );
            transaction(&mut conn, admin.scope(), async |conn| {
                audit::record(
                    conn,
                    audit::Event::new(
                        "tenant_admin",
                        Some(admin.user.id),
                        "connection.token_integrity_failed",
                    )
                    .tenant(tenant_id)
                    .target("connection", connection_id)
                    .details(serde_json::json!({ "error": error.to_string() })),
                )
                .await
            })
            .await?;
            Err(AppError::Conflict(
                "The stored access token of this connection failed its integrity check (it was \
                 altered or moved), so it was not used. Reconnect to replace it; your operator \
                 has been alerted."
                    .into(),
            ))
        }
    }
}

fn back(admin: &TenantAdmin, id: Uuid) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            LOCATION,
            format!("/t/{}/connections/{id}", admin.tenant.slug),
        ))
        .finish()
}

fn finch_problem(action: &str, error: &FinchError) -> String {
    let detail = error
        .body()
        .map(|b| {
            format!(
                " Finch said: {}",
                crate::db::models::attempts::sanitize(&b.message, 300)
            )
        })
        .unwrap_or_default();
    let reference = error
        .request_id()
        .map(|r| format!(" (Finch request id {r})"))
        .unwrap_or_default();
    format!("{action} failed: {error}.{detail}{reference} Nothing was changed.")
}

fn status_of(status: ConnectionStatusType) -> &'static str {
    match status {
        ConnectionStatusType::Connected => "active",
        ConnectionStatusType::Reauth => "reauth_required",
        ConnectionStatusType::Pending => "pending",
        ConnectionStatusType::Processing => "processing",
        _ => "error",
    }
}

pub async fn refresh(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let connection = load(&state, &admin, path.1).await?;
    let Some(token) = open_token(&state, &admin, connection.id).await? else {
        flash(
            &session,
            "error",
            "This connection has no stored access; reconnect it.",
        )?;
        return Ok(back(&admin, connection.id));
    };
    let now = state.clock.now();
    let mut conn = state.db.get().await?;
    let tenant_id = admin.tenant.id;
    match state.finch.introspect(&token).await {
        Ok(answer) => {
            let status = status_of(answer.value.connection_status.status);
            let message = answer.value.connection_status.message.clone();
            transaction(&mut conn, admin.scope(), async |conn| {
                connections::set_status(
                    conn,
                    tenant_id,
                    connection.id,
                    status,
                    message.as_deref(),
                    now,
                )
                .await
            })
            .await?;
            flash(
                &session,
                "ok",
                format!("Finch reports this connection as {status}."),
            )?;
        }
        Err(FinchError::Api { status: 401, .. }) => {
            transaction(&mut conn, admin.scope(), async |conn| {
                connections::set_status(
                    conn,
                    tenant_id,
                    connection.id,
                    "reauth_required",
                    Some("Finch no longer accepts the token"),
                    now,
                )
                .await
            })
            .await?;
            flash(
                &session,
                "error",
                "Finch no longer accepts this connection's access. Reconnect it.",
            )?;
        }
        Err(error) => flash(
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
    let connection = load(&state, &admin, path.1).await?;
    let mut flow = FlowKind::Embedded;
    for (name, value) in url::form_urlencoded::parse(&body) {
        if name == "redirect_uri_id" && !value.is_empty() {
            let id = Uuid::parse_str(&value).map_err(|_| {
                AppError::BadRequest(
                    "Choose a redirect URI from this workspace's whitelist.".into(),
                )
            })?;
            flow = FlowKind::Redirect {
                redirect_uri_id: id,
            };
        }
    }
    let products: Vec<Product> = connection
        .products
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let request = StartRequest {
        products: if products.is_empty() {
            vec![Product::Company]
        } else {
            products
        },
        flow,
        customer_id: connection
            .customer_id
            .clone()
            .unwrap_or_else(|| admin.tenant.slug.clone()),
        customer_name: connection
            .customer_name
            .clone()
            .unwrap_or_else(|| admin.tenant.name.clone()),
        sandbox: None,
        reauth: Some((connection.id, connection.finch_connection_id.clone())),
    };
    let started = start(&state, &admin, &session, request).await?;
    super::connect::respond(&admin, &state, &session, started)
}

pub async fn disconnect(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let connection = load(&state, &admin, path.1).await?;
    let token = open_token(&state, &admin, connection.id).await?;
    if let Some(token) = &token {
        match state.finch.disconnect(token).await {
            Ok(_) => {}
            // Finch no longer knows the token (an earlier disconnect went through but its answer
            // was lost, or it was revoked): there is nothing left to disconnect at Finch.
            Err(FinchError::Api { status: 401, .. }) => {}
            Err(error) => {
                // Finch may still have the connection: keep everything so the admin can retry.
                flash(
                    &session,
                    "error",
                    finch_problem("Disconnecting at Finch", &error),
                )?;
                return Ok(back(&admin, connection.id));
            }
        }
    }
    let mut conn = state.db.get().await?;
    let tenant_id = admin.tenant.id;
    let user_id = admin.user.id;
    transaction(&mut conn, admin.scope(), async |conn| {
        tokens::delete(conn, tenant_id, connection.id).await?;
        connections::set_status(
            conn,
            tenant_id,
            connection.id,
            "disconnected",
            None,
            Utc::now(),
        )
        .await?;
        audit::record(
            conn,
            audit::Event::new("tenant_admin", Some(user_id), "connection.disconnected")
                .tenant(tenant_id)
                .target("connection", connection.id),
        )
        .await
    })
    .await?;
    flash(
        &session,
        "ok",
        "Disconnected. The access token was deleted.",
    )?;
    Ok(back(&admin, connection.id))
}
