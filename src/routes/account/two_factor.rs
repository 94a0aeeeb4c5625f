//! `GET/POST /account/two-factor`: enrol in two-factor sign-in (the QR code as inline SVG and
//! the secret in base32, confirmed with a code; ten recovery codes shown once), or turn it off
//! (password + code).
//!
//! The pending secret is created (sealed) on the first visit and kept until it is confirmed, so
//! reloading the page shows the same secret. The recovery codes are rendered into the answer to
//! the confirming POST and nowhere else (not flashed: flash messages live in the session row).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::load_user;
use crate::auth::two_factor::{self, CodeRefused, DisableRefused};
use crate::db::Scope;
use crate::db::models::{tenants, users};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{CurrentUser, PageContext, flash, render_with, see_other};

#[derive(Template)]
#[template(path = "account/two_factor.html")]
struct TwoFactorPage {
    page: PageContext,
    /// `None` once enrolled.
    enrolment: Option<two_factor::Enrolment>,
    must_enrol: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
struct RecoveryCodesPage {
    page: PageContext,
    codes: Vec<String>,
}

async fn tenant_of(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Option<tenants::Tenant>, AppError> {
    let Some(id) = user.tenant_id else {
        return Ok(None);
    };
    Ok(crate::db::run(&state.db, Scope::System, async |conn| {
        tenants::find(conn, id).await
    })
    .await?)
}

async fn page(
    status: StatusCode,
    user: &CurrentUser,
    row: &users::User,
    state: &AppState,
    session: &Session,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let enrolment =
        two_factor::pending_enrolment(&state.db, &state.vault, row, state.clock.now()).await?;
    let tenant = tenant_of(state, user).await?;
    let page = TwoFactorPage {
        page: PageContext::new(session, user, tenant.as_ref())?,
        enrolment,
        must_enrol: user.must_enrol,
        error,
    };
    let mut response = render_with(status, &page)?;
    // The secret is on this page: never kept by a cache.
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

pub async fn show(
    user: CurrentUser,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let row = load_user(&state, &user).await?;
    page(StatusCode::OK, &user, &row, &state, &session, None).await
}

/// Every field defaults, so a malformed body never answers before the extractor does.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TwoFactorForm {
    action: String,
    code: String,
    password: Option<SecretString>,
}

fn refusal(refused: CodeRefused) -> (StatusCode, String) {
    match refused {
        CodeRefused::Wrong => (
            StatusCode::BAD_REQUEST,
            "That code is not right (or was already used). Type the code your app shows now."
                .to_owned(),
        ),
        CodeRefused::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes or passwords. Wait a few minutes, then try again.".to_owned(),
        ),
    }
}

pub async fn submit(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<TwoFactorForm>,
) -> Result<HttpResponse, AppError> {
    let row = load_user(&state, &user).await?;
    let ip = crate::web::client_ip(&req);
    let now = state.clock.now();
    match form.action.as_str() {
        "confirm" => {
            match two_factor::confirm(&state.db, &state.vault, &row, &form.code, ip, now).await? {
                Ok(codes) => {
                    let tenant = tenant_of(&state, &user).await?;
                    let mut user = user;
                    user.must_enrol = false;
                    let page = RecoveryCodesPage {
                        page: PageContext::new(&session, &user, tenant.as_ref())?,
                        codes: codes.iter().map(|c| c.as_str().to_owned()).collect(),
                    };
                    let mut response = render_with(StatusCode::OK, &page)?;
                    response.headers_mut().insert(
                        actix_web::http::header::CACHE_CONTROL,
                        actix_web::http::header::HeaderValue::from_static("no-store"),
                    );
                    Ok(response)
                }
                Err(refused) => {
                    let (status, message) = refusal(refused);
                    page(status, &user, &row, &state, &session, Some(message)).await
                }
            }
        }
        "disable" => {
            let required = row.role == users::ROLE_OPERATOR
                || tenant_of(&state, &user)
                    .await?
                    .is_some_and(|t| t.require_two_factor);
            if required {
                return Err(AppError::BadRequest(
                    "Two-factor sign-in is required for your account, so it cannot be turned off. An operator can clear it if you lost your device.".to_owned(),
                ));
            }
            let password = form
                .password
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new()));
            let proof = two_factor::DisableProof {
                password: &password,
                code: &form.code,
                ip,
            };
            let outcome =
                two_factor::disable(&state.db, &state.vault, &state.hasher, &row, proof, now)
                    .await?;
            match outcome {
                Ok(()) => {
                    flash(&session, "ok", "Two-factor sign-in is off.")?;
                    Ok(see_other("/account"))
                }
                Err(DisableRefused::WrongPassword) => {
                    let message = "The password is not right.".to_owned();
                    page(
                        StatusCode::BAD_REQUEST,
                        &user,
                        &row,
                        &state,
                        &session,
                        Some(message),
                    )
                    .await
                }
                Err(DisableRefused::Code(refused)) => {
                    let (status, message) = refusal(refused);
                    page(status, &user, &row, &state, &session, Some(message)).await
                }
            }
        }
        _ => Err(AppError::BadRequest(
            "Choose an action: confirm or disable.".to_owned(),
        )),
    }
}
