//! `Idempotency-Key` for any POST of the API, generic over the work it guards.
//!
//! Per API key and Idempotency-Key, a row is **inserted first** (primary key `(api_key_id,
//! idempotency_key)`), so of concurrent identical requests exactly one wins the insert and does
//! the work; its successful answer (status + body) is stored and replayed for 24 hours. The others:
//! - same request (method, path and body hash) and the answer is stored → the answer, replayed
//!   (header `Idempotent-Replayed: true`);
//! - same request still running → they wait for it (polling, up to [`WAIT`]) and replay it; if it
//!   is still running after that, a `409 idempotency_in_progress` with `Retry-After: 1`;
//! - another request under the same key → `422 idempotency_conflict`.
//!
//! A stored answer is sealed with the vault (purpose `idempotent-answer`, bound to the tenant and
//! the API key): an answer may carry a secret shown once, such as a connect link's URL, and the
//! database never holds it in clear. An answer whose KEK was retired within its 24 hours can no
//! longer be replayed (a 500 says so in the log; retire a KEK a day after rotating).
//!
//! Only successful (2xx) answers are stored: when the work fails (a refusal, Finch down, …) the
//! row is deleted again, so the client may retry with the same key. The reaper purges rows after
//! 24 hours ([`RETENTION`]).

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::problem::Problem;
use crate::db::models::idempotency_keys;
use crate::db::{Pool, Scope};

/// How long a stored answer is replayed.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(24);
/// How long a concurrent twin waits for the first request's answer.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// Longest accepted Idempotency-Key.
pub const MAX_KEY_CHARS: usize = 255;
/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The response header on a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// An answer as stored and replayed: a status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// What [`once`] gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work ran now.
    Fresh(Answer),
    /// The work had run before under this key: its answer.
    Replayed(Answer),
}

impl Outcome {
    pub fn answer(&self) -> &Answer {
        match self {
            Self::Fresh(a) | Self::Replayed(a) => a,
        }
    }

    /// The HTTP response (JSON), marked when replayed.
    pub fn into_response(self) -> HttpResponse {
        let replayed = matches!(self, Self::Replayed(_));
        let (Self::Fresh(answer) | Self::Replayed(answer)) = self;
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
        let mut response = HttpResponse::build(status);
        response.content_type("application/json");
        // An answer may hold a secret shown once (a link's URL): never cached.
        response.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
        if replayed {
            response.insert_header((REPLAYED_HEADER, "true"));
        }
        response.body(answer.body)
    }
}

impl Answer {
    /// A JSON answer with `status`.
    pub fn json(status: StatusCode, body: &impl serde::Serialize) -> Result<Self, Problem> {
        Ok(Self {
            status: status.as_u16(),
            body: serde_json::to_string(body).map_err(Problem::internal)?,
        })
    }
}

/// What a POST handler of the API calls: runs `work` under the request's `Idempotency-Key` (if it
/// has one), bound to the method, path and `body` (the raw bytes, e.g. `ApiJson::raw`), and
/// answers with its result or the replayed one.
pub async fn respond(
    req: &HttpRequest,
    state: &crate::state::AppState,
    caller: &super::ApiCaller,
    body: &[u8],
    work: impl AsyncFnOnce() -> Result<Answer, Problem>,
) -> Result<HttpResponse, Problem> {
    let key = key_of(req)?;
    let hash = request_hash(req.method().as_str(), req.path(), body);
    let owner = Owner {
        tenant_id: caller.tenant_id(),
        api_key_id: caller.key_id(),
    };
    let vault = &state.vault;
    let sealed = async || {
        let answer = work().await?;
        if key.is_none() {
            return Ok(answer);
        }
        Ok(Answer {
            status: answer.status,
            body: seal(vault, owner, &answer.body)?,
        })
    };
    let outcome = once(
        &state.db,
        owner,
        key.as_deref(),
        &hash,
        state.clock.now(),
        sealed,
    )
    .await?;
    if key.is_none() {
        return Ok(outcome.into_response());
    }
    let opened = match outcome {
        Outcome::Fresh(a) => Outcome::Fresh(open(vault, owner, a)?),
        Outcome::Replayed(a) => Outcome::Replayed(open(vault, owner, a)?),
    };
    Ok(opened.into_response())
}

/// What marks a sealed stored answer.
const SEALED_PREFIX: &str = "sealed:";

fn context(owner: Owner) -> crate::vault::RowContext {
    crate::vault::RowContext::new(
        crate::vault::Purpose::IdempotentAnswer,
        owner.tenant_id,
        owner.api_key_id,
    )
}

