//! `POST /t/{slug}/settings/finch/test`, the "Test credentials" button: asks Finch whether the
//! stored credentials work ([`crate::credentials::check::run`]) and says what happened in plain
//! words.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};

use super::back_to_settings;
use crate::credentials::check::{self, NotTested};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{TenantAdmin, flash};

pub async fn run(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let ip = crate::web::client_ip(&req);
    match check::run(&state, &admin.tenant, admin.user.id, ip).await? {
        Ok(outcome) => {
            let kind = if outcome.is_success() { "ok" } else { "error" };
            flash(&session, kind, outcome.message())?;
        }
        Err(NotTested::NothingSaved) => flash(
            &session,
            "error",
            "There are no Finch credentials to test yet: save them first.",
        )?,
        Err(NotTested::Products(problem)) => flash(
            &session,
            "error",
            format!("The default products need fixing before a test: {problem}"),
        )?,
        Err(NotTested::TooOften) => flash(
            &session,
            "error",
            format!(
                "The credentials were tested too often: at most {} tests per {} minutes. \
                 Wait a few minutes, then test again.",
                crate::config::Limits::CREDENTIAL_TESTS_PER_TENANT,
                crate::config::Limits::WINDOW.num_minutes()
            ),
        )?,
    }
    Ok(back_to_settings(&admin))
}
