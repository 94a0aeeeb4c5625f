//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the code (public).

use actix_web::HttpResponse;

pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::api::openapi::json())
}
