//! `/jobs/automated`: `data_sync_all` jobs of the token's connection (Finch's rules: one running
//! job per connection, one forced refresh per hour; `finch-webhooks-proxy.md` §3).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;

use super::SharedData;
use super::employer::connection_of;
use crate::sandbox::error::ApiError;
use crate::sandbox::input::{JsonBody, form_pairs, form_value};
use crate::sandbox::state::{ALLOWED_REFRESHES, Job, JobStart};

/// Most jobs one list answer holds.
const MAX_LIST: usize = 100;

#[derive(Serialize)]
struct JobBody {
    job_id: String,
    job_url: String,
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    created_at: String,
    scheduled_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    params: Option<()>,
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn job_url(shared: &SharedData, job_id: &str) -> String {
    shared
        .base_url()
        .join(&format!("jobs/automated/{job_id}"))
        .map(|u| u.to_string())
        .unwrap_or_default()
}

fn job_body(shared: &SharedData, job: &Job, now: DateTime<Utc>) -> JobBody {
    let complete = job.is_complete(now);
    JobBody {
        job_id: job.id.clone(),
        job_url: job_url(shared, &job.id),
        kind: "data_sync_all",
        status: if complete { "complete" } else { "pending" },
        created_at: timestamp(job.created_at),
        scheduled_at: Some(timestamp(job.created_at)),
        started_at: complete.then(|| timestamp(job.created_at)),
        completed_at: complete.then(|| timestamp(job.completed_at())),
        params: None,
    }
}

/// `POST /jobs/automated` with `{"type": "data_sync_all"}`.
pub(crate) async fn create(
    req: HttpRequest,
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let caller = connection_of(&req, &shared)?;
    let body = JsonBody::parse(&req, &body)?;
    match body.string("type", 1..=64)?.as_str() {
        "data_sync_all" => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "type `{other}` is not supported by this sandbox; use data_sync_all"
            )));
        }
    }
    let (start, now) = shared.with(|s| (s.start_job(&caller.connection.id), s.now()));
    match start {
        JobStart::Running { job, remaining } => Ok(HttpResponse::Ok().json(json!({
            "job_id": job.id,
            "job_url": job_url(&shared, &job.id),
            "allowed_refreshes": ALLOWED_REFRESHES,
            "remaining_refreshes": remaining,
        }))),
        JobStart::Refused { retry_at } => {
            let wait = (retry_at - now).num_seconds().max(1);
            let body = json!({
                "code": 429,
                "name": "rate_limit_exceeded_error",
                "finch_code": "data_sync_refresh_limit",
                "message": "The forced refresh limit for this connection has been reached",
                "allowed_refreshes": ALLOWED_REFRESHES,
                "remaining_refreshes": 0,
                "retry_at": timestamp(retry_at),
            });
            Ok(HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
                .insert_header((header::RETRY_AFTER, HeaderValue::from(wait)))
                // The wait is up to an hour: an SDK must not retry it in a loop.
                .insert_header(("x-should-retry", "false"))
                .json(body))
        }
    }
}

/// `GET /jobs/automated?limit&offset`: the connection's jobs, newest first.
pub(crate) async fn list(req: HttpRequest, shared: SharedData) -> Result<HttpResponse, ApiError> {
    let caller = connection_of(&req, &shared)?;
    let pairs = form_pairs(req.query_string().as_bytes());
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match form_value(&pairs, name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| ApiError::bad_request(format!("{name} must be a whole number"))),
        }
    };
    let limit = number("limit", MAX_LIST)?.min(MAX_LIST);
    let offset = number("offset", 0)?;
    let (jobs, remaining, now) = shared.with(|s| {
        (
            s.jobs_of(&caller.connection.id),
            s.remaining_refreshes(&caller.connection.id),
            s.now(),
        )
    });
    let data: Vec<JobBody> = jobs
        .iter()
        .skip(offset)
        .take(limit)
        .map(|j| job_body(&shared, j, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "data": data,
        "meta": {"quotas": {"data_sync_all": {
            "allowed_refreshes": ALLOWED_REFRESHES,
            "remaining_refreshes": remaining,
        }}},
    })))
}

/// `GET /jobs/automated/{job_id}`.
pub(crate) async fn retrieve(
    req: HttpRequest,
    path: web::Path<String>,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let caller = connection_of(&req, &shared)?;
    let job_id = path.into_inner();
    let (job, now) = shared.with(|s| (s.job(&caller.connection.id, &job_id), s.now()));
    let job = job.ok_or_else(|| ApiError::item_not_found("no job with this id"))?;
    Ok(HttpResponse::Ok().json(job_body(&shared, &job, now)))
}
