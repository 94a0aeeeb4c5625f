//! `GET/POST /login/two-factor`: the second sign-in step of an account enrolled in two-factor
//! sign-in. The session is "half signed in" (it holds only the pending user and an expiry a few
//! minutes away, see [`crate::web::session`]) and reaches nothing else; a TOTP code or a recovery
//! code completes the sign-in with a new session id.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::login;
use crate::auth::two_factor::{self, CodeAttempt, CodeRefused};
use crate::db::Scope;
use crate::db::models::users;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{SessionData, flash, render_with, see_other};

#[derive(Template)]
#[template(path = "auth/login_two_factor.html")]
struct SecondStepPage<'a> {
    csrf_token: &'a str,
    error: Option<&'a str>,
}

fn render(
    status: StatusCode,
    session: &Session,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let csrf = SessionData(session).csrf_token()?;
    render_with(
        status,
        &SecondStepPage {
            csrf_token: &csrf,
            error,
        },
    )
}

pub async fn form(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    if SessionData(&session)
        .pending_second_step(state.clock.now())
        .is_none()
    {
        return Ok(see_other("/login"));
    }
    render(StatusCode::OK, &session, None)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CodeForm {
    code: String,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let Some(user_id) = SessionData(&session).pending_second_step(now) else {
        flash(&session, "error", "That took too long. Sign in again.")?;
        return Ok(see_other("/login"));
    };
    let user = crate::db::run(&state.db, Scope::System, async |conn| {
        users::find(conn, user_id).await
    })
    .await?
    .filter(|u| u.disabled_at.is_none());
    let Some(user) = user else {
        SessionData(&session).sign_out();
        return Ok(see_other("/login"));
    };
    let ip = crate::web::client_ip(&req);
    let attempt = CodeAttempt {
        user: &user,
        input: &form.code,
        ip: ip.clone(),
        allow_recovery: true,
        failure_action: "login.failed",
    };
    match two_factor::check_code(&state.db, &state.vault, attempt, now).await? {
        Ok(how) => {
            let left = two_factor::record_second_step(&state.db, &user, how, ip, now).await?;
            SessionData(&session).sign_in(user.id, now, &crate::web::client_browser(&req))?;
            if how == two_factor::Accepted::RecoveryCode {
                flash(
                    &session,
                    "ok",
                    format!(
                        "You signed in with a recovery code; it no longer works. {left} recovery code(s) left."
                    ),
                )?;
            }
            let home = login::home_of(&state.db, user.id)
                .await?
                .unwrap_or_else(|| "/login".to_owned());
            Ok(see_other(home))
        }
        Err(CodeRefused::Wrong) => render(
            StatusCode::UNAUTHORIZED,
            &session,
            Some("That code did not work. Type the code your app shows now, or a recovery code."),
        ),
        Err(CodeRefused::Throttled) => render(
            StatusCode::TOO_MANY_REQUESTS,
            &session,
            Some("Too many wrong codes or passwords. Wait a few minutes, then try again."),
        ),
    }
}
