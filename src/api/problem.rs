//! RFC 9457 problem details: every error of `/api/v1` is `application/problem+json` with a stable
//! `type` URI (`urn:finchgate:problem:<code>`), a `code` a program can branch on, and a `detail`
//! a person can act on. The request id is in the `X-Request-Id` header, not the body, so that
//! equal refusals have byte-identical bodies. Never a stack, never a secret; an internal error's cause goes to the log.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ApiScope;
use crate::error::AppError;

/// The media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `type` URI of a problem code.
pub fn type_uri(code: &str) -> String {
    format!("urn:finchgate:problem:{code}")
}

/// A problem details body (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemBody {
    /// Stable URI naming the kind of problem: `urn:finchgate:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request and what to do.
    pub detail: String,
    /// Stable machine-readable code: unauthorized, forbidden_scope, not_found, validation_failed,
    /// rate_limited, idempotency_conflict, idempotency_in_progress, payload_too_large,
    /// unsupported_media_type, conflict, finch_unavailable, unavailable, internal.
    pub code: String,
    /// For `forbidden_scope`: the scope the key lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// For `validation_failed`: the fields (or query parameters) that were refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

/// An API error: a status, a code, a detail, and what goes to the log.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub scope: Option<ApiScope>,
    pub fields: Option<Vec<String>>,
    /// Seconds to wait (`Retry-After`).
    pub retry_after: Option<u64>,
    /// An internal error's cause, logged once when the answer is built.
    #[source]
    cause: Option<anyhow::Error>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            scope: None,
            fields: None,
            retry_after: None,
            cause: None,
        }
    }

    /// The one answer for every key that is not accepted: missing, malformed, unknown, wrong,
    /// revoked or expired alike.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "Send a valid, unrevoked, unexpired API key as `Authorization: Bearer fgk_…`.",
        )
    }

    pub fn forbidden_scope(scope: ApiScope) -> Self {
        let mut problem = Self::new(
            StatusCode::FORBIDDEN,
            "forbidden_scope",
            "Missing scope",
            format!(
                "This API key does not have the scope `{scope}`, which this request needs. Create a key with it."
            ),
        );
        problem.scope = Some(scope);
        problem
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "There is no such object for this API key's tenant.",
        )
    }

    /// A request value was refused; `fields` names them (never repeating a value).
    pub fn validation(detail: impl Into<String>, fields: Vec<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Validation failed",
            detail,
        );
        problem.fields = Some(fields);
        problem
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Bad request",
            detail,
        )
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            format!(
                "This API key sent too many requests this minute. Retry after {retry_after} seconds."
            ),
        );
        problem.retry_after = Some(retry_after);
        problem
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            format!("The request body is larger than {limit} bytes."),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as `Content-Type: application/json`.",
        )
    }

    pub fn idempotency_conflict() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_conflict",
            "Idempotency-Key reused",
            "This Idempotency-Key was already used with a different request in the last 24 hours. Use a new key for a new request.",
        )
    }

    pub fn idempotency_in_progress() -> Self {
        let mut problem = Self::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "Request in progress",
            "A request with this Idempotency-Key is still being processed. Retry shortly to get its answer.",
        );
        problem.retry_after = Some(1);
        problem
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut problem = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "Something went wrong on our side. It has been logged; quote the response's X-Request-Id header to your operator.",
        );
        problem.cause = Some(cause.into());
        problem
    }

    /// The body this problem is answered with.
    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            type_: type_uri(self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            scope: self.scope.map(|s| s.as_str().to_owned()),
            fields: self.fields.clone(),
        }
    }
}

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        match error {
            AppError::NotFound => Self::not_found(),
            // A browser-session refusal never reaches the API (it signs in by key), but if it
            // did, the key's caller is simply not authorized.
            AppError::LoginRequired | AppError::EnrolmentRequired => Self::unauthorized(),
            AppError::BadRequest(m) => Self::bad_request(m),
            AppError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", m),
            AppError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", "Conflict", m),
            AppError::TooManyRequests => Self::rate_limited(60),
            AppError::Limited(m) => {
                let mut problem = Self::rate_limited(60);
                problem.detail = m;
                problem
            }
            AppError::TimedOut => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "Request timeout",
                "The request body did not arrive in time.",
            ),
            AppError::Unavailable(m) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Unavailable",
                m,
            ),
            AppError::Internal(cause) => Self::internal(cause),
        }
    }
}

impl From<crate::db::DbError> for Problem {
    fn from(error: crate::db::DbError) -> Self {
        AppError::from(error).into()
    }
}

impl From<diesel::result::Error> for Problem {
    fn from(error: diesel::result::Error) -> Self {
        AppError::from(error).into()
    }
}

impl From<crate::db::PoolError> for Problem {
    fn from(error: crate::db::PoolError) -> Self {
        AppError::from(error).into()
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            tracing::error!(error = format!("{cause:#}"), "API request failed");
        }
        let mut response = HttpResponse::build(self.status);
        response
            .content_type(PROBLEM_JSON)
            .insert_header((CACHE_CONTROL, "no-store"));
        if let Some(seconds) = self.retry_after {
            response.insert_header((RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"finchgate\""),
            ));
        }
        let body = serde_json::to_string(&self.body()).unwrap_or_else(|_| {
            format!(
                "{{\"status\":{},\"code\":\"{}\"}}",
                self.status.as_u16(),
                self.code
            )
        });
        response.body(body)
    }
}
