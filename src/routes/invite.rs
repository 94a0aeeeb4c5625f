//! `GET/POST /invite/{token}`: an invited admin sets their password and is signed in.
//!
//! An unknown, expired or used link gets one and the same page (404), so tokens cannot be probed.
//! The token is in the path: the access log and request spans print this route's path redacted
//! (see [`crate::telemetry::loggable_path`]), and `Referrer-Policy: no-referrer` keeps it from
//! leaking to other sites.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::db::models::invitations::Usable;
use crate::db::{Scope, transaction};
use crate::domain::password_policy;
use crate::error::AppError;
use crate::onboarding::{OnboardingError, invitation};
use crate::state::AppState;
use crate::web::{SessionData, render_with, see_other};

#[derive(Template)]
#[template(path = "auth/invite.html")]
struct InvitePage<'a> {
    csrf_token: &'a str,
    token: &'a str,
    email: &'a str,
    tenant_name: &'a str,
    hint: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/invite_invalid.html")]
struct InvalidPage;

/// The one answer for every link that cannot be used.
fn invalid() -> Result<HttpResponse, AppError> {
    render_with(StatusCode::NOT_FOUND, &InvalidPage)
}

fn form_page(
    status: StatusCode,
    session: &Session,
    token: &str,
    usable: &Usable,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let csrf = SessionData(session).csrf_token()?;
    render_with(
        status,
        &InvitePage {
            csrf_token: &csrf,
            token,
            email: &usable.email,
            tenant_name: &usable.tenant_name,
            hint: password_policy::hint(),
            error,
        },
    )
}

async fn lookup(state: &AppState, token: &str) -> Result<Option<Usable>, AppError> {
    let now = state.clock.now();
    let usable = crate::db::run(&state.db, Scope::System, async |conn| {
        invitation::lookup(conn, token, now).await
    })
    .await?;
    Ok(usable)
}

pub async fn form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    match lookup(&state, &token).await? {
        Some(usable) => form_page(StatusCode::OK, &session, &token, &usable, None),
        None => invalid(),
    }
}

/// The set-password form of an invitation and of a reset link.
#[derive(Deserialize)]
pub struct SetPasswordForm {
    pub(super) password: SecretString,
    pub(super) password_confirm: SecretString,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
    form: web::Form<SetPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let Some(usable) = lookup(&state, &token).await? else {
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
            &usable,
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
        invitation::accept(conn, &token, &hash, now, ip).await
    })
    .await;
    match accepted {
        Ok(accepted) => {
            SessionData(&session).sign_in(
                accepted.user_id,
                now,
                &crate::web::client_browser(&req),
            )?;
            Ok(see_other(format!("/t/{}/", accepted.tenant_slug)))
        }
        // Used up (or revoked) between the lookup and now.
        Err(OnboardingError::InvalidLink) => invalid(),
        Err(e) => Err(AppError::internal(e)),
    }
}