/// Seals an answer's body for storage: `sealed:` and the envelope in base64.
fn seal(vault: &crate::vault::Vault, owner: Owner, body: &str) -> Result<String, Problem> {
    use base64::Engine as _;
    let sealed = vault
        .seal(&context(owner), body.as_bytes())
        .map_err(Problem::internal)?;
    Ok(format!(
        "{SEALED_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(sealed.envelope)
    ))
}

/// Opens a stored answer's body (see [`seal`]).
fn open(vault: &crate::vault::Vault, owner: Owner, answer: Answer) -> Result<Answer, Problem> {
    use base64::Engine as _;
    let Some(encoded) = answer.body.strip_prefix(SEALED_PREFIX) else {
        return Err(Problem::internal(anyhow::anyhow!(
            "a stored idempotent answer is not sealed"
        )));
    };
    let envelope = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(Problem::internal)?;
    let body = vault
        .open_string(&context(owner), &envelope)
        .map_err(Problem::internal)?;
    Ok(Answer {
        status: answer.status,
        body: secrecy::ExposeSecret::expose_secret(&body).to_owned(),
    })
}

/// The `Idempotency-Key` header, checked: 1 to 255 visible ASCII characters.
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|k| {
        !k.is_empty() && k.len() <= MAX_KEY_CHARS && k.bytes().all(|b| b.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(key.to_owned())),
        None => Err(Problem::validation(
            format!("The {HEADER} header must be 1 to {MAX_KEY_CHARS} visible ASCII characters."),
            vec![HEADER.to_owned()],
        )),
    }
}

/// What a request is, for comparing twins: SHA-256 over method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
    input.extend_from_slice(method.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(path.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(body);
    crate::primitives::sha256(input)
}

/// Whose request it is.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub tenant_id: Uuid,
    pub api_key_id: Uuid,
}

/// Runs `work` at most once per `(owner, key)` within [`RETENTION`] (see the module doc). Without
/// a key, `work` simply runs.
pub async fn once(
    pool: &Pool,
    owner: Owner,
    key: Option<&str>,
    request_hash: &[u8],
    now: DateTime<Utc>,
    work: impl AsyncFnOnce() -> Result<Answer, Problem>,
) -> Result<Outcome, Problem> {
    let Some(key) = key else {
        return Ok(Outcome::Fresh(work().await?));
    };
    let scope = Scope::Tenant(owner.tenant_id);
    let waited_until = tokio::time::Instant::now() + WAIT;
    loop {
        let claimed = crate::db::run(pool, scope, async |conn| {
            idempotency_keys::claim(
                conn,
                owner.tenant_id,
                owner.api_key_id,
                key,
                request_hash,
                now,
                now - RETENTION,
            )
            .await
        })
        .await?;
        if claimed {
            return run_claimed(pool, owner, key, work).await;
        }
        // Someone has the key: wait for its answer (or for it to give the key up).
        loop {
            let row = crate::db::run(pool, scope, async |conn| {
                idempotency_keys::find(conn, owner.api_key_id, key).await
            })
            .await?;
            let Some(row) = row else { break };
            if !crate::primitives::constant_time_eq(&row.request_hash, request_hash) {
                return Err(Problem::idempotency_conflict());
            }
            if let (Some(status), Some(body)) = (row.response_status, row.response_body) {
                return Ok(Outcome::Replayed(Answer {
                    status: u16::try_from(status).unwrap_or(200),
                    body,
                }));
            }
            if tokio::time::Instant::now() >= waited_until {
                return Err(Problem::idempotency_in_progress());
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn run_claimed(
    pool: &Pool,
    owner: Owner,
    key: &str,
    work: impl AsyncFnOnce() -> Result<Answer, Problem>,
) -> Result<Outcome, Problem> {
    let scope = Scope::Tenant(owner.tenant_id);
    let result = work().await;
    let stored = match &result {
        Ok(answer) if (200..300).contains(&answer.status) => {
            let status = i16::try_from(answer.status).unwrap_or(200);
            crate::db::run(pool, scope, async |conn| {
                idempotency_keys::complete(conn, owner.api_key_id, key, status, &answer.body).await
            })
            .await
        }
        _ => {
            crate::db::run(pool, scope, async |conn| {
                idempotency_keys::release(conn, owner.api_key_id, key).await
            })
            .await
        }
    };
    if let Err(error) = stored {
        // The work is done; only its bookkeeping failed. Answer it, log the failure.
        tracing::error!(error = %error, "could not store an idempotent answer");
    }
    result.map(Outcome::Fresh)
}
