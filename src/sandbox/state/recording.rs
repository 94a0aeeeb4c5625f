//! What the emulator remembers of its traffic and what it will do to it: recorded requests and
//! queued faults.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Shared, State};
use crate::sandbox::faults::{Endpoint, Fault, FaultKind};

/// How many requests are remembered; older ones are dropped so a long demo run stays small.
const MAX_RECORDED_REQUESTS: usize = 10_000;

/// One request the emulator answered (or is still answering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The `Finch-Request-Id` it was given.
    pub request_id: String,
    pub method: String,
    /// Path only: query strings can carry states and codes.
    pub path: String,
    /// The query string of a data API request (`/employer/…`, `/jobs/…`), which carries only
    /// paging and dates; `None` elsewhere.
    #[serde(default)]
    pub query: Option<String>,
    /// The request's headers (names lower-case, in order), so tests can check what reached
    /// "Finch". `authorization` keeps only its scheme (`Bearer`, `Basic`), never the credential.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The connection a Bearer token named, when it named a live one.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// `None` while in flight, and when the client got no HTTP response (reset, hang).
    pub status: Option<u16>,
    /// The kind of fault that acted on it, if any.
    pub fault: Option<String>,
    /// Arrival time on the emulator's clock (which includes any test offset).
    pub at: DateTime<Utc>,
}

/// What the access layer saw of a request as it arrived.
pub(crate) struct Arrival {
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    /// The Bearer token, only to resolve the connection; never stored.
    pub(crate) bearer: Option<String>,
}

impl Arrival {
    pub(crate) fn of(req: &actix_web::dev::ServiceRequest) -> Self {
        let path = req.path().to_owned();
        let data_api = path.starts_with("/employer/") || path.starts_with("/jobs/");
        let query =
            (data_api && !req.query_string().is_empty()).then(|| req.query_string().to_owned());
        let mut bearer = None;
        let headers = req
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                if name == actix_web::http::header::AUTHORIZATION {
                    let (scheme, credential) = value.split_once(' ').unwrap_or((&value, ""));
                    if scheme.eq_ignore_ascii_case("bearer") {
                        bearer = Some(credential.trim().to_owned());
                    }
                    (name.as_str().to_owned(), scheme.to_owned())
                } else {
                    (name.as_str().to_owned(), value)
                }
            })
            .collect();
        Self {
            path,
            query,
            headers,
            bearer,
        }
    }
}

impl Shared {
    /// Takes one use of the first queued fault matching `endpoint` (FIFO).
    pub(crate) fn take_fault(&self, endpoint: Endpoint) -> Option<FaultKind> {
        self.with(|s| {
            let index = s.faults.iter().position(|f| f.matches(endpoint))?;
            let fault = s.faults.get_mut(index)?;
            let kind = fault.kind;
            match fault.times {
                0 => {} // until cleared
                1 => {
                    s.faults.remove(index);
                }
                _ => fault.times -= 1,
            }
            Some(kind)
        })
    }

    /// Records a request on arrival.
    pub(crate) fn record_arrival(&self, request_id: &str, method: &str, arrival: Arrival) {
        self.with(|s| {
            let at = s.now();
            let connection_id = arrival
                .bearer
                .as_deref()
                .and_then(|t| s.token(t).ok())
                .map(|(_, c)| c.id.clone());
            if s.requests.len() >= MAX_RECORDED_REQUESTS {
                s.requests.pop_front();
            }
            s.requests.push_back(RecordedRequest {
                request_id: request_id.to_owned(),
                method: method.to_owned(),
                path: arrival.path,
                query: arrival.query,
                headers: arrival.headers,
                connection_id,
                status: None,
                fault: None,
                at,
            });
        });
    }

    /// Notes on a request's record that a fault acts on it.
    pub(crate) fn record_fault(&self, request_id: &str, fault: &str) {
        self.with_record(request_id, |r| r.fault = Some(fault.to_owned()));
    }

    /// Completes a request's record with its outcome.
    pub(crate) fn record_outcome(
        &self,
        request_id: &str,
        status: Option<u16>,
        fault: Option<&str>,
    ) {
        self.with_record(request_id, |r| {
            r.status = status;
            r.fault = fault.map(str::to_owned);
        });
    }

    /// Changes the latest record of `request_id`, if it is still kept.
    fn with_record(&self, request_id: &str, change: impl FnOnce(&mut RecordedRequest)) {
        self.with(|s| {
            if let Some(r) = s
                .requests
                .iter_mut()
                .rev()
                .find(|r| r.request_id == request_id)
            {
                change(r);
            }
        });
    }
}

impl State {
    pub(crate) fn queue_fault(&mut self, fault: Fault) {
        self.faults.push_back(fault);
    }

    /// Removes every queued fault; returns how many there were.
    pub(crate) fn clear_faults(&mut self) -> usize {
        let n = self.faults.len();
        self.faults.clear();
        n
    }

    pub(crate) fn faults(&self) -> Vec<Fault> {
        self.faults.iter().copied().collect()
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.iter().cloned().collect()
    }
}
