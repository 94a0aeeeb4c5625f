//! `GET /t/{slug}/finch/callback?code&state` (redirect flow) and `POST` with JSON `{code, state}`
//! (embedded flow, with `X-CSRF-Token`). Always answers with a clean URL: never a code or state.

use actix_session::Session;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, ResponseError as _, web};

use crate::connect::callback::{CallbackInput, Outcome, handle};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::TenantAdmin;

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
    let outcome = handle(&state, &admin, &session, query.into_inner()).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, location(&admin.tenant.slug, &outcome)))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish())
}

pub async fn embedded_flow(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    body: web::Json<CallbackInput>,
) -> HttpResponse {
    match handle(&state, &admin, &session, body.into_inner()).await {
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
