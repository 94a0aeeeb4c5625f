//! Finch-style API errors: the `{code, name, finch_code, message}` body with the right status.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::finch::wire::FinchErrorBody;

/// An error answered with Finch's JSON error body. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    name: &'static str,
    finch_code: Option<&'static str>,
    message: String,
    /// Seconds for `Retry-After`; only rate-limit errors carry it.
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        name: &'static str,
        finch_code: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            name,
            finch_code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `bad_request` / `invalid_request`: the request failed validation.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            Some("invalid_request"),
            message,
        )
    }

    /// 401 `invalid_client_error`: the application's credentials were rejected.
    pub(crate) fn invalid_client(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client_error",
            None,
            message,
        )
    }

    /// 400 `invalid_grant_error`: the authorization code cannot be exchanged.
    pub(crate) fn invalid_grant(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant_error",
            None,
            message,
        )
    }

    /// 401 `invalid_token_error`: the access token is unknown or revoked.
    pub(crate) fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token_error",
            None,
            message,
        )
    }

    /// 401 `unauthorized_request_error`: no access token in the `Authorization` header.
    pub(crate) fn unauthorized_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized_request_error",
            None,
            message,
        )
    }

    /// 404 `not_found_error` / `item_not_found`: a named object does not exist (for this app).
    pub(crate) fn item_not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            Some("item_not_found"),
            message,
        )
    }

    /// 404 `not_found_error` / `individual_not_found` (a batch item's body).
    pub(crate) fn individual_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            Some("individual_not_found"),
            format!("no individual with id {id}"),
        )
    }

    /// 404 `not_found_error` / `payment_not_found` (a batch item's body).
    pub(crate) fn payment_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            Some("payment_not_found"),
            format!("no payment with id {id}"),
        )
    }

    /// 403 `insufficient_scope_error`: the connection was not granted the product.
    pub(crate) fn insufficient_scope(product: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope_error",
            None,
            format!("this access token does not have access to the `{product}` product"),
        )
    }

    /// 429 from Finch's per-application limits, with Finch's documented body and, as Finch
    /// documents none, no `Retry-After`.
    pub(crate) fn application_rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded_error",
            Some("finch_application_rl"),
            "Too many requests for token",
        )
    }

    /// 404 `not_found_error` for a path (or method) the API does not have.
    pub(crate) fn no_such_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            None,
            format!("no route for {method} {path}"),
        )
    }

    /// 429 `rate_limit_exceeded_error` / `finch_application_rl` with `Retry-After`.
    pub(crate) fn rate_limited(retry_after_seconds: u64) -> Self {
        Self {
            retry_after: Some(retry_after_seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded_error",
                Some("finch_application_rl"),
                "Too many requests for this application",
            )
        }
    }

    /// A Finch-side failure (500, 502 or 503).
    pub(crate) fn server_error(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_GATEWAY => Self::new(
                status,
                "bad_gateway_error",
                Some("upstream_provider_error"),
                "The upstream provider returned an error",
            ),
            // Finch documents no name for 503; `server_error` is the closest documented one.
            StatusCode::SERVICE_UNAVAILABLE => Self::new(
                status,
                "server_error",
                None,
                "Finch is temporarily unavailable",
            ),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                "An unexpected error occurred",
            ),
        }
    }

    /// The body as Finch sends it.
    pub(crate) fn body(&self) -> FinchErrorBody {
        let code = self.status.as_u16();
        let rate_limited = self.status == StatusCode::TOO_MANY_REQUESTS;
        FinchErrorBody {
            code,
            name: self.name.to_owned(),
            finch_code: self.finch_code.map(str::to_owned),
            message: self.message.clone(),
            status_code: rate_limited.then_some(code),
            status: rate_limited.then_some(code),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.name,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        response.json(self.body())
    }
}
