//! Fault injection and the API layer: which endpoints are Finch API endpoints, the
//! `Finch-API-Version` check, and how a queued fault bends one response.
//!
//! The semantics (which faults still process the request) are documented on the
//! [`sandbox`](super) module.

use std::net::Shutdown;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};

use super::access::RequestId;
use super::error::ApiError;
use super::state::Shared;
use crate::finch::wire::{FINCH_API_VERSION, FINCH_API_VERSION_HEADER};

/// A Finch API endpoint of the emulator: the unit faults are aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    #[serde(rename = "/connect/sessions")]
    ConnectSessions,
    #[serde(rename = "/connect/sessions/reauthenticate")]
    ReauthenticateSession,
    #[serde(rename = "/auth/token")]
    AuthToken,
    #[serde(rename = "/introspect")]
    Introspect,
    #[serde(rename = "/disconnect")]
    Disconnect,
    #[serde(rename = "/sandbox/connections")]
    SandboxConnections,
    #[serde(rename = "/employer/company")]
    Company,
    #[serde(rename = "/employer/directory")]
    Directory,
    #[serde(rename = "/employer/individual")]
    Individual,
    #[serde(rename = "/employer/employment")]
    Employment,
    #[serde(rename = "/employer/payment")]
    Payment,
    #[serde(rename = "/employer/pay-statement")]
    PayStatement,
    /// `POST` (create) and `GET` (list) `/jobs/automated`.
    #[serde(rename = "/jobs/automated")]
    JobsAutomated,
    /// `GET /jobs/automated/{job_id}`.
    #[serde(rename = "/jobs/automated/{job_id}")]
    JobStatus,
    #[serde(rename = "/providers")]
    Providers,
}

impl Endpoint {
    /// Every API endpoint.
    pub const ALL: [Endpoint; 15] = [
        Endpoint::ConnectSessions,
        Endpoint::ReauthenticateSession,
        Endpoint::AuthToken,
        Endpoint::Introspect,
        Endpoint::Disconnect,
        Endpoint::SandboxConnections,
        Endpoint::Company,
        Endpoint::Directory,
        Endpoint::Individual,
        Endpoint::Employment,
        Endpoint::Payment,
        Endpoint::PayStatement,
        Endpoint::JobsAutomated,
        Endpoint::JobStatus,
        Endpoint::Providers,
    ];

    /// The path, as Finch spells it.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ConnectSessions => "/connect/sessions",
            Endpoint::ReauthenticateSession => "/connect/sessions/reauthenticate",
            Endpoint::AuthToken => "/auth/token",
            Endpoint::Introspect => "/introspect",
            Endpoint::Disconnect => "/disconnect",
            Endpoint::SandboxConnections => "/sandbox/connections",
            Endpoint::Company => "/employer/company",
            Endpoint::Directory => "/employer/directory",
            Endpoint::Individual => "/employer/individual",
            Endpoint::Employment => "/employer/employment",
            Endpoint::Payment => "/employer/payment",
            Endpoint::PayStatement => "/employer/pay-statement",
            Endpoint::JobsAutomated => "/jobs/automated",
            Endpoint::JobStatus => "/jobs/automated/{job_id}",
            Endpoint::Providers => "/providers",
        }
    }

    /// The method the endpoint answers (`/jobs/automated` answers `GET` too).
    pub fn method(self) -> Method {
        match self {
            Endpoint::Introspect
            | Endpoint::Company
            | Endpoint::Directory
            | Endpoint::Payment
            | Endpoint::JobStatus
            | Endpoint::Providers => Method::GET,
            _ => Method::POST,
        }
    }

    /// The endpoint a request is for, if any (method and path must both match).
    pub fn from_request(method: &Method, path: &str) -> Option<Endpoint> {
        if let Some(job_id) = path.strip_prefix("/jobs/automated/") {
            return (method == Method::GET && !job_id.is_empty() && !job_id.contains('/'))
                .then_some(Endpoint::JobStatus);
        }
        if path == "/jobs/automated" && method == Method::GET {
            return Some(Endpoint::JobsAutomated);
        }
        Self::ALL
            .into_iter()
            .find(|e| e.path() == path && e.method() == method)
    }
}

