//! Logging, request ids, the access log (paths without query strings) and Prometheus metrics.
//!
//! A callback URL carries an authorization code and a state in its query string, so nothing here
//! ever records a query string, a header value or a body: only method, path, route, status, latency.
//! Paths that carry a secret themselves (setup links, `/invite/{token}`; connect links,
//! `/c/{token}`) are logged redacted.
//!
//! Every metric label takes its value from a fixed set (a method name, a route pattern of the
//! route table, a status number), never from the request as sent: HTTP accepts method tokens of
//! any length, and a label per distinct value would let anyone grow the registry without bound.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Installs the global tracing subscriber. `RUST_LOG` filters (default `info`). Safe to call twice.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(layer(format, std::io::stderr))
        .try_init();
    // A second init (tests, demo re-entry) keeps the first subscriber.
    drop(result);
}

/// The log lines finchgate writes, in `format`, to `writer` (stderr in production; a capture in
/// the log-canary test, which checks that no secret ever reaches them).
pub fn layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    match format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_target(true)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
    }
}

/// Path prefixes whose remainder is a secret (a one-time setup-link token).
const SECRET_PATH_PREFIXES: &[&str] = &["/invite/", "/reset/", "/c/"];

/// Paths under a secret prefix that carry no secret (a connect link's closing page).
const PUBLIC_PATHS: &[&str] = &["/c/done"];

/// The request path as it may be logged: a secret path segment becomes `{token}`.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    if PUBLIC_PATHS.contains(&path) {
        return path.into();
    }
    match SECRET_PATH_PREFIXES
        .iter()
        .find(|prefix| path.starts_with(**prefix))
    {
        Some(prefix) => format!("{prefix}{{token}}").into(),
        None => path.into(),
    }
}

/// The method as it may be logged and labelled: one of the methods finchgate knows, else `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route label of a request that matched no route of the table.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The root span of a request: method, path (never the query string), route, request id.
pub struct FinchgateRootSpan;

impl RootSpanBuilder for FinchgateRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "http_request",
            method = method_label(request.method()),
            path = %loggable_path(request.path()),
            request_id = request_id.map(tracing::field::display),
            status = tracing::field::Empty,
            // The id (never the secret) of the API key a `/api/v1` request was accepted with.
            api_key_id = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status().as_u16(),
            Err(error) => error.as_response_error().status_code().as_u16(),
        };
        span.record("status", status);
    }
}

tokio::task_local! {
    static CURRENT_REQUEST_ID: RequestId;
}

/// The id of the request being served by this task, for error pages ("reference: …").
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(|id| id.to_string()).ok()
}

const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Access log + request metrics + `X-Request-Id` on every response. Runs inside the root span.
pub async fn access_log(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(request.method());
    let path = loggable_path(request.path()).into_owned();
    let request_id = request.extensions().get::<RequestId>().copied();
    let result = match request_id {
        Some(id) => CURRENT_REQUEST_ID.scope(id, next.call(request)).await,
        None => next.call(request).await,
    };
    let elapsed = started.elapsed();
    let (status, route) = match &result {
        Ok(response) => (
            response.status().as_u16(),
            // A pattern of the route table (a fixed set), never the path as sent.
            response
                .request()
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned()),
        ),
        Err(error) => (
            error.as_response_error().status_code().as_u16(),
            UNMATCHED_ROUTE.to_owned(),
        ),
    };
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    tracing::info!(target: "finchgate::access", method, %path, %route, status, latency_ms, "request");
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
    let mut response = result?;
    if let Some(id) = request_id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// The process-wide Prometheus recorder. Metrics are global by nature; installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".to_owned()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding program): then ours
        // only renders what it records, which is still a valid (if partial) exposition.
        drop(metrics::set_global_recorder(recorder));
        handle
    })
}

/// Counts a finished exchange attempt (and its latency, when Finch was called).
pub fn record_attempt(outcome: &str, category: &str, latency: Option<std::time::Duration>) {
    metrics::counter!(
        "finchgate_exchange_attempts_total",
        "outcome" => outcome.to_owned(),
        "category" => category.to_owned()
    )
    .increment(1);
    if let Some(latency) = latency {
        metrics::histogram!("finchgate_exchange_duration_seconds", "outcome" => outcome.to_owned())
            .record(latency.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_link_tokens_never_reach_the_log_but_other_paths_do() {
        assert_eq!(
            loggable_path("/invite/0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"),
            "/invite/{token}"
        );
        assert_eq!(loggable_path("/invite/x/y"), "/invite/{token}");
        assert_eq!(
            loggable_path("/c/0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"),
            "/c/{token}"
        );
        assert_eq!(loggable_path("/c/done"), "/c/done");
        assert_eq!(loggable_path("/ops/tenants/acme"), "/ops/tenants/acme");
        assert_eq!(loggable_path("/login"), "/login");
    }

    #[test]
    fn an_unknown_or_long_method_is_labelled_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::TRACE), "other");
        let long = Method::from_bytes("X".repeat(60_000).as_bytes()).unwrap_or_default();
        assert_eq!(method_label(&long), "other");
    }
}
