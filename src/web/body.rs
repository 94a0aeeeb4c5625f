//! A request body read once, bounded, and put back for the handler: for the middleware that must
//! look at a form or a JSON body before any handler does (the control-character check, the CSRF
//! token). Whichever reads it first keeps the bytes in the request's extensions; the next one
//! takes them from there instead of reading the stream again.

use actix_web::HttpMessage as _;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt as _;

use crate::error::AppError;

/// Forms and the embedded callback's JSON are small; a body this large is not one of ours.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The bodies middleware reads: the only kinds finchgate's handlers accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `application/x-www-form-urlencoded`
    Form,
    /// `application/json`
    Json,
}

/// The kind of body the request says it carries, if it is one finchgate reads.
pub fn kind(request: &ServiceRequest) -> Option<Kind> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())?
        .trim_start()
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        Some(Kind::Form)
    } else if content_type.starts_with("application/json") {
        Some(Kind::Json)
    } else {
        None
    }
}

/// The body as read by an earlier middleware.
#[derive(Clone)]
struct Buffered(Bytes);

/// The whole body (at most [`MAX_BODY_BYTES`]), left in place for the handler.
pub async fn buffered(request: &mut ServiceRequest) -> Result<Bytes, AppError> {
    if let Some(Buffered(bytes)) = request.extensions().get::<Buffered>() {
        return Ok(bytes.clone());
    }
    let mut payload = request.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(AppError::BadRequest("The form is too large.".into()));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    request.set_payload(Payload::from(body.clone()));
    request.extensions_mut().insert(Buffered(body.clone()));
    Ok(body)
}
