//! The tenant API (`/api/v1`, JSON, for a tenant's backend): API keys, the bearer-key extractor
//! with its per-key rate limit, problem details, cursor pagination, `Idempotency-Key`, the JSON
//! shapes and the OpenAPI document generated from them. Handlers live in `routes::api`.

pub mod extract;
pub mod idempotency;
pub mod keys;
pub mod model;
pub mod openapi;
pub mod pagination;
pub mod problem;

pub use extract::{ApiCaller, ApiJson, ApiQuery};
pub use problem::Problem;

/// Where the API lives.
pub const PREFIX: &str = "/api/";

/// Whether `path` is one of the API's (its errors are problem details, not pages).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}
