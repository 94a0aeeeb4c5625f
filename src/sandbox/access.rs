//! Outermost middleware: gives every response a `Finch-Request-Id`, records the request for
//! tests, and writes the access log (method, path without query, status, latency — never
//! codes, tokens, secrets or states).

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::faults::AppliedFault;
use super::state::{Arrival, Shared, new_id};

/// The `Finch-Request-Id` of the request being served, for inner layers.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

pub(crate) async fn access_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = new_id();
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let shared = req.app_data::<web::Data<Shared>>().cloned();
    if let Some(shared) = &shared {
        shared.record_arrival(&request_id, &method, Arrival::of(&req));
    }
    req.extensions_mut().insert(RequestId(request_id.clone()));

    // Handlers and extractors turn their errors into responses, and the inner layers return
    // no errors of their own, so every response passes here and gets the header. (Cloning the
    // request up front to cover errors is not possible: routing needs it unshared.)
    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static("finch-request-id"), value);
    }

    let applied = res.request().extensions().get::<AppliedFault>().copied();
    let status = match applied {
        Some(f) if f.no_response => None,
        _ => Some(res.status().as_u16()),
    };
    let fault = applied.map(|f| f.kind);
    if let Some(shared) = &shared {
        shared.record_outcome(&request_id, status, fault);
    }
    tracing::info!(
        target: "finchgate::sandbox::access",
        %method,
        %path,
        status = status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        latency_ms = started.elapsed().as_millis() as u64,
        fault = fault.unwrap_or("-"),
        request_id = %request_id,
        "sandbox request"
    );
    Ok(res)
}
