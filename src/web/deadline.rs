//! A request body must arrive within [`BODY_TIMEOUT`] of its head (finchgate's bodies are small
//! forms and JSON), or the request is answered `408` and the connection closed. Without it a
//! client could hold a request open indefinitely, keeping its worker's session and state alive
//! (issue 13, defect 4). The head itself has `HttpServer::client_request_timeout`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONNECTION, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _, ResponseError as _};
use futures_util::StreamExt as _;

use crate::error::AppError;

/// The longest a request body may take to arrive, counted from the request head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the request head may take (`HttpServer::client_request_timeout`).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn body_deadline(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    let timed_out = Rc::new(Cell::new(false));
    let flag = Rc::clone(&timed_out);
    let payload = request.take_payload();
    let bounded = futures_util::stream::unfold(
        (payload, flag, false),
        move |(mut payload, flag, done)| async move {
            if done {
                return None;
            }
            match tokio::time::timeout_at(deadline, payload.next()).await {
                Ok(Some(chunk)) => Some((chunk, (payload, flag, false))),
                Ok(None) => None,
                Err(_) => {
                    flag.set(true);
                    let error = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    );
                    Some((Err(PayloadError::Io(error)), (payload, flag, true)))
                }
            }
        },
    );
    request.set_payload(Payload::from(
        Box::pin(bounded) as futures_util::stream::LocalBoxStream<'static, _>
    ));
    match next.call(request).await {
        Ok(response) if timed_out.get() => {
            let (request, _) = response.into_parts();
            let path = crate::telemetry::loggable_path(request.path()).into_owned();
            tracing::warn!(%path, "the request body did not arrive in time");
            let mut answer = AppError::TimedOut.error_response();
            answer
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            Ok(ServiceResponse::new(request, answer).map_into_right_body())
        }
        Ok(response) => Ok(response.map_into_left_body()),
        Err(_) if timed_out.get() => Err(AppError::TimedOut.into()),
        Err(error) => Err(error),
    }
}