/// An HTTP status a `server_error` fault may answer with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum ServerErrorStatus {
    #[default]
    InternalServerError,
    BadGateway,
    ServiceUnavailable,
}

impl TryFrom<u16> for ServerErrorStatus {
    type Error = String;
    fn try_from(code: u16) -> Result<Self, Self::Error> {
        match code {
            500 => Ok(Self::InternalServerError),
            502 => Ok(Self::BadGateway),
            503 => Ok(Self::ServiceUnavailable),
            other => Err(format!("status must be 500, 502 or 503 (got {other})")),
        }
    }
}

impl From<ServerErrorStatus> for u16 {
    fn from(s: ServerErrorStatus) -> u16 {
        match s {
            ServerErrorStatus::InternalServerError => 500,
            ServerErrorStatus::BadGateway => 502,
            ServerErrorStatus::ServiceUnavailable => 503,
        }
    }
}

/// What a fault does to the response (the JSON `kind` plus its parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Wait, then process normally.
    Latency { ms: u64 },
    /// Process, then answer with a Finch-style 5xx.
    ServerError {
        #[serde(default)]
        status: ServerErrorStatus,
    },
    /// Process, then sit on the connection for `seconds` and drop it without a response.
    Hang {
        #[serde(default = "default_hang_seconds")]
        seconds: u64,
    },
    /// Process, then drop the TCP connection without an HTTP response.
    Reset,
    /// Process, then answer 200 with a truncated JSON body.
    MalformedJson,
    /// Answer 429 `rate_limit_exceeded_error` with `Retry-After`, without processing.
    RateLimit {
        #[serde(default = "default_retry_after")]
        retry_after_seconds: u64,
    },
    /// Process normally but put a different `customer_id` in the response.
    WrongCustomerId,
    /// Process, then answer 200 with a valid JSON body of `megabytes` MB, streamed (never held
    /// in memory).
    BigBody {
        #[serde(default = "default_big_body_megabytes")]
        megabytes: u64,
    },
    /// Process, then answer an HTML page (as a broken gateway in front of Finch would).
    HtmlBody {
        #[serde(default = "default_html_status")]
        status: u16,
    },
    /// Answer `302 Found` to another URL of the emulator, without processing.
    Redirect,
    /// Process normally and add a `Set-Cookie` header to the response.
    SetCookie,
}

fn default_big_body_megabytes() -> u64 {
    64
}

fn default_html_status() -> u16 {
    200
}

fn default_hang_seconds() -> u64 {
    30
}

fn default_retry_after() -> u64 {
    1
}

impl FaultKind {
    /// The `kind` as spelled in JSON and in recorded requests.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Latency { .. } => "latency",
            FaultKind::ServerError { .. } => "server_error",
            FaultKind::Hang { .. } => "hang",
            FaultKind::Reset => "reset",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::RateLimit { .. } => "rate_limit",
            FaultKind::WrongCustomerId => "wrong_customer_id",
            FaultKind::BigBody { .. } => "big_body",
            FaultKind::HtmlBody { .. } => "html_body",
            FaultKind::Redirect => "redirect",
            FaultKind::SetCookie => "set_cookie",
        }
    }

    /// Whether the fault can act on an endpoint: only responses that carry a `customer_id` can
    /// carry a wrong one.
    fn applies_to(self, endpoint: Endpoint) -> bool {
        match self {
            FaultKind::WrongCustomerId => {
                matches!(endpoint, Endpoint::AuthToken | Endpoint::Introspect)
            }
            _ => true,
        }
    }
}

/// A queued fault: what, where (any API endpoint when `endpoint` is `None`) and how many times
/// (`0` = until cleared). JSON: `{"endpoint": "/auth/token", "kind": "latency", "ms": 500,
/// "times": 1}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default = "default_times")]
    pub times: u32,
}

fn default_times() -> u32 {
    1
}

