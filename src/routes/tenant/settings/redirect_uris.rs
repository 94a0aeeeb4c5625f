//! `POST /t/{slug}/settings/redirect-uris` (add) and
//! `POST /t/{slug}/settings/redirect-uris/{id}/delete` (remove): the redirect-URI whitelist.
//!
//! A URI is stored exactly as typed once [`RedirectUri::parse`] accepts it (plain http for a
//! loopback host only while finchgate's own public URL is a loopback one). Removing is scoped to
//! the tenant: another tenant's (or an unknown) id is a 404 and nothing changes.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::{audit_event, back_to_settings};
use crate::db::models::{audit, redirect_uris};
use crate::domain::{LoopbackHttp, RedirectUri};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{TenantAdmin, flash};

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    uri: String,
    /// `redirect` (default) or `return` (a connect link's return URI).
    #[serde(default)]
    kind: String,
}

pub async fn add(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<AddForm>,
) -> Result<HttpResponse, AppError> {
    let loopback_http = if crate::config::is_loopback(&state.settings.public_url) {
        LoopbackHttp::Allowed
    } else {
        LoopbackHttp::Refused
    };
    let (kind, noun) = match form.kind.as_str() {
        "" | "redirect" => (redirect_uris::KIND_REDIRECT, "redirect URI"),
        "return" => (redirect_uris::KIND_RETURN, "return URI"),
        _ => return Err(AppError::BadRequest("Unknown kind of URI.".into())),
    };
    let uri = match RedirectUri::parse(&form.uri, loopback_http) {
        Ok(uri) => uri,
        Err(problem) => {
            flash(
                &session,
                "error",
                format!("The {noun} was not added. {problem}"),
            )?;
            return Ok(back_to_settings(&admin));
        }
    };
    let tenant_id = admin.tenant.id;
    let added = crate::db::run(&state.db, admin.scope(), async |conn| {
        let added =
            redirect_uris::add_kind(conn, tenant_id, kind, uri.as_str(), Some(admin.user.id))
                .await?;
        if let Some(id) = added {
            audit::record(
                conn,
                audit_event(
                    &admin,
                    &req,
                    "redirect_uri.added",
                    ("redirect_uri", id.to_string()),
                    serde_json::json!({ "fields": ["redirect_uris"], "kind": kind }),
                ),
            )
            .await?;
        }
        Ok(added)
    })
    .await?;
    match added {
        Some(_) => flash(&session, "ok", format!("Added {uri} to the whitelist."))?,
        None => flash(
            &session,
            "info",
            format!("{uri} is already on the whitelist; nothing was added."),
        )?,
    }
    Ok(back_to_settings(&admin))
}

pub async fn delete(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (_, id) = path.into_inner();
    let id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    let tenant_id = admin.tenant.id;
    let removed = crate::db::run(&state.db, admin.scope(), async |conn| {
        let removed = redirect_uris::delete(conn, tenant_id, id).await?;
        if removed.is_some() {
            audit::record(
                conn,
                audit_event(
                    &admin,
                    &req,
                    "redirect_uri.removed",
                    ("redirect_uri", id.to_string()),
                    serde_json::json!({ "fields": ["redirect_uris"] }),
                ),
            )
            .await?;
        }
        Ok(removed)
    })
    .await?;
    let removed = removed.ok_or(AppError::NotFound)?;
    flash(
        &session,
        "ok",
        format!("Removed {} from the whitelist.", removed.uri),
    )?;
    Ok(back_to_settings(&admin))
}
