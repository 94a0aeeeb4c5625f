//! Finch's per-application rate limits on the data endpoints (rolling 60 s per `client_id` and
//! endpoint; `finch-webhooks-proxy.md` §4), configurable so tests and demos can raise them.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::State;

/// The rolling window Finch counts requests in.
const WINDOW_SECONDS: i64 = 60;

/// A data endpoint with its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Limited {
    Company,
    Directory,
    Individual,
    Employment,
    Payment,
    PayStatement,
}

/// Requests allowed per application and endpoint in any 60 s; `0` means no limit. JSON (for
/// `/_sandbox/limits`): `{"company": 20, "directory": 20, …}`; a partial object changes only
/// the endpoints it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub company: u32,
    pub directory: u32,
    pub individual: u32,
    pub employment: u32,
    pub payment: u32,
    pub pay_statement: u32,
}

impl Default for RateLimits {
    /// Finch's documented limits.
    fn default() -> Self {
        Self {
            company: 20,
            directory: 20,
            individual: 20,
            employment: 20,
            payment: 12,
            pay_statement: 12,
        }
    }
}

impl RateLimits {
    /// The same limit everywhere (`0`: none).
    pub fn uniform(limit: u32) -> Self {
        Self {
            company: limit,
            directory: limit,
            individual: limit,
            employment: limit,
            payment: limit,
            pay_statement: limit,
        }
    }

    fn of(&self, endpoint: Limited) -> u32 {
        match endpoint {
            Limited::Company => self.company,
            Limited::Directory => self.directory,
            Limited::Individual => self.individual,
            Limited::Employment => self.employment,
            Limited::Payment => self.payment,
            Limited::PayStatement => self.pay_statement,
        }
    }
}

/// Request times per (application, endpoint) within the window.
#[derive(Default)]
pub(crate) struct Windows {
    seen: HashMap<(String, Limited), VecDeque<DateTime<Utc>>>,
}

impl State {
    pub(crate) fn rate_limits(&self) -> RateLimits {
        self.rate_limits
    }

    pub(crate) fn set_rate_limits(&mut self, limits: RateLimits) {
        self.rate_limits = limits;
    }

    /// Counts a request of `client_id` to `endpoint`; `false` when it is over the limit (a
    /// refused request does not count, as with a rolling window on accepted calls).
    pub(crate) fn admit(&mut self, client_id: &str, endpoint: Limited) -> bool {
        let limit = self.rate_limits.of(endpoint);
        if limit == 0 {
            return true;
        }
        let now = self.now();
        let since = now - Duration::seconds(WINDOW_SECONDS);
        let times = self
            .windows
            .seen
            .entry((client_id.to_owned(), endpoint))
            .or_default();
        while times.front().is_some_and(|t| *t <= since) {
            times.pop_front();
        }
        if times.len() >= limit as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}
