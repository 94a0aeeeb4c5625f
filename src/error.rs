//! One error type for handlers: a status, a message a person can act on, and the cause for the log.
//!
//! The page shows the user's message and a correlation id (the request id); the cause chain is
//! logged once, here, and never rendered.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// Errors a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Not signed in (or the session ended): go to the login page.
    #[error("login required")]
    LoginRequired,
    /// Signed in, but two-factor sign-in must be set up first: go to the account page.
    #[error("two-factor enrolment required")]
    EnrolmentRequired,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request is fine but the stored state it needs cannot be used (e.g. a token that
    /// fails its integrity check).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many requests")]
    TooManyRequests,
    /// A limit was reached; the message says which and what to do.
    #[error("limited: {0}")]
    Limited(String),
    /// The request (its body) did not arrive in time.
    #[error("request timed out")]
    TimedOut,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    fn title_and_message(&self) -> (&'static str, String) {
        match self {
            Self::LoginRequired => ("Sign in required", "Please sign in to continue.".into()),
            Self::EnrolmentRequired => ("Two-factor sign-in required", "Set up two-factor sign-in on your account page first.".into()),
            Self::NotFound => ("Not found", "There is nothing here. Check the address, or go back to the start page.".into()),
            Self::BadRequest(m) => ("That request could not be used", m.clone()),
            Self::Forbidden(m) => ("Not allowed", m.clone()),
            Self::Conflict(m) => ("This cannot be done right now", m.clone()),
            Self::TooManyRequests => ("Too many requests", "Please wait a minute and try again.".into()),
            Self::Limited(m) => ("Too many at once", m.clone()),
            Self::TimedOut => ("The request took too long", "It did not arrive in time. Check your connection and try again.".into()),
            Self::Unavailable(m) => ("Temporarily unavailable", m.clone()),
            Self::Internal(_) => (
                "Something went wrong on our side",
                "The problem has been logged. Try again; if it persists, give the reference below to your operator.".into(),
            ),
        }
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(error: crate::db::DbError) -> Self {
        match error {
            crate::db::DbError::Unavailable(_) => {
                tracing::error!(error = %error, "database unavailable");
                Self::Unavailable(
                    "The database is not reachable right now. Try again in a minute.".into(),
                )
            }
            crate::db::DbError::Query(e) => Self::internal(e),
        }
    }
}

/// `?` on a query: an unexpected database error is an internal one (logged with its cause).
impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        crate::db::DbError::from(error).into()
    }
}

/// `?` on a random draw: nothing can be minted, which is our failure, not the user's.
impl From<crate::primitives::RandomError> for AppError {
    fn from(error: crate::primitives::RandomError) -> Self {
        Self::internal(error)
    }
}

/// `?` on a pool checkout: the database cannot be reached (a 503 page, not a 500).
impl From<crate::db::PoolError> for AppError {
    fn from(error: crate::db::PoolError) -> Self {
        crate::db::DbError::from(error).into()
    }
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
    reference: Option<String>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::LoginRequired | Self::EnrolmentRequired => StatusCode::SEE_OTHER,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests | Self::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let Self::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, "/login"))
                .finish();
        }
        if let Self::EnrolmentRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, "/account"))
                .finish();
        }
        if let Self::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let (title, message) = self.title_and_message();
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: &message,
            reference: crate::telemetry::current_request_id(),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {title}", status.as_u16()));
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .body(body)
    }
}
