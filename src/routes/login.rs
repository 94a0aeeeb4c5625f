//! `GET/POST /login`, `POST /logout`, and `/` (which leads to the right home page). The sign-in
//! itself (password, back-off, throttle, audit) is [`crate::auth::login`].

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::auth::login::{self, SignIn};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{SessionData, render_with, see_other};

const GENERIC_FAILURE: &str =
    "That email and password did not match an active account. Check them and try again.";

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage<'a> {
    csrf_token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

fn render(
    status: StatusCode,
    csrf_token: &str,
    email: &str,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let page = LoginPage {
        csrf_token,
        email,
        error,
    };
    render_with(status, &page)
}

pub async fn root(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    if let Some(user_id) = SessionData(&session).user_id()
        && let Some(home) = login::home_of(&state.db, user_id).await?
    {
        return Ok(see_other(&home));
    }
    Ok(see_other("/login"))
}

pub async fn form(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    let data = SessionData(&session);
    if let Some(user_id) = data.user_id()
        && let Some(home) = login::home_of(&state.db, user_id).await?
    {
        return Ok(see_other(&home));
    }
    render(StatusCode::OK, &data.csrf_token()?, "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: SecretString,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let email = form.email.trim().to_lowercase();
    let ip = crate::web::client_ip(&req);
    let data = SessionData(&session);
    let csrf = data.csrf_token()?;
    let attempt = login::Attempt {
        email: &email,
        password: &form.password,
        ip,
    };
    match login::sign_in(&state.db, &state.hasher, attempt, state.clock.now()).await? {
        SignIn::SecondStep { user_id } => {
            data.begin_second_step(user_id, state.clock.now())?;
            Ok(see_other("/login/two-factor"))
        }
        SignIn::Succeeded { user_id } => {
            data.sign_in(
                user_id,
                state.clock.now(),
                &crate::web::client_browser(&req),
            )?;
            let home = login::home_of(&state.db, user_id)
                .await?
                .unwrap_or_else(|| "/login".to_owned());
            Ok(see_other(home))
        }
        SignIn::Failed => render(
            StatusCode::UNAUTHORIZED,
            &csrf,
            &email,
            Some(GENERIC_FAILURE),
        ),
        SignIn::Throttled => render(
            StatusCode::TOO_MANY_REQUESTS,
            &csrf,
            &email,
            Some("Too many failed sign-ins from your network. Wait 15 minutes, then try again."),
        ),
    }
}

pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    user: Option<crate::web::CurrentUser>,
) -> Result<HttpResponse, AppError> {
    if let Some(user) = user {
        let kind = if user.is_operator() {
            "operator"
        } else {
            "tenant_admin"
        };
        login::record_sign_out(&state.db, user.id, kind, user.tenant_id).await?;
    }
    SessionData(&session).sign_out();
    Ok(see_other("/login"))
}
