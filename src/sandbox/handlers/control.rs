//! Control endpoints under `/_sandbox/` (not Finch's): inject faults, read the request log,
//! register apps. They exist for tests and demos; never expose the emulator publicly.

use actix_web::{HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::SharedData;
use crate::sandbox::error::ApiError;
use crate::sandbox::faults::Fault;
use crate::sandbox::state::RateLimits;

pub(crate) async fn add_fault(
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let fault: Fault = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid fault: {e}")))?;
    fault
        .validate()
        .map_err(|e| ApiError::bad_request(format!("invalid fault: {e}")))?;
    shared.with(|s| s.queue_fault(fault));
    Ok(HttpResponse::Created().json(fault))
}

pub(crate) async fn list_faults(shared: SharedData) -> HttpResponse {
    HttpResponse::Ok().json(shared.with(|s| s.faults()))
}

pub(crate) async fn clear_faults(shared: SharedData) -> HttpResponse {
    let cleared = shared.with(|s| s.clear_faults());
    HttpResponse::Ok().json(json!({ "cleared": cleared }))
}

pub(crate) async fn requests(shared: SharedData) -> HttpResponse {
    HttpResponse::Ok().json(shared.with(|s| s.requests()))
}

#[derive(Deserialize)]
struct NewApp {
    client_id: String,
    client_secret: SecretString,
}

pub(crate) async fn register_app(
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let app: NewApp = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"client_id\": \"…\", \"client_secret\": \"…\"}}: {e}"
        ))
    })?;
    if app.client_id.trim().is_empty() || app.client_secret.expose_secret().is_empty() {
        return Err(ApiError::bad_request(
            "client_id and client_secret must not be empty",
        ));
    }
    let client_id = app.client_id.clone();
    shared.with(|s| s.register_app(app.client_id, app.client_secret));
    Ok(HttpResponse::Created().json(json!({ "client_id": client_id })))
}

pub(crate) async fn limits(shared: SharedData) -> HttpResponse {
    HttpResponse::Ok().json(shared.with(|s| s.rate_limits()))
}

/// `POST /_sandbox/limits`: `{"directory": 1000, …}` changes the endpoints it names (`0` = no
/// limit); `{"default": true}` restores Finch's limits. Answers the limits now in force.
pub(crate) async fn set_limits(
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let invalid = |e: String| {
        ApiError::bad_request(format!(
            "expected {{\"company\": n, \"directory\": n, \"individual\": n, \
             \"employment\": n, \"payment\": n, \"pay_statement\": n}} or \
             {{\"default\": true}}: {e}"
        ))
    };
    let mut given: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()))?;
    let limits = shared.with(|s| {
        let mut current = if given.remove("default") == Some(serde_json::Value::Bool(true)) {
            RateLimits::default()
        } else {
            s.rate_limits()
        };
        let mut merged = serde_json::to_value(current).map_err(|e| invalid(e.to_string()))?;
        if let Some(fields) = merged.as_object_mut() {
            fields.extend(given);
        }
        current = serde_json::from_value(merged).map_err(|e| invalid(e.to_string()))?;
        s.set_rate_limits(current);
        Ok::<_, ApiError>(current)
    })?;
    Ok(HttpResponse::Ok().json(limits))
}
