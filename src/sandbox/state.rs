//! The emulator's in-memory world — apps, Connect sessions, codes, connections, tokens, queued
//! faults, recorded requests, the clock — and the rules that change it.
//!
//! One `Mutex` guards it all: every operation is a short, synchronous critical section (never
//! held across an `.await`), so contention is negligible and a multi-step rule such as "check
//! the code, mark it used, issue the token" is atomic without further care. A poisoned lock is
//! recovered with `into_inner`: each operation validates before it mutates, so a panic cannot
//! leave half-applied state behind that would matter to an emulator.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use url::Url;
use uuid::Uuid;

use super::error::ApiError;
use super::faults::{Endpoint, Fault, FaultKind};
use super::input::secrets_equal;
use crate::finch::wire::{AuthMethod, ConnectionType, Product};

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
    /// `None` while in flight, and when the client got no HTTP response (reset, hang).
    pub status: Option<u16>,
    /// The kind of fault that acted on it, if any.
    pub fault: Option<String>,
    /// Arrival time on the emulator's clock (which includes any test offset).
    pub at: DateTime<Utc>,
}

/// An access token the emulator issued, so tests can account for every one of them.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub connection_id: String,
    pub client_id: String,
    pub access_token: SecretString,
    pub issued_at: DateTime<Utc>,
    /// Replaced by a reauthentication, or disconnected.
    pub revoked: bool,
}

/// Which way a Connect session was completed; decides the `redirect_uri` rule at exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Browser redirected to this URI (the session's) with the code.
    Redirect { redirect_uri: String },
    /// Code handed to the embedding page by `postMessage`; no redirect URI involved.
    Embedded,
}

/// A Connect session created by `POST /connect/sessions[/reauthenticate]`.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) customer_id: Option<String>,
    pub(crate) customer_name: Option<String>,
    pub(crate) customer_email: Option<String>,
    pub(crate) products: Vec<Product>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) connection_type: ConnectionType,
    pub(crate) manual: bool,
    /// Preselected provider: `integration.provider`, or the reauthenticated connection's.
    pub(crate) provider: Option<String>,
    pub(crate) auth_method: Option<AuthMethod>,
    /// Set for reauthentication sessions: the code will renew this connection.
    pub(crate) reauth_connection_id: Option<String>,
    pub(crate) expires_at: DateTime<Utc>,
    /// Anti-forgery value the approve/deny form must echo.
    pub(crate) form_token: String,
    /// Approved once; a session yields one code.
    pub(crate) completed: bool,
}

/// Why a session cannot be shown or completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionProblem {
    Unknown,
    Expired,
    Completed,
    ConnectionDisconnected,
}

/// An authorization code handed out by an approved session.
#[derive(Debug, Clone)]
struct AuthCode {
    client_id: String,
    session_id: String,
    flow: Flow,
    provider_id: String,
    auth_method: AuthMethod,
    issued_at: DateTime<Utc>,
    used: bool,
}

/// A connection: one employer's link to one provider.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) customer_id: Option<String>,
    pub(crate) customer_name: Option<String>,
    pub(crate) customer_email: Option<String>,
    pub(crate) provider_id: String,
    pub(crate) products: Vec<Product>,
    pub(crate) connection_type: ConnectionType,
    pub(crate) auth_method: AuthMethod,
    pub(crate) account_id: String,
    pub(crate) company_id: String,
    pub(crate) entity_id: String,
    pub(crate) manual: bool,
    pub(crate) disconnected: bool,
}

/// An access token's record (the token string is the map key).
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// Finch's id of the token, shown by `/introspect`.
    pub(crate) id: String,
    pub(crate) connection_id: String,
    pub(crate) client_id: String,
    issued_at: DateTime<Utc>,
    revoked: bool,
}

