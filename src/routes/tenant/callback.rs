//! `GET /t/{slug}/finch/callback?code&state` (redirect flow) and `POST` with JSON `{code, state}`
//! (embedded flow, with `X-CSRF-Token`). Always answers with a clean URL: never a code or state.

use actix_session::Session;
use actix_web::{HttpResponse, ResponseError as _, web};

use crate::connect::callback::{CallbackInput, Outcome, handle};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{SessionData, TenantAdmin, see_other};

fn location(slug: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Connected { connection_id } => {
            format!("/t/{slug}/connections/{connection_id}?connected=1")
        }
        Outcome::Attempt { attempt_id } => format!("/t/{slug}/attempts/{attempt_id}"),
        Outcome::InProgress { flow_id } => format!("/t/{slug}/flows/{flow_id}"),
    }
}

pub async fn redirect_flow(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<CallbackInput>,
) -> Result<HttpResponse, AppError> {
    let binding = SessionData(&session).flow_binding()?;
    let outcome = handle(&state, admin.actor(), &binding, query.into_inner()).await?;
    let mut response = see_other(location(&admin.tenant.slug, &outcome));
    response.headers_mut().insert(
        actix_web::http::header::REFERRER_POLICY,
        actix_web::http::header::HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

pub async fn embedded_flow(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    body: web::Json<CallbackInput>,
) -> HttpResponse {
    let outcome = match SessionData(&session).flow_binding() {
        Ok(binding) => handle(&state, admin.actor(), &binding, body.into_inner()).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(outcome) => HttpResponse::Ok()
            .json(serde_json::json!({ "location": location(&admin.tenant.slug, &outcome) })),
        Err(error) => {
            let status = error.status_code();
            let message = match &error {
                AppError::BadRequest(m) | AppError::Forbidden(m) | AppError::Unavailable(m) => {
                    m.clone()
                }
                _ => "Something went wrong on our side. Try again.".to_owned(),
            };
            HttpResponse::build(status).json(serde_json::json!({ "error": message }))
        }
    }
}
