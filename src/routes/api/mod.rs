//! `/api/v1`: the tenant API's handlers, one file per resource. Each states its key's scope with
//! `caller.require(…)` before anything else, and reads only its key's tenant's rows.

pub mod attempts;
pub mod connections;
pub mod links;
pub mod openapi;

use actix_web::HttpResponse;
use serde::Serialize;

use crate::api::Problem;

/// A `200` JSON answer.
fn ok_json(body: &impl Serialize) -> Result<HttpResponse, Problem> {
    let body = serde_json::to_string(body).map_err(Problem::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// A path id: anything but a UUID is simply not found.
fn parse_id(raw: &str) -> Result<uuid::Uuid, Problem> {
    uuid::Uuid::parse_str(raw).map_err(|_| Problem::not_found())
}
