//! HTTP handlers of the emulator, one file per endpoint family.

pub(crate) mod account;
pub(crate) mod assets;
pub(crate) mod authorize;
pub(crate) mod control;
pub(crate) mod employer;
pub(crate) mod jobs;
pub(crate) mod providers;
pub(crate) mod sandbox_connections;
pub(crate) mod sessions;
pub(crate) mod token;

use actix_web::{HttpRequest, HttpResponse, web};

use super::error::ApiError;
use super::input::basic_credentials;
use super::state::Shared;

/// Authenticates the calling app by HTTP Basic; returns its client id.
pub(crate) fn authenticate_basic(req: &HttpRequest, shared: &Shared) -> Result<String, ApiError> {
    let credentials = basic_credentials(req)?.ok_or_else(|| {
        ApiError::invalid_client(
            "HTTP Basic authentication with your client_id and client_secret is required",
        )
    })?;
    shared.with(|s| s.authenticate(&credentials.client_id, &credentials.client_secret))?;
    Ok(credentials.client_id)
}

/// Any path or method the emulator does not serve: Finch's 404 body.
pub(crate) async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_such_route(req.method().as_str(), req.path()))
}

/// Shared state of the app (always registered by `start`).
pub(crate) type SharedData = web::Data<Shared>;
