//! `POST /account/sessions/{id}/revoke` (end one of my other sessions, named by its public id)
//! and `POST /account/sessions/revoke-others` (end all of them). Another user's session id, or
//! my own current one, matches nothing: a 404 that changes nothing.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::{current_session, load_user};
use crate::auth::account;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{CurrentUser, flash, see_other};

pub async fn revoke(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let public_id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    let keep = current_session(&session)?;
    let row = load_user(&state, &user).await?;
    let ended = account::end_sessions(
        &state.db,
        &row,
        Some(public_id),
        keep,
        crate::web::client_ip(&req),
    )
    .await?;
    if ended == 0 {
        return Err(AppError::NotFound);
    }
    flash(&session, "ok", "That session was signed out.")?;
    Ok(see_other("/account"))
}

pub async fn revoke_others(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let keep = current_session(&session)?;
    let row = load_user(&state, &user).await?;
    let ended =
        account::end_sessions(&state.db, &row, None, keep, crate::web::client_ip(&req)).await?;
    flash(
        &session,
        "ok",
        format!("Signed out everywhere else: {ended} session(s) ended."),
    )?;
    Ok(see_other("/account"))
}
