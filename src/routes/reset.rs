//! `GET/POST /reset/{token}`: a one-time password reset link an operator issued. The person sets
//! a new password (the invitation's policy) and then signs in as usual, with their second factor
//! if they have one: the link signs nobody in.
//!
//! An unknown, expired or used link gets one and the same page (404), so tokens cannot be probed.
//! The token is in the path: `/reset/` is in the telemetry's secret path prefixes (never logged),
//! and `Referrer-Policy: no-referrer` keeps it from other sites.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::ExposeSecret as _;

use super::invite::SetPasswordForm;
use crate::db::{Scope, transaction};
use crate::domain::password_policy;
use crate::error::AppError;
use crate::onboarding::{OnboardingError, recovery};
use crate::state::AppState;
use crate::web::{SessionData, render_with};

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage<'a> {
    csrf_token: &'a str,
    token: &'a str,
    email: &'a str,
    hint: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/reset_done.html")]
struct DonePage {
    valid: bool,
}

fn invalid() -> Result<HttpResponse, AppError> {
    render_with(StatusCode::NOT_FOUND, &DonePage { valid: false })
}

fn form_page(
    status: StatusCode,
    session: &Session,
    token: &str,
    email: &str,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let csrf = SessionData(session).csrf_token()?;
    render_with(
        status,
        &ResetPage {
            csrf_token: &csrf,
            token,
            email,
            hint: password_policy::hint(),
            error,
        },
    )
}

async fn lookup(state: &AppState, token: &str) -> Result<Option<String>, AppError> {
    let now = state.clock.now();
    Ok(crate::db::run(&state.db, Scope::System, async |conn| {
        recovery::lookup(conn, token, now).await
    })
    .await?)
}

pub async fn form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    match lookup(&state, &token).await? {
        Some(email) => form_page(StatusCode::OK, &session, &token, &email, None),
        None => invalid(),
    }
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
    form: web::Form<SetPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let Some(email) = lookup(&state, &token).await? else {
        return invalid();
    };
    let password = &form.password;
    let typed_twice = password_policy::check_typed_twice(
        password.expose_secret(),
        form.password_confirm.expose_secret(),
    );
    if let Err(e) = typed_twice {
        return form_page(
            StatusCode::BAD_REQUEST,
            &session,
            &token,
            &email,
            Some(e.to_string()),
        );
    }
    let hash = state
        .hasher
        .hash(password)
        .await
        .map_err(AppError::internal)?;
    let now = state.clock.now();
    let ip = crate::web::client_ip(&req);
    let mut conn = state.db.get().await?;
    let accepted = transaction(&mut conn, Scope::System, async |conn| {
        recovery::accept(conn, &token, &hash, now, ip).await
    })
    .await;
    match accepted {
        Ok(_) => render_with(StatusCode::OK, &DonePage { valid: true }),
        Err(OnboardingError::InvalidLink) => invalid(),
        Err(e) => Err(AppError::internal(e)),
    }
}
