//! Who is calling the API, and what it sent: the `ApiCaller` extractor (bearer key, per-key rate
//! limit) and the query and JSON extractors whose refusals are problem details naming the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::keys::{self, Caller};
use super::problem::Problem;
use crate::db::Scope;
use crate::db::models::rate_limits;
use crate::domain::ApiScope;
use crate::state::AppState;

/// The window the per-key rate limit counts requests in.
pub const RATE_WINDOW: chrono::Duration = chrono::Duration::minutes(1);

/// Largest JSON body the API reads.
pub const MAX_JSON_BYTES: usize = crate::web::body::MAX_BODY_BYTES;

/// Whether the request declares (`Content-Length`) a body larger than the API reads: refused at
/// the edge, whichever route it is for, before anything reads it.
pub fn declared_too_large(headers: &actix_web::http::header::HeaderMap) -> bool {
    headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_JSON_BYTES as u64)
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, Problem>>>>;

/// A caller holding an accepted API key, within its rate limit.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Caller);

impl ApiCaller {
    /// The scope of this caller's transactions: its tenant's rows only.
    pub fn scope(&self) -> Scope {
        Scope::Tenant(self.0.tenant_id)
    }

    pub fn tenant_id(&self) -> Uuid {
        self.0.tenant_id
    }

    pub fn key_id(&self) -> Uuid {
        self.0.key_id
    }

    /// `Ok` when the key has `scope`; otherwise the 403 naming it.
    pub fn require(&self, scope: ApiScope) -> Result<(), Problem> {
        if self.0.has(scope) {
            Ok(())
        } else {
            Err(Problem::forbidden_scope(scope))
        }
    }
}

fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, Problem> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| Problem::internal(anyhow::anyhow!("application state missing")))
}

/// The bearer credential, or `""` (which no key matches) when there is none.
fn presented_key(req: &HttpRequest) -> String {
    let Some(value) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return String::new();
    };
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim().to_owned(),
        _ => String::new(),
    }
}

async fn caller(req: &HttpRequest) -> Result<ApiCaller, Problem> {
    let state = state_of(req)?;
    let presented = presented_key(req);
    let now = state.clock.now();
    let limit = state.settings.limits.api_requests_per_minute;
    let verdict = crate::db::run(&state.db, Scope::System, async |conn| {
        let Some(caller) = keys::authenticate(conn, &presented, now).await? else {
            return Ok(Err(Problem::unauthorized()));
        };
        let key = format!("api:{}", caller.key_id);
        let (hits, window_start) = rate_limits::count_hit(conn, &key, now, RATE_WINDOW).await?;
        if hits > limit {
            let wait = (window_start + RATE_WINDOW - now).num_seconds().max(1);
            return Ok(Err(Problem::rate_limited(
                u64::try_from(wait).unwrap_or(60),
            )));
        }
        Ok(Ok(caller))
    })
    .await?;
    drop(presented);
    let caller = verdict?;
    tracing::Span::current().record("api_key_id", tracing::field::display(caller.key_id));
    Ok(ApiCaller(caller))
}

impl FromRequest for ApiCaller {
    type Error = Problem;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { caller(&req).await })
    }
}

/// The field a serde message names (`unknown field `x``, `missing field `x``).
fn named_field(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// Query parameters; unknown ones and bad values are a 422 naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> ApiQuery<T> {
    pub fn parse(query: &str) -> Result<Self, Problem> {
        match web::Query::<T>::from_query(query) {
            Ok(parsed) => Ok(Self(parsed.into_inner())),
            Err(error) => {
                let message = match &error {
                    actix_web::error::QueryPayloadError::Deserialize(e) => e.to_string(),
                    other => other.to_string(),
                };
                let field = named_field(&message);
                let detail = match (&field, message.starts_with("unknown field")) {
                    (Some(f), true) => format!("Unknown query parameter `{f}`."),
                    (Some(f), false) => format!("Query parameter `{f}`: {message}."),
                    (None, _) => format!("The query string could not be used: {message}."),
                };
                Err(Problem::validation(detail, field.into_iter().collect()))
            }
        }
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiQuery<T> {
    type Error = Problem;
    type Future = std::future::Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::parse(req.query_string()))
    }
}

/// A JSON body of at most [`MAX_JSON_BYTES`]: another media type is a 415, a larger body a 413,
/// and a body the type refuses (unknown field, missing field, wrong type) a 422 naming the field
/// and never repeating a value. Types read with it use `#[serde(deny_unknown_fields)]`.
#[derive(Debug)]
pub struct ApiJson<T> {
    pub value: T,
    /// The bytes as sent (what an `Idempotency-Key` is bound to).
    pub raw: web::Bytes,
}

impl<T: DeserializeOwned> ApiJson<T> {
    /// Parses a body already read.
    pub fn parse(raw: web::Bytes) -> Result<Self, Problem> {
        // The same refusal of control characters as every form (web::input), field named.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&raw)
            && let Err(refused) = crate::web::input::check_json("", &value)
        {
            return Err(Problem::validation(
                refused.to_string(),
                vec![refused.field],
            ));
        }
        match serde_json::from_slice::<T>(&raw) {
            Ok(value) => Ok(Self { value, raw }),
            Err(error) => {
                let message = error.to_string();
                let field = named_field(&message).filter(|_| {
                    message.starts_with("unknown field") || message.starts_with("missing field")
                });
                let detail = match (&field, message.starts_with("unknown field")) {
                    (Some(f), true) => format!("Unknown field `{f}`."),
                    (Some(f), false) => format!("Missing field `{f}`."),
                    // serde's other messages may quote the value: only say where.
                    (None, _) => format!(
                        "The body is not valid for this request (line {}, column {}).",
                        error.line(),
                        error.column()
                    ),
                };
                Err(Problem::validation(detail, field.into_iter().collect()))
            }
        }
    }
}

async fn read_json_body(req: HttpRequest, mut payload: Payload) -> Result<web::Bytes, Problem> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err(Problem::unsupported_media_type());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| Problem::bad_request("The request body could not be read."))?;
        if body.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(Problem::payload_too_large(MAX_JSON_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = Problem;
    type Future = Boxed<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move { Self::parse(read_json_body(req, payload).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only parsed")]
    struct Sample {
        name: String,
        count: Option<u32>,
    }

    #[test]
    fn an_unknown_field_is_a_422_naming_it() {
        let Err(problem) =
            ApiJson::<Sample>::parse(web::Bytes::from_static(br#"{"name":"a","colour":"red"}"#))
        else {
            panic!("refused");
        };
        assert_eq!(problem.status.as_u16(), 422);
        assert_eq!(problem.fields, Some(vec!["colour".to_owned()]));
        assert!(problem.detail.contains("colour"));
    }

    #[test]
    fn a_wrong_value_is_refused_without_repeating_it() {
        let Err(problem) =
            ApiJson::<Sample>::parse(web::Bytes::from_static(br#"{"name":"a","count":"s3cret"}"#))
        else {
            panic!("refused");
        };
        assert_eq!(problem.status.as_u16(), 422);
        assert!(!problem.detail.contains("s3cret"), "{}", problem.detail);
    }

    #[test]
    fn an_unknown_query_parameter_is_named() {
        let Err(problem) = ApiQuery::<Sample>::parse("name=a&colour=red") else {
            panic!("refused");
        };
        assert_eq!(problem.fields, Some(vec!["colour".to_owned()]));
    }
}
