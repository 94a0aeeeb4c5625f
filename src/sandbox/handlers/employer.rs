//! Finch's data API (`/employer/*`) for the emulator's connections: the Bearer token names the
//! connection, its products decide access, Finch's per-application limits apply, and the data
//! is generated deterministically from the connection (see [`crate::sandbox::data`]).
//!
//! Order of checks, as a client sees them: token (401), rate limit (429), product (403), then
//! the request itself (400).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use serde::Serialize;

use super::SharedData;
use crate::finch::wire::{FinchErrorBody, Product};
use crate::sandbox::data::Company;
use crate::sandbox::data::wire::{BatchItem, DirectoryPage, Paging, PayStatementPage, Responses};
use crate::sandbox::error::ApiError;
use crate::sandbox::input::{JsonBody, bearer_token, form_pairs, form_value};
use crate::sandbox::state::{Connection, Limited};

/// Default and largest `limit` of the directory (Finch: 100 and 10 000).
const DIRECTORY_DEFAULT_LIMIT: usize = 100;
const DIRECTORY_MAX_LIMIT: usize = 10_000;
/// Default and largest `limit` of a pay statement request (Finch: 100 and 5 000).
const PAY_STATEMENT_DEFAULT_LIMIT: usize = 100;
const PAY_STATEMENT_MAX_LIMIT: usize = 5_000;
/// Most items in one batch request.
const MAX_BATCH: usize = 10_000;

/// A request's connection and "today" on the emulator's clock.
pub(crate) struct Caller {
    pub(crate) connection: Connection,
    pub(crate) today: NaiveDate,
}

impl Caller {
    fn company(&self) -> Company {
        Company::new(&self.connection.company_id, self.connection.employee_size)
    }

    fn has(&self, product: Product) -> bool {
        self.connection.products.contains(&product)
    }
}

/// The token's connection (401 otherwise), without a product or rate check.
pub(crate) fn connection_of(req: &HttpRequest, shared: &SharedData) -> Result<Caller, ApiError> {
    let access_token = bearer_token(req)?;
    shared.with(|s| {
        let (_, connection) = s.token(&access_token)?;
        Ok(Caller {
            connection: connection.clone(),
            today: s.now().date_naive(),
        })
    })
}

/// The token's connection, counted against the app's limit for `endpoint`, with `product`.
fn authorize(
    req: &HttpRequest,
    shared: &SharedData,
    endpoint: Limited,
    product: Product,
) -> Result<Caller, ApiError> {
    let access_token = bearer_token(req)?;
    let caller = shared.with(|s| {
        let (_, connection) = s.token(&access_token)?;
        let connection = connection.clone();
        if !s.admit(&connection.client_id, endpoint) {
            return Err(ApiError::application_rate_limited());
        }
        Ok(Caller {
            connection,
            today: s.now().date_naive(),
        })
    })?;
    if !caller.has(product) {
        return Err(ApiError::insufficient_scope(product.as_str()));
    }
    Ok(caller)
}

/// A whole number from the query string, or the default.
fn query_number(
    pairs: &[(String, String)],
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(raw) = form_value(pairs, name) else {
        return Ok(default);
    };
    raw.parse::<usize>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| {
            ApiError::bad_request(format!("{name} must be a whole number from 0 to {max}"))
        })
}

/// A required `YYYY-MM-DD` query parameter.
fn query_date(pairs: &[(String, String)], name: &str) -> Result<NaiveDate, ApiError> {
    let raw = form_value(pairs, name)
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required (YYYY-MM-DD)")))?;
    NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
        .map_err(|_| ApiError::bad_request(format!("{name} must be a date as YYYY-MM-DD")))
}

fn json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// `GET /employer/company`.
pub(crate) async fn company(
    req: HttpRequest,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &shared, Limited::Company, Product::Company)?;
    Ok(json(&caller.company().company()))
}

/// `GET /employer/directory?limit&offset`.
pub(crate) async fn directory(
    req: HttpRequest,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &shared, Limited::Directory, Product::Directory)?;
    let pairs = form_pairs(req.query_string().as_bytes());
    let limit = query_number(
        &pairs,
        "limit",
        DIRECTORY_DEFAULT_LIMIT,
        DIRECTORY_MAX_LIMIT,
    )?;
    let offset = query_number(&pairs, "offset", 0, usize::MAX)?;
    let company = caller.company();
    let count = company.size() as usize;
    let end = offset.saturating_add(limit).min(count);
    let individuals = (offset.min(end)..end)
        .filter_map(|i| u32::try_from(i).ok())
        .map(|i| company.directory_entry(i, caller.today))
        .collect();
    Ok(json(&DirectoryPage {
        paging: Paging { count, offset },
        individuals,
    }))
}

/// The `individual_id`s of a batch body.
fn individual_ids(body: &JsonBody) -> Result<Vec<String>, ApiError> {
    body.object_array("requests", MAX_BATCH)?
        .iter()
        .map(|r| r.string("individual_id", 1..=255))
        .collect()
}