impl Fault {
    /// A one-shot fault on any API endpoint it applies to.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            endpoint: None,
            kind,
            times: 1,
        }
    }

    /// Aims the fault at one endpoint.
    pub fn on(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Applies the fault `n` times; `0` means until cleared.
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// Whether this fault acts on a request for `endpoint`.
    pub(crate) fn matches(&self, endpoint: Endpoint) -> bool {
        self.endpoint.is_none_or(|e| e == endpoint) && self.kind.applies_to(endpoint)
    }

    /// Rejects a fault that could never act.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.endpoint {
            Some(e) if !self.kind.applies_to(e) => Err(format!(
                "{} only applies to /auth/token and /introspect, not {}",
                self.kind.name(),
                e.path()
            )),
            _ => Ok(()),
        }
    }
}

/// Marks a request a fault acted on, for the access log and the request record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppliedFault {
    pub(crate) kind: &'static str,
    /// The client got no HTTP response (reset, hang).
    pub(crate) no_response: bool,
}

/// A duplicate of the connection's socket, taken in `HttpServer::on_connect`, so a `reset` fault
/// can abort the TCP connection that actix owns.
pub(crate) struct ConnectionSocket(pub(crate) socket2::Socket);

/// Middleware for Finch API endpoints: requires `Finch-API-Version`, then applies the first
/// queued fault that matches. Other paths pass through untouched.
pub(crate) async fn api_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(endpoint) = Endpoint::from_request(req.method(), req.path()) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if let Err(e) = check_api_version(req.request()) {
        return Ok(req.error_response(e));
    }
    let Some(shared) = req.app_data::<web::Data<Shared>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let Some(fault) = shared.take_fault(endpoint) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let mark = |req: &HttpRequest, no_response: bool| {
        req.extensions_mut().insert(AppliedFault {
            kind: fault.name(),
            no_response,
        });
    };
    mark(req.request(), false);
    // Record the fault now: a hang's record must show it while the request is still in flight.
    if let Some(RequestId(id)) = req.extensions().get::<RequestId>() {
        shared.record_fault(id, fault.name());
    }

    match fault {
        FaultKind::RateLimit {
            retry_after_seconds,
        } => Ok(req.error_response(ApiError::rate_limited(retry_after_seconds))),
        FaultKind::Latency { ms } => {
            shared.sleep(Duration::from_millis(ms)).await;
            next.call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
        FaultKind::ServerError { status } => {
            let (http_req, _) = next.call(req).await?.map_into_boxed_body().into_parts();
            let status =
                StatusCode::from_u16(status.into()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let response = ApiError::server_error(status).error_response();
            Ok(ServiceResponse::new(http_req, response))
        }
        FaultKind::MalformedJson => {
            let (http_req, response) = next.call(req).await?.map_into_boxed_body().into_parts();
            let Ok(body) = to_bytes(response.into_body()).await else {
                return Ok(internal_error(http_req));
            };
            // Half of a JSON document is never valid JSON (a 1-byte body becomes empty).
            let truncated = body.slice(..body.len() / 2);
            let response = HttpResponse::Ok()
                .insert_header((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ))
                .body(truncated);
            Ok(ServiceResponse::new(http_req, response))
        }
        FaultKind::Hang { seconds } => {
            let (http_req, _) = next.call(req).await?.map_into_boxed_body().into_parts();
            mark(&http_req, true);
            shared.sleep(Duration::from_secs(seconds)).await;
            reset_connection(&http_req);
            Ok(ServiceResponse::new(
                http_req,
                HttpResponse::InternalServerError().finish(),
            ))
        }
        FaultKind::Reset => {
            let (http_req, _) = next.call(req).await?.map_into_boxed_body().into_parts();
            mark(&http_req, true);
            reset_connection(&http_req);
            Ok(ServiceResponse::new(
                http_req,
                HttpResponse::InternalServerError().finish(),
            ))
        }
        FaultKind::WrongCustomerId => {
            let (http_req, response) = next.call(req).await?.map_into_boxed_body().into_parts();
            if !response.status().is_success() {
                return Ok(ServiceResponse::new(http_req, response));
            }
            let status = response.status();
            let Ok(body) = to_bytes(response.into_body()).await else {
                return Ok(internal_error(http_req));
            };
            let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return Ok(internal_error(http_req));
            };
            if let Some(obj) = json.as_object_mut() {
                let wrong = format!(
                    "wrong-customer-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                obj.insert("customer_id".to_owned(), serde_json::Value::String(wrong));
            }
            Ok(ServiceResponse::new(
                http_req,
                HttpResponse::build(status).json(json),
            ))
        }
        FaultKind::BigBody { megabytes } => {
            let (http_req, _) = next.call(req).await?.map_into_boxed_body().into_parts();
            Ok(ServiceResponse::new(http_req, big_body(megabytes)))
        }
        FaultKind::HtmlBody { status } => {
            let (http_req, _) = next.call(req).await?.map_into_boxed_body().into_parts();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let response = HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .body(HTML_BODY);
            Ok(ServiceResponse::new(http_req, response))
        }
        FaultKind::Redirect => {
            let target = shared
                .base_url()
                .join("_sandbox/redirected")
                .map(|u| u.to_string())
                .unwrap_or_else(|_| "/_sandbox/redirected".to_owned());
            let response = HttpResponse::Found()
                .insert_header((header::LOCATION, target))
                .finish();
            Ok(req.into_response(response))
        }
        FaultKind::SetCookie => {
            let mut res = next.call(req).await?.map_into_boxed_body();
            res.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static("finch_session=sandbox-cookie; Path=/; HttpOnly"),
            );
            Ok(res)
        }
    }
}