/// A freshly issued token with a snapshot of its connection.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) access_token: String,
    pub(crate) connection: Connection,
}

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
    pub(crate) fn record_arrival(&self, request_id: &str, method: &str, path: &str) {
        self.with(|s| {
            let at = s.now();
            if s.requests.len() >= MAX_RECORDED_REQUESTS {
                s.requests.pop_front();
            }
            s.requests.push_back(RecordedRequest {
                request_id: request_id.to_owned(),
                method: method.to_owned(),
                path: path.to_owned(),
                status: None,
                fault: None,
                at,
            });
        });
    }

    /// Notes on a request's record that a fault acts on it.
    pub(crate) fn record_fault(&self, request_id: &str, fault: &str) {
        self.with(|s| {
            if let Some(r) = s
                .requests
                .iter_mut()
                .rev()
                .find(|r| r.request_id == request_id)
            {
                r.fault = Some(fault.to_owned());
            }
        });
    }

    /// Completes a request's record with its outcome.
    pub(crate) fn record_outcome(
        &self,
        request_id: &str,
        status: Option<u16>,
        fault: Option<&str>,
    ) {
        self.with(|s| {
            if let Some(r) = s
                .requests
                .iter_mut()
                .rev()
                .find(|r| r.request_id == request_id)
            {
                r.status = status;
                r.fault = fault.map(str::to_owned);
            }
        });
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

    pub(crate) fn issued_tokens(&self) -> Vec<IssuedToken> {
        self.token_order
            .iter()
            .filter_map(|t| {
                self.tokens.get(t).map(|rec| IssuedToken {
                    connection_id: rec.connection_id.clone(),
                    client_id: rec.client_id.clone(),
                    access_token: SecretString::from(t.as_str()),
                    issued_at: rec.issued_at,
                    revoked: rec.revoked,
                })
            })
            .collect()
    }

    /// A live connection of `client_id` (another app's connection does not exist for it).
    pub(crate) fn connection_of(
        &self,
        client_id: &str,
        connection_id: &str,
    ) -> Option<&Connection> {
        self.connections
            .get(connection_id)
            .filter(|c| c.client_id == client_id)
    }

    /// Stores a new session; returns its id.
    pub(crate) fn add_session(&mut self, mut session: Session) -> String {
        session.id = new_id();
        session.form_token = new_id();
        let id = session.id.clone();
        self.sessions.insert(id.clone(), session);
        id
    }

    /// A session that can still be completed.
    pub(crate) fn open_session(&self, id: &str) -> Result<&Session, SessionProblem> {
        let session = self.sessions.get(id).ok_or(SessionProblem::Unknown)?;
        if session.completed {
            return Err(SessionProblem::Completed);
        }
        if self.now() >= session.expires_at {
            return Err(SessionProblem::Expired);
        }
        if let Some(conn) = &session.reauth_connection_id
            && self.connections.get(conn).is_none_or(|c| c.disconnected)
        {
            return Err(SessionProblem::ConnectionDisconnected);
        }
        Ok(session)
    }

    /// The employer approved: completes the session and hands out a code.
    pub(crate) fn approve(
        &mut self,
        session_id: &str,
        provider_id: &str,
        flow: Flow,
    ) -> Result<String, SessionProblem> {
        let now = self.now();
        let session = self.open_session(session_id)?.clone();
        let auth_method = session
            .auth_method
            .or_else(|| super::providers::find(provider_id).map(|p| p.default_auth))
            .unwrap_or(AuthMethod::Credential);
        let code = new_id();
        self.codes.insert(
            code.clone(),
            AuthCode {
                client_id: session.client_id.clone(),
                session_id: session.id.clone(),
                flow,
                provider_id: provider_id.to_owned(),
                auth_method,
                issued_at: now,
                used: false,
            },
        );
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.completed = true;
        }
        Ok(code)
    }

    /// `POST /auth/token` after client authentication: checks the code and issues a token.
    ///
    /// A rejected code is left as it was (a mistaken `redirect_uri` does not burn it); a
    /// successful exchange marks it used.
    pub(crate) fn exchange(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        code_ttl: chrono::Duration,
    ) -> Result<Grant, ApiError> {
        let now = self.now();
        let record = self
            .codes
            .get(code)
            .ok_or_else(|| ApiError::invalid_grant("the authorization code is invalid"))?;
        if record.client_id != client_id {
            return Err(ApiError::invalid_grant(
                "the authorization code was issued to a different client",
            ));
        }
        if record.used {
            return Err(ApiError::invalid_grant(
                "the authorization code has already been used; codes are single-use",
            ));
        }
        if now - record.issued_at > code_ttl {
            return Err(ApiError::invalid_grant(format!(
                "the authorization code has expired; codes are valid for {}",
                describe(code_ttl)
            )));
        }
        match (&record.flow, redirect_uri) {
            (Flow::Redirect { .. }, None) => {
                return Err(ApiError::invalid_grant(
                    "redirect_uri is required: this code comes from the redirect flow",
                ));
            }
            (
                Flow::Redirect {
                    redirect_uri: expected,
                },
                Some(given),
            ) if expected != given => {
                return Err(ApiError::invalid_grant(
                    "redirect_uri does not match the redirect_uri of the Connect session",
                ));
            }
            (Flow::Embedded, Some(_)) => {
                return Err(ApiError::invalid_grant(
                    "redirect_uri must be omitted: this code comes from the embedded flow",
                ));
            }
            _ => {}
        }
        let record = record.clone();
        let session = self
            .sessions
            .get(&record.session_id)
            .cloned()
            .ok_or_else(|| ApiError::invalid_grant("the authorization code is invalid"))?;

        let connection = match &session.reauth_connection_id {
            Some(id) => {
                let conn = self
                    .connections
                    .get_mut(id)
                    .filter(|c| !c.disconnected)
                    .ok_or_else(|| {
                        ApiError::invalid_grant(
                            "the connection this code reauthenticates has been disconnected",
                        )
                    })?;
                conn.products = session.products.clone();
                conn.auth_method = record.auth_method;
                let snapshot = conn.clone();
                // The new token replaces every earlier token of the connection.
                for t in self.tokens.values_mut() {
                    if t.connection_id == snapshot.id {
                        t.revoked = true;
                    }
                }
                snapshot
            }
            None => {
                let conn = Connection {
                    id: new_id(),
                    client_id: client_id.to_owned(),
                    customer_id: session.customer_id.clone(),
                    customer_name: session.customer_name.clone(),
                    customer_email: session.customer_email.clone(),
                    provider_id: record.provider_id.clone(),
                    products: session.products.clone(),
                    connection_type: session.connection_type,
                    auth_method: record.auth_method,
                    account_id: new_id(),
                    company_id: new_id(),
                    entity_id: new_id(),
                    manual: session.manual,
                    disconnected: false,
                };
                self.connections.insert(conn.id.clone(), conn.clone());
                conn
            }
        };
        if let Some(c) = self.codes.get_mut(code) {
            c.used = true;
        }
        let access_token = self.issue_token(&connection.id, client_id, now);
        Ok(Grant {
            access_token,
            connection,
        })
    }

    /// `POST /sandbox/connections`: a connection and token without Connect.
    pub(crate) fn create_sandbox_connection(
        &mut self,
        client_id: &str,
        provider_id: &str,
        auth_method: AuthMethod,
        products: Vec<Product>,
    ) -> Grant {
        let now = self.now();
        let connection = Connection {
            id: new_id(),
            client_id: client_id.to_owned(),
            customer_id: None,
            customer_name: None,
            customer_email: None,
            provider_id: provider_id.to_owned(),
            products,
            connection_type: ConnectionType::Finch,
            auth_method,
            account_id: new_id(),
            company_id: new_id(),
            entity_id: new_id(),
            manual: auth_method == AuthMethod::Assisted,
            disconnected: false,
        };
        self.connections
            .insert(connection.id.clone(), connection.clone());
        let access_token = self.issue_token(&connection.id, client_id, now);
        Grant {
            access_token,
            connection,
        }
    }

    fn issue_token(&mut self, connection_id: &str, client_id: &str, now: DateTime<Utc>) -> String {
        let token = new_id();
        self.tokens.insert(
            token.clone(),
            Token {
                id: new_id(),
                connection_id: connection_id.to_owned(),
                client_id: client_id.to_owned(),
                issued_at: now,
                revoked: false,
            },
        );
        self.token_order.push(token.clone());
        token
    }

    /// A live token and its connection (`invalid_token_error` otherwise).
    pub(crate) fn token(&self, access_token: &str) -> Result<(&Token, &Connection), ApiError> {
        let invalid = || ApiError::invalid_token("the access token is invalid or has been revoked");
        let token = self
            .tokens
            .get(access_token)
            .filter(|t| !t.revoked)
            .ok_or_else(invalid)?;
        let connection = self
            .connections
            .get(&token.connection_id)
            .filter(|c| !c.disconnected)
            .ok_or_else(invalid)?;
        Ok((token, connection))
    }

    /// `POST /disconnect`: revokes every token of the token's connection and ends it.
    pub(crate) fn disconnect(&mut self, access_token: &str) -> Result<(), ApiError> {
        let connection_id = self.token(access_token)?.1.id.clone();
        for t in self.tokens.values_mut() {
            if t.connection_id == connection_id {
                t.revoked = true;
            }
        }
        if let Some(c) = self.connections.get_mut(&connection_id) {
            c.disconnected = true;
        }
        Ok(())
    }
}

/// A fresh UUID string, the shape Finch uses for ids, codes and tokens.
pub(crate) fn new_id() -> String {
    Uuid::new_v4().to_string()
}

/// "10 minutes", "90 seconds": a duration for a message.
fn describe(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs % 60 == 0 {
        let minutes = secs / 60;
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    } else {
        format!("{secs} seconds")
    }
}