fn not_found_body(e: &ApiError) -> FinchErrorBody {
    e.body()
}

/// A batch answer item: the body when found, Finch's per-item error otherwise.
fn item<B: Serialize>(
    id: String,
    found: Option<B>,
    missing: ApiError,
) -> BatchItem<serde_json::Value> {
    match found.and_then(|b| serde_json::to_value(b).ok()) {
        Some(body) => BatchItem {
            individual_id: Some(id),
            payment_id: None,
            code: 200,
            body,
        },
        None => BatchItem {
            individual_id: Some(id),
            payment_id: None,
            code: 404,
            body: serde_json::to_value(not_found_body(&missing)).unwrap_or_default(),
        },
    }
}

/// `POST /employer/individual` with `{requests: [{individual_id}], options?: {include: ["ssn"]}}`.
pub(crate) async fn individual(
    req: HttpRequest,
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &shared, Limited::Individual, Product::Individual)?;
    let body = JsonBody::parse(&req, &body)?;
    let ids = individual_ids(&body)?;
    let wants_ssn = body
        .opt_object("options")?
        .map(|o| o.opt_strings("include"))
        .transpose()?
        .flatten()
        .is_some_and(|include| include.iter().any(|i| i == "ssn"));
    // The SSN needs its own product; without it the field stays null.
    let with_ssn = wants_ssn && caller.has(Product::Ssn);
    let company = caller.company();
    let responses = ids
        .into_iter()
        .map(|id| {
            let found = company
                .person_index(&id)
                .map(|i| company.individual(i, with_ssn));
            let missing = ApiError::individual_not_found(&id);
            item(id, found, missing)
        })
        .collect();
    Ok(json(&Responses { responses }))
}

/// `POST /employer/employment` with `{requests: [{individual_id}]}`.
pub(crate) async fn employment(
    req: HttpRequest,
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &shared, Limited::Employment, Product::Employment)?;
    let body = JsonBody::parse(&req, &body)?;
    let ids = individual_ids(&body)?;
    let company = caller.company();
    let responses = ids
        .into_iter()
        .map(|id| {
            let found = company
                .person_index(&id)
                .map(|i| company.employment(i, caller.today));
            let missing = ApiError::individual_not_found(&id);
            item(id, found, missing)
        })
        .collect();
    Ok(json(&Responses { responses }))
}

/// `GET /employer/payment?start_date&end_date` (both required, inclusive).
pub(crate) async fn payment(
    req: HttpRequest,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &shared, Limited::Payment, Product::Payment)?;
    let pairs = form_pairs(req.query_string().as_bytes());
    let from = query_date(&pairs, "start_date")?;
    let to = query_date(&pairs, "end_date")?;
    if from > to {
        return Err(ApiError::bad_request(
            "start_date must not be after end_date",
        ));
    }
    let company = caller.company();
    let payments = off_the_worker(move || company.payments(from, to, caller.today)).await?;
    Ok(json(&payments))
}

/// `POST /employer/pay-statement` with `{requests: [{payment_id, limit?, offset?}]}`.
pub(crate) async fn pay_statement(
    req: HttpRequest,
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let caller = authorize(&req, &shared, Limited::PayStatement, Product::PayStatement)?;
    let body = JsonBody::parse(&req, &body)?;
    let requests = body.object_array("requests", MAX_BATCH)?;
    let mut wanted = Vec::with_capacity(requests.len());
    for r in &requests {
        let id = r.string("payment_id", 1..=255)?;
        let limit = r
            .opt_whole_number("limit", 1..=PAY_STATEMENT_MAX_LIMIT as u32)?
            .map_or(PAY_STATEMENT_DEFAULT_LIMIT, |n| n as usize);
        let offset = r.opt_whole_number("offset", 0..=u32::MAX)?.unwrap_or(0) as usize;
        wanted.push((id, limit, offset));
    }
    let company = caller.company();
    let today = caller.today;
    let responses = off_the_worker(move || pay_statement_answers(&company, today, wanted)).await?;
    Ok(json(&Responses::<serde_json::Value> { responses }))
}

/// Runs work that grows with the company's size (every person, every pay run) on the blocking
/// pool, so a company of thousands does not stall the emulator's two workers.
async fn off_the_worker<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(work)
        .await
        .map_err(|_| ApiError::server_error(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR))
}

fn pay_statement_answers(
    company: &Company,
    today: NaiveDate,
    wanted: Vec<(String, usize, usize)>,
) -> Vec<BatchItem<serde_json::Value>> {
    wanted
        .into_iter()
        .map(|(id, limit, offset)| {
            let found = company.payment_index(&id, today).map(|k| {
                let (count, pay_statements) = company.pay_statements(k, offset, limit);
                PayStatementPage {
                    paging: Paging { count, offset },
                    pay_statements,
                }
            });
            let missing = ApiError::payment_not_found(&id);
            let mut answer = item(id.clone(), found, missing);
            answer.individual_id = None;
            answer.payment_id = Some(id);
            answer
        })
        .collect()
}
