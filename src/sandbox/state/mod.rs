//! The emulator's in-memory world — apps, Connect sessions, codes, connections, tokens, queued
//! faults, recorded requests, the clock — and the rules that change it.
//!
//! One `Mutex` guards it all: every operation is a short, synchronous critical section (never
//! held across an `.await`), so contention is negligible and a multi-step rule such as "check
//! the code, mark it used, issue the token" is atomic without further care. A poisoned lock is
//! recovered with `into_inner`: each operation validates before it mutates, so a panic cannot
//! leave half-applied state behind that would matter to an emulator.
//!
//! Here: the state, its lock, the clock and the apps. The rules live with what they change:
//! `sessions`, `codes` (approve and exchange), `connections` (and their tokens), `recording`
//! (requests and faults).

mod codes;
mod connections;
mod jobs;
mod limits;
mod recording;
mod sessions;

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use url::Url;
use uuid::Uuid;

use super::error::ApiError;
use super::faults::Fault;
use super::input::secrets_equal;
use codes::AuthCode;
pub use connections::IssuedToken;
pub(crate) use connections::{Connection, Grant, Token};
pub(crate) use jobs::{ALLOWED_REFRESHES, Job, JobStart};
pub(crate) use limits::Limited;
pub use limits::RateLimits;
pub(crate) use recording::Arrival;
pub use recording::RecordedRequest;
pub(crate) use sessions::{Flow, Session, SessionProblem};

/// Everything the emulator knows.
#[derive(Default)]
pub(crate) struct State {
    apps: HashMap<String, SecretString>,
    sessions: HashMap<String, Session>,
    codes: HashMap<String, AuthCode>,
    connections: HashMap<String, Connection>,
    tokens: HashMap<String, Token>,
    /// Token strings in issue order, for [`State::issued_tokens`].
    token_order: Vec<String>,
    requests: VecDeque<RecordedRequest>,
    faults: VecDeque<Fault>,
    clock_offset: chrono::Duration,
    rate_limits: RateLimits,
    windows: limits::Windows,
    /// `data_sync_all` jobs of every connection, oldest first.
    jobs: Vec<Job>,
}

/// State plus configuration, shared by all workers behind `web::Data` (an `Arc`).
pub(crate) struct Shared {
    state: Mutex<State>,
    code_ttl: chrono::Duration,
    base_url: Url,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn new(
        code_ttl: chrono::Duration,
        base_url: Url,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            state: Mutex::new(State::default()),
            code_ttl,
            base_url,
            shutdown,
        }
    }

    /// Runs `f` on the locked state.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// The emulator's clock: wall time plus the test offset.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.with(|s| s.now())
    }

    pub(crate) fn code_ttl(&self) -> chrono::Duration {
        self.code_ttl
    }

    /// Base URL of the API and of Connect, ending in `/`.
    pub(crate) fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Sleeps, but wakes early when the server stops, so a `hang` fault never delays shutdown.
    pub(crate) async fn sleep(&self, duration: Duration) {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            stopping = shutdown.wait_for(|stopping| *stopping) => {
                if stopping.is_err() {
                    // The handle is gone without a stop: sleep the full time after all.
                    tokio::time::sleep(duration).await;
                }
            }
        }
    }
}

impl State {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub(crate) fn set_clock_offset(&mut self, offset: chrono::Duration) {
        self.clock_offset = offset;
    }

    /// Registers an app, replacing the secret of an existing client id.
    pub(crate) fn register_app(&mut self, client_id: String, secret: SecretString) {
        self.apps.insert(client_id, secret);
    }

    /// Checks an app's credentials (`invalid_client_error` otherwise).
    pub(crate) fn authenticate(&self, client_id: &str, secret: &str) -> Result<(), ApiError> {
        let known = self.apps.get(client_id);
        // Compare against something even for an unknown id, so both failures look alike.
        let expected = known.map_or("", |s| s.expose_secret());
        let matches = secrets_equal(expected.as_bytes(), secret.as_bytes());
        if known.is_some() && matches {
            Ok(())
        } else {
            Err(ApiError::invalid_client(
                "invalid client credentials: unknown client_id or wrong client_secret",
            ))
        }
    }
}

/// A fresh UUID string, the shape Finch uses for ids, codes and tokens.
pub(crate) fn new_id() -> String {
    Uuid::new_v4().to_string()
}
