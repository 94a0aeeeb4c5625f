//! Security headers on every response (SECURITY.md RS-4): CSP, framing, sniffing, referrer,
//! caching of pages, HSTS under https.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::state::AppState;

/// The Content-Security-Policy for finchgate's pages. Finch Connect's origin is allowed where the
/// flows need it: scripts and frames (embedded flow) and form targets (a form that redirects to
/// Connect counts as a form action in browsers that check redirects).
pub fn content_security_policy(connect_origin: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' {connect_origin}; style-src 'self'; img-src 'self' data:; \
         frame-src {connect_origin}; connect-src 'self'; form-action 'self' {connect_origin}; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

pub async fn security_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let connect = state
        .as_ref()
        .map(|s| s.settings.finch.connect_url.origin().ascii_serialization());
    let https = state.as_ref().is_some_and(|s| s.settings.is_https());
    match next.call(request).await {
        Ok(mut response) => {
            apply(response.headers_mut(), connect.as_deref(), https);
            Ok(response)
        }
        // An inner middleware failed (e.g. the session store is unreachable): its error becomes
        // our error page, with the same headers, when actix renders it.
        Err(error) => Err(SecuredError {
            inner: error,
            connect,
            https,
        }
        .into()),
    }
}

fn apply(headers: &mut HeaderMap, connect_origin: Option<&str>, https: bool) {
    let set_default = |headers: &mut HeaderMap, name: HeaderName, value: &str| {
        if !headers.contains_key(&name)
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    };
    if let Some(connect) = connect_origin {
        set_default(
            headers,
            header::CONTENT_SECURITY_POLICY,
            &content_security_policy(connect),
        );
    }
    if https {
        set_default(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    set_default(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(headers, header::X_FRAME_OPTIONS, "DENY");
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on form
    // POSTs, which the CSRF Origin check must refuse. Nothing leaves for other sites either way;
    // the callback sets `no-referrer` itself (its URL carries the code).
    set_default(headers, header::REFERRER_POLICY, "same-origin");
    set_default(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    // Pages may show tenant data: never cache them. Static assets set their own Cache-Control.
    set_default(headers, header::CACHE_CONTROL, "no-store");
}

/// An error from inside the middleware stack, rendered as finchgate's error page with the headers.
#[derive(Debug)]
struct SecuredError {
    inner: Error,
    connect: Option<String>,
    https: bool,
}

impl std::fmt::Display for SecuredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl actix_web::ResponseError for SecuredError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let status = self.status_code();
        let mut response = if status.is_server_error() {
            tracing::error!(error = %self.inner, "request failed inside the middleware stack");
            crate::error::AppError::Unavailable(
                "finchgate cannot reach its database right now. Try again in a minute.".into(),
            )
            .error_response()
        } else {
            self.inner.error_response()
        };
        apply(response.headers_mut(), self.connect.as_deref(), self.https);
        response
    }
}