/// The page of an `html_body` fault.
const HTML_BODY: &str = "<!doctype html><html><head><title>502 Bad Gateway</title></head>\
<body><h1>Bad Gateway</h1><p>The upstream server is unavailable.</p></body></html>";

/// Chunk size of a `big_body` fault's stream.
const PAD_CHUNK: usize = 64 * 1024;
static PAD: [u8; PAD_CHUNK] = [b'a'; PAD_CHUNK];

/// `{"padding":"aaaa…"}` of `megabytes` MB, streamed from one static chunk.
fn big_body(megabytes: u64) -> HttpResponse {
    let chunks = megabytes.saturating_mul(1024 * 1024) / PAD_CHUNK as u64;
    let head = std::iter::once(web::Bytes::from_static(b"{\"padding\":\""));
    let pad = (0..chunks).map(|_| web::Bytes::from_static(&PAD));
    let tail = std::iter::once(web::Bytes::from_static(b"\"}"));
    let stream = futures_util::stream::iter(
        head.chain(pad)
            .chain(tail)
            .map(Ok::<_, std::convert::Infallible>),
    );
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(stream)
}

/// A Finch-style 500 for a response the fault layer could not rewrite (returning an error
/// from middleware would skip the request id).
fn internal_error(http_req: HttpRequest) -> ServiceResponse<BoxBody> {
    let response = ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR).error_response();
    ServiceResponse::new(http_req, response)
}

/// Finch requires `Finch-API-Version` on every API call; the emulator knows one version.
fn check_api_version(req: &HttpRequest) -> Result<(), ApiError> {
    match req.headers().get(FINCH_API_VERSION_HEADER) {
        None => Err(ApiError::bad_request(format!(
            "the {FINCH_API_VERSION_HEADER} header is required (use {FINCH_API_VERSION})"
        ))),
        Some(v) if v.as_bytes() == FINCH_API_VERSION.as_bytes() => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "unsupported {FINCH_API_VERSION_HEADER}; this sandbox speaks {FINCH_API_VERSION}"
        ))),
    }
}

/// Aborts the TCP connection: with `SO_LINGER` 0 the final close sends RST, and the shutdown
/// makes sure not one byte of the response that actix still tries to write reaches the client.
fn reset_connection(req: &HttpRequest) {
    let Some(ConnectionSocket(socket)) = req.conn_data::<ConnectionSocket>() else {
        tracing::warn!("reset fault: no socket for this connection; answering 500 instead");
        return;
    };
    if let Err(e) = socket.set_linger(Some(Duration::ZERO)) {
        tracing::warn!(error = %e, "reset fault: could not set SO_LINGER");
    }
    if let Err(e) = socket.shutdown(Shutdown::Both) {
        tracing::warn!(error = %e, "reset fault: could not shut the socket down");
    }
}
