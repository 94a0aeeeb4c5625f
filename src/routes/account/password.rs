//! `POST /account/password`: change my password (current + new, the invitation's policy); my
//! other sessions end.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::{current_session, load_user};
use crate::auth::account::{self, PasswordChange};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{CurrentUser, flash, see_other};

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: SecretString,
    new_password: SecretString,
    new_password_confirm: SecretString,
}

pub async fn change(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let keep = current_session(&session)?;
    let row = load_user(&state, &user).await?;
    let change = PasswordChange {
        current: &form.current_password,
        new: &form.new_password,
        confirm: &form.new_password_confirm,
    };
    let outcome = account::change_password(
        &state.db,
        &state.hasher,
        &row,
        change,
        keep,
        crate::web::client_ip(&req),
        state.clock.now(),
    )
    .await?;
    match outcome {
        Ok(ended) => flash(
            &session,
            "ok",
            format!("Your password was changed. {ended} other session(s) ended."),
        )?,
        Err(refused) => flash(&session, "error", refused.to_string())?,
    }
    Ok(see_other("/account"))
}
