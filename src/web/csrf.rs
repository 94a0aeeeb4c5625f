//! CSRF defence on every state-changing request (SECURITY.md CS-1, CS-2).
//!
//! Two checks, both before any handler runs: (1) Fetch Metadata and Origin — a cross-site
//! `Sec-Fetch-Site` or a foreign `Origin` is refused; (2) the synchronizer token — the
//! `X-CSRF-Token` header or the form's `csrf_token` field must equal the token in the
//! server-side session (constant-time comparison). The login form is covered too: GET /login
//! creates the pre-session that holds its token.

use actix_session::SessionExt as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, ORIGIN};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError as _, web};

use crate::error::AppError;
use crate::primitives::constant_time_eq;
use crate::state::AppState;
use crate::web::body;
use crate::web::session::SessionData;

const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
const FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn refuse(message: &str) -> AppError {
    AppError::Forbidden(message.to_owned())
}

const EXPIRED: &str =
    "This form has expired or did not come from finchgate. Reload the page and try again.";

pub async fn protect(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // The API authenticates each request by its bearer key, never by a cookie: a cross-site
    // page cannot make a browser send the key, so there is nothing to forge.
    if is_safe(request.method()) || crate::api::is_api_path(request.path()) {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    if let Err(error) = check(&mut request).await {
        tracing::warn!(path = %crate::telemetry::loggable_path(request.path()), reason = %error, "CSRF check refused a request");
        let response = error.error_response();
        return Ok(request.into_response(response).map_into_right_body());
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn check(request: &mut ServiceRequest) -> Result<(), AppError> {
    let headers = request.headers();
    if let Some(site) = headers.get(FETCH_SITE).and_then(|v| v.to_str().ok())
        && site.eq_ignore_ascii_case("cross-site")
    {
        return Err(refuse("Requests from other sites are not accepted."));
    }
    if let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) {
        let expected = request
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.public_url.origin().ascii_serialization());
        if expected.as_deref() != Some(origin) {
            return Err(refuse("Requests from other sites are not accepted."));
        }
    }
    let session = request.get_session();
    let Some(expected) = SessionData(&session).existing_csrf_token() else {
        return Err(refuse(EXPIRED));
    };
    let presented = match request
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(token) => Some(token.to_owned()),
        None => form_token(request).await?,
    };
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(refuse(EXPIRED)),
    }
}

/// Finds `csrf_token` in an urlencoded body (read once, see [`crate::web::body`]), which stays in
/// place for the handler.
async fn form_token(request: &mut ServiceRequest) -> Result<Option<String>, AppError> {
    if body::kind(request) != Some(body::Kind::Form) {
        return Ok(None);
    }
    let body = body::buffered(request).await?;
    Ok(url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "csrf_token")
        .map(|(_, value)| value.into_owned()))
}
